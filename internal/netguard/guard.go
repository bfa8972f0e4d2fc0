package netguard

import (
	"bytes"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

// ResetPolicy says when GuardHTTP2 cuts a connection for premature resets.
// The zero value gives the defaults.
type ResetPolicy struct {
	// MinStreams is how many streams a connection must have opened before
	// it can be cut; 0 means 100.
	MinStreams int
	// MaxPrematureRatio is the share of the opened streams that, once reset
	// prematurely, gets the connection cut; 0 means 0.5.
	MaxPrematureRatio float64
	// PrematureAge is the age under which a client's reset of an open
	// stream is premature; 0 means 1s.
	PrematureAge time.Duration
	// Linger bounds the wait for the server to close a cut connection, and
	// then the draining of what the client still sends; 0 means 1s.
	Linger time.Duration
	// OnCut, when not nil, is called once for each cut connection, from
	// the goroutine reading it.
	OnCut func(remote net.Addr)
	// Now gives the time used for stream ages; nil means time.Now.
	Now func() time.Time
}

// goAwayDebug is the GOAWAY debug data sent to a cut client.
const goAwayDebug = "too many streams reset by the client"

func (p ResetPolicy) withDefaults() ResetPolicy {
	if p.MinStreams <= 0 {
		p.MinStreams = 100
	}
	if p.MaxPrematureRatio <= 0 {
		p.MaxPrematureRatio = 0.5
	}
	if p.PrematureAge <= 0 {
		p.PrematureAge = time.Second
	}
	if p.Linger <= 0 {
		p.Linger = time.Second
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	return p
}

// GuardHTTP2 returns a listener whose connections watch the plaintext HTTP/2
// frames passing through them and cut a connection whose client resets too
// many of its streams prematurely (rapid reset): the client gets a GOAWAY
// with ENHANCE_YOUR_CALM, the server reads io.EOF, and the connection ends
// within p.Linger of the server closing it (or of p.Linger passing, if the
// server does not). A connection that does not start with the HTTP/2 client
// preface passes through untouched.
//
// Read on a returned connection must not be called from two goroutines at
// once, as no HTTP/2 server does.
func GuardHTTP2(l net.Listener, p ResetPolicy) net.Listener {
	return &guardListener{Listener: l, p: p.withDefaults()}
}

type guardListener struct {
	net.Listener
	p ResetPolicy
}

func (l *guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &guardConn{Conn: c, p: &l.p, open: make(map[uint32]time.Time)}, nil
}

// guardConn applies a ResetPolicy to one connection.
type guardConn struct {
	net.Conn
	p *ResetPolicy

	// Owned by the reader.
	prefaceN  int
	in        frameScanner
	highest   uint32 // highest stream id the client opened
	opened    int
	premature int

	pass atomic.Bool // not HTTP/2: bytes pass untouched
	cut  atomic.Bool // cut: Read returns io.EOF

	mu   sync.Mutex           // guards open
	open map[uint32]time.Time // open streams by open time

	wmu    sync.Mutex // held through each Write
	out    frameScanner
	goAway []byte // GOAWAY waiting for the next outbound frame boundary
	wshut  bool   // Write writes nothing more

	life   sync.Mutex // guards closed, timer and deadlines after a cut
	closed bool
	timer  *time.Timer // starts the linger if the server does not Close
}

// NetConn returns the connection below.
func (c *guardConn) NetConn() net.Conn { return c.Conn }

func (c *guardConn) Read(b []byte) (int, error) {
	if c.cut.Load() {
		return 0, io.EOF
	}
	n, err := c.Conn.Read(b)
	if n > 0 && !c.pass.Load() && c.inspect(b[:n]) {
		c.cutNow()
		return 0, io.EOF
	}
	return n, err
}

// inspect follows the inbound bytes b and reports whether the connection
// must be cut.
func (c *guardConn) inspect(b []byte) bool {
	if want := http2.ClientPreface; c.prefaceN < len(want) {
		k := min(len(b), len(want)-c.prefaceN)
		if string(b[:k]) != want[c.prefaceN:c.prefaceN+k] {
			c.pass.Store(true)
			return false
		}
		c.prefaceN += k
		b = b[k:]
	}
	for len(b) > 0 {
		n, done := c.in.feed(b)
		b = b[n:]
		if done && c.inbound(c.in.header()) {
			return true
		}
	}
	return false
}

// inbound accounts for a frame header from the client and reports whether
// the connection must be cut.
func (c *guardConn) inbound(h frameHeader) bool {
	switch h.typ {
	case http2.FrameHeaders:
		if h.streamID <= c.highest {
			return false // trailers
		}
		now := c.p.Now()
		c.highest = h.streamID
		c.opened++
		c.mu.Lock()
		c.open[h.streamID] = now
		c.mu.Unlock()
	case http2.FrameRSTStream:
		c.mu.Lock()
		opened, ok := c.open[h.streamID]
		delete(c.open, h.streamID)
		c.mu.Unlock()
		if !ok || c.p.Now().Sub(opened) >= c.p.PrematureAge {
			return false
		}
		c.premature++
	default:
		return false
	}
	return c.opened >= c.p.MinStreams &&
		float64(c.premature) >= c.p.MaxPrematureRatio*float64(c.opened)
}

// cutNow starts the end of a connection found flooding.
func (c *guardConn) cutNow() {
	c.life.Lock()
	c.cut.Store(true)
	if c.closed {
		c.life.Unlock()
		return
	}
	// Bounds any Write blocked on a client that does not read.
	_ = c.Conn.SetWriteDeadline(time.Now().Add(c.p.Linger))
	c.timer = time.AfterFunc(c.p.Linger, c.linger)
	c.life.Unlock()

	c.mu.Lock()
	c.open = nil
	c.mu.Unlock()
	c.sendGoAway(goAwayFrame(c.highest))
	if c.p.OnCut != nil {
		c.p.OnCut(c.Conn.RemoteAddr())
	}
}

func goAwayFrame(lastStreamID uint32) []byte {
	var buf bytes.Buffer
	fr := http2.NewFramer(&buf, nil)
	_ = fr.WriteGoAway(lastStreamID, http2.ErrCodeEnhanceYourCalm, []byte(goAwayDebug))
	return buf.Bytes()
}

// sendGoAway writes f now if the outbound stream is at a frame boundary, or
// leaves it for the next Write to put at the next boundary.
func (c *guardConn) sendGoAway(f []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	switch {
	case c.wshut:
	case c.out.atBoundary():
		c.writeGoAwayLocked(f)
	default:
		c.goAway = f
	}
}

func (c *guardConn) writeGoAwayLocked(f []byte) {
	_, _ = c.Conn.Write(f)
	c.goAway, c.wshut = nil, true
}

func (c *guardConn) Write(b []byte) (int, error) {
	if c.pass.Load() {
		return c.Conn.Write(b)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	switch {
	case c.wshut:
		return 0, net.ErrClosed
	case c.goAway != nil:
		return c.writeToBoundary(b)
	}
	// Streams are ended before their last frame leaves, so that a client's
	// reset racing the server's END_STREAM is not counted.
	saved := c.out
	c.outbound(b)
	n, err := c.Conn.Write(b)
	if n < len(b) {
		c.out = saved
		c.outbound(b[:n])
	}
	return n, err
}

// outbound follows the server's bytes b, ending streams as their last frame
// goes out.
func (c *guardConn) outbound(b []byte) {
	for len(b) > 0 {
		n, done := c.out.feed(b)
		b = b[n:]
		if !done {
			continue
		}
		if h := c.out.header(); h.endsStream() {
			c.mu.Lock()
			delete(c.open, h.streamID)
			c.mu.Unlock()
		}
	}
}

// writeToBoundary writes b up to the next frame boundary and the pending
// GOAWAY after it.
func (c *guardConn) writeToBoundary(b []byte) (int, error) {
	k, found := c.out.toBoundary(b)
	n, err := c.Conn.Write(b[:k])
	if err != nil {
		c.goAway, c.wshut = nil, true
		return n, err
	}
	if !found {
		return n, nil
	}
	c.writeGoAwayLocked(c.goAway)
	return n, net.ErrClosed
}

// Close closes the connection, or for a cut one starts the linger: the
// client gets a half-close and its last bytes are drained, so the kernel
// does not answer them with a reset that could make it lose the GOAWAY.
func (c *guardConn) Close() error {
	c.life.Lock()
	defer c.life.Unlock()
	if c.closed {
		return net.ErrClosed
	}
	c.closed = true
	if c.timer == nil {
		return c.Conn.Close()
	}
	if c.timer.Stop() {
		go c.linger()
	}
	return nil
}

// linger ends a cut connection within Linger of its start.
func (c *guardConn) linger() {
	_ = c.Conn.SetReadDeadline(time.Now().Add(c.p.Linger))
	c.wmu.Lock()
	c.goAway, c.wshut = nil, true
	c.wmu.Unlock()
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_, _ = io.Copy(io.Discard, c.Conn)
	_ = c.Conn.Close()
}

// SetDeadline sets the deadlines of the connection below until it is cut,
// after which the guard owns them.
func (c *guardConn) SetDeadline(t time.Time) error {
	return c.setDeadline(c.Conn.SetDeadline, t)
}

// SetReadDeadline is as SetDeadline, for reads.
func (c *guardConn) SetReadDeadline(t time.Time) error {
	return c.setDeadline(c.Conn.SetReadDeadline, t)
}

// SetWriteDeadline is as SetDeadline, for writes.
func (c *guardConn) SetWriteDeadline(t time.Time) error {
	return c.setDeadline(c.Conn.SetWriteDeadline, t)
}

func (c *guardConn) setDeadline(set func(time.Time) error, t time.Time) error {
	if c.pass.Load() {
		return set(t)
	}
	c.life.Lock()
	defer c.life.Unlock()
	if c.cut.Load() {
		return nil
	}
	return set(t)
}
