package client_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/credentials/local"
	"google.golang.org/grpc/status"

	"github.com/opentact-facade/opentact-facade/client"
	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/sandbox"
	"github.com/opentact-facade/opentact-facade/internal/server"
	"github.com/opentact-facade/opentact-facade/internal/testpki"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// demoUUID is the uuid of the sandbox's demo account.
const demoUUID = "0116f6d1-1280-44b2-9134-da48509ec575"

// stack is a sandbox behind a facade, both on loopback, for one test.
type stack struct {
	addr     string       // the facade's gRPC address
	upstream atomic.Int64 // requests the sandbox saw
	logs     *syncBuffer  // the facade's JSON logs
}

// startStack runs the sandbox (counting its requests) and a facade in
// front of it until the test ends. tlsFiles, when set, turns on TLS.
func startStack(t *testing.T, tlsFiles *server.TLSFiles) *stack {
	t.Helper()
	st := &stack{logs: &syncBuffer{}}
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
		Logger:        slog.New(slog.NewJSONHandler(st.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
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

// facadeSawGetAuth reports whether the facade's access log holds a
// GetAuth call: a call refused by the client never reaches it.
func (st *stack) facadeSawGetAuth() bool {
	return strings.Contains(st.logs.String(), "GetAuth")
}

// dial connects to the stack; the test closes the connection at its end.
func dial(t *testing.T, addr string, opts ...grpc.DialOption) authv1.AuthServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return authv1.NewAuthServiceClient(conn)
}

func getAuth(t *testing.T, c authv1.AuthServiceClient, opts ...grpc.CallOption) (*authv1.GetAuthResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.GetAuth(ctx, &authv1.GetAuthRequest{}, opts...)
}

func wantDemoUser(t *testing.T, resp *authv1.GetAuthResponse, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("GetAuth: %v", err)
	}
	u := resp.GetUser()
	if u.GetEmail() != sandbox.DemoEmail || u.GetUuid() != demoUUID {
		t.Fatalf("GetAuth user = %q (%q), want %q (%q)", u.GetEmail(), u.GetUuid(), sandbox.DemoEmail, demoUUID)
	}
	if strings.Count(u.GetToken(), ".") != 2 {
		t.Fatalf("GetAuth token %q is not a JWT", u.GetToken())
	}
}

// demoJWT signs in with Basic credentials and returns the JWT the answer
// carries.
func demoJWT(t *testing.T, addr string, transport credentials.TransportCredentials, allowInsecure bool) string {
	t.Helper()
	creds := client.Basic(sandbox.DemoEmail, sandbox.DemoPassword)
	if allowInsecure {
		creds = creds.AllowInsecure()
	}
	resp, err := getAuth(t, dial(t, addr, grpc.WithTransportCredentials(transport), grpc.WithPerRPCCredentials(creds)))
	wantDemoUser(t, resp, err)
	return resp.GetUser().GetToken()
}

// demoCredentials builds every kind of credential of the demo account; the
// JWT for Token comes from a Basic call through the facade at addr.
func demoCredentials(t *testing.T, addr string, transport credentials.TransportCredentials, allowInsecure bool) map[string]*client.Credentials {
	t.Helper()
	return map[string]*client.Credentials{
		"Basic":         client.Basic(sandbox.DemoEmail, sandbox.DemoPassword),
		"Bearer":        client.Bearer(sandbox.DemoAPIToken),
		"Token":         client.Token(demoJWT(t, addr, transport, allowInsecure)),
		"GoogleToken":   client.GoogleToken(sandbox.DemoGoogleToken),
		"FacebookToken": client.FacebookToken(sandbox.DemoFacebookToken),
		"HA1B":          client.HA1B(sandbox.DemoHA1B),
	}
}

// TestEveryKindOverPlaintextWithAllowInsecure: each constructor, allowed
// onto a plaintext connection, signs the demo account in through the
// facade and the sandbox.
func TestEveryKindOverPlaintextWithAllowInsecure(t *testing.T) {
	t.Parallel()
	st := startStack(t, nil)
	for name, creds := range demoCredentials(t, st.addr, insecure.NewCredentials(), true) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := dial(t, st.addr,
				grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithPerRPCCredentials(creds.AllowInsecure()))
			resp, err := getAuth(t, c)
			wantDemoUser(t, resp, err)
		})
	}
}

// TestMetadataOfEveryKind: each constructor sends exactly the header
// README documents, and nothing else.
func TestMetadataOfEveryKind(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		creds      *client.Credentials
		key, value string
	}{
		{"Basic", client.Basic(sandbox.DemoEmail, sandbox.DemoPassword), "authorization", "Basic b3BlbnRhY3RAY2FsbGlmeS5pbzoxMjM0NTY3OA=="},
		{"Basic with a non-ASCII password", client.Basic("a@b.c", "pässwörd"), "authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("a@b.c:pässwörd"))},
		{"Bearer", client.Bearer("tok"), "authorization", "Bearer tok"},
		{"Token", client.Token("a.b.c"), "x-auth-token", "a.b.c"},
		{"GoogleToken", client.GoogleToken("g"), "x-auth-google-token", "g"},
		{"FacebookToken", client.FacebookToken("f"), "x-auth-facebook-token", "f"},
		{"HA1B", client.HA1B(sandbox.DemoHA1B), "x-auth-ha1b-token", sandbox.DemoHA1B},
		{"Token of exactly 8 KiB", client.Token(strings.Repeat("a", 8<<10)), "x-auth-token", strings.Repeat("a", 8<<10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, c := range []*client.Credentials{tc.creds, tc.creds.AllowInsecure()} {
				md, err := c.GetRequestMetadata(context.Background(), "https://facade/opentact.auth.v1.AuthService")
				if err != nil {
					t.Fatalf("GetRequestMetadata: %v", err)
				}
				if len(md) != 1 || md[tc.key] != tc.value {
					t.Fatalf("GetRequestMetadata = %q, want only %s: %q", md, tc.key, tc.value)
				}
			}
		})
	}
}

// TestRefusedOnPlaintextWithoutAllowInsecure: without AllowInsecure the
// credentials never travel over a connection without transport security,
// whichever way they are given to grpc-go, and the facade and Opentact
// never hear of the call.
func TestRefusedOnPlaintextWithoutAllowInsecure(t *testing.T) {
	t.Parallel()
	kinds := map[string]*client.Credentials{
		"Basic":         client.Basic(sandbox.DemoEmail, sandbox.DemoPassword),
		"Bearer":        client.Bearer(sandbox.DemoAPIToken),
		"Token":         client.Token("eyJhbGciOiJIUzI1NiJ9.e30.c2ln"),
		"GoogleToken":   client.GoogleToken(sandbox.DemoGoogleToken),
		"FacebookToken": client.FacebookToken(sandbox.DemoFacebookToken),
		"HA1B":          client.HA1B(sandbox.DemoHA1B),
	}
	for name, creds := range kinds {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if !creds.RequireTransportSecurity() {
				t.Fatal("RequireTransportSecurity() = false without AllowInsecure")
			}
			st := startStack(t, nil)

			// As a dial option on an insecure connection: grpc-go refuses
			// to build the connection at all.
			conn, err := grpc.NewClient(st.addr,
				grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithPerRPCCredentials(creds))
			if err == nil {
				_ = conn.Close()
				t.Fatal("grpc.NewClient with insecure transport and the credentials: no error")
			}
			if !strings.Contains(err.Error(), "transport level security") {
				t.Errorf("grpc.NewClient error = %q, want it to mention transport level security", err)
			}

			// As a call option on an insecure connection: the call fails in
			// the client with Unauthenticated.
			c := dial(t, st.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			_, err = getAuth(t, c, grpc.PerRPCCredentials(creds))
			if s := status.Convert(err); s.Code() != codes.Unauthenticated || !strings.Contains(s.Message(), "insecure connection") {
				t.Errorf("GetAuth with call credentials on an insecure connection: %v, want Unauthenticated about an insecure connection", err)
			}

			// As a dial option on a connection whose transport credentials
			// are not "insecure" but give no privacy (local credentials over
			// TCP loopback): the connection is refused after the handshake,
			// so the call fails with Unavailable.
			c = dial(t, st.addr, grpc.WithTransportCredentials(local.NewCredentials()), grpc.WithPerRPCCredentials(creds))
			_, err = getAuth(t, c)
			if s := status.Convert(err); s.Code() != codes.Unavailable || !strings.Contains(s.Message(), "insecure connection") {
				t.Errorf("GetAuth with local transport credentials over TCP: %v, want Unavailable about an insecure connection", err)
			}

			if n := st.upstream.Load(); n != 0 {
				t.Errorf("the upstream saw %d requests, want 0", n)
			}
			if st.facadeSawGetAuth() {
				t.Errorf("the facade logged a GetAuth call:\n%s", st.logs)
			}

			// The same connections carry the same credentials once they
			// are allowed onto them: what failed was the refusal alone.
			c = dial(t, st.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if _, err := getAuth(t, c, grpc.PerRPCCredentials(creds.AllowInsecure())); status.Code(err) == codes.Unauthenticated && strings.Contains(err.Error(), "insecure connection") {
				t.Errorf("GetAuth with AllowInsecure call credentials: %v", err)
			}
			c = dial(t, st.addr, grpc.WithTransportCredentials(local.NewCredentials()), grpc.WithPerRPCCredentials(creds.AllowInsecure()))
			if _, err := getAuth(t, c); status.Code(err) == codes.Unavailable {
				t.Errorf("GetAuth with local transport credentials and AllowInsecure: %v", err)
			}
			if st.upstream.Load() == 0 {
				t.Error("the upstream saw no request once AllowInsecure was given")
			}
		})
	}
}

// TestEveryKindOverTLS: over a TLS facade the credentials need no
// AllowInsecure.
func TestEveryKindOverTLS(t *testing.T) {
	t.Parallel()
	pki := testpki.New(t)
	st := startStack(t, &server.TLSFiles{Cert: pki.ServerCert, Key: pki.ServerKey})
	transport := credentials.NewTLS(&tls.Config{RootCAs: pki.Roots, MinVersion: tls.VersionTLS12})
	for name, creds := range demoCredentials(t, st.addr, transport, false) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if !creds.RequireTransportSecurity() {
				t.Fatal("RequireTransportSecurity() = false without AllowInsecure")
			}
			c := dial(t, st.addr, grpc.WithTransportCredentials(transport), grpc.WithPerRPCCredentials(creds))
			resp, err := getAuth(t, c)
			wantDemoUser(t, resp, err)

			// As a call option too.
			c = dial(t, st.addr, grpc.WithTransportCredentials(transport))
			resp, err = getAuth(t, c, grpc.PerRPCCredentials(creds))
			wantDemoUser(t, resp, err)
		})
	}

	// mTLS as well: the per-call credentials ride on top of a client
	// certificate.
	t.Run("mTLS", func(t *testing.T) {
		t.Parallel()
		st := startStack(t, &server.TLSFiles{Cert: pki.ServerCert, Key: pki.ServerKey, ClientCA: pki.ClientCA})
		transport := credentials.NewTLS(&tls.Config{RootCAs: pki.Roots, Certificates: []tls.Certificate{pki.Client}, MinVersion: tls.VersionTLS12})
		c := dial(t, st.addr, grpc.WithTransportCredentials(transport),
			grpc.WithPerRPCCredentials(client.Basic(sandbox.DemoEmail, sandbox.DemoPassword)))
		resp, err := getAuth(t, c)
		wantDemoUser(t, resp, err)
	})
}

// TestWrongCredentialsReachOpentact: well-formed but wrong credentials are
// sent, and the facade answers Unauthenticated.
func TestWrongCredentialsReachOpentact(t *testing.T) {
	t.Parallel()
	st := startStack(t, nil)
	kinds := map[string]*client.Credentials{
		"Basic":          client.Basic(sandbox.DemoEmail, "wrong-password"),
		"Token":          client.Token("not-a-jwt"),
		"8 KiB of token": client.Token(strings.Repeat("a", 8<<10)),
	}
	t.Run("group", func(t *testing.T) {
		for name, creds := range kinds {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				c := dial(t, st.addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(creds.AllowInsecure()))
				if _, err := getAuth(t, c); status.Code(err) != codes.Unauthenticated {
					t.Fatalf("GetAuth = %v, want Unauthenticated", err)
				}
			})
		}
	})
	// A 401 is not retried: one request each.
	if n := st.upstream.Load(); n != int64(len(kinds)) {
		t.Errorf("the upstream saw %d requests, want %d", n, len(kinds))
	}
}

// TestInvalidCredentials: a credential that cannot be sent fails the call
// in the client, before anything is sent, and the error does not hold the
// secret. The code is Unauthenticated: grpc-go turns InvalidArgument from
// call credentials into Internal (gRFC A54).
func TestInvalidCredentials(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("s", 9<<10)
	for _, tc := range []struct {
		name   string
		creds  *client.Credentials
		secret string // must not appear in the error; "" when there is none
	}{
		{"Basic without e-mail", client.Basic("", "hunter2-secret"), "hunter2-secret"},
		{"Basic without password", client.Basic(sandbox.DemoEmail, ""), ""},
		{"Basic with neither", client.Basic("", ""), ""},
		{"Basic with ':' in the e-mail", client.Basic("anna:x@example.com", "hunter2-secret"), "hunter2-secret"},
		{"Token with a newline", client.Token("secret-token\nX-Evil: 1"), "secret-token"},
		{"Token with a CR", client.Token("secret-token\r"), "secret-token"},
		{"Token with a NUL", client.Token("secret-token\x00"), "secret-token"},
		{"Token with a tab", client.Token("secret\ttoken"), "secret"},
		{"Token with DEL", client.Token("secret-token\x7f"), "secret-token"},
		{"Token non-ASCII", client.Token("sécret-token"), "cret-token"},
		{"Token empty", client.Token(""), ""},
		{"Token of 9 KiB", client.Token(long), long[:64]},
		{"Token one byte over 8 KiB", client.Token(strings.Repeat("s", 8<<10+1)), long[:64]},
		{"Bearer empty", client.Bearer(""), ""},
		{"Bearer with a newline", client.Bearer("secret-api\ntoken"), "secret-api"},
		{"Bearer of 9 KiB", client.Bearer(long), long[:64]},
		{"GoogleToken empty", client.GoogleToken(""), ""},
		{"GoogleToken non-ASCII", client.GoogleToken("gööglesecret"), "glesecret"},
		{"FacebookToken with a newline", client.FacebookToken("fbsecret\n"), "fbsecret"},
		{"FacebookToken of 9 KiB", client.FacebookToken(long), long[:64]},
		{"HA1B empty", client.HA1B(""), ""},
		{"HA1B with a newline", client.HA1B(sandbox.DemoHA1B + "\n"), sandbox.DemoHA1B},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := startStack(t, nil)
			checkErr := func(how string, err error) {
				t.Helper()
				if s := status.Convert(err); s.Code() != codes.Unauthenticated || !strings.Contains(s.Message(), "credential") || strings.Contains(s.Message(), "opentact did not accept") {
					t.Errorf("%s: %v, want Unauthenticated naming the credential problem", how, err)
				}
				if tc.secret != "" && err != nil && strings.Contains(err.Error(), tc.secret) {
					t.Errorf("%s: the error holds the secret: %.200q", how, err)
				}
			}

			// Straight from the credentials.
			_, err := tc.creds.GetRequestMetadata(context.Background())
			checkErr("GetRequestMetadata", err)

			// Through a call, as a dial option and as a call option.
			c := dial(t, st.addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(tc.creds.AllowInsecure()))
			_, err = getAuth(t, c)
			checkErr("GetAuth with dial credentials", err)
			c = dial(t, st.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			_, err = getAuth(t, c, grpc.PerRPCCredentials(tc.creds.AllowInsecure()))
			checkErr("GetAuth with call credentials", err)

			if n := st.upstream.Load(); n != 0 {
				t.Errorf("the upstream saw %d requests, want 0", n)
			}
			if st.facadeSawGetAuth() {
				t.Errorf("the facade logged a GetAuth call:\n%s", st.logs)
			}
		})
	}
}

// TestFormattingHidesTheSecret: no fmt verb and no slog handler shows the
// password or the token, whether the Credentials is printed through its
// pointer, as a value, or inside another value.
func TestFormattingHidesTheSecret(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-VALUE-4711"
	for name, creds := range map[string]*client.Credentials{
		"Basic":               client.Basic("anna@example.com", secret),
		"Basic AllowInsecure": client.Basic("anna@example.com", secret).AllowInsecure(),
		"Bearer":              client.Bearer(secret),
		"Token":               client.Token(secret),
		"GoogleToken":         client.GoogleToken(secret),
		"FacebookToken":       client.FacebookToken(secret),
		"HA1B":                client.HA1B(secret),
		"invalid Token":       client.Token(secret + "\n"),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// Basic sends base64(email:password): look for that too.
			md, _ := creds.GetRequestMetadata(context.Background())
			needles := []string{secret, base64.StdEncoding.EncodeToString([]byte("anna@example.com:" + secret))}
			for _, v := range md {
				needles = append(needles, v, strings.TrimPrefix(strings.TrimPrefix(v, "Basic "), "Bearer "))
			}
			check := func(how, out string) {
				t.Helper()
				for _, n := range needles {
					if strings.Contains(out, n) {
						t.Errorf("%s shows the secret: %s", how, out)
						return
					}
				}
			}

			type wrapper struct {
				Creds   *client.Credentials
				private *client.Credentials
			}
			values := map[string]any{
				"pointer":                               creds,
				"value":                                 *creds,
				"struct with pointer fields":            wrapper{Creds: creds, private: creds},
				"struct with a value field":             struct{ C client.Credentials }{*creds},
				"struct with an unexported value field": struct{ c client.Credentials }{*creds},
				"slice":                                 []*client.Credentials{creds},
				"map":                                   map[string]*client.Credentials{"c": creds},
			}
			for what, v := range values {
				for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T"} {
					check(fmt.Sprintf("fmt %s of the %s", verb, what), fmt.Sprintf(verb, v))
				}
				check("fmt.Sprint of the "+what, fmt.Sprint(v))
				check("fmt.Sprintln of the "+what, fmt.Sprintln(v))

				for hname, newHandler := range map[string]func(*bytes.Buffer) slog.Handler{
					"JSON": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
					"text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
				} {
					var buf bytes.Buffer
					log := slog.New(newHandler(&buf))
					log.Info("credentials", slog.Any("creds", v), "again", v)
					log.With("creds", v).Info("with")
					log.Info("group", slog.Group("g", slog.Any("creds", v)))
					check("slog "+hname+" of the "+what, buf.String())
				}
			}
			check("String", creds.String())
			check("LogValue", creds.LogValue().String())
		})
	}
}

// TestAllowInsecureReturnsACopy: AllowInsecure leaves the original
// requiring transport security, and carries the same credential.
func TestAllowInsecureReturnsACopy(t *testing.T) {
	t.Parallel()
	orig := client.Basic(sandbox.DemoEmail, sandbox.DemoPassword)
	relaxed := orig.AllowInsecure()
	if relaxed == orig {
		t.Fatal("AllowInsecure returned its receiver")
	}
	if !orig.RequireTransportSecurity() {
		t.Error("the original no longer requires transport security after AllowInsecure")
	}
	if relaxed.RequireTransportSecurity() {
		t.Error("the copy still requires transport security")
	}
	if again := relaxed.AllowInsecure(); again == relaxed || again.RequireTransportSecurity() {
		t.Error("AllowInsecure of the copy: want another copy that allows insecure transport")
	}
	mdOrig, err1 := orig.GetRequestMetadata(context.Background())
	mdRelaxed, err2 := relaxed.GetRequestMetadata(context.Background())
	if err1 != nil || err2 != nil || fmt.Sprint(mdOrig) != fmt.Sprint(mdRelaxed) {
		t.Errorf("metadata differs: %q (%v) vs %q (%v)", mdOrig, err1, mdRelaxed, err2)
	}

	// An invalid credential stays invalid in its copy.
	bad := client.Token("")
	if _, err := bad.AllowInsecure().GetRequestMetadata(context.Background()); status.Code(err) != codes.Unauthenticated {
		t.Errorf("AllowInsecure of an invalid credential: GetRequestMetadata = %v, want Unauthenticated", err)
	}

	// The zero value sends nothing.
	var zero client.Credentials
	if md, err := zero.GetRequestMetadata(context.Background()); status.Code(err) != codes.Unauthenticated {
		t.Errorf("zero Credentials: GetRequestMetadata = %q, %v; want Unauthenticated", md, err)
	}
	if got := fmt.Sprintf("%v %+v", zero, zero.AllowInsecure()); !strings.Contains(got, "client.Credentials") {
		t.Errorf("zero Credentials prints as %q", got)
	}

	// End to end: the original is still refused on a plaintext
	// connection while the copy is used on another.
	st := startStack(t, nil)
	c := dial(t, st.addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(relaxed))
	resp, err := getAuth(t, c)
	wantDemoUser(t, resp, err)
	if conn, err := grpc.NewClient(st.addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(orig)); err == nil {
		_ = conn.Close()
		t.Error("grpc.NewClient accepted the original on an insecure connection after AllowInsecure made a copy")
	}
}

// TestConcurrentCalls shares one Credentials among many calls and
// connections (run with -race).
func TestConcurrentCalls(t *testing.T) {
	t.Parallel()
	st := startStack(t, nil)
	creds := client.Basic(sandbox.DemoEmail, sandbox.DemoPassword).AllowInsecure()
	c1 := dial(t, st.addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(creds))
	c2 := dial(t, st.addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(creds))
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() {
			c := c1
			if i%2 == 1 {
				c = c2
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp, err := c.GetAuth(ctx, &authv1.GetAuthRequest{})
			if err == nil && resp.GetUser().GetEmail() != sandbox.DemoEmail {
				err = fmt.Errorf("user %q", resp.GetUser().GetEmail())
			}
			if err == nil {
				_ = creds.String()
				_, err = creds.GetRequestMetadata(ctx)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
