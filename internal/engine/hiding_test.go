package engine

import (
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	messagingv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/messaging/v1"
	numberv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/number/v1"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// TestHidingCollectsPhonesAndPrivateText: the values of the fields
// declared phone or private reach the request to Opentact's scrubber, at
// any depth, lists included; nothing else does.
func TestHidingCollectsPhonesAndPrivateText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name            string
		req             proto.Message
		phones, private []string
	}{
		{"SendSMS", &messagingv1.SendSMSRequest{From: "+12029822917", To: "12025550123", Message: "see you at 5", RequestId: proto.String("k")},
			[]string{"+12029822917", "12025550123"}, []string{"see you at 5"}},
		{"OrderNumbers, a list of messages", &numberv1.OrderNumbersRequest{Items: []*numberv1.OrderItem{
			{Tn: proto.String("12029822917"), Features: []string{"sms"}}, {Tn: proto.String("12025550123")},
		}}, []string{"12029822917", "12025550123"}, nil},
		{"SendSMS, fields unset", &messagingv1.SendSMSRequest{}, nil, nil},
		{"no such field", &authv1.CreateTokenRequest{Name: "12029822917"}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHiding(tc.req.ProtoReflect().Descriptor())
			var r upstream.Request
			h.collect(tc.req.ProtoReflect(), &r)
			if !slices.Equal(r.Phones, tc.phones) || !slices.Equal(r.Private, tc.private) {
				t.Errorf("phones %q, private %q; want %q, %q", r.Phones, r.Private, tc.phones, tc.private)
			}
		})
	}
}
