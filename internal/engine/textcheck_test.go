package engine

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	messagingv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/messaging/v1"
)

// TestTextViolationsWalkEveryString: nested messages, list elements, map
// keys and values are checked as top-level fields are, each named by its
// path; bytes, numbers and clean text pass.
func TestTextViolationsWalkEveryString(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		msg  proto.Message
		want []*errdetails.BadRequest_FieldViolation
	}{
		{"clean", &authv1.ListTokensResponse{Tokens: []*authv1.Token{{Name: proto.String("Zoë ✓"), Uuid: proto.String("u-1")}}}, nil},
		{"a top-level field", &authv1.CreateTokenRequest{Name: "a\x00"}, []*errdetails.BadRequest_FieldViolation{
			{Field: "name", Reason: ruleControl, Description: "holds a control character or line break"},
		}},
		{"list elements", &authv1.ListTokensResponse{Tokens: []*authv1.Token{
			{Name: proto.String("fine")},
			{Name: proto.String("\u202e"), Token: proto.String(strings.Repeat("x", maxTextBytes+1))},
		}}, []*errdetails.BadRequest_FieldViolation{
			{Field: "tokens[1].name", Reason: ruleBidi, Description: "holds a bidirectional formatting character"},
			{Field: "tokens[1].token", Reason: ruleMaxBytes, Description: "is longer than 4096 bytes"},
		}},
		{"a map value", &authv1.DeleteAllTokensResponse{OtherFields: map[string]string{"k": "\xff"}}, []*errdetails.BadRequest_FieldViolation{
			{Field: `other_fields["k"]`, Reason: ruleUTF8, Description: "is not valid UTF-8"},
		}},
		{"a map key", &authv1.DeleteAllTokensResponse{OtherFields: map[string]string{"a\nb": "v"}}, []*errdetails.BadRequest_FieldViolation{
			{Field: "other_fields", Reason: ruleControl, Description: "a key holds a control character or line break"},
		}},
		{"the bound itself", &authv1.DeleteTokenRequest{Token: strings.Repeat("x", maxTextBytes)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := textViolations(tc.msg.ProtoReflect())
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(proto.Equal)); diff != "" {
				t.Errorf("violations (-want +got):\n%s", diff)
			}
		})
	}
}

// TestTextViolationsCostNothingOnCleanRequests: the check runs on every
// call; a clean request allocates nothing.
func TestTextViolationsCostNothingOnCleanRequests(t *testing.T) {
	req := (&authv1.UpdateTokenRequest{Uuid: "bac27d93-df33-4e47-b4a1-edfcae0d3654", Name: proto.String("a name")}).ProtoReflect()
	if n := testing.AllocsPerRun(100, func() { _ = textViolations(req) }); n != 0 {
		t.Errorf("%v allocations per clean request, want 0", n)
	}
}

// TestMultilineFieldsTakeLines: a field declared multiline (an SMS's
// text) takes line breaks and tabs, and still no other control; any other
// field takes neither.
func TestMultilineFieldsTakeLines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		message, to string
		want        []string
	}{
		{"two\nlines,\r\ncr lf and\ta tab", "12025550100", nil},
		{"a NUL\x00", "12025550100", []string{"message"}},
		{"an ESC\x1b[31m", "12025550100", []string{"message"}},
		{"fine", "1202\n5550100", []string{"to"}},
	} {
		req := &messagingv1.SendSMSRequest{From: "12025550199", To: tc.to, Message: tc.message}
		var got []string
		for _, v := range textViolations(req.ProtoReflect()) {
			got = append(got, v.GetField())
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%q to %q: violations %q, want %q", tc.message, tc.to, got, tc.want)
		}
	}
}
