package callflow

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	callv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/call/v1"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.xml from the .json flows")

// TestShapes reads every message's shape: a proto that breaks the
// convention panics here first.
func TestShapes(t *testing.T) {
	tb := tables()
	for _, n := range []string{"Say", "Gather", "DTMF", "To", "Call", "Schedule", "Scheduler", "Error", "Default", "RecordWait", "Unhold"} {
		if !tb.typed[n] {
			t.Errorf("<%s> is not typed", n)
		}
	}
	for _, n := range untyped {
		if tb.typed[n] || !tb.known[n] {
			t.Errorf("<%s>: typed %v, known %v; want an untyped known verb", n, tb.typed[n], tb.known[n])
		}
	}
	if tb.known[rootName] {
		t.Errorf("<%s> is a known verb", rootName)
	}
}

// goldens are the flows of testdata/golden/*.json, restating the examples
// of Opentact's docs, by name.
func goldens(t testing.TB) map[string]*callv1.CallFlow {
	t.Helper()
	files, err := filepath.Glob("testdata/golden/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden flows: %v", err)
	}
	out := map[string]*callv1.CallFlow{}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		f := &callv1.CallFlow{}
		if err := protojson.Unmarshal(b, f); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		out[strings.TrimSuffix(file, ".json")] = f
	}
	return out
}

func TestGolden(t *testing.T) {
	v, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	for base, flow := range goldens(t) {
		t.Run(filepath.Base(base), func(t *testing.T) {
			if err := v.Validate(flow); err != nil {
				t.Errorf("the docs' example breaks a rule: %v", err)
			}
			got, err := Render(flow)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			if *update {
				if err := os.WriteFile(base+".xml", got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(base + ".xml")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Render differs from %s.xml (go test -update rewrites it):\n%s", base, got)
			}
			if err := Check(want); err != nil {
				t.Errorf("Check: %v", err)
			}
			back, err := Parse(want)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !proto.Equal(back, flow) {
				t.Errorf("Parse gave\n%v\nwant\n%v", back, flow)
			}
		})
	}
}

// TestParseAsTheDocsWriteIt reads XML laid out as Opentact's docs lay it
// out (comments, four-space indents, <Scheduler>, <Hangup />, text on
// lines of its own) into the flow it means.
func TestParseAsTheDocsWriteIt(t *testing.T) {
	in := `<?xml version="1.0" encoding="UTF-8"?>
<Response>
    <!-- weekends -->
    <Scheduler dow="sun,sat">
        <Say>Try a weekday.</Say>
        <Hangup />
    </Scheduler>

    <Gather dtmf_length="1" dtmf_stop="#">
        <Say text="Press 1"/>
        <DTMF value="1"><![CDATA[ ]]><Dial>
            <To>support@sip.opentact.org</To>
        </Dial></DTMF>
    </Gather>
    <Say>
        Goodbye
    </Say>
</Response>
`
	got, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := &callv1.CallFlow{Verbs: []*callv1.Verb{
		{Verb: &callv1.Verb_Schedule{Schedule: &callv1.Schedule{Dow: proto.String("sun,sat"), Verbs: []*callv1.Verb{
			{Verb: &callv1.Verb_Say{Say: &callv1.Say{Text: "Try a weekday."}}},
			{Verb: &callv1.Verb_Hangup{Hangup: &callv1.Hangup{}}},
		}}}},
		{Verb: &callv1.Verb_Gather{Gather: &callv1.Gather{
			DtmfLength: proto.Uint32(1),
			DtmfStop:   proto.String("#"),
			Filler:     []*callv1.Filler{{Verb: &callv1.Filler_Say{Say: &callv1.Say{TextAttr: proto.String("Press 1")}}}},
			Dtmf: []*callv1.DTMF{{Value: proto.String("1"), Verbs: []*callv1.Verb{
				{Verb: &callv1.Verb_Dial{Dial: &callv1.Dial{To: []*callv1.To{{Target: "support@sip.opentact.org"}}}}},
			}}},
		}}},
		{Verb: &callv1.Verb_Say{Say: &callv1.Say{Text: "\n        Goodbye\n    "}}},
	}}
	if !proto.Equal(got, want) {
		t.Errorf("got\n%v\nwant\n%v", got, want)
	}
	out, err := Render(got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte("  <Schedule dow=\"sun,sat\">\n")) || !bytes.Contains(out, []byte("<Say>&#xA;        Goodbye&#xA;    </Say>")) {
		t.Errorf("Render:\n%s", out)
	}
}

func TestCheckErrors(t *testing.T) {
	deep := "<Response>" + strings.Repeat("<Geo>", MaxDepth) + strings.Repeat("</Geo>", MaxDepth) + "</Response>"
	many := "<Response>\n" + strings.Repeat("<Hangup/>\n", MaxElements) + "</Response>"
	big := "<Response>\n<Say>" + strings.Repeat("a", MaxBytes) + "</Say></Response>"
	for _, c := range []struct {
		name, xml string
		line      int
		msg       string
	}{
		{"typo", "<Response>\n  <Say>hi</Say>\n  <Sya>hi</Sya>\n</Response>", 3, "unknown verb <Sya>"},
		{"root", "<?xml version=\"1.0\"?>\n<Resp><Say/></Resp>", 2, "the root element is <Resp>, not <Response>"},
		{"second root", "<Response/>\n<Response/>", 2, "a second root element <Response> after </Response>"},
		{"nested root", "<Response>\n<Gather>\n<Response/></Gather></Response>", 3, "<Response> inside <Gather>: it is only the root"},
		{"unclosed", "<Response>\n  <Say>hi</Say>\n  <Gather>\n</Response>", 4, "XML syntax error: element <Gather> closed by </Response>"},
		{"eof", "<Response>\n<Say>", 2, "XML syntax error: unexpected EOF"},
		{"entity", "<Response>\n<Say>&nbsp;</Say></Response>", 2, "XML syntax error: invalid character entity &nbsp;"},
		{"doctype", "<?xml version=\"1.0\"?>\n<!DOCTYPE Response [<!ENTITY a \"b\">]>\n<Response/>", 2, "<!DOCTYPE> is not allowed: no DTD, no entities"},
		{"pi", "<Response>\n<?php echo 1 ?></Response>", 2, "a processing instruction <?php?> is not allowed"},
		{"namespace", "<Response xmlns=\"urn:x\"/>", 1, "XML namespaces are not allowed (in <Response>)"},
		{"prefix", "<Response>\n<x:Say/></Response>", 2, "XML namespaces are not allowed (in <Say>)"},
		{"twice", "<Response>\n<Say lang=\"en\" lang=\"es\"/></Response>", 2, "<Say> has the attribute lang twice"},
		{"text outside", "hello<Response/>", 1, "text outside <Response>"},
		{"empty", "\n\n", 3, "no <Response> element"},
		{"encoding", "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<Response/>", 1, "XML syntax error: encoding \"ISO-8859-1\" declared but Decoder.CharsetReader is nil"},
		{"deep", deep, 1, "<Geo> is nested 17 deep, over the limit of 16"},
		{"many", many, 1001, "more than 1000 elements"},
		{"big", big, 2, "the XML is 65569 bytes, over the limit of 65536"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := Check([]byte(c.xml))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Check = %v, want an *Error", err)
			}
			if e.Line != c.line || e.Msg != c.msg {
				t.Errorf("Check = %q, want %q", err, (&Error{Line: c.line, Msg: c.msg}).Error())
			}
			if _, perr := Parse([]byte(c.xml)); perr == nil || perr.Error() != err.Error() {
				t.Errorf("Parse = %v, want Check's error", perr)
			}
		})
	}
}

func TestCheckTakesUntypedVerbs(t *testing.T) {
	in := "\ufeff<Response>\n  <Tone/>\n  <Meta name=\"x\"/>\n  <Switch><Case dtmf=\"1\"><Say>hi</Say></Case></Switch>\n  <Dial><Sip>sip:1000@example.com</Sip></Dial>\n</Response>\n"
	if err := Check([]byte(in)); err != nil {
		t.Fatal(err)
	}
	_, err := Parse([]byte(in))
	var e *Error
	if !errors.As(err, &e) || e.Line != 2 || e.Msg != "<Tone> has no typed form" {
		t.Errorf("Parse = %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ xml, want string }{
		{"<Response>\n<Gather>\n<Dial/></Gather></Response>", "line 3: <Dial> is not allowed in <Gather>"},
		{"<Response>\n<Say><Pause/></Say></Response>", "line 2: <Pause> is not allowed in <Say>"},
		{"<Response>\n<Dial><Error/>\n<Error/></Dial></Response>", "line 3: a second <Error> in <Dial>"},
		{"<Response>\n<Pause length=\"soon\"/></Response>", `line 2: <Pause length="soon">: not a whole number from 0 to 4294967295`},
		{"<Response>\n<Record asr=\"yes\"/></Response>", `line 2: <Record asr="yes">: not true or false`},
		{"<Response>\n<Hangup>\n\n  now</Hangup></Response>", `line 4: <Hangup> takes no text, but has "now"`},
		{"<Response id=\"1\"/>", "line 1: <Response> has attributes; a typed flow has none"},
		{"<Response>\n<Say voix\u00e9=\"x\"/></Response>", "line 2: <Say>: the attribute voix\u00e9 has no typed form"},
		{"<Response>\n<Gather><Switch/></Gather></Response>", "line 2: <Switch> has no typed form"},
	} {
		_, err := Parse([]byte(c.xml))
		if err == nil || err.Error() != c.want {
			t.Errorf("Parse(%q) = %v, want %s", c.xml, err, c.want)
		}
		if cerr := Check([]byte(c.xml)); cerr != nil {
			t.Errorf("Check(%q) = %v, want nil", c.xml, cerr)
		}
	}
}

func TestRenderErrors(t *testing.T) {
	say := func(s *callv1.Say) *callv1.Verb { return &callv1.Verb{Verb: &callv1.Verb_Say{Say: s}} }
	deep := say(&callv1.Say{Text: "x"})
	for range MaxDepth - 1 {
		deep = &callv1.Verb{Verb: &callv1.Verb_Geo{Geo: &callv1.Geo{Verbs: []*callv1.Verb{deep}}}}
	}
	many := &callv1.CallFlow{}
	for range MaxElements {
		many.Verbs = append(many.Verbs, &callv1.Verb{Verb: &callv1.Verb_Hangup{Hangup: &callv1.Hangup{}}})
	}
	for _, c := range []struct {
		flow *callv1.CallFlow
		want string
	}{
		{nil, "callflow: no flow"},
		{&callv1.CallFlow{Verbs: []*callv1.Verb{{}}}, "callflow: verbs[0]: no verb set"},
		{&callv1.CallFlow{Verbs: []*callv1.Verb{{Verb: &callv1.Verb_Gather{Gather: &callv1.Gather{Filler: []*callv1.Filler{{}}}}}}}, "callflow: verbs[0].gather.filler[0]: no verb set"},
		{&callv1.CallFlow{Verbs: []*callv1.Verb{say(&callv1.Say{Text: "a\x00b"})}}, "callflow: verbs[0].say.text: U+0000 cannot be written in XML"},
		{&callv1.CallFlow{Verbs: []*callv1.Verb{say(&callv1.Say{Lang: proto.String("\xff")})}}, "callflow: verbs[0].say.lang: invalid UTF-8 at byte 0"},
		{&callv1.CallFlow{Verbs: []*callv1.Verb{say(&callv1.Say{OtherAttributes: map[string]string{"lang": "x"}})}}, `callflow: verbs[0].say.other_attributes["lang"]: <Say>'s lang is a field of its own`},
		{&callv1.CallFlow{Verbs: []*callv1.Verb{say(&callv1.Say{OtherAttributes: map[string]string{"a b": "x"}})}}, `callflow: verbs[0].say.other_attributes["a b"]: not an attribute name of the form [A-Za-z_][A-Za-z0-9_.-]*`},
		{&callv1.CallFlow{Verbs: []*callv1.Verb{say(&callv1.Say{OtherAttributes: map[string]string{"xmlns": "x"}})}}, `callflow: verbs[0].say.other_attributes["xmlns"]: XML namespaces are not allowed`},
		{&callv1.CallFlow{Verbs: []*callv1.Verb{deep}}, "callflow: verbs[0].geo.verbs[0].geo.verbs[0].geo.verbs[0].geo.verbs[0].geo.verbs[0].geo.verbs[0].geo.verbs[0].geo.verbs[0].geo.verbs[0].geo.verbs[0].geo.verbs[0].geo.verbs[0].geo.verbs[0].geo.verbs[0].geo.verbs[0].say: <Say> would be nested 17 deep, over the limit of 16"},
		{many, "callflow: verbs[999].hangup: more than 1000 elements"},
		{&callv1.CallFlow{Verbs: []*callv1.Verb{say(&callv1.Say{Text: strings.Repeat("&", MaxBytes/5)})}}, "callflow: the XML is 65611 bytes: over the size limit of 65536"},
	} {
		_, err := Render(c.flow)
		if err == nil || err.Error() != c.want {
			t.Errorf("Render = %v\nwant %s", err, c.want)
		}
	}
}
