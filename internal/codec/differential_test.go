package codec_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/opentact-facade/opentact-facade/bench/legacy"
	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/codec"
)

// FuzzDecodeDifferential decodes each body as the facade's answers to
// GetAuth, a token call, ListTokens and DeleteAllTokens, once with the
// legacy decoder and mapping (bench/legacy) and once with the codec
// (Opentact's envelope read as before, its payload by DecodeField or
// Decode, as the engine does), and requires the same outcome: the same
// message, or an error from both. A body that is valid JSON is also tried
// as the payload of a successful answer, so that mutations reach the
// payload decoders.
func FuzzDecodeDifferential(f *testing.F) {
	dir := filepath.Join("..", "..", "testdata", "opentact")
	entries, err := os.ReadDir(dir)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if filepath.Ext(e.Name()) != ".json" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range differentialSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		compareDecoders(t, body)
		if jsontext.Value(body).IsValid(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)) {
			compareDecoders(t, append(append([]byte(`{"success":true,"payload":`), body...), '}'))
		}
	})
}

func compareDecoders(t *testing.T, body []byte) {
	t.Helper()
	payload, envErr := legacy.Envelope(body)
	decodeInto := func(resp proto.Message, name protoreflect.Name) error {
		switch {
		case envErr != nil:
			return envErr
		case payload == nil:
			return errNoPayload
		}
		m := resp.ProtoReflect()
		return codec.DecodeField(payload, m, m.Descriptor().Fields().ByName(name))
	}
	same := func(what string, want proto.Message, wantErr error, got proto.Message, gotErr error) {
		t.Helper()
		switch {
		case (wantErr == nil) != (gotErr == nil):
			t.Fatalf("%s of %.300q: legacy error %v, codec error %v", what, body, wantErr, gotErr)
		case wantErr == nil && !proto.Equal(want, got):
			t.Fatalf("%s of %.300q differs (-legacy +codec):\n%s", what, body, cmp.Diff(want, got, protocmp.Transform()))
		}
	}

	wantAuth, wantErr := legacy.DecodeAuth(body)
	auth := &authv1.GetAuthResponse{}
	same("GetAuth", wantAuth, wantErr, auth, decodeInto(auth, "user"))

	wantToken, wantErr := legacy.DecodeToken(body)
	created := &authv1.CreateTokenResponse{}
	gotErr := decodeInto(created, "token")
	same("a token", wantToken, wantErr, created.GetToken(), gotErr)

	wantTokens, wantErr := legacy.DecodeTokens(body)
	tokens := &authv1.ListTokensResponse{}
	same("ListTokens", wantTokens, wantErr, tokens, decodeInto(tokens, "tokens"))

	wantEmpty, wantErr := legacy.DecodeEmpty(body)
	empty := &authv1.DeleteAllTokensResponse{}
	gotErr = envErr
	if envErr == nil && payload != nil {
		gotErr = codec.Decode(payload, empty.ProtoReflect())
	}
	same("DeleteAllTokens", wantEmpty, wantErr, empty, gotErr)
}

var errNoPayload = errorString(`no "payload"`)

type errorString string

func (e errorString) Error() string { return string(e) }

// differentialSeeds are the seeds of internal/upstream's FuzzDecodeAnswer
// and FuzzAuthResponse's (fuzzAuthSeeds), and edge cases of the decoding
// rules.
var differentialSeeds = slices.Concat(fuzzAuthSeeds, []string{
	// FuzzDecodeAnswer's.
	`{"success":true,"payload":{"email":"a@b","email":1,"account":[],"ttl":"x"}}`,
	`{"success":true,"payload":[` + tokenJSON + `]}`,
	// Tokens, lists of tokens, and the empty payload.
	`{"success":true,"payload":` + tokenJSON + `}`,
	`{"success":true,"payload":[` + tokenJSON + `,null,` + tokenJSON + `]}`,
	`{"success":true,"payload":[` + tokenJSON + `,"x"]}`,
	`{"success":true,"payload":[]}`,
	`{"success":true,"payload":[[]]}`,
	`{"success":true,"payload":[{"ttl":2147483648,"user":{"uuid":"u","password":"p"}},{"ttl":"-2147483648","user":null}]}`,
	`{"success":true,"payload":{"ttl":60,"ttl":"x","expired_on":"2020-10-26T15:58:28.701Z","expired_on":7,"user":{"uuid":"a"},"user":{"email":"b"}}}`,
	`{"success":true}`,
	`{"success":true,"payload":null}`,
	`{"success":true,"payload":{"Password":{"x":1},"kept":{"HA1":1,"ha1B":[{"pAsSwOrD":2}],"y":[{"password":3,"z":4}]}}}`,
	`{"success":true,"payload":"x"}`,
	`{"success":true,"payload":7}`,
	`{"success":false,"payload":{}}`,
	`{"success":true,"payload":{}} trailing`,
	`{"success":true,"payload":{"uuid":"x"}}{}`,
	// Duplicates: the later value of the right type wins, a wrong type
	// leaves the earlier.
	`{"success":true,"payload":{"uuid":"a","uuid":true,"uuid":"b","uuid":null,"created_on":"2024-01-16T14:15:48.540Z","created_on":"2024-01-16T14:15:15Z","created_on":"bad"}}`,
	`{"success":true,"payload":{"account":{"uuid":"a","users":[{"uuid":"1"}]},"account":7,"account":{"name":"b","users":[{"uuid":"2"}],"users":"x","users":[]}}}`,
	`{"success":true,"payload":{"x":1,"x":{"password":1},"password":2,"x":[3]}}`,
	// Huge and odd numbers.
	`{"success":true,"payload":{"uuid":1e999999,"phone_number":-0,"account":{"class4_id":-9223372036854775809,"balance":"-0.0e-0","phone":1.0E+2}}}`,
	`{"success":true,"payload":[{"ttl":2147483647},{"ttl":"2147483647"},{"ttl":"007"},{"ttl":"+5"},{"ttl":"5 "},{"ttl":5.0},{"ttl":"\u0035"}]}`,
	// Year 0000 and other edges of time.
	`{"success":true,"payload":{"created_on":"0000-12-31T23:59:59Z","modified_on":"0001-01-01T00:00:00Z","deleted_on":"0001-01-01T00:00:00.000000001+00:01","dob":"10000-01-01T00:00:00Z","account":{"created_on":"9999-12-31T23:59:59.999999999-00:01","disabled_on":"2024-02-29"}}}`,
	`{"success":true,"payload":{"created_on":"2024-01-16T14:15:48,540Z","modified_on":"2024-01-16t14:15:48z","dob":"2024-01-16T24:00:00Z","deleted_on":"\u0032024-01-16"}}`,
	// Invalid UTF-8 in names and values, escapes.
	"{\"success\":true,\"payload\":{\"uu\xffid\":\"\xff\",\"\xc3\":[\"\xed\xa0\x80\"],\"email\":\"\\ud800\\udc00\\udc00\",\"x\\u0000\":\"\\/\"}}",
	"{\"success\":true,\"payload\":{\"pass\\u0077ord\":1,\"ha\\u0031\":2,\"pa\xc5\xbf\xc5\xbfword\":3,\"k\":{\"HA\\u0031B\":4,\"\xff\":5}}}",
})

const tokenJSON = `{"name":"string","ttl":60,"token":"7VLyaDSQ8W48IETeNBfxbBqwgwzWLTvFojSnLgiXP5X8NSoE","expired_on":"2020-10-26T15:58:28.701Z","uuid":"bac27d93-df33-4e47-b4a1-edfcae0d3654","created_on":"2020-10-26T15:57:28.706Z","modified_on":"2020-10-26T15:57:28.706Z"}`
