// Package engine serves every declared Opentact call from its declaration
// in the proto (see package declare): one generic gRPC handler per method,
// and one pipeline for all of them. A call passes the caller's
// credentials, the request's validation, the call's deadline, request
// coalescing, the response cache and the request_id store as its
// declaration says, then one
// request to Opentact built from the request's fields, and Opentact's
// payload decoded straight into the response message (package codec).
// Behaviour no declaration can say is a Hooks value, by method name.
package engine

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"buf.build/go/protovalidate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/opentact-facade/opentact-facade/internal/declare"
	"github.com/opentact-facade/opentact-facade/internal/defaults"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// Defaults for Timeouts fields left zero.
const (
	DefaultUpstreamTimeout = defaults.UpstreamTimeout
	DefaultMaxCallTimeout  = defaults.MaxCallTimeout
)

// Timeouts bound a call, all its upstream attempts included.
type Timeouts struct {
	// Default bounds a call whose caller set no deadline.
	Default time.Duration
	// Max caps a caller's deadline: a caller may shorten a call, not
	// stretch it past this. Never below Default.
	Max time.Duration
}

// Limit is how long a call starting now may last, whatever the
// caller's own deadline: Max when ctx has one (a caller may shorten a
// call, not stretch it past Max), Default when it has none.
func (t Timeouts) Limit(ctx context.Context) time.Duration {
	if _, ok := ctx.Deadline(); ok {
		return t.Max
	}
	return t.Default
}

// withDefaults fills zero fields (see defaults.CallTimeouts).
func (t Timeouts) withDefaults() Timeouts {
	t.Default, t.Max = defaults.CallTimeouts(t.Default, t.Max)
	return t
}

// Options are the engine's settings.
type Options struct {
	// Timeouts bound each call; zero fields take the defaults.
	Timeouts Timeouts
	// Log receives a line per failed call; nil discards them.
	Log *slog.Logger
	// CacheTTL, when positive, keeps each successful answer of a method
	// that declares cache for this long (or less, as its hooks say).
	CacheTTL time.Duration
	// CacheMaxEntries bounds the cache (least recently used out first);
	// DefaultCacheMaxEntries if 0.
	CacheMaxEntries int
	// CacheMaxBytes bounds the cache by the size of its answers;
	// DefaultCacheMaxBytes if 0.
	CacheMaxBytes int64
	// IdempotencyMaxEntries and IdempotencyMaxBytes bound the request_id
	// store (least recently used out first), as the cache's bounds do;
	// DefaultIdempotencyMaxEntries and DefaultIdempotencyMaxBytes if 0.
	IdempotencyMaxEntries int
	IdempotencyMaxBytes   int64
	// Now is the request_id store's clock; time.Now if nil.
	Now func() time.Time
	// Streams are the handlers of the server-streaming methods, which no
	// declaration can serve, by full method name. Each such method of a
	// served service needs one.
	Streams map[string]grpc.StreamHandler
	// Local are the handlers of the unary methods that are no Opentact
	// call (declare.Local), by full method name: the facade answers them
	// itself, after validating the request. Each such method of a served
	// service needs one.
	Local map[string]LocalHandler
}

// LocalHandler answers a local method's valid request.
type LocalHandler func(ctx context.Context, req proto.Message) (proto.Message, error)

// Engine serves the declared calls of its services.
type Engine struct {
	client    *upstream.Client
	timeouts  Timeouts
	log       *slog.Logger
	keys      *keyer
	flights   flights
	cache     *cache // nil when off
	idem      *idempotency
	shared    atomic.Uint64
	validator protovalidate.Validator
	services  []declare.Service
	descs     []*grpc.ServiceDesc
	methods   map[string]*method // by full method name
}

// New returns an engine serving services through client. hooks attach
// behaviour to methods by full method name ("/package.Service/Method");
// it is an error for a hook to name a method that is not served, and for
// a method to lack a piece of its declaration.
func New(client *upstream.Client, services []declare.Service, hooks map[string]declare.Hooks, o Options) (*Engine, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	v, err := protovalidate.New()
	if err != nil {
		return nil, err
	}
	e := &Engine{
		client:    client,
		timeouts:  o.Timeouts.withDefaults(),
		log:       o.Log,
		keys:      newKeyer(),
		idem:      newIdempotency(o.IdempotencyMaxEntries, o.IdempotencyMaxBytes, o.Now),
		validator: v,
		services:  services,
		methods:   map[string]*method{},
	}
	if o.CacheTTL > 0 {
		e.cache = newCache(o.CacheTTL, o.CacheMaxEntries, o.CacheMaxBytes)
	}
	streams, locals := map[string]bool{}, map[string]bool{}
	for _, s := range services {
		sd, err := s.Descriptor()
		if err != nil {
			return nil, err
		}
		calls, err := declare.Methods(sd)
		if err != nil {
			return nil, err
		}
		desc := &grpc.ServiceDesc{
			ServiceName: string(sd.FullName()),
			// Any value serves: every method's handler is the engine's.
			HandlerType: (*any)(nil),
			Metadata:    sd.ParentFile().Path(),
		}
		for _, c := range declare.Streams(sd) {
			h := o.Streams[c.FullMethod]
			if h == nil {
				return nil, fmt.Errorf("%s streams and has no upstream declaration: it needs a stream handler", c.FullMethod)
			}
			streams[c.FullMethod] = true
			desc.Streams = append(desc.Streams, grpc.StreamDesc{StreamName: string(c.Method.Name()), Handler: h, ServerStreams: true})
		}
		for _, c := range declare.Locals(sd) {
			h := o.Local[c.FullMethod]
			if h == nil {
				return nil, fmt.Errorf("%s has no upstream declaration: it needs a local handler", c.FullMethod)
			}
			req, err := protoregistry.GlobalTypes.FindMessageByName(c.Method.Input().FullName())
			if err != nil {
				return nil, err
			}
			locals[c.FullMethod] = true
			// Validated as a declared call's request is, then answered.
			serve := func(ctx context.Context, msg proto.Message) (proto.Message, error) {
				if err := e.validate(msg); err != nil {
					return nil, err
				}
				return h(ctx, msg)
			}
			desc.Methods = append(desc.Methods, grpc.MethodDesc{MethodName: string(c.Method.Name()), Handler: e.unaryHandler(c.FullMethod, req, serve)})
		}
		for _, c := range calls {
			m, err := e.newMethod(c, hooks[c.FullMethod])
			if err != nil {
				return nil, err
			}
			e.methods[c.FullMethod] = m
			desc.Methods = append(desc.Methods, grpc.MethodDesc{MethodName: string(c.Method.Name()), Handler: e.unaryHandler(c.FullMethod, m.request, m.serve)})
		}
		e.descs = append(e.descs, desc)
	}
	for name := range hooks {
		if e.methods[name] == nil {
			return nil, fmt.Errorf("hooks for %s, which is not a served method", name)
		}
	}
	for name := range o.Streams {
		if !streams[name] {
			return nil, fmt.Errorf("a stream handler for %s, which is not a served streaming method", name)
		}
	}
	for name := range o.Local {
		if !locals[name] {
			return nil, fmt.Errorf("a local handler for %s, which is not a served local method", name)
		}
	}
	return e, nil
}

// Call runs the declared method fullMethod for req under ctx's incoming
// credentials, as a caller's call would be run (validated, shared, cached
// as declared, its failure a status): for the facade's own use of a call,
// such as the events stream's GetAuth.
func (e *Engine) Call(ctx context.Context, fullMethod string, req proto.Message) (proto.Message, error) {
	m := e.methods[fullMethod]
	if m == nil {
		return nil, status.Errorf(codes.Unimplemented, "%s is not served", fullMethod)
	}
	return m.serve(ctx, req)
}

// Services are the served services.
func (e *Engine) Services() []declare.Service { return e.services }

// ServiceDescs describe the served services for a grpc.Server (or the
// REST gateway's in-process connection), each to be registered with the
// engine as its implementation.
func (e *Engine) ServiceDescs() []*grpc.ServiceDesc { return e.descs }

// Counters are running totals for metrics.
type Counters struct {
	CacheHits, CacheMisses, CacheEvictions uint64
	CacheEntries                           int
	CacheBytes                             int64  // the size of the cached answers, as the byte bound counts it
	Shared                                 uint64 // calls answered by another call's request

	// Calls with a request_id: sent to Opentact as the first of their
	// key, answered with the first call's answer, told that the first
	// call's outcome is unknown, and refused for reusing a request_id.
	IdempotencyFirst, IdempotencyReplayed, IdempotencyUnknown, IdempotencyConflicts uint64
	IdempotencyEvictions                                                            uint64
	IdempotencyEntries                                                              int
	IdempotencyBytes                                                                int64 // as --idempotency-max-bytes counts them
}

// Counters returns the running totals.
func (e *Engine) Counters() Counters {
	out := Counters{Shared: e.shared.Load()}
	s := e.idem
	out.IdempotencyFirst, out.IdempotencyReplayed = s.first.Load(), s.replayed.Load()
	out.IdempotencyUnknown, out.IdempotencyConflicts = s.unknown.Load(), s.conflicts.Load()
	out.IdempotencyEvictions = s.evicted.Load()
	out.IdempotencyEntries, out.IdempotencyBytes = int(s.entries.Load()), s.size.Load()
	if e.cache != nil {
		out.CacheHits, out.CacheMisses, out.CacheEvictions = e.cache.hits.Load(), e.cache.misses.Load(), e.cache.evicted.Load()
		out.CacheEntries = e.cache.lru.Len()
		out.CacheBytes = e.cache.bytes.Load()
	}
	return out
}

// CacheEnabled reports whether answers are cached.
func (e *Engine) CacheEnabled() bool { return e.cache != nil }

// Timeouts are the bounds the engine puts on a call, defaults filled in.
func (e *Engine) Timeouts() Timeouts { return e.timeouts }

// unaryHandler is the grpc.MethodDesc handler of a unary method, declared
// or local: it decodes the request into a new message of type req and
// answers it with serve, under the server's interceptors.
func (e *Engine) unaryHandler(fullMethod string, req protoreflect.MessageType, serve func(context.Context, proto.Message) (proto.Message, error)) grpc.MethodHandler {
	info := &grpc.UnaryServerInfo{Server: e, FullMethod: fullMethod}
	unary := func(ctx context.Context, r any) (any, error) {
		msg, ok := r.(proto.Message)
		if !ok {
			return nil, internalError()
		}
		return serve(ctx, msg)
	}
	return func(_ any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
		r := req.New().Interface()
		if err := dec(r); err != nil {
			return nil, err
		}
		if ic == nil {
			return unary(ctx, r)
		}
		return ic(ctx, r, info, unary)
	}
}

// Validate checks msg as a declared call's request is checked: its
// protovalidate rules and the generic text rules, failing with
// INVALID_ARGUMENT and its field violations.
func (e *Engine) Validate(msg proto.Message) error { return e.validate(msg) }
