package events

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/events/v1"
)

// Handler is StreamEvents' handler: it validates the request with
// validate, joins the caller's user's socket and sends the events as
// they come, until the caller or the hub ends the stream.
func (h *Hub) Handler(validate func(proto.Message) error) grpc.StreamHandler {
	return func(_ any, ss grpc.ServerStream) error {
		req := &eventsv1.StreamEventsRequest{}
		if err := ss.RecvMsg(req); err != nil {
			return err
		}
		if err := validate(req); err != nil {
			return err
		}
		ctx := ss.Context()
		sub, err := h.Subscribe(ctx, req.GetTypes())
		if err != nil {
			return err
		}
		defer h.Unsubscribe(sub)
		// The headers now: the caller knows it is subscribed before the
		// first event.
		if err := ss.SendHeader(metadata.MD{}); err != nil {
			return err
		}
		for {
			select {
			case <-ctx.Done():
				return status.FromContextError(ctx.Err()).Err()
			case <-sub.Done():
				return sub.Err()
			case ev := <-sub.Events():
				if err := ss.SendMsg(ev); err != nil {
					return err
				}
			}
		}
	}
}
