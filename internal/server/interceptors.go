package server

import (
	"context"
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/opentact-facade/opentact-facade/internal/telemetry"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// The interceptors every call passes, REST calls included (the gateway
// calls the gRPC server), outermost first:
//
//   - a per-call upstream.Stats, which the service fills and the access
//     log reads;
//   - one access-log line when the call ends;
//   - the Prometheus server metrics;
//   - recovery from a panic into Internal, so one bad call cannot take the
//     process down; the log and metrics outside it record the recovered
//     code.
//
// No request, response or metadata is logged: they hold credentials.

func unaryInterceptors(log *slog.Logger, m *telemetry.Metrics) []grpc.UnaryServerInterceptor {
	return []grpc.UnaryServerInterceptor{
		func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			return handler(upstream.WithStats(ctx, &upstream.Stats{}), req)
		},
		logging.UnaryServerInterceptor(accessLogger(log), logging.WithLogOnEvents(logging.FinishCall)),
		m.GRPC.UnaryServerInterceptor(),
		recovery.UnaryServerInterceptor(recovery.WithRecoveryHandlerContext(panicHandler(log))),
	}
}

func streamInterceptors(log *slog.Logger, m *telemetry.Metrics) []grpc.StreamServerInterceptor {
	return []grpc.StreamServerInterceptor{
		logging.StreamServerInterceptor(accessLogger(log), logging.WithLogOnEvents(logging.FinishCall)),
		m.GRPC.StreamServerInterceptor(),
		recovery.StreamServerInterceptor(recovery.WithRecoveryHandlerContext(panicHandler(log))),
	}
}

// accessLogger writes go-grpc-middleware's lines through slog, adding to
// the line that ends a call what the call did upstream (status, attempts,
// whether it shared another call's request or was a cache hit), its trace
// id, and, for a REST call, the REST client's address and
// "transport":"rest".
func accessLogger(log *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		if !log.Enabled(ctx, slog.Level(lvl)) {
			return
		}
		transport := "grpc"
		if addr, ok := restClient(ctx); ok {
			transport = "rest"
			for i := 0; i+1 < len(fields); i += 2 {
				if fields[i] == "peer.address" {
					fields[i+1] = addr
				}
			}
		}
		fields = append(fields, "transport", transport)
		if st := upstream.StatsFrom(ctx); st != nil {
			if st.Attempts > 0 {
				fields = append(fields, "upstream.status", st.Status, "upstream.attempts", st.Attempts)
			}
			if st.Shared {
				fields = append(fields, "upstream.shared", true)
			}
			if st.Cached {
				fields = append(fields, "cache", "hit")
			}
		}
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			fields = append(fields, "trace_id", sc.TraceID().String())
		}
		log.Log(ctx, slog.Level(lvl), msg, fields...)
	})
}

// restClient returns the address of the REST client behind a call that
// came through the gateway: the last X-Forwarded-For entry, which the
// gateway itself appended from the TCP peer (earlier entries are whatever
// the client sent, and are not trusted).
func restClient(ctx context.Context) (string, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil || p.Addr.Network() != inMemoryNetwork {
		return "", false
	}
	md, _ := metadata.FromIncomingContext(ctx)
	xff := md.Get("x-forwarded-for")
	if len(xff) == 0 {
		return "", true
	}
	last := xff[len(xff)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	return strings.TrimSpace(last), true
}

func panicHandler(log *slog.Logger) recovery.RecoveryHandlerFuncContext {
	return func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "panic in call", slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
		return status.Error(codes.Internal, "internal error")
	}
}
