package server_test

import (
	"net/http"
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
