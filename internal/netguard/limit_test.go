package netguard_test

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/opentact-facade/opentact-facade/internal/netguard"
)

// dialServed dials addr and checks that an echo server answers on it.
func dialServed(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
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
	ln := netguard.LimitListener(listen(t), 2, func() { refused <- struct{}{} })
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
