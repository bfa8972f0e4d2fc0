package codec_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/codec"
)

// The two payload shapes documented by Opentact, from their whole answers
// in testdata.
var (
	payload2024 = documentedPayload("auth-2024.json")
	payload2020 = documentedPayload("auth-2020.json")
)

func documentedPayload(name string) string {
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "opentact", name))
	if err != nil {
		panic(err)
	}
	var answer struct{ Payload json.RawMessage }
	if err := json.Unmarshal(b, &answer); err != nil {
		panic(err)
	}
	return string(answer.Payload)
}

// decodePayload decodes a GET /rest/auth payload into GetAuth's answer,
// as the engine does.
func decodePayload(t testing.TB, payload string) *authv1.GetAuthResponse {
	t.Helper()
	resp := &authv1.GetAuthResponse{}
	m := resp.ProtoReflect()
	if err := codec.DecodeField([]byte(payload), m, m.Descriptor().Fields().ByName("user")); err != nil {
		t.Fatalf("decoding the payload: %v", err)
	}
	return resp
}

func ts(t *testing.T, s string) *timestamppb.Timestamp {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return timestamppb.New(v)
}

func TestAuthPayloadDecodes(t *testing.T) {
	t.Parallel()
	s := proto.String
	tests := []struct {
		name    string
		payload string
		want    func(t *testing.T) *authv1.User
	}{
		{
			name:    "documented 2024 shape",
			payload: payload2024,
			want: func(t *testing.T) *authv1.User {
				return &authv1.User{
					Uuid:        s("0116f6d1-1280-44b2-9134-da48509ec575"),
					Email:       s("info@opentact.org"),
					WssOnline:   proto.Bool(true),
					Role:        s("User"),
					CreatedOn:   ts(t, "2024-01-16T14:15:48.540Z"),
					ModifiedOn:  ts(t, "2024-01-16T14:15:48.540Z"),
					Token:       s("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1dWlkIjoiZGU3NDBjYTQtYjNhYi00N2UzLWIzMDctZmQ3NT"),
					PhoneNumber: s("+1234567890"),
					Dob:         ts(t, "2024-01-16T14:15:48.540Z"),
					Avatar:      s("https://google/image.png"),
					FirstName:   s("First Name"),
					LastName:    s("Last Name"),
					Gender:      s("Female"),
					Account: &authv1.Account{
						Uuid:       s("f2cb79fb-6bf8-4484-8034-debf95aac73b"),
						Email:      s("info@denovolab.com"),
						Name:       s("DENOVOLAB"),
						Level:      s("Level0"),
						Balance:    s("99.87895"),
						CreatedOn:  ts(t, "2024-01-16T14:15:48.540Z"),
						ModifiedOn: ts(t, "2024-01-16T14:15:48.540Z"),
					},
				}
			},
		},
		{
			name:    "documented 2020 shape: no account, social ids, nulls stay unset",
			payload: payload2020,
			want: func(t *testing.T) *authv1.User {
				return &authv1.User{
					Uuid:        s("60e9fa76-20e7-45ee-bf24-8c4a95143dad"),
					Email:       s("abc@example.co.uk"),
					Role:        s("User"),
					CreatedOn:   ts(t, "2020-10-26T08:44:15.621Z"),
					ModifiedOn:  ts(t, "2020-10-26T08:44:16.023Z"),
					Token:       s("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1dWlkIjoiNjBlOWZhNzYtMjBlNy00NWVlLWJmMjQtOGM0YTk1MTQzZGFkIiwiaWF0IjoxNjAzNzI2MzM4LCJleHAiOjE2MDM4MTI3Mzh9.uiBWYvx2Bb0zQjellXi4Y2C_DdEhhU6c6R6q979HBus"),
					FirstName:   s("John"),
					LastName:    s("Smith"),
					GmailUserId: s("107653031006300523703"),
				}
			},
		},
		{
			name:    "empty object: every field unset, never zero values",
			payload: `{}`,
			want:    func(*testing.T) *authv1.User { return &authv1.User{} },
		},
		{
			name: "explicit nulls everywhere",
			payload: `{"uuid":null,"email":null,"wss_online":null,"role":null,"created_on":null,"modified_on":null,
				"deleted_on":null,"token":null,"phone_number":null,"dob":null,"avatar":null,"first_name":null,
				"last_name":null,"gender":null,"gmail_user_id":null,"facebook_user_id":null,"apple_user_id":null,
				"wechat_user_id":null,"account":null}`,
			want: func(*testing.T) *authv1.User { return &authv1.User{} },
		},
		{
			name:    "empty strings and false are values, kept as such",
			payload: `{"first_name":"","wss_online":false,"gender":"","account":{"name":"","balance":0}}`,
			want: func(*testing.T) *authv1.User {
				return &authv1.User{FirstName: s(""), WssOnline: proto.Bool(false), Gender: s(""),
					Account: &authv1.Account{Name: s(""), Balance: s("0")}}
			},
		},
		{
			name: "the account's newer fields are modelled; the rest is carried as JSON text",
			payload: `{"uuid":"u1","is_verified":true,"settings":{"a":[1,2,{"b":null}]},"tags":["x"],
				"account":{"uuid":"a1","phone":87015260731,"address1":null,"address2":"Suite 5","zip_code":"050000",
				"city":"Алматы","class4_id":7,"disabled_on":"2025-02-03T04:05:06Z","wss_online":true,
				"time_zone":"UTC","users":[{"uuid":"u1","password":"hunter2"},{"uuid":"u2","brand_new":12345678901234567890}],
				"admin":{"uuid":"u1","ha1b":"d41d8cd98f00b204e9800998ecf8427e"},"messaging_profile_default":null,
				"messaging_profiles":[{"uuid":"m1","long_code_weight":0.1000000000000000055511151231257827}],"addresses":[]}}`,
			want: func(t *testing.T) *authv1.User {
				return &authv1.User{
					Uuid:        s("u1"),
					OtherFields: map[string]string{"is_verified": "true", "settings": `{"a":[1,2,{"b":null}]}`, "tags": `["x"]`},
					Account: &authv1.Account{
						Uuid: s("a1"), Phone: s("87015260731"), Address2: s("Suite 5"), ZipCode: s("050000"),
						City: s("Алматы"), Class4Id: proto.Int64(7), DisabledOn: ts(t, "2025-02-03T04:05:06Z"),
						WssOnline: proto.Bool(true),
						Admin:     &authv1.User{Uuid: s("u1")},
						Users: []*authv1.User{
							{Uuid: s("u1")},
							{Uuid: s("u2"), OtherFields: map[string]string{"brand_new": "12345678901234567890"}},
						},
						OtherFields: map[string]string{
							"time_zone": `"UTC"`, "messaging_profile_default": "null", "addresses": "[]",
							"messaging_profiles": `[{"uuid":"m1","long_code_weight":0.1000000000000000055511151231257827}]`,
						},
					},
				}
			},
		},
		{
			name:    "a password or HA1 digest is dropped wherever it is, never carried",
			payload: `{"uuid":"u1","password":"hunter2","HA1":"x","ext":{"sip":[{"login":"l","ha1b":"y"}],"Password":"p"}}`,
			want: func(*testing.T) *authv1.User {
				return &authv1.User{Uuid: s("u1"), OtherFields: map[string]string{"ext": `{"sip":[{"login":"l"}]}`}}
			},
		},
		{
			name: "Unicode names and text",
			payload: `{"first_name":"Анна-Мария","last_name":"Ñúñez Kovačević 王","gender":"Женский",
				"account":{"name":"Ромашка ООО 🌼"}}`,
			want: func(*testing.T) *authv1.User {
				return &authv1.User{FirstName: s("Анна-Мария"), LastName: s("Ñúñez Kovačević 王"), Gender: s("Женский"),
					Account: &authv1.Account{Name: s("Ромашка ООО 🌼")}}
			},
		},
		{
			name:    "Unicode escapes are decoded",
			payload: `{"first_name":"\u0410\u043d\u043d\u0430","last_name":"\ud83c\udf3c"}`,
			want: func(*testing.T) *authv1.User {
				return &authv1.User{FirstName: s("Анна"), LastName: s("🌼")}
			},
		},
		{
			name: "timestamps with and without milliseconds, and with an offset",
			payload: `{"created_on":"2024-01-16T14:15:48.540Z","modified_on":"2024-01-16T14:15:15Z",
				"deleted_on":"2024-01-16T16:15:48.001+02:00","dob":"1990-05-01"}`,
			want: func(t *testing.T) *authv1.User {
				return &authv1.User{
					CreatedOn:  &timestamppb.Timestamp{Seconds: 1705414548, Nanos: 540_000_000},
					ModifiedOn: &timestamppb.Timestamp{Seconds: 1705414515},
					DeletedOn:  &timestamppb.Timestamp{Seconds: 1705414548, Nanos: 1_000_000},
					Dob:        ts(t, "1990-05-01T00:00:00Z"),
				}
			},
		},
		{
			name:    "balance with more digits than a float64 holds keeps every digit",
			payload: `{"account":{"balance":12345678901234.56789}}`,
			want: func(*testing.T) *authv1.User {
				return &authv1.User{Account: &authv1.Account{Balance: s("12345678901234.56789")}}
			},
		},
		{
			name:    "balance: a negative number with a trailing zero is kept as sent",
			payload: `{"account":{"balance":-0.10}}`,
			want: func(*testing.T) *authv1.User {
				return &authv1.User{Account: &authv1.Account{Balance: s("-0.10")}}
			},
		},
		{
			name:    "balance sent as a numeric string",
			payload: `{"account":{"balance":"1.5e2"}}`,
			want: func(*testing.T) *authv1.User {
				return &authv1.User{Account: &authv1.Account{Balance: s("1.5e2")}}
			},
		},
		{
			name: "fields of an unexpected type are left unset and do not fail the call",
			payload: `{"uuid":42,"email":["a@b"],"wss_online":"yes","role":{"name":"User"},"created_on":1705414548,
				"modified_on":"yesterday","deleted_on":true,"first_name":false,"phone_number":87015260731,
				"account":{"balance":"lots","level":["Level0"],"created_on":"2024-13-45T99:00:00Z","name":"ok"}}`,
			want: func(*testing.T) *authv1.User {
				return &authv1.User{
					Uuid:        s("42"),
					PhoneNumber: s("87015260731"),
					Account:     &authv1.Account{Name: s("ok")},
				}
			},
		},
		{
			name:    "an account that is not an object is unset",
			payload: `{"uuid":"u1","account":"f2cb79fb-6bf8-4484-8034-debf95aac73b"}`,
			want:    func(*testing.T) *authv1.User { return &authv1.User{Uuid: s("u1")} },
		},
		{
			name:    "a year-zero timestamp, valid RFC 3339 but outside Timestamp's range, is unset",
			payload: `{"dob":"0000-01-01T00:00:00Z"}`,
			want:    func(*testing.T) *authv1.User { return &authv1.User{} },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := decodePayload(t, tc.payload)
			want := &authv1.GetAuthResponse{User: tc.want(t)}
			if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
				t.Errorf("decoded (-want +got):\n%s", diff)
			}
		})
	}
}
