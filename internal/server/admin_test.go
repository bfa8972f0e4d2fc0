package server_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/server"
)

// holdConns opens n idle TCP connections from the local address from to
// addr, closed when the test ends.
func holdConns(t *testing.T, from, addr string, n int) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	for range n {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
	}
}

// assertRefused dials addr from the local address from and checks that
// the connection is closed, not kept: the facade under test must wait for
// request headers longer than guard (see patientHeaders), so that a
// connection it took would outlast the read's deadline however slow the
// machine.
func assertRefused(t *testing.T, from, addr, what string) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(guard))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, errDeadline) {
		t.Errorf("%s: read %v, want the connection closed at once", what, err)
	}
}

// patientHeaders makes the facade wait for a connection's request
// headers (or HTTP/2 preface) longer than assertRefused reads.
func patientHeaders(o *server.Options) { o.ReadHeaderTimeout = 2 * guard }

// clientFrom is an HTTP client whose connections come from the local
// address from.
func clientFrom(t *testing.T, from string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	return transportClient(t, &http.Transport{DialContext: d.DialContext})
}

// TestProbesOutliveAFullPublicPort: with the REST port at its bound, held
// by one client's idle connections, the probes and the metrics still
// answer on the admin port, where the kubelet and Prometheus ask.
func TestProbesOutliveAFullPublicPort(t *testing.T) {
	t.Parallel()
	const max = 8
	f := startFacade(t, newRecorder(t, answer(200, okBody)).URL, patientHeaders, func(o *server.Options) {
		o.MaxConnections, o.MaxConnectionsPerClient = max, max
	})
	holdConns(t, "127.0.0.1", restHostPort(f), max)
	waitFor(t, "the REST port full", func() bool {
		return metric(t, f, "opentact_facade_connections_open", `listener="rest"`) == max
	})
	assertRefused(t, "127.0.0.1", restHostPort(f), "REST past its bound")

	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if resp, body := f.admin(t, path); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s on the admin port with the REST port full: %d %.100s", path, resp.StatusCode, body)
		}
	}
	if got := metric(t, f, "opentact_facade_connections_refused_total", `listener="rest"`, `reason="max_connections"`); got < 1 {
		t.Errorf("connections_refused_total{listener=rest,reason=max_connections} = %v, want at least 1", got)
	}
}

// TestOneClientCannotFillThePublicPorts: one client address holding its
// bound on each public port is refused more connections, counted and
// logged as such, while a client from another address is served.
func TestOneClientCannotFillThePublicPorts(t *testing.T) {
	t.Parallel()
	const perClient = 2
	f := startFacade(t, newRecorder(t, answer(200, okBody)).URL, patientHeaders, func(o *server.Options) {
		o.MaxConnections, o.MaxConnectionsPerClient = 16, perClient
	})
	// The facade's own gRPC client holds one connection from 127.0.0.1.
	if _, err := f.client.GetAuth(authCtx(t, 5*time.Second), &authv1.GetAuthRequest{}); err != nil {
		t.Fatal(err)
	}
	holdConns(t, "127.0.0.1", grpcHostPort(f), perClient-1)
	holdConns(t, "127.0.0.1", restHostPort(f), perClient)
	waitFor(t, "the connections held", func() bool {
		return metric(t, f, "opentact_facade_connections_open", `listener="rest"`) == perClient &&
			metric(t, f, "opentact_facade_connections_open", `listener="grpc"`) == perClient
	})
	assertRefused(t, "127.0.0.1", restHostPort(f), "REST from 127.0.0.1 past its bound")
	assertRefused(t, "127.0.0.1", grpcHostPort(f), "gRPC from 127.0.0.1 past its bound")

	resp, body, err := getAuth(clientFrom(t, "127.0.0.2"), f.restURL+"/v1/auth")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("REST from 127.0.0.2: %v %v %.100s, want 200", err, resp, body)
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	conn, err := grpc.NewClient(grpcHostPort(f), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := authv1.NewAuthServiceClient(conn).GetAuth(authCtx(t, 5*time.Second), &authv1.GetAuthRequest{}); err != nil {
		t.Errorf("gRPC from 127.0.0.2: %v", err)
	}

	for _, l := range []string{"grpc", "rest"} {
		if got := metric(t, f, "opentact_facade_connections_refused_total", `listener="`+l+`"`, `reason="max_connections_per_client"`); got < 1 {
			t.Errorf("connections_refused_total{listener=%s,reason=max_connections_per_client} = %v, want at least 1", l, got)
		}
		if got := metric(t, f, "opentact_facade_connections_refused_total", `listener="`+l+`"`, `reason="max_connections"`); got != 0 {
			t.Errorf("connections_refused_total{listener=%s,reason=max_connections} = %v, want 0", l, got)
		}
	}
	waitFor(t, "the refusals logged", func() bool {
		for _, l := range f.logs.lines("connection refused: too many open") {
			if l["reason"] == "max_connections_per_client" && l["listener"] == "rest" {
				return true
			}
		}
		return false
	})
}
