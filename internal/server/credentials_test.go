package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	apiv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/api/v1"
	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
)

// credentialHeaders are the headers the upstream may see carrying a
// credential, in Go's canonical spelling.
var credentialHeaders = []string{"Authorization", "X-Auth-Token", "X-Auth-Google-Token", "X-Auth-Facebook-Token", "X-Auth-Ha1b-Token"}

// TestCredentialsAreForwardedExactly sends each credential kind, alone and
// together, over gRPC metadata and over REST headers, and checks that the
// upstream sees exactly those values and no other caller header.
func TestCredentialsAreForwardedExactly(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, answer(200, okBody))
	f := startFacade(t, up.URL)

	sets := []struct {
		name  string
		creds map[string]string // metadata key -> value
	}{
		{"basic", map[string]string{"authorization": basic("someone@example.com", "pässwörd:with:colons")}},
		{"bearer", map[string]string{"authorization": "Bearer api-token-123"}},
		{"bare authorization token", map[string]string{"authorization": "api-token-456"}},
		{"x-auth-token", map[string]string{"x-auth-token": "eyJhbGciOiJIUzI1NiJ9.eyJ1dWlkIjoidSJ9.sig"}},
		{"x-auth-google-token", map[string]string{"x-auth-google-token": "ya29.google-token"}},
		{"x-auth-facebook-token", map[string]string{"x-auth-facebook-token": "EAAB-facebook-token"}},
		{"x-auth-ha1b-token", map[string]string{"x-auth-ha1b-token": "5f4dcc3b5aa765d61d8327deb882cf99"}},
		{"basic with x-auth-token, as in Opentact's example", map[string]string{
			"authorization": basic("opentact@callify.io", "12345678"),
			"x-auth-token":  "eyJhbGciOiJIUzI1NiJ9.e30.sig",
		}},
		{"all five", map[string]string{
			"authorization":         "Bearer b",
			"x-auth-token":          "jwt",
			"x-auth-google-token":   "g",
			"x-auth-facebook-token": "fb",
			"x-auth-ha1b-token":     "h",
		}},
	}
	for _, set := range sets {
		want := http.Header{}
		for k, v := range set.creds {
			want[http.CanonicalHeaderKey(k)] = []string{v}
		}

		t.Run("grpc/"+set.name, func(t *testing.T) {
			var kv []string
			for k, v := range set.creds {
				kv = append(kv, k, v)
			}
			// Headers a caller might add that must not reach Opentact.
			kv = append(kv, "cookie", "session=abc", "x-other", "y", "x-auth-unknown", "z")
			if _, err := f.client.GetAuth(metadata.AppendToOutgoingContext(context.Background(), kv...), &authv1.GetAuthRequest{}); err != nil {
				t.Fatalf("GetAuth: %v", err)
			}
			checkForwarded(t, up.lastHeader(t), want)
		})
		t.Run("rest/"+set.name, func(t *testing.T) {
			h := http.Header{
				"Cookie":                     {"session=abc"},
				"X-Other":                    {"y"},
				"X-Auth-Unknown":             {"z"},
				"Grpc-Metadata-X-Auth-Token": {"smuggled"},
				"X-Forwarded-For":            {"10.1.2.3"},
			}
			for k, v := range set.creds {
				h[http.CanonicalHeaderKey(k)] = []string{v}
			}
			resp, body := f.rest(t, http.MethodGet, "/v1/auth", h)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			checkForwarded(t, up.lastHeader(t), want)
		})
	}
}

func checkForwarded(t *testing.T, got, want http.Header) {
	t.Helper()
	creds := http.Header{}
	for _, k := range credentialHeaders {
		if v, ok := got[k]; ok {
			creds[k] = v
		}
	}
	if diff := cmp.Diff(want, creds); diff != "" {
		t.Errorf("credentials seen by the upstream (-want +got):\n%s", diff)
	}
	for k := range got {
		switch {
		case k == "Accept", k == "User-Agent", k == "Accept-Encoding":
		case slicesContains(credentialHeaders, k):
		default:
			t.Errorf("the upstream saw header %s: %q; only credentials, Accept and User-Agent may pass", k, got[k])
		}
	}
	if a := got.Get("Accept"); a != "application/json" {
		t.Errorf("Accept = %q, want application/json", a)
	}
	if ua := got.Get("User-Agent"); !strings.HasPrefix(ua, "opentact-facade/") {
		t.Errorf("User-Agent = %q, want opentact-facade/<version>", ua)
	}
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestNoCredentialsNeverReachesOpentact: a call without any credential is
// refused by the facade and the upstream sees nothing.
func TestNoCredentialsNeverReachesOpentact(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, answer(200, okBody))
	f := startFacade(t, up.URL)

	for name, md := range map[string][]string{
		"none":                     nil,
		"empty values":             {"authorization", "", "x-auth-token", ""},
		"only unrelated metadata":  {"x-api-key", "k", "cookie", "c"},
		"a look-alike header name": {"x-auth-tokens", "t"},
	} {
		_, err := f.client.GetAuth(metadata.AppendToOutgoingContext(context.Background(), md...), &authv1.GetAuthRequest{})
		st := status.Convert(err)
		if st.Code() != codes.Unauthenticated || errorInfo(st).GetReason() != apiv1.ErrorReason_CREDENTIALS_MISSING.String() {
			t.Errorf("grpc %s: %v, want Unauthenticated with reason %s", name, err, apiv1.ErrorReason_CREDENTIALS_MISSING.String())
		}
	}
	for name, h := range map[string]http.Header{
		"none":                             {},
		"credential smuggled as metadata":  {"Grpc-Metadata-X-Auth-Token": {"t"}, "Grpc-Metadata-Authorization": {"Bearer t"}},
		"credential in a query parameter?": {},
	} {
		path := "/v1/auth"
		if strings.Contains(name, "query") {
			path += "?jwt=t&x-auth-token=t"
		}
		resp, body := f.rest(t, http.MethodGet, path, h)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("rest %s: status %d, want 401", name, resp.StatusCode)
		}
		if st := restStatus(t, body); st.Code() != codes.Unauthenticated {
			t.Errorf("rest %s: code %v, want Unauthenticated", name, st.Code())
		}
	}
	if n := up.calls.Load(); n != 0 {
		t.Errorf("upstream saw %d requests, want 0", n)
	}
}

// TestMalformedCredentialIsInvalidArgument: a credential the facade would
// not forward as given is refused, naming the header but not the value.
func TestMalformedCredentialIsInvalidArgument(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, answer(200, okBody))
	f := startFacade(t, up.URL)

	for name, h := range map[string]http.Header{
		"non-ASCII value":     {"X-Auth-Token": {"tøken-secret"}},
		"non-ASCII basic":     {"Authorization": {"Basic ÿÿ-secret"}},
		"header sent twice":   {"X-Auth-Token": {"one-secret", "two-secret"}},
		"over 8 KiB":          {"X-Auth-Google-Token": {strings.Repeat("a", 9<<10) + "-secret"}},
		"bad and good others": {"X-Auth-Facebook-Token": {"fb\u00a0secret"}, "Authorization": {demoBasic}},
	} {
		resp, body := f.rest(t, http.MethodGet, "/v1/auth", h)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("rest %s: status %d, want 400 (%s)", name, resp.StatusCode, body)
			continue
		}
		st := restStatus(t, body)
		if st.Code() != codes.InvalidArgument || errorInfo(st).GetReason() != apiv1.ErrorReason_CREDENTIALS_MALFORMED.String() {
			t.Errorf("rest %s: %v, want InvalidArgument with reason %s", name, st.Err(), apiv1.ErrorReason_CREDENTIALS_MALFORMED.String())
		}
		if strings.Contains(string(body), "secret") {
			t.Errorf("rest %s: error body %s shows the credential", name, body)
		}
	}

	md := metadata.Pairs("x-auth-token", "one-secret", "x-auth-token", "two-secret")
	_, err := f.client.GetAuth(metadata.NewOutgoingContext(context.Background(), md), &authv1.GetAuthRequest{})
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || strings.Contains(st.Message(), "secret") {
		t.Errorf("grpc header sent twice: %v, want InvalidArgument without the value", err)
	}
	if n := up.calls.Load(); n != 0 {
		t.Errorf("upstream saw %d requests, want 0", n)
	}
}
