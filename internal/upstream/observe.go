package upstream

import (
	"context"
	"errors"
	"strconv"
	"time"
)

// Observer is told about every request the client makes, for metrics. Its
// methods are called concurrently and must be quick; they are given the
// endpoint's name (see NewEndpoint), never anything from the request (no
// credential, no URL).
type Observer interface {
	// RequestStarted and RequestDone bracket one request (one attempt).
	// outcome is Opentact's status class ("2xx", "3xx", "4xx", "5xx"),
	// "transport_error" when there was no complete answer, or "canceled"
	// when the caller's context ended first.
	RequestStarted(endpoint string)
	RequestDone(endpoint, outcome string, d time.Duration)
	// Retried is called before each retry.
	Retried(endpoint string)
	// Rejected is called for a call the open circuit breaker refused.
	Rejected(endpoint string)
	// Shed is called for a call refused before its request was sent, with
	// one of the Shed* reasons.
	Shed(endpoint, reason string)
}

// WithObserver makes the client report its requests to o.
func WithObserver(o Observer) Option { return func(c *Client) { c.observer = o } }

type nopObserver struct{}

func (nopObserver) RequestStarted(string)                     {}
func (nopObserver) RequestDone(string, string, time.Duration) {}
func (nopObserver) Retried(string)                            {}
func (nopObserver) Rejected(string)                           {}
func (nopObserver) Shed(string, string)                       {}

// Stats is what one call did upstream, for its access-log line.
type Stats struct {
	// Attempts is how many requests the call made.
	Attempts int
	// Status is Opentact's HTTP status in the last answer, 0 if none.
	Status int
	// Shared and Cached are set by the service: the answer came from a
	// request another caller started, or from its response cache (no
	// request at all).
	Shared, Cached bool
	// Replayed is set by the service: the answer is that of an earlier
	// call with the same request_id (no request at all).
	Replayed bool
	// Written reports that a byte of the call may have reached Opentact
	// (one of its requests had a connection in hand). It is tracked only
	// for an endpoint that is not idempotent, and is false for others.
	Written bool
	// Shed is the reason the call was refused before a request was sent
	// (one of the Shed* reasons), "" if it was not.
	Shed string
}

type statsKey struct{}

// WithStats returns a context in which Do records what it did into s.
// s must not be read until Do has returned.
func WithStats(ctx context.Context, s *Stats) context.Context {
	return context.WithValue(ctx, statsKey{}, s)
}

// StatsFrom returns the Stats WithStats put into ctx, or nil.
func StatsFrom(ctx context.Context) *Stats {
	s, _ := ctx.Value(statsKey{}).(*Stats)
	return s
}

// outcomeOf classifies one attempt for the Observer.
func outcomeOf(ctx context.Context, status int, err error) string {
	if status < 100 {
		if e, ok := errors.AsType[*Error](err); ok {
			status = e.StatusCode
		}
	}
	switch {
	case status >= 100:
		return statusClass(status)
	case callerEnded(ctx, err):
		return "canceled"
	}
	return "transport_error"
}

// statusClass is an HTTP status's class as a label, "2xx" to "5xx", with
// no allocation for the usual ones.
func statusClass(status int) string {
	switch status / 100 {
	case 1:
		return "1xx"
	case 2:
		return "2xx"
	case 3:
		return "3xx"
	case 4:
		return "4xx"
	case 5:
		return "5xx"
	}
	return strconv.Itoa(status/100) + "xx"
}
