package server

import (
	"context"
	"net"
	"strings"
	"unicode"

	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/telemetry"
)

// localAuth is what the REST gateway calls: the AuthService run in the
// process, through the same unary interceptors as a gRPC call (access
// log, metrics, recovery) and, when tracing is on, under a server span
// like otelgrpc's. It replaces a gRPC hop over an in-memory connection,
// which cost a second gRPC client and server transport per REST call
// (BenchmarkGetAuth/rest-grpc-hop against BenchmarkGetAuth/rest measures
// the two).
type localAuth struct {
	authv1.UnimplementedAuthServiceServer
	getAuth grpc.UnaryHandler // the service behind the interceptors
	tracer  trace.Tracer      // nil when tracing is off
}

// restPeer marks a call as one from the gateway; restClient finds the
// REST client's own address in the X-Forwarded-For the gateway adds.
var restPeer = &peer.Peer{Addr: gatewayAddr{}}

type gatewayAddr struct{}

func (gatewayAddr) Network() string { return inMemoryNetwork }
func (gatewayAddr) String() string  { return "gateway" }

var _ net.Addr = gatewayAddr{}

func newLocalAuth(srv authv1.AuthServiceServer, interceptors []grpc.UnaryServerInterceptor, tp trace.TracerProvider) *localAuth {
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: authv1.AuthService_GetAuth_FullMethodName}
	h := grpc.UnaryHandler(func(ctx context.Context, req any) (any, error) {
		return srv.GetAuth(ctx, req.(*authv1.GetAuthRequest))
	})
	// Built once: the first interceptor outermost, as grpc.ChainUnaryInterceptor does.
	for i := len(interceptors) - 1; i >= 0; i-- {
		ic, next := interceptors[i], h
		h = func(ctx context.Context, req any) (any, error) { return ic(ctx, req, info, next) }
	}
	l := &localAuth{getAuth: h}
	if tp != nil {
		l.tracer = tp.Tracer("github.com/opentact-facade/opentact-facade/internal/server")
	}
	return l
}

// GetAuth implements authv1.AuthServiceServer.
func (l *localAuth) GetAuth(ctx context.Context, req *authv1.GetAuthRequest) (*authv1.GetAuthResponse, error) {
	ctx = peer.NewContext(ctx, restPeer)
	var span trace.Span
	if l.tracer != nil {
		ctx, span = l.startSpan(ctx)
	}
	resp, err := l.getAuth(ctx, req)
	if err != nil {
		// As grpc-go's server does with a handler's error: a context's
		// own error becomes Canceled or DeadlineExceeded.
		if _, ok := status.FromError(err); !ok {
			err = status.FromContextError(err).Err()
		}
	}
	if span != nil {
		endSpan(span, status.Convert(err))
	}
	if err != nil {
		return nil, err
	}
	return resp.(*authv1.GetAuthResponse), nil
}

// startSpan starts the server span of a REST call, under the trace
// context the REST client sent (the gateway passes traceparent and
// tracestate on as metadata), named and attributed as otelgrpc names a
// gRPC call's.
func (l *localAuth) startSpan(ctx context.Context) (context.Context, trace.Span) {
	md, _ := metadata.FromIncomingContext(ctx)
	ctx = telemetry.Propagator().Extract(ctx, metadataCarrier(md))
	name := strings.TrimPrefix(authv1.AuthService_GetAuth_FullMethodName, "/")
	return l.tracer.Start(ctx, name,
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("rpc.system.name", "grpc"),
			attribute.String("rpc.method", name),
		),
	)
}

// endSpan records the call's code as otelgrpc does: an error status only
// for the codes that are the server's fault.
func endSpan(span trace.Span, st *status.Status) {
	span.SetAttributes(attribute.String("rpc.response.status_code", canonicalCode(st.Code())))
	switch st.Code() {
	case codes.Unknown, codes.DeadlineExceeded, codes.Unimplemented, codes.Internal, codes.Unavailable, codes.DataLoss:
		span.SetStatus(otelcodes.Error, st.Message())
	}
	span.End()
}

// canonicalCode is a code's name as gRPC's specification spells it
// (INVALID_ARGUMENT for InvalidArgument).
func canonicalCode(c codes.Code) string {
	if c == codes.OK {
		return "OK"
	}
	s := c.String()
	var b strings.Builder
	for i, r := range s {
		if i > 0 && unicode.IsUpper(r) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

// metadataCarrier reads trace context from incoming gRPC metadata.
type metadataCarrier metadata.MD

var _ propagation.TextMapCarrier = metadataCarrier(nil)

func (c metadataCarrier) Get(key string) string {
	if v := metadata.MD(c).Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (metadataCarrier) Set(string, string) {}

func (c metadataCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
