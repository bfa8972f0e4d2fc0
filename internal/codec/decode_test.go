package codec_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/codec"
)

// TestDecodeKinds: each kind's rule, on a dynamic message. want is the
// message in prototext.
func TestDecodeKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, json, want string
	}{
		// Strings: text, or a number's literal digits; nothing else.
		{"string", `{"s":"x"}`, `s: "x"`},
		{"empty string", `{"s":""}`, `s: ""`},
		{"string from a number", `{"s":12.50e+3}`, `s: "12.50e+3"`},
		{"string from true", `{"s":true}`, ``},
		{"string from an object", `{"s":{"a":1}}`, ``},
		{"string from an array", `{"s":["a"]}`, ``},
		{"string from null", `{"s":null}`, ``},
		{"escapes", `{"s":"\u00e9\ud83d\ude00\n\/"}`, `s: "é😀\n/"`},
		{"invalid UTF-8", "{\"s\":\"a\xffb\"}", `s: "a\uFFFDb"`},
		{"a lone surrogate", `{"s":"\ud800x"}`, `s: "\uFFFDx"`},
		{"implicit presence, empty", `{"plain":""}`, ``},
		{"implicit presence", `{"plain":"p"}`, `plain: "p"`},
		// Names match exactly.
		{"another case", `{"S":"x"}`, `other_fields { key: "S" value: "\"x\"" }`},
		{"an escaped name", `{"\u0073":"x"}`, `s: "x"`},
		// Duplicates: applied again; a later value of the wrong type
		// leaves the earlier.
		{"a later string", `{"s":"a","s":"b"}`, `s: "b"`},
		{"a later wrong type", `{"s":"a","s":true,"s":null}`, `s: "a"`},

		// Decimals: a number's literal, or a string holding exactly one.
		{"decimal", `{"money":1520.0000000000000001}`, `money: "1520.0000000000000001"`},
		{"decimal exponent", `{"money":-1.5E-2}`, `money: "-1.5E-2"`},
		{"decimal in a string", `{"money":"12.30"}`, `money: "12.30"`},
		{"decimal text", `{"money":"abc"}`, ``},
		{"decimal plus", `{"money":"+1"}`, ``},
		{"decimal space", `{"money":" 1"}`, ``},
		{"decimal bool", `{"money":true}`, ``},

		// Booleans: true and false alone.
		{"true", `{"b":true}`, `b: true`},
		{"false", `{"b":false}`, `b: false`},
		{"bool from a string", `{"b":"true"}`, ``},
		{"bool from a number", `{"b":1}`, ``},

		// Integers: a JSON integer within range, or a string holding one.
		{"int32 max", `{"i32":2147483647}`, `i32: 2147483647`},
		{"int32 over", `{"i32":2147483648}`, ``},
		{"int32 min in a string", `{"i32":"-2147483648"}`, `i32: -2147483648`},
		{"int32 leading zero", `{"i32":"007"}`, ``},
		{"int32 plus", `{"i32":"+5"}`, ``},
		{"int32 space", `{"i32":"5 "}`, ``},
		{"int32 fraction", `{"i32":5.0}`, ``},
		{"int32 exponent", `{"i32":5e0}`, ``},
		{"int32 escaped digit", `{"i32":"\u0035"}`, `i32: 5`},
		{"int64 max", `{"i64":"9223372036854775807"}`, `i64: 9223372036854775807`},
		{"int64 over", `{"i64":9223372036854775808}`, ``},
		{"uint32 max", `{"u32":4294967295}`, `u32: 4294967295`},
		{"uint32 over", `{"u32":4294967296}`, ``},
		{"uint32 negative", `{"u32":-1}`, ``},
		{"uint32 minus zero", `{"u32":-0}`, `u32: 0`},
		{"uint64 max", `{"u64":18446744073709551615}`, `u64: 18446744073709551615`},
		{"uint64 over", `{"u64":"18446744073709551616"}`, ``},
		{"sint, sfixed, fixed", `{"s32":-5,"s64":"-6","sf32":-7,"sf64":-8,"f32":9,"f64":"10"}`,
			`s32: -5 s64: -6 sf32: -7 sf64: -8 f32: 9 f64: 10`},

		// Floats: a finite number, or a string holding one.
		{"float", `{"fl":1.5,"db":"2.25"}`, `fl: 1.5 db: 2.25`},
		{"float overflow", `{"fl":1e39}`, ``},
		{"double max", `{"db":1.7976931348623157e308}`, `db: 1.7976931348623157e308`},
		{"double overflow", `{"db":1e309}`, ``},
		{"double NaN", `{"db":"NaN"}`, ``},
		{"double from a bool", `{"db":true}`, ``},

		// Enums: Opentact's string for a value.
		{"enum", `{"dir":"inbound"}`, `dir: CALL_DIRECTION_INBOUND`},
		{"enum option", `{"dir":"out-bound"}`, `dir: CALL_DIRECTION_OUTBOUND`},
		{"enum name the option replaces", `{"dir":"outbound"}`, ``},
		{"enum upper case", `{"dir":"INBOUND"}`, ``},
		{"enum zero", `{"dir":"unspecified"}`, ``},
		{"enum number", `{"dir":1}`, ``},
		{"enum of an acronym", `{"trunk":"byoc"}`, `trunk: SIP_TRUNK_TYPE_BYOC`},
		{"enum without the prefix", `{"trunk":"elastic_sip"}`, `trunk: ELASTIC_SIP`},

		// Bytes: base64, standard or URL, padded or not.
		{"bytes", `{"data":"aGk="}`, `data: "hi"`},
		{"bytes unpadded", `{"data":"aGk"}`, `data: "hi"`},
		{"bytes URL", `{"data":"-_8="}`, `data: "\xfb\xff"`},
		{"bytes not base64", `{"data":"!!"}`, ``},
		{"bytes from a number", `{"data":5}`, ``},

		// Timestamps: RFC 3339, any fraction, or a bare date.
		{"timestamp ms", `{"at":"2024-01-16T14:15:48.540Z"}`, `at { seconds: 1705414548 nanos: 540000000 }`},
		{"timestamp s", `{"at":"2024-01-16T14:15:15Z"}`, `at { seconds: 1705414515 }`},
		{"timestamp offset", `{"at":"2024-01-16T17:15:48.540+03:00"}`, `at { seconds: 1705414548 nanos: 540000000 }`},
		{"date", `{"at":"1990-05-01"}`, `at { seconds: 641520000 }`},
		{"year 0000", `{"at":"0000-12-31T23:59:59Z"}`, ``},
		{"the last second", `{"at":"9999-12-31T23:59:59.999999999Z"}`, `at { seconds: 253402300799 nanos: 999999999 }`},
		{"beyond the last second", `{"at":"9999-12-31T23:59:59-00:01"}`, ``},
		{"no T", `{"at":"2024-01-16 14:15:48"}`, ``},
		{"no zone", `{"at":"2024-01-16T14:15:48"}`, ``},
		{"seconds since 1970", `{"at":1705414548}`, ``},
		{"a later timestamp replaces, fraction and all", `{"at":"2024-01-16T14:15:48.540Z","at":"2024-01-16T14:15:15Z","at":"x"}`, `at { seconds: 1705414515 }`},

		// Opentact's key.
		{"key option", `{"rateCenter":"x"}`, `rate_center: "x"`},
		{"the name a key replaces", `{"rate_center":"x"}`, `other_fields { key: "rate_center" value: "\"x\"" }`},
		{"number option read as text", `{"tn":15551234567}`, `tn: "15551234567"`},

		// Nested messages.
		{"nested", `{"child":{"s":"x","extra":1}}`, `child { s: "x" other_fields { key: "extra" value: "1" } }`},
		{"nested empty", `{"child":{}}`, `child {}`},
		{"nested wrong type", `{"child":5}`, ``},
		{"nested null", `{"child":null}`, ``},
		{"a later object replaces", `{"child":{"s":"a","tags":["t"]},"child":{"b":true}}`, `child { b: true }`},
		{"a later wrong type keeps", `{"child":{"s":"a"},"child":7,"child":null}`, `child { s: "a" }`},
		{"replaced between others", `{"child":{"s":"a"},"tags":["t"],"child":{"s":"b"},"children":[{"s":"c"}],"child":{"s":"d"},"s":"e"}`,
			`s: "e" child { s: "d" } children { s: "c" } tags: "t"`},

		// Lists: an array, its elements of the right type.
		{"list of objects", `{"children":[{"s":"a"},null,5,"x",[],{"s":"b"}]}`, `children { s: "a" } children { s: "b" }`},
		{"empty list", `{"children":[]}`, ``},
		{"a later list replaces", `{"children":[{"s":"a"}],"children":[{"s":"b"}]}`, `children { s: "b" }`},
		{"a later empty list replaces", `{"children":[{"s":"a"}],"children":[]}`, ``},
		{"a later non-list keeps", `{"children":[{"s":"a"}],"children":{}}`, `children { s: "a" }`},
		{"list of strings", `{"tags":["a",1,true,null,{"x":1},"b"]}`, `tags: ["a", "1", "b"]`},
		{"list of integers", `{"ids":[1,"2",3.5,"x",9223372036854775808]}`, `ids: [1, 2]`},
		{"list of enums", `{"dirs":["inbound","nope","out-bound"]}`, `dirs: [CALL_DIRECTION_INBOUND, CALL_DIRECTION_OUTBOUND]`},
		{"list of timestamps", `{"times":["1990-05-01","x",1]}`, `times { seconds: 641520000 }`},
		{"list of numbers", `{"numbers":[1,"2"]}`, `numbers: ["1", "2"]`},

		// Maps: an object, its members of the right type.
		{"map", `{"labels":{"a":"x","b":1,"c":true,"password":"p"}}`, `labels { key: "a" value: "x" } labels { key: "b" value: "1" }`},
		{"map of messages", `{"named":{"k":{"s":"v"},"j":5}}`, `named { key: "k" value { s: "v" } }`},
		{"map of int keys", `{"flags":{"1":true,"x":true,"2":"no","-3":false,"04":true}}`, `flags { key: 1 value: true } flags { key: -3 value: false }`},
		{"a later map replaces", `{"labels":{"a":"x"},"labels":{"b":"y"}}`, `labels { key: "b" value: "y" }`},
		{"a later non-map keeps", `{"labels":{"a":"x"},"labels":[]}`, `labels { key: "a" value: "x" }`},
		{"a repeated key", `{"labels":{"a":"x","a":"y","a":true}}`, `labels { key: "a" value: "y" }`},

		// other_fields: every member no field models, as JSON text.
		{"other_fields", `{"x":12345678901234567890,"y":{"a":[1,{"password":2,"b":3}]},"z":"q\u00e9","n":null,"f":0.1000000000000000055511151231257827}`,
			`other_fields { key: "x" value: "12345678901234567890" }
			 other_fields { key: "y" value: "{\"a\":[1,{\"b\":3}]}" }
			 other_fields { key: "z" value: "\"qé\"" }
			 other_fields { key: "n" value: "null" }
			 other_fields { key: "f" value: "0.1000000000000000055511151231257827" }`},
		{"nesting kept, space dropped", `{"tz" : { "name" : "Asia/Almaty", "dst" : [ 1.50, { } , [ ] ] } }`,
			`other_fields { key: "tz" value: "{\"name\":\"Asia/Almaty\",\"dst\":[1.50,{},[]]}" }`},
		{"a repeated member", `{"x":1,"x":{"y":2}}`, `other_fields { key: "x" value: "{\"y\":2}" }`},
		{"a member named other_fields", `{"other_fields":{"a":1}}`, `other_fields { key: "other_fields" value: "{\"a\":1}" }`},
		{"invalid UTF-8 in a name", "{\"y\xfe\":[\"\xff\"]}", `other_fields { key: "y\uFFFD" value: "[\"\uFFFD\"]" }`},

		// Dropped names: never read, in any case, at any depth.
		{"dropped", `{"password":"p","PassWord":"p","HA1":1,"ha1B":{"x":2},"pa\u017f\u017fword":3,"pass\u0077ord":4}`, ``},
		{"dropped deeper", `{"child":{"password":"p","labels":{"Ha1":"x"}},"k":[{"ha1b":1,"v":2}]}`,
			`child {} other_fields { key: "k" value: "[{\"v\":2}]" }`},
		{"a dropped name is no field's key", `{"password":"p"}`, ``},
		{"a dropped name as a value is kept", `{"hint":["password","ha1"]}`, `other_fields { key: "hint" value: "[\"password\",\"ha1\"]" }`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := newTest(t, "Kinds")
			if err := codec.Decode([]byte(tt.json), got); err != nil {
				t.Fatalf("Decode(%s): %v", tt.json, err)
			}
			want := parseTest(t, "Kinds", tt.want)
			if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
				t.Errorf("Decode(%s) (-want +got):\n%s", tt.json, diff)
			}
		})
	}
}

// TestDecodeWithoutOtherFields: a message without other_fields skips
// what no field models.
func TestDecodeWithoutOtherFields(t *testing.T) {
	t.Parallel()
	got := newTest(t, "Bare")
	if err := codec.Decode([]byte(`{"s":"x","extra":{"y":1},"password":"p"}`), got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(parseTest(t, "Bare", `s: "x"`), got, protocmp.Transform()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestDecodeGenerated: the rules on the API's own messages.
func TestDecodeGenerated(t *testing.T) {
	t.Parallel()
	str := proto.String
	var got authv1.Account
	raw := `{"uuid":"f2cb","balance":99.87895,"class4_id":"42","created_on":"2024-01-16T14:15:48.540Z","deleted_on":null,
		"wss_online":"yes","phone":87015260731,"users":[{"uuid":"u1"},null,"u2",{"uuid":"u3","password":"hunter2"}],
		"admin":{"uuid":"a","account":{"name":"x"}},"time_zone":{"name":"Asia/Almaty","utc_offset":5}}`
	if err := codec.Decode([]byte(raw), got.ProtoReflect()); err != nil {
		t.Fatal(err)
	}
	want := &authv1.Account{
		Uuid:      str("f2cb"),
		Balance:   str("99.87895"),
		Class4Id:  proto.Int64(42),
		CreatedOn: timestamppb.New(time.Date(2024, 1, 16, 14, 15, 48, 540e6, time.UTC)),
		Phone:     str("87015260731"),
		Users:     []*authv1.User{{Uuid: str("u1")}, {Uuid: str("u3")}},
		Admin:     &authv1.User{Uuid: str("a"), Account: &authv1.Account{Name: str("x")}},
		OtherFields: map[string]string{
			"time_zone": `{"name":"Asia/Almaty","utc_offset":5}`,
		},
	}
	if diff := cmp.Diff(want, &got, protocmp.Transform()); diff != "" {
		t.Errorf("Account (-want +got):\n%s", diff)
	}

	var tok authv1.Token
	if err := codec.Decode([]byte(`{"ttl":60,"expired_on":"2020-10-26T15:58:28.701Z","user":{"email":"e"},"scopes":["sms"]}`), tok.ProtoReflect()); err != nil {
		t.Fatal(err)
	}
	wantTok := &authv1.Token{
		Ttl:         proto.Int32(60),
		ExpiredOn:   timestamppb.New(time.Date(2020, 10, 26, 15, 58, 28, 701e6, time.UTC)),
		User:        &authv1.User{Email: str("e")},
		OtherFields: map[string]string{"scopes": `["sms"]`},
	}
	if diff := cmp.Diff(wantTok, &tok, protocmp.Transform()); diff != "" {
		t.Errorf("Token (-want +got):\n%s", diff)
	}
}

// TestDecodeReplaces: Decode replaces what the message held.
func TestDecodeReplaces(t *testing.T) {
	t.Parallel()
	got := parseTest(t, "Kinds", `s: "old" child { s: "old" } tags: "old"`)
	if err := codec.Decode([]byte(`{"child":{"b":true}}`), got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(parseTest(t, "Kinds", `child { b: true }`), got, protocmp.Transform()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestDecodeErrors: only what is not one JSON object fails.
func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{``, ` `, `null`, `[]`, `"x"`, `5`, `true`, `{`, `{"s":}`, `{"s":"x"`, `{"s":[1,}`,
		`{} {}`, `{}x`, `{"s":"x"}]`, `{'s':1}`, `{"s":"x","s"}`} {
		m := newTest(t, "Kinds")
		if err := codec.Decode([]byte(bad), m); err == nil {
			t.Errorf("Decode(%q) succeeded with %v, want an error", bad, m)
		}
	}
	if err := codec.Decode([]byte(`{"b":"x"}`), newTest(t, "Clash")); err == nil {
		t.Error("Decode into a message whose fields share a key succeeded, want an error")
	}
	if err := codec.Decode([]byte(`{}`), newTest(t, "HoldsClash")); err == nil {
		t.Error("Decode into a message holding one whose fields share a key succeeded, want an error")
	}
}

// TestDecodeOtherEncodings: a required field that is absent fails
// nothing; delimited (group) messages are read as any other.
func TestDecodeOtherEncodings(t *testing.T) {
	t.Parallel()
	req := newTest(t, "Required")
	if err := codec.Decode([]byte(`{"s":"x"}`), req); err != nil {
		t.Errorf("Decode without a required field: %v", err)
	}
	if diff := cmp.Diff(parseTest(t, "Required", `s: "x"`), req, protocmp.Transform()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	got := newTest(t, "Delimited")
	if err := codec.Decode([]byte(`{"g":{"s":"x","g":{}},"g":{"s":"y","g":{}},"gs":[{"s":"a"},1,{}]}`), got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(parseTest(t, "Delimited", `g { s: "y" g {} } gs { s: "a" } gs {}`), got, protocmp.Transform()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if err := codec.DecodeField([]byte(`[null,{"s":"b"}]`), got, fieldOf(t, got, "gs")); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(parseTest(t, "Delimited", `g { s: "y" g {} } gs {} gs { s: "b" }`), got, protocmp.Transform()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestDecodeField: a payload into one field of a response.
func TestDecodeField(t *testing.T) {
	t.Parallel()
	auth := &authv1.GetAuthResponse{}
	user := fieldOf(t, auth, "user")
	if err := codec.DecodeField([]byte(`{"uuid":"u","x":1}`), auth.ProtoReflect(), user); err != nil {
		t.Fatal(err)
	}
	want := &authv1.GetAuthResponse{User: &authv1.User{Uuid: proto.String("u"), OtherFields: map[string]string{"x": "1"}}}
	if diff := cmp.Diff(want, auth, protocmp.Transform()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, bad := range []string{`null`, `[]`, `"x"`, `5`, `{"uuid":`, `{} {}`} {
		if err := codec.DecodeField([]byte(bad), (&authv1.GetAuthResponse{}).ProtoReflect(), user); err == nil {
			t.Errorf("DecodeField(%s) into a message field succeeded, want an error", bad)
		}
	}

	// A top-level list as Opentact's have been read: null is an empty
	// message, another type fails.
	list := &authv1.ListTokensResponse{}
	tokens := fieldOf(t, list, "tokens")
	if err := codec.DecodeField([]byte(`[{"uuid":"a"},null,{"uuid":"b"}]`), list.ProtoReflect(), tokens); err != nil {
		t.Fatal(err)
	}
	wantList := &authv1.ListTokensResponse{Tokens: []*authv1.Token{{Uuid: proto.String("a")}, {}, {Uuid: proto.String("b")}}}
	if diff := cmp.Diff(wantList, list, protocmp.Transform()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if err := codec.DecodeField([]byte(`[]`), list.ProtoReflect(), tokens); err != nil || len(list.Tokens) != 0 {
		t.Errorf("DecodeField([]) = %v, %v; want no tokens", list.Tokens, err)
	}
	for _, bad := range []string{`{}`, `null`, `[{"uuid":"a"},"x"]`, `[1]`, `[[]]`} {
		if err := codec.DecodeField([]byte(bad), (&authv1.ListTokensResponse{}).ProtoReflect(), tokens); err == nil {
			t.Errorf("DecodeField(%s) into a list succeeded, want an error", bad)
		}
	}

	// A scalar field, leniently; the message's other fields stay.
	m := parseTest(t, "Kinds", `s: "keep" i64: 1`)
	if err := codec.DecodeField([]byte(`"9"`), m, fieldOf(t, m, "i64")); err != nil {
		t.Fatal(err)
	}
	if err := codec.DecodeField([]byte(`{"s":"x"}`), m, fieldOf(t, m, "child")); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(parseTest(t, "Kinds", `s: "keep" i64: 9 child { s: "x" }`), m, protocmp.Transform()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if err := codec.DecodeField([]byte(`true`), m, fieldOf(t, m, "i64")); err != nil || m.Has(fieldOf(t, m, "i64")) {
		t.Errorf("DecodeField(true) into an int64: err %v, set %v; want no error and the field unset", err, m.Has(fieldOf(t, m, "i64")))
	}
	if err := codec.DecodeField([]byte(`1`), m, fieldOf(t, auth, "user")); err == nil {
		t.Error("DecodeField with another message's field succeeded, want an error")
	}
}

// TestDecodeConcurrently: plans are built and used from many goroutines
// at once (run with -race).
func TestDecodeConcurrently(t *testing.T) {
	t.Parallel()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			m := newTest(t, "Kinds")
			raw := fmt.Sprintf(`{"s":"%d","child":{"children":[{"i32":%d}]},"named":{"k":{"s":"v"}}}`, i, i)
			if err := codec.Decode([]byte(raw), m); err != nil {
				t.Error(err)
			}
			var u authv1.User
			if err := codec.Decode([]byte(`{"account":{"users":[{"uuid":"u"}]}}`), u.ProtoReflect()); err != nil || u.GetAccount().GetUsers()[0].GetUuid() != "u" {
				t.Errorf("Decode: %v, %v", &u, err)
			}
		})
	}
	wg.Wait()
}

func TestKey(t *testing.T) {
	t.Parallel()
	m := newTest(t, "Kinds")
	for name, want := range map[string]string{"rate_center": "rateCenter", "s": "s", "other_fields": "other_fields"} {
		if got := codec.Key(fieldOf(t, m, protoName(name))); got != want {
			t.Errorf("Key(%s) = %q, want %q", name, got, want)
		}
	}
	if got := codec.Key(fieldOf(t, &authv1.Account{}, "class4_id")); got != "class4_id" {
		t.Errorf("Key(class4_id) = %q", got)
	}
}
