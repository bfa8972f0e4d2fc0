// Package netguard supplies net.Listener wrappers that protect a server's
// port: a cap on open connections, in all and per client address, and a
// guard that cuts HTTP/2 connections flooding the server with premature
// resets (rapid reset).
package netguard

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Why a Limited closed a connection as soon as it accepted it, as its
// onRefused callback is told.
const (
	// RefusedMax: the listener had Limits.Max connections open.
	RefusedMax = "max_connections"
	// RefusedPerClient: the client's IP address had Limits.PerClient
	// connections open.
	RefusedPerClient = "max_connections_per_client"
)

// Limits bound the connections a Limited keeps open.
type Limits struct {
	// Max bounds the connections open in all; <= 0 means no bound.
	Max int
	// PerClient bounds the connections open from one IP address, so
	// that one client cannot take all of Max; <= 0 means no bound.
	PerClient int
}

// Limited is a net.Listener that keeps at most a fixed number of accepted
// connections open at once, in all and from any one IP address, and
// closes the ones past that at once, so that a client learns quickly to
// try another replica instead of waiting in the kernel's backlog.
type Limited struct {
	ln        net.Listener
	lim       Limits
	onRefused func(reason string, remote net.Addr)
	open      atomic.Int64

	mu        sync.Mutex
	perClient map[netip.Addr]int // connections open by client address, when PerClient > 0
}

// LimitListener returns a listener that accepts from l and keeps open at
// most lim.Max of the accepted connections, and at most lim.PerClient from
// one IP address. A connection accepted past a bound is closed at once and
// onRefused, when not nil, is called with the reason (RefusedMax or
// RefusedPerClient) and the client's address; Accept then goes on to the
// next connection.
func LimitListener(l net.Listener, lim Limits, onRefused func(reason string, remote net.Addr)) *Limited {
	ln := &Limited{ln: l, lim: lim, onRefused: onRefused}
	if lim.PerClient > 0 {
		ln.perClient = make(map[netip.Addr]int)
	}
	return ln
}

// Accept waits for a connection that fits under the bounds and returns
// it. It returns an error only when the underlying listener does.
func (l *Limited) Accept() (net.Conn, error) {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return nil, err
		}
		if !l.take() {
			l.refuse(c, RefusedMax)
			continue
		}
		client, ok := l.takeClient(c.RemoteAddr())
		if !ok {
			l.open.Add(-1)
			l.refuse(c, RefusedPerClient)
			continue
		}
		return &limitedConn{Conn: c, l: l, client: client}, nil
	}
}

func (l *Limited) refuse(c net.Conn, reason string) {
	remote := c.RemoteAddr()
	_ = c.Close()
	if l.onRefused != nil {
		l.onRefused(reason, remote)
	}
}

// take claims a place, reporting false when none is free.
func (l *Limited) take() bool {
	if l.lim.Max <= 0 {
		l.open.Add(1)
		return true
	}
	for {
		n := l.open.Load()
		if n >= int64(l.lim.Max) {
			return false
		}
		if l.open.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// takeClient claims a place of the client at remote, reporting false when
// it has none free. It returns the client's key, invalid when the
// connection is not bounded per client (no bound, or an address that is
// not IP).
func (l *Limited) takeClient(remote net.Addr) (netip.Addr, bool) {
	if l.perClient == nil {
		return netip.Addr{}, true
	}
	client, ok := clientOf(remote)
	if !ok {
		return netip.Addr{}, true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perClient[client] >= l.lim.PerClient {
		return netip.Addr{}, false
	}
	l.perClient[client]++
	return client, true
}

func (l *Limited) releaseClient(client netip.Addr) {
	if !client.IsValid() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := l.perClient[client] - 1; n > 0 {
		l.perClient[client] = n
	} else {
		delete(l.perClient, client)
	}
}

// clientOf is the IP address a connection comes from: an IPv4 client
// over IPv6 counts as its IPv4 address.
func clientOf(remote net.Addr) (netip.Addr, bool) {
	tcp, ok := remote.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}, false
	}
	a := tcp.AddrPort().Addr().Unmap()
	return a, a.IsValid()
}

// Close closes the underlying listener; connections already accepted stay
// open.
func (l *Limited) Close() error { return l.ln.Close() }

// Addr returns the underlying listener's address.
func (l *Limited) Addr() net.Addr { return l.ln.Addr() }

// Open returns the number of accepted connections open now.
func (l *Limited) Open() int { return int(l.open.Load()) }

// limitedConn frees its places in the listener on its first Close.
type limitedConn struct {
	net.Conn
	l      *Limited
	client netip.Addr // invalid when not bounded per client
	once   sync.Once
}

func (c *limitedConn) Close() error {
	c.once.Do(func() {
		c.l.releaseClient(c.client)
		c.l.open.Add(-1)
	})
	return c.Conn.Close()
}

// errNoHalfClose is returned by CloseWrite when the connection below cannot
// half-close.
var errNoHalfClose = errors.New("netguard: connection cannot half-close")

// CloseWrite half-closes the connection below, when it can, so that a
// wrapper above (such as GuardHTTP2's) can still half-close.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errNoHalfClose
}

// NetConn returns the connection below.
func (c *limitedConn) NetConn() net.Conn { return c.Conn }
