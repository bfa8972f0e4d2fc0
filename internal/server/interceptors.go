package server

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/opentact-facade/opentact-facade/internal/apierr"
	"github.com/opentact-facade/opentact-facade/internal/rest"
	"github.com/opentact-facade/opentact-facade/internal/telemetry"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// The interceptors every call passes, REST calls included (the gateway
// calls the service through them), outermost first:
//
//   - admission: an admitted gRPC stream keeps its place while its
//     handler runs (see admitter);
//   - the access log: one line when the call ends, with what the call did
//     upstream (the service fills a per-call upstream.Stats); the lines a
//     client can cause in floods (calls it cancelled, calls refused) are
//     rate limited;
//   - the Prometheus server metrics (go-grpc-middleware);
//   - the end of the shutdown grace: a call still running then ends with
//     Unavailable (FACADE_SHUTTING_DOWN), so that its caller gets a status
//     rather than a cut connection;
//   - recovery from a panic into Internal (go-grpc-middleware), so one bad
//     call cannot take the process down; the log and metrics outside it
//     record the recovered code.
//
// The handler inside them all is the engine's (internal/engine): its
// pipeline reads the credentials, validates, bounds the deadline, shares
// and caches by the method's declaration, and maps a failure to a status.
//
// The access log is our own rather than go-grpc-middleware's logging
// interceptor, which builds its fields on every call even when the level
// leaves nothing to write. The field names are the same.
//
// No request, response or metadata is logged: they hold credentials.

func (s *Server) unaryInterceptors() []grpc.UnaryServerInterceptor {
	return []grpc.UnaryServerInterceptor{
		s.admit.unaryInterceptor,
		func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			start := time.Now()
			stats := &upstream.Stats{}
			resp, err := handler(upstream.WithStats(ctx, stats), req)
			s.logCall(ctx, info.FullMethod, "unary", start, err, stats)
			return resp, err
		},
		s.metrics.GRPC.UnaryServerInterceptor(),
		s.endAtGrace,
		recovery.UnaryServerInterceptor(recovery.WithRecoveryHandlerContext(panicHandler(s.log))),
	}
}

func (s *Server) streamInterceptors() []grpc.StreamServerInterceptor {
	return []grpc.StreamServerInterceptor{
		s.admit.streamInterceptor,
		func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			start := time.Now()
			err := handler(srv, ss)
			kind := "bidi_stream"
			switch {
			case info.IsServerStream && !info.IsClientStream:
				kind = "server_stream"
			case info.IsClientStream && !info.IsServerStream:
				kind = "client_stream"
			}
			s.logCall(ss.Context(), info.FullMethod, kind, start, err, nil)
			return err
		},
		s.metrics.GRPC.StreamServerInterceptor(),
		recovery.StreamServerInterceptor(recovery.WithRecoveryHandlerContext(panicHandler(s.log))),
	}
}

// errShuttingDown is the cause with which the server ends the calls still
// running at the end of its shutdown grace.
var errShuttingDown = errors.New("the facade is shutting down")

// endAtGrace ends the call, with Unavailable and FACADE_SHUTTING_DOWN,
// when the shutdown grace runs out before it does: whatever the handler
// made of its context's end, this is the call's status.
func (s *Server) endAtGrace(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(s.endCalls, func() { cancel(errShuttingDown) })
	defer stop()
	resp, err := handler(ctx, req)
	if err != nil && errors.Is(context.Cause(ctx), errShuttingDown) {
		s.metrics.Shed(telemetry.ShedShutdown)
		return nil, apierr.ShuttingDown()
	}
	return resp, err
}

// codeLevel is the access line's level: the caller's own faults at info,
// the facade's and Opentact's at warn or error.
func codeLevel(c codes.Code) slog.Level {
	switch c {
	case codes.OK, codes.NotFound, codes.Canceled, codes.AlreadyExists, codes.InvalidArgument, codes.Unauthenticated:
		return slog.LevelInfo
	case codes.DeadlineExceeded, codes.PermissionDenied, codes.ResourceExhausted, codes.FailedPrecondition, codes.Aborted,
		codes.OutOfRange, codes.Unavailable:
		return slog.LevelWarn
	}
	return slog.LevelError
}

// logCall writes the "finished call" line, if its level is enabled: the
// method, code and duration, the peer (for a REST call, the REST client's
// address and "transport":"rest"), what the call did upstream (status,
// attempts, whether it shared another call's request, was a cache hit or
// replayed the answer to an earlier call with its request_id),
// and the trace id.
func (s *Server) logCall(ctx context.Context, fullMethod, kind string, start time.Time, err error, st *upstream.Stats) {
	code := status.Code(err)
	level := codeLevel(code)
	log := s.log
	if !log.Enabled(ctx, level) {
		return
	}
	var suppressed int64
	if code == codes.Canceled || st != nil && st.Shed != "" {
		// A client can cause these by the thousand a second (a rapid
		// reset, an overload): they are rate limited.
		ok, n := s.sampler.Allow()
		if !ok {
			return
		}
		suppressed = n
	}
	service, method := splitMethod(fullMethod)
	attrs := make([]slog.Attr, 0, 20)
	attrs = append(attrs,
		slog.String("protocol", "grpc"),
		slog.String("grpc.component", "server"),
		slog.String("grpc.service", service),
		slog.String("grpc.method", method),
		slog.String("grpc.method_type", kind),
	)
	transport := "grpc"
	if addr, ok := rest.Client(ctx); ok {
		transport = "rest"
		attrs = append(attrs, slog.String("peer.address", addr))
	} else if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		attrs = append(attrs, slog.String("peer.address", p.Addr.String()))
	}
	attrs = append(attrs, slog.String("transport", transport), slog.String("grpc.start_time", start.Format(time.RFC3339)))
	if d, ok := ctx.Deadline(); ok {
		attrs = append(attrs, slog.String("grpc.request.deadline", d.Format(time.RFC3339)))
	}
	attrs = append(attrs,
		slog.String("grpc.code", code.String()),
		slog.String("grpc.time_ms", strconv.FormatFloat(float64(time.Since(start).Microseconds())/1000, 'f', 3, 64)),
	)
	if err != nil {
		// Status messages never hold a credential: see service/errors.go.
		attrs = append(attrs, slog.String("grpc.error", status.Convert(err).Message()))
	}
	if st != nil {
		if st.Attempts > 0 {
			attrs = append(attrs, slog.Int("upstream.status", st.Status), slog.Int("upstream.attempts", st.Attempts))
		}
		if st.Shared {
			attrs = append(attrs, slog.Bool("upstream.shared", true))
		}
		if st.Cached {
			attrs = append(attrs, slog.String("cache", "hit"))
		}
		if st.Replayed {
			attrs = append(attrs, slog.String("idempotency", "replayed"))
		}
		if st.Shed != "" {
			attrs = append(attrs, slog.String("shed", st.Shed))
		}
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()))
	}
	if suppressed > 0 {
		attrs = append(attrs, slog.Int64("suppressed", suppressed))
	}
	log.LogAttrs(ctx, level, "finished call", attrs...)
}

// splitMethod splits "/package.Service/Method".
func splitMethod(full string) (service, method string) {
	full = strings.TrimPrefix(full, "/")
	if i := strings.LastIndexByte(full, '/'); i >= 0 {
		return full[:i], full[i+1:]
	}
	return "unknown", full
}

func panicHandler(log *slog.Logger) recovery.RecoveryHandlerFuncContext {
	return func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "panic in call", slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
		return status.Error(codes.Internal, "internal error")
	}
}
