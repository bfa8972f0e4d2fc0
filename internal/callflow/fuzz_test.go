package callflow

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	callv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/call/v1"
)

func addGoldenSeeds(f *testing.F) {
	files, err := filepath.Glob("testdata/golden/*.xml")
	if err != nil || len(files) == 0 {
		f.Fatalf("no golden XML: %v", err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzRoundTrip reads arbitrary bytes as XML. Parse takes nothing Check
// refuses, and errs with an *Error; whatever Parse takes, Render writes
// XML that Check takes and that Parse reads back to the same flow, and
// rendering that again gives the same bytes.
func FuzzRoundTrip(f *testing.F) {
	addGoldenSeeds(f)
	for _, s := range []string{
		"<Response>\n    <!-- c --><Scheduler dow=\"sun\"><Say>\n x </Say></Scheduler>\n</Response>",
		"<Response><Say a=\"&#xD;&#x9;\r\n\">&#xD;<![CDATA[<&>]]></Say><Tone/></Response>",
		"<Response><Gather><DTMF value=\"1\"/><Say/><Default/><Default/></Gather></Response>",
		"<Response><Play url=\"u\" loop=\"007\">x</Play><Record asr=\"true\"/></Response>",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		flow, err := Parse(data)
		checkErr := Check(data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Line < 1 {
				t.Fatalf("Parse's error %v is not an *Error with a line", err)
			}
			return
		}
		if checkErr != nil {
			t.Fatalf("Parse took what Check refuses: %v", checkErr)
		}
		out, err := Render(flow)
		if errors.Is(err, ErrTooLarge) {
			return // the layout made it bigger than the input
		}
		if err != nil {
			t.Fatalf("Render of a parsed flow: %v\n%v", err, flow)
		}
		if err := Check(out); err != nil {
			t.Fatalf("Check refuses Render's XML: %v\n%s", err, out)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse of Render's XML: %v\n%s", err, out)
		}
		if !proto.Equal(flow, again) {
			t.Fatalf("round trip changed the flow:\n%v\n%v\n%s", flow, again, out)
		}
		out2, err := Render(again)
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("Render is not stable (%v):\n%s\n%s", err, out, out2)
		}
	})
}

// FuzzRenderParse builds a flow from the fuzz bytes (every verb, nested,
// every attribute, text with markup characters and Unicode) and checks
// that Parse(Render(f)) is f and that Check takes Render's XML.
func FuzzRenderParse(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("golden"))
	f.Add(bytes.Repeat([]byte{0xff, 0x01, 0x80, 0x07}, 64))
	for i := range 32 {
		f.Add([]byte{byte(i), byte(i * 7), byte(i * 13), 3, 2, 1, byte(255 - i)})
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g := &gen{data: data, budget: 120}
		flow := &callv1.CallFlow{}
		g.fill(tables().root, flow.ProtoReflect(), 1)
		out, err := Render(flow)
		if err != nil {
			t.Fatalf("Render: %v\n%v", err, flow)
		}
		if err := Check(out); err != nil {
			t.Fatalf("Check refuses Render's XML: %v\n%s", err, out)
		}
		back, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse: %v\n%s", err, out)
		}
		if !proto.Equal(back, flow) {
			t.Fatalf("Parse(Render(f)) is not f:\n%v\n%v\n%s", flow, back, out)
		}
	})
}

// gen draws a flow from bytes, by the same shapes Parse and Render use, so
// that a new verb is fuzzed as soon as it is declared.
type gen struct {
	data   []byte
	budget int // elements left
}

func (g *gen) byte() byte {
	if len(g.data) == 0 {
		return 0
	}
	b := g.data[0]
	g.data = g.data[1:]
	return b
}

func (g *gen) n(max int) int { return int(g.byte()) % max }

var pieces = []string{"a", "Z9", " ", "  ", "&", "<", ">", `"`, "'", "\t", "\n", "\r", "\r\n", "]]>", "&amp;", "é", "日本", "🎉", "\u00a0", "x-y", "#", "*", ""}

func (g *gen) text() string {
	var b []byte
	for range g.n(6) {
		b = append(b, pieces[g.n(len(pieces))]...)
	}
	return string(b)
}

var names = []string{"voice", "x", "_a", "a.b", "x-y", "Z9", "lang", "url", "text", "tag", "xmlns", "timeout"}

func (g *gen) fill(sh *shape, m protoreflect.Message, depth int) {
	for _, a := range sh.attrs {
		if g.n(3) == 0 {
			continue
		}
		switch a.fd.Kind() {
		case protoreflect.Uint32Kind:
			v := uint32(g.byte())
			if g.n(4) == 0 {
				v = 1<<32 - 1 - v
			}
			m.Set(a.fd, protoreflect.ValueOfUint32(v))
		case protoreflect.BoolKind:
			m.Set(a.fd, protoreflect.ValueOfBool(g.n(2) == 0))
		default:
			m.Set(a.fd, protoreflect.ValueOfString(g.text()))
		}
	}
	if sh.other != nil {
		for range g.n(3) {
			k := names[g.n(len(names))]
			if _, modelled := sh.byAttr[k]; modelled || k == "xmlns" {
				continue
			}
			m.Mutable(sh.other).Map().Set(protoreflect.ValueOfString(k).MapKey(), protoreflect.ValueOfString(g.text()))
		}
	}
	if sh.text != nil {
		m.Set(sh.text, protoreflect.ValueOfString(g.text()))
	}
	if depth >= MaxDepth {
		return
	}
	for _, fd := range sh.slots {
		count := 1
		if fd.IsList() {
			count = g.n(4)
		} else if g.n(2) == 0 {
			count = 0
		}
		for range count {
			if g.budget == 0 {
				return
			}
			g.budget--
			var child protoreflect.Message
			if fd.IsList() {
				v := m.Mutable(fd).List().NewElement()
				m.Mutable(fd).List().Append(v)
				child = v.Message()
			} else {
				child = m.Mutable(fd).Message()
			}
			if o := choice(fd.Message()); o != nil {
				child = child.Mutable(o.Fields().Get(g.n(o.Fields().Len()))).Message()
			}
			g.fill(tables().shapes[child.Descriptor().FullName()], child, depth+1)
		}
	}
}
