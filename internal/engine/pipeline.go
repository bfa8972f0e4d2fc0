package engine

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	"buf.build/go/protovalidate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	apiv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/api/v1"
	"github.com/opentact-facade/opentact-facade/internal/apierr"
	"github.com/opentact-facade/opentact-facade/internal/declare"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// method is one served method: its declaration, its Opentact endpoint, and
// what the pipeline needs at hand.
type method struct {
	e        *Engine
	decl     *declare.Call
	endpoint *upstream.Endpoint
	hooks    declare.Hooks
	request  protoreflect.MessageType
	response protoreflect.MessageType
	share    bool // a read: identical calls under way at once share one request
	cache    bool
	wire     wire
}

func (e *Engine) newMethod(c *declare.Call, h declare.Hooks) (*method, error) {
	req, err := protoregistry.GlobalTypes.FindMessageByName(c.Method.Input().FullName())
	if err != nil {
		return nil, err
	}
	resp, err := protoregistry.GlobalTypes.FindMessageByName(c.Method.Output().FullName())
	if err != nil {
		return nil, err
	}
	var opts []upstream.EndpointOption
	if c.Kind != declare.Write {
		opts = append(opts, upstream.Idempotent())
	}
	if c.SecretPath {
		opts = append(opts, upstream.SecretPath())
	}
	ep, err := upstream.NewEndpoint(c.Name, c.HTTPMethod, c.Path, opts...)
	if err != nil {
		return nil, err
	}
	if (h.Expires != nil) && !c.Cache {
		return nil, errors.New(c.FullMethod + ": an Expires hook on a method that is not cached")
	}
	m := &method{
		e:        e,
		decl:     c,
		endpoint: ep,
		hooks:    h,
		request:  req,
		response: resp,
		share:    c.Kind == declare.Read,
		cache:    c.Cache,
		wire:     newWire(c),
	}
	return m, nil
}

// serve is the pipeline of every call. It reads the credentials (never
// sending a call without one), validates the request (never sending an
// invalid one), answers a repeat of a call with a request_id from the
// first, bounds the call's time, shares and caches as the declaration
// says, calls Opentact, and turns a failure into the call's status,
// logging it.
func (m *method) serve(ctx context.Context, msg proto.Message) (proto.Message, error) {
	e := m.e
	// Key by key, rather than metadata.FromIncomingContext, which copies
	// all of the call's metadata first.
	creds, err := CredentialsFromHeaders(func(key string) []string {
		return metadata.ValueFromIncomingContext(ctx, key)
	})
	if err != nil {
		return nil, err
	}
	if err := e.validate(msg); err != nil {
		return nil, err
	}
	out := msg
	if m.hooks.Prepare != nil {
		if out, err = m.hooks.Prepare(proto.Clone(msg)); err != nil {
			if _, ok := status.FromError(err); !ok {
				err = status.Error(codes.InvalidArgument, err.Error())
			}
			return nil, err
		}
	}
	r, err := m.wire.request(out.ProtoReflect())
	if err != nil {
		return nil, err
	}
	stats := upstream.StatsFrom(ctx)
	var once *ticket // a first call with a request_id
	if fd := m.decl.RequestID; fd != nil {
		if id := msg.ProtoReflect().Get(fd).String(); id != "" {
			resp, t, err := m.repeat(ctx, creds, msg, id)
			if t == nil {
				if resp != nil && stats != nil {
					stats.Replayed = true
				}
				return resp, err
			}
			once = t
			defer once.abandon()
		}
	}
	cache := e.cache
	if !m.cache {
		cache = nil
	}
	var key credKey
	if m.share || cache != nil {
		var b []byte // an empty request (GetAuth's) keys by method alone
		if proto.Size(msg) > 0 {
			if b, err = (proto.MarshalOptions{Deterministic: true}).Marshal(msg); err != nil {
				return nil, internalError()
			}
		}
		key = e.keys.key(creds, []byte(m.decl.FullMethod), b)
	}
	if cache != nil {
		if resp, ok := cache.get(key); ok {
			if stats != nil {
				stats.Cached = true
			}
			return resp, nil
		}
	}
	if m.hooks.Revokes != nil && e.cache != nil {
		// Whatever the outcome: a failed revocation may still have
		// reached Opentact, and dropping an answer costs one request.
		defer func() {
			token, all := m.hooks.Revokes(msg)
			e.cache.revoke(e.tag(token), all)
		}()
	}
	var (
		uctx   context.Context
		cancel context.CancelFunc
	)
	if once != nil {
		// A call with a request_id goes on when its caller goes (within
		// the same time): a repeat of it, waiting or to come, then learns
		// how it ended rather than that its outcome is unknown.
		deadline := time.Now().Add(e.timeouts.Limit(ctx))
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		uctx, cancel = context.WithDeadline(context.WithoutCancel(ctx), deadline)
	} else {
		uctx, cancel = context.WithTimeout(ctx, e.timeouts.Limit(ctx))
	}
	defer cancel()
	run := func(sctx context.Context) (proto.Message, error) {
		var since uint64
		if cache != nil {
			since = cache.revocations.Load()
		}
		resp, err := m.send(sctx, creds, r)
		if err != nil {
			return nil, err
		}
		if m.hooks.Answer != nil {
			m.hooks.Answer(resp)
		}
		if m.hooks.Tells != nil && e.cache != nil {
			m.hooks.Tells(resp, func(token string, expires time.Time) {
				e.cache.expire(e.tag(token), expires)
			})
		}
		if cache != nil {
			var expires time.Time
			if m.hooks.Expires != nil {
				expires = m.hooks.Expires(resp)
			}
			cache.add(key, resp, expires, e.tokenTag(creds), since)
		}
		return resp, nil
	}
	var resp proto.Message
	if m.share {
		var fstats upstream.Stats
		var shared bool
		resp, fstats, shared, err = e.flights.do(uctx, key, run)
		if shared && uctx.Err() == nil {
			e.shared.Add(1) // answered by the shared request, not gone before it
		}
		if stats != nil {
			*stats = fstats
			stats.Shared = shared
		}
	} else {
		if stats == nil && once != nil {
			stats = &upstream.Stats{} // for Written
		}
		if stats != nil {
			uctx = upstream.WithStats(uctx, stats)
		}
		resp, err = run(uctx)
	}
	if once != nil {
		once.finish(uctx, resp, err, stats.Written)
	}
	if err != nil {
		return nil, e.failed(ctx, m.decl.FullMethod, creds, err)
	}
	return resp, nil
}

// failed is the status of a call that failed, logged unless it was
// refused before Opentact was asked (the access log, rate limited, and the
// metrics tell those, without a warning per call of an overload).
func (e *Engine) failed(ctx context.Context, method string, creds upstream.Credentials, err error) error {
	st := apierr.FromError(ctx, err)
	ue, isUpstream := errors.AsType[*upstream.Error](err)
	if isUpstream && ue.Failure == upstream.FailShed {
		return st.Err()
	}
	attrs := []slog.Attr{
		slog.String("method", method),
		slog.String("code", st.Code().String()),
		slog.Any("credentials", creds),
		slog.String("error", err.Error()),
	}
	if isUpstream {
		attrs = append(attrs, slog.Int("attempts", ue.Attempts))
	}
	e.log.LogAttrs(ctx, levelFor(st.Code()), "opentact call failed", attrs...)
	return st.Err()
}

// validate checks msg's text (textViolations: no control or bidi
// characters, bounded lengths, whatever the method) and the rules in its
// proto (protovalidate): a request that breaks one is InvalidArgument
// with a BadRequest naming each field, and is never sent.
func (e *Engine) validate(msg proto.Message) error {
	violations := textViolations(msg.ProtoReflect())
	if err := e.validator.Validate(msg); err != nil {
		verr, ok := errors.AsType[*protovalidate.ValidationError](err)
		if !ok {
			return apierr.WithInfo(codes.Internal, "internal error: the request could not be validated", apiv1.ErrorReason_UPSTREAM_INTERNAL_ERROR, 0).Err()
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
	return invalid(violations...)
}

// invalid is the InvalidArgument status of a request that breaks rules,
// with a BadRequest naming each field.
func invalid(violations ...*errdetails.BadRequest_FieldViolation) error {
	var fields []string
	for _, v := range violations {
		if !slices.Contains(fields, v.GetField()) {
			fields = append(fields, v.GetField())
		}
	}
	st := apierr.WithInfo(codes.InvalidArgument, "invalid request: "+strings.Join(fields, ", "), apiv1.ErrorReason_INVALID_REQUEST, 0)
	return apierr.WithDetail(st, &errdetails.BadRequest{FieldViolations: violations}).Err()
}

// internalError is the status of a failure of the facade itself.
func internalError() error {
	return apierr.WithInfo(codes.Internal, "internal error", apiv1.ErrorReason_UPSTREAM_INTERNAL_ERROR, 0).Err()
}

// tokenTag is the tag of the API token creds carry in Authorization
// (Bearer, or the bare token), zero if none: the key the cache indexes its
// answers by, for revocation.
func (e *Engine) tokenTag(creds upstream.Credentials) credKey {
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
	return e.tag(v)
}

// tag is the cache's key for an API token: the token alone, keyed.
func (e *Engine) tag(token string) credKey { return e.keys.key(upstream.Credentials{}, []byte(token)) }

// CredentialsFromHeaders reads the caller's credential headers through
// get, a lookup by header name such as metadata.MD.Get or
// http.Header.Values. Its error is a gRPC status: Unauthenticated when
// there is no credential at all, InvalidArgument for a malformed one
// (naming the header, never its value).
func CredentialsFromHeaders(get func(name string) []string) (upstream.Credentials, error) {
	creds, err := upstream.ParseCredentials(get)
	if err != nil {
		return upstream.Credentials{}, apierr.WithInfo(codes.InvalidArgument, err.Error(), apiv1.ErrorReason_CREDENTIALS_MALFORMED, 0).Err()
	}
	if creds.Empty() {
		return upstream.Credentials{}, apierr.MissingCredentials().Err()
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
