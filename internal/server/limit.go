package server

import (
	"context"
	"time"

	"google.golang.org/grpc/status"

	"github.com/opentact-facade/opentact-facade/service"
)

// busyRetryAfter is the RetryInfo (Retry-After on REST) of a call turned
// away by callLimit.
const busyRetryAfter = time.Second

// callLimit bounds the REST calls in flight in the process. gRPC calls
// are bounded per connection by grpc.MaxConcurrentStreams; REST calls,
// which the gateway runs in the process, take a slot here instead, so a
// flood of REST requests cannot pile up goroutines and memory without
// end. A call beyond the bound waits for a slot, as a gRPC call waits
// for stream quota, but never longer than the call itself may last (its
// deadline capped at the maximum call time, or the default call time if
// it has none): then it fails with service.Busy, and Opentact never
// sees it.
type callLimit struct {
	slots    chan struct{}
	timeouts service.Timeouts
}

// newCallLimit bounds calls at n in flight; timeouts are the service's
// (AuthServer.Timeouts), so that a wait ends when the call would.
func newCallLimit(n int, timeouts service.Timeouts) *callLimit {
	return &callLimit{slots: make(chan struct{}, n), timeouts: timeouts}
}

// acquire takes a slot, waiting if there is none, and returns the
// function that gives it back. Its error is a gRPC status: Canceled or
// DeadlineExceeded when the caller's context ended first, service.Busy
// when the call's own bound did.
func (l *callLimit) acquire(ctx context.Context) (release func(), err error) {
	select {
	case l.slots <- struct{}{}:
		return l.release, nil
	default:
	}
	// The call's own bound, as the service will apply it. A caller's
	// deadline within it needs no timer: ctx ends first.
	limit := l.timeouts.Limit(ctx)
	var expired <-chan time.Time
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > limit {
		t := time.NewTimer(limit)
		defer t.Stop()
		expired = t.C
	}
	select {
	case l.slots <- struct{}{}:
		return l.release, nil
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	case <-expired:
		return nil, service.Busy(busyRetryAfter)
	}
}

func (l *callLimit) release() { <-l.slots }
