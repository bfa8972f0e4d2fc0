package rest

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
)

// TestShallowCopy: the gateway's reply gets every field of the handler's
// answer, fields no message models (unknown) included, and an answer of
// another type is an Internal error, never a panic.
func TestShallowCopy(t *testing.T) {
	email, role := "opentact@callify.io", "User"
	src := &authv1.GetAuthResponse{User: &authv1.User{Email: &email, Role: &role, Account: &authv1.Account{Email: &email}}}
	src.ProtoReflect().SetUnknown(protowire.AppendString(protowire.AppendTag(nil, 99, protowire.BytesType), "later"))

	dst := &authv1.GetAuthResponse{}
	if err := shallowCopy(dst.ProtoReflect(), src.ProtoReflect()); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(dst, src) {
		t.Errorf("copy = %v, want %v", dst, src)
	}
	if got, want := string(dst.ProtoReflect().GetUnknown()), string(src.ProtoReflect().GetUnknown()); got != want {
		t.Errorf("unknown fields %q, want %q", got, want)
	}

	err := shallowCopy((&authv1.GetAuthRequest{}).ProtoReflect(), src.ProtoReflect())
	if status.Code(err) != codes.Internal {
		t.Errorf("another type: %v, want Internal", err)
	}
}
