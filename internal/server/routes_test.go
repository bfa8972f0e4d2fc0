package server_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/opentact-facade/opentact-facade/internal/openapi"
)

// TestRoutesBesideTheAPI: the HTTP port serves the probes, the metrics
// and the API description next to /v1/auth, and they need no credential.
func TestRoutesBesideTheAPI(t *testing.T) {
	t.Parallel()
	f := startFacade(t, newRecorder(t, answer(200, okBody)).URL)
	for _, tc := range []struct {
		path, contentType, contains string
	}{
		{"/healthz", "text/plain; charset=utf-8", "ok"},
		{"/readyz", "text/plain; charset=utf-8", "ready"},
		{"/metrics", "text/plain", "grpc_server_handled_total"},
		{"/openapi.json", "application/json", `"swagger": "2.0"`},
	} {
		resp, body := f.rest(t, http.MethodGet, tc.path, nil)
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
}
