package netguard_test

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/opentact-facade/opentact-facade/internal/netguard"
)

// dialServed dials addr and checks that an echo server answers on it.
func dialServed(t *testing.T, addr string) net.Conn {
	t.Helper()
	return dialServedFrom(t, "127.0.0.1", addr)
}

// dialServedFrom is dialServed from the local address from: Linux
// accepts any 127.0.0.0/8 address on loopback.
func dialServedFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(waitLimit))
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("connection not served: %v", err)
	}
	return c
}

// dialRefused dials addr and checks that the server closes the connection
// without waiting for anything.
func dialRefused(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(waitLimit))
	n, err := c.Read(make([]byte, 1))
	if n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection past the limit: read %d bytes, %v; want it closed at once", n, err)
	}
}

func TestLimitListenerClosesConnectionsPastMax(t *testing.T) {
	refused := make(chan struct{}, 8)
	ln := netguard.LimitListener(listen(t), netguard.Limits{Max: 2}, func(reason string, _ net.Addr) {
		if reason != netguard.RefusedMax {
			t.Errorf("refused for %q, want %q", reason, netguard.RefusedMax)
		}
		refused <- struct{}{}
	})
	closed := make(chan struct{}, 8)
	serve(t, ln, func(c net.Conn) {
		_, _ = io.Copy(c, c)
		c.Close()
		c.Close() // a second Close must not free a second place
		closed <- struct{}{}
	})
	addr := ln.Addr().String()

	first := dialServed(t, addr)
	dialServed(t, addr)
	dialRefused(t, addr)
	waitFor(t, refused, "onRefused")
	if n := ln.Open(); n != 2 {
		t.Fatalf("Open() = %d with two connections served, want 2", n)
	}

	first.Close()
	waitFor(t, closed, "the server to close the first connection")
	if n := ln.Open(); n != 1 {
		t.Fatalf("Open() = %d after one of two closed (twice), want 1", n)
	}
	dialServed(t, addr)
	dialRefused(t, addr)
	waitFor(t, refused, "onRefused")
	if n := ln.Open(); n != 2 {
		t.Fatalf("Open() = %d, want 2", n)
	}
}

// TestLimitListenerBoundsEachClient: one client address holding its
// bound is refused more, while another address is still served, and a
// place it frees is its own again.
func TestLimitListenerBoundsEachClient(t *testing.T) {
	type refusal struct {
		reason string
		remote net.Addr
	}
	refused := make(chan refusal, 8)
	ln := netguard.LimitListener(listen(t), netguard.Limits{Max: 4, PerClient: 2}, func(reason string, remote net.Addr) {
		refused <- refusal{reason, remote}
	})
	closed := make(chan struct{}, 8)
	serve(t, ln, func(c net.Conn) {
		_, _ = io.Copy(c, c)
		c.Close()
		closed <- struct{}{}
	})
	addr := ln.Addr().String()

	first := dialServed(t, addr)
	dialServed(t, addr)
	dialRefused(t, addr)
	r := waitFor(t, refused, "onRefused")
	if r.reason != netguard.RefusedPerClient || !strings.HasPrefix(r.remote.String(), "127.0.0.1:") {
		t.Errorf("refused %v for %q, want 127.0.0.1 for %q", r.remote, r.reason, netguard.RefusedPerClient)
	}
	if n := ln.Open(); n != 2 {
		t.Fatalf("Open() = %d, want 2: a refused connection holds no place", n)
	}
	dialServedFrom(t, "127.0.0.2", addr)
	dialServedFrom(t, "127.0.0.2", addr)
	dialRefused(t, addr)
	if r := waitFor(t, refused, "onRefused"); r.reason != netguard.RefusedMax {
		t.Errorf("past the bound in all: refused for %q, want %q", r.reason, netguard.RefusedMax)
	}

	first.Close()
	waitFor(t, closed, "the server to close the first connection")
	dialServed(t, addr)
}
