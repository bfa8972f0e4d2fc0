package service

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	eventsv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/events/v1"
	"github.com/opentact-facade/opentact-facade/internal/events"
)

// Identify learns who an events stream's caller is through GetAuth, run
// by call as any caller's GetAuth is (so with its credential checks,
// sharing and cache): the user whose socket the stream joins, and the JWT
// that opens it.
func Identify(call func(ctx context.Context, fullMethod string, req proto.Message) (proto.Message, error)) events.Identify {
	return func(ctx context.Context) (events.Identity, error) {
		resp, err := call(ctx, authv1.AuthService_GetAuth_FullMethodName, &authv1.GetAuthRequest{})
		if err != nil {
			return events.Identity{}, err
		}
		u := resp.(*authv1.GetAuthResponse).GetUser()
		exp, _ := jwtExpiry(u.GetToken())
		return events.Identity{User: u.GetUuid(), Account: u.GetAccount().GetUuid(), Token: u.GetToken(), Expires: exp}, nil
	}
}

// Streams are the handlers of the services' streaming methods, which no
// declaration serves: StreamEvents, from the events hub.
func Streams(hub *events.Hub, validate func(proto.Message) error) map[string]grpc.StreamHandler {
	return map[string]grpc.StreamHandler{
		eventsv1.EventService_StreamEvents_FullMethodName: hub.Handler(validate),
	}
}
