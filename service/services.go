// Package service is the list of the facade's services and the few
// behaviours of theirs that no declaration can say. Every method is
// served by the engine (internal/engine) from its declaration in the
// proto: adding a call is adding its declaration, and adding a service
// is adding a line here.
package service

import (
	accountv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/account/v1"
	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	callv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/call/v1"
	dictv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/dict/v1"
	eventsv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/events/v1"
	messagingv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/messaging/v1"
	numberv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/number/v1"
	sipv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/sip/v1"
	voicev1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/voice/v1"
	"github.com/opentact-facade/opentact-facade/internal/declare"
)

// Services are the facade's services, each with its generated REST
// gateway registration.
var Services = []declare.Service{
	declare.Serve(authv1.AuthService_ServiceDesc.ServiceName, authv1.RegisterAuthServiceHandlerClient, authv1.NewAuthServiceClient),
	declare.Serve(authv1.TokenService_ServiceDesc.ServiceName, authv1.RegisterTokenServiceHandlerClient, authv1.NewTokenServiceClient),
	declare.Serve(accountv1.AccountService_ServiceDesc.ServiceName, accountv1.RegisterAccountServiceHandlerClient, accountv1.NewAccountServiceClient),
	declare.Serve(dictv1.DictionaryService_ServiceDesc.ServiceName, dictv1.RegisterDictionaryServiceHandlerClient, dictv1.NewDictionaryServiceClient),
	declare.Serve(numberv1.NumberService_ServiceDesc.ServiceName, numberv1.RegisterNumberServiceHandlerClient, numberv1.NewNumberServiceClient),
	declare.Serve(messagingv1.MessagingService_ServiceDesc.ServiceName, messagingv1.RegisterMessagingServiceHandlerClient, messagingv1.NewMessagingServiceClient),
	declare.Serve(messagingv1.MessagingProfileService_ServiceDesc.ServiceName, messagingv1.RegisterMessagingProfileServiceHandlerClient, messagingv1.NewMessagingProfileServiceClient),
	declare.Serve(sipv1.SIPConnectionService_ServiceDesc.ServiceName, sipv1.RegisterSIPConnectionServiceHandlerClient, sipv1.NewSIPConnectionServiceClient),
	declare.Serve(sipv1.SIPDomainService_ServiceDesc.ServiceName, sipv1.RegisterSIPDomainServiceHandlerClient, sipv1.NewSIPDomainServiceClient),
	declare.Serve(voicev1.OutboundVoiceProfileService_ServiceDesc.ServiceName, voicev1.RegisterOutboundVoiceProfileServiceHandlerClient, voicev1.NewOutboundVoiceProfileServiceClient),
	declare.Serve(eventsv1.EventService_ServiceDesc.ServiceName, eventsv1.RegisterEventServiceHandlerClient, eventsv1.NewEventServiceClient),
	declare.Serve(callv1.CallControlService_ServiceDesc.ServiceName, callv1.RegisterCallControlServiceHandlerClient, callv1.NewCallControlServiceClient),
}
