package server_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
)

// TestRESTTakesOnlyOneJSONValue: a REST body is taken only as
// application/json (charset utf-8 allowed), 415 otherwise, so that a
// browser cannot send one cross-site without a preflight; and only as one
// JSON value, 400 when anything but white space follows it. Neither is
// sent to Opentact. A request without a body needs no Content-Type.
func TestRESTTakesOnlyOneJSONValue(t *testing.T) {
	t.Parallel()
	up := newTokenUpstream(t, nil)
	f := startFacade(t, up.URL)
	const one = `{"token":"abc6"}`
	for _, tc := range []struct {
		name        string
		method      string
		path        string
		contentType []string // nil: none sent
		body        string
		code        int
	}{
		{"text/plain", http.MethodPost, "/v1/tokens:delete", []string{"text/plain"}, one, http.StatusUnsupportedMediaType},
		{"no Content-Type", http.MethodPost, "/v1/tokens:delete", nil, one, http.StatusUnsupportedMediaType},
		{"a form", http.MethodPost, "/v1/tokens:delete", []string{"application/x-www-form-urlencoded"}, one, http.StatusUnsupportedMediaType},
		{"multipart", http.MethodPost, "/v1/tokens", []string{"multipart/form-data; boundary=x"}, `{"name":"n"}`, http.StatusUnsupportedMediaType},
		{"another charset", http.MethodPost, "/v1/tokens:delete", []string{"application/json; charset=iso-8859-1"}, one, http.StatusUnsupportedMediaType},
		{"another parameter", http.MethodPost, "/v1/tokens:delete", []string{"application/json; profile=x"}, one, http.StatusUnsupportedMediaType},
		{"two Content-Types", http.MethodPost, "/v1/tokens:delete", []string{"application/json", "text/plain"}, one, http.StatusUnsupportedMediaType},
		{"text/plain PATCH", http.MethodPatch, "/v1/tokens/u-1", []string{"text/plain"}, `{"name":"n"}`, http.StatusUnsupportedMediaType},
		{"two values", http.MethodPost, "/v1/tokens:delete", []string{"application/json"}, one + `{"token":"all"}`, http.StatusBadRequest},
		{"data after the value", http.MethodPost, "/v1/tokens:delete", []string{"application/json"}, one + ` x`, http.StatusBadRequest},
		{"two values, PATCH", http.MethodPatch, "/v1/tokens/u-1", []string{"application/json"}, `{"name":"a"} {"ttl":60}`, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, body := f.restBody(t, tc.method, tc.path, http.Header{"Authorization": {demoBasic}, "Content-Type": tc.contentType}, tc.body)
			if r.StatusCode != tc.code {
				t.Fatalf("%d %s, want %d", r.StatusCode, body, tc.code)
			}
			if st := restStatus(t, body); st.Code() != codes.InvalidArgument {
				t.Errorf("code %v (%s), want InvalidArgument", st.Code(), st.Message())
			}
		})
	}
	if n := len(up.requests()); n != 0 {
		t.Fatalf("Opentact saw %d requests from refused bodies", n)
	}

	for _, tc := range []struct {
		name, method, path, contentType, body string
	}{
		{"application/json", http.MethodPost, "/v1/tokens:delete", "application/json", one},
		{"charset utf-8", http.MethodPost, "/v1/tokens:delete", "application/json; charset=UTF-8", one},
		{"upper case", http.MethodPost, "/v1/tokens:delete", "Application/JSON", one},
		{"white space after", http.MethodPost, "/v1/tokens:delete", "application/json", one + " \r\n\t"},
		{"GET without a body", http.MethodGet, "/v1/auth", "", ""},
		{"DELETE without a body", http.MethodDelete, "/v1/tokens", "", ""},
	} {
		header := http.Header{"Authorization": {demoBasic}, "Content-Type": nil}
		if tc.contentType != "" {
			header["Content-Type"] = []string{tc.contentType}
		}
		if r, body := f.restBody(t, tc.method, tc.path, header, tc.body); r.StatusCode != http.StatusOK {
			t.Errorf("%s: %d %s, want 200", tc.name, r.StatusCode, body)
		}
	}
	if n := len(up.requests()); n != 6 {
		t.Errorf("Opentact saw %d requests, want the 6 taken", n)
	}
}

// TestRESTRefusalsAreCountedAndLogged: every REST request refused before
// a handler, by the edge or by the gateway's routing and decoding, is
// counted in opentact_facade_rest_refused_total by reason and logged
// (method, path, reason, status, peer; never a header or the body); the
// handler's own errors (no credentials, a validation error) are not
// refusals.
func TestRESTRefusalsAreCountedAndLogged(t *testing.T) {
	t.Parallel()
	up := newTokenUpstream(t, nil)
	f := startFacade(t, up.URL)
	auth := http.Header{"Authorization": {demoBasic}}
	for _, tc := range []struct {
		name, method, path string
		header             http.Header
		body               string
		code               int
		reason             string
	}{
		{"malformed JSON", http.MethodPost, "/v1/tokens", auth, `{"name":`, http.StatusBadRequest, "malformed_request"},
		{"an unknown field", http.MethodPost, "/v1/tokens", auth, `{"name":"x","tll":1}`, http.StatusBadRequest, "malformed_request"},
		{"two JSON values", http.MethodPost, "/v1/tokens", auth, `{"name":"x"}{}`, http.StatusBadRequest, "malformed_request"},
		{"a bad Grpc-Timeout", http.MethodGet, "/v1/auth", http.Header{"Authorization": {demoBasic}, "Grpc-Timeout": {"soon"}}, "", http.StatusBadRequest, "malformed_request"},
		{"no route", http.MethodGet, "/v1/nothing", auth, "", http.StatusNotFound, "not_found"},
		{"no route, POST", http.MethodPost, "/nothing/at/all", auth, `{}`, http.StatusNotFound, "not_found"},
		{"another method", http.MethodPut, "/v1/tokens", auth, `{}`, http.StatusMethodNotAllowed, "method_not_allowed"},
		{"a body too large", http.MethodPost, "/v1/tokens", auth, `{"name":"` + strings.Repeat("n", 20<<10) + `"}`, http.StatusRequestEntityTooLarge, "body_too_large"},
		{"text/plain", http.MethodPost, "/v1/tokens", http.Header{"Authorization": {demoBasic}, "Content-Type": {"text/plain"}}, `{"name":"x"}`, http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"a malformed credential", http.MethodGet, "/v1/auth", http.Header{"X-Auth-Token": {"tök-secret"}}, "", http.StatusBadRequest, "malformed_credentials"},
	} {
		resp, body := f.restBody(t, tc.method, tc.path, tc.header, tc.body)
		if resp.StatusCode != tc.code {
			t.Errorf("%s: %d %.100s, want %d", tc.name, resp.StatusCode, body, tc.code)
		}
	}
	// The handler's errors: not refusals.
	if resp, _ := f.rest(t, http.MethodGet, "/v1/auth", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without credentials: %d, want 401", resp.StatusCode)
	}
	if resp, _ := f.restBody(t, http.MethodPost, "/v1/tokens", auth, `{"name":""}`); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("an empty name: %d, want 400", resp.StatusCode)
	}

	want := map[string]float64{"malformed_request": 4, "not_found": 2, "method_not_allowed": 1, "body_too_large": 1, "unsupported_media_type": 1, "malformed_credentials": 1}
	text := shMetrics(t, f)
	for reason, n := range want {
		if got, _ := shSample(text, "opentact_facade_rest_refused_total", `reason="`+reason+`"`); got != n {
			t.Errorf("rest_refused_total{reason=%q} = %v, want %v", reason, got, n)
		}
	}
	if got, _ := shSample(text, "opentact_facade_rest_refused_total"); got != 10 {
		t.Errorf("rest_refused_total = %v in all, want 10", got)
	}

	lines := f.logs.lines("REST request refused")
	byReason := map[string]int{}
	for _, l := range lines {
		byReason[l["reason"].(string)]++
		for _, k := range []string{"http.method", "http.path", "http.status", "peer.address"} {
			if l[k] == nil || l[k] == "" {
				t.Errorf("a refusal line without %s: %v", k, l)
			}
		}
	}
	for reason, n := range want {
		if byReason[reason] != int(n) {
			t.Errorf("%d lines for %s, want %v", byReason[reason], reason, n)
		}
	}
	if l := f.logs.String(); strings.Contains(l, "tök-secret") || strings.Contains(l, demoBasic) {
		t.Error("the logs hold a credential")
	}
	if n := len(up.requests()); n != 0 {
		t.Errorf("Opentact saw %d requests", n)
	}
}

// TestRESTErrorsAreConsistent: a 413 says RESOURCE_EXHAUSTED; a 401's
// WWW-Authenticate holds the challenges of the schemes the facade takes,
// not the error's text, whether the facade or Opentact refused the
// credentials; a path that is not clean gets a JSON 404, not an HTML
// redirect to its clean form; another method on /openapi.json is a JSON
// 405.
func TestRESTErrorsAreConsistent(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Auth-Token") == "revoked" {
			answer(401, `{"success":false,"status":401,"message":"Unauthorized"}`)(w, r)
			return
		}
		answer(200, okBody)(w, r)
	})
	f := startFacade(t, up.URL)

	resp, body := f.restBody(t, http.MethodPost, "/v1/tokens", http.Header{"Authorization": {demoBasic}}, `{"name":"`+strings.Repeat("n", 20<<10)+`"}`)
	if st := restStatus(t, body); resp.StatusCode != http.StatusRequestEntityTooLarge || st.Code() != codes.ResourceExhausted {
		t.Errorf("a body too large: %d %s, want 413 RESOURCE_EXHAUSTED", resp.StatusCode, body)
	}

	for name, header := range map[string]http.Header{
		"no credentials":      nil,
		"refused by Opentact": {"X-Auth-Token": {"revoked"}},
	} {
		resp, body := f.rest(t, http.MethodGet, "/v1/auth", header)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s: %d %s, want 401", name, resp.StatusCode, body)
		}
		if got, want := resp.Header.Values("WWW-Authenticate"), []string{`Basic realm="opentact"`, "Bearer"}; !slices.Equal(got, want) {
			t.Errorf("%s: WWW-Authenticate %q, want %q", name, got, want)
		}
		if st := restStatus(t, body); st.Code() != codes.Unauthenticated {
			t.Errorf("%s: %s, want UNAUTHENTICATED", name, body)
		}
	}

	for _, target := range []string{"//v1/auth", "/v1/./auth", "/v1/../v1/auth", "/v1/auth/", "/v1//auth", "//openapi.json", "/./openapi.json"} {
		resp, body := rawHTTP1(t, restHostPort(f), "GET "+target+" HTTP/1.1\r\nHost: x\r\nAuthorization: "+demoBasic+"\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Location") != "" || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("GET %s: %d, Location %q, Content-Type %q: %.100s; want a JSON 404", target, resp.StatusCode, resp.Header.Get("Location"), resp.Header.Get("Content-Type"), body)
			continue
		}
		if st := restStatus(t, body); st.Code() != codes.NotFound {
			t.Errorf("GET %s: %s, want NOT_FOUND", target, body)
		}
	}
	resp, body = rawHTTP1(t, restHostPort(f), "POST //v1/tokens HTTP/1.1\r\nHost: x\r\nAuthorization: "+demoBasic+"\r\nContent-Type: application/json\r\nContent-Length: 12\r\nConnection: close\r\n\r\n{\"name\":\"x\"}")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST //v1/tokens: %d %s, want 404", resp.StatusCode, body)
	}
	if n := up.calls.Load(); n != 1 {
		t.Errorf("the upstream saw %d requests, want the one refused as revoked", n)
	}

	resp, body = f.rest(t, http.MethodPost, "/openapi.json", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("POST /openapi.json: %d, Allow %q: %s; want a JSON 405, Allow GET, HEAD", resp.StatusCode, resp.Header.Get("Allow"), body)
	}
	if resp, _ := f.rest(t, http.MethodHead, "/openapi.json", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD /openapi.json: %d, want 200", resp.StatusCode)
	}
}

// TestRESTRefusalsShowNumbersByTheirLastDigits: a refused request's path
// holds a phone number whole (GET /v1/numbers/{tn}/lease with another
// method); its log line shows the last four digits only.
func TestRESTRefusalsShowNumbersByTheirLastDigits(t *testing.T) {
	t.Parallel()
	f := startFacade(t, newTokenUpstream(t, nil).URL)
	resp, body := f.restBody(t, http.MethodPut, "/v1/numbers/12029822917/lease", http.Header{"Authorization": {demoBasic}}, "")
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("PUT /v1/numbers/{tn}/lease: %d %.100s, want 405", resp.StatusCode, body)
	}
	lines := f.logs.lines("REST request refused")
	if len(lines) != 1 || lines[0]["http.path"] != "/v1/numbers/***2917/lease" {
		t.Errorf("refusal lines %v, want one with the path /v1/numbers/***2917/lease", lines)
	}
	if strings.Contains(f.logs.String(), "12029822917") {
		t.Error("the whole number is in the logs")
	}
}
