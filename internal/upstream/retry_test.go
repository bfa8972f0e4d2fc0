package upstream_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// The tests below run against real loopback servers and listeners. Where a
// wrong implementation would take seconds, they bound the elapsed time
// loosely (well under a second against ≥ 3s), so that a loaded CI machine
// running -race does not make them flaky.

// fastRetry is a policy of n attempts with millisecond backoff, so that a
// retry test spends its time on requests rather than on sleeping.
func fastRetry(n int) upstream.Option {
	return upstream.WithRetryPolicy(upstream.RetryPolicy{
		MaxAttempts: n, BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, MaxRetryAfter: 2 * time.Second,
	})
}

// noBreaker keeps the circuit breaker out of a test about retries.
var noBreaker = upstream.WithBreakerPolicy(upstream.BreakerPolicy{Failures: 0})

// testBreakerOpenFor is how long testBreaker stays open. The breaker reads
// the wall clock, so the checks made while it is open must end within it:
// a second, for a loaded machine.
const testBreakerOpenFor = time.Second

// testBreaker opens after 3 unavailability failures in a row, for
// testBreakerOpenFor.
var testBreaker = upstream.WithBreakerPolicy(upstream.BreakerPolicy{Failures: 3, OpenFor: testBreakerOpenFor})

// singleAttempt turns retries off.
var singleAttempt = upstream.WithRetryPolicy(upstream.RetryPolicy{MaxAttempts: 1})

// forever is more failures than any test asks for.
const forever = math.MaxInt32

// unavailability is one way Opentact can be unavailable. start brings up a
// stand-in whose first `failures` requests fail that way and whose later
// ones answer okBody; it returns the base URL, how many requests (for a
// refused connection: connection attempts) the stand-in saw, and the
// client options the scenario needs.
type unavailability struct {
	name  string
	start func(t *testing.T, failures int32) (base string, seen func() int32, opts []upstream.Option)
	// check asserts that err is this kind of failure.
	check func(t *testing.T, err error)
}

// attemptNumber is the number countingStub gave this request (1 for the
// first), carried in the request's context.
func attemptNumber(r *http.Request) int32 { return r.Context().Value(attemptKey{}).(int32) }

type attemptKey struct{}

// countingStub is newStub with each request numbered in its context.
func countingStub(t *testing.T, h http.HandlerFunc) *stub {
	t.Helper()
	var n atomic.Int32
	return newStub(t, func(w http.ResponseWriter, r *http.Request) {
		h(w, r.WithContext(context.WithValue(r.Context(), attemptKey{}, n.Add(1))))
	})
}

func statusFailure(code int) unavailability {
	return unavailability{
		name: strconv.Itoa(code),
		start: func(t *testing.T, failures int32) (string, func() int32, []upstream.Option) {
			s := countingStub(t, func(w http.ResponseWriter, r *http.Request) {
				if attemptNumber(r) <= failures {
					reply(code, `{"success":false,"message":"upstream trouble","status":`+strconv.Itoa(code)+`}`)(w, r)
					return
				}
				reply(http.StatusOK, okBody)(w, r)
			})
			return s.base(), s.hits.Load, nil
		},
		check: func(t *testing.T, err error) {
			t.Helper()
			if e := asError(t, err); e.Failure != upstream.FailStatus || e.StatusCode != code {
				t.Errorf("error = %+v, want FailStatus %d", e, code)
			}
		},
	}
}

// dialing is a client option for NewTransport with its dialer wrapped:
// before connection attempt n (from 1) it calls before, whose error fails
// the attempt in place of dialing. It returns the count of attempts.
func dialing(t *testing.T, before func(n int32, network string) error) (func() int32, upstream.Option) {
	var dials atomic.Int32
	tr := upstream.NewTransport()
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if err := before(dials.Add(1), network); err != nil {
			return nil, err
		}
		return dial(ctx, network, addr)
	}
	hc := &http.Client{Transport: tr}
	t.Cleanup(hc.CloseIdleConnections)
	return dials.Load, upstream.WithHTTPClient(hc)
}

// refused: nothing listens on the address until the (failures+1)-th
// connection attempt, which brings the stand-in up on that address first.
// Every attempt really dials (see dialing).
var refused = unavailability{
	name: "connection refused",
	start: func(t *testing.T, failures int32) (string, func() int32, []upstream.Option) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		if err := ln.Close(); err != nil {
			t.Fatal(err)
		}
		var (
			mu  sync.Mutex
			srv *httptest.Server
		)
		t.Cleanup(func() {
			mu.Lock()
			defer mu.Unlock()
			if srv != nil {
				srv.Close()
			}
		})
		dials, opt := dialing(t, func(n int32, _ string) error {
			if n != failures+1 {
				return nil
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("bringing the stand-in back on %s: %w", addr, err)
			}
			s := &httptest.Server{Listener: ln, Config: &http.Server{Handler: reply(http.StatusOK, okBody)}}
			s.Start()
			mu.Lock()
			srv = s
			mu.Unlock()
			return nil
		})
		return "http://" + addr + apiPrefix, dials, []upstream.Option{opt}
	},
	check: func(t *testing.T, err error) {
		t.Helper()
		if e := asError(t, err); e.Failure != upstream.FailTransport || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("error = %v, want FailTransport wrapping ECONNREFUSED", err)
		}
	},
}

// dnsFailure: Opentact's name does not resolve, failing as dns says,
// until the (failures+1)-th connection attempt. The dialer fails as
// net.Dialer does, with a *net.DNSError in a *net.OpError; the attempts
// are counted, since none reaches Opentact.
func dnsFailure(name string, dns net.DNSError) unavailability {
	return unavailability{
		name: name,
		start: func(t *testing.T, failures int32) (string, func() int32, []upstream.Option) {
			s := newStub(t, reply(http.StatusOK, okBody))
			dials, opt := dialing(t, func(n int32, network string) error {
				if n > failures {
					return nil
				}
				e := dns
				return &net.OpError{Op: "dial", Net: network, Err: &e}
			})
			return s.base(), dials, []upstream.Option{opt}
		},
		check: func(t *testing.T, err error) {
			t.Helper()
			var de *net.DNSError
			if e := asError(t, err); e.Failure != upstream.FailTransport || !errors.As(err, &de) {
				t.Errorf("error = %v, want FailTransport wrapping a *net.DNSError", err)
			}
		},
	}
}

var (
	dnsTemporary = dnsFailure("name lookup failed for now", net.DNSError{Err: "server misbehaving", Name: "api.opentact.example", Server: "127.0.0.53:53", IsTemporary: true})
	dnsTimeout   = dnsFailure("name lookup timed out", net.DNSError{Err: "i/o timeout", Name: "api.opentact.example", Server: "127.0.0.53:53", IsTimeout: true})
	dnsNotFound  = dnsFailure("no such host", net.DNSError{Err: "no such host", Name: "api.opentact.example", Server: "127.0.0.53:53", IsNotFound: true})
)

// reset: the stand-in reads the request and closes the connection with
// SO_LINGER 0, so that the client reads a TCP RST.
var reset = unavailability{
	name: "connection reset",
	start: func(t *testing.T, failures int32) (string, func() int32, []upstream.Option) {
		s := countingStub(t, func(w http.ResponseWriter, r *http.Request) {
			if attemptNumber(r) > failures {
				reply(http.StatusOK, okBody)(w, r)
				return
			}
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Errorf("Hijack: %v", err)
				return
			}
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			} else {
				t.Errorf("hijacked a %T, want a *net.TCPConn", conn)
			}
			_ = conn.Close()
		})
		return s.base(), s.hits.Load, nil
	},
	check: func(t *testing.T, err error) {
		t.Helper()
		if e := asError(t, err); e.Failure != upstream.FailTransport || !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("error = %v, want FailTransport wrapping ECONNRESET", err)
		}
	},
}

// bodyCut: a 200 whose Content-Length promises more than is sent before
// the connection closes.
var bodyCut = unavailability{
	name: "body cut off",
	start: func(t *testing.T, failures int32) (string, func() int32, []upstream.Option) {
		s := countingStub(t, func(w http.ResponseWriter, r *http.Request) {
			if attemptNumber(r) > failures {
				reply(http.StatusOK, okBody)(w, r)
				return
			}
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Errorf("Hijack: %v", err)
				return
			}
			defer conn.Close()
			_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
			_, _ = buf.WriteString(okBody[:10])
			_ = buf.Flush()
		})
		return s.base(), s.hits.Load, nil
	},
	check: func(t *testing.T, err error) {
		t.Helper()
		if e := asError(t, err); e.Failure != upstream.FailTransport || !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("error = %v, want FailTransport wrapping io.ErrUnexpectedEOF", err)
		}
	},
}

// headerTimeout: the stand-in never sends headers; the client's transport
// gives up after 200ms. Not transient (never retried), but unavailability
// (counted by the breaker).
var headerTimeout = unavailability{
	name: "response header timeout",
	start: func(t *testing.T, failures int32) (string, func() int32, []upstream.Option) {
		release := make(chan struct{})
		s := countingStub(t, func(w http.ResponseWriter, r *http.Request) {
			if attemptNumber(r) > failures {
				reply(http.StatusOK, okBody)(w, r)
				return
			}
			select {
			case <-r.Context().Done():
			case <-release:
			}
		})
		t.Cleanup(func() { close(release) }) // before the server's Close
		return s.base(), s.hits.Load, []upstream.Option{
			upstream.WithTransportTimeouts(upstream.TransportTimeouts{ResponseHeader: 200 * time.Millisecond}),
		}
	},
	check: func(t *testing.T, err error) {
		t.Helper()
		e := asError(t, err)
		var ne net.Error
		// An *Error, not the bare error: net/http's timeout matches
		// errors.Is(err, context.DeadlineExceeded), yet it is Opentact
		// not answering in time, not the caller's deadline.
		if e.Failure != upstream.FailTransport || !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("error = %v, want FailTransport wrapping a timeout", err)
		}
	},
}

// transientFailures are the outcomes the issue says are retried.
var transientFailures = []unavailability{
	refused, reset, bodyCut, dnsTemporary, dnsTimeout,
	statusFailure(http.StatusBadGateway),
	statusFailure(http.StatusServiceUnavailable),
	statusFailure(http.StatusGatewayTimeout),
}

func TestRetryTransient(t *testing.T) {
	t.Parallel()
	for _, tc := range transientFailures {
		for _, attempts := range []int{1, 2, 3, 5} {
			t.Run(fmt.Sprintf("%s/always/max %d", tc.name, attempts), func(t *testing.T) {
				t.Parallel()
				base, seen, opts := tc.start(t, forever)
				c := newClient(t, base, append(opts, fastRetry(attempts), noBreaker)...)
				u, err := auth(c, t.Context(), allCreds(t))
				if u != nil {
					t.Errorf("Auth returned a user %+v", u)
				}
				tc.check(t, err)
				if e := asError(t, err); e.Attempts != attempts {
					t.Errorf("Attempts = %d, want %d", e.Attempts, attempts)
				}
				if n := seen(); n != int32(attempts) {
					t.Errorf("Opentact saw %d requests, want %d", n, attempts)
				}
				assertNoSecrets(t, "error text", err.Error())
			})
		}
		t.Run(tc.name+"/twice, then recovers", func(t *testing.T) {
			t.Parallel()
			base, seen, opts := tc.start(t, 2)
			c := newClient(t, base, append(opts, fastRetry(3), noBreaker)...)
			u, err := auth(c, t.Context(), basicCreds(t))
			if err != nil || u.UUID.Value != "0116f6d1-1280-44b2-9134-da48509ec575" {
				t.Errorf("Auth = %+v, %v; want the user", u, err)
			}
			if n := seen(); n != 3 {
				t.Errorf("Opentact saw %d requests, want 3", n)
			}
		})
		t.Run(tc.name+"/twice, but only 2 attempts", func(t *testing.T) {
			t.Parallel()
			base, seen, opts := tc.start(t, 2)
			c := newClient(t, base, append(opts, fastRetry(2), noBreaker)...)
			_, err := auth(c, t.Context(), basicCreds(t))
			tc.check(t, err)
			if e := asError(t, err); e.Attempts != 2 {
				t.Errorf("Attempts = %d, want 2", e.Attempts)
			}
			if n := seen(); n != 2 {
				t.Errorf("Opentact saw %d requests, want 2", n)
			}
		})
	}
}

// TestRetryNoSuchHost: a name that does not exist is an answer from DNS,
// not a passing failure: one attempt.
func TestRetryNoSuchHost(t *testing.T) {
	t.Parallel()
	base, seen, opts := dnsNotFound.start(t, forever)
	c := newClient(t, base, append(opts, fastRetry(3), noBreaker)...)
	_, err := auth(c, t.Context(), basicCreds(t))
	dnsNotFound.check(t, err)
	if n := seen(); n != 1 {
		t.Errorf("%d lookups, want 1", n)
	}
}

// TestRetryDefaultPolicy: with no RetryPolicy, a transient failure is tried
// 3 times.
func TestRetryDefaultPolicy(t *testing.T) {
	t.Parallel()
	if got := upstream.DefaultRetryPolicy().MaxAttempts; got != 3 {
		t.Errorf("DefaultRetryPolicy().MaxAttempts = %d, want 3", got)
	}
	base, seen, _ := statusFailure(http.StatusServiceUnavailable).start(t, 2)
	u, err := auth(newClient(t, base), t.Context(), basicCreds(t))
	if err != nil || u == nil {
		t.Errorf("Auth = %+v, %v; want the user", u, err)
	}
	if n := seen(); n != 3 {
		t.Errorf("Opentact saw %d requests, want 3", n)
	}
}

func TestRetryNotTransient(t *testing.T) {
	t.Parallel()
	statusReply := func(code int, header ...string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i+1 < len(header); i += 2 {
				w.Header().Set(header[i], header[i+1])
			}
			reply(code, `{"success":false,"message":"no","status":`+strconv.Itoa(code)+`}`)(w, r)
		}
	}
	big := padTo(okBody, 4096)
	tests := []struct {
		name    string
		h       http.HandlerFunc
		failure upstream.Failure
		status  int
	}{
		{"400", statusReply(400), upstream.FailStatus, 400},
		{"401", statusReply(401), upstream.FailStatus, 401},
		{"403", statusReply(403), upstream.FailStatus, 403},
		{"404", statusReply(404), upstream.FailStatus, 404},
		{"409", statusReply(409), upstream.FailStatus, 409},
		{"429", statusReply(429), upstream.FailStatus, 429},
		{"429 with Retry-After", statusReply(429, "Retry-After", "1"), upstream.FailStatus, 429},
		{"500", statusReply(500), upstream.FailStatus, 500},
		{"501", statusReply(501), upstream.FailStatus, 501},
		{"500 with Retry-After", statusReply(500, "Retry-After", "1"), upstream.FailStatus, 500},
		{"301", statusReply(301, "Location", "/elsewhere"), upstream.FailStatus, 301},
		{"302", statusReply(302, "Location", "/elsewhere"), upstream.FailStatus, 302},
		{"307", statusReply(307, "Location", "/elsewhere"), upstream.FailStatus, 307},
		{"308", statusReply(308, "Location", "/elsewhere"), upstream.FailStatus, 308},
		{"200 with HTML", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>")
		}, upstream.FailMalformed, 200},
		{"200 with broken JSON", reply(200, `{"success":true,"payload":{"uuid":"0116f6d1`), upstream.FailMalformed, 200},
		{"200 with success false", reply(200, `{"success":false,"message":"suspended"}`), upstream.FailRejected, 200},
		{"200 too large, with Content-Length", reply(200, big), upstream.FailTooLarge, 200},
		{"200 too large, chunked", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, big[:10])
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, big[10:])
		}, upstream.FailTooLarge, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStub(t, tt.h)
			c := newClient(t, s.base(), fastRetry(5), upstream.WithMaxBodySize(1024))
			u, err := auth(c, t.Context(), basicCreds(t))
			if u != nil {
				t.Errorf("Auth returned a user %+v", u)
			}
			e := asError(t, err)
			if e.Failure != tt.failure || e.StatusCode != tt.status || e.Attempts != 1 {
				t.Errorf("error = %+v, want Failure %d, HTTP %d, after 1 attempt", e, tt.failure, tt.status)
			}
			if n := s.hits.Load(); n != 1 {
				t.Errorf("Opentact saw %d requests, want 1", n)
			}
		})
	}
}

func TestRetryMaxAttemptsClamped(t *testing.T) {
	t.Parallel()
	tests := []struct{ asked, want int }{
		{-3, 1}, {0, 1}, {1, 1}, {4, 4}, {5, 5}, {6, 5}, {50, 5}, {math.MaxInt, 5},
	}
	if upstream.MaxAttemptsLimit != 5 {
		t.Errorf("MaxAttemptsLimit = %d, want 5", upstream.MaxAttemptsLimit)
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.asked), func(t *testing.T) {
			t.Parallel()
			// Opentact recovers after 5 failures: a client that made a
			// sixth attempt would succeed, and fail this test at once.
			base, seen, _ := statusFailure(http.StatusServiceUnavailable).start(t, upstream.MaxAttemptsLimit)
			_, err := auth(newClient(t, base, fastRetry(tt.asked), noBreaker), t.Context(), basicCreds(t))
			if e := asError(t, err); e.Attempts != tt.want {
				t.Errorf("Attempts = %d, want %d", e.Attempts, tt.want)
			}
			if n := seen(); n != int32(tt.want) {
				t.Errorf("Opentact saw %d requests, want %d", n, tt.want)
			}
		})
	}
}

// retryAfterStub answers 503 with Retry-After: after to its first request,
// okBody later, and records when each request arrived.
func retryAfterStub(t *testing.T, after string) (*stub, func() []time.Time) {
	t.Helper()
	var (
		mu     sync.Mutex
		times  []time.Time
		number atomic.Int32
	)
	s := newStub(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		if number.Add(1) == 1 {
			w.Header().Set("Retry-After", after)
			reply(http.StatusServiceUnavailable, `{"success":false,"message":"later","status":503}`)(w, r)
			return
		}
		reply(http.StatusOK, okBody)(w, r)
	})
	return s, func() []time.Time {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Time(nil), times...)
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	s, times := retryAfterStub(t, "1")
	c := newClient(t, s.base(), noBreaker, upstream.WithRetryPolicy(upstream.RetryPolicy{
		MaxAttempts: 3, BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, MaxRetryAfter: 2 * time.Second,
	}))
	u, err := auth(c, t.Context(), basicCreds(t))
	if err != nil || u == nil {
		t.Fatalf("Auth = %+v, %v; want the user", u, err)
	}
	ts := times()
	if len(ts) != 2 {
		t.Fatalf("Opentact saw %d requests, want 2", len(ts))
	}
	if gap := ts[1].Sub(ts[0]); gap < time.Second {
		t.Errorf("second request %v after the first, want ≥ 1s as Retry-After: 1 asked", gap)
	}
}

func TestRetryAfterBeyondCap(t *testing.T) {
	t.Parallel()
	s, times := retryAfterStub(t, "3")
	c := newClient(t, s.base(), noBreaker, upstream.WithRetryPolicy(upstream.RetryPolicy{
		MaxAttempts: 3, BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, MaxRetryAfter: 2 * time.Second,
	}))
	// Waited for, the Retry-After would be followed by a second request.
	_, err := auth(c, t.Context(), basicCreds(t))
	want := &upstream.Error{Failure: upstream.FailStatus, StatusCode: 503, Message: "later", RetryAfter: 3 * time.Second, Attempts: 1}
	if diff := cmp.Diff(want, asError(t, err), errorOpts); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
	if n := len(times()); n != 1 {
		t.Errorf("Opentact saw %d requests, want 1", n)
	}
}

// TestRetryNeverSleepsPastDeadline: when the next wait would end after the
// caller's deadline, the last upstream failure comes back at once, rather
// than a sleep that ends in DeadlineExceeded.
func TestRetryNeverSleepsPastDeadline(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		retryAfter string
		policy     upstream.RetryPolicy
	}{
		// Full jitter draws from [0, 1000h): below the 3s deadline with
		// a probability under 1e-6.
		{"backoff", "", upstream.RetryPolicy{MaxAttempts: 3, BaseBackoff: 1000 * time.Hour, MaxBackoff: 1000 * time.Hour}},
		{"Retry-After", "5", upstream.RetryPolicy{MaxAttempts: 3, BaseBackoff: time.Millisecond, MaxBackoff: time.Millisecond, MaxRetryAfter: 10 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStub(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				reply(http.StatusServiceUnavailable, `{"success":false,"message":"later","status":503}`)(w, r)
			})
			c := newClient(t, s.base(), noBreaker, upstream.WithRetryPolicy(tt.policy))
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
			defer cancel()
			// A sleep would end in DeadlineExceeded, checked below.
			_, err := auth(c, ctx, basicCreds(t))
			if e := asError(t, err); e.Failure != upstream.FailStatus || e.StatusCode != 503 || e.Attempts != 1 {
				t.Errorf("error = %+v, want the upstream's 503 after 1 attempt", e)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v is the deadline, want the upstream's failure", err)
			}
			if n := s.hits.Load(); n != 1 {
				t.Errorf("Opentact saw %d requests, want 1", n)
			}
		})
	}
}

func TestRetryCancelledDuringBackoff(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 1)
	s := newStub(t, func(w http.ResponseWriter, r *http.Request) {
		reply(http.StatusServiceUnavailable, `{"success":false,"status":503}`)(w, r)
		select {
		case arrived <- struct{}{}:
		default:
		}
	})
	// A backoff of up to 1000h: without the cancellation the call would
	// not come back before the test's own 10s safety net.
	c := newClient(t, s.base(), noBreaker, upstream.WithRetryPolicy(upstream.RetryPolicy{
		MaxAttempts: 5, BaseBackoff: 1000 * time.Hour, MaxBackoff: 1000 * time.Hour,
	}))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var cancelledAt atomic.Int64
	go func() {
		select {
		case <-arrived:
		case <-ctx.Done():
			return
		}
		time.Sleep(100 * time.Millisecond) // let the client take the 503 and start waiting
		cancelledAt.Store(time.Now().UnixNano())
		cancel()
	}()
	type result struct {
		u   *profile
		err error
	}
	done := make(chan result, 1)
	creds := basicCreds(t)
	go func() {
		u, err := auth(c, ctx, creds)
		done <- result{u, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		// The call sleeps on, and goleak will report it too.
		t.Fatal("Auth did not return within 30s of a cancellation during backoff")
	}
	checkContextError(t, r.u, r.err, context.Canceled)
	if n := s.hits.Load(); n != 1 {
		t.Errorf("Opentact saw %d requests, want 1", n)
	}
}

// TestRetryNotAfterCallerEnds: the caller's deadline or cancellation
// during a request is returned as is, never retried.
func TestRetryNotAfterCallerEnds(t *testing.T) {
	t.Parallel()
	for _, partial := range []bool{false, true} {
		name := map[bool]string{false: "before headers", true: "mid-body"}[partial]
		t.Run("deadline/"+name, func(t *testing.T) {
			t.Parallel()
			s := hangingStub(t, partial, nil)
			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()
			u, err := auth(newClient(t, s.base(), fastRetry(5), noBreaker), ctx, basicCreds(t))
			checkContextError(t, u, err, context.DeadlineExceeded)
			if n := s.hits.Load(); n != 1 {
				t.Errorf("Opentact saw %d requests, want 1", n)
			}
		})
		t.Run("cancelled/"+name, func(t *testing.T) {
			t.Parallel()
			arrived := make(chan struct{}, 1)
			s := hangingStub(t, partial, arrived)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			go func() {
				select {
				case <-arrived:
					cancel()
				case <-ctx.Done():
				}
			}()
			u, err := auth(newClient(t, s.base(), fastRetry(5), noBreaker), ctx, basicCreds(t))
			checkContextError(t, u, err, context.Canceled)
			if n := s.hits.Load(); n != 1 {
				t.Errorf("Opentact saw %d requests, want 1", n)
			}
		})
	}
}

// modal is an Opentact stand-in whose answer the test switches.
type modal struct {
	*stub
	mode    atomic.Int32
	arrived chan struct{} // a value for each held request
	release chan struct{}
	once    sync.Once
}

const (
	modeUnavailable = iota // 503
	modeOK
	modeUnauthorized // 401
	modeHold         // hold the request until released, then answer okBody
)

func newModal(t *testing.T, mode int32) *modal {
	t.Helper()
	m := &modal{arrived: make(chan struct{}, 16), release: make(chan struct{})}
	m.mode.Store(mode)
	m.stub = newStub(t, func(w http.ResponseWriter, r *http.Request) {
		switch m.mode.Load() {
		case modeUnavailable:
			reply(http.StatusServiceUnavailable, `{"success":false,"message":"down","status":503}`)(w, r)
		case modeOK:
			reply(http.StatusOK, okBody)(w, r)
		case modeUnauthorized:
			reply(http.StatusUnauthorized, `{"success":false,"message":"Invalid credentials","status":401}`)(w, r)
		case modeHold:
			m.arrived <- struct{}{}
			select {
			case <-r.Context().Done():
			case <-m.release:
				reply(http.StatusOK, okBody)(w, r)
			}
		}
	})
	t.Cleanup(m.releaseAll) // before the server's Close
	return m
}

func (m *modal) releaseAll() { m.once.Do(func() { close(m.release) }) }

func checkState(t *testing.T, c *upstream.Client, want string) {
	t.Helper()
	if got := c.BreakerState(); got != want {
		t.Errorf("BreakerState() = %q, want %q", got, want)
	}
}

// awaitHalfOpen waits for the breaker's OpenFor to pass.
func awaitHalfOpen(t *testing.T, c *upstream.Client) {
	t.Helper()
	deadline := time.Now().Add(10 * testBreakerOpenFor)
	for c.BreakerState() != "half-open" {
		if time.Now().After(deadline) {
			t.Fatalf("breaker still %q %v after opening for %v", c.BreakerState(), 10*testBreakerOpenFor, testBreakerOpenFor)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkCircuitOpen asserts that a call fails at once with FailCircuitOpen
// and that Opentact sees no request for it.
func checkCircuitOpen(t *testing.T, c *upstream.Client, seen func() int32) {
	t.Helper()
	before := seen()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	u, err := auth(c, ctx, basicCreds(t))
	if u != nil {
		t.Errorf("Auth returned a user %+v", u)
	}
	want := &upstream.Error{Failure: upstream.FailCircuitOpen, RetryAfter: testBreakerOpenFor}
	if diff := cmp.Diff(want, asError(t, err), errorOpts); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
	if after := seen(); after != before {
		t.Errorf("Opentact saw %d requests with the breaker open, want none", after-before)
	}
}

func TestBreakerOpensOnUnavailability(t *testing.T) {
	t.Parallel()
	for _, tc := range append(transientFailures, headerTimeout) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			base, seen, opts := tc.start(t, forever)
			c := newClient(t, base, append(opts, testBreaker, singleAttempt)...)
			for i := 1; i <= 3; i++ {
				_, err := auth(c, t.Context(), basicCreds(t))
				tc.check(t, err)
				if want := map[bool]string{false: "closed", true: "open"}[i == 3]; c.BreakerState() != want {
					t.Errorf("after %d failures: BreakerState() = %q, want %q", i, c.BreakerState(), want)
				}
			}
			if n := seen(); n != 3 {
				t.Errorf("Opentact saw %d requests, want 3", n)
			}
			checkCircuitOpen(t, c, seen)
			checkCircuitOpen(t, c, seen)
		})
	}
}

// TestBreakerOpenIsPrompt: with the breaker open, a call that would hang
// at Opentact fails at once.
func TestBreakerOpenIsPrompt(t *testing.T) {
	t.Parallel()
	m := newModal(t, modeUnavailable)
	c := newClient(t, m.base(), testBreaker, singleAttempt)
	for range 3 {
		_, _ = auth(c, t.Context(), basicCreds(t))
	}
	checkState(t, c, "open")
	m.mode.Store(modeHold)
	checkCircuitOpen(t, c, m.hits.Load)
}

// TestBreakerCountsInARow: an answer from Opentact in between resets the
// count; only failures in a row open the breaker.
func TestBreakerCountsInARow(t *testing.T) {
	t.Parallel()
	m := newModal(t, modeUnavailable)
	c := newClient(t, m.base(), testBreaker, singleAttempt)
	for _, mode := range []int32{modeUnavailable, modeUnavailable, modeUnauthorized, modeUnavailable, modeUnavailable, modeOK, modeUnavailable, modeUnavailable} {
		m.mode.Store(mode)
		_, _ = auth(c, t.Context(), basicCreds(t))
		checkState(t, c, "closed")
	}
	m.mode.Store(modeUnavailable)
	_, _ = auth(c, t.Context(), basicCreds(t))
	checkState(t, c, "open")
}

// TestBreakerRetriesCount: each attempt of a call counts; a call whose
// retries open the breaker stops retrying.
func TestBreakerRetriesCount(t *testing.T) {
	t.Parallel()
	t.Run("3 attempts open it", func(t *testing.T) {
		t.Parallel()
		m := newModal(t, modeUnavailable)
		c := newClient(t, m.base(), testBreaker, fastRetry(3))
		_, err := auth(c, t.Context(), basicCreds(t))
		if e := asError(t, err); e.Failure != upstream.FailStatus || e.StatusCode != 503 || e.Attempts != 3 {
			t.Errorf("error = %+v, want HTTP 503 after 3 attempts", e)
		}
		checkState(t, c, "open")
		checkCircuitOpen(t, c, m.hits.Load)
		if n := m.hits.Load(); n != 3 {
			t.Errorf("Opentact saw %d requests, want 3", n)
		}
	})
	t.Run("opened mid-call", func(t *testing.T) {
		t.Parallel()
		m := newModal(t, modeUnavailable)
		c := newClient(t, m.base(), testBreaker, fastRetry(5))
		_, err := auth(c, t.Context(), basicCreds(t))
		if e := asError(t, err); e.Failure != upstream.FailCircuitOpen || e.Attempts != 3 {
			t.Errorf("error = %+v, want FailCircuitOpen after 3 attempts", e)
		}
		if n := m.hits.Load(); n != 3 {
			t.Errorf("Opentact saw %d requests, want 3: no retry once the breaker opened", n)
		}
		checkState(t, c, "open")
	})
}

func TestBreakerHalfOpen(t *testing.T) {
	t.Parallel()
	// trip opens the breaker of a fresh client with three 503s.
	trip := func(t *testing.T) (*modal, *upstream.Client) {
		m := newModal(t, modeUnavailable)
		c := newClient(t, m.base(), testBreaker, singleAttempt)
		for range 3 {
			_, _ = auth(c, t.Context(), basicCreds(t))
		}
		checkState(t, c, "open")
		checkCircuitOpen(t, c, m.hits.Load)
		return m, c
	}
	t.Run("probe succeeds", func(t *testing.T) {
		t.Parallel()
		m, c := trip(t)
		awaitHalfOpen(t, c)
		m.mode.Store(modeOK)
		if u, err := auth(c, t.Context(), basicCreds(t)); err != nil || u == nil {
			t.Fatalf("probe: Auth = %+v, %v; want the user", u, err)
		}
		checkState(t, c, "closed")
		if _, err := auth(c, t.Context(), basicCreds(t)); err != nil {
			t.Errorf("after the probe: Auth: %v", err)
		}
		if n := m.hits.Load(); n != 5 {
			t.Errorf("Opentact saw %d requests, want 5", n)
		}
	})
	t.Run("probe answered 401", func(t *testing.T) {
		t.Parallel()
		m, c := trip(t)
		awaitHalfOpen(t, c)
		m.mode.Store(modeUnauthorized)
		_, err := auth(c, t.Context(), basicCreds(t))
		if e := asError(t, err); e.Failure != upstream.FailStatus || e.StatusCode != 401 {
			t.Errorf("probe: error = %+v, want HTTP 401", e)
		}
		checkState(t, c, "closed") // Opentact answered: it is available
	})
	t.Run("probe fails", func(t *testing.T) {
		t.Parallel()
		m, c := trip(t)
		awaitHalfOpen(t, c)
		_, err := auth(c, t.Context(), basicCreds(t))
		if e := asError(t, err); e.Failure != upstream.FailStatus || e.StatusCode != 503 || e.Attempts != 1 {
			t.Errorf("probe: error = %+v, want HTTP 503 after 1 attempt", e)
		}
		if n := m.hits.Load(); n != 4 {
			t.Errorf("Opentact saw %d requests, want 4 (3, then the probe)", n)
		}
		checkState(t, c, "open")
		checkCircuitOpen(t, c, m.hits.Load)
	})
	t.Run("one probe at a time", func(t *testing.T) {
		t.Parallel()
		m, c := trip(t)
		awaitHalfOpen(t, c)
		m.mode.Store(modeHold)
		probe := make(chan error, 1)
		go func() {
			_, err := auth(c, t.Context(), basicCreds(t))
			probe <- err
		}()
		select {
		case <-m.arrived:
		case <-time.After(5 * time.Second):
			t.Fatal("the probe did not reach Opentact")
		}
		checkState(t, c, "half-open")
		checkCircuitOpen(t, c, m.hits.Load) // a second caller does not get through
		m.releaseAll()
		if err := <-probe; err != nil {
			t.Errorf("probe: %v", err)
		}
		checkState(t, c, "closed")
		if n := m.hits.Load(); n != 4 {
			t.Errorf("Opentact saw %d requests, want 4", n)
		}
	})
	t.Run("probe cancelled by its caller", func(t *testing.T) {
		t.Parallel()
		m, c := trip(t)
		awaitHalfOpen(t, c)
		m.mode.Store(modeHold)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go func() {
			select {
			case <-m.arrived:
				cancel()
			case <-ctx.Done():
			}
		}()
		u, err := auth(c, ctx, basicCreds(t))
		checkContextError(t, u, err, context.Canceled)
		// The cancelled probe says nothing about Opentact, and must not
		// keep the breaker half-open with its slot taken for good.
		checkState(t, c, "half-open")
		m.mode.Store(modeOK)
		if u, err := auth(c, t.Context(), basicCreds(t)); err != nil || u == nil {
			t.Fatalf("next probe: Auth = %+v, %v; want the user", u, err)
		}
		checkState(t, c, "closed")
	})
}

// TestBreakerIgnoresAnswers: Opentact answering, even with an error, is
// not unavailability; bad credentials above all must never open the
// breaker for everybody.
func TestBreakerIgnoresAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		h    http.HandlerFunc
	}{
		{"400", reply(400, `{"success":false,"status":400}`)},
		{"401", reply(401, `{"success":false,"message":"Invalid credentials","status":401}`)},
		{"403", reply(403, `{"success":false,"status":403}`)},
		{"404", reply(404, `{"success":false,"status":404}`)},
		{"429", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "1")
			reply(429, `{"success":false,"status":429}`)(w, r)
		}},
		{"500", reply(500, `{"success":false,"status":500}`)},
		{"200 with HTML", reply(200, "<html>maintenance</html>")},
		{"200 with success false", reply(200, `{"success":false}`)},
		{"200 too large", reply(200, padTo(okBody, 4096))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStub(t, tt.h)
			c := newClient(t, s.base(), testBreaker, fastRetry(3), upstream.WithMaxBodySize(1024))
			for i := range 10 {
				_, err := auth(c, t.Context(), basicCreds(t))
				if e := asError(t, err); e.Failure == upstream.FailCircuitOpen {
					t.Fatalf("call %d: breaker open after %d answers %s", i+1, i, tt.name)
				}
			}
			checkState(t, c, "closed")
			if n := s.hits.Load(); n != 10 {
				t.Errorf("Opentact saw %d requests, want 10", n)
			}
		})
	}
}

// TestBreakerIgnoresCallerEnd: the caller's deadline or cancellation says
// nothing about Opentact.
func TestBreakerIgnoresCallerEnd(t *testing.T) {
	t.Parallel()
	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		m := newModal(t, modeHold)
		c := newClient(t, m.base(), testBreaker, singleAttempt)
		for range 5 {
			ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
			u, err := auth(c, ctx, basicCreds(t))
			cancel()
			checkContextError(t, u, err, context.DeadlineExceeded)
		}
		checkState(t, c, "closed")
		if n := m.hits.Load(); n != 5 {
			t.Errorf("Opentact saw %d requests, want 5", n)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		t.Parallel()
		m := newModal(t, modeHold)
		c := newClient(t, m.base(), testBreaker, singleAttempt)
		for range 5 {
			ctx, cancel := context.WithCancel(t.Context())
			go func() {
				select {
				case <-m.arrived:
					cancel()
				case <-ctx.Done():
				}
			}()
			u, err := auth(c, ctx, basicCreds(t))
			cancel()
			checkContextError(t, u, err, context.Canceled)
		}
		checkState(t, c, "closed")
		if n := m.hits.Load(); n != 5 {
			t.Errorf("Opentact saw %d requests, want 5", n)
		}
	})
	t.Run("between failures", func(t *testing.T) {
		t.Parallel()
		// 503, 503, a deadline, 503: the deadline neither counts nor
		// breaks the run, so the third 503 opens the breaker.
		m := newModal(t, modeUnavailable)
		c := newClient(t, m.base(), testBreaker, singleAttempt)
		for _, mode := range []int32{modeUnavailable, modeUnavailable, modeHold} {
			m.mode.Store(mode)
			ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
			_, _ = auth(c, ctx, basicCreds(t))
			cancel()
			checkState(t, c, "closed")
		}
		m.mode.Store(modeUnavailable)
		_, _ = auth(c, t.Context(), basicCreds(t))
		checkState(t, c, "open")
	})
}

func TestBreakerDisabled(t *testing.T) {
	t.Parallel()
	for _, failures := range []int{0, -1} {
		t.Run(strconv.Itoa(failures), func(t *testing.T) {
			t.Parallel()
			m := newModal(t, modeUnavailable)
			c := newClient(t, m.base(), singleAttempt, upstream.WithBreakerPolicy(upstream.BreakerPolicy{Failures: failures, OpenFor: time.Minute}))
			for range 20 {
				_, err := auth(c, t.Context(), basicCreds(t))
				if e := asError(t, err); e.Failure != upstream.FailStatus || e.StatusCode != 503 {
					t.Fatalf("error = %+v, want HTTP 503", e)
				}
			}
			checkState(t, c, "closed")
			if n := m.hits.Load(); n != 20 {
				t.Errorf("Opentact saw %d requests, want 20", n)
			}
		})
	}
}

func TestTransportDefaults(t *testing.T) {
	t.Parallel()
	tr := upstream.NewTransport()
	if tr.TLSHandshakeTimeout != upstream.DefaultTLSHandshakeTimeout || tr.TLSHandshakeTimeout <= 0 {
		t.Errorf("TLSHandshakeTimeout = %v, want %v", tr.TLSHandshakeTimeout, upstream.DefaultTLSHandshakeTimeout)
	}
	if tr.ResponseHeaderTimeout != upstream.DefaultResponseHeaderTimeout || tr.ResponseHeaderTimeout <= 0 {
		t.Errorf("ResponseHeaderTimeout = %v, want %v", tr.ResponseHeaderTimeout, upstream.DefaultResponseHeaderTimeout)
	}
	if tr.DialContext == nil {
		t.Error("DialContext is nil: dialing has no timeout of its own")
	}
	// The dial timeout (DefaultDialTimeout) lives inside DialContext and is
	// not tested: no loopback setup makes a connection attempt hang
	// reliably.
}

func TestTransportResponseHeaderTimeout(t *testing.T) {
	t.Parallel()
	base, seen, opts := headerTimeout.start(t, forever)
	c := newClient(t, base, opts...) // the default RetryPolicy: a timeout is not retried
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	u, err := auth(c, ctx, basicCreds(t))
	if elapsed := time.Since(start); elapsed >= 5*time.Second {
		t.Errorf("Auth took %v with a 200ms response-header timeout: the 10s context, not the timeout, ended it", elapsed)
	}
	if u != nil {
		t.Errorf("Auth returned a user %+v", u)
	}
	headerTimeout.check(t, err)
	if e := asError(t, err); e.Attempts != 1 {
		t.Errorf("Attempts = %d, want 1", e.Attempts)
	}
	if n := seen(); n != 1 {
		t.Errorf("Opentact saw %d requests, want 1", n)
	}
}

// TestTransportTLSHandshakeTimeout: a TCP listener that accepts and never
// answers the ClientHello.
func TestTransportTLSHandshakeTimeout(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		accepted atomic.Int32
		wg       sync.WaitGroup
		mu       sync.Mutex
		conns    []net.Conn
	)
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(io.Discard, conn) })
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	c := newClient(t, "https://"+ln.Addr().String()+apiPrefix,
		upstream.WithTransportTimeouts(upstream.TransportTimeouts{TLSHandshake: 200 * time.Millisecond}))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err = auth(c, ctx, basicCreds(t))
	if elapsed := time.Since(start); elapsed >= 5*time.Second {
		t.Errorf("Auth took %v with a 200ms TLS-handshake timeout: the 10s context, not the timeout, ended it", elapsed)
	}
	e := asError(t, err)
	var ne net.Error
	if e.Failure != upstream.FailTransport || e.Attempts != 1 || !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("error = %v (%+v), want FailTransport with a timeout after 1 attempt", err, e)
	}
	if n := accepted.Load(); n != 1 {
		t.Errorf("the listener accepted %d connections, want 1", n)
	}
}

// TestAuthBodyCapStreaming: a 64 MiB answer fails at the 1 MiB cap without
// being read. Not parallel: TotalAlloc counts every goroutine's
// allocations, and parallel tests only start once the sequential ones are
// done.
func TestAuthBodyCapStreaming(t *testing.T) {
	const (
		total = 64 << 20
		chunk = 1 << 20
		pause = 50 * time.Millisecond // per MiB: reading all of it takes > 3s
	)
	for _, withLength := range []bool{false, true} {
		t.Run(map[bool]string{false: "chunked", true: "with Content-Length"}[withLength], func(t *testing.T) {
			var written atomic.Int64
			done := make(chan struct{})
			buf := make([]byte, 32<<10)
			for i := range buf {
				buf[i] = ' '
			}
			s := newStub(t, func(w http.ResponseWriter, r *http.Request) {
				defer close(done)
				w.Header().Set("Content-Type", "application/json")
				if withLength {
					w.Header().Set("Content-Length", strconv.Itoa(total))
				}
				w.WriteHeader(http.StatusOK)
				_, _ = io.WriteString(w, `{"success":true,"payload":{"uuid":"x"}}`)
				for written.Load() < total-chunk {
					for range chunk / len(buf) {
						n, err := w.Write(buf)
						written.Add(int64(n))
						if err != nil {
							return
						}
					}
					w.(http.Flusher).Flush()
					select {
					case <-r.Context().Done():
						return
					case <-time.After(pause):
					}
				}
			})
			c := newClient(t, s.base(), upstream.WithMaxBodySize(1<<20))

			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			u, err := auth(c, t.Context(), basicCreds(t))
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)

			if u != nil {
				t.Errorf("Auth returned a user %+v", u)
			}
			want := &upstream.Error{Failure: upstream.FailTooLarge, StatusCode: http.StatusOK, Attempts: 1}
			if diff := cmp.Diff(want, asError(t, err), errorOpts); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			t.Logf("Auth allocated %d KiB in %v", (after.TotalAlloc-before.TotalAlloc)>>10, elapsed)
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc >= 16<<20 {
				t.Errorf("Auth allocated %d MiB for a 64 MiB body with a 1 MiB cap", alloc>>20)
			}
			if n := s.hits.Load(); n != 1 {
				t.Errorf("Opentact saw %d requests, want 1", n)
			}
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("the stand-in kept sending for 5s after the client gave up")
			}
			if n := written.Load(); n >= total-chunk {
				t.Errorf("the stand-in wrote %d MiB: the client read the whole body", n>>20)
			}
		})
	}
}
