package server_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/opentact-facade/opentact-facade/internal/faultupstream"
	"github.com/opentact-facade/opentact-facade/internal/server"
)

// TestCallerGivingUpReachesTheUpstream: when a caller cancels, or its
// deadline passes, or a REST client hangs up, the facade's request to
// Opentact is cancelled: the upstream (hanging, never answering) sees its
// connection go, rather than the request running on until
// --upstream-timeout, here an hour, far beyond the wait for the
// disconnect. A request shared by identical calls ends with the last of
// its callers.
func TestCallerGivingUpReachesTheUpstream(t *testing.T) {
	t.Parallel()
	h := http.Header{"Authorization": {basic("gives-up@example.com", "pw")}}
	setup := func(t *testing.T) (*facade, *faultupstream.Server) {
		up := startFaultUpstream(t)
		f := startFacade(t, up.URL(), func(o *server.Options) { o.UpstreamTimeout, o.MaxCallTimeout = time.Hour, time.Hour })
		warmUp(t, f, up)
		up.SetFault(faultupstream.Hang)
		return f, up
	}
	// finishedCode waits for the facade's access-log line of the GetAuth
	// call and returns its code.
	finishedCode := func(t *testing.T, f *facade) any {
		t.Helper()
		var code any
		waitFor(t, "the facade to log the call", func() bool {
			for _, l := range f.logs.lines("finished call") {
				if l["grpc.method"] == "GetAuth" && l["grpc.code"] != "Unauthenticated" { // not the warm-up
					code = l["grpc.code"]
					return true
				}
			}
			return false
		})
		return code
	}

	t.Run("grpc caller cancels", func(t *testing.T) {
		t.Parallel()
		f, up := setup(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan outcome, 1)
		go func() { done <- grpcCall(ctx, f, h) }()
		waitFor(t, "the request to reach the upstream", func() bool { return up.Requests() == 1 })
		cancel()
		took := waitDisconnects(t, up, 1)
		t.Logf("the upstream saw the connection go %v after the cancel", took.Round(time.Millisecond))
		if msg := wrongAnswer(<-done, h, codes.Canceled, "", false); msg != "" {
			t.Error(msg)
		}
		if got := finishedCode(t, f); got != "Canceled" {
			t.Errorf("the facade logged %v, want Canceled", got)
		}
	})

	t.Run("rest caller's Grpc-Timeout passes", func(t *testing.T) {
		t.Parallel()
		f, up := setup(t)
		rh := h.Clone()
		rh.Set("Grpc-Timeout", "300m")
		o, err := restCall(context.Background(), f.http, f, rh)
		if err != nil {
			t.Fatal(err)
		}
		if o.httpCode != http.StatusGatewayTimeout {
			t.Errorf("HTTP status %d, want 504", o.httpCode)
		}
		if msg := wrongAnswer(o, h, codes.DeadlineExceeded, "", true); msg != "" {
			t.Error(msg)
		}
		// A 504 within f.http's 10s is the Grpc-Timeout's: the facade's
		// own bound is an hour.
		if o.elapsed < 300*time.Millisecond {
			t.Errorf("took %v, want the 300ms Grpc-Timeout", o.elapsed)
		}
		took := waitDisconnects(t, up, 1)
		t.Logf("504 after %v; the upstream saw the connection go %v later", o.elapsed.Round(time.Millisecond), took.Round(time.Millisecond))
	})

	t.Run("rest client hangs up", func(t *testing.T) {
		t.Parallel()
		f, up := setup(t)
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		errc := make(chan error, 1)
		go func() {
			_, err := restCall(ctx, client, f, h)
			errc <- err
		}()
		waitFor(t, "the request to reach the upstream", func() bool { return up.Requests() == 1 })
		cancel() // the client closes its connection to the facade
		took := waitDisconnects(t, up, 1)
		t.Logf("the upstream saw the connection go %v after the REST client hung up", took.Round(time.Millisecond))
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("client: %v, want its own cancellation", err)
		}
		if got := finishedCode(t, f); got != "Canceled" {
			t.Errorf("the facade logged %v, want Canceled", got)
		}
	})

	// Identical calls (same credentials) under way together share one
	// upstream request; it ends when the last of its callers gives up,
	// not when the first does.
	t.Run("a shared request ends with its last caller", func(t *testing.T) {
		t.Parallel()
		f, up := setup(t)
		ctxA, cancelA := context.WithCancel(context.Background())
		defer cancelA()
		ctxB, cancelB := context.WithCancel(context.Background())
		defer cancelB()
		doneA, doneB := make(chan outcome, 1), make(chan outcome, 1)
		go func() { doneA <- grpcCall(ctxA, f, h) }()
		waitFor(t, "the request to reach the upstream", func() bool { return up.Requests() == 1 })
		go func() { doneB <- grpcCall(ctxB, f, h) }()
		time.Sleep(200 * time.Millisecond)
		if n := up.Requests(); n != 1 {
			t.Fatalf("%d requests for two identical calls at once, want them to share one", n)
		}
		cancelA()
		if msg := wrongAnswer(<-doneA, h, codes.Canceled, "", false); msg != "" {
			t.Errorf("first caller: %s", msg)
		}
		time.Sleep(200 * time.Millisecond)
		if n := up.Disconnects(); n != 0 {
			t.Fatalf("the upstream saw the request go when the first of its two callers cancelled")
		}
		cancelB()
		waitDisconnects(t, up, 1)
		if msg := wrongAnswer(<-doneB, h, codes.Canceled, "", false); msg != "" {
			t.Errorf("second caller: %s", msg)
		}
		if n := up.Requests(); n != 1 {
			t.Errorf("%d requests in all, want 1", n)
		}
	})
}
