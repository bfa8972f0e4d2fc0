package codec_test

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/opentact-facade/opentact-facade/internal/codec"
)

// A field declared a reference takes Opentact's object or its uuid alone;
// any other message field still leaves a string unset.
func TestReferenceTakesAUUIDForTheObject(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, json, want string }{
		{"object", `{"ref":{"uuid":"a","name":"n"}}`, `ref { uuid: "a" name: "n" }`},
		{"uuid alone", `{"ref":"a"}`, `ref { uuid: "a" }`},
		{"a list of both", `{"refs":["a",{"uuid":"b","name":"n"},null]}`, `refs { uuid: "a" } refs { uuid: "b" name: "n" }`},
		{"not a reference", `{"plain":"a","plains":["b"]}`, ``},
		{"a number is no uuid", `{"ref":7,"refs":[7]}`, ``},
		{"a number is a product's id", `{"product":7,"products":[8,{"id":9,"name":"n"}]}`, `product { id: 7 } products { id: 8 } products { id: 9 name: "n" }`},
		{"a fraction or a string is no id", `{"product":7.5,"products":["8"]}`, ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := newTest(t, "Refs")
			if err := codec.Decode([]byte(tc.json), got); err != nil {
				t.Fatal(err)
			}
			if want := parseTest(t, "Refs", tc.want); !proto.Equal(got, want) {
				t.Errorf("Decode(%s) = %v, want %v", tc.json, got, want)
			}
		})
	}
}

// A payload that is a list of uuids fills a reference list; a list of
// plain messages still refuses one.
func TestReferenceListPayload(t *testing.T) {
	t.Parallel()
	m := newTest(t, "Refs")
	if err := codec.DecodeField([]byte(`["a","b"]`), m, fieldOf(t, m, "refs")); err != nil {
		t.Fatal(err)
	}
	if want := parseTest(t, "Refs", `refs { uuid: "a" } refs { uuid: "b" }`); !proto.Equal(m, want) {
		t.Errorf("got %v, want %v", m, want)
	}
	if err := codec.DecodeField([]byte(`["a"]`), m, fieldOf(t, m, "plains")); err == nil {
		t.Error("a list of strings filled a list of plain messages")
	}
	if err := codec.DecodeField([]byte(`[1.5]`), m, fieldOf(t, m, "products")); err == nil {
		t.Error("a fraction filled a list of products")
	}
}

// Text declared file travels as a file part, under its key.
func TestMultipartFileText(t *testing.T) {
	t.Parallel()
	m := newTest(t, "Upload")
	m.Set(fieldOf(t, m, "id"), protoreflect.ValueOfString("x"))
	xml := `<?xml version="1.0" encoding="UTF-8"?>` + "\n<Response><Hangup/></Response>\n"
	m.Set(fieldOf(t, m, "xml"), protoreflect.ValueOfString(xml))
	body, contentType, err := codec.Multipart(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := readParts(t, body, contentType)
	want := []part{{Name: "id", Body: "x"}, {Name: "file", File: "file", Type: "text/xml; charset=utf-8", Body: xml}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("parts = %+v, want %+v", got, want)
	}
}

// A reference declared clear is sent as null when set to "": Opentact's
// way to take it away. Other text is sent as it is, "" included.
func TestClearSendsNull(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ text, want string }{
		{`ref: "" name: ""`, `{"ref":null,"name":""}`},
		{`ref: "a"`, `{"ref":"a"}`},
		{``, `{}`},
	} {
		b, err := codec.Encode(nil, parseTest(t, "Clearable", tc.text), nil)
		if err != nil || string(b) != tc.want {
			t.Errorf("Encode(%s) = %s, %v; want %s", tc.text, b, err, tc.want)
		}
	}
}
