package rest

import (
	"context"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"strings"

	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// inProcess is the connection the REST gateway calls the services over: a
// grpc.ClientConnInterface that runs each call in the process, through
// the method's handler in its ServiceDesc and the same interceptors as a
// gRPC call, and under the gRPC server's stats handler (otelgrpc's server
// spans) when tracing is on. No transport and no encoding in between.
type inProcess struct {
	methods     map[string]inProcessMethod // by full method name
	interceptor grpc.UnaryServerInterceptor
	stats       stats.Handler // nil when tracing is off
}

type inProcessMethod struct {
	impl    any
	handler grpc.MethodHandler
}

var _ grpc.ClientConnInterface = (*inProcess)(nil)

func newInProcess(interceptors []grpc.UnaryServerInterceptor, sh stats.Handler) *inProcess {
	return &inProcess{methods: map[string]inProcessMethod{}, interceptor: chainUnary(interceptors), stats: sh}
}

// register adds the unary methods of a service.
func (p *inProcess) register(desc *grpc.ServiceDesc, impl any) {
	for _, m := range desc.Methods {
		p.methods["/"+desc.ServiceName+"/"+m.MethodName] = inProcessMethod{impl: impl, handler: m.Handler}
	}
}

// inMemoryNetwork is the network of a call's peer when the call came
// through the gateway.
const inMemoryNetwork = "inprocess"

// restPeer marks a call as one from the gateway; Client finds the REST
// client's own address in the X-Forwarded-For the gateway adds.
var restPeer = &peer.Peer{Addr: gatewayAddr{}}

type gatewayAddr struct{}

func (gatewayAddr) Network() string { return inMemoryNetwork }
func (gatewayAddr) String() string  { return "gateway" }

var _ net.Addr = gatewayAddr{}

// Invoke runs the call: the gateway's outgoing metadata becomes the
// call's incoming metadata, args is the request the handler sees, and
// the handler's answer is copied into reply.
func (p *inProcess) Invoke(ctx context.Context, method string, args, reply any, _ ...grpc.CallOption) error {
	m, ok := p.methods[method]
	if !ok {
		return status.Errorf(codes.Unimplemented, "unknown method %s", method)
	}
	markInvoked(ctx)
	md, _ := metadata.FromOutgoingContext(ctx)
	ctx = metadata.NewIncomingContext(ctx, md)
	ctx = peer.NewContext(ctx, restPeer)
	ctx = grpc.NewContextWithServerTransportStream(ctx, inProcessStream(method))
	var begin time.Time
	if p.stats != nil {
		ctx = p.stats.TagRPC(ctx, &stats.RPCTagInfo{FullMethodName: method})
		begin = time.Now()
		p.stats.HandleRPC(ctx, &stats.Begin{BeginTime: begin})
	}
	// The handler decodes into a request of its own; the interceptor hands
	// it args instead, which the gateway has already decoded.
	resp, err := m.handler(m.impl, ctx, func(any) error { return nil },
		func(ctx context.Context, _ any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			return p.interceptor(ctx, args, info, h)
		})
	if err != nil {
		// As grpc-go's server does with a handler's error: a context's
		// own error becomes Canceled or DeadlineExceeded.
		if _, ok := status.FromError(err); !ok {
			err = status.FromContextError(err).Err()
		}
	} else if out, ok := reply.(proto.Message); ok {
		err = shallowCopy(out.ProtoReflect(), resp.(proto.Message).ProtoReflect())
	}
	if p.stats != nil {
		p.stats.HandleRPC(ctx, &stats.End{BeginTime: begin, EndTime: time.Now(), Error: err})
	}
	return err
}

// shallowCopy sets dst's fields to src's, sharing their messages, lists
// and maps instead of copying them: after this the gateway only reads the
// answer, to marshal it, as grpc-go's server only reads what a handler
// returns, and an answer shared by coalesced calls or cached is never
// written to. A deep copy (proto.Merge) would allocate for every field of
// the profile.
func shallowCopy(dst, src protoreflect.Message) error {
	if dst.Descriptor() != src.Descriptor() {
		return status.Errorf(codes.Internal, "the handler answered %s, not %s", src.Descriptor().FullName(), dst.Descriptor().FullName())
	}
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		dst.Set(fd, v)
		return true
	})
	if u := src.GetUnknown(); len(u) > 0 {
		dst.SetUnknown(u)
	}
	return nil
}

// NewStream implements grpc.ClientConnInterface; no REST route is a
// streaming call.
func (p *inProcess) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, status.Error(codes.Unimplemented, "streaming calls are not served over REST")
}

// chainUnary is grpc.ChainUnaryInterceptor's order, built once: the first
// interceptor outermost.
func chainUnary(interceptors []grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		h := handler
		for i := len(interceptors) - 1; i >= 0; i-- {
			ic, next := interceptors[i], h
			h = func(ctx context.Context, req any) (any, error) { return ic(ctx, req, info, next) }
		}
		return h(ctx, req)
	}
}

// inProcessStream is the grpc.ServerTransportStream of an in-process
// call: grpc.Method works; headers and trailers set by a handler are
// dropped, as the gateway shows none to a REST caller.
type inProcessStream string

func (s inProcessStream) Method() string             { return string(s) }
func (inProcessStream) SetHeader(metadata.MD) error  { return nil }
func (inProcessStream) SendHeader(metadata.MD) error { return nil }
func (inProcessStream) SetTrailer(metadata.MD) error { return nil }

// Client returns the address of the REST client behind a call that came
// through the gateway: the last X-Forwarded-For entry, which the gateway
// itself appended from the TCP peer (earlier entries are whatever the
// client sent, and are not trusted). ok is false for a gRPC call.
func Client(ctx context.Context) (addr string, ok bool) {
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
