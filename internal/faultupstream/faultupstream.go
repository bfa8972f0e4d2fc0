// Package faultupstream is a fake Opentact upstream that misbehaves on
// demand: it answers GET /rest/auth on a real loopback listener with
// Opentact's documented payload, or with one of a set of faults (a hang, a
// TCP reset, a truncated or endless body, an HTML page, a redirect, an
// error status, ...). Tests, load tests and benchmarks point the facade or
// its upstream client at Server.URL.
//
// The fault of a request is the server's default (SetFault), unless the
// request's X-Auth-Token is "fault:<name>" or "fault:<name>:<anything>", in
// which case that fault is used for this request only; so concurrent callers
// of one server can each ask for their own.
//
// A successful answer carries a profile derived from the request's
// credentials (see EmailFor), so a caller that got someone else's answer
// can tell. Only the answers that carry a payload (OK, Delay, Flap's
// successes, the redirect target) need credentials, and are 401 without
// any; every other fault answers whatever the credentials.
//
// In load tests, keep connections alive: every connection closed leaves a
// loopback TIME_WAIT for a minute, and Reset, Truncate, an abandoned Hang,
// Delay or Huge always cost one. Go's transport retries a GET that is
// reset on a reused connection, so Requests can exceed the calls made.
package faultupstream

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Fault is how the server answers a request to /rest/auth.
type Fault string

// The faults. Names are what a "fault:<name>" X-Auth-Token selects.
const (
	// OK answers 200 with {"success":true,"payload":{...}} in the 2024
	// shape, the profile derived from the credentials (401 without any).
	OK Fault = "ok"
	// Delay waits SetDelay's duration (DefaultDelay unless set), or until the
	// client goes, then answers as OK.
	Delay Fault = "delay"
	// Hang never answers; the handler returns only when the client
	// disconnects or the server closes.
	Hang Fault = "hang"
	// Reset closes the connection with a TCP RST and no response.
	Reset Fault = "reset"
	// Truncate answers 200 with the Content-Length of the full OK body,
	// writes half of it, then closes the connection.
	Truncate Fault = "truncate"
	// Huge answers 200, application/json, with a HugeBodySize body streamed
	// in chunks, without a Content-Length; it stops when the client goes.
	Huge Fault = "huge"
	// HugeHeaders answers 200 with the OK body behind HugeHeaderSize bytes
	// of headers.
	HugeHeaders Fault = "huge-headers"
	// HTML answers 502 with a load balancer's text/html page.
	HTML Fault = "html"
	// HTML200 answers 200 with a text/html page (a captive portal, a
	// misrouted load balancer).
	HTML200 Fault = "html200"
	// BrokenJSON answers 200, application/json, with invalid JSON.
	BrokenJSON Fault = "broken-json"
	// Redirect answers 302 to /rest/auth on a second loopback listener,
	// which counts the requests it gets (RedirectHits) and answers as OK.
	Redirect Fault = "redirect"
	// Unavailable answers 503 with Opentact's error body, and a Retry-After
	// (whole seconds) when SetRetryAfter set one.
	Unavailable Fault = "unavailable"
	// Flap answers as Unavailable to the first N requests of every cycle of
	// N+1 requests served under it, and as OK to the last; N is SetFlap's
	// (DefaultFlap unless set: alternating).
	Flap Fault = "flap"
	// Unauthorized answers 401 with Opentact's error body.
	Unauthorized Fault = "unauthorized"
	// InternalError answers 500 with Opentact's error body.
	InternalError Fault = "internal"
)

// Faults lists every fault.
func Faults() []Fault {
	return []Fault{OK, Delay, Hang, Reset, Truncate, Huge, HugeHeaders, HTML, HTML200, BrokenJSON,
		Redirect, Unavailable, Flap, Unauthorized, InternalError}
}

// Valid reports whether f is one of the faults.
func (f Fault) Valid() bool {
	switch f {
	case OK, Delay, Hang, Reset, Truncate, Huge, HugeHeaders, HTML, HTML200, BrokenJSON,
		Redirect, Unavailable, Flap, Unauthorized, InternalError:
		return true
	}
	return false
}

// Defaults that Start and Server.Reset set.
const (
	DefaultDelay = time.Second // Delay's wait
	DefaultFlap  = 1           // Flap's failures per cycle
)

// HugeBodySize is the length of Huge's body.
const HugeBodySize = 64 << 20

// HugeHeaderSize is about the length of HugeHeaders' headers.
const HugeHeaderSize = 8 << 20

// Server is a running fake upstream. Its methods are safe for concurrent
// use.
type Server struct {
	url          string
	redirectURL  string
	main         *http.Server
	redirect     *http.Server
	serving      sync.WaitGroup // the two Serve goroutines
	closing      chan struct{}  // closed by Close, ends Hang, Delay and Huge
	closeOnce    sync.Once
	fault        atomic.Pointer[Fault]
	delay        atomic.Int64 // time.Duration
	retryAfter   atomic.Int64 // time.Duration; 0 sends no Retry-After
	flapN        atomic.Int64
	flapSeq      atomic.Int64 // requests served under Flap in this cycle run
	requests     atomic.Int64
	redirectHits atomic.Int64
	lastHeaders  atomic.Pointer[http.Header]

	discMu      sync.Mutex
	disconnects int64
	discChanged chan struct{} // closed and replaced on every change of disconnects

	flightMu sync.Mutex
	flight   sync.Cond // signalled when inFlight drops to 0
	inFlight int
	closed   bool // no handler may start any more
}

// Start starts a server on 127.0.0.1:0 (plain HTTP), with its redirect
// target on another 127.0.0.1 port. It panics if it cannot listen, as
// httptest.NewServer does. Close it when done.
func Start() *Server {
	s := &Server{
		closing:     make(chan struct{}),
		discChanged: make(chan struct{}),
	}
	s.flight.L = &s.flightMu
	s.setDefaults()

	mainLn := listen()
	redirectLn := listen()
	s.url = "http://" + mainLn.Addr().String()
	s.redirectURL = "http://" + redirectLn.Addr().String()
	s.main = newHTTPServer(http.HandlerFunc(s.serveMain))
	s.redirect = newHTTPServer(http.HandlerFunc(s.serveRedirectTarget))
	s.serving.Add(2)
	go s.serve(s.main, mainLn)
	go s.serve(s.redirect, redirectLn)
	return s
}

func listen() net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic("faultupstream: cannot listen on 127.0.0.1: " + err.Error())
	}
	return ln
}

func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		// Resets, aborted handlers and vanished clients are the point here;
		// net/http's complaints about them would only be noise.
		ErrorLog: log.New(io.Discard, "", 0),
	}
}

func (s *Server) serve(srv *http.Server, ln net.Listener) {
	defer s.serving.Done()
	_ = srv.Serve(ln) // returns http.ErrServerClosed after Close
}

// URL is the server's base URL, e.g. http://127.0.0.1:1234, without the
// /rest/auth path. Any path ending in /rest/auth is served.
func (s *Server) URL() string { return s.url }

// RedirectURL is the base URL of the redirect target listener.
func (s *Server) RedirectURL() string { return s.redirectURL }

// Close closes both listeners and every connection, ends the Hang, Delay
// and Huge handlers in flight (they do not count as disconnects), and
// waits for every handler and both Serve goroutines to return. It may be
// called more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closing)
		_ = s.main.Close()
		_ = s.redirect.Close()

		s.flightMu.Lock()
		s.closed = true
		for s.inFlight > 0 {
			s.flight.Wait()
		}
		s.flightMu.Unlock()

		s.serving.Wait()
	})
}

// enter registers a handler in flight; it fails once Close has begun
// waiting, so that Close never waits for a handler that starts after it.
func (s *Server) enter() bool {
	s.flightMu.Lock()
	defer s.flightMu.Unlock()
	if s.closed {
		return false
	}
	s.inFlight++
	return true
}

func (s *Server) leave() {
	s.flightMu.Lock()
	s.inFlight--
	if s.inFlight == 0 {
		s.flight.Broadcast()
	}
	s.flightMu.Unlock()
}

// isClosing reports whether Close has begun.
func (s *Server) isClosing() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// SetFault sets the fault of every request that does not select its own
// through X-Auth-Token. It panics on a name that is not a Fault.
func (s *Server) SetFault(f Fault) {
	if !f.Valid() {
		panic("faultupstream: unknown fault " + string(f))
	}
	s.fault.Store(&f)
}

// SetDelay sets Delay's wait; a negative d counts as 0.
func (s *Server) SetDelay(d time.Duration) { s.delay.Store(int64(max(d, 0))) }

// SetRetryAfter makes Unavailable (and Flap's failures) send Retry-After
// with d rounded up to whole seconds; d <= 0 sends none.
func (s *Server) SetRetryAfter(d time.Duration) { s.retryAfter.Store(int64(max(d, 0))) }

// SetFlap sets how many requests of each Flap cycle fail before one
// succeeds (a negative n counts as 0: never fail), and starts a new cycle.
func (s *Server) SetFlap(n int) {
	s.flapN.Store(int64(max(n, 0)))
	s.flapSeq.Store(0)
}

// Requests counts the requests that reached /rest/auth on the main
// listener, whatever their fault or method.
func (s *Server) Requests() int64 { return s.requests.Load() }

// RedirectHits counts the requests the redirect target listener got.
func (s *Server) RedirectHits() int64 { return s.redirectHits.Load() }

// Disconnects counts the Hang, Delay and Huge requests whose client went
// away before the handler finished.
func (s *Server) Disconnects() int64 {
	s.discMu.Lock()
	defer s.discMu.Unlock()
	return s.disconnects
}

func (s *Server) addDisconnect() {
	s.discMu.Lock()
	s.disconnects++
	close(s.discChanged)
	s.discChanged = make(chan struct{})
	s.discMu.Unlock()
}

// WaitDisconnects blocks until Disconnects() >= n, or returns ctx's error
// when ctx ends first.
func (s *Server) WaitDisconnects(ctx context.Context, n int64) error {
	for {
		s.discMu.Lock()
		got, changed := s.disconnects, s.discChanged
		s.discMu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// LastHeaders returns a copy of the headers of the last request the main
// listener got (any path), or nil before the first.
func (s *Server) LastHeaders() http.Header {
	h := s.lastHeaders.Load()
	if h == nil {
		return nil
	}
	return h.Clone()
}

// Reset puts the counters back to 0, the fault back to OK and the delay,
// retry-after and flap settings back to their defaults. LastHeaders
// returns nil until the next request.
func (s *Server) Reset() {
	s.setDefaults()
	s.requests.Store(0)
	s.redirectHits.Store(0)
	s.lastHeaders.Store(nil)
	s.discMu.Lock()
	s.disconnects = 0
	close(s.discChanged)
	s.discChanged = make(chan struct{})
	s.discMu.Unlock()
}

func (s *Server) setDefaults() {
	s.SetFault(OK)
	s.SetDelay(DefaultDelay)
	s.SetRetryAfter(0)
	s.SetFlap(DefaultFlap)
}
