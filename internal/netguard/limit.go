// Package netguard supplies net.Listener wrappers that protect a server's
// port: a cap on open connections and a guard that cuts HTTP/2 connections
// flooding the server with premature resets (rapid reset).
package netguard

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
)

// Limited is a net.Listener that keeps at most a fixed number of accepted
// connections open at once and closes the ones past that at once, so that a
// client learns quickly to try another replica instead of waiting in the
// kernel's backlog.
type Limited struct {
	ln        net.Listener
	max       int64
	onRefused func()
	open      atomic.Int64
}

// LimitListener returns a listener that accepts from l and keeps at most max
// of the accepted connections open at once; max <= 0 means no limit. A
// connection accepted past the limit is closed at once and onRefused, when
// not nil, is called; Accept then goes on to the next connection.
func LimitListener(l net.Listener, max int, onRefused func()) *Limited {
	return &Limited{ln: l, max: int64(max), onRefused: onRefused}
}

// Accept waits for a connection that fits under the limit and returns it.
// It returns an error only when the underlying listener does.
func (l *Limited) Accept() (net.Conn, error) {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return nil, err
		}
		if l.take() {
			return &limitedConn{Conn: c, l: l}, nil
		}
		_ = c.Close()
		if l.onRefused != nil {
			l.onRefused()
		}
	}
}

// take claims a place, reporting false when none is free.
func (l *Limited) take() bool {
	if l.max <= 0 {
		l.open.Add(1)
		return true
	}
	for {
		n := l.open.Load()
		if n >= l.max {
			return false
		}
		if l.open.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Close closes the underlying listener; connections already accepted stay
// open.
func (l *Limited) Close() error { return l.ln.Close() }

// Addr returns the underlying listener's address.
func (l *Limited) Addr() net.Addr { return l.ln.Addr() }

// Open returns the number of accepted connections open now.
func (l *Limited) Open() int { return int(l.open.Load()) }

// limitedConn frees its place in the listener on its first Close.
type limitedConn struct {
	net.Conn
	l    *Limited
	once sync.Once
}

func (c *limitedConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
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
