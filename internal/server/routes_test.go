package server_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/opentact-facade/opentact-facade/internal/openapi"
)

// TestRoutesBesideTheAPI: the HTTP port serves the API description next
// to /v1/auth, and the admin port the probes and the metrics; none needs
// a credential, and the probes and metrics are not on the public port.
func TestRoutesBesideTheAPI(t *testing.T) {
	t.Parallel()
	f := startFacade(t, newRecorder(t, answer(200, okBody)).URL)
	for _, tc := range []struct {
		base, path, contentType, contains string
	}{
		{f.adminURL, "/healthz", "text/plain; charset=utf-8", "ok"},
		{f.adminURL, "/readyz", "text/plain; charset=utf-8", "ready"},
		{f.adminURL, "/metrics", "text/plain", "grpc_server_handled_total"},
		{f.restURL, "/openapi.json", "application/json", `"swagger": "2.0"`},
	} {
		resp, body := f.do(t, tc.base, http.MethodGet, tc.path, nil, "")
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d", tc.path, resp.StatusCode)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.contentType) {
			t.Errorf("GET %s: Content-Type %q, want %q", tc.path, ct, tc.contentType)
		}
		if !bytes.Contains(body, []byte(tc.contains)) {
			t.Errorf("GET %s: body does not contain %q", tc.path, tc.contains)
		}
		if tc.path == "/openapi.json" && !bytes.Equal(body, openapi.Document()) {
			t.Error("GET /openapi.json is not the embedded document")
		}
	}
	if resp, _ := f.rest(t, http.MethodPost, "/openapi.json", nil); resp.StatusCode == http.StatusOK {
		t.Error("POST /openapi.json answered 200")
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if resp, body := f.rest(t, http.MethodGet, path, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s on the public REST port: %d %.100s, want 404", path, resp.StatusCode, body)
		}
	}
	if resp, _ := f.admin(t, "/v1/auth"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /v1/auth on the admin port: %d, want 404", resp.StatusCode)
	}
	if resp, _ := f.admin(t, "/healthz"); resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("GET /healthz: Cache-Control %q, want no-store", resp.Header.Get("Cache-Control"))
	}
}
