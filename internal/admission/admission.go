// Package admission bounds what the calls in flight in the process may
// hold, over every door (gRPC and REST alike): how many there are, and how
// many bytes of Opentact's answers they keep at once. Together with the
// caps on one call's headers and request, these bounds are what keep the
// facade's memory within a known worst case whatever its clients do.
package admission

import (
	"context"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

// Limiter admits calls up to a number in flight, and lends the calls it
// admitted bytes from one budget for the answers they hold. It is safe for
// concurrent use.
type Limiter struct {
	max      int64
	inFlight atomic.Int64
	bytes    *semaphore.Weighted
	maxBytes int64
	charged  atomic.Int64
}

// New returns a Limiter of maxCalls calls in flight and maxBytes bytes of
// answers held by them (both at least 1).
func New(maxCalls int, maxBytes int64) *Limiter {
	maxCalls, maxBytes = max(maxCalls, 1), max(maxBytes, 1)
	return &Limiter{max: int64(maxCalls), bytes: semaphore.NewWeighted(maxBytes), maxBytes: maxBytes}
}

// Admit takes a place for a call at once, or reports false when every
// place is taken: it never waits, so that a call past the bound costs
// nothing but its refusal.
func (l *Limiter) Admit() (*Call, bool) {
	if l.inFlight.Add(1) > l.max {
		l.inFlight.Add(-1)
		return nil, false
	}
	return &Call{l: l}, true
}

// InFlight is the number of calls admitted and not yet done.
func (l *Limiter) InFlight() int64 { return l.inFlight.Load() }

// Max is the bound on calls in flight.
func (l *Limiter) Max() int64 { return l.max }

// BytesHeld is the number of answer bytes charged to calls in flight.
func (l *Limiter) BytesHeld() int64 { return l.charged.Load() }

// MaxBytes is the bound on BytesHeld.
func (l *Limiter) MaxBytes() int64 { return l.maxBytes }

// Call is one admitted call. Done gives back its place and every byte
// charged to it.
type Call struct {
	l       *Limiter
	mu      sync.Mutex
	charged int64
	done    bool
}

// Charge waits, within ctx, until n more bytes of the budget are free and
// charges them to c until Done. A call that is already done is charged
// nothing: what it read belongs to whoever goes on with it (a shared
// request). n above the whole budget is charged as the whole budget.
func (c *Call) Charge(ctx context.Context, n int64) error {
	if n <= 0 {
		return nil
	}
	n = min(n, c.l.maxBytes)
	if err := c.l.bytes.Acquire(ctx, n); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		c.l.bytes.Release(n)
		return nil
	}
	c.charged += n
	c.l.charged.Add(n)
	return nil
}

// Done ends the call; calling it again does nothing.
func (c *Call) Done() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return
	}
	c.done = true
	if c.charged > 0 {
		c.l.bytes.Release(c.charged)
		c.l.charged.Add(-c.charged)
		c.charged = 0
	}
	c.l.inFlight.Add(-1)
}

type callKey struct{}

// NewContext returns ctx carrying c, for Charge.
func NewContext(ctx context.Context, c *Call) context.Context {
	return context.WithValue(ctx, callKey{}, c)
}

// FromContext returns the call in ctx, or nil.
func FromContext(ctx context.Context) *Call {
	c, _ := ctx.Value(callKey{}).(*Call)
	return c
}

// Charge charges n bytes to the call in ctx (see Call.Charge). Without a
// call in ctx (a tool or a test calling the upstream client directly)
// nothing is bounded.
func Charge(ctx context.Context, n int64) error {
	if c := FromContext(ctx); c != nil {
		return c.Charge(ctx, n)
	}
	return nil
}
