package service

import (
	"context"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// TokenServer implements opentact.auth.v1.TokenService.
type TokenServer struct {
	authv1.UnimplementedTokenServiceServer
	core *Core
}

// CreateToken calls POST /rest/token.
func (s *TokenServer) CreateToken(ctx context.Context, req *authv1.CreateTokenRequest) (*authv1.CreateTokenResponse, error) {
	t, err := upstream.Do(ctx, s.core.upstream, upstream.CreateTokenEndpoint, credentials(ctx),
		upstream.Request{Body: upstream.TokenCreate{Name: req.GetName(), TTL: req.Ttl}})
	if err != nil {
		return nil, err
	}
	return &authv1.CreateTokenResponse{Token: token(t)}, nil
}

// ListTokens calls GET /rest/token/list.
func (s *TokenServer) ListTokens(ctx context.Context, _ *authv1.ListTokensRequest) (*authv1.ListTokensResponse, error) {
	ts, err := upstream.Do(ctx, s.core.upstream, upstream.ListTokensEndpoint, credentials(ctx), upstream.Request{})
	if err != nil {
		return nil, err
	}
	resp := &authv1.ListTokensResponse{Tokens: make([]*authv1.Token, 0, len(*ts))}
	for i := range *ts {
		resp.Tokens = append(resp.Tokens, token(&(*ts)[i]))
	}
	return resp, nil
}

// UpdateToken calls PATCH /rest/token/{uuid} with the fields set.
func (s *TokenServer) UpdateToken(ctx context.Context, req *authv1.UpdateTokenRequest) (*authv1.UpdateTokenResponse, error) {
	t, err := upstream.Do(ctx, s.core.upstream, upstream.UpdateTokenEndpoint, credentials(ctx),
		upstream.Request{Path: []string{req.GetUuid()}, Body: upstream.TokenUpdate{Name: req.Name, TTL: req.Ttl}})
	if err != nil {
		return nil, err
	}
	return &authv1.UpdateTokenResponse{Token: token(t)}, nil
}

// DeleteToken calls DELETE /rest/token/{token}.
func (s *TokenServer) DeleteToken(ctx context.Context, req *authv1.DeleteTokenRequest) (*authv1.DeleteTokenResponse, error) {
	t, err := upstream.Do(ctx, s.core.upstream, upstream.DeleteTokenEndpoint, credentials(ctx),
		upstream.Request{Path: []string{req.GetToken()}})
	if err != nil {
		return nil, err
	}
	return &authv1.DeleteTokenResponse{Token: token(t)}, nil
}

// DeleteAllTokens calls DELETE /rest/token/all.
func (s *TokenServer) DeleteAllTokens(ctx context.Context, _ *authv1.DeleteAllTokensRequest) (*authv1.DeleteAllTokensResponse, error) {
	e, err := upstream.Do(ctx, s.core.upstream, upstream.DeleteAllTokensEndpoint, credentials(ctx), upstream.Request{})
	if err != nil {
		return nil, err
	}
	return &authv1.DeleteAllTokensResponse{OtherFields: otherFields(&e.Carried)}, nil
}
