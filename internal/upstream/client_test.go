package upstream_test

import (
	"bufio"
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
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"

	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The stand-in serves Opentact under a path prefix, as go-github's tests
// do, so that a client dropping or doubling the base path is caught.
const (
	apiPrefix = "/api/v2"
	authPath  = apiPrefix + "/rest/auth"
)

// Distinctive secrets: none of them may ever show in an error or a log.
const (
	secretEmail    = "opentact@callify.io"
	secretPassword = "Pw-Quokka-7731"
	secretJWT      = "xat-Wombat-0042-Numbat"
	secretGoogle   = "goog-Platypus-5517"
	secretFacebook = "fb-Echidna-8823"
	secretHA1B     = "9f86d081884c7d659a2feaa0c55ad015"
	secretBearer   = "tok-Bilby-3306"
)

var (
	secretBasicToken = base64.StdEncoding.EncodeToString([]byte(secretEmail + ":" + secretPassword))
	secretBasic      = "Basic " + secretBasicToken
	allSecrets       = []string{secretPassword, secretBasicToken, secretJWT, secretGoogle, secretFacebook, secretHA1B, secretBearer}
)

const okBody = `{"success":true,"payload":{"uuid":"0116f6d1-1280-44b2-9134-da48509ec575","email":"info@opentact.org"}}`

var credentialHeaders = []string{"Authorization", "X-Auth-Token", "X-Auth-Google-Token", "X-Auth-Facebook-Token", "X-Auth-HA1B-Token"}

// errorOpts compares *upstream.Error by its exported fields.
var errorOpts = cmpopts.IgnoreUnexported(upstream.Error{})

// stub is an Opentact stand-in: it answers h on {apiPrefix}/rest/auth,
// fails the test on any other path, and counts the requests it saw.
type stub struct {
	srv  *httptest.Server
	hits atomic.Int32
}

func newStub(t *testing.T, h http.HandlerFunc) *stub {
	t.Helper()
	s := &stub{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if r.URL.Path != authPath {
			t.Errorf("request for %q, want %q", r.URL.Path, authPath)
			http.NotFound(w, r)
			return
		}
		h(w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *stub) base() string { return s.srv.URL + apiPrefix }

// reply answers with status and body as JSON.
func reply(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// The endpoints these tests drive, as the facade declares them.
var (
	authEndpoint            = endpoint("auth", http.MethodGet, "/rest/auth", upstream.Idempotent())
	createTokenEndpoint     = endpoint("token.create", http.MethodPost, "/rest/token")
	deleteTokenEndpoint     = endpoint("token.delete", http.MethodDelete, "/rest/token/{token}", upstream.Idempotent(), upstream.SecretPath())
	deleteAllTokensEndpoint = endpoint("token.delete_all", http.MethodDelete, "/rest/token/all", upstream.Idempotent())
)

func endpoint(name, method, path string, opts ...upstream.EndpointOption) *upstream.Endpoint {
	e, err := upstream.NewEndpoint(name, method, path, opts...)
	if err != nil {
		panic(err)
	}
	return e
}

// profile is the part of GET /rest/auth's payload these tests read.
type profile struct {
	UUID  text `json:"uuid"`
	Email text `json:"email"`
	Token text `json:"token"`
}

// text is a JSON string member: Valid when it was one.
type text struct {
	Value string
	Valid bool
}

func (t *text) UnmarshalJSON(b []byte) error {
	if json.Unmarshal(b, &t.Value) == nil {
		t.Valid = true
	}
	return nil
}

// auth calls GET /rest/auth, the endpoint most of these tests drive.
func auth(c *upstream.Client, ctx context.Context, creds upstream.Credentials) (*profile, error) {
	var u *profile
	err := upstream.Do(ctx, c, authEndpoint, creds, upstream.Request{}, func(payload []byte) error {
		var p profile
		if err := json.Unmarshal(payload, &p); err != nil {
			return err
		}
		u = &p
		return nil
	})
	return u, err
}

func newClient(t *testing.T, base string, opts ...upstream.Option) *upstream.Client {
	t.Helper()
	c, err := upstream.New(base, opts...)
	if err != nil {
		t.Fatalf("New(%q): %v", base, err)
	}
	return c
}

func mustCreds(t *testing.T, values map[upstream.Kind]string) upstream.Credentials {
	t.Helper()
	c, err := upstream.NewCredentials(values)
	if err != nil {
		t.Fatalf("NewCredentials: %v", err)
	}
	return c
}

func basicCreds(t *testing.T) upstream.Credentials {
	return mustCreds(t, map[upstream.Kind]string{upstream.Authorization: secretBasic})
}

func asError(t *testing.T, err error) *upstream.Error {
	t.Helper()
	var ue *upstream.Error
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v (%T), want an *upstream.Error", err, err)
	}
	return ue
}

// assertNoSecrets fails when text holds any of the test's credential values.
func assertNoSecrets(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range allSecrets {
		if strings.Contains(text, s) {
			t.Errorf("%s %q holds the credential %q", what, text, s)
		}
	}
}

func TestAuthRequestShape(t *testing.T) {
	t.Parallel()
	type request struct {
		Method, Path, RawQuery, Accept string
		Body                           string
		ContentLength                  int64
		TransferEncoding               []string
	}
	for _, suffix := range []string{"", "/"} {
		t.Run("base"+suffix, func(t *testing.T) {
			t.Parallel()
			seen := make(chan request, 1)
			var userAgent string
			s := newStub(t, func(w http.ResponseWriter, r *http.Request) {
				b, err := io.ReadAll(r.Body)
				if err != nil {
					t.Errorf("reading the request body: %v", err)
				}
				userAgent = r.UserAgent()
				seen <- request{
					Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
					Accept: r.Header.Get("Accept"), Body: string(b),
					ContentLength: r.ContentLength, TransferEncoding: r.TransferEncoding,
				}
				reply(http.StatusOK, okBody)(w, r)
			})
			c := newClient(t, s.base()+suffix)
			if _, err := auth(c, t.Context(), basicCreds(t)); err != nil {
				t.Fatalf("Auth: %v", err)
			}
			got := <-seen
			want := request{Method: http.MethodGet, Path: authPath, Accept: "application/json"}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
			if !strings.HasPrefix(userAgent, "opentact-facade/") || len(userAgent) == len("opentact-facade/") {
				t.Errorf("User-Agent = %q, want opentact-facade/<version>", userAgent)
			}
			if n := s.hits.Load(); n != 1 {
				t.Errorf("server saw %d requests, want 1", n)
			}
		})
	}
}

func TestAuthWithUserAgent(t *testing.T) {
	t.Parallel()
	ua := make(chan string, 1)
	s := newStub(t, func(w http.ResponseWriter, r *http.Request) {
		ua <- r.UserAgent()
		reply(http.StatusOK, okBody)(w, r)
	})
	c := newClient(t, s.base(), upstream.WithUserAgent("acme-gateway/2.0"))
	if _, err := auth(c, t.Context(), basicCreds(t)); err != nil {
		t.Fatalf("Auth: %v", err)
	}
	if got := <-ua; got != "acme-gateway/2.0" {
		t.Errorf("User-Agent = %q, want acme-gateway/2.0", got)
	}
}

func TestAuthForwardsCredentials(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		creds map[upstream.Kind]string
		want  map[string]string // header → value; every other credential header must be absent
	}{
		{"basic", map[upstream.Kind]string{upstream.Authorization: secretBasic},
			map[string]string{"Authorization": secretBasic}},
		{"bearer", map[upstream.Kind]string{upstream.Authorization: "Bearer " + secretBearer},
			map[string]string{"Authorization": "Bearer " + secretBearer}},
		{"x-auth-token", map[upstream.Kind]string{upstream.XAuthToken: secretJWT},
			map[string]string{"X-Auth-Token": secretJWT}},
		{"x-auth-google-token", map[upstream.Kind]string{upstream.XAuthGoogleToken: secretGoogle},
			map[string]string{"X-Auth-Google-Token": secretGoogle}},
		{"x-auth-facebook-token", map[upstream.Kind]string{upstream.XAuthFacebookToken: secretFacebook},
			map[string]string{"X-Auth-Facebook-Token": secretFacebook}},
		{"x-auth-ha1b-token", map[upstream.Kind]string{upstream.XAuthHA1BToken: secretHA1B},
			map[string]string{"X-Auth-HA1B-Token": secretHA1B}},
		{"basic and x-auth-token, as in Opentact's example", map[upstream.Kind]string{upstream.Authorization: secretBasic, upstream.XAuthToken: secretJWT},
			map[string]string{"Authorization": secretBasic, "X-Auth-Token": secretJWT}},
		{"value with spaces and symbols kept as is", map[upstream.Kind]string{upstream.XAuthToken: "a  b=c/d+e~!\"#$%&'()*,-.:;<>?@[\\]^_`{|}"},
			map[string]string{"X-Auth-Token": "a  b=c/d+e~!\"#$%&'()*,-.:;<>?@[\\]^_`{|}"}},
		{"empty value sent as absent", map[upstream.Kind]string{upstream.XAuthToken: secretJWT, upstream.XAuthGoogleToken: ""},
			map[string]string{"X-Auth-Token": secretJWT}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := make(chan map[string][]string, 1)
			s := newStub(t, func(w http.ResponseWriter, r *http.Request) {
				h := map[string][]string{}
				for _, name := range credentialHeaders {
					if vs := r.Header.Values(name); vs != nil {
						h[name] = vs
					}
				}
				got <- h
				reply(http.StatusOK, okBody)(w, r)
			})
			c := newClient(t, s.base())
			if _, err := auth(c, t.Context(), mustCreds(t, tt.creds)); err != nil {
				t.Fatalf("Auth: %v", err)
			}
			want := map[string][]string{}
			for h, v := range tt.want {
				want[h] = []string{v}
			}
			if diff := cmp.Diff(want, <-got); diff != "" {
				t.Errorf("credential headers at Opentact (-want +got):\n%s", diff)
			}
		})
	}
}

// TestAuthHeaderSpelling reads the raw request: the headers go out spelled
// as Opentact documents them, not in Go's canonical form.
func TestAuthHeaderSpelling(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	raw := make(chan string, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			raw <- ""
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(conn)
		var b strings.Builder
		for {
			line, err := br.ReadString('\n')
			b.WriteString(line)
			if err != nil || line == "\r\n" {
				break
			}
		}
		raw <- b.String()
		_, _ = fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(okBody), okBody)
	}()
	c := newClient(t, "http://"+ln.Addr().String()+apiPrefix)
	creds := mustCreds(t, map[upstream.Kind]string{
		upstream.Authorization:      secretBasic,
		upstream.XAuthToken:         secretJWT,
		upstream.XAuthGoogleToken:   secretGoogle,
		upstream.XAuthFacebookToken: secretFacebook,
		upstream.XAuthHA1BToken:     secretHA1B,
	})
	if _, err := auth(c, t.Context(), creds); err != nil {
		t.Fatalf("Auth: %v", err)
	}
	req := <-raw
	if !strings.HasPrefix(req, "GET "+authPath+" HTTP/1.1\r\n") {
		t.Errorf("request line of %q, want GET %s HTTP/1.1", req, authPath)
	}
	for _, line := range []string{
		"Authorization: " + secretBasic,
		"X-Auth-Token: " + secretJWT,
		"X-Auth-Google-Token: " + secretGoogle,
		"X-Auth-Facebook-Token: " + secretFacebook,
		"X-Auth-HA1B-Token: " + secretHA1B,
		"Accept: application/json",
	} {
		if !strings.Contains(req, "\r\n"+line+"\r\n") {
			t.Errorf("raw request lacks the line %q:\n%s", line, req)
		}
	}
}

func TestAuthWithoutCredentials(t *testing.T) {
	t.Parallel()
	for name, creds := range map[string]upstream.Credentials{
		"zero value":   {},
		"empty values": mustCreds(t, map[upstream.Kind]string{upstream.Authorization: "", upstream.XAuthToken: ""}),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newStub(t, reply(http.StatusOK, okBody))
			c := newClient(t, s.base())
			u, err := auth(c, t.Context(), creds)
			if !errors.Is(err, upstream.ErrNoCredentials) || u != nil {
				t.Errorf("Auth = %v, %v; want nil, ErrNoCredentials", u, err)
			}
			if n := s.hits.Load(); n != 0 {
				t.Errorf("Opentact saw %d requests, want none", n)
			}
		})
	}
}

// TestAuthConcurrent shares one client between many callers: each request
// carries its own caller's credential and nobody else's.
func TestAuthConcurrent(t *testing.T) {
	t.Parallel()
	s := newStub(t, func(w http.ResponseWriter, r *http.Request) {
		tok := r.Header.Get("X-Auth-Token")
		if r.Header.Get("Authorization") != "" || len(r.Header.Values("X-Auth-Token")) != 1 {
			t.Errorf("request with headers %v, want one X-Auth-Token only", r.Header)
		}
		reply(http.StatusOK, `{"success":true,"payload":{"token":"`+tok+`"}}`)(w, r)
	})
	c := newClient(t, s.base())
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			tok := "caller-" + strconv.Itoa(i)
			u, err := auth(c, t.Context(), mustCreds(t, map[upstream.Kind]string{upstream.XAuthToken: tok}))
			if err != nil {
				t.Errorf("Auth(%s): %v", tok, err)
				return
			}
			if u.Token.Value != tok {
				t.Errorf("caller %s got the answer for %q", tok, u.Token.Value)
			}
		})
	}
	wg.Wait()
}

func TestAuthDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	following := &http.Client{
		Transport:     upstream.NewTransport(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return nil },
	}
	t.Cleanup(following.CloseIdleConnections)
	clients := map[string][]upstream.Option{
		"default client":                        nil,
		"WithHTTPClient that follows redirects": {upstream.WithHTTPClient(following)},
	}
	for name, opts := range clients {
		for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
			t.Run(fmt.Sprintf("%s/%d", name, code), func(t *testing.T) {
				t.Parallel()
				elsewhere := newStub(t, reply(http.StatusOK, okBody))
				s := newStub(t, func(w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, elsewhere.base()+"/rest/auth", code)
				})
				c := newClient(t, s.base(), opts...)
				creds := mustCreds(t, map[upstream.Kind]string{upstream.Authorization: secretBasic, upstream.XAuthToken: secretJWT})
				u, err := auth(c, t.Context(), creds)
				if u != nil {
					t.Errorf("Auth returned a user %+v through a redirect", u)
				}
				want := &upstream.Error{Failure: upstream.FailStatus, StatusCode: code, Attempts: 1}
				if diff := cmp.Diff(want, asError(t, err), errorOpts); diff != "" {
					t.Errorf("error (-want +got):\n%s", diff)
				}
				if n := s.hits.Load(); n != 1 {
					t.Errorf("Opentact saw %d requests, want 1: a redirect is not retried", n)
				}
				if n := elsewhere.hits.Load(); n != 0 {
					t.Errorf("redirect target saw %d requests (with the caller's credentials), want none", n)
				}
			})
		}
	}
	// New works on a copy: the caller's own client still follows redirects.
	if following.CheckRedirect == nil || following.CheckRedirect(nil, nil) != nil {
		t.Error("WithHTTPClient changed the CheckRedirect of the caller's http.Client")
	}
}

func TestNewBaseURL(t *testing.T) {
	t.Parallel()
	const password = "Pw-Kookaburra-4410"
	tests := []struct {
		url      string
		insecure bool
		ok       bool
	}{
		{"https://api.opentact.org", false, true},
		{"https://api.opentact.org/", false, true},
		{"https://api.stage.opentact.org/api/v2", false, true},
		{"https://api.opentact.org:8443", false, true},
		{"http://127.0.0.1:8080", false, true},
		{"http://127.0.0.1/api/v2", false, true},
		{"http://[::1]:8080", false, true},
		{"http://localhost:8080", false, true},
		{"http://LocalHost", false, true},
		{"http://api.opentact.org", false, false},
		{"http://api.opentact.org", true, true},
		{"http://10.1.2.3:8080", false, false},
		{"http://10.1.2.3:8080", true, true},
		{"http://localhost.attacker.example", false, false},
		{"http://127.0.0.1.nip.io", false, false},
		{"ftp://api.opentact.org", false, false},
		{"ftp://api.opentact.org", true, false},
		{"ws://127.0.0.1", false, false},
		{"api.opentact.org", false, false},
		{"/rest", false, false},
		{"", false, false},
		{"https://", false, false},
		{"https:///api/v2", false, false},
		{"https://user@api.opentact.org", false, false},
		{"https://user:" + password + "@api.opentact.org", false, false},
		{"http://user:" + password + "@127.0.0.1", true, false},
		{"https://user:" + password + "@api.opentact.org:port", false, false},
		{"https://user:" + password + "@api.opentact.org/%zz", false, false},
		{"https://api.opentact.org?x=1", false, false},
		{"https://api.opentact.org/?", false, false},
		{"https://api.opentact.org#top", false, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/insecure=%v", tt.url, tt.insecure), func(t *testing.T) {
			t.Parallel()
			var opts []upstream.Option
			if tt.insecure {
				opts = append(opts, upstream.WithInsecure())
			}
			c, err := upstream.New(tt.url, opts...)
			if tt.ok {
				if err != nil || c == nil {
					t.Errorf("New(%q) = %v, %v; want a client", tt.url, c, err)
				}
				return
			}
			if err == nil || c != nil {
				t.Fatalf("New(%q) = %v, %v; want an error", tt.url, c, err)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("error %q holds the password of the URL", err)
			}
		})
	}
}

// The documented answers, shared with the mapping tests.
var (
	payload2024 = readTestdata("auth-2024.json")
	payload2020 = readTestdata("auth-2020.json")
)

func readTestdata(name string) string {
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "opentact", name))
	if err != nil {
		panic(err)
	}
	return string(b)
}

// payloadDrifted is what real answers show beyond the documented examples.
const payloadDrifted = `{"success":true,"payload":{
  "uuid":"7d1c","email":"иван@пример.рф","first_name":"Иван","last_name":"Müller-Łukasiewicz",
  "phone_number":87015260731,"role":"Provider","gender":"Two-Spirit",
  "created_on":"2023-05-01T10:00:15Z","wss_online":false,"some_new_field":{"x":[1,2,3]},
  "account":{"uuid":"acc-1","name":"ТОО Ромашка","level":"ServiceAccount","balance":-12.5,
    "phone":87015260731,"address1":null,"address2":null,"class4_id":42,"time_zone":"Asia/Almaty",
    "users":[{"uuid":"x"}],"admin":{"uuid":"y"},"messaging_profile_default":null,"messaging_profiles":[],"addresses":[]}
}}`

func TestAuthRejectedUnder200(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body, wantMessage string
	}{
		{"with message", `{"success":false,"message":"Account suspended","status":200}`, "Account suspended"},
		{"without message", `{"success":false}`, ""},
		{"message not a string", `{"success":false,"message":{"text":"x"}}`, ""},
		{"payload of the wrong type", `{"success":false,"message":"nope","payload":"x"}`, "nope"},
		{"message echoing the password", `{"success":false,"message":"bad password ` + secretPassword + `"}`, "bad password [REDACTED]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStub(t, reply(http.StatusOK, tt.body))
			u, err := auth(newClient(t, s.base()), t.Context(), basicCreds(t))
			if u != nil {
				t.Errorf("Auth returned a user %+v", u)
			}
			want := &upstream.Error{Failure: upstream.FailRejected, StatusCode: http.StatusOK, Message: tt.wantMessage, Attempts: 1}
			if diff := cmp.Diff(want, asError(t, err), errorOpts); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if n := s.hits.Load(); n != 1 {
				t.Errorf("Opentact saw %d requests, want 1", n)
			}
		})
	}
}

func TestAuthMalformedUnder200(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, body string }{
		{"HTML page", "<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>"},
		{"array", `[]`},
		{"empty object", `{}`},
		{"no payload", `{"success":true}`},
		{"null payload", `{"success":true,"payload":null}`},
		{"string payload", `{"success":true,"payload":"x"}`},
		{"array payload", `{"success":true,"payload":[{"uuid":"x"}]}`},
		{"success as string", `{"success":"true","payload":{"uuid":"x"}}`},
		{"success as string false", `{"success":"false","message":"x"}`},
		{"success as number", `{"success":1,"payload":{"uuid":"x"}}`},
		{"success as zero", `{"success":0,"payload":{"uuid":"x"}}`},
		{"success null", `{"success":null,"payload":{"uuid":"x"}}`},
		{"truncated JSON", `{"success":true,"payload":{"uuid":"0116f6d1`},
		{"JSON then garbage", `{"success":true,"payload":{"uuid":"x"}} trailing`},
		{"empty body", ``},
		{"null", `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStub(t, reply(http.StatusOK, tt.body))
			u, err := auth(newClient(t, s.base()), t.Context(), basicCreds(t))
			if u != nil {
				t.Errorf("Auth returned a user %+v", u)
			}
			want := &upstream.Error{Failure: upstream.FailMalformed, StatusCode: http.StatusOK, Attempts: 1}
			if diff := cmp.Diff(want, asError(t, err), errorOpts); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if n := s.hits.Load(); n != 1 {
				t.Errorf("Opentact saw %d requests, want 1", n)
			}
		})
	}
}

// TestAuthErrorStatus runs the default RetryPolicy: 502, 503 and 504 are
// tried DefaultRetryPolicy().MaxAttempts times, every other status once.
func TestAuthErrorStatus(t *testing.T) {
	t.Parallel()
	codes := []int{400, 401, 403, 404, 409, 429, 500, 502, 503, 504, 418}
	for _, code := range codes {
		attempts := 1
		if code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout {
			attempts = upstream.DefaultRetryPolicy().MaxAttempts
		}
		t.Run(strconv.Itoa(code)+"/json", func(t *testing.T) {
			t.Parallel()
			msg := "Opentact says " + http.StatusText(code) + " — ошибка"
			body, _ := json.Marshal(map[string]any{"success": false, "message": msg, "status": code})
			s := newStub(t, reply(code, string(body)))
			u, err := auth(newClient(t, s.base()), t.Context(), basicCreds(t))
			if u != nil {
				t.Errorf("Auth returned a user %+v", u)
			}
			want := &upstream.Error{Failure: upstream.FailStatus, StatusCode: code, Message: msg, Attempts: attempts}
			if diff := cmp.Diff(want, asError(t, err), errorOpts); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if n := s.hits.Load(); n != int32(attempts) {
				t.Errorf("Opentact saw %d requests, want %d", n, attempts)
			}
			if !strings.Contains(err.Error(), strconv.Itoa(code)) || !strings.Contains(err.Error(), msg) {
				t.Errorf("error text %q names neither the status nor Opentact's message", err)
			}
		})
		t.Run(strconv.Itoa(code)+"/html", func(t *testing.T) {
			t.Parallel()
			s := newStub(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(code)
				_, _ = io.WriteString(w, `<html><body>{"message":"not this"} Service unavailable</body></html>`)
			})
			_, err := auth(newClient(t, s.base()), t.Context(), basicCreds(t))
			want := &upstream.Error{Failure: upstream.FailStatus, StatusCode: code, Attempts: attempts}
			if diff := cmp.Diff(want, asError(t, err), errorOpts); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if n := s.hits.Load(); n != int32(attempts) {
				t.Errorf("Opentact saw %d requests, want %d", n, attempts)
			}
		})
	}
}

// TestAuthRetryAfter checks how Retry-After is read, with a single
// attempt: the 503 would otherwise wait out its 2s hint before each retry
// (retry_test.go covers the waiting).
func TestAuthRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		header   func() string // nil: no Retry-After
		code     int
		min, max time.Duration
	}{
		{"seconds", func() string { return "7" }, 429, 7 * time.Second, 7 * time.Second},
		{"seconds on 503", func() string { return "2" }, 503, 2 * time.Second, 2 * time.Second},
		{"HTTP date 30s ahead", func() string { return time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat) }, 429, 28 * time.Second, 30 * time.Second},
		{"HTTP date in the past", func() string { return time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat) }, 429, 0, 0},
		{"absent", nil, 429, 0, 0},
		{"garbage", func() string { return "soon, maybe" }, 429, 0, 0},
		{"negative", func() string { return "-5" }, 429, 0, 0},
		{"fraction", func() string { return "1.5" }, 429, 0, 0},
		{"huge", func() string { return "86400000" }, 429, time.Hour, time.Hour},
		{"beyond int64", func() string { return "99999999999999999999999" }, 429, time.Hour, time.Hour},
		{"HTTP date a year ahead", func() string { return time.Now().AddDate(1, 0, 0).UTC().Format(http.TimeFormat) }, 429, time.Hour, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStub(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.header != nil {
					w.Header().Set("Retry-After", tt.header())
				}
				reply(tt.code, `{"success":false,"message":"Too many requests","status":`+strconv.Itoa(tt.code)+`}`)(w, r)
			})
			c := newClient(t, s.base(), upstream.WithRetryPolicy(upstream.RetryPolicy{MaxAttempts: 1}))
			_, err := auth(c, t.Context(), basicCreds(t))
			e := asError(t, err)
			if e.Failure != upstream.FailStatus || e.StatusCode != tt.code || e.Attempts != 1 {
				t.Errorf("error = %+v, want FailStatus %d after 1 attempt", e, tt.code)
			}
			if e.RetryAfter < tt.min || e.RetryAfter > tt.max {
				t.Errorf("RetryAfter = %v, want in [%v, %v]", e.RetryAfter, tt.min, tt.max)
			}
		})
	}
}

func TestAuthScrubsMessage(t *testing.T) {
	t.Parallel()
	const jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
	tests := []struct {
		name, message, want string
	}{
		{"Basic header", "bad header: " + secretBasic, "bad header: [REDACTED]"},
		{"base64 part", "cannot decode " + secretBasicToken + " sorry", "cannot decode [REDACTED] sorry"},
		{"decoded user:password", "login " + secretEmail + ":" + secretPassword + " failed", "login [REDACTED] failed"},
		{"password", "password '" + secretPassword + "' is wrong", "password '[REDACTED]' is wrong"},
		{"x-auth-token", "token " + secretJWT + " expired", "token [REDACTED] expired"},
		{"any JWT", "token " + jwt + " expired", "token [REDACTED] expired"},
		{"JWT fragment", "token eyJhbGciOiJIUzI1NiJ9 expired", "token [REDACTED] expired"},
		{"control characters", "line one\nline two\ttab\x00nul\x7fdel\r", "line one line two tab nul del"},
		{"plain message kept", "Invalid e-mail or password. Пароль неверный.", "Invalid e-mail or password. Пароль неверный."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body, _ := json.Marshal(map[string]any{"success": false, "message": tt.message, "status": 401})
			s := newStub(t, reply(http.StatusUnauthorized, string(body)))
			creds := mustCreds(t, map[upstream.Kind]string{upstream.Authorization: secretBasic, upstream.XAuthToken: secretJWT})
			_, err := auth(newClient(t, s.base()), t.Context(), creds)
			e := asError(t, err)
			if e.Message != tt.want {
				t.Errorf("Message = %q, want %q", e.Message, tt.want)
			}
			assertNoSecrets(t, "error text", err.Error())
			if strings.Contains(err.Error(), "eyJ") {
				t.Errorf("error text %q holds a JWT", err)
			}
		})
	}
}

func TestAuthTruncatesLongMessage(t *testing.T) {
	t.Parallel()
	// 10 KiB of two-byte runes, shifted by one ASCII byte so that a cut at
	// a fixed byte offset would split a rune.
	msg := "x" + strings.Repeat("Ошибка! ", 10<<10/len("Ошибка! "))
	body, _ := json.Marshal(map[string]any{"success": false, "message": msg, "status": 400})
	s := newStub(t, reply(http.StatusBadRequest, string(body)))
	_, err := auth(newClient(t, s.base()), t.Context(), basicCreds(t))
	e := asError(t, err)
	if !utf8.ValidString(e.Message) {
		t.Errorf("Message is not valid UTF-8: %q", e.Message)
	}
	if len(e.Message) > 1024 || len(e.Message) < 64 {
		t.Errorf("Message is %d bytes long, want it truncated to a few hundred", len(e.Message))
	}
	kept := strings.TrimSuffix(e.Message, "...")
	if kept == e.Message || !strings.HasPrefix(msg, kept) {
		t.Errorf("Message = %q, want a prefix of Opentact's message ending in ...", e.Message)
	}
	if len(err.Error()) > 2048 {
		t.Errorf("error text is %d bytes long", len(err.Error()))
	}
}

// padTo pads a JSON body with trailing whitespace to exactly n bytes.
func padTo(body string, n int) string { return body + strings.Repeat(" ", n-len(body)) }

func TestAuthBodyLimit(t *testing.T) {
	t.Parallel()
	const limit = 4096
	tests := []struct {
		name    string
		size    int
		chunked bool
		tooBig  bool
	}{
		{"at the limit, with Content-Length", limit, false, false},
		{"at the limit, chunked", limit, true, false},
		{"one byte over, with Content-Length", limit + 1, false, true},
		{"one byte over, chunked", limit + 1, true, true},
		{"far over, with Content-Length", 10 * limit, false, true},
		{"far over, chunked", 10 * limit, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := padTo(okBody, tt.size)
			s := newStub(t, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if !tt.chunked {
					w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				}
				w.WriteHeader(http.StatusOK)
				_, _ = io.WriteString(w, body[:10])
				if tt.chunked {
					w.(http.Flusher).Flush() // headers go out without a length
				}
				_, _ = io.WriteString(w, body[10:])
			})
			u, err := auth(newClient(t, s.base(), upstream.WithMaxBodySize(limit)), t.Context(), basicCreds(t))
			if !tt.tooBig {
				if err != nil || u.UUID.Value != "0116f6d1-1280-44b2-9134-da48509ec575" {
					t.Errorf("Auth = %+v, %v; want the user", u, err)
				}
				return
			}
			want := &upstream.Error{Failure: upstream.FailTooLarge, StatusCode: http.StatusOK, Attempts: 1}
			if diff := cmp.Diff(want, asError(t, err), errorOpts); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if n := s.hits.Load(); n != 1 {
				t.Errorf("Opentact saw %d requests, want 1", n)
			}
		})
	}
}

// TestAuthOversizedErrorBody: for an error status the status decides the
// outcome; a body over the cap only costs Opentact's message. The 503 stays
// a 503, retried as one.
func TestAuthOversizedErrorBody(t *testing.T) {
	t.Parallel()
	s := newStub(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, strings.Repeat("<p>down</p>", 1000))
	})
	_, err := auth(newClient(t, s.base(), upstream.WithMaxBodySize(1024)), t.Context(), basicCreds(t))
	attempts := upstream.DefaultRetryPolicy().MaxAttempts
	want := &upstream.Error{Failure: upstream.FailStatus, StatusCode: http.StatusServiceUnavailable, Attempts: attempts}
	if diff := cmp.Diff(want, asError(t, err), errorOpts); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
	if n := s.hits.Load(); n != int32(attempts) {
		t.Errorf("Opentact saw %d requests, want %d", n, attempts)
	}
}

func TestAuthDefaultBodyLimit(t *testing.T) {
	t.Parallel()
	s := newStub(t, reply(http.StatusOK, padTo(okBody, upstream.DefaultMaxBodySize+1)))
	_, err := auth(newClient(t, s.base()), t.Context(), basicCreds(t))
	if e := asError(t, err); e.Failure != upstream.FailTooLarge || e.Attempts != 1 {
		t.Errorf("error = %+v, want FailTooLarge after 1 attempt", e)
	}
}

func allCreds(t *testing.T) upstream.Credentials {
	return mustCreds(t, map[upstream.Kind]string{
		upstream.Authorization:      secretBasic,
		upstream.XAuthToken:         secretJWT,
		upstream.XAuthGoogleToken:   secretGoogle,
		upstream.XAuthFacebookToken: secretFacebook,
		upstream.XAuthHA1BToken:     secretHA1B,
	})
}

func TestAuthConnectionRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	u, err := auth(newClient(t, "http://"+addr+apiPrefix), t.Context(), allCreds(t))
	if u != nil {
		t.Errorf("Auth returned a user %+v", u)
	}
	// Refused is transient: the default policy tries every attempt.
	want := &upstream.Error{Failure: upstream.FailTransport, Attempts: upstream.DefaultRetryPolicy().MaxAttempts}
	if diff := cmp.Diff(want, asError(t, err), errorOpts); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
	assertNoSecrets(t, "error text", err.Error())
}

func TestAuthBodyCutOff(t *testing.T) {
	t.Parallel()
	s := newStub(t, func(w http.ResponseWriter, _ *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Errorf("Hijack: %v", err)
			return
		}
		defer conn.Close()
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
		_, _ = buf.WriteString(okBody[:10])
		_ = buf.Flush()
	})
	u, err := auth(newClient(t, s.base()), t.Context(), allCreds(t))
	if u != nil {
		t.Errorf("Auth returned a user %+v", u)
	}
	// A cut-off body is transient: the default policy tries every attempt.
	attempts := upstream.DefaultRetryPolicy().MaxAttempts
	want := &upstream.Error{Failure: upstream.FailTransport, Attempts: attempts}
	if diff := cmp.Diff(want, asError(t, err), errorOpts); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
	if n := s.hits.Load(); n != int32(attempts) {
		t.Errorf("Opentact saw %d requests, want %d", n, attempts)
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("error %v does not wrap io.ErrUnexpectedEOF", err)
	}
	assertNoSecrets(t, "error text", err.Error())
}

// hangingStub never answers, or answers part of the body and stalls, until
// the client goes away or the test ends.
func hangingStub(t *testing.T, partialBody bool, arrived chan<- struct{}) *stub {
	release := make(chan struct{})
	s := newStub(t, func(w http.ResponseWriter, r *http.Request) {
		if partialBody {
			w.Header().Set("Content-Length", "1000")
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, okBody[:10])
			w.(http.Flusher).Flush()
		}
		if arrived != nil {
			arrived <- struct{}{}
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // runs before the server's Close
	return s
}

func TestAuthContextEnds(t *testing.T) {
	t.Parallel()
	for _, partial := range []bool{false, true} {
		name := map[bool]string{false: "before headers", true: "mid-body"}[partial]
		t.Run("deadline/"+name, func(t *testing.T) {
			t.Parallel()
			s := hangingStub(t, partial, nil)
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			// The stub hangs until the test ends: Auth returns at all
			// only at the deadline.
			u, err := auth(newClient(t, s.base()), ctx, allCreds(t))
			checkContextError(t, u, err, context.DeadlineExceeded)
		})
		t.Run("cancelled in flight/"+name, func(t *testing.T) {
			t.Parallel()
			arrived := make(chan struct{}, 1)
			s := hangingStub(t, partial, arrived)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			go func() {
				select {
				case <-arrived:
					cancel()
				case <-ctx.Done():
				}
			}()
			u, err := auth(newClient(t, s.base()), ctx, allCreds(t))
			checkContextError(t, u, err, context.Canceled)
		})
	}
	t.Run("cancelled before the call", func(t *testing.T) {
		t.Parallel()
		s := newStub(t, reply(http.StatusOK, okBody))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		u, err := auth(newClient(t, s.base()), ctx, allCreds(t))
		checkContextError(t, u, err, context.Canceled)
		if n := s.hits.Load(); n != 0 {
			t.Errorf("Opentact saw %d requests after the context ended", n)
		}
	})
}

func checkContextError(t *testing.T, u *profile, err, want error) {
	t.Helper()
	if u != nil {
		t.Errorf("Auth returned a user %+v", u)
	}
	if !errors.Is(err, want) {
		t.Fatalf("err = %v (%T), want errors.Is %v", err, err, want)
	}
	var ue *upstream.Error
	if errors.As(err, &ue) {
		t.Errorf("err = %#v, want a context error, not an *upstream.Error", ue)
	}
	assertNoSecrets(t, "error text", err.Error())
}
