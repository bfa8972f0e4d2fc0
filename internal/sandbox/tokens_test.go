package sandbox_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opentact-facade/opentact-facade/internal/sandbox"
)

// apiToken is a Token as Opentact documents it, and nothing more.
type apiToken struct {
	Name       string `json:"name"`
	TTL        int64  `json:"ttl"`
	Token      string `json:"token"`
	ExpiredOn  string `json:"expired_on"`
	UUID       string `json:"uuid"`
	CreatedOn  string `json:"created_on"`
	ModifiedOn string `json:"modified_on"`
}

var (
	secretRE = regexp.MustCompile(`^[A-Za-z0-9]{48}$`)
	uuidRE   = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
)

const otherUUID = "9d3b7c36-0000-4000-8000-000000000002"

var (
	demoBasic  = basic(sandbox.DemoEmail, sandbox.DemoPassword)
	otherBasic = basic("other@example.com", "other-password")
)

func bearer(token string) http.Header { return hdr("Authorization", "Bearer "+token) }

// opentactTime is how Opentact writes a time: UTC with milliseconds.
func opentactTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// send is call with a request body.
func send(t *testing.T, srv *httptest.Server, method, path string, header http.Header, body string) response {
	t.Helper()
	return request(t, srv, method, path, header, strings.NewReader(body), "application/json")
}

// wantPayload checks Opentact's success envelope with the given status and
// decodes its payload into v, refusing keys v does not have.
func wantPayload(t *testing.T, r response, status int, v any) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body: %s", r.status, status, r.body)
	}
	wantJSONContentType(t, r)
	var env struct {
		Success *bool           `json:"success"`
		Payload json.RawMessage `json:"payload"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil || env.Success == nil || !*env.Success {
		t.Fatalf("envelope = %s (err %v), want {\"success\":true,\"payload\":...}", r.body, err)
	}
	dec = json.NewDecoder(bytes.NewReader(env.Payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("payload %s: %v", env.Payload, err)
	}
}

// wantMessage checks Opentact's error body with the given status and message.
func wantMessage(t *testing.T, r response, status int, message string) {
	t.Helper()
	wantError(t, r, status)
	if got := decode(t, r.body)["message"]; got != message {
		t.Errorf("message = %v, want %q", got, message)
	}
}

// wantFields checks Opentact's validation error and returns its fields.
func wantFields(t *testing.T, r response) map[string]map[string]any {
	t.Helper()
	if r.status != http.StatusBadRequest {
		t.Fatalf("status = %d, want 400; body: %s", r.status, r.body)
	}
	wantJSONContentType(t, r)
	var body struct {
		Success *bool                     `json:"success"`
		Message string                    `json:"message"`
		Status  int                       `json:"status"`
		Fields  map[string]map[string]any `json:"fields"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	if body.Success == nil || *body.Success || body.Status != 400 || body.Message == "" || len(body.Fields) == 0 {
		t.Errorf("body = %s, want success false, status 400, a message and fields", r.body)
	}
	for name, f := range body.Fields {
		if msg, _ := f["message"].(string); msg == "" {
			t.Errorf("fields.%s has no message: %s", name, r.body)
		}
	}
	return body.Fields
}

func createToken(t *testing.T, srv *httptest.Server, h http.Header, body string) apiToken {
	t.Helper()
	var tok apiToken
	wantPayload(t, send(t, srv, http.MethodPost, "/rest/token", h, body), http.StatusCreated, &tok)
	return tok
}

func listTokens(t *testing.T, srv *httptest.Server, h http.Header) []apiToken {
	t.Helper()
	var list []apiToken
	wantPayload(t, call(t, srv, http.MethodGet, "/rest/token/list", h), http.StatusOK, &list)
	if list == nil {
		t.Fatalf("payload is null, want an array")
	}
	return list
}

// authUUID is the uuid GET /rest/auth answers for h, or "" for a 401.
func authUUID(t *testing.T, srv *httptest.Server, h http.Header) string {
	t.Helper()
	r := call(t, srv, http.MethodGet, "/rest/auth", h)
	if r.status == http.StatusUnauthorized {
		wantError(t, r, http.StatusUnauthorized)
		return ""
	}
	payload, _ := wantSuccess(t, r)
	id, _ := payload["uuid"].(string)
	return id
}

func TestTokenCreate(t *testing.T) {
	t.Parallel()
	now := time.Date(2020, 10, 26, 15, 57, 28, 0, time.UTC)
	srv := start(t, sandbox.Options{Now: func() time.Time { return now }})

	tok := createToken(t, srv, demoBasic, `{"name":"ci key","ttl":3600}`)
	want := apiToken{
		Name: "ci key", TTL: 3600, Token: tok.Token, UUID: tok.UUID,
		CreatedOn: opentactTime(now), ModifiedOn: opentactTime(now), ExpiredOn: opentactTime(now.Add(time.Hour)),
	}
	if diff := cmp.Diff(want, tok); diff != "" {
		t.Errorf("token mismatch (-want +got):\n%s", diff)
	}
	if !secretRE.MatchString(tok.Token) {
		t.Errorf("token = %q, want 48 alphanumeric characters", tok.Token)
	}
	if !uuidRE.MatchString(tok.UUID) {
		t.Errorf("uuid = %q, want a lowercase random UUID", tok.UUID)
	}

	// It works at once, as Bearer and bare, for /rest/auth and token calls.
	for _, h := range []http.Header{bearer(tok.Token), hdr("Authorization", tok.Token)} {
		if got := authUUID(t, srv, h); got != demoUUID {
			t.Errorf("GET /rest/auth with %v: uuid = %q, want %q", h, got, demoUUID)
		}
	}
	if diff := cmp.Diff([]apiToken{tok}, listTokens(t, srv, bearer(tok.Token))); diff != "" {
		t.Errorf("list with the new token mismatch (-want +got):\n%s", diff)
	}
	second := createToken(t, srv, bearer(tok.Token), `{"name":"made with a token"}`)
	if second.Token == tok.Token || second.UUID == tok.UUID {
		t.Errorf("two tokens share a secret or uuid: %+v, %+v", tok, second)
	}
	// The static api token is still there.
	if got := authUUID(t, srv, bearer(sandbox.DemoAPIToken)); got != demoUUID {
		t.Errorf("static api token: uuid = %q, want %q", got, demoUUID)
	}
}

func TestTokenDefaultTTL(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 5, 1, 0, 0, 0, 0, time.UTC)
	srv := start(t, sandbox.Options{Now: func() time.Time { return now }})
	for _, body := range []string{`{"name":"n"}`, `{"name":"n","ttl":null}`} {
		tok := createToken(t, srv, demoBasic, body)
		if tok.TTL != 86400 || tok.ExpiredOn != opentactTime(now.Add(sandbox.DefaultAPITokenTTL)) || sandbox.DefaultAPITokenTTL != 24*time.Hour {
			t.Errorf("%s: ttl = %d, expired_on = %s; want 86400 s from %s", body, tok.TTL, tok.ExpiredOn, opentactTime(now))
		}
	}
}

func TestTokenMillisecondsAndUTC(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 1, 16, 17, 15, 48, 540_999_999, time.FixedZone("UTC+3", 3*3600))
	srv := start(t, sandbox.Options{Now: func() time.Time { return now }})
	tok := createToken(t, srv, demoBasic, `{"name":"n","ttl":60}`)
	if tok.CreatedOn != "2024-01-16T14:15:48.540Z" || tok.ExpiredOn != "2024-01-16T14:16:48.540Z" {
		t.Errorf("created_on = %s, expired_on = %s; want 2024-01-16T14:15:48.540Z and a minute later", tok.CreatedOn, tok.ExpiredOn)
	}
}

func TestTokenExpires(t *testing.T) {
	t.Parallel()
	created := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	clk := newClock(created)
	srv := start(t, sandbox.Options{Now: clk.Now})
	tok := createToken(t, srv, demoBasic, `{"name":"short","ttl":60}`)

	clk.Set(created.Add(59 * time.Second))
	if got := authUUID(t, srv, bearer(tok.Token)); got != demoUUID {
		t.Fatalf("a second before expiry: uuid = %q, want %q", got, demoUUID)
	}
	listTokens(t, srv, bearer(tok.Token))

	clk.Set(created.Add(60 * time.Second))
	if got := authUUID(t, srv, bearer(tok.Token)); got != "" {
		t.Errorf("at expiry: GET /rest/auth answered uuid %q, want 401", got)
	}
	wantError(t, call(t, srv, http.MethodGet, "/rest/token/list", bearer(tok.Token)), http.StatusUnauthorized)

	// An expired token is gone for every call.
	if got := listTokens(t, srv, demoBasic); len(got) != 0 {
		t.Errorf("list after expiry = %+v, want none", got)
	}
	wantMessage(t, send(t, srv, http.MethodPatch, "/rest/token/"+tok.UUID, demoBasic, `{"ttl":3600}`), http.StatusNotFound, "Not found")
	wantMessage(t, call(t, srv, http.MethodDelete, "/rest/token/"+tok.Token, demoBasic), http.StatusNotFound, "Token not found")
}

func TestTokenCallsAuthenticate(t *testing.T) {
	t.Parallel()
	secret := []byte("test-secret-for-token-auth")
	srv := start(t, sandbox.Options{Secret: secret, Accounts: []sandbox.Account{otherAccount()}})
	_, jwt := wantSuccess(t, call(t, srv, http.MethodGet, "/rest/auth", demoBasic))
	created := createToken(t, srv, demoBasic, `{"name":"auth"}`)

	calls := []struct{ method, path, body string }{
		{http.MethodPost, "/rest/token", `{"name":"x"}`},
		{http.MethodGet, "/rest/token/list", ""},
		{http.MethodPatch, "/rest/token/" + created.UUID, `{"name":"renamed"}`},
		{http.MethodDelete, "/rest/token/no-such-token", ""},
		{http.MethodDelete, "/rest/token/all", ""},
	}
	for _, c := range calls {
		t.Run(c.method+" "+c.path+" without credentials", func(t *testing.T) {
			t.Parallel()
			wantMessage(t, send(t, srv, c.method, c.path, nil, c.body), http.StatusUnauthorized, "Authentication required")
		})
		for name, h := range map[string]http.Header{
			"bad password":               basic(sandbox.DemoEmail, "wrong"),
			"unknown bearer":             bearer(created.Token + "x"),
			"bad jwt":                    hdr("X-Auth-Token", jwt[:len(jwt)-3]),
			"created token as jwt":       hdr("X-Auth-Token", created.Token),
			"created token as google":    hdr("X-Auth-Google-Token", created.Token),
			"demo token with other user": merge(bearer(created.Token), hdr("X-Auth-Google-Token", "other-google-token")),
		} {
			t.Run(c.method+" "+c.path+" with "+name, func(t *testing.T) {
				t.Parallel()
				wantMessage(t, send(t, srv, c.method, c.path, h, c.body), http.StatusUnauthorized, "Invalid credentials")
			})
		}
	}

	// Every kind /rest/auth accepts opens the token calls too.
	for name, h := range map[string]http.Header{
		"basic":           demoBasic,
		"static bearer":   bearer(sandbox.DemoAPIToken),
		"bare api token":  hdr("Authorization", sandbox.DemoAPIToken),
		"created bearer":  bearer(created.Token),
		"jwt":             hdr("X-Auth-Token", jwt),
		"google":          hdr("X-Auth-Google-Token", sandbox.DemoGoogleToken),
		"facebook":        hdr("X-Auth-Facebook-Token", sandbox.DemoFacebookToken),
		"ha1b":            hdr("X-Auth-HA1B-Token", sandbox.DemoHA1B),
		"basic and token": merge(demoBasic, hdr("X-Auth-Token", jwt)),
	} {
		t.Run("list with "+name, func(t *testing.T) {
			t.Parallel()
			list := listTokens(t, srv, h)
			if len(list) == 0 || list[0].UUID != created.UUID {
				t.Errorf("list = %+v, want the demo user's token %s first", list, created.UUID)
			}
		})
	}
}

func TestTokenValidation(t *testing.T) {
	t.Parallel()
	srv := start(t, sandbox.Options{})
	tok := createToken(t, srv, demoBasic, `{"name":"target"}`)
	patch := "/rest/token/" + tok.UUID

	t.Run("refused", func(t *testing.T) { refusedBodies(t, srv, patch) })

	// None of those made or changed a token.
	if got := listTokens(t, srv, demoBasic); len(got) != 1 || got[0] != tok {
		t.Errorf("list = %+v, want only the untouched %+v", got, tok)
	}

	// Integral numbers in any notation are integers; the bounds are inclusive.
	for _, ttl := range []string{"60", "6e1", "60.0", "2147483647"} {
		got := createToken(t, srv, demoBasic, `{"name":"n","ttl":`+ttl+`}`)
		if want, _ := strconv.ParseFloat(ttl, 64); got.TTL != int64(want) {
			t.Errorf("ttl %s: got %d", ttl, got.TTL)
		}
	}
}

// refusedBodies sends bodies that POST /rest/token and PATCH patch refuse.
func refusedBodies(t *testing.T, srv *httptest.Server, patch string) {
	for _, tc := range []struct {
		method, body string
		want         map[string]any // field name to the value it reports (nil: none)
	}{
		{http.MethodPost, `{}`, map[string]any{"name": nil}},
		{http.MethodPost, `{"ttl":3600}`, map[string]any{"name": nil}},
		{http.MethodPost, `{"name":null}`, map[string]any{"name": nil}},
		{http.MethodPost, `{"name":""}`, map[string]any{"name": ""}},
		{http.MethodPost, `{"name":"   "}`, map[string]any{"name": "   "}},
		{http.MethodPost, `{"name":42}`, map[string]any{"name": json.Number("42")}},
		{http.MethodPost, `{"name":"` + strings.Repeat("я", 256) + `"}`, map[string]any{"name": strings.Repeat("я", 256)}},
		{http.MethodPost, `{"name":"n","ttl":30}`, map[string]any{"ttl": json.Number("30")}},
		{http.MethodPost, `{"name":"n","ttl":59}`, map[string]any{"ttl": json.Number("59")}},
		{http.MethodPost, `{"name":"n","ttl":0}`, map[string]any{"ttl": json.Number("0")}},
		{http.MethodPost, `{"name":"n","ttl":-60}`, map[string]any{"ttl": json.Number("-60")}},
		{http.MethodPost, `{"name":"n","ttl":60.5}`, map[string]any{"ttl": json.Number("60.5")}},
		{http.MethodPost, `{"name":"n","ttl":"3600"}`, map[string]any{"ttl": "3600"}},
		{http.MethodPost, `{"name":"n","ttl":true}`, map[string]any{"ttl": true}},
		{http.MethodPost, `{"name":"n","ttl":1e300}`, map[string]any{"ttl": json.Number("1e300")}},
		{http.MethodPost, `{"name":"","ttl":30}`, map[string]any{"name": "", "ttl": json.Number("30")}},
		{http.MethodPost, `{"ttl":30}`, map[string]any{"name": nil, "ttl": json.Number("30")}},
		{http.MethodPatch, `{"ttl":30}`, map[string]any{"ttl": json.Number("30")}},
		{http.MethodPatch, `{"ttl":"x"}`, map[string]any{"ttl": "x"}},
		{http.MethodPatch, `{"name":""}`, map[string]any{"name": ""}},
		{http.MethodPatch, `{"name":["a"],"ttl":1.5}`, map[string]any{"name": []any{"a"}, "ttl": json.Number("1.5")}},
	} {
		name := tc.method + " " + tc.body
		if r := []rune(name); len(r) > 48 {
			name = string(r[:48]) + "…"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			path := "/rest/token"
			if tc.method == http.MethodPatch {
				path = patch
			}
			fields := wantFields(t, send(t, srv, tc.method, path, demoBasic, tc.body))
			got := map[string]any{}
			for name, f := range fields {
				got[name] = f["value"]
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("fields mismatch (-want +got):\n%s", diff)
			}
		})
	}

	for _, body := range []string{``, `{`, `{"name":"n"`, `{"name":"n"} {}`, `{"name":"n"}x`, `name=n`, `{"name":'n'}`, `[]`, `[{"name":"n"}]`, `"n"`, `null`, `42`} {
		for _, method := range []string{http.MethodPost, http.MethodPatch} {
			t.Run(method+" malformed "+body, func(t *testing.T) {
				t.Parallel()
				path := "/rest/token"
				if method == http.MethodPatch {
					path = patch
				}
				wantError(t, send(t, srv, method, path, demoBasic, body), http.StatusBadRequest)
			})
		}
	}

	t.Run("body too large", func(t *testing.T) {
		t.Parallel()
		big := `{"name":"` + strings.Repeat("a", sandbox.MaxBodySize) + `"}`
		wantError(t, send(t, srv, http.MethodPost, "/rest/token", demoBasic, big), http.StatusRequestEntityTooLarge)
		wantError(t, send(t, srv, http.MethodPatch, patch, demoBasic, big), http.StatusRequestEntityTooLarge)
		// Just under the cap is read (and fails only on the name's length).
		fits := `{"ttl":60,"name":"` + strings.Repeat("a", sandbox.MaxBodySize-len(`{"ttl":60,"name":""}`)) + `"}`
		if _, ok := wantFields(t, send(t, srv, http.MethodPost, "/rest/token", demoBasic, fits))["name"]; !ok {
			t.Errorf("a body of exactly MaxBodySize did not reach validation")
		}
	})
}

func TestTokenList(t *testing.T) {
	t.Parallel()
	clk := newClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	srv := start(t, sandbox.Options{Now: clk.Now, Accounts: []sandbox.Account{otherAccount()}})

	if got := listTokens(t, srv, demoBasic); len(got) != 0 {
		t.Fatalf("list before any token = %+v, want []", got)
	}
	var demo []apiToken
	for i := range 3 {
		demo = append(demo, createToken(t, srv, demoBasic, fmt.Sprintf(`{"name":"demo %d"}`, i)))
		clk.Set(clk.Now().Add(time.Second))
	}
	other := createToken(t, srv, otherBasic, `{"name":"other"}`)

	if diff := cmp.Diff(demo, listTokens(t, srv, demoBasic)); diff != "" {
		t.Errorf("demo's list mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]apiToken{other}, listTokens(t, srv, bearer(other.Token))); diff != "" {
		t.Errorf("other's list mismatch (-want +got):\n%s", diff)
	}
	if got := authUUID(t, srv, bearer(other.Token)); got != otherUUID {
		t.Errorf("other's token opens uuid %q, want %q", got, otherUUID)
	}
}

func TestTokenUpdate(t *testing.T) {
	t.Parallel()
	created := time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)
	clk := newClock(created)
	srv := start(t, sandbox.Options{Now: clk.Now, Accounts: []sandbox.Account{otherAccount()}})
	tok := createToken(t, srv, demoBasic, `{"name":"first","ttl":600}`)
	bystander := createToken(t, srv, demoBasic, `{"name":"bystander"}`)

	update := func(body string, at time.Duration) apiToken {
		t.Helper()
		clk.Set(created.Add(at))
		var got apiToken
		wantPayload(t, send(t, srv, http.MethodPatch, "/rest/token/"+tok.UUID, demoBasic, body), http.StatusOK, &got)
		return got
	}

	want := tok
	want.Name, want.ModifiedOn = "second", opentactTime(created.Add(time.Minute))
	if diff := cmp.Diff(want, update(`{"name":"second"}`, time.Minute)); diff != "" {
		t.Errorf("name only (-want +got):\n%s", diff)
	}
	// A new ttl counts from created_on, as expired_on always does.
	want.TTL, want.ExpiredOn, want.ModifiedOn = 7200, opentactTime(created.Add(2*time.Hour)), opentactTime(created.Add(2*time.Minute))
	if diff := cmp.Diff(want, update(`{"ttl":7200}`, 2*time.Minute)); diff != "" {
		t.Errorf("ttl only (-want +got):\n%s", diff)
	}
	want.Name, want.TTL, want.ExpiredOn, want.ModifiedOn = "third", 60, opentactTime(created.Add(time.Minute)), opentactTime(created.Add(3*time.Second))
	if diff := cmp.Diff(want, update(`{"name":"third","ttl":60,"extra":1}`, 3*time.Second)); diff != "" {
		t.Errorf("both (-want +got):\n%s", diff)
	}
	want.ModifiedOn = opentactTime(created.Add(4 * time.Second))
	if diff := cmp.Diff(want, update(`{"name":null}`, 4*time.Second)); diff != "" {
		t.Errorf("nothing (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]apiToken{want, bystander}, listTokens(t, srv, demoBasic)); diff != "" {
		t.Errorf("list after the updates (-want +got):\n%s", diff)
	}

	// The new ttl rules: past created_on + 60 s the token is gone.
	clk.Set(created.Add(time.Minute))
	if got := authUUID(t, srv, bearer(tok.Token)); got != "" {
		t.Errorf("token shortened to 60 s still opens %q a minute after creation", got)
	}

	for name, tc := range map[string]struct {
		h    http.Header
		uuid string
	}{
		"unknown uuid":         {demoBasic, "00000000-0000-4000-8000-000000000000"},
		"not a uuid":           {demoBasic, "list"},
		"the secret, not uuid": {demoBasic, bystander.Token},
		"another account's":    {otherBasic, bystander.UUID},
	} {
		t.Run(name, func(t *testing.T) {
			wantMessage(t, send(t, srv, http.MethodPatch, "/rest/token/"+tc.uuid, tc.h, `{"name":"hijacked"}`), http.StatusNotFound, "Not found")
		})
	}
	if got := listTokens(t, srv, demoBasic); len(got) != 1 || got[0] != bystander {
		t.Errorf("demo's list = %+v, want only the untouched %+v", got, bystander)
	}
}

func TestTokenDelete(t *testing.T) {
	t.Parallel()
	srv := start(t, sandbox.Options{Accounts: []sandbox.Account{otherAccount()}})
	tok := createToken(t, srv, demoBasic, `{"name":"to delete"}`)
	theirs := createToken(t, srv, otherBasic, `{"name":"not yours"}`)

	var got apiToken
	wantPayload(t, call(t, srv, http.MethodDelete, "/rest/token/"+tok.Token, bearer(tok.Token)), http.StatusOK, &got)
	if got != tok {
		t.Errorf("deleted = %+v, want %+v", got, tok)
	}
	if id := authUUID(t, srv, bearer(tok.Token)); id != "" {
		t.Errorf("a deleted token still opens %q", id)
	}
	wantMessage(t, call(t, srv, http.MethodDelete, "/rest/token/"+tok.Token, demoBasic), http.StatusNotFound, "Token not found")

	// Another account's token is not found, and survives.
	wantMessage(t, call(t, srv, http.MethodDelete, "/rest/token/"+theirs.Token, demoBasic), http.StatusNotFound, "Token not found")
	if id := authUUID(t, srv, bearer(theirs.Token)); id != otherUUID {
		t.Errorf("other's token opens %q after demo tried to delete it, want %q", id, otherUUID)
	}
	// Static api tokens are not created ones, and survive too.
	wantMessage(t, call(t, srv, http.MethodDelete, "/rest/token/"+sandbox.DemoAPIToken, demoBasic), http.StatusNotFound, "Token not found")
	if id := authUUID(t, srv, bearer(sandbox.DemoAPIToken)); id != demoUUID {
		t.Errorf("static api token opens %q, want %q", id, demoUUID)
	}

	// The segment is path-unescaped: every byte escaped still names it, and
	// an escaped slash stays inside the segment.
	next := createToken(t, srv, demoBasic, `{"name":"escaped"}`)
	var escaped strings.Builder
	for _, c := range []byte(next.Token) {
		fmt.Fprintf(&escaped, "%%%02X", c)
	}
	wantPayload(t, call(t, srv, http.MethodDelete, "/prefix/rest/token/"+escaped.String(), demoBasic), http.StatusOK, &got)
	if got != next {
		t.Errorf("deleted by escaped path = %+v, want %+v", got, next)
	}
	for _, seg := range []string{url.PathEscape("a/b"), "a%2fb", url.PathEscape("all "), "%61ll%3F"} {
		wantMessage(t, call(t, srv, http.MethodDelete, "/rest/token/"+seg, demoBasic), http.StatusNotFound, "Token not found")
	}
}

func TestTokenDeleteAll(t *testing.T) {
	t.Parallel()
	srv := start(t, sandbox.Options{Accounts: []sandbox.Account{otherAccount()}})
	var mine []apiToken
	for i := range 3 {
		mine = append(mine, createToken(t, srv, demoBasic, fmt.Sprintf(`{"name":"%d"}`, i)))
	}
	theirs := createToken(t, srv, otherBasic, `{"name":"theirs"}`)

	r := call(t, srv, http.MethodDelete, "/rest/token/all", bearer(mine[0].Token))
	if r.status != http.StatusOK || string(r.body) != `{"success":true,"payload":{}}` {
		t.Errorf("DELETE /rest/token/all = %d %s, want 200 {\"success\":true,\"payload\":{}}", r.status, r.body)
	}
	for _, tok := range mine {
		if id := authUUID(t, srv, bearer(tok.Token)); id != "" {
			t.Errorf("token %s still opens %q", tok.Name, id)
		}
	}
	if got := listTokens(t, srv, demoBasic); len(got) != 0 {
		t.Errorf("demo's list = %+v, want []", got)
	}
	// Not the static api tokens, nor another account's.
	if id := authUUID(t, srv, bearer(sandbox.DemoAPIToken)); id != demoUUID {
		t.Errorf("static api token opens %q, want %q", id, demoUUID)
	}
	if diff := cmp.Diff([]apiToken{theirs}, listTokens(t, srv, bearer(theirs.Token))); diff != "" {
		t.Errorf("other's list (-want +got):\n%s", diff)
	}
	// Nothing left is fine too.
	wantPayload(t, call(t, srv, http.MethodDelete, "/rest/token/all", demoBasic), http.StatusOK, &struct{}{})
}

func TestTokenLimit(t *testing.T) {
	t.Parallel()
	created := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := newClock(created)
	srv := start(t, sandbox.Options{Now: clk.Now, Accounts: []sandbox.Account{otherAccount()}})

	var first apiToken
	for i := range sandbox.MaxAPITokens {
		ttl := 86400
		if i < 10 {
			ttl = 60
		}
		tok := createToken(t, srv, demoBasic, fmt.Sprintf(`{"name":"%d","ttl":%d}`, i, ttl))
		if i == 10 {
			first = tok
		}
	}
	full := send(t, srv, http.MethodPost, "/rest/token", demoBasic, `{"name":"one too many"}`)
	wantError(t, full, http.StatusBadRequest)
	if msg, _ := decode(t, full.body)["message"].(string); !strings.Contains(msg, strconv.Itoa(sandbox.MaxAPITokens)) {
		t.Errorf("message = %q, want it to name the limit", msg)
	}
	// The limit is per account.
	createToken(t, srv, otherBasic, `{"name":"other"}`)

	// A deleted token frees a place.
	wantPayload(t, call(t, srv, http.MethodDelete, "/rest/token/"+first.Token, demoBasic), http.StatusOK, &apiToken{})
	createToken(t, srv, demoBasic, `{"name":"in its place"}`)
	wantError(t, send(t, srv, http.MethodPost, "/rest/token", demoBasic, `{"name":"full again"}`), http.StatusBadRequest)

	// Expired ones are dropped first.
	clk.Set(created.Add(time.Minute))
	for i := range 10 {
		createToken(t, srv, demoBasic, fmt.Sprintf(`{"name":"after expiry %d"}`, i))
	}
	wantError(t, send(t, srv, http.MethodPost, "/rest/token", demoBasic, `{"name":"full at last"}`), http.StatusBadRequest)
	if n := len(listTokens(t, srv, demoBasic)); n != sandbox.MaxAPITokens {
		t.Errorf("list has %d tokens, want %d", n, sandbox.MaxAPITokens)
	}
}

func TestTokenConcurrentUse(t *testing.T) {
	t.Parallel()
	srv := start(t, sandbox.Options{Accounts: []sandbox.Account{otherAccount()}})
	const workers, rounds = 8, 10

	t.Run("workers", func(t *testing.T) {
		for w := range workers {
			owner, h, id := "demo", demoBasic, demoUUID
			if w%2 == 1 {
				owner, h, id = "other", otherBasic, otherUUID
			}
			t.Run(fmt.Sprintf("%s %d", owner, w), func(t *testing.T) {
				t.Parallel()
				for i := range rounds {
					tok := createToken(t, srv, h, fmt.Sprintf(`{"name":"w%d r%d"}`, w, i))
					if got := authUUID(t, srv, bearer(tok.Token)); got != id {
						t.Errorf("token of %s opens %q", owner, got)
					}
					wantPayload(t, send(t, srv, http.MethodPatch, "/rest/token/"+tok.UUID, bearer(tok.Token), `{"ttl":3600}`), http.StatusOK, &apiToken{})
					listTokens(t, srv, h)
					if i < rounds-1 { // each worker keeps its last token
						wantPayload(t, call(t, srv, http.MethodDelete, "/rest/token/"+tok.Token, h), http.StatusOK, &apiToken{})
					}
				}
			})
		}
	})

	for _, h := range []http.Header{demoBasic, otherBasic} {
		list := listTokens(t, srv, h)
		if len(list) != workers/2 {
			t.Errorf("%d tokens left, want %d: %+v", len(list), workers/2, list)
		}
		for _, tok := range list {
			if tok.TTL != 3600 || !strings.HasSuffix(tok.Name, fmt.Sprintf("r%d", rounds-1)) {
				t.Errorf("token left = %+v, want a last round's, patched to 3600 s", tok)
			}
		}
	}
}

func TestTokenLogsNoSecrets(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	sb, err := sandbox.New(sandbox.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sb)
	defer srv.Close()

	tok := createToken(t, srv, demoBasic, `{"name":"logged?"}`)
	listTokens(t, srv, bearer(tok.Token))
	wantPayload(t, send(t, srv, http.MethodPatch, "/rest/token/"+tok.UUID, bearer(tok.Token), `{"name":"renamed"}`), http.StatusOK, &apiToken{})
	wantError(t, call(t, srv, http.MethodGet, "/rest/token/"+tok.Token, demoBasic), http.StatusMethodNotAllowed)
	wantError(t, call(t, srv, http.MethodDelete, "/rest/token/"+tok.Token+"x", demoBasic), http.StatusNotFound)
	wantError(t, call(t, srv, http.MethodDelete, "/rest/token/"+tok.Token+"/x", demoBasic), http.StatusNotFound)
	wantPayload(t, call(t, srv, http.MethodDelete, "/rest/token/"+tok.Token, bearer(tok.Token)), http.StatusOK, &apiToken{})
	wantError(t, call(t, srv, http.MethodGet, "/rest/auth", bearer(tok.Token)), http.StatusUnauthorized)
	srv.Close() // waits for the handlers, and so for their log lines

	out := logs.String()
	if strings.Contains(out, tok.Token) || strings.Contains(out, tok.Token[:16]) {
		t.Errorf("log carries the token's secret %q:\n%s", tok.Token, out)
	}
	for _, want := range []string{
		`route="POST /rest/token"`, `route="GET /rest/token/list"`, `route="PATCH /rest/token/{uuid}"`,
		`route="DELETE /rest/token/{token}"`, `route=/rest/token/{uuid}`, "status=201", "status=405", "status=404",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}
