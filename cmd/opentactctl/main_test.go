package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/sandbox"
	"github.com/opentact-facade/opentact-facade/internal/server"
	"github.com/opentact-facade/opentact-facade/internal/testpki"
)

// binDir holds the command as built by builtBinary, for the whole run.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "opentactctl-test")
	if err != nil {
		panic(err)
	}
	binDir = dir
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { _ = os.RemoveAll(dir) }))
}

var (
	buildOnce sync.Once
	buildErr  error
)

// builtBinary builds the command once for all the tests that run it as a
// process, and returns its path.
func builtBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(binDir, "opentactctl")
	buildOnce.Do(func() {
		const pkg = "github.com/opentact-facade/opentact-facade/internal/version"
		build := exec.Command("go", "build", "-ldflags", "-X "+pkg+".Version=v9.8.7 -X "+pkg+".Commit=abc123", "-o", bin, ".")
		if out, err := build.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return bin
}

const (
	demoUUID     = "0116f6d1-1280-44b2-9134-da48509ec575"
	hiddenToken  = "[hidden: use --show-token]"
	wrongPass    = "not-the-Password-9431"
	secretInFlag = "flag-Secret-5521"
)

// stack is a sandbox behind a facade, both on loopback, for one test.
type stack struct {
	addr     string       // the facade's gRPC address
	rest     string       // the facade's REST address
	upstream atomic.Int64 // requests the sandbox saw
}

// startStack runs the sandbox (counting its requests) and a facade in
// front of it until the test ends; tlsFiles, when set, turns on TLS.
func startStack(t *testing.T, tlsFiles *server.TLSFiles) *stack {
	t.Helper()
	st := &stack{}
	sb, err := sandbox.New(sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st.upstream.Add(1)
		sb.ServeHTTP(w, r)
	}))
	t.Cleanup(up.Close)
	st.addr, st.rest = startFacade(t, up.URL, tlsFiles)
	return st
}

// startFacade runs a facade in front of the Opentact at upstream until
// the test ends, and returns its gRPC and REST addresses; tlsFiles, when
// set, turns on TLS.
func startFacade(t *testing.T, upstream string, tlsFiles *server.TLSFiles) (grpcAddr, restAddr string) {
	t.Helper()
	opts := server.Options{
		GRPCAddr:      "127.0.0.1:0",
		HTTPAddr:      "127.0.0.1:0",
		Upstream:      upstream,
		ShutdownGrace: 5 * time.Second,
		Logger:        slog.New(slog.DiscardHandler),
	}
	if tlsFiles != nil {
		opts.TLS = *tlsFiles
	}
	s, err := server.New(opts)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s.GRPCAddr().String(), s.HTTPAddr().String()
}

// result is what one run of the command did.
type result struct {
	code           int
	stdout, stderr string
}

// cli runs the command in-process with env as its whole environment and
// stdin as its standard input.
func cli(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	lookupEnv := func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
	code := run(context.Background(), args, lookupEnv, strings.NewReader(stdin), &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func (r result) wantCode(t *testing.T, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
}

// user decodes the printed answer and checks it is the demo account's.
func (r result) user(t *testing.T) map[string]any {
	t.Helper()
	r.wantCode(t, exitOK)
	r.wantRegularJSON(t)
	var resp struct {
		User map[string]any `json:"user"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &resp); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, r.stdout)
	}
	u := resp.User
	if u["email"] != sandbox.DemoEmail || u["uuid"] != demoUUID {
		t.Fatalf("printed user %v, want %s (%s)", u, sandbox.DemoEmail, demoUUID)
	}
	// Proto names, as Opentact spells them, not lowerCamelCase.
	if u["first_name"] != "First Name" || u["wss_online"] != true || u["firstName"] != nil {
		t.Errorf("printed user does not use proto field names: %s", r.stdout)
	}
	if acc, _ := u["account"].(map[string]any); acc["balance"] != "99.87895" || acc["name"] != "DENOVOLAB" {
		t.Errorf("printed account %v", u["account"])
	}
	if r.stderr != "" {
		t.Errorf("stderr on success: %s", r.stderr)
	}
	return u
}

// wantNotShown checks that no secret appears in the output as a word of
// its own (the demo password 12345678 is part of the demo phone number).
func (r result) wantNotShown(t *testing.T, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		re := regexp.MustCompile(`(^|[^0-9A-Za-z])` + regexp.QuoteMeta(s) + `([^0-9A-Za-z]|$)`)
		if re.MatchString(r.stdout) || re.MatchString(r.stderr) {
			t.Errorf("the output shows %q\nstdout: %s\nstderr: %s", s, r.stdout, r.stderr)
		}
	}
}

// wantRegularJSON checks that stdout is JSON laid out as encoding/json
// indents it by two spaces: one space after each colon, never two, as
// protojson's own layout may have.
func (r result) wantRegularJSON(t *testing.T) {
	t.Helper()
	var compact, regular bytes.Buffer
	if err := json.Compact(&compact, []byte(r.stdout)); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, r.stdout)
	}
	if err := json.Indent(&regular, compact.Bytes(), "", "  "); err != nil {
		t.Fatal(err)
	}
	if r.stdout != regular.String()+"\n" {
		t.Errorf("stdout is not laid out regularly:\n%s\nwant:\n%s", r.stdout, regular.String())
	}
}

func (r result) wantStderr(t *testing.T, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(r.stderr, p) {
			t.Errorf("stderr does not mention %q: %s", p, r.stderr)
		}
	}
}

var demoEnv = map[string]string{"OPENTACT_PASSWORD": sandbox.DemoPassword}

func TestBasicWithPasswordFromEnv(t *testing.T) {
	t.Parallel()
	st := startStack(t, nil)

	r := cli(t, demoEnv, "", "auth", "--plaintext", "--addr", st.addr, "--email", sandbox.DemoEmail)
	u := r.user(t)
	if u["token"] != hiddenToken {
		t.Errorf("token printed as %q without --show-token, want %q", u["token"], hiddenToken)
	}
	if strings.Contains(r.stdout, "eyJ") {
		t.Errorf("stdout holds something shaped like a JWT without --show-token:\n%s", r.stdout)
	}
	r.wantNotShown(t, sandbox.DemoPassword)

	// The address and the e-mail from the environment too.
	env := map[string]string{"OPENTACT_PASSWORD": sandbox.DemoPassword, "OPENTACT_EMAIL": sandbox.DemoEmail, "OPENTACT_FACADE_ADDR": st.addr}
	cli(t, env, "", "auth", "--plaintext").user(t)

	// Flags win over the environment.
	env["OPENTACT_EMAIL"] = "nobody@example.com"
	env["OPENTACT_FACADE_ADDR"] = "127.0.0.1:1"
	cli(t, env, "", "auth", "--plaintext", "--addr", st.addr, "--email", sandbox.DemoEmail).user(t)
}

func TestShowTokenGivesAJWTTheSandboxAccepts(t *testing.T) {
	t.Parallel()
	st := startStack(t, nil)
	u := cli(t, demoEnv, "", "auth", "--plaintext", "--addr", st.addr, "--email", sandbox.DemoEmail, "--show-token").user(t)
	jwt, _ := u["token"].(string)
	if strings.Count(jwt, ".") != 2 || !strings.HasPrefix(jwt, "eyJ") {
		t.Fatalf("--show-token printed token %q, want a JWT", jwt)
	}

	// Fed back, on standard input and from the environment.
	u = cli(t, nil, jwt+"\n", "auth", "--plaintext", "--addr", st.addr, "--kind", "token", "--secret-stdin").user(t)
	if u["token"] != hiddenToken {
		t.Errorf("token printed as %q without --show-token", u["token"])
	}
	cli(t, map[string]string{"OPENTACT_SECRET": jwt}, "", "auth", "--plaintext", "--addr", st.addr, "--kind", "token").user(t)
}

func TestPasswordFromStdin(t *testing.T) {
	t.Parallel()
	st := startStack(t, nil)
	for name, stdin := range map[string]string{
		"LF":                  sandbox.DemoPassword + "\n",
		"CRLF":                sandbox.DemoPassword + "\r\n",
		"no newline":          sandbox.DemoPassword,
		"only the first line": sandbox.DemoPassword + "\nsecond line\n",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := cli(t, nil, stdin, "auth", "--plaintext", "--addr", st.addr, "--email", sandbox.DemoEmail, "--secret-stdin")
			r.user(t)
			r.wantNotShown(t, sandbox.DemoPassword)
		})
	}

	t.Run("stdin wins over the environment", func(t *testing.T) {
		t.Parallel()
		env := map[string]string{"OPENTACT_PASSWORD": wrongPass}
		cli(t, env, sandbox.DemoPassword+"\n", "auth", "--plaintext", "--addr", st.addr, "--email", sandbox.DemoEmail, "--secret-stdin").user(t)
	})
}

func TestEveryKindWithSecretFromEnv(t *testing.T) {
	t.Parallel()
	st := startStack(t, nil)
	jwt := cli(t, demoEnv, "", "auth", "--plaintext", "--addr", st.addr, "--email", sandbox.DemoEmail, "--show-token").user(t)["token"].(string)
	for kind, secret := range map[string]string{
		"bearer":   sandbox.DemoAPIToken,
		"token":    jwt,
		"google":   sandbox.DemoGoogleToken,
		"facebook": sandbox.DemoFacebookToken,
		"ha1b":     sandbox.DemoHA1B,
	} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			r := cli(t, map[string]string{"OPENTACT_SECRET": secret}, "", "auth", "--plaintext", "--addr", st.addr, "--kind", kind)
			r.user(t)
			r.wantNotShown(t, secret)
			cli(t, nil, secret+"\n", "auth", "--plaintext", "--addr", st.addr, "--kind", kind, "--secret-stdin").user(t)
		})
	}
	t.Run("basic", func(t *testing.T) {
		t.Parallel()
		cli(t, demoEnv, "", "auth", "--plaintext", "--addr", st.addr, "--kind", "basic", "--email", sandbox.DemoEmail).user(t)
	})
	t.Run("token with OPENTACT_EMAIL set", func(t *testing.T) {
		// OPENTACT_EMAIL exported for Basic calls must not get in the way
		// of a token call that names no --email.
		t.Parallel()
		env := map[string]string{"OPENTACT_SECRET": jwt, "OPENTACT_EMAIL": sandbox.DemoEmail}
		cli(t, env, "", "auth", "--plaintext", "--addr", st.addr, "--kind", "token").user(t)
	})
}

func TestWrongPassword(t *testing.T) {
	t.Parallel()
	st := startStack(t, nil)
	for name, r := range map[string]result{
		"env":   cli(t, map[string]string{"OPENTACT_PASSWORD": wrongPass}, "", "auth", "--plaintext", "--addr", st.addr, "--email", sandbox.DemoEmail),
		"stdin": cli(t, nil, wrongPass+"\n", "auth", "--plaintext", "--addr", st.addr, "--email", sandbox.DemoEmail, "--secret-stdin"),
	} {
		t.Run(name, func(t *testing.T) {
			r.wantCode(t, exitFailed)
			r.wantStderr(t, "Unauthenticated", "UNAUTHORIZED")
			r.wantNotShown(t, wrongPass)
			if r.stdout != "" {
				t.Errorf("stdout on failure: %s", r.stdout)
			}
		})
	}
	if n := st.upstream.Load(); n != 2 {
		t.Errorf("the upstream saw %d requests, want 2", n)
	}

	t.Run("wrong token", func(t *testing.T) {
		r := cli(t, map[string]string{"OPENTACT_SECRET": "wrong-" + sandbox.DemoAPIToken}, "", "auth", "--plaintext", "--addr", st.addr, "--kind", "bearer")
		r.wantCode(t, exitFailed)
		r.wantStderr(t, "Unauthenticated", "UNAUTHORIZED")
		r.wantNotShown(t, "wrong-"+sandbox.DemoAPIToken)
	})
}

// TestNoPasswordFlag: a secret given on the command line is refused, and
// not repeated on stderr.
func TestNoPasswordFlag(t *testing.T) {
	t.Parallel()
	st := startStack(t, nil)
	for _, args := range [][]string{
		{"--password", secretInFlag},
		{"--password=" + secretInFlag},
		{"-password=" + secretInFlag},
		{"--secret", secretInFlag},
		{"--secret=" + secretInFlag},
		{"--token=" + secretInFlag},
		{"-p", secretInFlag},
		{secretInFlag}, // a stray argument
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			full := append([]string{"auth", "--plaintext", "--addr", st.addr, "--email", sandbox.DemoEmail}, args...)
			r := cli(t, demoEnv, "", full...)
			r.wantCode(t, exitUsage)
			r.wantNotShown(t, secretInFlag)
			if r.stdout != "" {
				t.Errorf("stdout: %s", r.stdout)
			}
		})
	}
	if n := st.upstream.Load(); n != 0 {
		t.Errorf("the upstream saw %d requests, want 0", n)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	st := startStack(t, nil)
	base := []string{"auth", "--plaintext", "--addr", st.addr}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		stdin   string
		args    []string
		mention []string
	}{
		{"no password", nil, "", append(base, "--email", sandbox.DemoEmail), []string{"no password", "OPENTACT_PASSWORD", "--secret-stdin"}},
		{"empty OPENTACT_PASSWORD", map[string]string{"OPENTACT_PASSWORD": ""}, "", append(base, "--email", sandbox.DemoEmail), []string{"no password"}},
		{"empty stdin", nil, "", append(base, "--email", sandbox.DemoEmail, "--secret-stdin"), []string{"no password"}},
		{"empty first line on stdin", nil, "\n" + sandbox.DemoPassword + "\n", append(base, "--email", sandbox.DemoEmail, "--secret-stdin"), []string{"no password"}},
		{"OPENTACT_SECRET is not a password", map[string]string{"OPENTACT_SECRET": sandbox.DemoPassword}, "", append(base, "--email", sandbox.DemoEmail), []string{"no password"}},
		{"no e-mail", demoEnv, "", base, []string{"--email", "OPENTACT_EMAIL"}},
		{"no token", nil, "", append(base, "--kind", "bearer"), []string{"OPENTACT_SECRET"}},
		{"OPENTACT_PASSWORD is not a token", demoEnv, "", append(base, "--kind", "bearer"), []string{"OPENTACT_SECRET"}},
		{"unknown kind", map[string]string{"OPENTACT_SECRET": "x"}, "", append(base, "--kind", "jwt"), []string{"unknown --kind", "jwt"}},
		{"--email with --kind token", map[string]string{"OPENTACT_SECRET": "x"}, "", append(base, "--kind", "token", "--email", sandbox.DemoEmail), []string{"--email"}},
		{"--email with --kind bearer", map[string]string{"OPENTACT_SECRET": "x"}, "", append(base, "--kind", "bearer", "--email", sandbox.DemoEmail), []string{"--email"}},
		{"no subcommand", demoEnv, "", nil, []string{"Usage"}},
		{"unknown subcommand", demoEnv, "", []string{"login"}, []string{"Usage"}},
		{"unknown flag", demoEnv, "", append(base, "--email", sandbox.DemoEmail, "--bogus"), []string{"bogus"}},
		{"--cert without --key", demoEnv, "", []string{"auth", "--addr", st.addr, "--email", sandbox.DemoEmail, "--cert", "c.pem"}, []string{"--cert and --key"}},
		{"--cacert missing", demoEnv, "", []string{"auth", "--addr", st.addr, "--email", sandbox.DemoEmail, "--cacert", filepath.Join(t.TempDir(), "none.pem")}, []string{"--cacert"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := cli(t, tc.env, tc.stdin, tc.args...)
			r.wantCode(t, exitUsage)
			r.wantStderr(t, tc.mention...)
			if r.stdout != "" {
				t.Errorf("stdout: %s", r.stdout)
			}
		})
	}
	t.Run("help", func(t *testing.T) {
		t.Parallel()
		r := cli(t, nil, "", "auth", "-h")
		r.wantCode(t, exitOK)
		r.wantStderr(t, "Usage", "--secret-stdin", "OPENTACT_PASSWORD")
		if strings.Contains(r.stderr, "-password") {
			t.Errorf("the usage mentions a password flag:\n%s", r.stderr)
		}
	})
	t.Cleanup(func() {
		if n := st.upstream.Load(); n != 0 {
			t.Errorf("the upstream saw %d requests, want 0", n)
		}
	})
}

// TestInvalidSecret: a secret the client package refuses fails without
// reaching Opentact and without being printed.
func TestInvalidSecret(t *testing.T) {
	t.Parallel()
	st := startStack(t, nil)
	for name, secret := range map[string]string{
		"non-ASCII": "tökén-Secret-77",
		"9 KiB":     strings.Repeat("Z", 9<<10),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := cli(t, map[string]string{"OPENTACT_SECRET": secret}, "", "auth", "--plaintext", "--addr", st.addr, "--kind", "token")
			if r.code == exitOK {
				t.Fatalf("exit 0 with an invalid token: %s", r.stdout)
			}
			r.wantStderr(t, "Unauthenticated", "credential")
			r.wantNotShown(t, secret[len(secret)-8:])
		})
	}
	t.Run("email with ':'", func(t *testing.T) {
		t.Parallel()
		r := cli(t, demoEnv, "", "auth", "--plaintext", "--addr", st.addr, "--email", "a:b@example.com")
		if r.code == exitOK {
			t.Fatal("exit 0")
		}
		r.wantStderr(t, "Unauthenticated", "':'")
		r.wantNotShown(t, sandbox.DemoPassword)
	})
	t.Cleanup(func() {
		if n := st.upstream.Load(); n != 0 {
			t.Errorf("the upstream saw %d requests, want 0", n)
		}
	})
}

// TestTLSByDefault: without --plaintext the command speaks TLS, so it
// cannot talk to a plaintext facade and the password never leaves.
func TestTLSByDefault(t *testing.T) {
	t.Parallel()
	st := startStack(t, nil)
	// A deadline far beyond the test's: the handshake's failure ends the
	// call (Unavailable), not the deadline (DeadlineExceeded).
	r := cli(t, demoEnv, "", "auth", "--addr", st.addr, "--email", sandbox.DemoEmail, "--timeout", "1h")
	r.wantCode(t, exitFailed)
	r.wantStderr(t, "Unavailable", "TLS handshake", st.addr+" does not speak TLS", "add --plaintext")
	r.wantNotShown(t, sandbox.DemoPassword)
	if n := st.upstream.Load(); n != 0 {
		t.Errorf("the upstream saw %d requests, want 0", n)
	}
	// The REST port speaks plaintext too.
	r = cli(t, demoEnv, "", "auth", "--addr", st.rest, "--email", sandbox.DemoEmail, "--timeout", "1h")
	r.wantCode(t, exitFailed)
	r.wantStderr(t, "Unavailable", "add --plaintext")

	// Nothing listening: a quick failure too.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	_ = l.Close()
	r = cli(t, demoEnv, "", "auth", "--plaintext", "--addr", closed, "--email", sandbox.DemoEmail, "--timeout", "1h")
	r.wantCode(t, exitFailed)
	r.wantStderr(t, "Unavailable")
	// Nothing listening is no reason to suggest --plaintext.
	r = cli(t, demoEnv, "", "auth", "--addr", closed, "--email", sandbox.DemoEmail, "--timeout", "1h")
	r.wantCode(t, exitFailed)
	if strings.Contains(r.stderr, "--plaintext") {
		t.Errorf("nothing listening, and the error suggests --plaintext: %s", r.stderr)
	}
}

func TestTLSFacade(t *testing.T) {
	t.Parallel()
	pki := testpki.New(t)
	st := startStack(t, &server.TLSFiles{Cert: pki.ServerCert, Key: pki.ServerKey})

	cli(t, demoEnv, "", "auth", "--addr", st.addr, "--email", sandbox.DemoEmail, "--cacert", pki.ServerCA).user(t)
	cli(t, map[string]string{"OPENTACT_SECRET": sandbox.DemoAPIToken}, "", "auth", "--addr", st.addr, "--kind", "bearer", "--cacert", pki.ServerCA).user(t)

	// Not trusted without --cacert (the system roots do not know the
	// test CA), nor with another CA.
	for name, args := range map[string][]string{
		"system roots": nil,
		"another CA":   {"--cacert", pki.ClientCA},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := cli(t, demoEnv, "", append([]string{"auth", "--addr", st.addr, "--email", sandbox.DemoEmail}, args...)...)
			r.wantCode(t, exitFailed)
			r.wantStderr(t, "Unavailable", "certificate")
			if strings.Contains(r.stderr, "--plaintext") {
				t.Errorf("a TLS facade, and the error suggests --plaintext: %s", r.stderr)
			}
		})
	}
	// --plaintext against a TLS facade fails too.
	t.Run("plaintext", func(t *testing.T) {
		t.Parallel()
		r := cli(t, demoEnv, "", "auth", "--plaintext", "--addr", st.addr, "--email", sandbox.DemoEmail, "--timeout", "3s")
		if r.code != exitFailed {
			t.Fatalf("exit %d, want %d: %s", r.code, exitFailed, r.stderr)
		}
	})
}

func TestMutualTLSFacade(t *testing.T) {
	t.Parallel()
	pki := testpki.New(t)
	st := startStack(t, &server.TLSFiles{Cert: pki.ServerCert, Key: pki.ServerKey, ClientCA: pki.ClientCA})
	base := []string{"auth", "--addr", st.addr, "--email", sandbox.DemoEmail, "--cacert", pki.ServerCA}

	cli(t, demoEnv, "", append(base, "--cert", pki.ClientCert, "--key", pki.ClientKey)...).user(t)

	for name, extra := range map[string][]string{
		"no client certificate":        nil,
		"certificate of an unknown CA": {"--cert", pki.RogueCert, "--key", pki.RogueKey},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := cli(t, demoEnv, "", append(slices.Clone(base), extra...)...)
			r.wantCode(t, exitFailed)
			r.wantStderr(t, "Unavailable")
			r.wantNotShown(t, sandbox.DemoPassword)
		})
	}
	t.Run("key of another certificate", func(t *testing.T) {
		t.Parallel()
		r := cli(t, demoEnv, "", append(slices.Clone(base), "--cert", pki.ClientCert, "--key", pki.RogueKey)...)
		r.wantCode(t, exitUsage)
		r.wantStderr(t, "--cert/--key")
	})
}

// TestBinary builds the command and runs it as a process: main() passes
// the real environment and standard streams to run, and the password
// travels in the environment, never in the arguments.
func TestBinary(t *testing.T) {
	t.Parallel()
	bin := builtBinary(t)
	st := startStack(t, nil)

	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "OPENTACT_") })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cmd := exec.CommandContext(ctx, bin, "auth", "--plaintext", "--addr", st.addr, "--email", sandbox.DemoEmail)
	cmd.Env = append(slices.Clone(env), "OPENTACT_PASSWORD="+sandbox.DemoPassword)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %v\nstderr: %s", cmd.Args, err, stderr.String())
	}
	for _, a := range cmd.Args {
		if strings.Contains(a, sandbox.DemoPassword) {
			t.Errorf("the process's arguments hold the password: %q", cmd.Args)
		}
	}
	result{code: 0, stdout: stdout.String(), stderr: stderr.String()}.user(t)

	// The password on standard input.
	cmd = exec.CommandContext(ctx, bin, "auth", "--plaintext", "--addr", st.addr, "--email", sandbox.DemoEmail, "--secret-stdin")
	cmd.Env = env
	cmd.Stdin = strings.NewReader(sandbox.DemoPassword + "\n")
	stdout.Reset()
	stderr.Reset()
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %v\nstderr: %s", cmd.Args, err, stderr.String())
	}
	result{code: 0, stdout: stdout.String(), stderr: stderr.String()}.user(t)

	// --version, stamped as the Makefile stamps it.
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil || !strings.HasPrefix(string(out), "opentactctl v9.8.7 (abc123) go1.") {
		t.Errorf("--version: %v, %q; want the stamped version", err, out)
	}

	// Exit codes reach the shell: 1 for a failed call, 2 for usage.
	for want, c := range map[int]*exec.Cmd{
		exitFailed: exec.CommandContext(ctx, bin, "auth", "--plaintext", "--addr", st.addr, "--email", sandbox.DemoEmail),
		exitUsage:  exec.CommandContext(ctx, bin, "auth", "--plaintext", "--addr", st.addr, "--email", sandbox.DemoEmail, "--password", secretInFlag),
	} {
		c.Env = append(slices.Clone(env), "OPENTACT_PASSWORD="+wrongPass)
		out, err := c.CombinedOutput()
		code := -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != want {
			t.Errorf("%v: exit %d (%v), want %d\n%s", c.Args[1:], code, err, want, out)
		}
		if bytes.Contains(out, []byte(wrongPass)) || bytes.Contains(out, []byte(secretInFlag)) {
			t.Errorf("%v printed a secret:\n%s", c.Args[1:], out)
		}
	}
}

// tokenArgs is a token command against st with the demo account's Basic
// credentials (the password in demoEnv); extra follows the flags.
func tokenArgs(st *stack, sub string, extra ...string) []string {
	return append([]string{"token", sub, "--plaintext", "--addr", st.addr, "--email", sandbox.DemoEmail}, extra...)
}

var secretShape = regexp.MustCompile(`^[0-9A-Za-z]{48}\n$`)

// createToken runs token create and returns the secret it printed.
func createToken(t *testing.T, st *stack, name string, extra ...string) (string, result) {
	t.Helper()
	r := cli(t, demoEnv, "", tokenArgs(st, "create", append([]string{"--name", name}, extra...)...)...)
	r.wantCode(t, exitOK)
	if !secretShape.MatchString(r.stdout) {
		t.Fatalf("token create printed %q on stdout, want the secret alone on one line", r.stdout)
	}
	secret := strings.TrimSuffix(r.stdout, "\n")
	r.wantStderr(t, "created token", `name "`+name+`"`, "cannot be shown again")
	if strings.Contains(r.stderr, secret) {
		t.Errorf("token create printed the secret on stderr: %s", r.stderr)
	}
	return secret, r
}

// listed decodes the output of token list.
func listed(t *testing.T, r result) []map[string]any {
	t.Helper()
	r.wantCode(t, exitOK)
	r.wantRegularJSON(t)
	var resp struct {
		Tokens []map[string]any `json:"tokens"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &resp); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, r.stdout)
	}
	if resp.Tokens == nil {
		t.Fatalf("no tokens array in %s", r.stdout)
	}
	for _, tok := range resp.Tokens {
		if tok["token"] != hiddenSecret {
			t.Errorf("token list shows the secret as %v, want %q", tok["token"], hiddenSecret)
		}
	}
	if r.stderr != "" {
		t.Errorf("stderr on success: %s", r.stderr)
	}
	return resp.Tokens
}

// printedToken decodes the {"token": {...}} answer of update and delete.
func printedToken(t *testing.T, r result) map[string]any {
	t.Helper()
	r.wantCode(t, exitOK)
	r.wantRegularJSON(t)
	var resp struct {
		Token map[string]any `json:"token"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &resp); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, r.stdout)
	}
	if resp.Token["token"] != hiddenSecret {
		t.Errorf("the answer shows the secret as %v, want %q", resp.Token["token"], hiddenSecret)
	}
	return resp.Token
}

// wantBearer checks whether secret works as a Bearer token for auth.
func wantBearer(t *testing.T, st *stack, secret string, works bool) result {
	t.Helper()
	r := cli(t, map[string]string{"OPENTACT_SECRET": secret}, "", "auth", "--plaintext", "--addr", st.addr, "--kind", "bearer")
	if works {
		r.user(t)
	} else {
		r.wantCode(t, exitFailed)
		r.wantStderr(t, "Unauthenticated", "UNAUTHORIZED")
	}
	return r
}

// TestTokenLifecycle: create, list, use as Bearer, update and delete (from
// standard input and from the environment); the secret is printed by
// create alone.
func TestTokenLifecycle(t *testing.T) {
	t.Parallel()
	st := startStack(t, nil)
	var outputs []result // every output but create's stdout
	keep := func(r result) result { outputs = append(outputs, r); return r }

	secret, r := createToken(t, st, "demo", "--ttl", "3600")
	keep(result{stderr: r.stderr})

	toks := listed(t, keep(cli(t, demoEnv, "", tokenArgs(st, "list")...)))
	if len(toks) != 1 {
		t.Fatalf("token list: %d tokens, want 1", len(toks))
	}
	tok := toks[0]
	uuid, _ := tok["uuid"].(string)
	if !isUUID(uuid) || tok["name"] != "demo" || tok["ttl"] != float64(3600) || tok["expired_on"] == nil || tok["created_on"] == nil {
		t.Fatalf("listed token %v", tok)
	}
	created, _ := time.Parse(time.RFC3339, tok["created_on"].(string))
	if exp, _ := time.Parse(time.RFC3339, tok["expired_on"].(string)); exp.Sub(created) != time.Hour {
		t.Errorf("expired_on %v, want created_on %v + 1h", exp, created)
	}
	if !strings.Contains(r.stderr, uuid) {
		t.Errorf("token create did not name uuid %s on stderr: %s", uuid, r.stderr)
	}

	// It works as a Bearer token at once, from the environment and from
	// standard input.
	keep(wantBearer(t, st, secret, true))
	keep(cli(t, nil, secret+"\n", "auth", "--plaintext", "--addr", st.addr, "--kind", "bearer", "--secret-stdin")).user(t)

	// update sets only the flags given, with the uuid before or after
	// them.
	u := printedToken(t, keep(cli(t, demoEnv, "", "token", "update", uuid, "--plaintext", "--addr", st.addr, "--email", sandbox.DemoEmail, "--name", "renamed")))
	if u["uuid"] != uuid || u["name"] != "renamed" || u["ttl"] != float64(3600) {
		t.Errorf("after --name: %v", u)
	}
	u = printedToken(t, keep(cli(t, demoEnv, "", tokenArgs(st, "update", "--ttl", "7200", uuid)...)))
	if u["name"] != "renamed" || u["ttl"] != float64(7200) {
		t.Errorf("after --ttl: %v", u)
	}
	if toks := listed(t, keep(cli(t, demoEnv, "", tokenArgs(st, "list")...))); len(toks) != 1 || toks[0]["name"] != "renamed" || toks[0]["ttl"] != float64(7200) {
		t.Errorf("listed after the updates: %v", toks)
	}
	keep(wantBearer(t, st, secret, true))

	// delete from standard input (trimmed).
	d := printedToken(t, keep(cli(t, demoEnv, "  "+secret+" \r\n", tokenArgs(st, "delete")...)))
	if d["uuid"] != uuid {
		t.Errorf("delete printed %v, want token %s", d, uuid)
	}
	keep(wantBearer(t, st, secret, false))
	if toks := listed(t, keep(cli(t, demoEnv, "", tokenArgs(st, "list")...))); len(toks) != 0 {
		t.Errorf("listed after delete: %v", toks)
	}
	// Gone: deleting it again fails, without printing it.
	r = keep(cli(t, demoEnv, secret+"\n", tokenArgs(st, "delete")...))
	r.wantCode(t, exitFailed)
	r.wantStderr(t, "NotFound")

	// delete from the environment, which wins over standard input.
	second, r := createToken(t, st, "second")
	keep(result{stderr: r.stderr})
	keep(wantBearer(t, st, second, true))
	env := map[string]string{"OPENTACT_PASSWORD": sandbox.DemoPassword, "OPENTACT_TOKEN_TO_DELETE": second}
	printedToken(t, keep(cli(t, env, "not-a-token\n", tokenArgs(st, "delete")...)))
	keep(wantBearer(t, st, second, false))

	// With the password on standard input, the token to delete comes
	// from the environment.
	third, r := createToken(t, st, "third")
	keep(result{stderr: r.stderr})
	env = map[string]string{"OPENTACT_TOKEN_TO_DELETE": third}
	printedToken(t, keep(cli(t, env, sandbox.DemoPassword+"\n", tokenArgs(st, "delete", "--secret-stdin")...)))
	keep(wantBearer(t, st, third, false))

	for _, r := range outputs {
		r.wantNotShown(t, secret, second, third)
	}
}

func TestTokenCreateJSON(t *testing.T) {
	t.Parallel()
	st := startStack(t, nil)
	r := cli(t, demoEnv, "", tokenArgs(st, "create", "--name", "ci", "--json")...)
	r.wantCode(t, exitOK)
	var resp struct {
		Token map[string]any `json:"token"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &resp); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, r.stdout)
	}
	secret, _ := resp.Token["token"].(string)
	if !secretShape.MatchString(secret+"\n") || resp.Token["name"] != "ci" || !isUUID(resp.Token["uuid"].(string)) || resp.Token["expired_on"] == nil {
		t.Fatalf("token create --json printed %s", r.stdout)
	}
	// Opentact's default lifetime without --ttl: the sandbox's is 24 h.
	if resp.Token["ttl"] != float64(24*3600) {
		t.Errorf("ttl %v without --ttl", resp.Token["ttl"])
	}
	if r.stderr != "" {
		t.Errorf("stderr with --json: %s", r.stderr)
	}
	wantBearer(t, st, secret, true)
	// A token can manage the tokens too.
	toks := listed(t, cli(t, map[string]string{"OPENTACT_SECRET": secret}, "", "token", "list", "--plaintext", "--addr", st.addr, "--kind", "bearer"))
	if len(toks) != 1 || toks[0]["uuid"] != resp.Token["uuid"] {
		t.Errorf("listed with the token itself: %v", toks)
	}
}

func TestTokenDeleteAll(t *testing.T) {
	t.Parallel()
	st := startStack(t, nil)
	a, _ := createToken(t, st, "a")
	b, _ := createToken(t, st, "b")

	r := cli(t, demoEnv, "", tokenArgs(st, "delete-all")...)
	r.wantCode(t, exitUsage)
	r.wantStderr(t, "--yes")
	if len(listed(t, cli(t, demoEnv, "", tokenArgs(st, "list")...))) != 2 {
		t.Fatal("delete-all without --yes revoked tokens")
	}
	wantBearer(t, st, a, true)

	r = cli(t, demoEnv, "", tokenArgs(st, "delete-all", "--yes")...)
	r.wantCode(t, exitOK)
	if strings.TrimSpace(r.stdout) != "{}" || r.stderr != "" {
		t.Errorf("delete-all printed stdout %q, stderr %q", r.stdout, r.stderr)
	}
	r = cli(t, demoEnv, "", tokenArgs(st, "list")...)
	if toks := listed(t, r); len(toks) != 0 {
		t.Errorf("listed after delete-all: %v", toks)
	}
	if !strings.Contains(r.stdout, `"tokens": []`) {
		t.Errorf("an empty list printed as %s, want an empty tokens array", r.stdout)
	}
	wantBearer(t, st, a, false)
	wantBearer(t, st, b, false)
	// The accounts file's own API token is not Opentact's to revoke.
	wantBearer(t, st, sandbox.DemoAPIToken, true)
}

// TestTokenToDeleteNotAnArgument: the secret of the token to delete is
// refused on the command line, not repeated, and not revoked.
func TestTokenToDeleteNotAnArgument(t *testing.T) {
	t.Parallel()
	st := startStack(t, nil)
	secret, _ := createToken(t, st, "kept")
	before := st.upstream.Load()
	for _, tc := range []struct {
		name string
		args []string
		why  bool // the error says where the secret goes instead
	}{
		{"delete SECRET", tokenArgs(st, "delete", secret), true},
		{"delete -- SECRET", tokenArgs(st, "delete", "--", secret), true},
		{"delete SECRET, no flags", []string{"token", "delete", secret}, true},
		{"delete --token SECRET", tokenArgs(st, "delete", "--token", secret), false},
		{"delete --token=SECRET", tokenArgs(st, "delete", "--token="+secret), false},
		{"update SECRET", tokenArgs(st, "update", secret, "--name", "x"), false}, // the secret where the uuid goes
		{"create SECRET", tokenArgs(st, "create", "--name", "x", secret), false},
		{"list SECRET", tokenArgs(st, "list", secret), false},
		{"delete-all SECRET", tokenArgs(st, "delete-all", "--yes", secret), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The secret in the environment too: it must be refused, not
			// overridden.
			env := map[string]string{"OPENTACT_PASSWORD": sandbox.DemoPassword, "OPENTACT_TOKEN_TO_DELETE": secret}
			r := cli(t, env, "", tc.args...)
			r.wantCode(t, exitUsage)
			r.wantNotShown(t, secret)
			if r.stdout != "" {
				t.Errorf("stdout: %s", r.stdout)
			}
			if tc.why {
				r.wantStderr(t, "no argument", "OPENTACT_TOKEN_TO_DELETE", "standard input", "command line")
			}
		})
	}
	if n := st.upstream.Load() - before; n != 0 {
		t.Errorf("the upstream saw %d requests, want 0", n)
	}
	wantBearer(t, st, secret, true)
}

// TestTokenInvalidArgument: the facade's rules (a ttl of at least 60, a
// name) come back as INVALID_ARGUMENT with the fields named, and nothing
// reaches Opentact.
func TestTokenInvalidArgument(t *testing.T) {
	t.Parallel()
	st := startStack(t, nil)
	const someUUID = "6f1c3a52-0b7e-4c1d-9a8e-2f4b5c6d7e80"
	for name, tc := range map[string]struct {
		args  []string
		field string
	}{
		"create --ttl 59":   {tokenArgs(st, "create", "--name", "x", "--ttl", "59"), "ttl"},
		"create --ttl -1":   {tokenArgs(st, "create", "--name", "x", "--ttl", "-1"), "ttl"},
		"create --name ''":  {tokenArgs(st, "create", "--name", ""), "name"},
		"update --ttl 30":   {tokenArgs(st, "update", someUUID, "--ttl", "30"), "ttl"},
		"update --ttl 0":    {tokenArgs(st, "update", "--ttl", "0", someUUID), "ttl"},
		"create both wrong": {tokenArgs(st, "create", "--name", "", "--ttl", "1"), "name"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := cli(t, demoEnv, "", tc.args...)
			r.wantCode(t, exitFailed)
			r.wantStderr(t, "InvalidArgument", "INVALID_REQUEST", "\n  "+tc.field+": ")
			if r.stdout != "" {
				t.Errorf("stdout: %s", r.stdout)
			}
		})
	}
	t.Cleanup(func() {
		if n := st.upstream.Load(); n != 0 {
			t.Errorf("the upstream saw %d requests, want 0", n)
		}
	})
}

func TestTokenUsageErrors(t *testing.T) {
	t.Parallel()
	st := startStack(t, nil)
	const someUUID = "6f1c3a52-0b7e-4c1d-9a8e-2f4b5c6d7e80"
	withDelete := map[string]string{"OPENTACT_PASSWORD": sandbox.DemoPassword, "OPENTACT_TOKEN_TO_DELETE": "x"}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		stdin   string
		args    []string
		mention []string
	}{
		{"no token command", demoEnv, "", []string{"token"}, []string{"Usage", "create", "delete-all"}},
		{"unknown token command", demoEnv, "", []string{"token", "revoke"}, []string{"Usage"}},
		{"create without --name", demoEnv, "", tokenArgs(st, "create", "--ttl", "3600"), []string{"--name"}},
		{"create --ttl not a number", demoEnv, "", tokenArgs(st, "create", "--name", "x", "--ttl", "1h"), []string{"-ttl"}},
		{"create --ttl beyond int32", demoEnv, "", tokenArgs(st, "create", "--name", "x", "--ttl", "2147483648"), []string{"-ttl"}},
		{"create without credentials", nil, "", tokenArgs(st, "create", "--name", "x"), []string{"no password"}},
		{"list without e-mail", demoEnv, "", []string{"token", "list", "--plaintext", "--addr", st.addr}, []string{"--email"}},
		{"update without uuid", demoEnv, "", tokenArgs(st, "update", "--name", "x"), []string{"uuid"}},
		{"update with nothing to change", demoEnv, "", tokenArgs(st, "update", someUUID), []string{"--name", "--ttl"}},
		{"update with two uuids", demoEnv, "", tokenArgs(st, "update", someUUID, "--name", "x", someUUID), []string{"unexpected argument"}},
		{"update of a name", demoEnv, "", tokenArgs(st, "update", "demo", "--name", "x"), []string{"not a uuid"}},
		{"delete with --secret-stdin and no env", nil, sandbox.DemoPassword + "\n", tokenArgs(st, "delete", "--secret-stdin"), []string{"--secret-stdin", "OPENTACT_TOKEN_TO_DELETE"}},
		{"delete with empty stdin", demoEnv, "", tokenArgs(st, "delete"), []string{"no token to delete", "standard input"}},
		{"delete with blank first line", demoEnv, " \nsecond\n", tokenArgs(st, "delete"), []string{"no token to delete"}},
		{"delete with empty env", map[string]string{"OPENTACT_PASSWORD": sandbox.DemoPassword, "OPENTACT_TOKEN_TO_DELETE": " "}, "a-token\n", tokenArgs(st, "delete"), []string{"no token to delete", "OPENTACT_TOKEN_TO_DELETE"}},
		{"delete without credentials", map[string]string{"OPENTACT_TOKEN_TO_DELETE": "x"}, "", tokenArgs(st, "delete"), []string{"no password"}},
		{"delete-all without --yes", demoEnv, "", tokenArgs(st, "delete-all"), []string{"every token", "--yes"}},
		{"delete-all --yes without credentials", nil, "", tokenArgs(st, "delete-all", "--yes"), []string{"no password"}},
		{"unknown flag", withDelete, "", tokenArgs(st, "delete", "--bogus"), []string{"bogus"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := cli(t, tc.env, tc.stdin, tc.args...)
			r.wantCode(t, exitUsage)
			r.wantStderr(t, tc.mention...)
			if r.stdout != "" {
				t.Errorf("stdout: %s", r.stdout)
			}
		})
	}
	for _, tc := range []struct {
		args    []string
		mention []string
	}{
		{[]string{"token", "-h"}, []string{"create", "list", "update", "delete", "delete-all"}},
		{[]string{"token", "create", "-h"}, []string{"--name", "--ttl", "--json", "cannot be shown again", "TOKEN=$(", "standard error", "OPENTACT_PASSWORD"}},
		{[]string{"token", "list", "-h"}, []string{hiddenSecret, "expired_on"}},
		{[]string{"token", "update", "-h"}, []string{"UUID", "--name", "--ttl", "fields given as flags"}},
		{[]string{"token", "delete", "-h"}, []string{"OPENTACT_TOKEN_TO_DELETE", "standard input", "--secret-stdin", "never comes from the command line"}},
		{[]string{"token", "delete-all", "-h"}, []string{"--yes", "every API token"}},
		{[]string{"-h"}, []string{"token create", "token delete-all"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			r := cli(t, nil, "", tc.args...)
			r.wantCode(t, exitOK)
			r.wantStderr(t, append([]string{"Usage"}, tc.mention...)...)
			if strings.Contains(r.stderr, "-password") || strings.Contains(r.stderr, "-token ") {
				t.Errorf("the usage mentions a secret flag:\n%s", r.stderr)
			}
		})
	}
	t.Cleanup(func() {
		if n := st.upstream.Load(); n != 0 {
			t.Errorf("the upstream saw %d requests, want 0", n)
		}
	})
}

// TestCallFailedMasksTheTokenToDelete: an answer that echoes the token
// being deleted does not get it printed (the facade scrubs credentials,
// but the token to delete is not one).
func TestCallFailedMasksTheTokenToDelete(t *testing.T) {
	t.Parallel()
	const secret = "echoedSecret0123456789"
	var stderr bytes.Buffer
	c := newCommand("token delete", tokenDeleteUsage, func(string) (string, bool) { return "", false }, strings.NewReader(""), io.Discard, &stderr)
	st, err := status.New(codes.NotFound, "token "+secret+" not found").WithDetails(&errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "token", Description: "no token " + secret}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if code := c.callFailed(st.Err(), secret); code != exitFailed {
		t.Errorf("exit %d, want %d", code, exitFailed)
	}
	r := result{stderr: stderr.String()}
	r.wantNotShown(t, secret)
	r.wantStderr(t, "NotFound: token [hidden] not found", "\n  token: no token [hidden]")
}

// TestSecretsHiddenAtAnyDepth: the JWTs of an account's admin and users,
// and of a token's owner, are hidden as the caller's own is.
func TestSecretsHiddenAtAnyDepth(t *testing.T) {
	t.Parallel()
	jwt := func(n string) *string { return proto.String("eyJhbGciOiJIUzI1NiJ9.eyJ1dWlkIjoi" + n + "In0.c2ln") }
	resp := &authv1.GetAuthResponse{User: &authv1.User{
		Email: proto.String("a@b.c"), Token: jwt("me"),
		Account: &authv1.Account{
			Name:  proto.String("ACME"),
			Admin: &authv1.User{Token: jwt("admin")},
			Users: []*authv1.User{{Email: proto.String("u@b.c"), Token: jwt("u")}, {}},
		},
	}}
	hideTree(resp.ProtoReflect(), hiddenToken)
	for _, got := range []string{resp.GetUser().GetToken(), resp.GetUser().GetAccount().GetAdmin().GetToken(), resp.GetUser().GetAccount().GetUsers()[0].GetToken()} {
		if got != hiddenToken {
			t.Errorf("a token printed as %q, want %q", got, hiddenToken)
		}
	}
	if resp.GetUser().GetAccount().GetUsers()[1].Token != nil || resp.GetUser().GetEmail() != "a@b.c" || resp.GetUser().GetAccount().GetName() != "ACME" {
		t.Errorf("hiding changed what is not a secret: %v", resp)
	}

	tok := &authv1.Token{Token: proto.String("7VLyaDSQ8W48IETeNBfxbBqwgwzWLTvFojSnLgiXP5X8NSoE"), User: &authv1.User{Token: jwt("owner")}}
	hideSecret(tok)
	if tok.GetToken() != hiddenSecret || strings.HasPrefix(tok.GetUser().GetToken(), "eyJ") {
		t.Errorf("token %q, owner's JWT %q: want both hidden", tok.GetToken(), tok.GetUser().GetToken())
	}
}

// TestHideTreeAnyKind: a secret of any kind is hidden: texts (alone, in a
// list, as map values) show the marker, other kinds are cleared, and
// messages in maps are walked.
func TestHideTreeAnyKind(t *testing.T) {
	t.Parallel()
	redact := &descriptorpb.FieldOptions{DebugRedact: proto.Bool(true)}
	opt := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	rep := descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	str := descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()
	msg := descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
	field := func(name string, n int32, label *descriptorpb.FieldDescriptorProto_Label, typ *descriptorpb.FieldDescriptorProto_Type, typeName string, opts *descriptorpb.FieldOptions) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), JsonName: proto.String(name), Number: proto.Int32(n), Label: label, Type: typ, Options: opts}
		if typeName != "" {
			f.TypeName = proto.String(typeName)
		}
		return f
	}
	entry := func(name, valueType string, typ *descriptorpb.FieldDescriptorProto_Type) *descriptorpb.DescriptorProto {
		return &descriptorpb.DescriptorProto{
			Name:    proto.String(name),
			Field:   []*descriptorpb.FieldDescriptorProto{field("key", 1, opt, str, "", nil), field("value", 2, opt, typ, valueType, nil)},
			Options: &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)},
		}
	}
	fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
		Name: proto.String("secrets.proto"), Package: proto.String("t"), Syntax: proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{
			Name: proto.String("Secrets"),
			Field: []*descriptorpb.FieldDescriptorProto{
				field("text", 1, opt, str, "", redact),
				field("texts", 2, rep, str, "", redact),
				field("by_name", 3, rep, msg, ".t.Secrets.ByNameEntry", redact),
				field("raw", 4, opt, descriptorpb.FieldDescriptorProto_TYPE_BYTES.Enum(), "", redact),
				field("pin", 5, opt, descriptorpb.FieldDescriptorProto_TYPE_INT32.Enum(), "", redact),
				field("inner", 6, opt, msg, ".t.Secrets", redact),
				field("items", 7, rep, msg, ".t.Secrets.ItemsEntry", nil),
				field("plain", 8, opt, str, "", nil),
			},
			NestedType: []*descriptorpb.DescriptorProto{entry("ByNameEntry", "", str), entry("ItemsEntry", ".t.Secrets", msg)},
		}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	md := fd.Messages().Get(0)
	m := dynamicpb.NewMessage(md)
	if err := protojson.Unmarshal([]byte(`{
		"text": "s1", "texts": ["s2", "s3"], "by_name": {"k": "s4"}, "raw": "czU=", "pin": 1234,
		"inner": {"plain": "s6"}, "items": {"i": {"text": "s7", "plain": "p"}}, "plain": "p"}`), m); err != nil {
		t.Fatal(err)
	}
	hideTree(m, "H")
	got, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	want := dynamicpb.NewMessage(md)
	if err := protojson.Unmarshal([]byte(`{
		"text": "H", "texts": ["H", "H"], "by_name": {"k": "H"},
		"items": {"i": {"text": "H", "plain": "p"}}, "plain": "p"}`), want); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(m, want) {
		t.Errorf("hidden: %s", got)
	}
}

// TestVersion: --version prints what opentact-facade --version prints,
// under opentactctl's name.
func TestVersion(t *testing.T) {
	t.Parallel()
	for _, flag := range []string{"--version", "-version"} {
		r := cli(t, nil, "", flag)
		r.wantCode(t, exitOK)
		if !regexp.MustCompile(`^opentactctl \S+.* go1\.\d+\S*\n$`).MatchString(r.stdout) || r.stderr != "" {
			t.Errorf("%s printed %q, stderr %q; want opentactctl, its version and Go's", flag, r.stdout, r.stderr)
		}
	}
	cli(t, nil, "", "--version", "auth").wantCode(t, exitUsage)
}

// TestJSONLayoutIsRegular: every answer is printed with the same layout,
// one space after each colon, run after run.
func TestJSONLayoutIsRegular(t *testing.T) {
	t.Parallel()
	st := startStack(t, nil)
	createToken(t, st, "layout")
	for _, args := range [][]string{
		{"auth", "--plaintext", "--addr", st.addr, "--email", sandbox.DemoEmail},
		tokenArgs(st, "list"),
		tokenArgs(st, "create", "--name", "json", "--json"),
	} {
		first := cli(t, demoEnv, "", args...)
		first.wantCode(t, exitOK)
		first.wantRegularJSON(t)
		if strings.Contains(first.stdout, ":  ") {
			t.Errorf("%v: two spaces after a colon:\n%s", args[:2], first.stdout)
		}
		if args[1] == "create" {
			continue // another token each time
		}
		if again := cli(t, demoEnv, "", args...); again.stdout != first.stdout {
			t.Errorf("%v printed differently the second time:\n%s\nthen:\n%s", args[:2], first.stdout, again.stdout)
		}
	}
}
