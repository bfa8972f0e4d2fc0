package rest

import (
	"context"
	"io"
	"net"
	"sync"
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
	streams     map[string]inProcessStreamMethod
	interceptor grpc.UnaryServerInterceptor
	streamChain grpc.StreamServerInterceptor
	stats       stats.Handler // nil when tracing is off
}

type inProcessStreamMethod struct {
	impl    any
	handler grpc.StreamHandler
	info    *grpc.StreamServerInfo
}

type inProcessMethod struct {
	impl    any
	handler grpc.MethodHandler
}

var _ grpc.ClientConnInterface = (*inProcess)(nil)

func newInProcess(interceptors []grpc.UnaryServerInterceptor, streams []grpc.StreamServerInterceptor, sh stats.Handler) *inProcess {
	return &inProcess{
		methods: map[string]inProcessMethod{}, streams: map[string]inProcessStreamMethod{},
		interceptor: chainUnary(interceptors), streamChain: chainStream(streams), stats: sh,
	}
}

// register adds the methods of a service: unary ones, and streams of the
// server's (a REST caller gets grpc-gateway's streamed JSON).
func (p *inProcess) register(desc *grpc.ServiceDesc, impl any) {
	for _, m := range desc.Methods {
		p.methods["/"+desc.ServiceName+"/"+m.MethodName] = inProcessMethod{impl: impl, handler: m.Handler}
	}
	for _, st := range desc.Streams {
		if st.ServerStreams && !st.ClientStreams {
			full := "/" + desc.ServiceName + "/" + st.StreamName
			p.streams[full] = inProcessStreamMethod{impl: impl, handler: st.Handler,
				info: &grpc.StreamServerInfo{FullMethod: full, IsServerStream: true}}
		}
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

// NewStream runs a server-streaming call in the process: the gateway's
// request, once sent, starts the handler, under the server's stream
// interceptors, on a goroutine of its own; each message it sends is
// handed over to the gateway's RecvMsg, one at a time, so that nothing
// queues between them.
func (p *inProcess) NewStream(ctx context.Context, _ *grpc.StreamDesc, method string, _ ...grpc.CallOption) (grpc.ClientStream, error) {
	m, ok := p.streams[method]
	if !ok {
		return nil, status.Errorf(codes.Unimplemented, "unknown method %s", method)
	}
	markInvoked(ctx)
	md, _ := metadata.FromOutgoingContext(ctx)
	sctx := metadata.NewIncomingContext(ctx, md)
	sctx = peer.NewContext(sctx, restPeer)
	sctx = grpc.NewContextWithServerTransportStream(sctx, inProcessStream(method))
	sctx, cancel := context.WithCancel(sctx)
	return &inProcessClientStream{p: p, m: m, ctx: ctx, sctx: sctx, cancel: cancel,
		out: make(chan any), done: make(chan struct{}), headers: make(chan struct{})}, nil
}

// inProcessClientStream is the gateway's side of an in-process stream,
// and its server side (inProcessServerStream) the handler's.
type inProcessClientStream struct {
	p      *inProcess
	m      inProcessStreamMethod
	ctx    context.Context // the gateway's
	sctx   context.Context // the handler's
	cancel context.CancelFunc
	req    any
	out    chan any      // the handler's messages
	done   chan struct{} // closed when the handler has returned
	err    error         // its status, once done is closed
	// headers is closed when the handler sends its headers or returns:
	// as a gRPC client's Header, the gateway's waits for it, so that a
	// stream refused at once is an HTTP error status, not a 200.
	headers     chan struct{}
	headersOnce sync.Once
}

func (c *inProcessClientStream) sendHeaders() { c.headersOnce.Do(func() { close(c.headers) }) }

func (c *inProcessClientStream) Header() (metadata.MD, error) {
	<-c.headers
	select {
	case <-c.done:
		if c.err != nil {
			return nil, c.err
		}
	default:
	}
	return nil, nil
}
func (c *inProcessClientStream) Trailer() metadata.MD     { return nil }
func (c *inProcessClientStream) Context() context.Context { return c.ctx }

func (c *inProcessClientStream) SendMsg(m any) error {
	if c.req != nil {
		return status.Error(codes.Internal, "one request per server-streaming call")
	}
	c.req = m
	return nil
}

// CloseSend starts the handler.
func (c *inProcessClientStream) CloseSend() error {
	ss := &inProcessServerStream{ctx: c.sctx, req: c.req, out: c.out, sendHeaders: c.sendHeaders}
	go func() {
		defer c.sendHeaders()
		defer close(c.done)
		defer c.cancel()
		err := c.p.streamChain(c.m.impl, ss, c.m.info, c.m.handler)
		if _, ok := status.FromError(err); !ok {
			err = status.FromContextError(err).Err()
		}
		c.err = err
	}()
	// The handler ends with the gateway's request.
	context.AfterFunc(c.ctx, c.cancel)
	return nil
}

func (c *inProcessClientStream) RecvMsg(m any) error {
	select {
	case msg := <-c.out:
		out, ok := m.(proto.Message)
		if !ok {
			return status.Error(codes.Internal, "not a message")
		}
		return shallowCopy(out.ProtoReflect(), msg.(proto.Message).ProtoReflect())
	case <-c.done:
		if c.err != nil {
			return c.err
		}
		return io.EOF
	}
}

// inProcessServerStream is the grpc.ServerStream an in-process stream's
// handler sees.
type inProcessServerStream struct {
	ctx         context.Context
	req         any
	read        bool
	out         chan<- any
	sendHeaders func()
}

func (s *inProcessServerStream) SetHeader(metadata.MD) error { return nil }
func (s *inProcessServerStream) SendHeader(metadata.MD) error {
	s.sendHeaders()
	return nil
}
func (s *inProcessServerStream) SetTrailer(metadata.MD)   {}
func (s *inProcessServerStream) Context() context.Context { return s.ctx }

func (s *inProcessServerStream) RecvMsg(m any) error {
	if s.read || s.req == nil {
		return io.EOF
	}
	s.read = true
	dst, ok1 := m.(proto.Message)
	src, ok2 := s.req.(proto.Message)
	if !ok1 || !ok2 {
		return status.Error(codes.Internal, "not a message")
	}
	proto.Merge(dst, src)
	return nil
}

// SendMsg hands m to the gateway; the gateway only reads it.
func (s *inProcessServerStream) SendMsg(m any) error {
	s.sendHeaders()
	select {
	case s.out <- m:
		return nil
	case <-s.ctx.Done():
		return status.FromContextError(s.ctx.Err()).Err()
	}
}

// chainStream is chainUnary for stream interceptors.
func chainStream(interceptors []grpc.StreamServerInterceptor) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		h := handler
		for i := len(interceptors) - 1; i >= 0; i-- {
			ic, next := interceptors[i], h
			h = func(srv any, ss grpc.ServerStream) error { return ic(srv, ss, info, next) }
		}
		return h(srv, ss)
	}
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
