package service

import (
	"context"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// AuthServer implements opentact.auth.v1.AuthService.
type AuthServer struct {
	authv1.UnimplementedAuthServiceServer
	core *Core
}

// GetAuth forwards the caller's credentials to Opentact's GET /rest/auth
// and returns the user it answers with.
func (s *AuthServer) GetAuth(ctx context.Context, _ *authv1.GetAuthRequest) (*authv1.GetAuthResponse, error) {
	user, err := upstream.Do(ctx, s.core.upstream, upstream.AuthEndpoint, credentials(ctx), upstream.Request{})
	if err != nil {
		return nil, err
	}
	return authResponse(user), nil
}
