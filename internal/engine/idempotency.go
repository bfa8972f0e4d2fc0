package engine

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	apiv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/api/v1"
	"github.com/opentact-facade/opentact-facade/internal/apierr"
	"github.com/opentact-facade/opentact-facade/internal/defaults"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// IdempotencyWindow is how long the answer to a call with a request_id
// answers a repeat of it.
const IdempotencyWindow = 24 * time.Hour

// Bounds of the request_id store when none is given.
const (
	DefaultIdempotencyMaxEntries = defaults.IdempotencyMaxEntries
	DefaultIdempotencyMaxBytes   = defaults.IdempotencyMaxBytes
)

// Parts of the keyer's message that keep the store's keys apart from the
// calls' keys (coalescing, the cache) and from each other.
var (
	requestIDPart = []byte("request_id")
	requestPart   = []byte("request")
)

// idempotency keeps, for IdempotencyWindow, the outcome of each call made
// with a request_id, by an HMAC of its credentials, method and
// request_id, so that a repeat is answered without calling Opentact
// again. Calls under way are in pending, never evicted: a repeat waits
// for them. Finished ones are in an LRU bounded in entries and in bytes
// (each counted as its answer's encoded size plus cacheEntryOverhead).
// An outcome is kept when Opentact acted (an answer) or may have (the
// outcome is unknown); a call that Opentact refused, or that never
// reached it, is forgotten, so that the same request_id may try again.
type idempotency struct {
	now      func() time.Time
	maxBytes int64

	mu      sync.Mutex
	pending map[credKey]*idemCall
	done    *lru.Cache[credKey, *idemCall] // guarded by mu, as bytes
	bytes   int64

	first, replayed, unknown, conflicts, evicted atomic.Uint64
	entries                                      atomic.Int64 // done's length, for metrics without the lock
	size                                         atomic.Int64 // bytes, for metrics without the lock
}

// idemCall is one call with a request_id: under way until finished is
// closed, then its outcome.
type idemCall struct {
	request  credKey // the keyed hash of the request less its request_id
	started  time.Time
	finished chan struct{}
	// Set before finished is closed.
	resp    proto.Message // the answer, or nil
	err     error         // the status a repeat gets when resp is nil
	unknown bool          // err says that the outcome is unknown
	size    int64
}

func newIdempotency(maxEntries int, maxBytes int64, now func() time.Time) *idempotency {
	if maxEntries <= 0 {
		maxEntries = DefaultIdempotencyMaxEntries
	}
	if maxBytes <= 0 {
		maxBytes = DefaultIdempotencyMaxBytes
	}
	if now == nil {
		now = time.Now
	}
	s := &idempotency{now: now, maxBytes: maxBytes, pending: map[credKey]*idemCall{}}
	// The callback runs under mu: every change to done is made holding it.
	s.done, _ = lru.NewWithEvict(maxEntries, func(_ credKey, c *idemCall) {
		s.bytes -= c.size
	})
	return s
}

// errRequestIDReused is the status of a request_id used before for
// another request.
var errRequestIDReused = apierr.WithInfo(codes.FailedPrecondition,
	"request_id was already used, within 24 hours and with the same credentials, for another request of this method; nothing was sent: use a new request_id for a new request",
	apiv1.ErrorReason_REQUEST_ID_REUSED, 0).Err()

// begin looks key up. A call with the same key under way, or finished
// within the window, is returned for its outcome (first false); one with
// another request is errRequestIDReused. Otherwise the caller's call is
// recorded as under way (first true), and must be finished.
func (s *idempotency) begin(key, request credKey) (c *idemCall, first bool, err error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	c = s.pending[key]
	if c == nil {
		if d, ok := s.done.Get(key); ok {
			if now.Before(d.started.Add(IdempotencyWindow)) {
				c = d
			} else {
				s.done.Remove(key)
			}
		}
		s.dropExpired(now)
	}
	if c != nil {
		if c.request != request {
			s.conflicts.Add(1)
			return nil, false, errRequestIDReused
		}
		return c, false, nil
	}
	c = &idemCall{request: request, started: now, finished: make(chan struct{})}
	s.pending[key] = c
	s.first.Add(1)
	return c, true, nil
}

// dropExpired drops outcomes past the window from the least recently
// used end, so that a store no one repeats into empties with time. Under
// mu.
func (s *idempotency) dropExpired(now time.Time) {
	for range 8 { // a bounded step per call
		k, c, ok := s.done.GetOldest()
		if !ok || now.Before(c.started.Add(IdempotencyWindow)) {
			break
		}
		s.done.Remove(k)
	}
	s.sync()
}

// sync publishes the store's size for metrics. Under mu.
func (s *idempotency) sync() {
	s.entries.Store(int64(s.done.Len()))
	s.size.Store(s.bytes)
}

// finish records the outcome of the call begun under key: resp, or the
// status err that repeats get, o saying which. A call Opentact refused is
// forgotten, so that its request_id may be sent again; the callers
// waiting for it get its status all the same.
func (s *idempotency) finish(key credKey, c *idemCall, resp proto.Message, err error, o outcome) {
	if resp != nil {
		// The handler's message points into the decoded payload; a copy
		// keeps only the message alive for the window.
		resp = proto.Clone(resp)
	}
	c.resp, c.err, c.unknown = resp, err, o == unknown
	keep := o != refused
	c.size = int64(proto.Size(resp)) + cacheEntryOverhead
	s.mu.Lock()
	delete(s.pending, key)
	if keep && c.size <= s.maxBytes {
		s.done.Remove(key) // an outcome replaced is uncounted by the callback
		s.bytes += c.size
		if s.done.Add(key, c) {
			s.evicted.Add(1)
		}
		for s.bytes > s.maxBytes {
			if _, _, ok := s.done.RemoveOldest(); !ok {
				break
			}
			s.evicted.Add(1)
		}
	}
	s.sync()
	s.mu.Unlock()
	close(c.finished)
}

// wait returns the outcome of c, a call with the same key, once it is
// finished, or ctx's end first. A call whose caller set no deadline
// waits as long as the engine's limit on a call.
func (s *idempotency) wait(ctx context.Context, limit time.Duration, c *idemCall) (proto.Message, error) {
	select {
	case <-c.finished:
	default:
		timer := time.NewTimer(limit)
		defer timer.Stop()
		select {
		case <-c.finished:
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-timer.C:
			return nil, apierr.WithInfo(codes.DeadlineExceeded, "the first call with this request_id was still under way when this call's time ran out", apiv1.ErrorReason_UPSTREAM_TIMEOUT, 0).Err()
		}
	}
	if c.resp != nil {
		s.replayed.Add(1)
		return c.resp, nil
	}
	if c.unknown {
		s.unknown.Add(1)
	}
	return nil, c.err
}

// outcome is what a call with a request_id says of Opentact: whether it
// acted on the request.
type outcome int

const (
	// answered: Opentact acted, and its answer is the call's.
	answered outcome = iota
	// refused: Opentact never got the request (nothing was written) or
	// answered that it did not act (a 3xx, a 4xx, "success": false).
	refused
	// unknown: Opentact may have acted: the request may have reached it
	// and no answer says it did not (a timeout, a connection lost once
	// written, a 5xx, a 2xx the facade could not read).
	unknown
)

// outcomeOf judges a failed call by its error and whether any of it was
// written.
func outcomeOf(err error, written bool) outcome {
	if !written {
		return refused
	}
	if ue, ok := errors.AsType[*upstream.Error](err); ok {
		switch ue.Failure {
		case upstream.FailRejected:
			return refused
		case upstream.FailStatus:
			if ue.StatusCode < http.StatusInternalServerError {
				return refused
			}
		}
	}
	return unknown
}

// outcomeUnknown is the status a repeat of a call whose outcome is
// unknown gets; first is the status of that call.
func outcomeUnknown(first *status.Status) error {
	return apierr.WithInfo(codes.Aborted,
		"the first call with this request_id may or may not have reached Opentact (it ended with "+first.Code().String()+": "+first.Message()+"); nothing was sent again: find out whether it acted before sending the request with a new request_id",
		apiv1.ErrorReason_REQUEST_OUTCOME_UNKNOWN, 0).Err()
}

// ticket is a first call with a request_id, to be finished with its
// outcome.
type ticket struct {
	s    *idempotency
	key  credKey
	c    *idemCall
	done bool
}

// repeat looks up the call's request_id, id: a repeat of a call under way
// or finished within the window gets that call's outcome (or its caller's
// end first, if sooner), a request_id used for another request gets
// errRequestIDReused, and the first call of its key gets a ticket, to be
// finished once sent.
func (m *method) repeat(ctx context.Context, creds upstream.Credentials, msg proto.Message, id string) (proto.Message, *ticket, error) {
	e := m.e
	// The request as sent, less its request_id: the same request through
	// either door encodes alike.
	bare := proto.Clone(msg)
	bare.ProtoReflect().Clear(m.decl.RequestID)
	b, err := (proto.MarshalOptions{Deterministic: true}).Marshal(bare)
	if err != nil {
		return nil, nil, internalError()
	}
	method := []byte(m.decl.FullMethod)
	key := e.keys.key(creds, requestIDPart, method, []byte(id))
	c, first, err := e.idem.begin(key, e.keys.key(creds, requestPart, method, b))
	if err != nil {
		return nil, nil, err
	}
	if first {
		return nil, &ticket{s: e.idem, key: key, c: c}, nil
	}
	resp, err := e.idem.wait(ctx, e.timeouts.Limit(ctx), c)
	return resp, nil, err
}

// finish records the outcome of the ticket's call: its answer, or its
// failure err, judged by whether any of it was written. ctx is the
// call's context (its caller's end is not the call's).
func (t *ticket) finish(ctx context.Context, resp proto.Message, err error, written bool) {
	t.done = true
	if err == nil {
		t.s.finish(t.key, t.c, resp, nil, answered)
		return
	}
	o := outcomeOf(err, written)
	st := apierr.FromError(ctx, err)
	repeat := st.Err()
	if o == unknown {
		repeat = outcomeUnknown(st)
	}
	t.s.finish(t.key, t.c, nil, repeat, o)
}

// abandon finishes a call that ended without finish (a panic) as one
// whose outcome is unknown: its request may have been sent.
func (t *ticket) abandon() {
	if !t.done {
		t.done = true
		t.s.finish(t.key, t.c, nil, outcomeUnknown(status.New(codes.Internal, "internal error")), unknown)
	}
}
