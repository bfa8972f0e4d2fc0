package upstream

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/opentact-facade/opentact-facade/internal/defaults"
)

// MaxAttemptsLimit is the most attempts a RetryPolicy may make, whatever it
// asks for: a facade that multiplies its load on a struggling upstream by
// more than this does more harm than good.
const MaxAttemptsLimit = 5

// RetryPolicy says how often and how patiently a transient failure is
// retried. Only an idempotent endpoint is repeated once it may have reached
// Opentact (see Idempotent); what is retried is only what the outcome says
// is transient: a connection refused or reset, a name lookup that failed
// for now, an answer cut off before its end, and HTTP 502, 503 and 504.
// A 4xx (a retried 401 can lock an account), a 500, an answer the facade
// cannot read, and the caller's own deadline or cancellation are never
// retried.
type RetryPolicy struct {
	// MaxAttempts counts the first attempt: 1 never retries. It is
	// clamped to [1, MaxAttemptsLimit].
	MaxAttempts int
	// BaseBackoff and MaxBackoff shape the exponential backoff with full
	// jitter: before retry n (n ≥ 1) the client sleeps a uniformly random
	// duration in [0, min(MaxBackoff, BaseBackoff·2^(n-1))).
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// MaxRetryAfter caps how long a Retry-After from Opentact may make the
	// client wait; a longer Retry-After is not waited for: the failure is
	// returned at once, with its hint, for the caller to decide. 0 takes
	// the default; a negative value never waits for a Retry-After.
	MaxRetryAfter time.Duration
}

// DefaultRetryPolicy is 3 attempts, backoff from 50ms up to 1s, and
// Retry-After honoured up to 2s.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: defaults.MaxAttempts, BaseBackoff: defaults.BaseBackoff, MaxBackoff: defaults.MaxBackoff, MaxRetryAfter: defaults.MaxRetryAfter}
}

func (p RetryPolicy) normalized() RetryPolicy {
	d := DefaultRetryPolicy()
	p.MaxAttempts = min(max(p.MaxAttempts, 1), MaxAttemptsLimit)
	if p.BaseBackoff <= 0 {
		p.BaseBackoff = d.BaseBackoff
	}
	if p.MaxBackoff < p.BaseBackoff {
		p.MaxBackoff = max(p.BaseBackoff, d.MaxBackoff)
	}
	switch {
	case p.MaxRetryAfter == 0:
		p.MaxRetryAfter = d.MaxRetryAfter
	case p.MaxRetryAfter < 0:
		p.MaxRetryAfter = 0
	}
	return p
}

// WithRetryPolicy replaces DefaultRetryPolicy.
func WithRetryPolicy(p RetryPolicy) Option { return func(c *Client) { c.retry = p } }

// BreakerPolicy configures the circuit breaker in front of Opentact. It
// counts only Opentact being unavailable: a connection that fails, an
// answer cut off or not coming in time, HTTP 502, 503 and 504. Answers to
// bad credentials, other 4xx and 5xx, and calls the caller gave up on do not
// count.
type BreakerPolicy struct {
	// Failures is how many unavailability failures in a row open the
	// breaker; 0 or less turns the breaker off.
	Failures int
	// OpenFor is how long the breaker stays open, answering at once
	// without a request, before it lets one probe through (half-open). A
	// probe that succeeds closes it; one that fails opens it again.
	OpenFor time.Duration
}

// DefaultBreakerPolicy opens after 5 failures in a row, for 5 seconds.
func DefaultBreakerPolicy() BreakerPolicy {
	return BreakerPolicy{Failures: defaults.BreakerFailures, OpenFor: defaults.BreakerOpenFor}
}

// WithBreakerPolicy replaces DefaultBreakerPolicy.
func WithBreakerPolicy(p BreakerPolicy) Option { return func(c *Client) { c.breakerOf = p } }

// BreakerState is the circuit breaker's state: "closed", "half-open" or
// "open".
func (c *Client) BreakerState() string { return c.breaker.State().String() }

func newBreaker(p BreakerPolicy) *gobreaker.CircuitBreaker[struct{}] {
	failures := uint32(min(max(p.Failures, 0), 1<<20))
	return gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        "opentact",
		MaxRequests: 1,
		Timeout:     max(p.OpenFor, time.Millisecond),
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return failures > 0 && c.ConsecutiveFailures >= failures
		},
		IsSuccessful: func(err error) bool { return !unavailable(err) },
		IsExcluded: func(err error) bool {
			// The caller giving up says nothing about Opentact. Opentact's
			// own failures are all *Error, a transport timeout included,
			// though its cause matches context.DeadlineExceeded.
			_, ours := errors.AsType[*Error](err)
			return !ours && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
		},
	})
}

// unavailable reports whether err says that Opentact could not be reached
// or could not answer, as opposed to answering.
func unavailable(err error) bool {
	e, ok := errors.AsType[*Error](err)
	if !ok {
		return false
	}
	switch e.Failure {
	case FailTransport:
		return true
	case FailStatus:
		return gatewayStatus(e.StatusCode)
	}
	return false
}

func gatewayStatus(code int) bool {
	return code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout
}

// transient reports whether another attempt may succeed where this one
// failed.
func transient(err error) bool {
	e, ok := errors.AsType[*Error](err)
	if !ok {
		return false
	}
	switch e.Failure {
	case FailStatus:
		return gatewayStatus(e.StatusCode)
	case FailTransport:
		return errors.Is(e, syscall.ECONNREFUSED) || errors.Is(e, syscall.ECONNRESET) ||
			errors.Is(e, syscall.EPIPE) || errors.Is(e, io.ErrUnexpectedEOF) || errors.Is(e, io.EOF) ||
			errors.Is(e, net.ErrClosed) || staleConnection(e) || dnsTransient(e)
	}
	return false
}

// dnsTransient: Opentact's name did not resolve for now (a resolver that
// timed out or failed); no request was sent. "No such host" is an answer,
// not retried.
func dnsTransient(err error) bool {
	de, ok := errors.AsType[*net.DNSError](err)
	return ok && (de.IsTimeout || de.IsTemporary)
}

// staleConnection: net/http's "server closed idle connection", a
// keep-alive connection Opentact closed just as the request went out.
// Neither the pool nor, thanks to noReplay (see client.go), a caller's
// transport replays it by itself: the retry is the policy's. The error is
// not exported; its text has been stable since Go 1.8.
func staleConnection(err error) bool {
	return strings.Contains(err.Error(), "server closed idle connection")
}

// withRetries runs attempt until it succeeds, fails for good, runs out of
// attempts, or ctx ends. An endpoint that is not idempotent is retried only
// while no byte of it may have reached Opentact. It never sleeps past
// ctx's deadline: when the next wait would end after it, the last failure
// is returned at once.
func (k *call) withRetries(ctx context.Context, attempt func() error) error {
	c := k.c
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	var last error // the failure of the previous attempt
	for n := 1; ; n++ {
		err := attempt()
		if err == nil {
			return nil
		}
		if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
			c.observer.Rejected(k.ep.name)
			return &Error{Failure: FailCircuitOpen, RetryAfter: c.breakerOf.OpenFor, Attempts: n - 1}
		}
		e, _ := errors.AsType[*Error](err)
		if e != nil && e.Failure == FailShed {
			// A retry that could not be sent in time: the failure it
			// would have retried says more than the refusal.
			if last != nil {
				return last
			}
			e.Attempts = 0
			return err
		}
		if e != nil {
			e.Attempts = n
		}
		last = err
		if n >= c.retry.MaxAttempts || !transient(err) || ctx.Err() != nil || !k.ep.idempotent && k.written {
			return err
		}
		wait, ok := c.retry.wait(n, e)
		if !ok {
			return err
		}
		if deadline, has := ctx.Deadline(); has && time.Until(deadline) <= wait {
			return err
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
		c.observer.Retried(k.ep.name)
	}
}

// wait is how long to sleep before retry n; ok is false when Opentact asked
// for a longer pause than the policy allows.
func (p RetryPolicy) wait(n int, e *Error) (d time.Duration, ok bool) {
	if e != nil && e.RetryAfter > 0 {
		return e.RetryAfter, e.RetryAfter <= p.MaxRetryAfter
	}
	ceiling := p.MaxBackoff
	if shift := n - 1; shift < 30 && p.BaseBackoff<<shift < p.MaxBackoff {
		ceiling = p.BaseBackoff << shift
	}
	return rand.N(ceiling), true
}
