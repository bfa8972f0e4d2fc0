package sandbox_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
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

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/opentact-facade/opentact-facade/internal/sandbox"
)

// Serve starts goroutines; none may outlive the test that started it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const demoUUID = "0116f6d1-1280-44b2-9134-da48509ec575"

// demoPayload is the demo profile without its token, as a client decoding
// with json.Decoder.UseNumber sees it. It follows Opentact's documented 2024
// payload.
func demoPayload() map[string]any {
	return map[string]any{
		"uuid":         demoUUID,
		"email":        "opentact@callify.io",
		"wss_online":   true,
		"role":         "User",
		"created_on":   "2024-01-16T14:15:48.540Z",
		"modified_on":  "2024-01-16T14:15:48.540Z",
		"deleted_on":   nil,
		"phone_number": "+1234567890",
		"dob":          "2024-01-16T14:15:48.540Z",
		"avatar":       "https://google/image.png",
		"first_name":   "First Name",
		"last_name":    "Last Name",
		"gender":       "Female",
		"account": map[string]any{
			"created_on":  "2024-01-16T14:15:48.540Z",
			"modified_on": "2024-01-16T14:15:48.540Z",
			"uuid":        "f2cb79fb-6bf8-4484-8034-debf95aac73b",
			"email":       "info@denovolab.com",
			"name":        "DENOVOLAB",
			"level":       "Level0",
			"deleted_on":  nil,
			"balance":     json.Number("99.87895"),
			"phone":       json.Number("87015260731"),
			"address1":    "1 Demo Street",
			"address2":    nil,
			"zip_code":    "10001",
			"city":        "New York",
			"class4_id":   json.Number("48213"),
			"disabled_on": nil,
			"time_zone": map[string]any{"name": "America/New_York", "country_code": "US",
				"utc_offset": json.Number("-5"), "utc_dst_offset": json.Number("-4")},
			"messaging_profile_default": nil,
			"messaging_profiles":        []any{},
			"addresses": []any{map[string]any{"name": "office", "is_billing": true, "city": "New York",
				"country": map[string]any{"a2": "US", "n": json.Number("840")}}},
		},
	}
}

// start serves a new sandbox built from opts on a real HTTP server.
func start(t *testing.T, opts sandbox.Options) *httptest.Server {
	t.Helper()
	sb, err := sandbox.New(opts)
	if err != nil {
		t.Fatalf("sandbox.New: %v", err)
	}
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	return srv
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// call sends method path to srv with the given headers and reads the whole answer.
func call(t *testing.T, srv *httptest.Server, method, path string, header http.Header) response {
	t.Helper()
	return request(t, srv, method, path, header, nil, "")
}

// request sends method path to srv with the given headers, a body (nil for
// none) of contentType, and reads the whole answer.
func request(t *testing.T, srv *httptest.Server, method, path string, header http.Header, body io.Reader, contentType string) response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, body)
	if err != nil {
		t.Fatalf("NewRequest: %v", err)
	}
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body of %s %s: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func basic(email, password string) http.Header {
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.SetBasicAuth(email, password)
	return http.Header{"Authorization": req.Header["Authorization"]}
}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// withHeader returns a copy of h with key set to value.
func withHeader(h http.Header, key, value string) http.Header {
	out := h.Clone()
	out.Set(key, value)
	return out
}

// merge returns the union of the headers.
func merge(hs ...http.Header) http.Header {
	out := http.Header{}
	for _, h := range hs {
		for k, vs := range h {
			for _, v := range vs {
				out.Add(k, v)
			}
		}
	}
	return out
}

func decode(t *testing.T, body []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, body)
	}
	if dec.More() {
		t.Fatalf("body has data after the JSON object:\n%s", body)
	}
	return v
}

func wantJSONContentType(t *testing.T, r response) {
	t.Helper()
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
}

// wantSuccess checks a 200 answer with Opentact's success envelope and
// returns its payload without the token, and the token.
func wantSuccess(t *testing.T, r response) (map[string]any, string) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status = %d, want 200; body: %s", r.status, r.body)
	}
	wantJSONContentType(t, r)
	env := decode(t, r.body)
	if len(env) != 2 || env["success"] != true {
		t.Fatalf("envelope = %s, want {\"success\":true,\"payload\":{...}}", r.body)
	}
	payload, ok := env["payload"].(map[string]any)
	if !ok {
		t.Fatalf("payload is %T, want an object; body: %s", env["payload"], r.body)
	}
	token, ok := payload["token"].(string)
	if !ok {
		t.Fatalf("payload.token is %T, want a string; body: %s", payload["token"], r.body)
	}
	delete(payload, "token")
	return payload, token
}

// wantError checks Opentact's error body with the given status.
func wantError(t *testing.T, r response, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body: %s", r.status, status, r.body)
	}
	wantJSONContentType(t, r)
	got := decode(t, r.body)
	msg, _ := got["message"].(string)
	if msg == "" {
		t.Errorf("message = %#v, want a non-empty string; body: %s", got["message"], r.body)
	}
	delete(got, "message")
	want := map[string]any{"success": false, "status": json.Number(strconv.Itoa(status))}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("error body mismatch (-want +got):\n%s\nbody: %s", diff, r.body)
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

type claims struct {
	UUID string `json:"uuid"`
	Iat  int64  `json:"iat"`
	Exp  int64  `json:"exp"`
}

// parseJWT checks that token is an HS256 JWT and returns its claims; when
// secret is not nil it also checks the signature.
func parseJWT(t *testing.T, token string, secret []byte) claims {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d dot-separated parts, want 3", token, len(parts))
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(b64(t, parts[0]), &header); err != nil || header.Alg != "HS256" {
		t.Fatalf("token header = %s (err %v), want alg HS256", b64(t, parts[0]), err)
	}
	var c claims
	if err := json.Unmarshal(b64(t, parts[1]), &c); err != nil {
		t.Fatalf("token claims %s: %v", b64(t, parts[1]), err)
	}
	if secret != nil {
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(parts[0] + "." + parts[1]))
		if !hmac.Equal(mac.Sum(nil), b64(t, parts[2])) {
			t.Errorf("token signature does not verify with the sandbox's secret")
		}
	}
	return c
}

func b64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("%q is not base64url: %v", s, err)
	}
	return b
}

// signJWT makes an HS256 JWT with the given claims.
func signJWT(secret []byte, claims any) string {
	head := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	body := base64.RawURLEncoding.EncodeToString(mustJSON(claims))
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(head + "." + body))
	return head + "." + body + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// clock is a settable Options.Now.
type clock struct{ unix atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.unix.Store(t.Unix())
	return c
}
func (c *clock) Now() time.Time  { return time.Unix(c.unix.Load(), 0) }
func (c *clock) Set(t time.Time) { c.unix.Store(t.Unix()) }

func TestDemoBasicLogin(t *testing.T) {
	t.Parallel()
	secret := []byte("test-secret-for-demo-login")
	now := time.Date(2024, 1, 16, 14, 15, 48, 0, time.UTC)
	const ttl = 90 * time.Minute
	srv := start(t, sandbox.Options{
		Secret:   secret,
		TokenTTL: ttl,
		Now:      func() time.Time { return now },
	})

	payload, token := wantSuccess(t, call(t, srv, http.MethodGet, "/rest/auth", basic(sandbox.DemoEmail, sandbox.DemoPassword)))

	if diff := cmp.Diff(demoPayload(), payload); diff != "" {
		t.Errorf("payload mismatch (-want +got):\n%s", diff)
	}
	got := parseJWT(t, token, secret)
	want := claims{UUID: demoUUID, Iat: now.Unix(), Exp: now.Add(ttl).Unix()}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("token claims mismatch (-want +got):\n%s", diff)
	}
}

func TestDemoBalanceIsTheLiteralNumber(t *testing.T) {
	t.Parallel()
	srv := start(t, sandbox.Options{})
	r := call(t, srv, http.MethodGet, "/rest/auth", basic(sandbox.DemoEmail, sandbox.DemoPassword))
	if r.status != http.StatusOK {
		t.Fatalf("status = %d; body: %s", r.status, r.body)
	}
	// Money must travel as the JSON number Opentact sends, not a string
	// nor a re-formatted float.
	if !bytes.Contains(r.body, []byte(`"balance":99.87895`)) {
		t.Errorf("body does not carry \"balance\":99.87895 verbatim:\n%s", r.body)
	}
}

func TestDemoTokenDefaultTTLIs24Hours(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 5, 1, 0, 0, 0, 0, time.UTC)
	srv := start(t, sandbox.Options{Now: func() time.Time { return now }})
	_, token := wantSuccess(t, call(t, srv, http.MethodGet, "/rest/auth", basic(sandbox.DemoEmail, sandbox.DemoPassword)))
	c := parseJWT(t, token, nil)
	if c.Iat != now.Unix() || c.Exp-c.Iat != int64((24*time.Hour)/time.Second) {
		t.Errorf("iat = %d, exp = %d; want iat %d and a 24h lifetime", c.Iat, c.Exp, now.Unix())
	}
}

func TestDemoCredentialKinds(t *testing.T) {
	t.Parallel()
	secret := []byte("test-secret-for-credential-kinds")
	srv := start(t, sandbox.Options{Secret: secret})

	for _, tc := range []struct {
		name   string
		header http.Header
	}{
		{"basic", basic(sandbox.DemoEmail, sandbox.DemoPassword)},
		{"basic with upper-case e-mail", basic(strings.ToUpper(sandbox.DemoEmail), sandbox.DemoPassword)},
		{"bearer api token", hdr("Authorization", "Bearer "+sandbox.DemoAPIToken)},
		{"bearer scheme in lower case", hdr("Authorization", "bearer "+sandbox.DemoAPIToken)},
		{"bare api token", hdr("Authorization", sandbox.DemoAPIToken)},
		{"google token", hdr("X-Auth-Google-Token", sandbox.DemoGoogleToken)},
		{"facebook token", hdr("X-Auth-Facebook-Token", sandbox.DemoFacebookToken)},
		{"ha1b token", hdr("X-Auth-HA1B-Token", sandbox.DemoHA1B)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			payload, token := wantSuccess(t, call(t, srv, http.MethodGet, "/rest/auth", tc.header))
			if diff := cmp.Diff(demoPayload(), payload); diff != "" {
				t.Errorf("payload mismatch (-want +got):\n%s", diff)
			}
			if c := parseJWT(t, token, secret); c.UUID != demoUUID {
				t.Errorf("token uuid = %q, want %q", c.UUID, demoUUID)
			}
		})
	}
}

func TestDemoHA1BIsDocumentedDigest(t *testing.T) {
	t.Parallel()
	// md5("opentact@callify.io:callify.io:12345678"), computed with md5sum.
	const want = "5a65add1defb39a89e876afdc37d5a7d"
	if sandbox.DemoHA1B != want {
		t.Errorf("DemoHA1B = %q, want md5(login@domain:domain:password) = %q", sandbox.DemoHA1B, want)
	}
}

func TestTokenRoundTrip(t *testing.T) {
	t.Parallel()
	secret := []byte("test-secret-for-round-trip")
	srv := start(t, sandbox.Options{Secret: secret})

	_, token := wantSuccess(t, call(t, srv, http.MethodGet, "/rest/auth", basic(sandbox.DemoEmail, sandbox.DemoPassword)))

	// The token alone identifies the demo user and earns a fresh token.
	payload, fresh := wantSuccess(t, call(t, srv, http.MethodGet, "/rest/auth", hdr("X-Auth-Token", token)))
	if diff := cmp.Diff(demoPayload(), payload); diff != "" {
		t.Errorf("payload for X-Auth-Token mismatch (-want +got):\n%s", diff)
	}
	if c := parseJWT(t, fresh, secret); c.UUID != demoUUID {
		t.Errorf("fresh token uuid = %q, want %q", c.UUID, demoUUID)
	}
}

func TestTokenFromAnotherSecretIsRejected(t *testing.T) {
	t.Parallel()
	issuer := start(t, sandbox.Options{Secret: []byte("secret-of-the-issuer")})
	other := start(t, sandbox.Options{Secret: []byte("secret-of-another-sandbox")})

	_, token := wantSuccess(t, call(t, issuer, http.MethodGet, "/rest/auth", basic(sandbox.DemoEmail, sandbox.DemoPassword)))
	wantSuccess(t, call(t, issuer, http.MethodGet, "/rest/auth", hdr("X-Auth-Token", token)))
	wantError(t, call(t, other, http.MethodGet, "/rest/auth", hdr("X-Auth-Token", token)), http.StatusUnauthorized)
}

func TestExpiredTokenIsRejected(t *testing.T) {
	t.Parallel()
	const ttl = 10 * time.Minute
	issued := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	clk := newClock(issued)
	srv := start(t, sandbox.Options{Secret: []byte("test-secret-for-expiry"), TokenTTL: ttl, Now: clk.Now})

	_, token := wantSuccess(t, call(t, srv, http.MethodGet, "/rest/auth", basic(sandbox.DemoEmail, sandbox.DemoPassword)))

	clk.Set(issued.Add(ttl - time.Second))
	wantSuccess(t, call(t, srv, http.MethodGet, "/rest/auth", hdr("X-Auth-Token", token)))

	clk.Set(issued.Add(ttl + time.Second))
	wantError(t, call(t, srv, http.MethodGet, "/rest/auth", hdr("X-Auth-Token", token)), http.StatusUnauthorized)

	// Basic still works at that time, so it is the token that was refused.
	wantSuccess(t, call(t, srv, http.MethodGet, "/rest/auth", basic(sandbox.DemoEmail, sandbox.DemoPassword)))
}

func TestBadTokensAreRejected(t *testing.T) {
	t.Parallel()
	secret := []byte("test-secret-for-bad-tokens")
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	srv := start(t, sandbox.Options{Secret: secret, Now: func() time.Time { return now }})

	_, good := wantSuccess(t, call(t, srv, http.MethodGet, "/rest/auth", basic(sandbox.DemoEmail, sandbox.DemoPassword)))
	parts := strings.Split(good, ".")
	unsigned := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
	exp := now.Add(time.Hour).Unix()

	for _, tc := range []struct {
		name  string
		token string
	}{
		{"garbage", "not-a-token"},
		{"three garbage parts", "abc.def.ghi"},
		{"truncated signature", good[:len(good)-4]},
		{"alg none", unsigned},
		{"claims of another uuid under the demo signature", parts[0] + "." +
			base64.RawURLEncoding.EncodeToString(mustJSON(map[string]any{"uuid": "someone-else", "iat": now.Unix(), "exp": exp})) + "." + parts[2]},
		{"signed with the secret but unknown uuid", signJWT(secret, map[string]any{"uuid": "no-such-user", "iat": now.Unix(), "exp": exp})},
		{"signed with the secret but no exp", signJWT(secret, map[string]any{"uuid": demoUUID, "iat": now.Unix()})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wantError(t, call(t, srv, http.MethodGet, "/rest/auth", hdr("X-Auth-Token", tc.token)), http.StatusUnauthorized)
		})
	}

	// The hand-made signer is sound: a well-formed token for the demo user
	// signed with the secret is accepted, so the rejections above are about
	// what each case breaks.
	wantSuccess(t, call(t, srv, http.MethodGet, "/rest/auth",
		hdr("X-Auth-Token", signJWT(secret, map[string]any{"uuid": demoUUID, "iat": now.Unix(), "exp": exp}))))
}

func TestUnauthorized(t *testing.T) {
	t.Parallel()
	srv := start(t, sandbox.Options{})

	for _, tc := range []struct {
		name   string
		header http.Header
	}{
		{"no credentials", nil},
		{"bad password", basic(sandbox.DemoEmail, "87654321")},
		{"password with different case", basic(sandbox.DemoEmail, strings.ToUpper("abc"+sandbox.DemoPassword))},
		{"empty password", basic(sandbox.DemoEmail, "")},
		{"unknown e-mail", basic("nobody@example.com", sandbox.DemoPassword)},
		{"malformed basic", hdr("Authorization", "Basic !!!not-base64!!!")},
		{"unknown bearer token", hdr("Authorization", "Bearer not-"+sandbox.DemoAPIToken)},
		{"unknown google token", hdr("X-Auth-Google-Token", "not-"+sandbox.DemoGoogleToken)},
		{"unknown facebook token", hdr("X-Auth-Facebook-Token", "not-"+sandbox.DemoFacebookToken)},
		{"unknown ha1b token", hdr("X-Auth-HA1B-Token", strings.Repeat("0", 32))},
		{"google token in the facebook header", hdr("X-Auth-Facebook-Token", sandbox.DemoGoogleToken)},
		{"api token as google token", hdr("X-Auth-Google-Token", sandbox.DemoAPIToken)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wantError(t, call(t, srv, http.MethodGet, "/rest/auth", tc.header), http.StatusUnauthorized)
		})
	}
}

func TestAccountWithoutPasswordRefusesBasic(t *testing.T) {
	t.Parallel()
	srv := start(t, sandbox.Options{Accounts: []sandbox.Account{{
		GoogleToken: "nopass-google",
		Profile:     json.RawMessage(`{"uuid":"u-nopass","email":"nopass@example.com"}`),
	}}})
	wantSuccess(t, call(t, srv, http.MethodGet, "/rest/auth", hdr("X-Auth-Google-Token", "nopass-google")))
	wantError(t, call(t, srv, http.MethodGet, "/rest/auth", basic("nopass@example.com", "")), http.StatusUnauthorized)
}

// otherAccount is a second user, for mixing credentials of two users.
func otherAccount() sandbox.Account {
	return sandbox.Account{
		Password:      "other-password",
		APITokens:     []string{"other-api-token"},
		GoogleToken:   "other-google-token",
		FacebookToken: "other-facebook-token",
		HA1B:          "0123456789abcdef0123456789abcdef",
		Profile:       json.RawMessage(`{"uuid":"9d3b7c36-0000-4000-8000-000000000002","email":"other@example.com"}`),
	}
}

func TestCombinedCredentials(t *testing.T) {
	t.Parallel()
	srv := start(t, sandbox.Options{Accounts: []sandbox.Account{otherAccount()}})

	demoBasic := basic(sandbox.DemoEmail, sandbox.DemoPassword)
	_, demoToken := wantSuccess(t, call(t, srv, http.MethodGet, "/rest/auth", demoBasic))
	otherBasic := basic("other@example.com", "other-password")
	_, otherToken := wantSuccess(t, call(t, srv, http.MethodGet, "/rest/auth", otherBasic))

	allDemo := merge(demoBasic, hdr(
		"X-Auth-Token", demoToken,
		"X-Auth-Google-Token", sandbox.DemoGoogleToken,
		"X-Auth-Facebook-Token", sandbox.DemoFacebookToken,
		"X-Auth-HA1B-Token", sandbox.DemoHA1B,
	))

	for _, tc := range []struct {
		name     string
		header   http.Header
		wantUUID string // empty: want 401
	}{
		{"basic and x-auth-token of the same user (documented example)", merge(demoBasic, hdr("X-Auth-Token", demoToken)), demoUUID},
		{"every kind of the demo user at once", allDemo, demoUUID},
		{"bearer and ha1b of the same user", hdr("Authorization", "Bearer "+sandbox.DemoAPIToken, "X-Auth-HA1B-Token", sandbox.DemoHA1B), demoUUID},
		{"other user's basic and google token", merge(otherBasic, hdr("X-Auth-Google-Token", "other-google-token")), "9d3b7c36-0000-4000-8000-000000000002"},

		{"demo basic with other user's token", merge(demoBasic, hdr("X-Auth-Token", otherToken)), ""},
		{"other basic with demo token", merge(otherBasic, hdr("X-Auth-Token", demoToken)), ""},
		{"demo google with other facebook", hdr("X-Auth-Google-Token", sandbox.DemoGoogleToken, "X-Auth-Facebook-Token", "other-facebook-token"), ""},
		{"other bearer with demo ha1b", hdr("Authorization", "Bearer other-api-token", "X-Auth-HA1B-Token", sandbox.DemoHA1B), ""},
		{"every demo kind but facebook of the other user", withHeader(allDemo, "X-Auth-Facebook-Token", "other-facebook-token"), ""},

		{"valid basic with garbage token", merge(demoBasic, hdr("X-Auth-Token", "garbage")), ""},
		{"valid token with bad password", merge(basic(sandbox.DemoEmail, "wrong"), hdr("X-Auth-Token", demoToken)), ""},
		{"valid google with unknown ha1b", hdr("X-Auth-Google-Token", sandbox.DemoGoogleToken, "X-Auth-HA1B-Token", strings.Repeat("f", 32)), ""},
		{"valid basic with unknown facebook", merge(demoBasic, hdr("X-Auth-Facebook-Token", "nope")), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := call(t, srv, http.MethodGet, "/rest/auth", tc.header)
			if tc.wantUUID == "" {
				wantError(t, r, http.StatusUnauthorized)
				return
			}
			payload, _ := wantSuccess(t, r)
			if payload["uuid"] != tc.wantUUID {
				t.Errorf("payload uuid = %v, want %s", payload["uuid"], tc.wantUUID)
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	srv := start(t, sandbox.Options{})
	demo := basic(sandbox.DemoEmail, sandbox.DemoPassword)

	for _, tc := range []struct {
		method, path string
		want         int
		allow        string // for 405
	}{
		{http.MethodGet, "/", http.StatusNotFound, ""},
		{http.MethodGet, "/rest", http.StatusNotFound, ""},
		{http.MethodGet, "/rest/auth/", http.StatusNotFound, ""},
		{http.MethodGet, "/rest/authx", http.StatusNotFound, ""},
		{http.MethodGet, "/xrest/auth", http.StatusNotFound, ""},
		{http.MethodGet, "/rest%2Fauth", http.StatusNotFound, ""},
		{http.MethodPost, "/rest/tokens", http.StatusNotFound, ""},
		{http.MethodGet, "/rest/token/list/", http.StatusNotFound, ""},
		{http.MethodDelete, "/rest/token/", http.StatusNotFound, ""},
		{http.MethodDelete, "/rest/token/a/b", http.StatusNotFound, ""},
		{http.MethodPost, "/rest/auth", http.StatusMethodNotAllowed, "GET"},
		{http.MethodPut, "/rest/auth", http.StatusMethodNotAllowed, "GET"},
		{http.MethodDelete, "/rest/auth", http.StatusMethodNotAllowed, "GET"},
		{http.MethodPatch, "/prefix/rest/auth", http.StatusMethodNotAllowed, "GET"},
		{http.MethodGet, "/rest/token", http.StatusMethodNotAllowed, "POST"},
		{http.MethodDelete, "/rest/token", http.StatusMethodNotAllowed, "POST"},
		{http.MethodPost, "/rest/token/list", http.StatusMethodNotAllowed, "GET, PATCH, DELETE"},
		{http.MethodGet, "/rest/token/all", http.StatusMethodNotAllowed, "DELETE, PATCH"},
		{http.MethodGet, "/rest/token/3f0c7a52-0000-4000-8000-000000000000", http.StatusMethodNotAllowed, "PATCH, DELETE"},
		{http.MethodPut, "/prefix/rest/token/some-token", http.StatusMethodNotAllowed, "PATCH, DELETE"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			t.Parallel()
			// Valid credentials do not turn these into successes.
			r := call(t, srv, tc.method, tc.path, demo)
			wantError(t, r, tc.want)
			if got := r.header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow = %q, want %q", got, tc.allow)
			}
		})
	}

	for _, path := range []string{"/prefix/rest/auth", "/api/v2/rest/auth", "/rest/auth?x=1"} {
		t.Run("GET "+path, func(t *testing.T) {
			t.Parallel()
			payload, _ := wantSuccess(t, call(t, srv, http.MethodGet, path, demo))
			if diff := cmp.Diff(demoPayload(), payload); diff != "" {
				t.Errorf("payload mismatch (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("prefix without credentials", func(t *testing.T) {
		t.Parallel()
		wantError(t, call(t, srv, http.MethodGet, "/prefix/rest/auth", nil), http.StatusUnauthorized)
	})
}

const annaUUID = "6b1c3f0e-4a61-4d1f-9a55-3c1e8a7d2b90"
const joseUUID = "c8a2e6d4-7b3f-4e19-8d02-5f6a9b1c0e37"

// staleToken is the token written in an accounts file; the sandbox must
// answer with a fresh one instead.
const staleToken = "eyJhbGciOiJIUzI1NiJ9.c3RhbGU.c3RhbGU"

const accountsFile = `[
  {
    "password": "пароль Анны",
    "api_tokens": ["anna-token-1", "anna-token-2"],
    "google_token": "anna-google",
    "profile": {
      "uuid": "6b1c3f0e-4a61-4d1f-9a55-3c1e8a7d2b90",
      "email": "anna@example.ru",
      "first_name": "Анна",
      "last_name": "Каренина",
      "role": "Admin",
      "gender": "Женский",
      "phone_number": null,
      "created_on": "2020-10-26T08:44:15Z",
      "gmail_user_id": "107653031006300523703",
      "avatar": "https://example.com/a.png?size=64&shape=<round>",
      "token": "` + staleToken + `",
      "account": {
        "uuid": "f0000000-0000-4000-8000-000000000001",
        "name": "ТОО «Ромашка»",
        "level": "ServiceAccount",
        "phone": 87015260731,
        "balance": 1234.5600,
        "address1": null,
        "time_zone": "Asia/Almaty",
        "users": [{"uuid": "x"}, {"uuid": "y"}],
        "messaging_profiles": []
      },
      "future_field": {"nested": [1, 2.50, "tres", true, null]}
    }
  },
  {
    "password": "contraseña",
    "ha1b": "aabbccddeeff00112233445566778899",
    "profile": {
      "uuid": "c8a2e6d4-7b3f-4e19-8d02-5f6a9b1c0e37",
      "email": "Jose@Example.es",
      "first_name": "José",
      "last_name": "Núñez",
      "dob": null
    }
  }
]`

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "accounts.json")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// profileFromFile returns the profile of the index-th account in
// accountsFile as a client would decode it, without its token.
func profileFromFile(t *testing.T, index int) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(accountsFile))
	dec.UseNumber()
	var accounts []struct {
		Profile map[string]any `json:"profile"`
	}
	if err := dec.Decode(&accounts); err != nil {
		t.Fatal(err)
	}
	p := accounts[index].Profile
	delete(p, "token")
	return p
}

func TestLoadedAccounts(t *testing.T) {
	t.Parallel()
	secret := []byte("test-secret-for-loaded-accounts")
	accounts, err := sandbox.LoadAccounts(writeFile(t, accountsFile))
	if err != nil {
		t.Fatalf("LoadAccounts: %v", err)
	}
	if len(accounts) != 2 {
		t.Fatalf("LoadAccounts returned %d accounts, want 2", len(accounts))
	}
	srv := start(t, sandbox.Options{Accounts: accounts, Secret: secret})

	for _, tc := range []struct {
		name    string
		header  http.Header
		index   int
		uuid    string
		rawBits []string // must appear verbatim in the body
	}{
		{"anna by password", basic("anna@example.ru", "пароль Анны"), 0, annaUUID,
			[]string{`"phone":87015260731`, `"first_name":"Анна"`}},
		{"anna by first api token", hdr("Authorization", "Bearer anna-token-1"), 0, annaUUID, nil},
		{"anna by second api token", hdr("Authorization", "anna-token-2"), 0, annaUUID, nil},
		{"anna by google", hdr("X-Auth-Google-Token", "anna-google"), 0, annaUUID, nil},
		{"josé by password", basic("jose@example.es", "contraseña"), 1, joseUUID,
			[]string{`"first_name":"José"`, `"last_name":"Núñez"`}},
		{"josé by ha1b", hdr("X-Auth-HA1B-Token", "aabbccddeeff00112233445566778899"), 1, joseUUID, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := call(t, srv, http.MethodGet, "/rest/auth", tc.header)
			payload, token := wantSuccess(t, r)
			if diff := cmp.Diff(profileFromFile(t, tc.index), payload); diff != "" {
				t.Errorf("payload mismatch (-want +got):\n%s", diff)
			}
			if c := parseJWT(t, token, secret); c.UUID != tc.uuid {
				t.Errorf("token uuid = %q, want %q", c.UUID, tc.uuid)
			}
			// The profile's own token is replaced, not sent alongside the fresh one.
			if n := bytes.Count(r.body, []byte(`"token"`)); n != 1 || bytes.Contains(r.body, []byte(staleToken)) {
				t.Errorf("body has %d \"token\" keys (want 1) or still carries the file's token:\n%s", n, r.body)
			}
			for _, bit := range tc.rawBits {
				if !bytes.Contains(r.body, []byte(bit)) {
					t.Errorf("body does not contain %s verbatim:\n%s", bit, r.body)
				}
			}
		})
	}

	t.Run("anna's password does not open josé", func(t *testing.T) {
		t.Parallel()
		wantError(t, call(t, srv, http.MethodGet, "/rest/auth", basic("jose@example.es", "пароль Анны")), http.StatusUnauthorized)
	})
	t.Run("demo account is still there", func(t *testing.T) {
		t.Parallel()
		payload, _ := wantSuccess(t, call(t, srv, http.MethodGet, "/rest/auth", basic(sandbox.DemoEmail, sandbox.DemoPassword)))
		if diff := cmp.Diff(demoPayload(), payload); diff != "" {
			t.Errorf("payload mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestInvalidAccounts(t *testing.T) {
	t.Parallel()
	const ok = `{"uuid":"u-1","email":"a@example.com"}`
	for _, tc := range []struct {
		name    string
		content string
		atLoad  bool // LoadAccounts must fail; otherwise New must
	}{
		{"object instead of array", `{"password":"x","profile":` + ok + `}`, true},
		{"not json", `accounts: [anna]`, true},
		{"empty file", ``, true},
		{"array of strings", `["anna"]`, true},
		{"truncated", `[{"profile":` + ok, true},
		{"api_tokens not a list", `[{"api_tokens":"t","profile":` + ok + `}]`, true},
		{"null", `null`, true},

		{"profile missing", `[{"password":"x"}]`, false},
		{"profile null", `[{"profile":null}]`, false},
		{"profile an array", `[{"profile":[` + ok + `]}]`, false},
		{"profile a string", `[{"profile":"` + strings.ReplaceAll(ok, `"`, `\"`) + `"}]`, false},
		{"profile without uuid", `[{"profile":{"email":"a@example.com"}}]`, false},
		{"profile with empty uuid", `[{"profile":{"uuid":"","email":"a@example.com"}}]`, false},
		{"profile with numeric uuid", `[{"profile":{"uuid":42,"email":"a@example.com"}}]`, false},
		{"profile without email", `[{"profile":{"uuid":"u-1"}}]`, false},
		{"profile with null email", `[{"profile":{"uuid":"u-1","email":null}}]`, false},
		{"duplicate uuid", `[{"profile":` + ok + `},{"profile":{"uuid":"u-1","email":"b@example.com"}}]`, false},
		{"duplicate e-mail", `[{"profile":` + ok + `},{"profile":{"uuid":"u-2","email":"a@example.com"}}]`, false},
		{"duplicate e-mail in another case", `[{"profile":` + ok + `},{"profile":{"uuid":"u-2","email":"A@Example.COM"}}]`, false},
		{"e-mail of the demo account", `[{"password":"hijack","profile":{"uuid":"u-2","email":"OPENTACT@callify.io"}}]`, false},
		{"uuid of the demo account", `[{"profile":{"uuid":"` + demoUUID + `","email":"b@example.com"}}]`, false},
		{"api token of the demo account", `[{"api_tokens":["` + sandbox.DemoAPIToken + `"],"profile":` + ok + `}]`, false},
		{"google token of another account", `[{"google_token":"g","profile":` + ok + `},{"google_token":"g","profile":{"uuid":"u-2","email":"b@example.com"}}]`, false},
		{"ha1b of the demo account", `[{"ha1b":"` + sandbox.DemoHA1B + `","profile":` + ok + `}]`, false},
		{"second account bad", `[{"profile":` + ok + `},{"profile":{"email":"b@example.com"}}]`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			accounts, err := sandbox.LoadAccounts(writeFile(t, tc.content))
			if tc.atLoad {
				if err == nil {
					t.Fatalf("LoadAccounts succeeded with %d accounts, want an error", len(accounts))
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadAccounts: %v (want it to succeed and New to fail)", err)
			}
			if sb, err := sandbox.New(sandbox.Options{Accounts: accounts}); err == nil {
				t.Errorf("New succeeded (%T), want an error", sb)
			}
		})
	}

	t.Run("missing file", func(t *testing.T) {
		t.Parallel()
		_, err := sandbox.LoadAccounts(filepath.Join(t.TempDir(), "absent.json"))
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("LoadAccounts(absent) error = %v, want one matching os.ErrNotExist", err)
		}
	})

	t.Run("valid control", func(t *testing.T) {
		t.Parallel()
		accounts, err := sandbox.LoadAccounts(writeFile(t, `[{"profile":`+ok+`}]`))
		if err != nil {
			t.Fatalf("LoadAccounts: %v", err)
		}
		if _, err := sandbox.New(sandbox.Options{Accounts: accounts}); err != nil {
			t.Errorf("New: %v", err)
		}
	})
}

// syncBuffer is a bytes.Buffer safe for a logger on the server's goroutines.
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

func TestLogsNoSecrets(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	sb, err := sandbox.New(sandbox.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sb)
	defer srv.Close()

	_, token := wantSuccess(t, call(t, srv, http.MethodGet, "/rest/auth", basic(sandbox.DemoEmail, sandbox.DemoPassword)))
	wantSuccess(t, call(t, srv, http.MethodGet, "/rest/auth", merge(basic(sandbox.DemoEmail, sandbox.DemoPassword),
		hdr("X-Auth-Token", token, "X-Auth-Google-Token", sandbox.DemoGoogleToken))))
	wantError(t, call(t, srv, http.MethodGet, "/rest/auth", hdr("X-Auth-HA1B-Token", "wrong-ha1b")), http.StatusUnauthorized)
	srv.Close() // waits for the handlers, and so for their log lines

	out := logs.String()
	for _, secret := range []string{sandbox.DemoPassword, token, sandbox.DemoGoogleToken, "wrong-ha1b",
		base64.StdEncoding.EncodeToString([]byte(sandbox.DemoEmail + ":" + sandbox.DemoPassword))} {
		if strings.Contains(out, secret) {
			t.Errorf("log carries the credential %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{"status=200", "status=401", "x-auth-token", "x-auth-google-token"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

// closeNotifier is a listener that reports when it is closed, which is the
// first thing a shutting-down http.Server does.
type closeNotifier struct {
	net.Listener
	once   sync.Once
	closed chan struct{}
}

func (l *closeNotifier) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

func TestServeShutsDownGracefully(t *testing.T) {
	t.Parallel()
	sb, err := sandbox.New(sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lis := &closeNotifier{Listener: inner, closed: make(chan struct{})}

	// A request that is in flight when the context ends.
	arrived, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		sb.ServeHTTP(w, r)
	})

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- sandbox.Serve(ctx, lis, h, nil) }()

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+lis.Addr().String()+"/rest/auth", nil)
	req.SetBasicAuth(sandbox.DemoEmail, sandbox.DemoPassword)
	type result struct {
		status int
		body   []byte
		err    error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := client.Do(req)
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		got <- result{resp.StatusCode, body, err}
	}()

	<-arrived
	cancel()
	<-lis.closed // shutdown has begun
	select {
	case err := <-served:
		t.Fatalf("Serve returned (%v) while a request was still in flight", err)
	default:
	}
	close(release)

	r := <-got
	if r.err != nil {
		t.Fatalf("in-flight request failed during shutdown: %v", r.err)
	}
	if r.status != http.StatusOK || !bytes.Contains(r.body, []byte(`"success":true`)) {
		t.Errorf("in-flight request got %d %s, want 200 with the demo payload", r.status, r.body)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve returned %v, want nil after a graceful shutdown", err)
	}
}
