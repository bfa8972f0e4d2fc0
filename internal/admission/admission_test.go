package admission_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/opentact-facade/opentact-facade/internal/admission"
)

func TestAdmitIsBoundedAndNeverWaits(t *testing.T) {
	l := admission.New(2, 1<<20)
	a, okA := l.Admit()
	b, okB := l.Admit()
	if !okA || !okB {
		t.Fatal("the first two calls were refused")
	}
	if _, ok := l.Admit(); ok {
		t.Fatal("a third call was admitted past the bound of 2")
	}
	if n := l.InFlight(); n != 2 {
		t.Errorf("InFlight %d, want 2", n)
	}
	a.Done()
	a.Done() // a second Done gives nothing back
	if n := l.InFlight(); n != 1 {
		t.Errorf("after Done twice: InFlight %d, want 1", n)
	}
	if _, ok := l.Admit(); !ok {
		t.Error("a call was refused after one ended")
	}
	b.Done()
}

// TestChargeHoldsBytesUntilDone: the bytes charged to calls in flight stay
// within the budget; a call past it waits for another to end, within its
// own time.
func TestChargeHoldsBytesUntilDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := admission.New(10, 100)
		a, _ := l.Admit()
		b, _ := l.Admit()
		ctxA := admission.NewContext(context.Background(), a)
		if err := admission.Charge(ctxA, 60); err != nil {
			t.Fatal(err)
		}
		if got := l.BytesHeld(); got != 60 {
			t.Errorf("BytesHeld %d, want 60", got)
		}
		short, cancel := context.WithTimeout(admission.NewContext(context.Background(), b), time.Second)
		defer cancel()
		if err := admission.Charge(short, 50); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("50 more bytes past a budget of 100 with 60 held: %v, want the call's deadline", err)
		}
		got := make(chan error, 1)
		go func() { got <- admission.Charge(admission.NewContext(context.Background(), b), 50) }()
		synctest.Wait()
		select {
		case err := <-got:
			t.Fatalf("the charge went through with the budget full: %v", err)
		default:
		}
		a.Done()
		if err := <-got; err != nil {
			t.Fatal(err)
		}
		if got := l.BytesHeld(); got != 50 {
			t.Errorf("after a's end: BytesHeld %d, want 50", got)
		}
		b.Done()
		if got := l.BytesHeld(); got != 0 {
			t.Errorf("after both ended: BytesHeld %d, want 0", got)
		}
		// What a call that has ended reads is not held for it.
		if err := b.Charge(context.Background(), 80); err != nil || l.BytesHeld() != 0 {
			t.Errorf("a charge after Done: %v, %d bytes held", err, l.BytesHeld())
		}
	})
}

func TestChargeWithoutACallIsUnbounded(t *testing.T) {
	if err := admission.Charge(context.Background(), 1<<40); err != nil {
		t.Error(err)
	}
}
