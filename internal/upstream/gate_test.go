package upstream

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// seeded is a gate of n slots whose estimate of Opentact's answer time is
// est, as if one request had taken that long.
func seeded(t *testing.T, n int, est time.Duration) *gate {
	t.Helper()
	g := newGate(n, nil)
	release, err := g.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	release(est)
	return g
}

func shedReason(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Failure == FailShed {
		return e.ShedReason
	}
	return ""
}

// acquireIn starts acquire in a goroutine with a deadline d from now.
func acquireIn(g *gate, d time.Duration) <-chan error {
	out := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		release, err := g.acquire(ctx)
		if err == nil {
			release(0)
		}
		out <- err
	}()
	return out
}

func TestGateBoundsRequestsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate(2, nil)
		r1, err1 := g.acquire(context.Background())
		r2, err2 := g.acquire(context.Background())
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		third := make(chan struct{})
		go func() {
			release, err := g.acquire(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			close(third)
			release(0)
		}()
		synctest.Wait()
		select {
		case <-third:
			t.Fatal("a third request got a slot while two were in flight")
		default:
		}
		if busy, waiting, _ := g.state(); busy != 2 || waiting != 1 {
			t.Errorf("state: %d busy, %d waiting; want 2, 1", busy, waiting)
		}
		r1(0)
		synctest.Wait()
		select {
		case <-third:
		default:
			t.Fatal("the waiting request did not get the freed slot")
		}
		r2(0)
		if busy, waiting, _ := g.state(); busy != 0 || waiting != 0 {
			t.Errorf("at the end: %d busy, %d waiting", busy, waiting)
		}
	})
}

// TestGateShedsWhatCannotBeAnsweredInTime: with Opentact answering in 1s
// and the one slot busy, a call with 1.5s left would wait about 1s and
// need 1s more: it is refused at once, with a hint; one with 3s left
// waits and gets the slot.
func TestGateShedsWhatCannotBeAnsweredInTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := seeded(t, 1, time.Second)
		release, err := g.acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		short := <-acquireIn(g, 1500*time.Millisecond)
		if shedReason(short) != ShedQueue {
			t.Fatalf("a call with 1.5s left behind a busy slot: %v, want shed %s", short, ShedQueue)
		}
		if waited := time.Since(start); waited != 0 {
			t.Errorf("the refusal took %v, want none", waited)
		}
		var e *Error
		errors.As(short, &e)
		if e.RetryAfter < minRetryHint || e.Estimate != time.Second {
			t.Errorf("RetryAfter %v, Estimate %v; want at least %v and 1s", e.RetryAfter, e.Estimate, minRetryHint)
		}

		long := acquireIn(g, 3*time.Second)
		synctest.Wait()
		time.Sleep(time.Second) // the request in flight takes its second
		release(time.Second)
		if err := <-long; err != nil {
			t.Errorf("a call with 3s left: %v, want the slot", err)
		}
	})
}

// TestGateShedsDeadlinesShorterThanAnAnswer: a slot is free, but the call
// has less time left than Opentact takes: no request. With nothing in
// flight the call goes anyway, as a probe of Opentact's speed.
func TestGateShedsDeadlinesShorterThanAnAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := seeded(t, 4, time.Second)
		if err := <-acquireIn(g, 500*time.Millisecond); err != nil {
			t.Fatalf("with nothing in flight (a probe): %v, want a slot", err)
		}
		release, err := g.acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer release(0)
		if err := <-acquireIn(g, 500*time.Millisecond); shedReason(err) != ShedDeadline {
			t.Errorf("500ms left, 1s answers, one in flight: %v, want shed %s", err, ShedDeadline)
		}
		if err := <-acquireIn(g, 2*time.Second); err != nil {
			t.Errorf("2s left: %v, want a slot", err)
		}
	})
}

// TestGateCallerGoneLeavesTheLine: a caller that goes while in line is
// out of it; the freed slot goes to the next one, in order.
func TestGateCallerGoneLeavesTheLine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate(1, nil)
		release, _ := g.acquire(context.Background())
		gone, cancel := context.WithCancel(context.Background())
		goneErr := make(chan error, 1)
		go func() {
			_, err := g.acquire(gone)
			goneErr <- err
		}()
		synctest.Wait()
		order := make(chan int, 2)
		for i := 1; i <= 2; i++ {
			go func() {
				r, err := g.acquire(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				order <- i
				r(0)
			}()
			synctest.Wait()
		}
		cancel()
		if err := <-goneErr; shedReason(err) != ShedCallerGone {
			t.Errorf("the caller that went: %v, want shed %s", err, ShedCallerGone)
		}
		if _, waiting, _ := g.state(); waiting != 2 {
			t.Errorf("%d in line, want 2", waiting)
		}
		release(0)
		if a, b := <-order, <-order; a != 1 || b != 2 {
			t.Errorf("slots went to %d then %d, want 1 then 2", a, b)
		}
	})
}

// TestGateRejudgesAfterTheWait: a call that waited while Opentact slowed
// down is judged again when its slot comes.
func TestGateRejudgesAfterTheWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := seeded(t, 2, 100*time.Millisecond)
		r1, _ := g.acquire(context.Background())
		r2, _ := g.acquire(context.Background())
		waiter := acquireIn(g, time.Second)
		synctest.Wait()
		time.Sleep(400 * time.Millisecond)
		r1(5 * time.Second) // Opentact got slow: the estimate jumps
		if err := <-waiter; shedReason(err) != ShedDeadline {
			t.Errorf("after the estimate grew past the time left: %v, want shed %s", err, ShedDeadline)
		}
		r2(0)
		if busy, waiting, _ := g.state(); busy != 0 || waiting != 0 {
			t.Errorf("at the end: %d busy, %d waiting", busy, waiting)
		}
	})
}

func TestGateEstimateIsAnEWMA(t *testing.T) {
	g := seeded(t, 1, time.Second)
	for range 50 {
		r, _ := g.acquire(context.Background())
		r(100 * time.Millisecond)
	}
	if _, _, est := g.state(); est < 95*time.Millisecond || est > 110*time.Millisecond {
		t.Errorf("estimate after 50 answers of 100ms: %v", est)
	}
	r, _ := g.acquire(context.Background())
	r(0) // says nothing of Opentact's speed
	if _, _, est := g.state(); est > 110*time.Millisecond {
		t.Errorf("a request without a duration moved the estimate to %v", est)
	}
}
