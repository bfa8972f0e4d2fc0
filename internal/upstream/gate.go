package upstream

import (
	"container/list"
	"context"
	"errors"
	"sync"
	"time"
)

// Why a call was refused before any request was sent; the values of the
// Observer's Shed reasons.
const (
	ShedQueue      = "upstream_queue" // every request slot busy, and the wait for one would outlast the call
	ShedDeadline   = "deadline"       // the call's remaining time is shorter than Opentact's recent answer time
	ShedCallerGone = "caller_gone"    // the caller went while the call waited for a slot, or before its request
)

// gate is admission control in front of Opentact: at most slots requests
// in flight, and a FIFO queue of calls waiting for a slot. Go's transport
// would queue requests beyond its connection pool too, but blindly, so
// that under overload most requests would be sent when their callers could
// no longer use the answer. The gate instead refuses at once a call that
// could not get a slot and an answer within its remaining time, judging
// by an estimate of Opentact's answer time (an EWMA of recent requests),
// and never sends a request for a caller already gone.
type gate struct {
	slots int
	now   func() time.Time

	mu      sync.Mutex
	busy    int
	waiting list.List // of *gateWaiter, oldest first
	est     time.Duration
	samples int
}

// gateWaiter is a call queued for a slot; ready is closed when it has one.
type gateWaiter struct {
	ready   chan struct{}
	granted bool
}

// estimateWeight is the weight of a new sample in the answer-time EWMA.
const estimateWeight = 0.2

// minRetryHint is the least RetryAfter the gate suggests.
const minRetryHint = 100 * time.Millisecond

func newGate(slots int, now func() time.Time) *gate {
	if now == nil {
		now = time.Now
	}
	return &gate{slots: max(slots, 1), now: now}
}

// shedError is a call the gate refused; no request was sent.
func shedError(reason string, retryAfter, estimate time.Duration) *Error {
	return &Error{Failure: FailShed, ShedReason: reason, RetryAfter: retryAfter, Estimate: estimate}
}

// acquire takes a request slot for a call bound by ctx's deadline, waiting
// in line when the gate judges the call can still be answered in time. It
// returns the function that gives the slot back with the request's
// duration (0 for a request that tells nothing of Opentact's speed), or a
// *Error with FailShed.
func (g *gate) acquire(ctx context.Context) (release func(took time.Duration), err error) {
	if ctx.Err() != nil {
		return nil, shedError(ShedCallerGone, 0, 0)
	}
	g.mu.Lock()
	w, elem, err := g.admit(ctx)
	g.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if w == nil {
		return g.release, nil
	}
	select {
	case <-w.ready:
	case <-ctx.Done():
		reason := ShedCallerGone
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			reason = ShedDeadline
		}
		g.mu.Lock()
		granted := w.granted
		if !granted {
			g.waiting.Remove(elem)
		}
		g.mu.Unlock()
		if granted {
			g.release(0)
		}
		return nil, shedError(reason, 0, 0)
	}
	// The estimate may have grown while the call waited.
	g.mu.Lock()
	short, est := g.tooShort(ctx), g.est
	g.mu.Unlock()
	if short {
		g.release(0)
		return nil, shedError(ShedDeadline, 0, est)
	}
	return g.release, nil
}

// admit judges a call, g.mu held: it takes a free slot for it (nil, nil,
// nil), puts it in line (its waiter and element), or refuses it.
func (g *gate) admit(ctx context.Context) (*gateWaiter, *list.Element, error) {
	free := g.busy < g.slots && g.waiting.Len() == 0
	switch {
	case free && g.busy == 0:
		// With no request under way the call goes as a probe whatever its
		// time, so that the estimate follows Opentact when it speeds up.
	case g.tooShort(ctx):
		return nil, nil, shedError(ShedDeadline, 0, g.est)
	case free:
	default:
		// In line behind the others: a slot frees every est/slots on
		// average.
		remaining, bounded := g.remaining(ctx)
		if bounded && g.samples > 0 && g.expectedWait(g.waiting.Len()+1)+g.est > remaining {
			hint := max(g.expectedWait(g.waiting.Len()), minRetryHint)
			return nil, nil, shedError(ShedQueue, hint, g.est)
		}
		w := &gateWaiter{ready: make(chan struct{})}
		return w, g.waiting.PushBack(w), nil
	}
	g.busy++
	return nil, nil, nil
}

// tooShort reports, g.mu held, whether a call bound by ctx has less time
// left than Opentact has been taking to answer.
func (g *gate) tooShort(ctx context.Context) bool {
	remaining, bounded := g.remaining(ctx)
	return bounded && g.samples > 0 && remaining < g.est
}

// remaining is the time left before ctx's deadline; bounded is false for
// a ctx without one.
func (g *gate) remaining(ctx context.Context) (time.Duration, bool) {
	d, ok := ctx.Deadline()
	if !ok {
		return 0, false
	}
	return d.Sub(g.now()), true
}

// expectedWait is how long the n-th call in line waits for a slot, at
// the estimated answer time. g.mu is held.
func (g *gate) expectedWait(n int) time.Duration {
	return time.Duration(int64(g.est) * int64(n) / int64(g.slots))
}

// release gives a slot back, to the oldest call in line if there is one,
// and counts took (when positive) into the estimate.
func (g *gate) release(took time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if took > 0 {
		if g.samples == 0 {
			g.est = took
		} else {
			g.est += time.Duration(estimateWeight * float64(took-g.est))
		}
		g.samples++
	}
	if front := g.waiting.Front(); front != nil {
		w := g.waiting.Remove(front).(*gateWaiter)
		w.granted = true
		close(w.ready) // the slot passes to w: busy stays as it is
		return
	}
	g.busy--
}

// state reports the requests in flight, the calls in line and the current
// estimate of Opentact's answer time, for metrics.
func (g *gate) state() (busy, waiting int, est time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.busy, g.waiting.Len(), g.est
}
