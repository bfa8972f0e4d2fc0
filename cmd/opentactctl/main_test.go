package main

import (
	"bytes"
	"context"
	"encoding/json"
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
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/opentact-facade/opentact-facade/internal/sandbox"
	"github.com/opentact-facade/opentact-facade/internal/server"
	"github.com/opentact-facade/opentact-facade/internal/testpki"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	demoUUID     = "0116f6d1-1280-44b2-9134-da48509ec575"
	hiddenToken  = "[hidden: use --show-token]"
	wrongPass    = "not-the-Password-9431"
	secretInFlag = "flag-Secret-5521"
)

// stack is a sandbox behind a facade, both on loopback, for one test.
type stack struct {
	addr     string       // the facade's gRPC address
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
	opts := server.Options{
		GRPCAddr:      "127.0.0.1:0",
		HTTPAddr:      "127.0.0.1:0",
		Upstream:      up.URL,
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
	st.addr = s.GRPCAddr().String()
	return st
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
	start := time.Now()
	r := cli(t, demoEnv, "", "auth", "--addr", st.addr, "--email", sandbox.DemoEmail)
	r.wantCode(t, exitFailed)
	r.wantStderr(t, "Unavailable")
	r.wantNotShown(t, sandbox.DemoPassword)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the failure took %v: want it fast, not at the 10s deadline", d)
	}
	if n := st.upstream.Load(); n != 0 {
		t.Errorf("the upstream saw %d requests, want 0", n)
	}

	// Nothing listening: a quick failure too.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	_ = l.Close()
	r = cli(t, demoEnv, "", "auth", "--plaintext", "--addr", closed, "--email", sandbox.DemoEmail, "--timeout", "3s")
	r.wantCode(t, exitFailed)
	r.wantStderr(t, "Unavailable")
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
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "opentactctl")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
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
