package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"

	"golang.org/x/net/http2"
)

// pool is the client's connection pool to Opentact's one host, bounded
// whatever the load. Over HTTP/2 (a TLS host that offers it) each
// connection carries as many requests at once as the host allows, so a
// few connections (maxH2) serve thousands of calls. Over HTTP/1.1 each
// request in flight holds a connection of its own, and the bound is the
// client's requests in flight (maxH1), so that none waits unseen here
// behind the gate. A request that finds every connection busy and the
// bound reached waits, within its context, for a slot.
//
// Connections are made by an http.Transport (dial and TLS-handshake
// timeouts, ALPN, response-header timeout and size cap), one at a time
// with http.Transport.NewClientConn, and are never shared with another
// pool.
type pool struct {
	tr     *http.Transport
	scheme string
	addr   string // host:port
	maxH2  int
	maxH1  int

	conns atomic.Pointer[[]*conn] // copy on write, under mu
	// changed is closed and replaced, under mu, when a slot may have
	// freed; a request loads it before it looks for a slot, so that a
	// slot freed meanwhile wakes it.
	changed atomic.Pointer[chan struct{}]
	// waiters counts requests in get; a slot freed while none is there
	// wakes no one. A request counts itself before it looks for a slot, so
	// that a slot freed after its look sees the count.
	waiters atomic.Int32

	mu      sync.Mutex
	dialing int
	perConn int // 1 over HTTP/1.1, 2 over HTTP/2 (many), from the first connection made

	opened atomic.Uint64
	open   atomic.Int64
}

func newPool(tr *http.Transport, scheme, host string, maxH2, maxH1 int) *pool {
	port := "443"
	if scheme == "http" {
		port = "80"
	}
	if h, p, err := net.SplitHostPort(host); err == nil {
		host, port = h, p
	}
	p := &pool{tr: tr, scheme: scheme, addr: net.JoinHostPort(host, port), maxH2: maxH2, maxH1: maxH1}
	p.conns.Store(&[]*conn{})
	ch := make(chan struct{})
	p.changed.Store(&ch)
	return p
}

// errOtherHost is a request the pool cannot send: the client sends only
// to its base URL's host.
var errOtherHost = errors.New("upstream: request to a host other than the base URL's")

// conn is one connection of the pool. A new HTTP/2 connection carries one
// request until its first answer: until then the client has not seen the
// host's SETTINGS and assumes 100 streams, and a host that allows fewer
// would refuse the ones beyond.
type conn struct {
	cc      *http.ClientConn
	used    atomic.Bool
	settled atomic.Bool // its first answer came, or it is HTTP/1.1
	probing atomic.Bool // its first request is under way
	// HTTP/1.1: busy is set while its one slot is taken, so that a look
	// for a slot passes it by without a Reserve, which on a busy
	// connection takes four locks and makes an error. A hint: Reserve
	// decides.
	h1   bool
	busy atomic.Bool
}

// reserve reserves a slot on c: any free one once c is settled, else its
// first request's.
func (c *conn) reserve() (ok, probe bool) {
	if c.settled.Load() {
		if c.h1 {
			if c.busy.Load() || c.cc.Reserve() != nil {
				return false, false
			}
			c.busy.Store(true)
			return true, false
		}
		return c.cc.Reserve() == nil, false
	}
	if !c.probing.CompareAndSwap(false, true) {
		return false, false
	}
	if c.cc.Reserve() != nil {
		c.probing.Store(false)
		return false, false
	}
	return true, true
}

// RoundTrip sends req on a connection with a free slot. Should the host
// still refuse a request unprocessed (REFUSED_STREAM: it lowered its
// stream limit, say), a request without a body is sent again, up to once
// per connection the pool may make; one with a body fails, as its body
// cannot be read twice.
func (p *pool) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != p.scheme || !p.sameHost(req.URL.Host) {
		closeBody(req)
		return nil, errOtherHost
	}
	for try := 0; ; try++ {
		c, probe, err := p.get(req.Context())
		if err != nil {
			closeBody(req)
			return nil, err
		}
		if trace := httptrace.ContextClientTrace(req.Context()); trace != nil && trace.GotConn != nil {
			// As Go's transport does: from here on, bytes may be written.
			trace.GotConn(httptrace.GotConnInfo{Reused: c.used.Swap(true)})
		}
		resp, err := c.cc.RoundTrip(req) // takes the slot get reserved
		if probe {
			if err == nil {
				c.settled.Store(true)
			}
			c.probing.Store(false)
			p.mu.Lock()
			p.wakeLocked()
			p.mu.Unlock()
		}
		if bodyless := req.Body == nil || req.Body == http.NoBody; err != nil && bodyless && try <= p.maxH2 {
			if se, ok := errors.AsType[http2.StreamError](err); ok && se.Code == http2.ErrCodeRefusedStream {
				continue
			}
		}
		return resp, err
	}
}

func (p *pool) sameHost(host string) bool {
	if host == p.addr {
		return true
	}
	h, port, err := net.SplitHostPort(p.addr)
	return err == nil && ((p.scheme == "https" && port == "443") || (p.scheme == "http" && port == "80")) && host == h
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// get returns a connection on which it reserved a slot, making one when
// every connection is busy and the bound allows, or waiting for a slot.
func (p *pool) get(ctx context.Context) (*conn, bool, error) {
	p.waiters.Add(1)
	defer p.waiters.Add(-1)
	for {
		changed := *p.changed.Load()
		// First fit: the first connections fill up before another is
		// made, so that the ones beyond need go idle and close.
		for _, c := range *p.conns.Load() {
			if ok, probe := c.reserve(); ok {
				return c, probe, nil
			}
		}
		p.mu.Lock()
		n := len(*p.conns.Load())
		// Over HTTP/1.1 a dial gives one slot: dial for each request, up
		// to the bound. Over HTTP/2 (or before the first connection,
		// whose protocol is not known yet) one dial under way will give
		// many: wait for it.
		bound := p.maxH2
		if p.perConn == 1 {
			bound = p.maxH1
		}
		canDial := n+p.dialing < bound && (p.perConn == 1 || p.dialing == 0)
		if !canDial {
			p.mu.Unlock()
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return nil, false, context.Cause(ctx)
			}
		}
		p.dialing++
		p.mu.Unlock()
		cc, err := p.dial(ctx)
		if err != nil {
			p.mu.Lock()
			p.dialing--
			p.wakeLocked()
			p.mu.Unlock()
			return nil, false, err
		}
		multiplexed := cc.Available()+cc.InFlight() > 1
		c := &conn{cc: cc, h1: !multiplexed}
		c.settled.Store(!multiplexed)
		ok, probe := c.reserve()
		p.mu.Lock()
		p.dialing--
		if p.perConn == 0 {
			p.perConn = 1
			if multiplexed {
				p.perConn = 2
			}
		}
		conns := append(append(make([]*conn, 0, n+1), *p.conns.Load()...), c)
		p.conns.Store(&conns)
		p.wakeLocked()
		p.mu.Unlock()
		cc.SetStateHook(func(cc *http.ClientConn) {
			if c.h1 && cc.Available() > 0 {
				c.busy.Store(false) // before any waiter is woken
			}
			p.stateChanged(cc)
		})
		if ok {
			return c, probe, nil
		}
	}
}

// dial makes a new connection and counts it until it closes.
func (p *pool) dial(ctx context.Context) (*http.ClientConn, error) {
	cc, err := p.tr.NewClientConn(ctx, p.scheme, p.addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, fmt.Errorf("connecting to Opentact: %w", err)
	}
	p.opened.Add(1)
	p.open.Add(1)
	return cc, nil
}

// stateChanged is each connection's state hook: a request finished, a slot
// freed, or the connection ended. It may run inside Reserve or RoundTrip,
// so it never waits on anything they hold.
func (p *pool) stateChanged(cc *http.ClientConn) {
	ended := cc.Err() != nil
	if !ended && p.waiters.Load() == 0 {
		return // a slot freed, and no request looks for one
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if ended {
		p.removeLocked(cc)
	}
	p.wakeLocked()
}

func (p *pool) removeLocked(cc *http.ClientConn) {
	old := *p.conns.Load()
	for i, c := range old {
		if c.cc == cc {
			conns := make([]*conn, 0, len(old)-1)
			conns = append(append(conns, old[:i]...), old[i+1:]...)
			p.conns.Store(&conns)
			p.open.Add(-1)
			return
		}
	}
}

func (p *pool) wakeLocked() {
	ch := make(chan struct{})
	close(*p.changed.Swap(&ch))
}

// Connections reports the connections open now and made since start.
func (p *pool) Connections() (open int64, opened uint64) {
	return p.open.Load(), p.opened.Load()
}

// CloseIdleConnections closes the connections with no request in flight.
func (p *pool) CloseIdleConnections() {
	for _, c := range *p.conns.Load() {
		if c.cc.InFlight() == 0 {
			c.cc.Close()
		}
	}
}
