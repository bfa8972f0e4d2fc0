package codec_test

import (
	"os"
	"path/filepath"
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
// and service's FuzzAuthResponse, and edge cases of the decoding rules.
var differentialSeeds = []string{
	// FuzzDecodeAnswer's.
	`{"success":true,"payload":{"email":"a@b","email":1,"account":[],"ttl":"x"}}`,
	`{"success":true,"payload":[` + tokenJSON + `]}`,
	// FuzzAuthResponse's.
	`{}`,
	`null`,
	`[]`,
	`"payload"`,
	`<html><body>502 Bad Gateway</body></html>`,
	`{"success":true,"payload":{}}`,
	`{"success":true,"payload":null}`,
	`{"success":false,"message":"Invalid credentials","status":401}`,
	`{"success":"true","payload":{"uuid":"u"}}`,
	// Every field null, including the account's.
	`{"success":true,"payload":{"uuid":null,"email":null,"wss_online":null,"role":null,"created_on":null,"modified_on":null,"deleted_on":null,"token":null,"phone_number":null,"dob":null,"avatar":null,"first_name":null,"last_name":null,"gender":null,"gmail_user_id":null,"facebook_user_id":null,"apple_user_id":null,"wechat_user_id":null,"account":{"uuid":null,"email":null,"name":null,"level":null,"balance":null,"created_on":null,"modified_on":null,"deleted_on":null}}}`,
	// Numbers as strings and strings as numbers.
	`{"success":true,"payload":{"wss_online":"true","phone_number":87015260731,"gmail_user_id":107653031006300523703,"account":{"balance":"12345678901234.56789","phone":87015260731}}}`,
	`{"success":true,"payload":{"uuid":-0.0e+00,"account":{"balance":"1e5","level":0}}}`,
	// Huge numbers.
	`{"success":true,"payload":{"account":{"balance":123456789012345678901234567890123456789.123456789012345678901234567890}}}`,
	`{"success":true,"payload":{"account":{"balance":1e400},"phone_number":-1E-400}}`,
	`{"success":true,"payload":{"account":{"balance":" 1.5"},"created_on":1705414548540}}`,
	// Nested wrong types.
	`{"success":true,"payload":{"email":{"value":"a@b.c"},"role":["User"],"wss_online":1,"account":[{"uuid":"x"}],"dob":{"date":"2024-01-16"}}}`,
	`{"success":true,"payload":{"account":"DENOVOLAB","created_on":true,"gender":false,"wss_online":0}}`,
	`{"success":true,"payload":{"account":null,"wss_online":[],"uuid":[],"deleted_on":[],"token":{}}}`,
	`{"success":true,"payload":{"account":{"account":{"account":{}}},"addresses":[[[[{"a":[null]}]]]]}}`,
	// Timestamps at and beyond the edges of what a Timestamp holds.
	`{"success":true,"payload":{"created_on":"0000-01-01T00:00:00Z","modified_on":"0001-01-01T00:00:00+01:00","deleted_on":"9999-12-31T23:59:59.999999999Z","dob":"9999-12-31T23:59:59-01:00"}}`,
	`{"success":true,"payload":{"created_on":"2024-01-16T14:15:15Z","modified_on":"2024-01-16T14:15:48.540+05:30","dob":"1990-05-01","deleted_on":"0000-01-01"}}`,
	`{"success":true,"payload":{"created_on":"2024-01-16 14:15:48","dob":"16/01/2024","deleted_on":"","modified_on":"2024-02-30T00:00:00Z"}}`,
	// Unicode, escapes, invalid UTF-8.
	`{"success":true,"payload":{"first_name":"Анна","last_name":"Müller-Lüdenscheidt","gender":"\u00e9\ud83d\ude00","avatar":"\u0000\n\t"}}`,
	"{\"success\":true,\"payload\":{\"first_name\":\"\xff\xfe\",\"last_name\":\"a\xc3(b\",\"email\":\"\xed\xa0\x80@x\"}}",
	`{"success":true,"payload":{"first_name":"\ud800","last_name":"\udc00\ud800x","account":{"name":"\uDBFF\uDFFF"}}}`,
	// Duplicate and case-variant names.
	`{"success":true,"payload":{"email":"a@x","email":null,"EMAIL":true,"Uuid":"U","UUID":1}}`,
	`{"success":true,"payload":{"email":"a"},"payload":{"uuid":"b"},"Payload":null}`,
	`{"success":true,"payload":{"la\u017ft_name":"long s","\u212aey":"kelvin"}}`,
	// Members no field models, at any depth, and dropped names.
	`{"success":true,"payload":{"password":"hunter2","Ha1B":"x","other_fields":{"a":1},"brand_new":{"k":[12345678901234567890,0.1000000000000000055511151231257827,{"password":"p","ha1":[1]}]},"account":{"class4_id":"9223372036854775807","time_zone":{"name":"Asia/Almaty"},"users":[{"uuid":"u","ha1b":"y"},null,7,{"account":{"admin":{"uuid":"a"}}}],"admin":{"password":"p"},"addresses":[]}}}`,
	`{"success":true,"payload":{"account":{"class4_id":9223372036854775808,"users":{"uuid":"u"},"admin":[{}],"disabled_on":"2025-01-01","phone":87015260731}}}`,
	`{"success":true,"payload":{"account":{"class4_id":"+5","users":[[{"uuid":"u"}]],"x":"a\u0000b\ud800"}}}`,
	// A bare payload, no envelope.
	`{"uuid":"0116f6d1-1280-44b2-9134-da48509ec575","email":"info@opentact.org","account":{"balance":99.87895}}`,
	` { "success" : true , "payload" : { "account" : { "balance" : -0.5 } } } `,
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
}

const tokenJSON = `{"name":"string","ttl":60,"token":"7VLyaDSQ8W48IETeNBfxbBqwgwzWLTvFojSnLgiXP5X8NSoE","expired_on":"2020-10-26T15:58:28.701Z","uuid":"bac27d93-df33-4e47-b4a1-edfcae0d3654","created_on":"2020-10-26T15:57:28.706Z","modified_on":"2020-10-26T15:57:28.706Z"}`
