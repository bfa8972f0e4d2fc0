package main_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
)

// binDir holds opentact-facade and opentact-sandbox, built once by TestMain.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "opentact-bin-")
	if err != nil {
		panic(err)
	}
	build := exec.Command("go", "build", "-o", dir+"/",
		"github.com/opentact-facade/opentact-facade/cmd/opentact-facade",
		"github.com/opentact-facade/opentact-facade/cmd/opentact-sandbox")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the binaries:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

const demoBasic = "Basic b3BlbnRhY3RAY2FsbGlmeS5pbzoxMjM0NTY3OA==" // the documented example header

// process is a started binary whose JSON log lines are read as they come.
type process struct {
	cmd   *exec.Cmd
	lines chan map[string]any
	done  chan error
}

func start(t *testing.T, name string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, name), args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, lines: make(chan map[string]any, 100), done: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				select {
				case p.lines <- m:
				default:
				}
			}
		}
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}

// waitLog returns the first log line whose msg is msg.
func (p *process) waitLog(t *testing.T, msg string) map[string]any {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l := <-p.lines:
			if l["msg"] == msg {
				return l
			}
		case err := <-p.done:
			t.Fatalf("%s exited (%v) before logging %q", p.cmd.Path, err, msg)
		case <-timeout:
			t.Fatalf("%s did not log %q", p.cmd.Path, msg)
		}
	}
}

// stop sends sig and returns the exit error (nil for exit code 0).
func (p *process) stop(t *testing.T, sig os.Signal) error {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not exit after %v", p.cmd.Path, sig)
		return nil
	}
}

// TestBinariesEndToEnd runs the built sandbox and facade as a user would,
// calls GetAuth over gRPC and REST, and stops both with a signal.
func TestBinariesEndToEnd(t *testing.T) {
	t.Parallel()
	sandbox := start(t, "opentact-sandbox", "--addr", "127.0.0.1:0")
	sbAddr := sandbox.waitLog(t, "sandbox serving GET /rest/auth")["addr"].(string)

	facade := start(t, "opentact-facade", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--upstream", "http://"+sbAddr, "--log-level", "debug")
	serving := facade.waitLog(t, "serving")
	grpcAddr, httpAddr := serving["grpc_addr"].(string), serving["http_addr"].(string)

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", demoBasic)
	resp, err := authv1.NewAuthServiceClient(conn).GetAuth(ctx, &authv1.GetAuthRequest{})
	if err != nil {
		t.Fatalf("gRPC GetAuth: %v", err)
	}
	if resp.GetUser().GetEmail() != "opentact@callify.io" {
		t.Errorf("gRPC user %q, want the demo user", resp.GetUser().GetEmail())
	}

	req, _ := http.NewRequest(http.MethodGet, "http://"+httpAddr+"/v1/auth", nil)
	req.SetBasicAuth("opentact@callify.io", "12345678")
	hresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(hresp.Body)
	hresp.Body.Close()
	if hresp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"email":"opentact@callify.io"`) {
		t.Errorf("REST: %d %s", hresp.StatusCode, body)
	}

	if err := facade.stop(t, syscall.SIGTERM); err != nil {
		t.Errorf("facade after SIGTERM: %v, want exit code 0", err)
	}
	if err := sandbox.stop(t, os.Interrupt); err != nil {
		t.Errorf("sandbox after SIGINT: %v, want exit code 0", err)
	}
}

func TestFacadeCommandLine(t *testing.T) {
	t.Parallel()
	run := func(args ...string) (string, int) {
		out, err := exec.Command(filepath.Join(binDir, "opentact-facade"), args...).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	if out, code := run("--version"); code != 0 || !regexp.MustCompile(`^opentact-facade \S+.* go1\.\d+`).MatchString(out) {
		t.Errorf("--version: exit %d, %q", code, out)
	}
	if out, code := run("-h"); code != 0 || !strings.Contains(out, "OPENTACT_BASE_URL") {
		t.Errorf("-h: exit %d, %q", code, out)
	}
	if out, code := run("--upstream-timeout=soon"); code != 2 || !strings.Contains(out, "upstream-timeout") {
		t.Errorf("bad flag: exit %d, %q; want exit 2 naming the flag", code, out)
	}
	if out, code := run("--upstream", "http://api.opentact.org", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"); code != 1 || !strings.Contains(out, "plain http") {
		t.Errorf("plain-http public upstream: exit %d, %q; want exit 1 explaining why", code, out)
	}
	// A port in use is a clear start-up failure, not a hang.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if out, code := run("--grpc-addr", l.Addr().String(), "--http-addr", "127.0.0.1:0"); code != 1 || !strings.Contains(out, "gRPC listener") {
		t.Errorf("port in use: exit %d, %q", code, out)
	}
}

// TestRunScript runs what `make run` runs, on free ports, and checks that
// the calls it prints answer.
func TestRunScript(t *testing.T) {
	t.Parallel()
	ports := freeAddrs(t, 3)
	cmd := exec.Command("../../scripts/run-local.sh")
	cmd.Env = append(os.Environ(), "BIN="+binDir, "SANDBOX_ADDR="+ports[0], "GRPC_ADDR="+ports[1], "HTTP_ADDR="+ports[2])
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })

	var curl, grpcurl string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && (curl == "" || grpcurl == "") {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "curl "):
			curl = line
		case strings.Contains(line, " grpcurl "):
			grpcurl = line
		}
	}
	if !strings.Contains(grpcurl, "authorization: "+demoBasic) || !strings.Contains(grpcurl, ports[1]+" opentact.auth.v1.AuthService/GetAuth") {
		t.Fatalf("printed grpcurl command %q does not call GetAuth on %s with the demo credentials", grpcurl, ports[1])
	}
	if !strings.Contains(curl, "-u opentact@callify.io:12345678 http://"+ports[2]+"/v1/auth") {
		t.Fatalf("printed curl command %q does not call %s/v1/auth with the demo credentials", curl, ports[2])
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()

	// The printed grpcurl command itself, as a newcomer would paste it.
	paste := exec.Command("bash", "-c", grpcurl)
	paste.Dir = "../.."
	out, err := paste.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"email": "opentact@callify.io"`) {
		t.Errorf("the printed grpcurl command failed (%v):\n%s", err, out)
	}

	resp, err := http.Get("http://" + ports[2] + "/v1/auth")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("REST without credentials: %d, want 401", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+ports[2]+"/v1/auth", nil)
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("opentact@callify.io:12345678")))
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("REST with the demo credentials: %d, want 200", resp.StatusCode)
	}

	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("run-local.sh after Ctrl-C: %v, want exit 0", err)
	}
	for _, addr := range ports {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after run-local.sh stopped", addr)
		}
	}
}

func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs
}
