package main_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runLocalScript is the script `make run` runs.
const runLocalScript = "../../scripts/run-local.sh"

// readyLine ends what scripts/run-local.sh prints once the calls answer.
const readyLine = "Ctrl-C stops both."

// TestRunScriptCtrlC runs scripts/run-local.sh on the binaries TestMain
// built, waits for its calls, makes one, and sends SIGINT to its process
// group, as Ctrl-C in a terminal does: the script ends with status 0, the
// facade drains instead of being told twice, and nothing is left running.
// In the background of a non-interactive shell the script starts with
// SIGINT ignored, so that only the binaries see it: that must end it the
// same way.
func TestRunScriptCtrlC(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		argv []string
	}{
		{"sigint", []string{runLocalScript}},
		{"sigint ignored by the script", []string{"bash", "-c", `trap "" INT; exec "$0"`, runLocalScript}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ports := freeAddrs(t, 4)
			cmd := exec.Command(tc.argv[0], tc.argv[1:]...)
			cmd.Env = append(os.Environ(), "BIN="+binDir, "SANDBOX_ADDR="+ports[0], "GRPC_ADDR="+ports[1], "HTTP_ADDR="+ports[2], "ADMIN_ADDR="+ports[3])
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			stderr := &lockedBuffer{}
			cmd.Stderr = stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			ready, done := make(chan struct{}), make(chan error, 1)
			var printed []string // the lines up to readyLine, once ready is closed
			go func() {
				_, _ = io.Copy(io.Discard, skipTo(stdout, readyLine, ready, &printed))
				done <- cmd.Wait()
			}()
			t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
			select {
			case <-ready:
			case err := <-done:
				t.Fatalf("run-local.sh exited (%v) before printing its calls\nstderr:\n%s", err, stderr)
			case <-time.After(time.Minute):
				t.Fatalf("run-local.sh printed no calls within a minute\nstderr:\n%s", stderr)
			}

			req, _ := http.NewRequest(http.MethodGet, "http://"+ports[2]+"/v1/auth", nil)
			req.SetBasicAuth("opentact@callify.io", "12345678")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET /v1/auth with the demo account: %d, want 200", resp.StatusCode)
			}
			walkthroughSearch(t, printed)
			probe, err := http.Get("http://" + ports[3] + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			probe.Body.Close()
			if probe.StatusCode != http.StatusOK {
				t.Errorf("GET /healthz on the admin address: %d, want 200", probe.StatusCode)
			}

			if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("run-local.sh after SIGINT to its process group: %v, want exit status 0\nstderr:\n%s", err, stderr)
				}
			case <-time.After(time.Minute):
				t.Fatalf("run-local.sh still runs a minute after SIGINT\nstderr:\n%s", stderr)
			}
			if err := syscall.Kill(-cmd.Process.Pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Errorf("processes left in the script's process group (kill -0: %v)", err)
			}
			if strings.Contains(stderr.String(), "second signal") {
				t.Errorf("the facade was signalled twice, so it did not drain:\n%s", stderr)
			}
			assertRefused(t, ports...)
		})
	}
}

// walkthroughSearch runs the first call of the printed walk-through of
// numbers and SMS, as a reader would paste it: the search of Washington's
// numbers answers a page of three of them.
func walkthroughSearch(t *testing.T, printed []string) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Logf("no curl, so the walk-through's first call is not run: %v", err)
		return
	}
	i := slices.IndexFunc(printed, func(line string) bool { return strings.HasPrefix(line, "Numbers and SMS") })
	if i < 0 {
		t.Fatalf("run-local.sh printed no walk-through of numbers and SMS:\n%s", strings.Join(printed, ""))
	}
	j := slices.IndexFunc(printed[i:], func(line string) bool { return strings.HasPrefix(line, "  curl ") })
	if j < 0 || !strings.Contains(printed[i+j], "/v1/numbers:search") {
		t.Fatalf("the walk-through does not begin with a search of numbers:\n%s", strings.Join(printed[i:], ""))
	}
	out, err := exec.Command("bash", "-c", printed[i+j]).Output()
	if err != nil {
		t.Fatalf("%s: %v", printed[i+j], err)
	}
	var page struct {
		Take, Total int
		Data        []struct{ Tn string }
	}
	if err := json.Unmarshal(out, &page); err != nil || page.Take != 3 || len(page.Data) != 3 || page.Total < 3 || !strings.HasPrefix(page.Data[0].Tn, "1202") {
		t.Errorf("%s answered %s (%v), want three numbers of 202", printed[i+j], out, err)
	}
}

// skipTo reads r up to a line holding s, keeping the lines read in
// *lines, closes found then, and returns r for the rest.
func skipTo(r io.Reader, s string, found chan<- struct{}, lines *[]string) io.Reader {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		*lines = append(*lines, line)
		if strings.Contains(line, s) {
			close(found)
			return br
		}
		if err != nil {
			return br
		}
	}
}

// assertRefused fails the test for each of addrs that still accepts
// connections.
func assertRefused(t *testing.T, addrs ...string) {
	t.Helper()
	for _, addr := range addrs {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after run-local.sh stopped", addr)
		}
	}
}
