// Package service implements the facade's RPCs. Every call passes one
// pipeline (Core.UnaryInterceptor): the caller's credentials, the request's
// validation, the call's deadline, request coalescing and the response
// cache as its method's Policy says, and the mapping of upstream failures
// to gRPC statuses. A handler then only maps its request to an Opentact
// call and the answer to its response.
package service

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"buf.build/go/protovalidate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

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

// Options are Core's optional settings.
type Options struct {
	// CacheTTL, when positive, keeps each successful answer of a method
	// whose Policy allows it for this long (or less, as the policy says).
	CacheTTL time.Duration
	// CacheMaxEntries bounds the cache (least recently used out first);
	// DefaultCacheMaxEntries if 0.
	CacheMaxEntries int
	// CacheMaxBytes bounds the cache by the size of its answers;
	// DefaultCacheMaxBytes if 0.
	CacheMaxBytes int64
}

// Core is what every RPC shares: the Opentact client and the pipeline.
type Core struct {
	upstream  *upstream.Client
	timeouts  Timeouts
	log       *slog.Logger
	keys      *keyer
	flights   flights
	cache     *cache // nil when off
	shared    atomic.Uint64
	validator protovalidate.Validator
	services  []Service
	serves    map[string]bool // the names of services: the pipeline applies to them alone
}

// NewCore returns the core of the facade's services, calling Opentact
// through client, its calls bounded by timeouts (zero fields take
// DefaultUpstreamTimeout and DefaultMaxCallTimeout). log may be nil.
func NewCore(client *upstream.Client, timeouts Timeouts, log *slog.Logger, o Options) (*Core, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	v, err := protovalidate.New()
	if err != nil {
		return nil, err
	}
	c := &Core{upstream: client, timeouts: timeouts.withDefaults(), log: log, keys: newKeyer(), validator: v, serves: map[string]bool{}}
	if o.CacheTTL > 0 {
		c.cache = newCache(o.CacheTTL, o.CacheMaxEntries, o.CacheMaxBytes)
	}
	c.services = services(c)
	for _, s := range c.services {
		c.serves[s.Desc.ServiceName] = true
	}
	return c, nil
}

// Counters are running totals for metrics.
type Counters struct {
	CacheHits, CacheMisses, CacheEvictions uint64
	CacheEntries                           int
	CacheBytes                             int64  // the size of the cached answers, as the byte bound counts it
	Shared                                 uint64 // calls answered by another call's request
}

// Counters returns the running totals.
func (c *Core) Counters() Counters {
	out := Counters{Shared: c.shared.Load()}
	if c.cache != nil {
		out.CacheHits, out.CacheMisses, out.CacheEvictions = c.cache.hits.Load(), c.cache.misses.Load(), c.cache.evicted.Load()
		out.CacheEntries = c.cache.lru.Len()
		out.CacheBytes = c.cache.bytes.Load()
	}
	return out
}

// CacheEnabled reports whether answers are cached.
func (c *Core) CacheEnabled() bool { return c.cache != nil }

// Timeouts are the bounds c puts on a call, defaults filled in.
func (c *Core) Timeouts() Timeouts { return c.timeouts }

type credentialsKey struct{}

// credentials returns the caller's credentials, which the pipeline put
// into the handler's context.
func credentials(ctx context.Context) upstream.Credentials {
	creds, _ := ctx.Value(credentialsKey{}).(upstream.Credentials)
	return creds
}

// UnaryInterceptor is the pipeline of every call to the services of
// Services (calls to other services, such as health, pass through
// untouched). It reads the credentials (never sending a call without
// one), validates the request (never sending an invalid one), bounds the
// call's time, shares and caches as the method's Policy says, and turns a
// failure into the call's status, logging it.
func (c *Core) UnaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if !c.serves[serviceOf(info.FullMethod)] {
		return handler(ctx, req)
	}
	// Key by key, rather than metadata.FromIncomingContext, which copies
	// all of the call's metadata first.
	creds, err := CredentialsFromHeaders(func(key string) []string {
		return metadata.ValueFromIncomingContext(ctx, key)
	})
	if err != nil {
		return nil, err
	}
	msg, ok := req.(proto.Message)
	if !ok {
		return nil, withInfo(codes.Internal, "internal error", ReasonInternalError, 0).Err()
	}
	if err := c.validate(msg); err != nil {
		return nil, err
	}
	p := policies[info.FullMethod]
	stats := upstream.StatsFrom(ctx)
	cache := c.cache
	if !p.Cache {
		cache = nil
	}
	var key credKey
	if p.Share || cache != nil {
		var b []byte // an empty request (GetAuth's) keys by method alone
		if proto.Size(msg) > 0 {
			if b, err = (proto.MarshalOptions{Deterministic: true}).Marshal(msg); err != nil {
				return nil, withInfo(codes.Internal, "internal error", ReasonInternalError, 0).Err()
			}
		}
		key = c.keys.key(creds, []byte(info.FullMethod), b)
	}
	if cache != nil {
		if resp, ok := cache.get(key); ok {
			if stats != nil {
				stats.Cached = true
			}
			return resp, nil
		}
	}
	if p.Revokes != nil && c.cache != nil {
		// Whatever the outcome: a failed revocation may still have
		// reached Opentact, and dropping an answer costs one request.
		defer func() {
			token, all := p.Revokes(msg)
			c.cache.revoke(c.tag(token), all)
		}()
	}
	uctx, cancel := context.WithTimeout(ctx, c.timeouts.Limit(ctx))
	defer cancel()
	uctx = context.WithValue(uctx, credentialsKey{}, creds)
	run := func(sctx context.Context) (proto.Message, error) {
		var since uint64
		if cache != nil {
			since = cache.revocations.Load()
		}
		resp, err := handler(sctx, req)
		if err != nil {
			return nil, err
		}
		m, _ := resp.(proto.Message)
		if p.Tells != nil && c.cache != nil {
			p.Tells(m, func(token string, expires time.Time) {
				c.cache.expire(c.tag(token), expires)
			})
		}
		if cache != nil {
			var expires time.Time
			if p.Expires != nil {
				expires = p.Expires(m)
			}
			cache.add(key, m, expires, c.tokenTag(creds), since)
		}
		return m, nil
	}
	var resp proto.Message
	if p.Share {
		var fstats upstream.Stats
		var shared bool
		resp, fstats, shared, err = c.flights.do(uctx, key, run)
		if shared && uctx.Err() == nil {
			c.shared.Add(1) // answered by the shared request, not gone before it
		}
		if stats != nil {
			*stats = fstats
			stats.Shared = shared
		}
	} else {
		if stats != nil {
			uctx = upstream.WithStats(uctx, stats)
		}
		resp, err = run(uctx)
	}
	if err != nil {
		return nil, c.failed(ctx, info.FullMethod, creds, err)
	}
	return resp, nil
}

// failed is the status of a call that failed, logged unless it was
// refused before Opentact was asked (the access log, rate limited, and the
// metrics tell those, without a warning per call of an overload).
func (c *Core) failed(ctx context.Context, method string, creds upstream.Credentials, err error) error {
	st := errorStatus(ctx, err)
	var ue *upstream.Error
	if errors.As(err, &ue) && ue.Failure == upstream.FailShed {
		return st.Err()
	}
	attrs := []slog.Attr{
		slog.String("method", method),
		slog.String("code", st.Code().String()),
		slog.Any("credentials", creds),
		slog.String("error", err.Error()),
	}
	if ue != nil {
		attrs = append(attrs, slog.Int("attempts", ue.Attempts))
	}
	c.log.LogAttrs(ctx, levelFor(st.Code()), "opentact call failed", attrs...)
	return st.Err()
}

// validate checks msg's text (textViolations: no control or bidi
// characters, bounded lengths, whatever the method) and the rules in its
// proto (protovalidate): a request that breaks one is InvalidArgument
// with a BadRequest naming each field, and is never sent.
func (c *Core) validate(msg proto.Message) error {
	violations := textViolations(msg.ProtoReflect())
	if err := c.validator.Validate(msg); err != nil {
		var verr *protovalidate.ValidationError
		if !errors.As(err, &verr) {
			return withInfo(codes.Internal, "internal error: the request could not be validated", ReasonInternalError, 0).Err()
		}
		for _, v := range verr.Violations {
			violations = append(violations, &errdetails.BadRequest_FieldViolation{
				Field:       protovalidate.FieldPathString(v.Proto.GetField()),
				Description: v.Proto.GetMessage(),
				Reason:      v.Proto.GetRuleId(),
			})
		}
	}
	if len(violations) == 0 {
		return nil
	}
	br := &errdetails.BadRequest{FieldViolations: violations}
	var fields []string
	for _, v := range br.FieldViolations {
		if !slices.Contains(fields, v.GetField()) {
			fields = append(fields, v.GetField())
		}
	}
	st := withInfo(codes.InvalidArgument, "invalid request: "+strings.Join(fields, ", "), ReasonInvalidRequest, 0)
	return withDetail(st, br).Err()
}

// tokenTag is the tag of the API token creds carry in Authorization
// (Bearer, or the bare token), zero if none: the key the cache indexes its
// answers by, for revocation.
func (c *Core) tokenTag(creds upstream.Credentials) credKey {
	v := creds.Value(upstream.Authorization)
	if v == "" {
		return credKey{}
	}
	if scheme, token, ok := strings.Cut(v, " "); ok {
		if !strings.EqualFold(scheme, "Bearer") {
			return credKey{}
		}
		v = strings.TrimSpace(token)
	}
	return c.tag(v)
}

// tag is the cache's key for an API token: the token alone, keyed.
func (c *Core) tag(token string) credKey { return c.keys.key(upstream.Credentials{}, []byte(token)) }

// serviceOf is the service of "/package.Service/Method".
func serviceOf(fullMethod string) string {
	s := strings.TrimPrefix(fullMethod, "/")
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		return s[:i]
	}
	return ""
}

// CredentialsFromHeaders reads the caller's credential headers through
// get, a lookup by header name such as metadata.MD.Get or
// http.Header.Values. Its error is a gRPC status: Unauthenticated when
// there is no credential at all, InvalidArgument for a malformed one
// (naming the header, never its value).
func CredentialsFromHeaders(get func(name string) []string) (upstream.Credentials, error) {
	creds, err := upstream.ParseCredentials(get)
	if err != nil {
		return upstream.Credentials{}, withInfo(codes.InvalidArgument, err.Error(), ReasonCredentialsMalformed, 0).Err()
	}
	if creds.Empty() {
		return upstream.Credentials{}, missingCredentials().Err()
	}
	return creds, nil
}

// levelFor logs the facade's and Opentact's own faults as warnings and the
// caller's (bad credentials, cancellation) at debug level.
func levelFor(c codes.Code) slog.Level {
	switch c {
	case codes.Internal, codes.Unavailable, codes.Unimplemented, codes.Unknown:
		return slog.LevelWarn
	}
	return slog.LevelDebug
}
