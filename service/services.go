package service

import (
	"context"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
)

// Service is one gRPC service of the facade: its description, its
// implementation, and its REST routes' registration on the gateway, which
// calls it through cc.
type Service struct {
	Desc    *grpc.ServiceDesc
	Impl    any
	Gateway func(ctx context.Context, mux *runtime.ServeMux, cc grpc.ClientConnInterface) error
}

// Services are the facade's services, on c.
func (c *Core) Services() []Service { return c.services }

// services lists the facade's services; one entry per service.
func services(c *Core) []Service {
	return []Service{
		{&authv1.AuthService_ServiceDesc, &AuthServer{core: c}, func(ctx context.Context, mux *runtime.ServeMux, cc grpc.ClientConnInterface) error {
			return authv1.RegisterAuthServiceHandlerClient(ctx, mux, authv1.NewAuthServiceClient(cc))
		}},
		{&authv1.TokenService_ServiceDesc, &TokenServer{core: c}, func(ctx context.Context, mux *runtime.ServeMux, cc grpc.ClientConnInterface) error {
			return authv1.RegisterTokenServiceHandlerClient(ctx, mux, authv1.NewTokenServiceClient(cc))
		}},
	}
}
