// Package service is the list of the facade's services and the few
// behaviours of theirs that no declaration can say. Every method is
// served by the engine (internal/engine) from its declaration in the
// proto: adding a call is adding its declaration, and adding a service
// is adding a line here.
package service

import (
	accountv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/account/v1"
	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	dictv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/dict/v1"
	"github.com/opentact-facade/opentact-facade/internal/declare"
)

// Services are the facade's services, each with its generated REST
// gateway registration.
var Services = []declare.Service{
	declare.Serve(authv1.AuthService_ServiceDesc.ServiceName, authv1.RegisterAuthServiceHandlerClient, authv1.NewAuthServiceClient),
	declare.Serve(authv1.TokenService_ServiceDesc.ServiceName, authv1.RegisterTokenServiceHandlerClient, authv1.NewTokenServiceClient),
	declare.Serve(accountv1.AccountService_ServiceDesc.ServiceName, accountv1.RegisterAccountServiceHandlerClient, accountv1.NewAccountServiceClient),
	declare.Serve(dictv1.DictionaryService_ServiceDesc.ServiceName, dictv1.RegisterDictionaryServiceHandlerClient, dictv1.NewDictionaryServiceClient),
}
