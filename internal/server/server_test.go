package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/sandbox"
	"github.com/opentact-facade/opentact-facade/internal/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func basic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

var demoBasic = basic(sandbox.DemoEmail, sandbox.DemoPassword)

func startSandbox(t *testing.T) *httptest.Server {
	t.Helper()
	sb, err := sandbox.New(sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sb)
	t.Cleanup(srv.Close)
	return srv
}

// TestGetAuthEndToEnd goes client stub → facade → sandbox and back, and
// HTTP client → gateway → facade → sandbox, with every credential kind of
// the demo account, then with the JWT the first call returned.
func TestGetAuthEndToEnd(t *testing.T) {
	t.Parallel()
	f := startFacade(t, startSandbox(t).URL)

	creds := map[string]string{
		"basic":                 demoBasic,
		"bearer api token":      "Bearer " + sandbox.DemoAPIToken,
		"x-auth-google-token":   sandbox.DemoGoogleToken,
		"x-auth-facebook-token": sandbox.DemoFacebookToken,
		"x-auth-ha1b-token":     sandbox.DemoHA1B,
	}
	header := func(kind, value string) (string, string) {
		if kind == "basic" || kind == "bearer api token" {
			return "authorization", value
		}
		return kind, value
	}
	for kind, value := range creds {
		t.Run("grpc/"+kind, func(t *testing.T) {
			k, v := header(kind, value)
			resp, err := f.client.GetAuth(metadata.AppendToOutgoingContext(context.Background(), k, v), &authv1.GetAuthRequest{})
			if err != nil {
				t.Fatalf("GetAuth: %v", err)
			}
			u := resp.GetUser()
			if u.GetEmail() != sandbox.DemoEmail || u.GetUuid() != "0116f6d1-1280-44b2-9134-da48509ec575" {
				t.Errorf("user = %s / %s, want the demo user", u.GetEmail(), u.GetUuid())
			}
			if u.GetAccount().GetBalance() != "99.87895" || u.GetAccount().GetName() != "DENOVOLAB" {
				t.Errorf("account = %v, want the demo account with balance 99.87895", u.GetAccount())
			}
			if u.DeletedOn != nil {
				t.Errorf("deleted_on = %v, want unset (Opentact sent null)", u.DeletedOn)
			}
			if got := u.GetCreatedOn().AsTime(); !got.Equal(time.Date(2024, 1, 16, 14, 15, 48, 540e6, time.UTC)) {
				t.Errorf("created_on = %v, want 2024-01-16T14:15:48.540Z", got)
			}
			if strings.Count(u.GetToken(), ".") != 2 {
				t.Errorf("token %q is not a JWT", u.GetToken())
			}
		})
		t.Run("rest/"+kind, func(t *testing.T) {
			k, v := header(kind, value)
			resp, body := f.rest(t, http.MethodGet, "/v1/auth", http.Header{http.CanonicalHeaderKey(k): {v}})
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			var got struct {
				User map[string]any `json:"user"`
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if got.User["email"] != sandbox.DemoEmail {
				t.Errorf("email = %v, want %s", got.User["email"], sandbox.DemoEmail)
			}
		})
	}

	t.Run("the returned JWT works as x-auth-token, a forged one does not", func(t *testing.T) {
		resp, err := f.client.GetAuth(metadata.AppendToOutgoingContext(context.Background(), "authorization", demoBasic), &authv1.GetAuthRequest{})
		if err != nil {
			t.Fatal(err)
		}
		jwt := resp.GetUser().GetToken()
		again, err := f.client.GetAuth(metadata.AppendToOutgoingContext(context.Background(), "x-auth-token", jwt), &authv1.GetAuthRequest{})
		if err != nil {
			t.Fatalf("GetAuth with the returned JWT: %v", err)
		}
		if again.GetUser().GetUuid() != resp.GetUser().GetUuid() {
			t.Errorf("uuid = %s, want %s", again.GetUser().GetUuid(), resp.GetUser().GetUuid())
		}
		forged := jwt[:strings.LastIndex(jwt, ".")+1] + "Zm9yZ2Vk"
		_, err = f.client.GetAuth(metadata.AppendToOutgoingContext(context.Background(), "x-auth-token", forged), &authv1.GetAuthRequest{})
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("forged JWT: code %v, want Unauthenticated", status.Code(err))
		}
	})
}

// TestRESTUsesOpentactFieldNames checks the gateway's JSON: proto (that is,
// Opentact's) snake_case names, money as the exact decimal text, and
// fields Opentact left null or unsent absent rather than zero.
func TestRESTUsesOpentactFieldNames(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, answer(200, `{"success":true,"payload":{"uuid":"u","wss_online":false,"first_name":"Анна",
		"created_on":"2020-10-26T08:44:15Z","phone_number":null,"gmail_user_id":"107653031006300523703",
		"account":{"balance":12345678901234.56789,"deleted_on":null}}}`))
	f := startFacade(t, up.URL)

	resp, body := f.rest(t, http.MethodGet, "/v1/auth", http.Header{"X-Auth-Token": {"t"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var got map[string]map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"uuid":          "u",
		"wss_online":    false,
		"first_name":    "Анна",
		"created_on":    "2020-10-26T08:44:15Z",
		"gmail_user_id": "107653031006300523703",
		"account":       map[string]any{"balance": "12345678901234.56789"},
	}
	if diff := cmp.Diff(want, got["user"]); diff != "" {
		t.Errorf("REST user (-want +got):\n%s", diff)
	}
}

func TestUnknownRESTPath(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, answer(200, okBody))
	f := startFacade(t, up.URL)
	for _, path := range []string{"/", "/v1", "/v1/authx", "/v2/auth", "/rest/auth"} {
		resp, body := f.rest(t, http.MethodGet, path, http.Header{"Authorization": {demoBasic}})
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, resp.StatusCode)
		}
		if st := restStatus(t, body); st.Code() != codes.NotFound {
			t.Errorf("GET %s: code %v, want NotFound", path, st.Code())
		}
	}
	resp, _ := f.rest(t, http.MethodPost, "/v1/auth", http.Header{"Authorization": {demoBasic}})
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /v1/auth: status %d, want 405", resp.StatusCode)
	}
	resp, _ = f.rest(t, http.MethodPost, "/v1/auth", http.Header{"Authorization": {demoBasic}, "X-Http-Method-Override": {"GET"}})
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST with X-HTTP-Method-Override: status %d, want 405 (overrides are off)", resp.StatusCode)
	}
	if n := up.calls.Load(); n != 0 {
		t.Errorf("upstream saw %d requests, want 0", n)
	}
}

func TestPlainHTTPUpstreamOnlyOnLoopback(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		upstream string
		insecure bool
		ok       bool
	}{
		{"https://api.opentact.org", false, true},
		{"https://api.stage.opentact.org/", false, true},
		{"http://127.0.0.1:8081", false, true},
		{"http://localhost:8081", false, true},
		{"http://api.opentact.org", false, false},
		{"http://10.0.0.5:8081", false, false},
		{"http://api.opentact.org", true, true},
		{"ftp://api.opentact.org", true, false},
		{"https://user:secret@api.opentact.org", false, false},
	} {
		s, err := server.New(server.Options{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Upstream: tc.upstream, InsecureUpstream: tc.insecure})
		if (err == nil) != tc.ok {
			t.Errorf("upstream %s insecure=%v: err = %v, want ok=%v", tc.upstream, tc.insecure, err, tc.ok)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("error %q shows the URL's password", err)
		}
		if s != nil {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := s.Serve(ctx); err != nil {
				t.Error(err)
			}
		}
	}
}
