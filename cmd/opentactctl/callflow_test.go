package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	callv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/call/v1"
	"github.com/opentact-facade/opentact-facade/internal/callflow"
	"github.com/opentact-facade/opentact-facade/internal/sandbox"
)

// readTestdata is a file of testdata.
func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// writeFile writes text to name in a new directory of the test and
// returns its path.
func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// renderArgs is callflow render of files against st: no credentials.
func renderArgs(st *stack, files ...string) []string {
	return append([]string{"callflow", "render", "--plaintext", "--addr", st.addr}, files...)
}

// TestGoldenIsRender: testdata/ivr.xml is what internal/callflow renders
// for testdata/ivr.json, so that the tests below compare the command's
// output with the facade's own rendering.
func TestGoldenIsRender(t *testing.T) {
	t.Parallel()
	flow := &callv1.CallFlow{}
	if err := protojson.Unmarshal([]byte(readTestdata(t, "ivr.json")), flow); err != nil {
		t.Fatal(err)
	}
	xml, err := callflow.Render(flow)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(xml), readTestdata(t, "ivr.xml"); got != want {
		t.Errorf("Render(ivr.json) =\n%s\ntestdata/ivr.xml =\n%s", got, want)
	}
}

// TestCallflowRender: a flow as JSON and as YAML, from a file or standard
// input, is rendered by the facade without credentials, and its XML
// printed as it is.
func TestCallflowRender(t *testing.T) {
	t.Parallel()
	st := startStack(t, nil)
	golden := readTestdata(t, "ivr.xml")
	jsonFlow, yamlFlow := readTestdata(t, "ivr.json"), readTestdata(t, "ivr.yaml")
	for _, tc := range []struct {
		name, file, stdin string
	}{
		{"json file", filepath.Join("testdata", "ivr.json"), ""},
		{"yaml file", filepath.Join("testdata", "ivr.yaml"), ""},
		{"yml file", writeFile(t, "ivr.yml", yamlFlow), ""},
		{"json, another extension", writeFile(t, "ivr.flow", jsonFlow), ""},
		{"yaml, another extension", writeFile(t, "ivr.flow", yamlFlow), ""},
		{"json on stdin", "-", jsonFlow},
		{"yaml on stdin", "-", yamlFlow},
		{"yaml flow style on stdin", "-", toFlowStyle(t, jsonFlow)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := cli(t, nil, tc.stdin, renderArgs(st, tc.file)...)
			r.wantCode(t, exitOK)
			if r.stdout != golden {
				t.Errorf("stdout\n%s\nwant testdata/ivr.xml\n%s", r.stdout, golden)
			}
			if r.stderr != "" {
				t.Errorf("stderr: %s", r.stderr)
			}
		})
	}
	t.Cleanup(func() {
		if n := st.upstream.Load(); n != 0 {
			t.Errorf("render reached Opentact %d times", n)
		}
	})
}

// toFlowStyle is the JSON flow as YAML flow style: its keys unquoted, so
// that it is not JSON.
func toFlowStyle(t *testing.T, jsonFlow string) string {
	t.Helper()
	out := jsonFlow
	for _, k := range []string{"verbs", "answer", "say", "text", "lang", "gather", "dtmf_length", "dtmf_stop", "filler", "dtmf", "value", "dial", "to", "target", "record", "default", "hangup"} {
		out = strings.ReplaceAll(out, `"`+k+`":`, k+":")
	}
	if json.Valid([]byte(out)) {
		t.Fatal("the flow style is still JSON")
	}
	return out
}

// TestCallflowRenderRefusals: a file that is not a flow fails with exit 2,
// naming the file and the line, and reaches nothing; a flow the facade
// refuses fails with exit 1 and its message, naming the field.
func TestCallflowRenderRefusals(t *testing.T) {
	t.Parallel()
	st := startStack(t, nil)
	big := writeFile(t, "big.json", `{"verbs": [`+strings.Repeat(`{"hangup": {}},`, 1<<17)+`{"hangup": {}}]}`)
	for _, tc := range []struct {
		name    string
		file    string // a path, or the name of a file holding text
		text    string
		stdin   string
		code    int
		mention []string
	}{
		{"yaml, an unknown field", "flow.yaml", "verbs:\n  - answer: {}\n  - say:\n      text: Hi\n      voice: anna\n", "", exitUsage,
			[]string{"flow.yaml: line 5: ", `unknown field "voice"`}},
		{"yaml, an unknown verb", "flow.yml", "verbs:\n  - answer: {}\n  - sya: {text: Hi}\n", "", exitUsage,
			[]string{"flow.yml: line 3: ", `unknown field "sya"`}},
		{"yaml on stdin, an unknown field", "-", "", "verbz: []\n", exitUsage,
			[]string{"standard input: line 1: ", `unknown field "verbz"`}},
		{"json, an unknown field", "flow.json", "{\n  \"verbs\": [\n    {\"sya\": {}}\n  ]\n}\n", "", exitUsage,
			[]string{"flow.json: line 3, column 6: ", `unknown field "sya"`}},
		{"yaml, not YAML", "flow.yaml", "verbs:\n  - say: {text: Hi\n  - hangup: {}\n", "", exitUsage,
			[]string{"flow.yaml: line ", "did not find expected"}},
		{"yaml, a key twice", "flow.yaml", "verbs: []\nverbs: []\n", "", exitUsage,
			[]string{"flow.yaml: line 2: ", `"verbs" already defined at line 1`}},
		{"yaml, two documents", "flow.yaml", "verbs: []\n---\nverbs: []\n", "", exitUsage,
			[]string{"flow.yaml: line 3: a second YAML document"}},
		{"yaml, a list", "flow.yaml", "- answer: {}\n", "", exitUsage,
			[]string{"flow.yaml: line 1: want a mapping"}},
		{"yaml, a value of the wrong type", "flow.yaml", "verbs:\n  - pause:\n      length_ms: soon\n", "", exitUsage,
			[]string{"flow.yaml: line 3: ", "lengthMs", `"soon"`}},
		{"json, not JSON", "flow.json", "{\n  \"verbs\": [\n    {\"answer\": {}},\n  ]\n}\n", "", exitUsage,
			[]string{"flow.json: not JSON: line 4, column 3"}},
		{"json, not an object", "flow.json", `[{"answer": {}}]`, "", exitUsage,
			[]string{"flow.json: want a JSON object"}},
		{"json meant, on stdin", "-", "", "{\"verbs\": [{\"answer\": {}}]\n", exitUsage,
			[]string{"standard input: not JSON: line 1, column 27", "unexpected end of JSON input"}},
		{"an empty file", "flow.yaml", "\n", "", exitUsage,
			[]string{"flow.yaml: empty"}},
		{"no such file", filepath.Join(t.TempDir(), "nowhere.yaml"), "", "", exitUsage,
			[]string{"nowhere.yaml: no such file"}},
		{"a file over 1 MiB", big, "", "", exitUsage,
			[]string{"big.json is over 1048576 bytes"}},
		{"xml", "flow.xml", "<Response/>", "", exitUsage,
			[]string{"flow.xml: render takes a typed flow"}},
		{"a verb with nothing set", "flow.yaml", "verbs:\n  - answer: {}\n  - {}\n", "", exitFailed,
			[]string{"flow.yaml: InvalidArgument", "flow.verbs[1].verb"}},
		{"a play with no source", "flow.json", `{"verbs": [{"play": {"loop": 2}}]}`, "", exitFailed,
			[]string{"flow.json: InvalidArgument", "flow.verbs[0].play", "url, url_attr or record is required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			file := tc.file
			if tc.text != "" {
				file = writeFile(t, tc.file, tc.text)
			}
			r := cli(t, nil, tc.stdin, renderArgs(st, file)...)
			r.wantCode(t, tc.code)
			r.wantStderr(t, append([]string{"opentactctl: "}, tc.mention...)...)
			if strings.Count(r.stderr, "\n") > 2 {
				t.Errorf("stderr is more than the error: %s", r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout: %s", r.stdout)
			}
		})
	}
	t.Run("usage", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			args    []string
			mention []string
		}{
			{[]string{"callflow", "render", "--plaintext", "--addr", st.addr}, []string{"give the flow's file"}},
			{renderArgs(st, "a.json", "b.json"), []string{"one file"}},
			// No credentials: render takes none.
			{append(renderArgs(st, "a.json"), "--email", sandbox.DemoEmail), []string{"-email"}},
		} {
			r := cli(t, demoEnv, "", tc.args...)
			r.wantCode(t, exitUsage)
			r.wantStderr(t, tc.mention...)
		}
	})
	t.Cleanup(func() {
		if n := st.upstream.Load(); n != 0 {
			t.Errorf("render reached Opentact %d times", n)
		}
	})
}

// callflowArgs is a callflow or calls command against st with the demo
// account's Basic credentials (the password in demoEnv); extra follows the
// flags.
func callflowArgs(st *stack, group, sub string, extra ...string) []string {
	return append([]string{group, sub, "--plaintext", "--addr", st.addr, "--email", sandbox.DemoEmail}, extra...)
}

// createApp makes a call control app with the generic call and returns
// its uuid.
func createApp(t *testing.T, st *stack) string {
	t.Helper()
	r := cli(t, demoEnv, "", "call", "opentact.call.v1.CallControlService/CreateCallControlApp",
		"--plaintext", "--addr", st.addr, "--email", sandbox.DemoEmail, `{"name": "ivr", "product": 1}`)
	r.wantCode(t, exitOK)
	var resp struct {
		App struct {
			UUID string `json:"uuid"`
		} `json:"app"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &resp); err != nil || !isUUID(resp.App.UUID) {
		t.Fatalf("CreateCallControlApp printed %s (%v)", r.stdout, err)
	}
	return resp.App.UUID
}

// TestCallflowSaveGet: a typed flow saved on an app is read back as the
// same XML; XML is saved as it is; --json prints the XML and the flow
// typed.
func TestCallflowSaveGet(t *testing.T) {
	t.Parallel()
	st := startStack(t, nil)
	app := createApp(t, st)
	golden := readTestdata(t, "ivr.xml")

	r := cli(t, demoEnv, "", callflowArgs(st, "callflow", "get", "--app", app)...)
	r.wantCode(t, exitFailed)
	r.wantStderr(t, "NotFound", "No call flow is saved for this app")

	for _, file := range []string{"ivr.yaml", "ivr.json"} {
		r = cli(t, demoEnv, "", callflowArgs(st, "callflow", "save", "--app", app, filepath.Join("testdata", file))...)
		r.wantCode(t, exitOK)
		if r.stdout != golden || r.stderr != "" {
			t.Errorf("save %s printed\n%s\nstderr %s\nwant testdata/ivr.xml", file, r.stdout, r.stderr)
		}
		r = cli(t, demoEnv, "", callflowArgs(st, "callflow", "get", "--app", app)...)
		r.wantCode(t, exitOK)
		if r.stdout != golden {
			t.Errorf("get after saving %s printed\n%s\nwant testdata/ivr.xml", file, r.stdout)
		}
	}

	r = cli(t, demoEnv, "", callflowArgs(st, "callflow", "get", "--app", app, "--json")...)
	r.wantCode(t, exitOK)
	r.wantRegularJSON(t)
	got := &callv1.GetCallFlowResponse{}
	if err := protojson.Unmarshal([]byte(r.stdout), got); err != nil {
		t.Fatal(err)
	}
	wantFlow := &callv1.CallFlow{}
	if err := protojson.Unmarshal([]byte(readTestdata(t, "ivr.json")), wantFlow); err != nil {
		t.Fatal(err)
	}
	if got.GetXml() != golden || !proto.Equal(got.GetFlow(), wantFlow) {
		t.Errorf("get --json printed %s", r.stdout)
	}

	// XML as it is: from a .xml file, and from stdin with --xml. Opentact
	// keeps it as written, layout and all.
	const handWritten = "<Response>\n<Say>Hi</Say>   <Hangup/>\n</Response>"
	for _, tc := range []struct{ file, stdin string }{
		{writeFile(t, "flow.xml", handWritten), ""},
		{"-", handWritten + "\n"},
	} {
		args := callflowArgs(st, "callflow", "save", "--app", app, tc.file)
		if tc.stdin != "" {
			args = append(args, "--xml")
		}
		r = cli(t, demoEnv, tc.stdin, args...)
		r.wantCode(t, exitOK)
		if want := handWritten + "\n"; r.stdout != want {
			t.Errorf("save %s printed %q, want %q", tc.file, r.stdout, want)
		}
		r = cli(t, demoEnv, "", callflowArgs(st, "callflow", "get", "--app", app)...)
		r.wantCode(t, exitOK)
		if want := handWritten + "\n"; r.stdout != want {
			t.Errorf("get printed %q, want %q", r.stdout, want)
		}
	}

	r = cli(t, demoEnv, "", callflowArgs(st, "callflow", "save", "--app", app, "--json", writeFile(t, "flow.xml", handWritten))...)
	r.wantCode(t, exitOK)
	r.wantRegularJSON(t)
	saved := &callv1.SaveCallFlowResponse{}
	if err := protojson.Unmarshal([]byte(r.stdout), saved); err != nil {
		t.Fatal(err)
	}
	if saved.GetXml() != handWritten || len(saved.GetFlow().GetVerbs()) != 2 {
		t.Errorf("save --json printed %s", r.stdout)
	}
}

// TestCallflowSaveRefusals: XML the facade refuses, and a flow file that is
// not one, fail with the line named; nothing is saved.
func TestCallflowSaveRefusals(t *testing.T) {
	t.Parallel()
	st := startStack(t, nil)
	app := createApp(t, st)
	before := st.upstream.Load()

	for _, tc := range []struct {
		name    string
		args    []string
		stdin   string
		code    int
		mention []string
	}{
		{"an unknown verb", []string{writeFile(t, "bad.xml", "<Response>\n  <Sya/>\n</Response>\n")}, "", exitFailed,
			[]string{"bad.xml: InvalidArgument", "xml: line 2: unknown verb <Sya>"}},
		{"not well-formed, on stdin", []string{"-", "--xml"}, "<Response>\n  <Say>Hi</Response>\n", exitFailed,
			[]string{"standard input: InvalidArgument", "xml: line 2: "}},
		{"another root", []string{"--xml", writeFile(t, "flow.txt", "<Resp/>")}, "", exitFailed,
			[]string{"InvalidArgument", "line 1: the root element is <Resp>, not <Response>"}},
		{"an empty XML file", []string{writeFile(t, "empty.xml", " \n")}, "", exitUsage,
			[]string{"empty.xml: empty"}},
		{"XML that is not UTF-8", []string{writeFile(t, "latin1.xml", "<Response><Say>Caf\xe9</Say></Response>")}, "", exitUsage,
			[]string{"latin1.xml: not UTF-8"}},
		{"a YAML flow with an unknown field", []string{writeFile(t, "flow.yaml", "verbs:\n  - hangup: {}\n  - hangup: {now: true}\n")}, "", exitUsage,
			[]string{"flow.yaml: line 3: ", `unknown field "now"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := cli(t, demoEnv, tc.stdin, callflowArgs(st, "callflow", "save", append([]string{"--app", app}, tc.args...)...)...)
			r.wantCode(t, tc.code)
			r.wantStderr(t, tc.mention...)
			if r.stdout != "" {
				t.Errorf("stdout: %s", r.stdout)
			}
		})
	}
	t.Cleanup(func() {
		if n := st.upstream.Load() - before; n != 0 {
			t.Errorf("Opentact saw %d requests for refused flows", n)
		}
	})
}

// TestCallflowUsageErrors: a command line callflow cannot use fails with
// exit 2 and reaches nothing.
func TestCallflowUsageErrors(t *testing.T) {
	t.Parallel()
	st := startStack(t, nil)
	const app = "d04c08e3-d2e7-40c7-a802-44a433abf6c3"
	for _, tc := range []struct {
		name    string
		args    []string
		stdin   string
		mention []string
	}{
		{"no callflow command", []string{"callflow"}, "", []string{"Usage", "render", "save", "get"}},
		{"unknown callflow command", []string{"callflow", "delete"}, "", []string{"Usage"}},
		{"save without --app", callflowArgs(st, "callflow", "save", "testdata/ivr.yaml"), "", []string{"--app"}},
		{"save with a bad --app", callflowArgs(st, "callflow", "save", "--app", "ivr", "testdata/ivr.yaml"), "", []string{"--app is not a uuid"}},
		{"save no file", callflowArgs(st, "callflow", "save", "--app", app), "", []string{"give the flow's file"}},
		{"save a missing file", callflowArgs(st, "callflow", "save", "--app", app, "testdata/nowhere.yaml"), "", []string{"testdata/nowhere.yaml: no such file"}},
		{"save stdin with --secret-stdin", callflowArgs(st, "callflow", "save", "--app", app, "--secret-stdin", "-"), sandbox.DemoPassword + "\n", []string{"--secret-stdin"}},
		{"save without credentials", []string{"callflow", "save", "--plaintext", "--addr", st.addr, "--app", app, "testdata/ivr.yaml"}, "", []string{"--email"}},
		{"get without --app", callflowArgs(st, "callflow", "get"), "", []string{"--app"}},
		{"get with an argument", callflowArgs(st, "callflow", "get", "--app", app, "extra"), "", []string{"unexpected argument"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := demoEnv
			if strings.HasSuffix(tc.name, "without credentials") {
				env = nil
			}
			r := cli(t, env, tc.stdin, tc.args...)
			r.wantCode(t, exitUsage)
			r.wantStderr(t, tc.mention...)
			if r.stdout != "" {
				t.Errorf("stdout: %s", r.stdout)
			}
		})
	}
	t.Cleanup(func() {
		if n := st.upstream.Load(); n != 0 {
			t.Errorf("the upstream saw %d requests", n)
		}
	})
}

// TestParseFlow: YAML reads as the JSON of the same structure: text
// fields take any scalar, aliases and merge keys are expanded, and every
// error names its line.
func TestParseFlow(t *testing.T) {
	t.Parallel()
	want := &callv1.CallFlow{}
	if err := protojson.Unmarshal([]byte(`{"verbs": [
		{"say": {"text": "Hi", "lang": "en"}},
		{"say": {"text": "12.50", "lang": "en", "other_attributes": {"voice": "true"}}},
		{"gather": {"dtmf_length": 1, "dtmf": [
			{"value": "1", "verbs": [{"say": {"text": "Bye"}}, {"hangup": {}}]},
			{"value": "0", "verbs": [{"say": {"text": "Bye"}}, {"hangup": {}}]}
		]}},
		{"pause": {"length_ms": 16}}
	]}`), want); err != nil {
		t.Fatal(err)
	}
	const yamlFlow = `verbs:
  - say: &hi {text: Hi, lang: en}
  - say:
      <<: *hi
      text: 12.50
      otherAttributes: {voice: true}
  - gather:
      dtmf_length: 1
      dtmf:
        - value: 1
          verbs: &bye [{say: {text: Bye}}, {hangup: {}}]
        - {value: 0, verbs: *bye}
  - pause: {length_ms: 0x10}
`
	for _, format := range []flowFormat{formatYAML, formatGuess} {
		got, err := parseFlow([]byte(yamlFlow), format)
		if err != nil {
			t.Fatalf("format %d: %v", format, err)
		}
		if !proto.Equal(got, want) {
			t.Errorf("format %d: got %v\nwant %v", format, got, want)
		}
	}

	for _, tc := range []struct {
		text   string
		format flowFormat
		want   string
	}{
		{"verbs:\n  - say:\n      text: Hi\n  - gather:\n      dtmf:\n        - value: 1\n          verb: []\n", formatYAML, `line 7: unknown field "verb"`},
		{"verbs:\n  - hangup: {}\n    say: {text: Hi}\n", formatYAML, "line 3: "},
		{"verbs:\n  - pause: {length_ms: -1}\n", formatYAML, "line 2: "},
		{"verbs:\n  - say: {text: [Hi]}\n", formatYAML, "line 2: "},
		{"verbs: [\n", formatYAML, "line "},
		{"verbs:\n  - say: !!binary {text: Hi}\n", formatYAML, "line 2: the YAML tag !!binary is not taken here"},
		{"a: &a [*a]\n", formatYAML, "contains itself"},
		{"\uFEFF  \n", formatGuess, "empty"},
		{"---\n", formatYAML, "empty"},
		{"~\n", formatYAML, "empty"},
		{`{"verbs": [{"say": {"text": 1}}]}`, formatGuess, "line 1, column 29: "},
		{"{\"verbs\": []}\n{}", formatJSON, "not JSON: line 2, column 1"},
	} {
		_, err := parseFlow([]byte(tc.text), tc.format)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseFlow(%q) = %v, want an error with %q", tc.text, err, tc.want)
		}
	}
}

// TestCallflowHelp: the callflow commands' usage says what each takes.
func TestCallflowHelp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args    []string
		mention []string
		not     []string
	}{
		{[]string{"callflow", "-h"}, []string{"render", "save", "get", "--app", "opentactctl call"}, nil},
		{[]string{"callflow", "render", "-h"}, []string{"RenderCallFlow", "No credentials", "YAML", ".yml", "1 MiB", "-addr", "-plaintext"}, []string{"-email", "-secret-stdin"}},
		{[]string{"callflow", "save", "-h"}, []string{"SaveCallFlow", "--xml", "--json", "-app", "line", "-email"}, nil},
		{[]string{"callflow", "get", "-h"}, []string{"GetCallFlow", "--json", "-app", "NotFound"}, nil},
		{[]string{"-h"}, []string{"callflow render FILE", "callflow save --app UUID FILE", "calls online|search"}, nil},
	} {
		r := cli(t, nil, "", tc.args...)
		r.wantCode(t, exitOK)
		r.wantStderr(t, append([]string{"Usage"}, tc.mention...)...)
		for _, s := range tc.not {
			if strings.Contains(r.stderr, s) {
				t.Errorf("%v mentions %s:\n%s", tc.args, s, r.stderr)
			}
		}
	}
}

// FuzzParseFlow: parseFlow takes any bytes, in any format, without
// panicking, and a flow it reads comes back the same from its protojson.
func FuzzParseFlow(f *testing.F) {
	for _, name := range []string{"ivr.json", "ivr.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(formatGuess))
		f.Add(b, uint8(formatYAML))
	}
	f.Add([]byte("verbs:\n  - say: &a {text: 1}\n  - say: {<<: *a, lang: en}\n"), uint8(formatYAML))
	f.Add([]byte(`{"verbs": [{"pause": {"lengthMs": "500"}}]}`), uint8(formatJSON))
	f.Fuzz(func(t *testing.T, data []byte, format uint8) {
		flow, err := parseFlow(data, flowFormat(format%3))
		if err != nil {
			if err.Error() == "" {
				t.Error("an empty error")
			}
			return
		}
		b, err := protojson.Marshal(flow)
		if err != nil {
			t.Fatalf("protojson.Marshal: %v", err)
		}
		back, err := parseFlow(b, formatJSON)
		if err != nil || !proto.Equal(back, flow) {
			t.Fatalf("the flow's JSON %s reads back as %v, %v", b, back, err)
		}
	})
}
