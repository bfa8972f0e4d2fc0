package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

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
	out   *lockedBuffer // everything it wrote, stdout and stderr
}

func start(t *testing.T, name string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, name), args...)
	out := &lockedBuffer{}
	cmd.Stdout = out
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, lines: make(chan map[string]any, 100), done: make(chan error, 1), out: out}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			out.writeLine(sc.Bytes())
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
	sbAddr := sandbox.waitLog(t, "sandbox serving")["addr"].(string)

	facade := start(t, "opentact-facade", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0",
		"--upstream", "http://"+sbAddr, "--log-level", "debug", "--debug-addr", "127.0.0.1:0")
	debugAddr := facade.waitLog(t, "profiler serving")["debug_addr"].(string)
	serving := facade.waitLog(t, "serving")
	grpcAddr, httpAddr, adminAddr := serving["grpc_addr"].(string), serving["http_addr"].(string), serving["admin_addr"].(string)

	// The probes and the metrics answer on the admin port, and only there.
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if code, err := httpStatus(http.DefaultClient, "http://"+adminAddr+path); err != nil || code != http.StatusOK {
			t.Errorf("%s on --admin-addr: %d, %v; want 200", path, code, err)
		}
		if code, err := httpStatus(http.DefaultClient, "http://"+httpAddr+path); err != nil || code != http.StatusNotFound {
			t.Errorf("%s on the REST port: %d, %v; want 404", path, code, err)
		}
	}

	// The profiler answers on its own port, and only there.
	if code, err := httpStatus(http.DefaultClient, "http://"+debugAddr+"/debug/pprof/goroutine?debug=1"); err != nil || code != http.StatusOK {
		t.Errorf("profiler on --debug-addr: %d, %v; want 200", code, err)
	}
	if code, err := httpStatus(http.DefaultClient, "http://"+httpAddr+"/debug/pprof/goroutine?debug=1"); err != nil || code != http.StatusNotFound {
		t.Errorf("profiler on the REST port: %d, %v; want 404", code, err)
	}

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
	if out, code := run("--upstream", "http://api.opentact.org", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"); code != 1 || !strings.Contains(out, "plain http") {
		t.Errorf("plain-http public upstream: exit %d, %q; want exit 1 explaining why", code, out)
	}
	// A port in use is a clear start-up failure, not a hang.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if out, code := run("--grpc-addr", l.Addr().String(), "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"); code != 1 || !strings.Contains(out, "gRPC listener") {
		t.Errorf("port in use: exit %d, %q", code, out)
	}
	if out, code := run("--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", l.Addr().String()); code != 1 || !strings.Contains(out, "admin listener") {
		t.Errorf("admin port in use: exit %d, %q", code, out)
	}
}

// TestRunScript runs what `make run` runs, on free ports, and checks that
// the calls it prints answer.
func TestRunScript(t *testing.T) {
	t.Parallel()
	ports := freeAddrs(t, 4)
	cmd := exec.Command("../../scripts/run-local.sh")
	cmd.Env = append(os.Environ(), "BIN="+binDir, "SANDBOX_ADDR="+ports[0], "GRPC_ADDR="+ports[1], "HTTP_ADDR="+ports[2], "ADMIN_ADDR="+ports[3])
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
		case curl == "" && strings.HasPrefix(line, "curl "):
			curl = line
		case grpcurl == "" && strings.Contains(line, " grpcurl "):
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

	// Ctrl-C: SIGINT to the process group (TestRunScriptCtrlC has more).
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("run-local.sh after Ctrl-C: %v, want exit 0", err)
	}
	assertRefused(t, ports...)
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

// lockedBuffer collects a process's output; safe for concurrent use.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) writeLine(line []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(line)
	b.buf.WriteByte('\n')
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// exited reports whether the process has exited, and how, without
// waiting.
func (p *process) exited() (bool, error) {
	select {
	case err := <-p.done:
		p.done <- err // for the next look and the cleanup
		return true, err
	default:
		return false, nil
	}
}

// waitExit waits at most d for the process to exit and returns its exit
// error (nil for exit code 0).
func (p *process) waitExit(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		return err
	case <-time.After(d):
		t.Fatalf("%s did not exit within %v", p.cmd.Path, d)
		return nil
	}
}

// waitRefused dials addr until a connection is refused, for at most
// bound, and returns when that was.
func waitRefused(t *testing.T, addr string, bound time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(bound)
	var last error
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			last = nil
		} else if errors.Is(err, syscall.ECONNREFUSED) {
			return time.Now()
		} else {
			last = err
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s still accepted connections %v after the shutdown delay (last error: %v)", addr, bound, last)
	return time.Time{}
}

// assertNoSecrets fails if out holds any of secrets, as is or in base64.
func assertNoSecrets(t *testing.T, out string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("the output holds the secret %q", s)
		}
		if b64 := base64.StdEncoding.EncodeToString([]byte(s)); strings.Contains(out, b64) {
			t.Errorf("the output holds the secret %q in base64", s)
		}
	}
}

// httpStatus GETs url and returns the status code.
func httpStatus(c *http.Client, url string) (int, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// authResult is what a GetAuth call, over gRPC or REST, ended with.
type authResult struct {
	email, token string
	err          error
}

// restGetAuth calls GET /v1/auth with an X-Auth-Token and extra headers.
func restGetAuth(c *http.Client, httpAddr, token string, header http.Header) authResult {
	req, err := http.NewRequest(http.MethodGet, "http://"+httpAddr+"/v1/auth", nil)
	if err != nil {
		return authResult{err: err}
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("X-Auth-Token", token)
	resp, err := c.Do(req)
	if err != nil {
		return authResult{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return authResult{err: err}
	}
	if resp.StatusCode != http.StatusOK {
		return authResult{err: fmt.Errorf("status %d: %s", resp.StatusCode, body)}
	}
	var out struct {
		User struct {
			Email string `json:"email"`
			Token string `json:"token"`
		} `json:"user"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return authResult{err: fmt.Errorf("%w: %s", err, body)}
	}
	return authResult{email: out.User.Email, token: out.User.Token}
}

// grpcGetAuth calls GetAuth with an x-auth-token within timeout.
func grpcGetAuth(conn *grpc.ClientConn, token string, timeout time.Duration) authResult {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "x-auth-token", token)
	resp, err := authv1.NewAuthServiceClient(conn).GetAuth(ctx, &authv1.GetAuthRequest{})
	return authResult{email: resp.GetUser().GetEmail(), token: resp.GetUser().GetToken(), err: err}
}

// healthStatus asks grpc.health.v1 on a new connection to grpcAddr about
// service ("" for the server as a whole).
func healthStatus(grpcAddr, service string) (healthpb.HealthCheckResponse_ServingStatus, error) {
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	return resp.GetStatus(), err
}

// TestSIGTERMDrainsSlowCall sends SIGTERM to the built facade while a gRPC
// and a REST call wait on a slow upstream: readiness goes false at once
// while the process keeps serving for --shutdown-delay, then both ports
// refuse new connections, the two calls still succeed, each with its own
// user, and the process exits 0 without logging a secret.
func TestSIGTERMDrainsSlowCall(t *testing.T) {
	t.Parallel()
	const (
		// The probes below must be made within the delay, on a loaded
		// machine too: the facade reads the wall clock.
		delay     = 2 * time.Second
		grpcToken = "grpc-caller-secret-7f3a9c41"
		restToken = "rest-caller-secret-1b8e2d57"
	)
	// Each token is a different user, so that a mixed-up answer shows.
	users := map[string]struct{ email, jwt string }{
		grpcToken: {"grpc-caller@example.com", "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyIjoiZ3JwYyJ9.Z3JwYy1zaWduYXR1cmU"},
		restToken: {"rest-caller@example.com", "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyIjoicmVzdCJ9.cmVzdC1zaWduYXR1cmU"},
	}
	arrived := make(chan string, 10)
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/rest/auth" {
			http.NotFound(w, r)
			return
		}
		tok := r.Header.Get("X-Auth-Token")
		select {
		case arrived <- tok:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		case <-time.After(20 * time.Second): // never hold the test for long
		}
		u, ok := users[tok]
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"success":false,"message":"unknown token"}`)
			return
		}
		body, _ := json.Marshal(map[string]any{"success": true, "payload": map[string]any{
			"uuid": "uuid-" + u.email, "email": u.email, "token": u.jwt, "role": "User",
			"account": map[string]any{"uuid": "acc-1", "name": "DENOVOLAB", "balance": 99.87895},
		}})
		_, _ = w.Write(body)
	}))
	t.Cleanup(up.Close)
	releaseOnce := sync.OnceFunc(func() { close(release) })
	t.Cleanup(releaseOnce) // before up.Close, even if the test fails early

	facade := start(t, "opentact-facade", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0",
		"--upstream", up.URL, "--shutdown-delay", delay.String(), "--shutdown-grace", "1m", "--log-level", "debug")
	serving := facade.waitLog(t, "serving")
	grpcAddr, httpAddr, adminAddr := serving["grpc_addr"].(string), serving["http_addr"].(string), serving["admin_addr"].(string)

	// Probes on new connections each time, so that each one also shows
	// whether the port still accepts.
	probes := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	t.Cleanup(probes.CloseIdleConnections)
	if code, err := httpStatus(probes, "http://"+adminAddr+"/readyz"); err != nil || code != http.StatusOK {
		t.Fatalf("/readyz before SIGTERM: %d, %v; want 200", code, err)
	}
	if st, err := healthStatus(grpcAddr, ""); err != nil || st != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("grpc.health.v1 before SIGTERM: %v, %v; want SERVING", st, err)
	}

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	restTr := &http.Transport{}
	t.Cleanup(restTr.CloseIdleConnections)
	restClient := &http.Client{Transport: restTr, Timeout: 20 * time.Second}

	grpcRes, restRes := make(chan authResult, 1), make(chan authResult, 1)
	go func() { grpcRes <- grpcGetAuth(conn, grpcToken, 20*time.Second) }()
	go func() { restRes <- restGetAuth(restClient, httpAddr, restToken, nil) }()
	seen := map[string]bool{}
	for len(seen) < 2 {
		select {
		case tok := <-arrived:
			seen[tok] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("the upstream saw %v; want both calls", seen)
		}
	}
	if !seen[grpcToken] || !seen[restToken] {
		t.Fatalf("the upstream saw %v; want the gRPC and the REST token", seen)
	}

	sigAt := time.Now()
	if err := facade.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	// During the delay: not ready, yet alive and still serving.
	for {
		code, err := httpStatus(probes, "http://"+adminAddr+"/readyz")
		if err != nil {
			t.Fatalf("/readyz %v after SIGTERM: %v; want 503 during the %v shutdown delay", time.Since(sigAt), err, delay)
		}
		if code == http.StatusServiceUnavailable {
			break
		}
		if code != http.StatusOK {
			t.Fatalf("/readyz %v after SIGTERM: %d; want 503", time.Since(sigAt), code)
		}
		time.Sleep(10 * time.Millisecond)
	}
	notReadyAfter := time.Since(sigAt)
	if code, err := httpStatus(probes, "http://"+adminAddr+"/healthz"); err != nil || code != http.StatusOK {
		t.Errorf("/healthz %v after SIGTERM: %d, %v; want 200 during the shutdown delay", time.Since(sigAt), code, err)
	}
	for _, svc := range []string{"", authv1.AuthService_ServiceDesc.ServiceName} {
		if st, err := healthStatus(grpcAddr, svc); err != nil || st != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("grpc.health.v1 %q %v after SIGTERM: %v, %v; want NOT_SERVING", svc, time.Since(sigAt), st, err)
		}
	}
	probesDoneAfter := time.Since(sigAt)

	// After the delay: new connections are refused on both ports, while
	// the calls in flight keep the process alive.
	grpcRefused := waitRefused(t, grpcAddr, delay+15*time.Second).Sub(sigAt)
	httpRefused := waitRefused(t, httpAddr, delay+15*time.Second).Sub(sigAt)
	for port, after := range map[string]time.Duration{"gRPC": grpcRefused, "HTTP": httpRefused} {
		if after < delay {
			t.Errorf("the %s port refused connections %v after SIGTERM, before the %v shutdown delay ended", port, after, delay)
		}
	}
	if ok, err := facade.exited(); ok {
		t.Fatalf("the facade exited (%v) while calls were in flight", err)
	}
	// Draining, the public ports closed: the probes still answer.
	if code, err := httpStatus(probes, "http://"+adminAddr+"/readyz"); err != nil || code != http.StatusServiceUnavailable {
		t.Errorf("/readyz while draining: %d, %v; want 503", code, err)
	}
	select {
	case r := <-grpcRes:
		t.Fatalf("the gRPC call ended before the upstream answered: %+v", r)
	case r := <-restRes:
		t.Fatalf("the REST call ended before the upstream answered: %+v", r)
	default:
	}

	releasedAt := time.Now()
	releaseOnce()
	for name, ch := range map[string]chan authResult{"gRPC": grpcRes, "REST": restRes} {
		token := grpcToken
		if name == "REST" {
			token = restToken
		}
		select {
		case r := <-ch:
			if r.err != nil {
				t.Errorf("%s call in flight during shutdown: %v", name, r.err)
			} else if r.email != users[token].email || r.token != users[token].jwt {
				t.Errorf("%s call: user %q with token %q; want %q", name, r.email, r.token, users[token].email)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the %s call did not end within 10s of the upstream answering", name)
		}
	}
	// The grace is a minute: exiting sooner is the calls' ending.
	if err := facade.waitExit(t, 30*time.Second); err != nil {
		t.Errorf("facade after SIGTERM: %v; want exit code 0", err)
	}
	t.Logf("after SIGTERM: /readyz 503 at %v, probes done at %v, gRPC port refused at %v, HTTP port refused at %v; exit %v after the upstream answered",
		notReadyAfter.Round(time.Millisecond), probesDoneAfter.Round(time.Millisecond),
		grpcRefused.Round(time.Millisecond), httpRefused.Round(time.Millisecond), time.Since(releasedAt).Round(time.Millisecond))

	out := facade.out.String()
	if !strings.Contains(out, `"msg":"shutting down"`) {
		t.Errorf("the output does not mention shutting down:\n%s", out)
	}
	assertNoSecrets(t, out, grpcToken, restToken, users[grpcToken].jwt, users[restToken].jwt)
}

// TestSIGTERMGraceCutsHungCall sends SIGTERM while a gRPC and a REST call
// wait on an upstream that never answers: after --shutdown-grace the calls
// end with a status (Unavailable; REST 503 FACADE_SHUTTING_DOWN, not a cut
// connection), the upstream sees its request go away, and the process
// exits 0 long before the calls' own 30s deadline.
func TestSIGTERMGraceCutsHungCall(t *testing.T) {
	t.Parallel()
	const (
		grace = 500 * time.Millisecond
		token = "hung-caller-secret-5c0d13e8"
	)
	arrived := make(chan struct{}, 10)
	gone := make(chan time.Time, 10) // when the upstream saw a request's client go away
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-r.Context().Done():
			select {
			case gone <- time.Now():
			default:
			}
		case <-time.After(20 * time.Second): // never hold the test for long
			w.WriteHeader(http.StatusGatewayTimeout)
		}
	}))
	t.Cleanup(up.Close)

	facade := start(t, "opentact-facade", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0",
		"--upstream", up.URL, "--shutdown-delay", "0s", "--shutdown-grace", grace.String(), "--log-level", "debug")
	serving := facade.waitLog(t, "serving")
	grpcAddr, httpAddr := serving["grpc_addr"].(string), serving["http_addr"].(string)

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	restTr := &http.Transport{}
	t.Cleanup(restTr.CloseIdleConnections)
	restClient := &http.Client{Transport: restTr, Timeout: 40 * time.Second}

	grpcRes, restRes := make(chan authResult, 1), make(chan authResult, 1)
	// Two tokens: identical calls in flight together would share one
	// upstream request.
	go func() { grpcRes <- grpcGetAuth(conn, token+"-grpc", 30*time.Second) }()
	go func() {
		restRes <- restGetAuth(restClient, httpAddr, token+"-rest", http.Header{"Grpc-Timeout": {"30S"}})
	}()
	for range 2 {
		select {
		case <-arrived:
		case <-time.After(10 * time.Second):
			t.Fatal("the upstream did not see both calls")
		}
	}

	sigAt := time.Now()
	if err := facade.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Not the grace ending the calls, their 30s deadlines would: 15s
	// tells the two apart.
	if err := facade.waitExit(t, 15*time.Second); err != nil {
		t.Errorf("facade after SIGTERM: %v; want exit code 0", err)
	}
	exitAfter := time.Since(sigAt)
	if exitAfter < grace {
		t.Errorf("the facade exited %v after SIGTERM, before the %v shutdown grace ended", exitAfter, grace)
	}

	select {
	case r := <-grpcRes:
		if code := status.Code(r.err); code != codes.Unavailable {
			t.Errorf("gRPC call cut by the shutdown: %v (code %v); want Unavailable", r.err, code)
		} else {
			t.Logf("gRPC call cut: %v", r.err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the gRPC call did not end within 15s of the facade exiting")
	}
	select {
	case r := <-restRes:
		if r.err == nil || !strings.Contains(r.err.Error(), "status 503") || !strings.Contains(r.err.Error(), "FACADE_SHUTTING_DOWN") {
			t.Errorf("REST call ended by the shutdown: %+v; want 503 FACADE_SHUTTING_DOWN", r)
		} else {
			t.Logf("REST call ended: %v", r.err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the REST call did not end within 15s of the facade exiting")
	}
	var goneAfter []time.Duration
	for range 2 {
		select {
		case at := <-gone:
			goneAfter = append(goneAfter, at.Sub(sigAt).Round(time.Millisecond))
		case <-time.After(15 * time.Second):
			t.Fatalf("the upstream saw %d of its 2 requests go away; want both", len(goneAfter))
		}
	}
	t.Logf("after SIGTERM: exit %v, upstream requests gone at %v", exitAfter.Round(time.Millisecond), goneAfter)

	out := facade.out.String()
	if !strings.Contains(out, `"msg":"shutting down"`) {
		t.Errorf("the output does not mention shutting down:\n%s", out)
	}
	assertNoSecrets(t, out, token)
}

// TestSecondSignalExitsAtOnce: a second SIGTERM or SIGINT during the
// shutdown grace exits at once, rather than waiting the grace out for
// calls that never end.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	t.Parallel()
	for _, second := range []os.Signal{syscall.SIGTERM, os.Interrupt} {
		t.Run(second.String(), func(t *testing.T) {
			t.Parallel()
			arrived := make(chan struct{}, 1)
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case arrived <- struct{}{}:
				default:
				}
				select {
				case <-r.Context().Done():
				case <-time.After(20 * time.Second):
				}
			}))
			t.Cleanup(up.Close)
			facade := start(t, "opentact-facade", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0",
				"--upstream", up.URL, "--shutdown-grace", "30s")
			serving := facade.waitLog(t, "serving")
			conn, err := grpc.NewClient(serving["grpc_addr"].(string), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			go grpcGetAuth(conn, "held-call", 25*time.Second)
			select {
			case <-arrived:
			case <-time.After(10 * time.Second):
				t.Fatal("the call did not reach the upstream")
			}
			if err := facade.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			facade.waitLog(t, "shutting down")
			sigAt := time.Now()
			if err := facade.cmd.Process.Signal(second); err != nil {
				t.Fatal(err)
			}
			// Not at once, the 30s grace would end it: 15s tells them apart.
			err = facade.waitExit(t, 15*time.Second)
			if exit := (*exec.ExitError)(nil); !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Errorf("after a second %v: %v, want exit code 1", second, err)
			}
			t.Logf("exited %v after the second signal, of a 30s grace", time.Since(sigAt).Round(time.Millisecond))
			if !strings.Contains(facade.out.String(), "second signal") {
				t.Errorf("the output does not say why it exited:\n%s", facade.out.String())
			}
		})
	}
}
