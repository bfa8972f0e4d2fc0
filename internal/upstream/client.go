// Package upstream is the client for Opentact's REST API: it builds the
// request, forwards the caller's credentials, executes it on a shared
// keep-alive http.Client that never follows redirects, and turns the
// answer into a typed value or a typed *Error.
//
// Opentact's API reference: https://api.opentact.org (REST, JSON over HTTPS).
package upstream

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/opentact-facade/opentact-facade/internal/admission"
	"github.com/opentact-facade/opentact-facade/internal/defaults"
	"github.com/opentact-facade/opentact-facade/internal/version"
)

// noReplay is the empty body of every request without one when the
// requests go through a caller's http.Client (WithHTTPClient). An empty
// body that is not http.NoBody makes Go's transport see a GET or DELETE as
// not replayable, so that it never re-sends it on its own when a reused
// connection fails: left to itself, it would try every idle pooled
// connection in turn, each a request Opentact may have received, beyond
// --upstream-max-attempts. Only the retry policy repeats a request, and
// only as the endpoint allows. It costs a probe of the body per request
// over HTTP/1.1, and an empty DATA frame after the headers over HTTP/2.
// The client's own pool sends on http.ClientConn, which never replays, so
// its requests carry http.NoBody.
type noReplay struct{}

func (noReplay) Read([]byte) (int, error) { return 0, io.EOF }
func (noReplay) Close() error             { return nil }

// acceptJSON is the Accept header of every request; shared, never written.
var acceptJSON = []string{"application/json"}

// Defaults of a Client.
const (
	// DefaultMaxBodySize caps how much of an answer the client reads.
	DefaultMaxBodySize = defaults.UpstreamMaxBody
	// DefaultDialTimeout bounds opening a TCP connection to Opentact.
	DefaultDialTimeout = defaults.DialTimeout
	// DefaultTLSHandshakeTimeout bounds the TLS handshake.
	DefaultTLSHandshakeTimeout = defaults.TLSHandshakeTimeout
	// DefaultMaxInFlight bounds the requests to Opentact under way at
	// once (see gate). Over HTTP/2 they share DefaultMaxConnections
	// connections; over HTTP/1.1 each has one of its own.
	DefaultMaxInFlight = defaults.UpstreamMaxInFlight
	// MaxResponseHeaderBytes caps the headers of an answer; the body has
	// its own cap.
	MaxResponseHeaderBytes = 64 << 10
	// DefaultMaxConnections bounds the HTTP/2 connections open to
	// Opentact.
	DefaultMaxConnections = defaults.UpstreamMaxConns
	// DefaultResponseHeaderTimeout bounds the wait for an answer's headers
	// once the request is sent.
	DefaultResponseHeaderTimeout = defaults.ResponseHeaderTimeout
)

// Client calls Opentact. It is safe for concurrent use; create one and
// share it, so that connections are kept alive across calls and the
// circuit breaker sees all of them.
type Client struct {
	base        *url.URL // Opentact's base URL, without a trailing slash
	userAgentH  []string
	http        *http.Client
	userAgent   string
	maxBody     int64
	insecure    bool
	timeouts    TransportTimeouts
	retry       RetryPolicy
	breakerOf   BreakerPolicy
	breaker     *gobreaker.CircuitBreaker[struct{}] // one for Opentact, whatever the endpoint
	gate        *gate
	maxInFlight int
	maxConns    int
	roots       *x509.CertPool
	pool        *pool // the default transport's; nil with WithHTTPClient
	observer    Observer
	noBody      io.ReadCloser // the body of a request without one: see noReplay
	wrap        func(http.RoundTripper) http.RoundTripper
	// rt, when set, is c.http's transport, called directly: http.Client
	// would clone the headers of every request for its redirect handling,
	// and the client follows no redirect.
	rt http.RoundTripper
}

// TransportTimeouts bound the phases of one request on the default
// transport; a zero field takes its Default* value.
type TransportTimeouts struct {
	Dial           time.Duration
	TLSHandshake   time.Duration
	ResponseHeader time.Duration
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the client send its requests with hc. Whatever
// hc's CheckRedirect, the client never follows a redirect.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		cp := *hc
		c.http = &cp
	}
}

// WithUserAgent replaces the User-Agent, "opentact-facade/<version>" by
// default.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithMaxBodySize caps how many bytes of an answer are read
// (DefaultMaxBodySize by default); a larger answer fails with FailTooLarge.
func WithMaxBodySize(n int64) Option { return func(c *Client) { c.maxBody = n } }

// WithMaxInFlight bounds the requests to Opentact under way at once
// (DefaultMaxInFlight by default). A call that finds them all busy waits
// in line only if it can still be answered within its deadline, judged by
// Opentact's recent answer times; otherwise it fails at once with
// FailShed, and no request is sent.
func WithMaxInFlight(n int) Option { return func(c *Client) { c.maxInFlight = n } }

// WithMaxConnections bounds the HTTP/2 connections open to Opentact at
// any time (DefaultMaxConnections by default); each carries many requests
// at once. Over HTTP/1.1 (a plain-http base URL, or a host that does not
// offer HTTP/2) each request in flight takes a connection, and
// WithMaxInFlight bounds them. It has no effect together with
// WithHTTPClient.
func WithMaxConnections(n int) Option { return func(c *Client) { c.maxConns = n } }

// WithRootCAs makes the client trust only the CAs in roots for Opentact's
// certificate, instead of the system's. It has no effect together with
// WithHTTPClient.
func WithRootCAs(roots *x509.CertPool) Option { return func(c *Client) { c.roots = roots } }

// WithTransportTimeouts sets the dial, TLS-handshake and response-header
// timeouts of the transport New builds. It has no effect together with
// WithHTTPClient, whose transport is the caller's.
func WithTransportTimeouts(t TransportTimeouts) Option {
	return func(c *Client) { c.timeouts = t }
}

// WithTransportWrapper wraps the client's transport, the default one or
// WithHTTPClient's, e.g. in otelhttp.NewTransport for traces. The wrapper
// sees each request's URL as its endpoint's route template
// (https://host/rest/token/%7Buuid%7D), never the path values; the
// request is sent to its real URL beneath it.
func WithTransportWrapper(wrap func(http.RoundTripper) http.RoundTripper) Option {
	return func(c *Client) { c.wrap = wrap }
}

// WithInsecure allows a plain-http base URL on a host that is not
// loopback. Credentials then cross the network in clear text.
func WithInsecure() Option { return func(c *Client) { c.insecure = true } }

// New returns a client for the Opentact API at baseURL, such as
// "https://api.opentact.org". The base URL may carry a path prefix. It must
// be https, or http on a loopback host (or anywhere, with WithInsecure); it
// must not carry user info, a query or a fragment.
func New(baseURL string, opts ...Option) (*Client, error) {
	c := &Client{
		userAgent: version.UserAgent(),
		maxBody:   DefaultMaxBodySize,
		retry:     DefaultRetryPolicy(),
		breakerOf: DefaultBreakerPolicy(),
		observer:  nopObserver{},
	}
	for _, o := range opts {
		o(c)
	}
	if c.maxBody <= 0 {
		c.maxBody = DefaultMaxBodySize
	}
	if c.observer == nil {
		c.observer = nopObserver{}
	}
	c.retry = c.retry.normalized()
	c.breaker = newBreaker(c.breakerOf)
	if c.maxInFlight <= 0 {
		c.maxInFlight = DefaultMaxInFlight
	}
	c.gate = newGate(c.maxInFlight, nil)
	u, err := parseBaseURL(baseURL, c.insecure)
	if err != nil {
		return nil, err
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = strings.TrimSuffix(u.RawPath, "/")
	c.base = u
	c.userAgentH = []string{c.userAgent}
	if c.maxConns <= 0 {
		c.maxConns = DefaultMaxConnections
	}
	if c.http == nil {
		tr := newTransport(c.timeouts, c.maxConns)
		if c.roots != nil {
			tr.TLSClientConfig = &tls.Config{RootCAs: c.roots, MinVersion: tls.VersionTLS12}
		}
		c.pool = newPool(tr, u.Scheme, u.Host, c.maxConns, c.maxInFlight)
		c.http = &http.Client{Transport: c.pool}
		c.noBody = http.NoBody
	} else {
		c.noBody = noReplay{}
	}
	if c.wrap != nil {
		rt := c.http.Transport
		if rt == nil {
			rt = http.DefaultTransport
		}
		// The wrapper (tracing) sees a request by its route alone;
		// revealURL, under it, sends it to its real URL.
		c.http.Transport = c.wrap(revealURL{rt})
	}
	c.http.CheckRedirect = func(*http.Request, []*http.Request) error {
		// Go would copy X-Auth-* headers to the redirect target, even on
		// another host. Hand the 3xx back instead; it becomes an error.
		return http.ErrUseLastResponse
	}
	if c.http.Jar == nil && c.http.Timeout == 0 {
		c.rt = c.http.Transport
		if c.rt == nil {
			c.rt = http.DefaultTransport
		}
	}
	return c, nil
}

// Load is what the client has under way: the calls waiting for a request
// slot, and its estimate of Opentact's answer time (0 before the first
// answer).
func (c *Client) Load() (waiting int, estimate time.Duration) {
	_, waiting, estimate = c.gate.state()
	return waiting, estimate
}

// Connections reports the connections to Opentact open now and made
// since the client was created; zeros with WithHTTPClient.
func (c *Client) Connections() (open int64, opened uint64) {
	if c.pool == nil {
		return 0, 0
	}
	return c.pool.Connections()
}

// NewTransport returns the transport New makes its connections with: Go's
// default transport (HTTP/2 to TLS hosts that offer it), answer headers
// capped at MaxResponseHeaderBytes, the Default* dial, TLS-handshake and
// response-header timeouts, and, for use on its own, a pool of
// DefaultMaxConnections connections. New bounds its connections itself
// (see WithMaxConnections): Go's MaxConnsPerHost does not bound HTTP/2
// connections.
func NewTransport() *http.Transport {
	t := newTransport(TransportTimeouts{}, DefaultMaxConnections)
	t.MaxConnsPerHost = DefaultMaxConnections
	return t
}

func newTransport(to TransportTimeouts, maxConns int) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = maxConns
	t.MaxIdleConnsPerHost = maxConns
	// No MaxConnsPerHost: Go counts connections made by NewClientConn out
	// of it but back in when they close, and panics on the underflow.
	t.DialContext = (&net.Dialer{
		Timeout:   cmp.Or(to.Dial, DefaultDialTimeout),
		KeepAlive: 30 * time.Second,
	}).DialContext
	t.TLSHandshakeTimeout = cmp.Or(to.TLSHandshake, DefaultTLSHandshakeTimeout)
	t.ResponseHeaderTimeout = cmp.Or(to.ResponseHeader, DefaultResponseHeaderTimeout)
	t.MaxResponseHeaderBytes = MaxResponseHeaderBytes
	return t
}

func parseBaseURL(raw string, insecure bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// A *url.Error quotes the whole URL, password included.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("upstream URL: %w", err)
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return nil, fmt.Errorf("upstream URL %q: scheme must be https or http", u.Redacted())
	case u.Host == "":
		return nil, fmt.Errorf("upstream URL %q: no host", u.Redacted())
	case u.User != nil:
		return nil, fmt.Errorf("upstream URL %q: must not carry user info; credentials come from each caller", u.Redacted())
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return nil, fmt.Errorf("upstream URL %q: must not carry a query or fragment", u.Redacted())
	case u.Scheme == "http" && !insecure && !isLoopback(u.Hostname()):
		return nil, fmt.Errorf("upstream URL %q: plain http is allowed only on a loopback host; use https (or allow it explicitly as insecure)", u.Redacted())
	}
	return u, nil
}

// CheckWebSocketURL checks Opentact's events WebSocket URL as the
// upstream URL is checked: wss, or ws on a loopback host unless insecure.
func CheckWebSocketURL(raw string, insecure bool) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("events URL: %w", err)
	case u.Scheme != "wss" && u.Scheme != "ws":
		return fmt.Errorf("events URL %q: scheme must be wss or ws", u.Redacted())
	case u.Host == "" || u.User != nil:
		return fmt.Errorf("events URL %q: needs a host and no user info", u.Redacted())
	case u.Scheme == "ws" && !insecure && !isLoopback(u.Hostname()):
		return fmt.Errorf("events URL %q: plain ws is allowed only on a loopback host; use wss (or allow it explicitly as insecure)", u.Redacted())
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Request is what a call sends besides its credentials: the values of
// the endpoint's path parameters, in order, its query, and a body; and
// what Opentact's messages about it must not show.
type Request struct {
	Path []string
	// Query is the encoded query, without "?"; empty sends none.
	Query string
	// Body is sent as is; nil sends none.
	Body []byte
	// ContentType is Body's type; "application/json" when empty.
	ContentType string
	// Private are values of the request never to be shown (an SMS's
	// text): Opentact's messages are scrubbed of them as of the caller's
	// secrets.
	Private []string
	// Phones are the phone numbers of the request: Opentact's messages
	// show each by its last four digits only ("***2917"), quoted with or
	// without a leading +.
	Phones []string
}

// Do calls endpoint e with creds, and hands decode the payload of its
// answer: the JSON text of Opentact's "payload", nil when the answer has
// none. An error from decode makes the answer malformed (FailMalformed).
// A transient failure is retried as the client's RetryPolicy says, all
// attempts inside ctx, and only where e allows it (see Idempotent); while
// the circuit breaker is open no request is sent at all.
//
// Errors: ErrNoCredentials (nothing was sent), a context error when ctx
// ended first (errors.Is with context.Canceled or DeadlineExceeded), or an
// *Error for every other failure, FailCircuitOpen included.
func Do(ctx context.Context, c *Client, e *Endpoint, creds Credentials, r Request, decode func(payload []byte) error) error {
	if creds.Empty() {
		return ErrNoCredentials
	}
	path, err := e.escapedPath(r.Path)
	if err != nil {
		return err
	}
	call := &call{c: c, ep: e, creds: creds, path: path, query: r.Query, body: r.Body, stats: StatsFrom(ctx)}
	defer call.done()
	call.hide = hidden{creds: creds, secrets: r.Private, phones: r.Phones}
	if e.secretPath {
		call.hide.secrets = append(slices.Clip(r.Path), r.Private...)
	}
	if r.Body != nil {
		call.contentType = acceptJSON
		if r.ContentType != "" {
			call.contentType = []string{r.ContentType}
		}
	}
	return call.withRetries(ctx, func() error {
		body, status, err := call.attempt(ctx)
		if err != nil {
			return err
		}
		return decodeAnswer(status, body, call.hide, decode)
	})
}

// call is one Do: what every attempt sends, and how it went.
type call struct {
	c           *Client
	ep          *Endpoint
	creds       Credentials
	path        string // escaped, under the base URL
	query       string // encoded
	hide        hidden // what Opentact's messages must not show
	body        []byte
	contentType []string
	stats       *Stats
	buf         *bytes.Buffer // the answer body, pooled
	written     bool          // a byte of some attempt may have reached Opentact
}

// done gives the body buffer back, wiped, and records whether the call
// may have reached Opentact.
func (k *call) done() {
	if k.buf != nil {
		putBodyBuffer(k.buf)
	}
	if k.stats != nil && k.written {
		k.stats.Written = true
	}
}

// attempt takes a request slot, then sends one request through the
// circuit breaker. The answer body it returns is valid until the next
// attempt (it is decoded before then).
func (k *call) attempt(ctx context.Context) ([]byte, int, error) {
	c := k.c
	release, err := c.gate.acquire(ctx)
	if err != nil {
		reason := err.(*Error).ShedReason
		c.observer.Shed(k.ep.name, reason)
		if k.stats != nil {
			k.stats.Shed = reason
		}
		if ctx.Err() != nil {
			return nil, 0, ctx.Err() // the caller's own end is its answer
		}
		return nil, 0, err
	}
	var took time.Duration
	defer func() { release(took) }()
	var (
		body   []byte
		status int
	)
	_, err = c.breaker.Execute(func() (struct{}, error) {
		var err error
		body, status, took, err = k.observed(ctx)
		return struct{}{}, err
	})
	return body, status, err
}

// observed is one request, reported to the Observer and into the call's
// Stats. took is how long Opentact took to answer, for the gate's
// estimate; 0 when the request says nothing of that (the caller went, the
// connection failed at once).
func (k *call) observed(ctx context.Context) (body []byte, status int, took time.Duration, err error) {
	if ctx.Err() != nil {
		// The caller went while its slot was being taken: nothing is sent.
		return nil, 0, 0, ctx.Err()
	}
	c := k.c
	c.observer.RequestStarted(k.ep.name)
	start := time.Now()
	body, status, err = k.send(ctx)
	d := time.Since(start)
	c.observer.RequestDone(k.ep.name, outcomeOf(ctx, status, err), d)
	if k.stats != nil {
		k.stats.Attempts++
		k.stats.Status = status
	}
	if status > 0 || timedOut(err) {
		took = d
	}
	return body, status, took, err
}

// timedOut reports whether err is a transport timeout of Opentact's.
func timedOut(err error) bool {
	e, ours := errors.AsType[*Error](err)
	ne, isNet := errors.AsType[net.Error](err)
	return ours && e.Failure == FailTransport && isNet && ne.Timeout()
}

// smallHeader is the size a request's header map is made with: Accept,
// User-Agent, Content-Type, the credentials and a trace context fit the
// eight entries of Go's small map, which has no table to allocate.
const smallHeader = 8

// send is one request. status is Opentact's HTTP status, 0 when there was
// no answer; body is the whole answer of a 2xx, in a pooled buffer that
// k keeps until the next attempt.
func (k *call) send(ctx context.Context) (_ []byte, status int, _ error) {
	c := k.c
	u := *c.base
	u.Path, u.RawPath, u.RawQuery = c.base.Path+k.path, "", k.query
	if strings.IndexByte(k.path, '%') >= 0 {
		// The escaped path, as it is to be sent: Path holds it unescaped.
		u.RawPath = c.base.EscapedPath() + k.path
		u.Path, _ = url.PathUnescape(u.RawPath)
	}
	// Built by hand rather than by http.NewRequest, which would parse the
	// URL again; the transport only reads it.
	req := &http.Request{
		Method:     k.ep.method,
		URL:        &u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     make(http.Header, smallHeader),
		Body:       c.noBody,
		Host:       u.Host,
	}
	req.Header["Accept"] = acceptJSON
	req.Header["User-Agent"] = c.userAgentH
	if k.body != nil {
		// No GetBody: the transport cannot send it again on its own; only
		// the retry policy does, and only where the endpoint allows.
		req.Body = io.NopCloser(bytes.NewReader(k.body))
		req.ContentLength = int64(len(k.body))
		req.Header["Content-Type"] = k.contentType
	}
	k.creds.setOn(req.Header)
	if !k.ep.idempotent {
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			// A connection in hand: from here on, bytes may be written.
			GotConn: func(httptrace.GotConnInfo) { k.written = true },
		})
	}
	if c.wrap != nil && k.path != k.ep.route {
		// A path value (a token's uuid, or its secret) is the caller's
		// data: the wrapper (tracing) names the request and fills url.full
		// from the route template instead, for every endpoint.
		ctx = context.WithValue(ctx, realURLKey{}, &u)
		shown := *c.base
		shown.Path, shown.RawPath = c.base.Path+k.ep.route, ""
		req.URL = &shown
	}
	req = req.WithContext(ctx)

	var (
		resp *http.Response
		err  error
	)
	if c.rt != nil {
		resp, err = c.rt.RoundTrip(req)
	} else {
		resp, err = c.http.Do(req)
	}
	if err != nil {
		return nil, 0, transportError(ctx, err)
	}
	defer resp.Body.Close()

	if k.buf == nil {
		k.buf = bodyBuffers.Get().(*bytes.Buffer)
	}
	k.buf.Reset()
	body, err := c.readBody(ctx, resp, k.buf)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// The status decides the outcome; an error body too large or cut
		// off only costs Opentact's message.
		if callerEnded(ctx, err) {
			return nil, resp.StatusCode, err
		}
		return nil, resp.StatusCode, statusError(resp, body, k.hide)
	}
	if err != nil {
		return nil, resp.StatusCode, err
	}
	return body, resp.StatusCode, nil
}

// realURLKey carries a request's real URL past the transport wrapper
// (tracing), which sees only the route; see revealURL.
type realURLKey struct{}

// revealURL is the transport under the wrapper: it sends a request shown
// by its route to its real URL.
type revealURL struct{ next http.RoundTripper }

func (t revealURL) RoundTrip(r *http.Request) (*http.Response, error) {
	if u, ok := r.Context().Value(realURLKey{}).(*url.URL); ok {
		r2 := *r
		r2.URL = u
		r = &r2
	}
	return t.next.RoundTrip(r)
}

// bodyBuffers holds buffers for answer bodies; one that grew past
// maxPooledBody (an unusual answer) is left to the garbage collector
// rather than kept.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledBody = 64 << 10

// putBodyBuffer pools b, wiped: a pooled buffer must not keep an answer
// (a JWT, a profile) past its call.
func putBodyBuffer(b *bytes.Buffer) {
	if b.Cap() <= maxPooledBody {
		b.Reset()
		clear(b.AvailableBuffer()[:b.Cap()])
		bodyBuffers.Put(b)
	}
}

// readBody reads the whole answer into buf, at most maxBody bytes of it.
// The bytes it returns are buf's. Every byte is charged to the call in
// ctx before it is read (see admission.Charge): the answers held by calls
// in flight stay within one budget, whatever their size.
func (c *Client) readBody(ctx context.Context, resp *http.Response, buf *bytes.Buffer) ([]byte, error) {
	if resp.ContentLength > c.maxBody {
		return nil, &Error{Failure: FailTooLarge, StatusCode: resp.StatusCode}
	}
	r := io.LimitReader(resp.Body, c.maxBody+1)
	var err error
	if resp.ContentLength >= 0 {
		// One charge and one read, no regrowth; the byte past the length
		// tells an answer longer than it said.
		if err := admission.Charge(ctx, resp.ContentLength+1); err != nil {
			return nil, err
		}
		buf.Grow(int(resp.ContentLength) + 1)
		_, err = buf.ReadFrom(io.LimitReader(r, resp.ContentLength+1))
	} else {
		for err == nil {
			if err = admission.Charge(ctx, bodyChunk); err != nil {
				return nil, err
			}
			_, err = io.CopyN(buf, r, bodyChunk)
		}
		if errors.Is(err, io.EOF) {
			err = nil
		}
	}
	body := buf.Bytes()
	if err != nil {
		return nil, transportError(ctx, fmt.Errorf("reading the answer: %w", err))
	}
	if int64(len(body)) > c.maxBody {
		return nil, &Error{Failure: FailTooLarge, StatusCode: resp.StatusCode}
	}
	return body, nil
}

// bodyChunk is how much of an answer without a Content-Length is charged
// and read at a time.
const bodyChunk = 4 << 10

// transportError passes the caller's context errors through, so that the
// caller can tell its own deadline or cancellation from a failure of
// Opentact.
func transportError(ctx context.Context, err error) error {
	// A *url.Error quotes the URL, which may carry a secret path value.
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	if callerEnded(ctx, err) {
		return err
	}
	if headersTooLarge(err) {
		return &Error{Failure: FailTooLarge, cause: err}
	}
	return &Error{Failure: FailTransport, cause: err}
}

// headersTooLarge: an answer whose headers passed MaxResponseHeaderBytes.
// net/http exports no error for it; these texts have been stable for
// years, over HTTP/1.1 and HTTP/2.
func headersTooLarge(err error) bool {
	s := err.Error()
	return strings.Contains(s, "response headers exceeded") || strings.Contains(s, "response header list larger than")
}

// callerEnded reports whether err is ctx's own end. errors.Is alone cannot
// tell: net/http's response-header timeout also matches
// context.DeadlineExceeded, though it is a failure of Opentact.
func callerEnded(ctx context.Context, err error) bool {
	return ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}

// errorBody is Opentact's error answer: {"success": false, "message",
// "status", and for a validation error "fields": {"<param>": {"message",
// "value"}}}.
type errorBody struct {
	Message text                       `json:"message"`
	Fields  map[string]json.RawMessage `json:"fields"`
}

func statusError(resp *http.Response, body []byte, h hidden) *Error {
	e := &Error{
		Failure:    FailStatus,
		StatusCode: resp.StatusCode,
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
	var eb errorBody
	if json.Unmarshal(body, &eb) != nil {
		return e
	}
	sc := h.scrubber()
	if eb.Message.Valid {
		e.Message = sc.scrub(eb.Message.Value)
	}
	e.Fields = fieldErrors(eb.Fields, sc)
	return e
}

// maxFields bounds the field errors taken from one answer.
const maxFields = 32

// fieldErrors reads the entries of "fields", each an object with a
// "message" (or the message itself as a string), sorted by field; their
// text is scrubbed as Opentact's message is.
func fieldErrors(fields map[string]json.RawMessage, sc scrubber) []FieldError {
	if len(fields) == 0 {
		return nil
	}
	out := make([]FieldError, 0, min(len(fields), maxFields))
	for name, raw := range fields {
		var entry struct {
			Message text `json:"message"`
		}
		msg := ""
		if s, ok := unquote(raw); ok {
			msg = s
		} else if json.Unmarshal(raw, &entry) == nil && entry.Message.Valid {
			msg = entry.Message.Value
		}
		out = append(out, FieldError{Field: sc.scrub(name), Message: sc.scrub(msg)})
	}
	slices.SortFunc(out, func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
	if len(out) > maxFields {
		out = out[:maxFields]
	}
	return out
}

// DecodeAnswer hands decode the payload of a 200 answer body as Do does,
// for benchmarks and tools.
func DecodeAnswer(body []byte, decode func(payload []byte) error) error {
	return decodeAnswer(http.StatusOK, body, hidden{}, decode)
}

func decodeAnswer(statusCode int, body []byte, h hidden, decode func([]byte) error) error {
	var env envelope
	err := decodeJSON(body, &env)
	switch {
	case env.Success.Valid && !env.Success.Value:
		return &Error{Failure: FailRejected, StatusCode: statusCode, Message: h.scrubber().scrub(env.Message.Value)}
	case err != nil:
		return &Error{Failure: FailMalformed, StatusCode: statusCode, cause: err}
	case !env.Success.Valid:
		return &Error{Failure: FailMalformed, StatusCode: statusCode, cause: errors.New(`no boolean "success" field`)}
	}
	payload := []byte(env.Payload)
	if len(payload) == 0 || string(payload) == "null" {
		payload = nil
	}
	if err := decode(payload); err != nil {
		return &Error{Failure: FailMalformed, StatusCode: statusCode, cause: err}
	}
	return nil
}
