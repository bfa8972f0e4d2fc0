package codec_test

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/testing/protocmp"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/codec"
)

// TestEncodeKinds: each kind's rule, on a dynamic message given in
// prototext.
func TestEncodeKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, msg, want string
	}{
		{"nothing set", ``, `{}`},
		{"implicit presence, empty", `plain: ""`, `{}`},
		{"implicit presence", `plain: "p"`, `{"plain":"p"}`},
		{"explicit presence, empty", `s: "" b: false i32: 0`, `{"s":"","b":false,"i32":0}`},
		{"field number order", `db: 1 s: "x" i32: 2`, `{"s":"x","i32":2,"db":1}`},
		{"text is escaped", `s: "a\"b\\c\n\u00e9<"`, `{"s":"a\"b\\c\né<"}`},
		{"64-bit integers are numbers", `i64: 9007199254740993 u64: 18446744073709551615 s64: -9223372036854775808`,
			`{"i64":9007199254740993,"u64":18446744073709551615,"s64":-9223372036854775808}`},
		{"other integers", `u32: 4294967295 s32: -5 sf32: -7 sf64: -8 f32: 9 f64: 10`,
			`{"u32":4294967295,"s32":-5,"sf32":-7,"sf64":-8,"f32":9,"f64":10}`},
		{"floats, shortest", `fl: 0.1 db: 0.1`, `{"fl":0.1,"db":0.1}`},
		{"floats, large and small", `db: 1e21 fl: 1e-7`, `{"fl":1e-7,"db":1e+21}`},
		{"floats, plain", `db: 123456789 fl: 0.000001`, `{"fl":0.000001,"db":123456789}`},
		{"enum", `dir: CALL_DIRECTION_INBOUND trunk: SIP_TRUNK_TYPE_BYOC`, `{"dir":"inbound","trunk":"byoc"}`},
		{"enum option", `dir: CALL_DIRECTION_OUTBOUND`, `{"dir":"out-bound"}`},
		{"enum zero is unset", `dir: CALL_DIRECTION_UNSPECIFIED`, `{}`},
		{"bytes", `data: "hi\xff"`, `{"data":"aGn/"}`},
		{"timestamp", `at { seconds: 1705414548 nanos: 540000000 }`, `{"at":"2024-01-16T14:15:48.54Z"}`},
		{"timestamp, whole seconds", `at { seconds: 0 }`, `{"at":"1970-01-01T00:00:00Z"}`},
		{"decimal", `money: "1520.0000000000000001"`, `{"money":1520.0000000000000001}`},
		{"number", `tn: "15551234567"`, `{"tn":15551234567}`},
		{"number with a leading plus", `tn: "+15551234567"`, `{"tn":15551234567}`},
		{"number zero", `tn: "0"`, `{"tn":0}`},
		{"key", `rate_center: "x"`, `{"rateCenter":"x"}`},
		{"a dropped name is written", `password: "p"`, `{"password":"p"}`},
		{"nested", `child { s: "a" child { b: true } }`, `{"child":{"s":"a","child":{"b":true}}}`},
		{"nested empty", `child {}`, `{"child":{}}`},
		{"lists", `children { s: "a" } children {} tags: ["x", "y"] ids: [1, -2] dirs: [CALL_DIRECTION_OUTBOUND] times { seconds: 1 } numbers: ["1", "23"]`,
			`{"children":[{"s":"a"},{}],"tags":["x","y"],"ids":[1,-2],"dirs":["out-bound"],"times":["1970-01-01T00:00:01Z"],"numbers":[1,23]}`},
		{"maps, by key", `labels { key: "b" value: "2" } labels { key: "a" value: "1" } named { key: "k" value { s: "v" } }
			flags { key: 10 value: true } flags { key: -3 value: false } flags { key: 2 value: true }`,
			`{"labels":{"a":"1","b":"2"},"named":{"k":{"s":"v"}},"flags":{"-3":false,"2":true,"10":true}}`},
		{"other_fields, after the fields, by name", `s: "x" other_fields { key: "z" value: "[1, 2]" } other_fields { key: "a" value: "{\"k\":12345678901234567890}" }`,
			`{"s":"x","a":{"k":12345678901234567890},"z":[1,2]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := codec.Encode(nil, parseTest(t, "Kinds", tt.msg), nil)
			if err != nil {
				t.Fatalf("Encode(%s): %v", tt.msg, err)
			}
			if string(got) != tt.want {
				t.Errorf("Encode(%s)\n got %s\nwant %s", tt.msg, got, tt.want)
			}
		})
	}
}

// TestEncodeErrors: what cannot be sent as Opentact reads it is refused.
func TestEncodeErrors(t *testing.T) {
	t.Parallel()
	for _, msg := range []string{
		`tn: "++15551234567"`, `tn: "+"`, `tn: "0123"`, `tn: ""`, `tn: "12a"`, `tn: "1 2"`, `tn: "١٢"`,
		`numbers: ["1", "x"]`,
		`money: "abc"`, `money: "1,5"`,
		`db: inf`, `db: -inf`, `db: nan`, `fl: inf`,
		`dir: 7`, `dirs: [CALL_DIRECTION_UNSPECIFIED]`,
		`at { seconds: -62135596801 }`, `at { seconds: 253402300800 }`, `at { nanos: -1 }`,
		`child { tn: "x" }`,
		`other_fields { key: "x" value: "{" }`, `other_fields { key: "x" value: "1 2" }`,
		`other_fields { key: "s" value: "1" }`, `other_fields { key: "rateCenter" value: "1" }`,
	} {
		if got, err := codec.Encode([]byte("keep"), parseTest(t, "Kinds", msg), nil); err == nil || string(got) != "keep" {
			t.Errorf("Encode(%s) = %s, %v; want an error and dst as it was", msg, got, err)
		}
	}
	if _, err := codec.Encode(nil, parseTest(t, "Clash", `a: "x"`), nil); err == nil {
		t.Error("Encode of a message whose fields share a key succeeded, want an error")
	}
	if _, err := codec.Encode(nil, parseTest(t, "HoldsClash", ``), nil); err == nil {
		t.Error("Encode of a message holding one whose fields share a key succeeded, want an error")
	}
}

// TestEncodeGenerated: request messages of the API, with the fields a
// path takes skipped, appended to dst.
func TestEncodeGenerated(t *testing.T) {
	t.Parallel()
	req := &authv1.UpdateTokenRequest{Uuid: "u", Name: proto.String("n"), Ttl: proto.Int32(60)}
	skipUUID := func(fd protoreflect.FieldDescriptor) bool { return fd.Name() == "uuid" }
	got, err := codec.Encode([]byte("body: "), req.ProtoReflect(), skipUUID)
	if err != nil || string(got) != `body: {"name":"n","ttl":60}` {
		t.Errorf("Encode(%v) = %s, %v", req, got, err)
	}
	got, err = codec.Encode(nil, (&authv1.CreateTokenRequest{Name: "ci"}).ProtoReflect(), nil)
	if err != nil || string(got) != `{"name":"ci"}` {
		t.Errorf("Encode(CreateTokenRequest) = %s, %v", got, err)
	}
}

// TestEncodeDecode: what Encode writes, Decode reads back as it was.
func TestEncodeDecode(t *testing.T) {
	t.Parallel()
	want := parseTest(t, "Kinds", `s: "x" plain: "p" b: true i32: -1 i64: 9007199254740993 u32: 1 u64: 18446744073709551615
		s32: -2 s64: -3 sf32: -4 sf64: -5 f32: 6 f64: 7 fl: 0.1 db: 1e-300 dir: CALL_DIRECTION_OUTBOUND data: "\x00\xff"
		at { seconds: 1705414548 nanos: 1 } money: "-0.5e-3" tn: "15551234567" rate_center: "rc"
		child { s: "c" children { i32: 1 } } children { s: "a" } tags: ["t", ""] ids: [0, 1] dirs: [CALL_DIRECTION_INBOUND]
		labels { key: "" value: "v" } named { key: "k" value { b: false } } flags { key: -1 value: true }
		times { seconds: -62135596800 } numbers: ["0", "42"] trunk: ELASTIC_SIP
		other_fields { key: "extra" value: "{\"n\":12345678901234567890}" }`)
	b, err := codec.Encode(nil, want, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := newTest(t, "Kinds")
	if err := codec.Decode(b, got); err != nil {
		t.Fatalf("Decode(%s): %v", b, err)
	}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("Decode(Encode(m)) (-m +got), through %s:\n%s", b, diff)
	}
}

func TestText(t *testing.T) {
	t.Parallel()
	m := parseTest(t, "Kinds", `s: "a/b" i64: -5 u64: 18446744073709551615 b: false fl: 0.1 db: 1e21 dir: CALL_DIRECTION_OUTBOUND
		data: "hi" at { seconds: 1 nanos: 500 } tn: "15551234567" money: "1.50" child { s: "x" } tags: "t"`)
	for name, want := range map[string]string{
		"s": "a/b", "i64": "-5", "u64": "18446744073709551615", "b": "false", "fl": "0.1", "db": "1e+21",
		"dir": "out-bound", "data": "aGk=", "at": "1970-01-01T00:00:01.0000005Z", "tn": "15551234567", "money": "1.50",
	} {
		if got, ok := codec.Text(m, fieldOf(t, m, protoName(name))); !ok || got != want {
			t.Errorf("Text(%s) = %q, %v; want %q", name, got, ok, want)
		}
	}
	for _, name := range []string{"plain", "i32", "trunk", "child", "tags", "labels"} {
		if got, ok := codec.Text(m, fieldOf(t, m, protoName(name))); ok {
			t.Errorf("Text(%s) = %q, true; want false (unset or not a scalar)", name, got)
		}
	}
	if got, ok := codec.Text(parseTest(t, "Kinds", `dir: CALL_DIRECTION_UNSPECIFIED`), fieldOf(t, m, "dir")); ok {
		t.Errorf("Text of the zero enum value = %q, true; want false", got)
	}
}

// part is a multipart part as read back.
type part struct {
	Name, File, Type, Body string
}

func readParts(t *testing.T, body []byte, contentType string) []part {
	t.Helper()
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil || mediaType != "multipart/form-data" {
		t.Fatalf("content type %q: %v", contentType, err)
	}
	r := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var out []part
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, part{p.FormName(), p.FileName(), p.Header.Get("Content-Type"), string(b)})
	}
}

func TestMultipart(t *testing.T) {
	t.Parallel()
	png := "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
	m := parseTest(t, "Kinds", `s: "x" i64: 5 tn: "1555" rate_center: "rc" child { s: "c" } tags: ["a", "b"]
		labels { key: "k" value: "v" } plain: "skipped"
		other_fields { key: "o" value: "\"text\"" } other_fields { key: "p" value: "[1]" }`)
	m.Set(fieldOf(t, m, "data"), protoreflect.ValueOfBytes([]byte(png)))
	skip := func(fd protoreflect.FieldDescriptor) bool { return fd.Name() == "plain" }
	body, contentType, err := codec.Multipart(m, skip)
	if err != nil {
		t.Fatal(err)
	}
	want := []part{
		{Name: "s", Body: "x"},
		{Name: "i64", Body: "5"},
		{Name: "data", File: "data", Type: "image/png", Body: png},
		{Name: "tn", Body: "1555"},
		{Name: "rateCenter", Body: "rc"},
		{Name: "child", Body: `{"s":"c"}`},
		{Name: "tags", Body: "a"},
		{Name: "tags", Body: "b"},
		{Name: "labels", Body: `{"k":"v"}`},
		{Name: "o", Body: "text"},
		{Name: "p", Body: "[1]"},
	}
	if diff := cmp.Diff(want, readParts(t, body, contentType)); diff != "" {
		t.Errorf("parts (-want +got):\n%s", diff)
	}

	// Any other bytes are application/octet-stream.
	bin := parseTest(t, "Kinds", `data: "\x00\x01"`)
	body, contentType, err = codec.Multipart(bin, nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]part{{Name: "data", File: "data", Type: "application/octet-stream", Body: "\x00\x01"}}, readParts(t, body, contentType)); diff != "" {
		t.Errorf("parts (-want +got):\n%s", diff)
	}

	for _, msg := range []string{`tn: "+-1"`, `numbers: ["x"]`, `db: nan`, `other_fields { key: "o" value: "{" }`, `other_fields { key: "s" value: "1" }`} {
		if _, _, err := codec.Multipart(parseTest(t, "Kinds", msg), nil); err == nil {
			t.Errorf("Multipart(%s) succeeded, want an error", msg)
		}
	}
}
