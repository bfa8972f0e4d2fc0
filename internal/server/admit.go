package server

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/tap"

	"github.com/opentact-facade/opentact-facade/internal/admission"
	"github.com/opentact-facade/opentact-facade/internal/apierr"
	"github.com/opentact-facade/opentact-facade/internal/logs"
	"github.com/opentact-facade/opentact-facade/internal/telemetry"
)

// busyRetryAfter is the RetryInfo (Retry-After on REST) of a call turned
// away because the facade has as many calls in flight as it admits.
const busyRetryAfter = time.Second

// admitter lets calls in, over both doors, up to the Limiter's bound:
// a gRPC stream in grpc-go's transport (its tap handle, which runs before
// a handler goroutine exists for the stream), a REST call before the
// gateway. A call past the bound is refused at once with Unavailable,
// FACADE_BUSY and RetryInfo (REST: 503 and Retry-After), without reaching
// the service.
type admitter struct {
	limiter        *admission.Limiter
	requestTimeout time.Duration
	metrics        *telemetry.Metrics
	log            *slog.Logger
	sampler        *logs.Sampler // refusals come in floods: their lines are rate limited
	busy           error
}

func newAdmitter(l *admission.Limiter, requestTimeout time.Duration, m *telemetry.Metrics, log *slog.Logger, sampler *logs.Sampler) *admitter {
	return &admitter{limiter: l, requestTimeout: requestTimeout, metrics: m, log: log, sampler: sampler, busy: apierr.Busy(busyRetryAfter)}
}

// streamState is what the tap handle leaves in an admitted stream's
// context. The stream's place is given back once both its context has
// ended (the stream is over, or was reset) and its handler, if one ran,
// has returned: a handler still running after a reset holds memory too.
type streamState struct {
	call    *admission.Call
	refs    atomic.Int32 // the context's reference, and the handler's while it runs
	request *time.Timer  // ends a stream whose request message does not come
}

type streamStateKey struct{}

// tap is the gRPC server's InTapHandle. It runs on the connection's
// reading goroutine, under the transport's lock: it must be quick.
func (a *admitter) tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	call, ok := a.limiter.Admit()
	if !ok {
		a.refused(ctx, "grpc", info.FullMethodName)
		return nil, a.busy
	}
	st := &streamState{call: call}
	st.refs.Store(1)
	ctx, cancel := context.WithCancel(ctx)
	st.request = time.AfterFunc(a.requestTimeout, func() {
		a.metrics.Shed(telemetry.ShedRequestTimeout)
		cancel()
	})
	context.AfterFunc(ctx, func() {
		st.request.Stop()
		st.unref()
	})
	ctx = admission.NewContext(ctx, call)
	return context.WithValue(ctx, streamStateKey{}, st), nil
}

// ref marks the stream's handler as running; it reports false if the
// stream's place is already given back.
func (st *streamState) ref() bool {
	for {
		n := st.refs.Load()
		if n == 0 {
			return false
		}
		if st.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (st *streamState) unref() {
	if st.refs.Add(-1) == 0 {
		st.call.Done()
	}
}

// unaryInterceptor holds an admitted stream's place while its handler
// runs. (REST calls, admitted by restHandler, have no streamState.)
func (a *admitter) unaryInterceptor(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if st, _ := ctx.Value(streamStateKey{}).(*streamState); st != nil {
		st.request.Stop() // the request message is here
		if st.ref() {
			defer st.unref()
		}
	}
	return handler(ctx, req)
}

// streamInterceptor is unaryInterceptor for streaming calls, whose
// request messages come after the handler starts: the first one stops
// the request timer.
func (a *admitter) streamInterceptor(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	st, _ := ss.Context().Value(streamStateKey{}).(*streamState)
	if st == nil {
		return handler(srv, ss)
	}
	if st.ref() {
		defer st.unref()
	}
	return handler(srv, &firstMessageStream{ServerStream: ss, request: st.request})
}

// firstMessageStream stops the request timer when a message arrives.
type firstMessageStream struct {
	grpc.ServerStream
	request *time.Timer
}

func (s *firstMessageStream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if err == nil {
		s.request.Stop()
	}
	return err
}

// restHandler admits a REST call before next (the gateway) sees it, and
// holds its place until next returns, the answer written.
func (a *admitter) restHandler(mux *runtime.ServeMux, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		call, ok := a.limiter.Admit()
		if !ok {
			a.refused(r.Context(), "rest", r.Method+" "+r.URL.Path)
			_, out := runtime.MarshalerForRequest(mux, r)
			runtime.HTTPError(r.Context(), mux, out, w, r, a.busy)
			return
		}
		defer call.Done()
		next.ServeHTTP(w, r.WithContext(admission.NewContext(r.Context(), call)))
	})
}

// refused counts a call turned away and logs it, rate limited.
func (a *admitter) refused(ctx context.Context, transport, method string) {
	a.metrics.Shed(telemetry.ShedInFlight)
	a.sampler.Log(ctx, a.log, slog.LevelWarn, "call refused: too many calls in flight",
		slog.String("transport", transport), slog.String("method", logs.Truncate(method, 200)),
		slog.Int64("max_in_flight", a.limiter.Max()))
}
