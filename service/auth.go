// Package service implements the facade's RPCs: credentials come in as
// gRPC metadata, go out to Opentact through the upstream client, and the
// answer comes back as proto messages or a gRPC status.
package service

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// Defaults for Timeouts fields left zero.
const (
	DefaultUpstreamTimeout = 10 * time.Second
	DefaultMaxCallTimeout  = 30 * time.Second
)

// Timeouts bound a call, all its upstream attempts included.
type Timeouts struct {
	// Default bounds a call whose caller set no deadline.
	Default time.Duration
	// Max caps a caller's deadline: a caller may shorten a call, not
	// stretch it past this. Never below Default.
	Max time.Duration
}

// AuthServer implements opentact.auth.v1.AuthService.
type AuthServer struct {
	authv1.UnimplementedAuthServiceServer

	upstream *upstream.Client
	timeouts Timeouts
	log      *slog.Logger
	keys     *keyer
	flights  flights
	cache    *cache // nil when off
	shared   atomic.Uint64
}

// Options are AuthServer's optional settings.
type Options struct {
	// CacheTTL, when positive, keeps each successful answer for this
	// long (or until its JWT expires, if sooner), by credentials.
	CacheTTL time.Duration
	// CacheMaxEntries bounds the cache (least recently used out first);
	// DefaultCacheMaxEntries if 0.
	CacheMaxEntries int
	// CacheMaxBytes bounds the cache by the size of its answers;
	// DefaultCacheMaxBytes if 0.
	CacheMaxBytes int64
}

// NewAuthServer returns an AuthService backed by client, its calls bounded
// by timeouts (zero fields take DefaultUpstreamTimeout and
// DefaultMaxCallTimeout). log may be nil.
//
// Identical calls under way at the same time (same credentials) share one
// request to Opentact; with opts.CacheTTL, answers are also kept.
func NewAuthServer(client *upstream.Client, timeouts Timeouts, log *slog.Logger, opts ...Options) *AuthServer {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if timeouts.Default <= 0 {
		timeouts.Default = DefaultUpstreamTimeout
	}
	if timeouts.Max <= 0 {
		timeouts.Max = max(DefaultMaxCallTimeout, timeouts.Default)
	}
	timeouts.Max = max(timeouts.Max, timeouts.Default)
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &AuthServer{upstream: client, timeouts: timeouts, log: log, keys: newKeyer()}
	if o.CacheTTL > 0 {
		s.cache = newCache(o.CacheTTL, o.CacheMaxEntries, o.CacheMaxBytes)
	}
	return s
}

// Counters are running totals for metrics.
type Counters struct {
	CacheHits, CacheMisses, CacheEvictions uint64
	CacheEntries                           int
	CacheBytes                             int64  // the size of the cached answers, as the byte bound counts it
	Shared                                 uint64 // calls answered by another call's request
}

// Counters returns the running totals.
func (s *AuthServer) Counters() Counters {
	c := Counters{Shared: s.shared.Load()}
	if s.cache != nil {
		c.CacheHits, c.CacheMisses, c.CacheEvictions = s.cache.hits.Load(), s.cache.misses.Load(), s.cache.evicted.Load()
		c.CacheEntries = s.cache.lru.Len()
		c.CacheBytes = s.cache.bytes.Load()
	}
	return c
}

// CacheEnabled reports whether answers are cached.
func (s *AuthServer) CacheEnabled() bool { return s.cache != nil }

// Limit is how long a call starting now may last, whatever the
// caller's own deadline: Max when ctx has one (a caller may shorten a
// call, not stretch it past Max), Default when it has none.
func (t Timeouts) Limit(ctx context.Context) time.Duration {
	if _, ok := ctx.Deadline(); ok {
		return t.Max
	}
	return t.Default
}

// Timeouts are the bounds s puts on a call, defaults filled in.
func (s *AuthServer) Timeouts() Timeouts { return s.timeouts }

// bound gives ctx the call's deadline: the caller's, capped at
// timeouts.Max, or timeouts.Default when the caller set none.
func (s *AuthServer) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeouts.Limit(ctx))
}

// GetAuth forwards the caller's credentials to Opentact's GET /rest/auth
// and returns the user it answers with.
func (s *AuthServer) GetAuth(ctx context.Context, _ *authv1.GetAuthRequest) (*authv1.GetAuthResponse, error) {
	// Key by key, rather than metadata.FromIncomingContext, which copies
	// all of the call's metadata first.
	creds, err := CredentialsFromHeaders(func(key string) []string {
		return metadata.ValueFromIncomingContext(ctx, key)
	})
	if err != nil {
		return nil, err
	}
	key := s.keys.key(creds)
	stats := upstream.StatsFrom(ctx)
	if s.cache != nil {
		if resp, ok := s.cache.get(key); ok {
			if stats != nil {
				stats.Cached = true
			}
			return resp, nil
		}
	}
	uctx, cancel := s.bound(ctx)
	defer cancel()
	resp, fstats, shared, err := s.flights.do(uctx, key, func(sctx context.Context) (*authv1.GetAuthResponse, error) {
		user, err := s.upstream.Auth(sctx, creds)
		if err != nil {
			return nil, err
		}
		resp := authResponse(user)
		if s.cache != nil {
			s.cache.add(key, resp)
		}
		return resp, nil
	})
	if shared && uctx.Err() == nil {
		s.shared.Add(1) // answered by the shared request, not gone before it
	}
	if stats != nil {
		*stats = fstats
		stats.Shared = shared
	}
	if err != nil {
		st := errorStatus(ctx, err)
		if ue := (*upstream.Error)(nil); errors.As(err, &ue) && ue.Failure == upstream.FailShed {
			// Refused before Opentact was asked: the access log (rate
			// limited) and the metrics tell it, without a warning per call
			// of an overload.
			return nil, st.Err()
		}
		attrs := []slog.Attr{
			slog.String("code", st.Code().String()),
			slog.Any("credentials", creds),
			slog.String("error", err.Error()),
		}
		if ue := (*upstream.Error)(nil); errors.As(err, &ue) {
			attrs = append(attrs, slog.Int("attempts", ue.Attempts))
		}
		s.log.LogAttrs(ctx, levelFor(st.Code()), "opentact call failed", attrs...)
		return nil, st.Err()
	}
	return resp, nil
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
