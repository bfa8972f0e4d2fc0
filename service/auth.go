// Package service implements the facade's RPCs: credentials come in as
// gRPC metadata, go out to Opentact through the upstream client, and the
// answer comes back as proto messages or a gRPC status.
package service

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// DefaultUpstreamTimeout bounds a call to Opentact when no other timeout is
// given.
const DefaultUpstreamTimeout = 10 * time.Second

// AuthServer implements opentact.auth.v1.AuthService.
type AuthServer struct {
	authv1.UnimplementedAuthServiceServer

	upstream *upstream.Client
	timeout  time.Duration
	log      *slog.Logger
}

// NewAuthServer returns an AuthService backed by client. Each call to
// Opentact is bounded by timeout (and by the caller's own deadline); a
// timeout of 0 means DefaultUpstreamTimeout. log may be nil.
func NewAuthServer(client *upstream.Client, timeout time.Duration, log *slog.Logger) *AuthServer {
	if timeout <= 0 {
		timeout = DefaultUpstreamTimeout
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &AuthServer{upstream: client, timeout: timeout, log: log}
}

// GetAuth forwards the caller's credentials to Opentact's GET /rest/auth
// and returns the user it answers with.
func (s *AuthServer) GetAuth(ctx context.Context, _ *authv1.GetAuthRequest) (*authv1.GetAuthResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	creds, err := CredentialsFromHeaders(md.Get)
	if err != nil {
		return nil, err
	}
	uctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	user, err := s.upstream.Auth(uctx, creds)
	if err != nil {
		st := errorStatus(ctx, err)
		s.log.LogAttrs(ctx, levelFor(st.Code()), "opentact call failed",
			slog.String("code", st.Code().String()),
			slog.Any("credentials", creds),
			slog.String("error", err.Error()))
		return nil, st.Err()
	}
	return authResponse(user), nil
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
