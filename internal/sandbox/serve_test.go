package sandbox_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/opentact-facade/opentact-facade/internal/sandbox"
	"github.com/opentact-facade/opentact-facade/internal/testpki"
)

func TestDelayed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const d = 40 * time.Millisecond
		h := sandbox.Delayed(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }), d)

		start := time.Now()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/rest/auth", nil))
		if got := time.Since(start); got != d || rec.Body.String() != "ok" {
			t.Errorf("answered %q after %v, want %q after %v", rec.Body, got, "ok", d)
		}

		// A client that goes before the delay gets no answer, at once.
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(d/4, cancel)
		start = time.Now()
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/rest/auth", nil).WithContext(ctx))
		if got := time.Since(start); got != d/4 || rec.Body.Len() != 0 {
			t.Errorf("a client gone after %v got %q after %v, want nothing at once", d/4, rec.Body, got)
		}
	})
}

// TestServeTLS: with a TLS config the sandbox serves HTTPS and offers
// HTTP/2, as Opentact does.
func TestServeTLS(t *testing.T) {
	t.Parallel()
	p := testpki.New(t)
	cert, err := tls.LoadX509KeyPair(p.ServerCert, p.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := sandbox.New(sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- sandbox.Serve(ctx, lis, sb, &tls.Config{Certificates: []tls.Certificate{cert}}) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.Roots}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+lis.Addr().String()+"/rest/auth", nil)
	req.SetBasicAuth(sandbox.DemoEmail, sandbox.DemoPassword)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		t.Errorf("got %d over %s, want 200 over HTTP/2", resp.StatusCode, resp.Proto)
	}
}
