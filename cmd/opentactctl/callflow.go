package main

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	callv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/call/v1"
)

const callflowUsage = `Usage: opentactctl callflow render|save|get [flags]

Writes and reads the call flows of call control apps through
opentact.call.v1.CallControlService: the XML that decides what a call to an
app's numbers does (docs/callflows.md).

  render FILE         the XML of a typed flow (JSON or YAML), made by the
                      facade; no credentials needed
  save --app UUID FILE [--xml] [--json]
                      saves a typed flow, or XML as it is, on an app
  get --app UUID [--json]
                      the flow saved on an app

FILE is a typed flow as JSON (the "flow" of the REST body: protojson, with
the proto's field names) or YAML of the same structure, chosen by its
extension (.json, .yaml, .yml) or, for another one and for - (standard
input), by trying JSON, then YAML. With save, a .xml file (or --xml) is the
flow's XML, sent as it is. The apps themselves, their numbers, and the other
calls of CallControlService are reached with opentactctl call
CallControlService/<Method>: opentactctl methods lists them. Run opentactctl
callflow COMMAND -h for its flags.
`

const flowFileHelp = `FILE holds a typed flow as JSON (protojson, with the proto's field names,
the same form as the REST body's "flow") or as YAML of the same structure:
  verbs:
    - answer: {}
    - say: {text: Press 1 for sales.}
    - gather:
        dtmf_length: 1
        dtmf:
          - value: 1
            verbs: [{dial: {to: [{target: "12223334455"}]}}]
    - hangup: {}
The format is the extension's (.json, .yaml, .yml); for another extension,
and for - (standard input, at most 1 MiB), JSON is tried, then YAML. A field
the flow does not have is an error, with its line. In YAML a text field
takes any scalar as text (value: 1 is "1").
`

const callflowRenderUsage = `Usage: opentactctl callflow render FILE [flags]

Calls opentact.call.v1.CallControlService/RenderCallFlow through
opentact-facade: the facade turns the typed flow of FILE into the XML
Opentact takes, as SaveCallFlow would send it, without calling Opentact.
Prints the XML as it is, not as JSON:
  opentactctl callflow render ivr.yaml > ivr.xml

No credentials are needed: the command takes the connection flags alone.
A flow the facade cannot render is InvalidArgument, naming the field.

` + flowFileHelp + `
Flags:
`

const callflowSaveUsage = `Usage: opentactctl callflow save --app UUID FILE [--xml] [--json] [flags]

Calls opentact.call.v1.CallControlService/SaveCallFlow through
opentact-facade: FILE becomes the flow every call to the app --app runs
(the uuid CallControlService/ListCallControlApps lists). A typed flow is
rendered by the facade; a .xml file, or any FILE with --xml, is the flow's
XML, which the facade checks (well-formed, a <Response> root, known verbs)
and sends as it is: a fault is InvalidArgument, naming the line. Saving
the same flow twice leaves it saved.

Prints the XML saved, as it is; with --json the whole answer as JSON: the
XML and the flow typed.

` + flowFileHelp + `
` + credentialsHelp + `
Flags:
`

const callflowGetUsage = `Usage: opentactctl callflow get --app UUID [--json] [flags]

Calls opentact.call.v1.CallControlService/GetCallFlow through
opentact-facade: the flow saved on the app --app. Prints its XML, exactly
as Opentact holds it; with --json the whole answer as JSON: the XML and,
where it parses as one, the flow typed. An app with no flow saved is
NotFound.

` + credentialsHelp + `
Flags:
`

// flowFileArg reads the one argument of render and save: the flow's file.
func (c *command) flowFileArg(pos []string, cmd string) (string, int, bool) {
	switch {
	case len(pos) == 0:
		return "", c.fail(exitUsage, "give the flow's file, JSON or YAML (or - for standard input): opentactctl %s -h shows its form", cmd), true
	case len(pos) > 1:
		return "", c.fail(exitUsage, "%s takes one file; give them one at a time", cmd), true
	}
	return pos[0], exitOK, false
}

// appFlag reads --app: a call control app's uuid.
func (c *command) appFlag(app stringFlag) (string, int, bool) {
	switch {
	case app.v == nil:
		return "", c.fail(exitUsage, "give --app, the call control app's uuid: opentactctl call CallControlService/ListCallControlApps lists them"), true
	case !isUUID(*app.v):
		return "", c.fail(exitUsage, "--app is not a uuid: give the call control app's uuid, as CallControlService/ListCallControlApps lists it"), true
	}
	return *app.v, exitOK, false
}

// printXML prints a flow's XML as it is, ending with a line break.
func (c *command) printXML(xml string) {
	fmt.Fprint(c.stdout, xml)
	if !strings.HasSuffix(xml, "\n") {
		fmt.Fprintln(c.stdout)
	}
}

func runCallflowRender(ctx context.Context, c *command, args []string) int {
	pos, code, done := c.parseArgs(args)
	if done {
		return code
	}
	name, code, done := c.flowFileArg(pos, "callflow render")
	if done {
		return code
	}
	format := formatOf(name)
	if format == formatXML {
		return c.fail(exitUsage, "%s: render takes a typed flow, JSON or YAML; XML is rendered already (callflow save sends it as it is)", name)
	}
	data, shown, err := c.readFlowFile(name)
	if err != nil {
		return c.fail(exitUsage, "%v", err)
	}
	flow, err := parseFlow(data, format)
	if err != nil {
		return c.fail(exitUsage, "%s: %v", shown, err)
	}
	conn, code, done := c.connect(nil)
	if done {
		return code
	}
	defer conn.Close()

	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := callv1.NewCallControlServiceClient(conn).RenderCallFlow(ctx, &callv1.RenderCallFlowRequest{Flow: flow})
	if err != nil {
		c.about = shown
		return c.callFailed(err)
	}
	c.printXML(resp.GetXml())
	return exitOK
}

func runCallflowSave(ctx context.Context, c *command, args []string) int {
	var app stringFlag
	c.fs.Var(&app, "app", "the call control app's `UUID` (required)")
	asXML := c.fs.Bool("xml", false, "FILE is the flow's XML, sent as it is (the default for a .xml file)")
	asJSON := c.fs.Bool("json", false, "print the whole answer as JSON (the XML and the typed flow) instead of the XML")
	pos, code, done := c.parseArgs(args)
	if done {
		return code
	}
	name, code, done := c.flowFileArg(pos, "callflow save")
	if done {
		return code
	}
	uuid, code, done := c.appFlag(app)
	if done {
		return code
	}
	format := formatOf(name)
	if *asXML {
		format = formatXML
	}
	if name == "-" && *c.secretStdin {
		return c.fail(exitUsage, "--secret-stdin reads the credential from standard input, so the flow cannot come from there too: give the credential in OPENTACT_PASSWORD or OPENTACT_SECRET")
	}
	// The credentials first, so that a mistake there is told before
	// standard input is waited for.
	conn, code, done := c.dial()
	if done {
		return code
	}
	defer conn.Close()
	data, shown, err := c.readFlowFile(name)
	if err != nil {
		return c.fail(exitUsage, "%v", err)
	}
	req := &callv1.SaveCallFlowRequest{Uuid: uuid}
	if format == formatXML {
		switch {
		case len(strings.TrimSpace(string(data))) == 0:
			return c.fail(exitUsage, "%s: empty: want the flow's XML, <Response>...</Response>", shown)
		case !utf8.Valid(data):
			return c.fail(exitUsage, "%s: not UTF-8 text: the flow's XML is UTF-8", shown)
		}
		req.Source = &callv1.SaveCallFlowRequest_Xml{Xml: string(data)}
	} else {
		flow, err := parseFlow(data, format)
		if err != nil {
			return c.fail(exitUsage, "%s: %v", shown, err)
		}
		req.Source = &callv1.SaveCallFlowRequest_Flow{Flow: flow}
	}

	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := callv1.NewCallControlServiceClient(conn).SaveCallFlow(ctx, req)
	if err != nil {
		c.about = shown
		return c.callFailed(err)
	}
	if *asJSON {
		return c.print(resp)
	}
	if resp.GetXml() == "" {
		fmt.Fprintln(c.stderr, "saved; Opentact's answer holds no XML (callflow get shows it)")
		return exitOK
	}
	c.printXML(resp.GetXml())
	return exitOK
}

func runCallflowGet(ctx context.Context, c *command, args []string) int {
	var app stringFlag
	c.fs.Var(&app, "app", "the call control app's `UUID` (required)")
	asJSON := c.fs.Bool("json", false, "print the whole answer as JSON (the XML and the typed flow) instead of the XML")
	if code, done := c.parse(args); done {
		return code
	}
	if code, done := c.noArgs(); done {
		return code
	}
	uuid, code, done := c.appFlag(app)
	if done {
		return code
	}
	conn, code, done := c.dial()
	if done {
		return code
	}
	defer conn.Close()

	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := callv1.NewCallControlServiceClient(conn).GetCallFlow(ctx, &callv1.GetCallFlowRequest{Uuid: uuid})
	if err != nil {
		return c.callFailed(err)
	}
	if *asJSON {
		return c.print(resp)
	}
	if resp.GetXml() == "" {
		return c.fail(exitFailed, "the answer holds no XML for the app's flow")
	}
	c.printXML(resp.GetXml())
	return exitOK
}
