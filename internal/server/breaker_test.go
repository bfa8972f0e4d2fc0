package server_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	apiv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/api/v1"
	"github.com/opentact-facade/opentact-facade/internal/faultupstream"
	"github.com/opentact-facade/opentact-facade/internal/server"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// waitBreaker waits for the breaker to be in state.
func waitBreaker(t *testing.T, s *server.Server, state string) {
	t.Helper()
	waitFor(t, "the breaker to be "+state, func() bool { return s.BreakerState() == state })
}

// TestBreakerOpensOnUnavailabilityAndProbes drives the breaker through its
// whole cycle end to end: Failures unavailability failures in a row open
// it; while open, calls fail with UPSTREAM_CIRCUIT_OPEN, RetryInfo
// (Retry-After over REST) and no request; after OpenFor one probe goes
// through (a second call meanwhile is still refused); a failed probe opens
// it again, a successful one closes it.
//
// The breaker reads the wall clock, so its open state is checked on a
// breaker open for an hour, and the cycle on one open for 2s: long enough
// for the one call checked right after a failed probe on a loaded machine,
// short enough to wait for twice.
func TestBreakerOpensOnUnavailabilityAndProbes(t *testing.T) {
	t.Parallel()
	h := http.Header{"Authorization": {basic("breaker@example.com", "pw")}}
	ctx := context.Background()
	// start returns a facade whose breaker opens for openFor after 3
	// failures, and the checks of a call's outcome against it.
	start := func(t *testing.T, openFor time.Duration) (f *facade, s *server.Server, up *faultupstream.Server,
		want func(string, outcome, codes.Code, string, int64, bool), wantOpen func(string, outcome, int64, bool)) {
		up = startFaultUpstream(t)
		f, s = startFacadeServer(t, up.URL(), func(o *server.Options) {
			o.Breaker = &upstream.BreakerPolicy{Failures: 3, OpenFor: openFor}
			o.UpstreamMaxAttempts = 1
		})
		warmUp(t, f, up)
		want = func(what string, o outcome, code codes.Code, reason string, requests int64, rest bool) {
			t.Helper()
			if msg := wrongAnswer(o, h, code, reason, rest); msg != "" {
				t.Errorf("%s: %s", what, msg)
			}
			if got := up.Requests(); got != requests {
				t.Errorf("%s: the upstream saw %d requests in all, want %d", what, got, requests)
			}
		}
		wantOpen = func(what string, o outcome, requests int64, rest bool) {
			t.Helper()
			want(what, o, codes.Unavailable, apiv1.ErrorReason_UPSTREAM_CIRCUIT_OPEN.String(), requests, rest)
			if got := retryInfo(o.st); got != openFor {
				t.Errorf("%s: RetryInfo %v, want the %v the breaker stays open", what, got, openFor)
			}
		}
		up.SetFault(faultupstream.Unavailable)
		for i := range 3 {
			if s.BreakerState() != "closed" {
				t.Fatalf("breaker %s after %d failures, want closed until 3", s.BreakerState(), i)
			}
			want("failure "+strconv.Itoa(i+1), grpcCall(ctx, f, h), codes.Unavailable, apiv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(), int64(i+1), false)
		}
		if got := s.BreakerState(); got != "open" {
			t.Fatalf("breaker %s after 3 failures in a row, want open", got)
		}
		return f, s, up, want, wantOpen
	}

	t.Run("open", func(t *testing.T) {
		t.Parallel()
		f, _, up, _, wantOpen := start(t, time.Hour)
		// Opentact would now hang: a call let through would not end
		// with UPSTREAM_CIRCUIT_OPEN.
		up.SetFault(faultupstream.Hang)
		wantOpen("grpc while open", grpcCall(ctx, f, h), 3, false)
		o, err := restCall(ctx, f.http, f, h)
		if err != nil {
			t.Fatal(err)
		}
		wantOpen("rest while open", o, 3, true)
		if got := o.header.Get("Retry-After"); got != "3600" {
			t.Errorf("rest while open: Retry-After %q, want 3600", got)
		}
	})

	t.Run("cycle", func(t *testing.T) {
		t.Parallel()
		const openFor = 2 * time.Second
		f, s, up, want, wantOpen := start(t, openFor)
		opened := time.Now()

		// After OpenFor: half-open. A failed probe opens it again at once.
		waitBreaker(t, s, "half-open")
		if since := time.Since(opened); since < openFor-100*time.Millisecond {
			t.Errorf("half-open %v after opening, want after %v", since, openFor)
		}
		want("failed probe", grpcCall(ctx, f, h), codes.Unavailable, apiv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(), 4, false)
		if got := s.BreakerState(); got != "open" {
			t.Fatalf("breaker %s after a failed probe, want open", got)
		}
		wantOpen("grpc after a failed probe", grpcCall(ctx, f, h), 4, false)

		// Half-open again: one probe at a time. A call while the probe is
		// in flight is refused without a request; had it waited for the
		// probe, it would have been answered, the breaker closed by then.
		waitBreaker(t, s, "half-open")
		up.SetFault(faultupstream.Delay)
		up.SetDelay(500 * time.Millisecond)
		probe := make(chan outcome, 1)
		go func() { probe <- grpcCall(ctx, f, h) }()
		waitFor(t, "the probe to reach the upstream", func() bool { return up.Requests() == 5 })
		// Other credentials: a call with the probe's own would share its
		// request rather than ask the breaker.
		other := http.Header{"Authorization": {basic("breaker-other@example.com", "pw")}}
		o := grpcCall(ctx, f, other)
		if msg := wrongAnswer(o, other, codes.Unavailable, apiv1.ErrorReason_UPSTREAM_CIRCUIT_OPEN.String(), false); msg != "" {
			t.Errorf("grpc while the probe is in flight: %s", msg)
		}
		if got := retryInfo(o.st); got != openFor {
			t.Errorf("grpc while the probe is in flight: RetryInfo %v, want %v", got, openFor)
		}
		if got := up.Requests(); got != 5 {
			t.Errorf("grpc while the probe is in flight: the upstream saw %d requests in all, want 5", got)
		}
		want("successful probe", <-probe, codes.OK, "", 5, false)
		if got := s.BreakerState(); got != "closed" {
			t.Fatalf("breaker %s after a successful probe, want closed", got)
		}

		up.SetFault(faultupstream.OK)
		want("grpc after closing", grpcCall(ctx, f, h), codes.OK, "", 6, false)
		o, err := restCall(ctx, f.http, f, h)
		if err != nil {
			t.Fatal(err)
		}
		want("rest after closing", o, codes.OK, "", 7, true)
	})
}

// TestBreakerIgnoresAnswersAndAbandonedCalls: answers to bad credentials
// (and Opentact's other answers that are not unavailability) and calls the
// caller gave up on never open the breaker, however many in a row: so one
// caller's wrong password, or impatient callers, cannot cut everyone off.
func TestBreakerIgnoresAnswersAndAbandonedCalls(t *testing.T) {
	t.Parallel()
	breaker := func(o *server.Options) {
		o.Breaker = &upstream.BreakerPolicy{Failures: 3, OpenFor: time.Minute}
		o.UpstreamMaxAttempts = 1
	}
	// afterwards checks that the breaker is closed and a good call goes
	// through to the upstream.
	afterwards := func(t *testing.T, f *facade, s *server.Server, up *faultupstream.Server) {
		t.Helper()
		if got := s.BreakerState(); got != "closed" {
			t.Errorf("breaker %s, want closed", got)
		}
		before := up.Requests()
		h := http.Header{"X-Auth-Token": {"fault:ok:after"}}
		if msg := wrongAnswer(grpcCall(context.Background(), f, h), h, codes.OK, "", false); msg != "" {
			t.Errorf("a good call afterwards: %s", msg)
		}
		if up.Requests() != before+1 {
			t.Errorf("a good call afterwards made %d requests, want 1", up.Requests()-before)
		}
	}

	t.Run("401 and other answers", func(t *testing.T) {
		t.Parallel()
		up := startFaultUpstream(t)
		f, s := startFacadeServer(t, up.URL(), breaker)
		warmUp(t, f, up)
		var calls int64
		check := func(fault faultupstream.Fault, n int, code codes.Code, reason string) {
			t.Helper()
			for i := range n {
				h := http.Header{"X-Auth-Token": {"fault:" + string(fault) + ":" + strconv.Itoa(i)}}
				var o outcome
				rest := i%5 == 4
				if rest {
					var err error
					if o, err = restCall(context.Background(), f.http, f, h); err != nil {
						t.Fatal(err)
					}
				} else {
					o = grpcCall(context.Background(), f, h)
				}
				calls++
				if msg := wrongAnswer(o, h, code, reason, rest); msg != "" {
					t.Fatalf("%s call %d: %s", fault, i, msg)
				}
			}
			if got := up.Requests(); got != calls {
				t.Errorf("after the %s calls: %d requests, want %d (one per call: the breaker never refused one)", fault, got, calls)
			}
		}
		check(faultupstream.Unauthorized, 50, codes.Unauthenticated, apiv1.ErrorReason_UNAUTHORIZED.String())
		check(faultupstream.InternalError, 5, codes.Internal, apiv1.ErrorReason_UPSTREAM_INTERNAL_ERROR.String())
		check(faultupstream.BrokenJSON, 5, codes.Internal, apiv1.ErrorReason_UPSTREAM_MALFORMED_RESPONSE.String())
		check(faultupstream.HTML200, 5, codes.Internal, apiv1.ErrorReason_UPSTREAM_MALFORMED_RESPONSE.String())
		check(faultupstream.Redirect, 5, codes.Internal, apiv1.ErrorReason_UPSTREAM_REDIRECT.String())
		check(faultupstream.Huge, 5, codes.Internal, apiv1.ErrorReason_UPSTREAM_RESPONSE_TOO_LARGE.String())
		afterwards(t, f, s, up)
	})

	t.Run("callers giving up", func(t *testing.T) {
		t.Parallel()
		up := startFaultUpstream(t)
		f, s := startFacadeServer(t, up.URL(), breaker)
		warmUp(t, f, up)
		up.SetFault(faultupstream.Hang)
		// Each call has credentials of its own: on a loaded machine a
		// call can reach the facade while the one before it is still
		// under way there and join (share) it, and would then be cut at
		// that request's deadline, a little before its own, as an
		// UPSTREAM_TIMEOUT rather than the caller's own deadline.
		creds := func(who string, i int) http.Header {
			return http.Header{"Authorization": {basic(who+"-"+strconv.Itoa(i)+"@example.com", "pw")}}
		}
		const deadlines, cancels = 10, 5
		for i := range deadlines {
			h := creds("deadline", i)
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			o := grpcCall(ctx, f, h)
			cancel()
			if msg := wrongAnswer(o, h, codes.DeadlineExceeded, "", false); msg != "" {
				t.Fatalf("deadline %d: %s", i, msg)
			}
		}
		h := creds("rest", 0)
		rh := h.Clone()
		rh.Set("Grpc-Timeout", "100m")
		o, err := restCall(context.Background(), f.http, f, rh)
		if err != nil {
			t.Fatal(err)
		}
		if msg := wrongAnswer(o, h, codes.DeadlineExceeded, "", true); msg != "" {
			t.Fatalf("rest deadline: %s", msg)
		}
		for i := range cancels {
			h := creds("cancel", i)
			ctx, cancel := context.WithCancel(context.Background())
			n := up.Requests() + 1
			done := make(chan outcome, 1)
			go func() { done <- grpcCall(ctx, f, h) }()
			waitFor(t, "the call to reach the upstream", func() bool { return up.Requests() >= n })
			cancel()
			if msg := wrongAnswer(<-done, h, codes.Canceled, "", false); msg != "" {
				t.Fatalf("cancel %d: %s", i, msg)
			}
		}
		// A call whose deadline passed before its request went out (on a
		// loaded machine) reached nothing; the others reached the upstream
		// once each, far more than the 3 that would open the breaker, and
		// every one of them was cut, none left hanging.
		n := up.Requests()
		if n < 3+cancels || n > deadlines+1+cancels {
			t.Fatalf("%d requests for %d abandoned calls, want at least %d and one per call at most", n, deadlines+1+cancels, 3+cancels)
		}
		waitDisconnects(t, up, n)
		afterwards(t, f, s, up)
	})
}
