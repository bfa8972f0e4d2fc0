package server_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/server"
	"github.com/opentact-facade/opentact-facade/internal/testpki"
)

// tlsUpstream is an Opentact stand-in over TLS with HTTP/2, its
// certificate from p's server CA, counting the connections it accepts and
// the requests that came over HTTP/2.
func tlsUpstream(t *testing.T, p *testpki.PKI) (srv *httptest.Server, accepted, overH2 *atomic.Int64) {
	accepted, overH2 = new(atomic.Int64), new(atomic.Int64)
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 {
			overH2.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(okBody))
	}))
	cert, err := tls.LoadX509KeyPair(p.ServerCert, p.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.EnableHTTP2 = true
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			accepted.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, accepted, overH2
}

// TestUpstreamCA: with --upstream-ca the facade reaches an Opentact whose
// certificate that CA signed, over HTTP/2, reusing its connection, and
// reports the connections in its metrics; without it, the system's roots
// do not trust that CA and the call fails.
func TestUpstreamCA(t *testing.T) {
	t.Parallel()
	p := testpki.New(t)
	up, accepted, overH2 := tlsUpstream(t, p)

	f := startFacade(t, up.URL, func(o *server.Options) { o.UpstreamCA = p.ServerCA })
	const calls = 20
	for i := range calls {
		if _, err := f.client.GetAuth(metadataCtx(t, "x-auth-token", "tok-"+string(rune('a'+i))), &authv1.GetAuthRequest{}); err != nil {
			t.Fatalf("call %d through a trusted TLS upstream: %v", i, err)
		}
	}
	if got := overH2.Load(); got != calls {
		t.Errorf("%d of %d requests came over HTTP/2", got, calls)
	}
	m := shMetrics(t, f)
	opened, ok := shSample(m, "opentact_upstream_connections_opened_total")
	open, ok2 := shSample(m, "opentact_upstream_connections_open")
	if !ok || !ok2 || opened != float64(accepted.Load()) || open != 1 || opened != 1 {
		t.Errorf("metrics: %v opened, %v open (found %v, %v); the upstream accepted %d; want 1 and 1", opened, open, ok, ok2, accepted.Load())
	}

	plain := startFacade(t, up.URL)
	_, err := plain.client.GetAuth(metadataCtx(t, "x-auth-token", "tok"), &authv1.GetAuthRequest{})
	if err == nil {
		t.Fatal("a call reached an upstream signed by a CA neither the system nor --upstream-ca trusts")
	}
}

func TestBadUpstreamCA(t *testing.T) {
	t.Parallel()
	p := testpki.New(t)
	notPEM := p.Write(t, "not-pem.txt", []byte("this is not a certificate\n"))
	for _, tc := range []struct {
		name, file string
		want       []string
	}{
		{"missing file", filepath.Join(p.Dir, "missing-ca.pem"), []string{"upstream CA", "missing-ca.pem"}},
		{"no PEM in it", notPEM, []string{"upstream CA", "not-pem.txt", "no PEM certificate"}},
	} {
		s, err := server.New(server.Options{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Upstream: "https://127.0.0.1:1", UpstreamCA: tc.file})
		if s != nil {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_ = s.Serve(ctx)
			t.Errorf("%s: server.New succeeded", tc.name)
			continue
		}
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %v, want it to mention %q", tc.name, err, w)
			}
		}
	}
}
