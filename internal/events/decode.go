package events

import (
	"google.golang.org/protobuf/reflect/protoreflect"

	eventsv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/events/v1"
	messagingv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/messaging/v1"
	numberv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/number/v1"
	"github.com/opentact-facade/opentact-facade/internal/codec"
)

// Opentact's event types that have a typed body, and the facade's own.
const (
	TypeCallState = "call_state"
	TypeSMS       = "sms"
	TypeBalance   = "balance"
	TypeOrder     = "tn_order"
	TypeAuth      = "auth"
	TypeGap       = "facade.gap"
)

var (
	eventFields     = (&eventsv1.Event{}).ProtoReflect().Descriptor().Fields()
	createdOnField  = eventFields.ByName("created_on")
	callStateFields = (&eventsv1.CallStateEvent{}).ProtoReflect().Descriptor().Fields()
	callField       = callStateFields.ByName("call")
)

// Decode reads one of Opentact's events, in either envelope style, into
// an Event: the envelope's members, then the typed body of a known type.
// Only a frame that is not one JSON object is an error; a body that does
// not read as its type stays in other_fields, so the event still arrives.
func Decode(b []byte) (*eventsv1.Event, error) {
	ev := &eventsv1.Event{}
	if err := codec.Decode(b, ev.ProtoReflect()); err != nil {
		return nil, err
	}
	ev.Body = nil // no envelope member is a body
	other := ev.OtherFields
	if ev.CreatedOn == nil {
		if ts, ok := other["timestamp"]; ok && codec.DecodeField([]byte(ts), ev.ProtoReflect(), createdOnField) == nil {
			delete(other, "timestamp")
		}
	}
	payload, hasPayload := other["payload"]
	switch ev.Type {
	case TypeCallState:
		// The 2024 examples send {state, duration} as the payload and the
		// call under "call"; the general-fields page sends the call as the
		// payload.
		body := &eventsv1.CallStateEvent{}
		if hasPayload && codec.Decode([]byte(payload), body.ProtoReflect()) != nil {
			return ev, nil
		}
		call, hasCall := other["call"]
		if !hasCall {
			call = payload
		}
		if call != "" && codec.DecodeField([]byte(call), body.ProtoReflect(), callField) != nil {
			return ev, nil
		}
		if body.State == nil {
			body.State = body.GetCall().State
		}
		ev.Body = &eventsv1.Event_CallState{CallState: body}
		delete(other, "payload")
		delete(other, "call")
	case TypeSMS:
		body := &messagingv1.SMS{}
		if setBody(payload, hasPayload, body.ProtoReflect()) {
			ev.Body = &eventsv1.Event_Sms{Sms: body}
			delete(other, "payload")
		}
	case TypeOrder:
		body := &numberv1.Order{}
		if setBody(payload, hasPayload, body.ProtoReflect()) {
			ev.Body = &eventsv1.Event_TnOrder{TnOrder: body}
			delete(other, "payload")
		}
	case TypeBalance:
		// The payload is the new balance itself, a number.
		obj := `{"balance":` + orNull(payload, hasPayload)
		if sa, ok := other["source_action"]; ok {
			obj += `,"source_action":` + sa
		}
		body := &eventsv1.BalanceEvent{}
		if codec.Decode([]byte(obj+"}"), body.ProtoReflect()) == nil {
			ev.Body = &eventsv1.Event_Balance{Balance: body}
			if body.Balance != nil || !hasPayload {
				delete(other, "payload")
			}
			if body.SourceAction != nil {
				delete(other, "source_action")
			}
		}
	}
	if len(other) == 0 {
		ev.OtherFields = nil
	}
	return ev, nil
}

func setBody(payload string, ok bool, m protoreflect.Message) bool {
	return ok && codec.Decode([]byte(payload), m) == nil
}

func orNull(v string, ok bool) string {
	if !ok {
		return "null"
	}
	return v
}
