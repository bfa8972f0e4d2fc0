package codec_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/codec"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// FuzzAuthResponse feeds raw answer bodies of GET /rest/auth through the
// client's envelope (upstream.DecodeAnswer; a body that is not an answer is
// decoded as a bare payload) and the codec, into GetAuthResponse.user as
// the engine declares it, and checks what a caller of GetAuth would
// notice:
//
//   - nothing panics, and a syntactically valid JSON object always decodes
//     (the payload types are documented as lenient);
//   - the response marshals as binary proto and as protojson (so every string
//     is valid UTF-8 and every Timestamp in range) and both round-trip;
//   - decoding and mapping are deterministic;
//   - each field follows the README's contract for the JSON value it was sent
//     as: a string field equals the JSON string (or a number's digits), a
//     bool is set only from true/false, balance keeps the decimal digits as
//     sent, a timestamp is the instant of an RFC 3339 text or a bare date,
//     an account is present only for an object, users are the array's
//     objects, and anything else (null, absent, another JSON type) leaves
//     the field unset;
//   - every member no field models is in other_fields, with a value that is
//     the JSON sent (numbers digit for digit) less any dropped name, at any
//     depth, and no modelled or dropped name is there.
//
// The per-field contract is only checked for a field whose JSON name occurs
// exactly once in the payload object: a repeated name is applied again, and
// a later null leaves an earlier value in place, so a duplicated name has
// no single expected value.
func FuzzAuthResponse(f *testing.F) {
	dir := filepath.Join("..", "..", "testdata", "opentact")
	entries, err := os.ReadDir(dir)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range fuzzAuthSeeds {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, body []byte) {
		resp, viaEnvelope, ok := fuzzDecodeAnswer(body)
		if !ok {
			if fuzzIsObject(body) && json.Valid(body) {
				t.Fatalf("a valid JSON object failed to decode as an answer: %q", body)
			}
			return
		}
		if resp.GetUser() == nil {
			t.Fatalf("no user for %q", body)
		}

		// Determinism: an independent decoding gives an equal message.
		again, _, ok2 := fuzzDecodeAnswer(body)
		if !ok2 {
			t.Fatal("second decoding of the same body failed")
		}
		if !proto.Equal(resp, again) {
			t.Fatalf("decoding is not deterministic:\n%v\n%v", resp, again)
		}

		fuzzCheckWellFormed(t, resp.ProtoReflect(), "")
		fuzzCheckRoundTrips(t, resp)

		// The per-field contract, checked against the JSON itself: find the
		// object the User was decoded from.
		top, isObject := fuzzMembers(body)
		if !isObject {
			// Only a bare null decodes without being an object, and it
			// sets nothing.
			if proto.Size(resp.GetUser()) != 0 {
				t.Fatalf("non-object answer %q mapped to %v", body, resp.GetUser())
			}
			return
		}
		payloads := fuzzLookup(top, "payload")
		members := top // a bare payload
		switch {
		case len(payloads) > 1:
			return // a duplicated "payload": the last one is decoded
		case viaEnvelope && len(payloads) == 0:
			t.Fatalf("decoded a payload from %q, but the oracle finds no payload member", body)
		case viaEnvelope:
			if members, ok = fuzzMembers(payloads[0]); !ok {
				t.Fatalf("decoded a payload from %q, which is not an object", payloads[0])
			}
		case len(payloads) == 1 && fuzzIsObject(payloads[0]) && slices.ContainsFunc(fuzzLookup(top, "success"), func(b []byte) bool { return string(b) == "true" }):
			t.Fatalf("the answer has a payload object but decoding it failed: %q", body)
		}
		fuzzCheckFields(t, resp.GetUser().ProtoReflect(), members, "user.")
	})
}

var fuzzAuthSeeds = []string{
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
}

// fuzzDecodeAnswer decodes body as the engine does when it is an answer,
// and otherwise, when it is valid JSON, as a bare payload, so that mutated
// bodies without a valid envelope still reach the codec.
func fuzzDecodeAnswer(body []byte) (resp *authv1.GetAuthResponse, viaEnvelope, ok bool) {
	decode := func(b []byte) (*authv1.GetAuthResponse, bool) {
		resp := &authv1.GetAuthResponse{}
		m := resp.ProtoReflect()
		err := upstream.DecodeAnswer(b, func(p []byte) error {
			if p == nil {
				return errors.New("no payload")
			}
			return codec.DecodeField(p, m, m.Descriptor().Fields().ByName("user"))
		})
		return resp, err == nil
	}
	if resp, ok := decode(body); ok {
		return resp, true, true
	}
	if !json.Valid(body) {
		return nil, false, false
	}
	wrapped := append(append([]byte(`{"success":true,"payload":`), body...), '}')
	if resp, ok := decode(wrapped); ok {
		return resp, false, true
	}
	return nil, false, false
}

// fuzzMember is one name/value pair of a JSON object, in input order.
type fuzzMember struct {
	name  string // unescaped
	value []byte // the raw value, without surrounding space
}

// fuzzMembers lists the top-level members of a JSON object; ok is false if
// raw is not one.
func fuzzMembers(raw []byte) (members []fuzzMember, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		name, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		members = append(members, fuzzMember{name: name, value: bytes.TrimSpace(v)})
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, false
	}
	return members, true
}

// fuzzLookup returns the values of every member named name: names match
// exactly, as Opentact spells them, so "EMAIL" is not "email".
func fuzzLookup(members []fuzzMember, name string) [][]byte {
	var out [][]byte
	for _, m := range members {
		if m.name == name {
			out = append(out, m.value)
		}
	}
	return out
}

func fuzzIsObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{'
}

func fuzzIsNumberLiteral(raw []byte) bool {
	return len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9')
}

// fuzzJSONNumber is RFC 8259's number grammar, written independently of
// upstream's isNumber.
var fuzzJSONNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

var fuzzJSONInteger = regexp.MustCompile(`^-?(0|[1-9][0-9]*)$`)

// fuzzCheckWellFormed checks what proto marshalling relies on: every
// string is valid UTF-8 and every Timestamp is within its documented range.
func fuzzCheckWellFormed(t *testing.T, m protoreflect.Message, path string) {
	t.Helper()
	if m.Descriptor().FullName() == "google.protobuf.Timestamp" {
		if err := m.Interface().(*timestamppb.Timestamp).CheckValid(); err != nil {
			t.Errorf("%s: invalid Timestamp: %v", strings.TrimSuffix(path, "."), err)
		}
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		p := path + string(fd.Name())
		switch {
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
				if !utf8.ValidString(k.String()) || !utf8.ValidString(v.String()) {
					t.Errorf("%s: invalid UTF-8 in %q: %q", p, k.String(), v.String())
				}
				return true
			})
		case fd.IsList():
			for i := range v.List().Len() {
				fuzzCheckWellFormed(t, v.List().Get(i).Message(), fmt.Sprintf("%s[%d].", p, i))
			}
		case fd.Kind() == protoreflect.StringKind:
			if !utf8.ValidString(v.String()) {
				t.Errorf("%s: invalid UTF-8 %q", p, v.String())
			}
		case fd.Message() != nil:
			fuzzCheckWellFormed(t, v.Message(), p+".")
		}
		return true
	})
}

func fuzzCheckRoundTrips(t *testing.T, resp *authv1.GetAuthResponse) {
	t.Helper()
	bin, err := proto.MarshalOptions{Deterministic: true}.Marshal(resp)
	if err != nil {
		t.Fatalf("proto.Marshal: %v\n%v", err, resp)
	}
	bin2, err := proto.MarshalOptions{Deterministic: true}.Marshal(resp)
	if err != nil || !bytes.Equal(bin, bin2) {
		t.Fatalf("deterministic proto.Marshal differs between two runs (err %v)", err)
	}
	var fromBin authv1.GetAuthResponse
	if err := proto.Unmarshal(bin, &fromBin); err != nil {
		t.Fatalf("proto.Unmarshal of our own output: %v", err)
	}
	if !proto.Equal(resp, &fromBin) {
		t.Fatalf("binary round trip changed the message:\n%v\n%v", resp, &fromBin)
	}
	// The REST gateway writes protojson with the proto field names.
	js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(resp)
	if err != nil {
		t.Fatalf("protojson.Marshal: %v\n%v", err, resp)
	}
	var fromJSON authv1.GetAuthResponse
	if err := protojson.Unmarshal(js, &fromJSON); err != nil {
		t.Fatalf("protojson.Unmarshal of our own output %s: %v", js, err)
	}
	if !proto.Equal(resp, &fromJSON) {
		t.Fatalf("protojson round trip changed the message:\n%v\n%s\n%v", resp, js, &fromJSON)
	}
}

// fuzzCheckFields checks each field of m (a User or an Account) against
// the JSON members of the object it was decoded from. Proto field names are
// Opentact's JSON names, so every field of the API is covered, including
// ones added later.
func fuzzCheckFields(t *testing.T, m protoreflect.Message, members []fuzzMember, path string) {
	t.Helper()
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		name := string(fd.Name())
		p := path + name
		if fd.IsMap() {
			fuzzCheckOther(t, m, fd, members, p)
			continue
		}
		raws := fuzzLookup(members, name)
		if len(raws) > 1 {
			continue // no single expected value; see FuzzAuthResponse
		}
		if fd.IsList() {
			fuzzCheckList(t, m.Get(fd).List(), raws, p)
			continue
		}
		has := m.Has(fd)
		if len(raws) == 0 {
			if has {
				t.Errorf("%s is set to %v though the payload has no %q", p, m.Get(fd), name)
			}
			continue
		}
		raw := raws[0]
		switch {
		case fd.Kind() == protoreflect.BoolKind:
			want, set := false, false
			switch string(raw) {
			case "true":
				want, set = true, true
			case "false":
				set = true
			}
			fuzzExpect(t, p, raw, has, set)
			if has && set && m.Get(fd).Bool() != want {
				t.Errorf("%s = %v, want %v (from %s)", p, m.Get(fd).Bool(), want, raw)
			}

		case fd.Kind() == protoreflect.StringKind && name == "balance":
			// A decimal: a JSON number's exact digits, or a JSON string
			// holding a JSON number; anything else is unset.
			want, set := "", false
			switch {
			case fuzzIsNumberLiteral(raw):
				want, set = string(raw), true
			case raw[0] == '"':
				var s string
				if err := json.Unmarshal(raw, &s); err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				if fuzzJSONNumber.MatchString(s) {
					want, set = s, true
				}
			}
			fuzzExpect(t, p, raw, has, set)
			if has && set && m.Get(fd).String() != want {
				t.Errorf("%s = %q, want %q (from %s)", p, m.Get(fd).String(), want, raw)
			}

		case fd.Kind() == protoreflect.StringKind:
			// Text: a JSON string, or a JSON number kept as its digits.
			want, set := "", false
			switch {
			case raw[0] == '"':
				if err := json.Unmarshal(raw, &want); err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				set = true
				// Where the JSON string is plain (valid UTF-8, no escapes),
				// the value must be its bytes exactly, without relying on
				// encoding/json to say so.
				if inner := raw[1 : len(raw)-1]; utf8.Valid(inner) && !bytes.ContainsRune(inner, '\\') && string(inner) != want {
					t.Fatalf("oracle disagrees with itself on %s: %q vs %q", p, inner, want)
				}
			case fuzzIsNumberLiteral(raw):
				want, set = string(raw), true
			}
			fuzzExpect(t, p, raw, has, set)
			if has && set && m.Get(fd).String() != want {
				t.Errorf("%s = %q, want %q (from %s)", p, m.Get(fd).String(), want, raw)
			}

		case fd.Kind() == protoreflect.Int64Kind || fd.Kind() == protoreflect.Int32Kind:
			// A JSON integer, or a JSON string holding one, within range.
			text := string(raw)
			if raw[0] == '"' {
				if err := json.Unmarshal(raw, &text); err != nil {
					t.Fatalf("%s: %v", p, err)
				}
			}
			n, set := new(big.Int), false
			if fuzzJSONInteger.MatchString(text) {
				n.SetString(text, 10)
				bits := uint(64)
				if fd.Kind() == protoreflect.Int32Kind {
					bits = 32
				}
				limit := new(big.Int).Lsh(big.NewInt(1), bits-1)
				set = n.Cmp(new(big.Int).Neg(limit)) >= 0 && n.Cmp(limit) < 0
			}
			fuzzExpect(t, p, raw, has, set)
			if has && set && m.Get(fd).Int() != n.Int64() {
				t.Errorf("%s = %d, want %s (from %s)", p, m.Get(fd).Int(), n, raw)
			}

		case fd.Message() != nil && fd.Message().FullName() == "google.protobuf.Timestamp":
			// RFC 3339 text (any precision, any offset) or a bare date read
			// as midnight UTC, if a Timestamp can hold it; else unset.
			var want time.Time
			set := false
			if raw[0] == '"' {
				var s string
				if err := json.Unmarshal(raw, &s); err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				want, set = fuzzParseTime(s)
			}
			fuzzExpect(t, p, raw, has, set)
			if has && set {
				if got := m.Get(fd).Message().Interface().(*timestamppb.Timestamp).AsTime(); !got.Equal(want) {
					t.Errorf("%s = %v, want %v (from %s)", p, got, want, raw)
				}
			}

		case fd.Message() != nil:
			// A nested object (account, admin): present exactly for a JSON object.
			set := raw[0] == '{'
			fuzzExpect(t, p, raw, has, set)
			if has && set {
				sub, ok := fuzzMembers(raw)
				if !ok {
					t.Fatalf("%s: cannot read the object %s", p, raw)
				}
				fuzzCheckFields(t, m.Get(fd).Message(), sub, p+".")
			}

		default:
			t.Errorf("%s: field kind %v is not covered by this fuzz target; extend it", p, fd.Kind())
		}
	}
}

// fuzzCheckList checks a repeated message field (users): the array's
// object elements, in order; unset for anything but an array.
func fuzzCheckList(t *testing.T, list protoreflect.List, raws [][]byte, p string) {
	t.Helper()
	var objects [][]byte
	if len(raws) == 1 && raws[0][0] == '[' {
		var elems []json.RawMessage
		if err := json.Unmarshal(raws[0], &elems); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for _, e := range elems {
			if e = bytes.TrimSpace(e); fuzzIsObject(e) {
				objects = append(objects, e)
			}
		}
	}
	if list.Len() != len(objects) {
		t.Fatalf("%s has %d elements, want the %d objects of %s", p, list.Len(), len(objects), raws)
	}
	for i, o := range objects {
		sub, ok := fuzzMembers(o)
		if !ok {
			t.Fatalf("%s[%d]: cannot read the object %s", p, i, o)
		}
		fuzzCheckFields(t, list.Get(i).Message(), sub, fmt.Sprintf("%s[%d].", p, i))
	}
}

// fuzzCheckOther checks other_fields: exactly the members whose name no
// field of m has and is not dropped, each the JSON sent (the last one, for
// a repeated name) with dropped names removed at any depth.
func fuzzCheckOther(t *testing.T, m protoreflect.Message, fd protoreflect.FieldDescriptor, members []fuzzMember, p string) {
	t.Helper()
	want := map[string][]byte{}
	for _, mb := range members {
		if modelled := m.Descriptor().Fields().ByName(protoreflect.Name(mb.name)); (modelled != nil && !modelled.IsMap()) || fuzzDropped(mb.name) {
			continue
		}
		want[mb.name] = mb.value
	}
	got := m.Get(fd).Map()
	if got.Len() != len(want) {
		var names []string
		got.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
			names = append(names, k.String())
			return true
		})
		t.Fatalf("%s carries %q, want the %d members %v", p, names, len(want), slices.Sorted(maps.Keys(want)))
	}
	for name, raw := range want {
		v := got.Get(protoreflect.ValueOfString(name).MapKey())
		if !v.IsValid() {
			t.Errorf("%s lacks %q (sent %s)", p, name, raw)
			continue
		}
		carried, sent := fuzzJSONTree(t, []byte(v.String())), fuzzJSONTree(t, raw)
		if !reflect.DeepEqual(carried, fuzzWithoutDropped(sent)) {
			t.Errorf("%s[%q] = %s, want %s less dropped names", p, name, v.String(), raw)
		}
	}
}

// fuzzJSONTree parses JSON with numbers kept as their literal text.
func fuzzJSONTree(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		t.Fatalf("not one JSON value (%v): %q", err, b)
	}
	return v
}

func fuzzWithoutDropped(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if fuzzDropped(k) {
				delete(v, k)
			} else {
				v[k] = fuzzWithoutDropped(e)
			}
		}
	case []any:
		for i, e := range v {
			v[i] = fuzzWithoutDropped(e)
		}
	}
	return v
}

func fuzzDropped(name string) bool {
	return slices.ContainsFunc(codec.DroppedNames, func(d string) bool { return strings.EqualFold(d, name) })
}

func fuzzExpect(t *testing.T, path string, raw []byte, has, want bool) {
	t.Helper()
	switch {
	case has && !want:
		t.Errorf("%s is set, but the payload sent %s, which must leave it unset", path, raw)
	case !has && want:
		t.Errorf("%s is unset, but the payload sent %s", path, raw)
	}
}

// fuzzParseTime is the README's timestamp contract, limited to what a
// google.protobuf.Timestamp can hold (0001-01-01 to 9999-12-31 UTC).
func fuzzParseTime(s string) (time.Time, bool) {
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		if v, err = time.Parse(time.DateOnly, s); err != nil {
			return time.Time{}, false
		}
	}
	if y := v.UTC().Year(); y < 1 || y > 9999 {
		return time.Time{}, false
	}
	return v, true
}
