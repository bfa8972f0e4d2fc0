package upstream_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/opentact-facade/opentact-facade/internal/testpki"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// peak tracks a count and the most it reached.
type peak struct{ now, most atomic.Int64 }

func (p *peak) add(d int64) int64 {
	n := p.now.Add(d)
	for m := p.most.Load(); n > m && !p.most.CompareAndSwap(m, n); m = p.most.Load() {
	}
	return n
}

// heldUpstream is a TLS stand-in that answers the first request on each
// connection at once and holds every other until the test lets it go, and
// counts the connections and requests it has at once.
type heldUpstream struct {
	srv              *httptest.Server
	conns, inFlight  peak
	accepted         atomic.Int64
	full             chan struct{} // closed when fullAt requests are held at once
	release          chan struct{} // closed to answer every request at once
	wrongProto       atomic.Int64
	fullAt, protoMaj int
}

func newHeldUpstream(t *testing.T, http2 bool, streams, fullAt int) *heldUpstream {
	h := &heldUpstream{full: make(chan struct{}), release: make(chan struct{}), fullAt: fullAt, protoMaj: 1}
	if http2 {
		h.protoMaj = 2
	}
	var (
		fullOnce sync.Once
		mu       sync.Mutex
		seen     = map[string]bool{}
	)
	h.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor != h.protoMaj {
			h.wrongProto.Add(1)
		}
		mu.Lock()
		first := !seen[r.RemoteAddr]
		seen[r.RemoteAddr] = true
		mu.Unlock()
		if first {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(okBody))
			return
		}
		if h.inFlight.add(1) >= int64(h.fullAt) {
			fullOnce.Do(func() { close(h.full) })
		}
		select {
		case <-h.release:
		case <-r.Context().Done():
		}
		h.inFlight.add(-1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(okBody))
	}))
	h.srv.EnableHTTP2 = http2
	h.srv.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: streams}
	h.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			h.accepted.Add(1)
			h.conns.add(1)
		case http.StateClosed, http.StateHijacked:
			h.conns.add(-1)
		}
	}
	h.srv.StartTLS()
	t.Cleanup(h.srv.Close)
	return h
}

func (h *heldUpstream) roots() *x509.CertPool { return trusting(h.srv) }

// trusting is a pool of srv's certificate alone.
func trusting(srv *httptest.Server) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(srv.Certificate())
	return p
}

// callsAtOnce makes n calls at once and returns how many failed, with the
// first error.
func callsAtOnce(t *testing.T, c *upstream.Client, n int) (int64, error) {
	var (
		wg     sync.WaitGroup
		failed atomic.Int64
		first  atomic.Pointer[error]
	)
	creds := basicCreds(t)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := auth(c, context.Background(), creds); err != nil {
				failed.Add(1)
				first.CompareAndSwap(nil, &err)
			}
		}()
	}
	wg.Wait()
	if p := first.Load(); p != nil {
		return failed.Load(), *p
	}
	return 0, nil
}

func TestConnectionsBounded(t *testing.T) {
	t.Parallel()
	const maxConns, streams, callers = 2, 4, 60
	for _, tc := range []struct {
		name  string
		http2 bool
		// held is the requests the host holds at once when every
		// connection is busy: streams per connection over HTTP/2, one
		// over HTTP/1.1, where the requests in flight bound the
		// connections.
		held, inFlight int
	}{
		{"HTTP/2 multiplexed", true, maxConns * streams, callers},
		{"HTTP/1.1 pool", false, maxConns, maxConns},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHeldUpstream(t, tc.http2, streams, tc.held)
			c := newClient(t, h.srv.URL, upstream.WithRootCAs(h.roots()), upstream.WithMaxConnections(maxConns), upstream.WithMaxInFlight(tc.inFlight))
			go func() {
				// Every connection is busy and the other callers wait in
				// the pool; then all are answered at once.
				select {
				case <-h.full:
				case <-time.After(30 * time.Second): // a guard, so that a failure does not hang the test
					t.Errorf("the host never held %d requests at once", tc.held)
				}
				close(h.release)
			}()
			failed, err := callsAtOnce(t, c, callers)
			if err != nil {
				t.Fatalf("%d of %d calls failed, the first: %v", failed, callers, err)
			}
			if n := h.wrongProto.Load(); n > 0 {
				t.Errorf("%d requests came over another protocol than HTTP/%d", n, h.protoMaj)
			}
			if got := h.conns.most.Load(); got > maxConns {
				t.Errorf("%d connections were open at once, want at most %d", got, maxConns)
			}
			if got := h.inFlight.most.Load(); got != int64(tc.held) {
				t.Errorf("the host held %d requests at once, want %d (%d connections × %d)", got, tc.held, maxConns, tc.held/maxConns)
			}
			open, opened := c.Connections()
			if accepted := h.accepted.Load(); opened != uint64(accepted) || open > maxConns || open < 1 {
				t.Errorf("Connections() = %d open, %d made; the host accepted %d, want at most %d open", open, opened, accepted, maxConns)
			}
		})
	}
}

// A host whose certificate no trusted CA signed is refused, whatever the
// host's own CA: WithRootCAs replaces the system's roots, and without it
// httptest's CA is not trusted.
func TestRootCAs(t *testing.T) {
	t.Parallel()
	h := newHeldUpstream(t, true, 4, 1)
	close(h.release)
	if _, err := auth(newClient(t, h.srv.URL), context.Background(), basicCreds(t)); err == nil {
		t.Fatal("a call to a host signed by an untrusted CA succeeded")
	} else if asError(t, err).Failure != upstream.FailTransport {
		t.Errorf("failure = %v, want FailTransport", asError(t, err).Failure)
	}
	other := x509.NewCertPool()
	other.AddCert(testpki.NewCA(t, "another CA").Cert)
	if _, err := auth(newClient(t, h.srv.URL, upstream.WithRootCAs(other)), context.Background(), basicCreds(t)); err == nil {
		t.Fatal("a call succeeded with the roots of another CA")
	}
	if _, err := auth(newClient(t, h.srv.URL, upstream.WithRootCAs(h.roots())), context.Background(), basicCreds(t)); err != nil {
		t.Fatalf("with the host's CA trusted: %v", err)
	}
}

// A request without a body goes out without one: over HTTP/2 its HEADERS
// frame ends the stream (no empty DATA frame after it, which the host
// would read as a body of unknown length), over HTTP/1.1 it has neither
// Content-Length nor Transfer-Encoding; traced or not.
func TestBodylessRequestsSendNoBody(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		http2  bool
		traced bool
	}{
		{"HTTP/2", true, false},
		{"HTTP/2 traced", true, true},
		{"HTTP/1.1", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var bad atomic.Pointer[string]
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.ContentLength != 0 || len(r.TransferEncoding) > 0 || r.Header.Get("Content-Length") != "" {
					s := fmt.Sprintf("%s: ContentLength %d, Transfer-Encoding %q", r.Proto, r.ContentLength, r.TransferEncoding)
					bad.Store(&s)
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(okBody))
			}))
			srv.EnableHTTP2 = tc.http2
			srv.StartTLS()
			t.Cleanup(srv.Close)
			opts := []upstream.Option{upstream.WithRootCAs(trusting(srv))}
			if tc.traced {
				opts = append(opts, upstream.WithTransportWrapper(func(rt http.RoundTripper) http.RoundTripper { return otelhttp.NewTransport(rt) }))
			}
			c := newClient(t, srv.URL, opts...)
			if _, err := auth(c, context.Background(), basicCreds(t)); err != nil {
				t.Fatal(err)
			}
			if s := bad.Load(); s != nil {
				t.Errorf("the host saw a body: %s", *s)
			}
		})
	}
}
