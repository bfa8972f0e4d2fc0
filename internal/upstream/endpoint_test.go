package upstream_test

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// TestNotIdempotentRetriedOnlyBeforeSending: a POST /rest/token whose
// connection was refused (nothing was written) is tried again; one that
// reached Opentact is not, whatever the failure.
func TestNotIdempotentRetriedOnlyBeforeSending(t *testing.T) {
	t.Parallel()
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{"success":true,"payload":{"uuid":"u-1","name":"x"}}`)
	}))
	t.Cleanup(srv.Close)

	// A real transport whose first dial is refused, as by a host that is
	// restarting.
	dials, opt := dialing(t, func(n int32, network string) error {
		if n == 1 {
			return &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
		}
		return nil
	})
	c := newClient(t, srv.URL, opt, fastRetry(3))
	var tok profile
	err := upstream.Do(t.Context(), c, createTokenEndpoint, basicCreds(t), upstream.Request{Body: []byte(`{"name":"x"}`)}, func(p []byte) error {
		return json.Unmarshal(p, &tok)
	})
	if err != nil {
		t.Fatalf("a refused connection was not retried: %v", err)
	}
	if tok.UUID.Value != "u-1" || requests.Load() != 1 || dials() != 2 {
		t.Errorf("token %+v after %d requests and %d dials, want u-1 after 1 and 2", tok, requests.Load(), dials())
	}
}

// TestEndpointPaths: path values are escaped as one segment each; the
// number of values must match the template.
func TestEndpointPaths(t *testing.T) {
	t.Parallel()
	var uri atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uri.Store(r.Method + " " + r.RequestURI)
		_, _ = io.WriteString(w, `{"success":true,"payload":{}}`)
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL+"/prefix/")
	for value, want := range map[string]string{
		"abc":           "DELETE /prefix/rest/token/abc",
		"../auth?x=1":   "DELETE /prefix/rest/token/..%2Fauth%3Fx=1",
		".":             "DELETE /prefix/rest/token/%2E",
		"..":            "DELETE /prefix/rest/token/%2E%2E",
		"a/b":           "DELETE /prefix/rest/token/a%2Fb",
		"%2e%2e":        "DELETE /prefix/rest/token/%252e%252e",
		"x#frag":        "DELETE /prefix/rest/token/x%23frag",
		"caf\u00e9 \t!": "DELETE /prefix/rest/token/caf%C3%A9%20%09%21",
	} {
		if err := upstream.Do(t.Context(), c, deleteTokenEndpoint, basicCreds(t), upstream.Request{Path: []string{value}}, ignore); err != nil {
			t.Fatalf("%q: %v", value, err)
		}
		if got := uri.Load(); got != want {
			t.Errorf("%q reached %v, want %s", value, got, want)
		}
	}
	for _, path := range [][]string{nil, {""}, {"a", "b"}} {
		err := upstream.Do(t.Context(), c, deleteTokenEndpoint, basicCreds(t), upstream.Request{Path: path}, ignore)
		var ue *upstream.Error
		if err == nil || errors.As(err, &ue) {
			t.Errorf("path values %q: %v, want a local error and no request", path, err)
		}
	}
}

// ignore takes any payload.
func ignore([]byte) error { return nil }
