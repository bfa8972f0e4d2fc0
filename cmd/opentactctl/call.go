package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/opentact-facade/opentact-facade/internal/declare"
	"github.com/opentact-facade/opentact-facade/service"
)

const methodsUsage = `Usage: opentactctl methods [--json]

Lists every method opentact-facade serves, as this opentactctl was built,
one a line, sorted: the name opentactctl call takes, its kind and its REST
route ("-" when it has none):

  opentact.auth.v1.TokenService/CreateToken  write  POST /v1/tokens

A read has no side effects; an idempotent call may be repeated with the
same effect; a write may not. With --json, a JSON array instead.

Flags:
`

const callUsage = `Usage: opentactctl call <Service>/<Method> [REQUEST|-] [flags]

Calls any method of opentact-facade (opentactctl methods lists them) and
prints the answer as JSON. <Service> is the full name
(opentact.auth.v1.TokenService) or, when no other service has it, the short
one (TokenService).

REQUEST is the request message as JSON, with the proto field names
(protojson); {} when not given. "-" reads it from standard input. An
argument is visible to every user of the machine and kept in shell history:
a request that holds a secret (such as DeleteToken's token) goes on
standard input, and call refuses it as an argument.
  opentactctl call TokenService/ListTokens
  opentactctl call TokenService/CreateToken '{"name": "ci", "ttl": 3600}' --show-token
  printf '{"token": "%s"}' "$TOKEN" | opentactctl call TokenService/DeleteToken -

The answer's secrets (fields marked debug_redact: a JWT, an API token's
secret) are hidden unless --show-token: CreateToken's secret is shown only in
its answer, so give --show-token there or use token create.

` + credentialsHelp + `
Flags:
`

// maxRequestBytes bounds a request read from standard input: the facade
// takes no larger message.
const maxRequestBytes = 4 << 20

// showTokenMarker stands for a secret of an answer printed without
// --show-token.
const showTokenMarker = "[hidden: use --show-token]"

// served is the declaration of every method the facade serves, read from
// the descriptors of service.Services as the facade reads them.
func served() ([]*declare.Call, error) {
	return declare.Listed(service.Services)
}

// methodName is how the commands name a method: "package.Service/Method".
func methodName(c *declare.Call) string { return strings.TrimPrefix(c.FullMethod, "/") }

// methodEntry is one line of opentactctl methods --json.
type methodEntry struct {
	Method   string     `json:"method"`
	Kind     string     `json:"kind"`
	Request  string     `json:"request"`
	Response string     `json:"response"`
	REST     *restEntry `json:"rest,omitempty"`
}

type restEntry struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Body   string `json:"body,omitempty"`
}

func runMethods(c *command, args []string) int {
	asJSON := c.fs.Bool("json", false, "print a JSON array instead of one line per method")
	if code, done := c.parse(args); done {
		return code
	}
	if c.fs.NArg() > 0 {
		return c.fail(exitUsage, "methods takes no argument")
	}
	calls, err := served()
	if err != nil {
		return c.fail(exitFailed, "reading the served methods: %v", err)
	}
	slices.SortFunc(calls, func(a, b *declare.Call) int { return strings.Compare(a.FullMethod, b.FullMethod) })
	if *asJSON {
		entries := make([]methodEntry, 0, len(calls))
		for _, d := range calls {
			e := methodEntry{
				Method:   methodName(d),
				Kind:     d.Kind.String(),
				Request:  string(d.Method.Input().FullName()),
				Response: string(d.Method.Output().FullName()),
			}
			if d.REST != nil {
				e.REST = &restEntry{Method: d.REST.Method, Path: d.REST.Pattern, Body: d.REST.Body}
			}
			entries = append(entries, e)
		}
		out, err := json.MarshalIndent(entries, "", "  ")
		if err != nil {
			return c.fail(exitFailed, "printing the methods: %v", err)
		}
		fmt.Fprintln(c.stdout, string(out))
		return exitOK
	}
	w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	for _, d := range calls {
		route := "-"
		if d.REST != nil {
			route = d.REST.Method + " " + d.REST.Pattern
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", methodName(d), d.Kind, route)
	}
	if err := w.Flush(); err != nil {
		return c.fail(exitFailed, "printing the methods: %v", err)
	}
	return exitOK
}

// resolve finds the method name stands for among calls:
// "package.Service/Method", or "Service/Method" when exactly one service
// has that short name. Its error is for the command line.
func resolve(calls []*declare.Call, name string) (*declare.Call, error) {
	svc, method, ok := strings.Cut(strings.TrimPrefix(name, "/"), "/")
	if !ok || svc == "" || method == "" || strings.Contains(method, "/") {
		// Not echoed: a stray argument may be a secret.
		return nil, errors.New("name the method as <Service>/<Method>, such as TokenService/ListTokens: opentactctl methods lists them")
	}
	var services []string // the full names svc may stand for
	for _, c := range calls {
		full := string(c.Method.Parent().FullName())
		if (full == svc || string(c.Method.Parent().Name()) == svc) && !slices.Contains(services, full) {
			services = append(services, full)
		}
	}
	switch len(services) {
	case 0:
		return nil, fmt.Errorf("no service %q: opentactctl methods lists the methods served", svc)
	case 1:
	default:
		slices.Sort(services)
		return nil, fmt.Errorf("%q names several services (%s): give the full name", svc, strings.Join(services, ", "))
	}
	for _, c := range calls {
		if string(c.Method.Parent().FullName()) == services[0] && string(c.Method.Name()) == method {
			return c, nil
		}
	}
	return nil, fmt.Errorf("no method %q in %s: opentactctl methods lists the methods served", method, services[0])
}

// parseArgs parses args as flags with arguments among them (before,
// between or after the flags), and returns the arguments in order.
func (c *command) parseArgs(args []string) ([]string, int, bool) {
	var pos []string
	for {
		if code, done := c.parse(args); done {
			return nil, code, true
		}
		rest := c.fs.Args()
		if len(rest) == 0 {
			return pos, exitOK, false
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			// After "--" nothing is a flag.
			return append(pos, rest...), exitOK, false
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func runCall(ctx context.Context, c *command, args []string) int {
	showToken := c.fs.Bool("show-token", false, "print the answer's secrets (fields marked debug_redact) instead of hiding them")
	pos, code, done := c.parseArgs(args)
	if done {
		return code
	}
	switch {
	case len(pos) == 0:
		return c.fail(exitUsage, "give the method to call, as <Service>/<Method>: opentactctl methods lists them")
	case len(pos) > 2:
		// Not echoed: it may be a secret.
		return c.fail(exitUsage, "unexpected argument after the request: give the request as one argument, quoted, or - to read it from standard input")
	}
	calls, err := served()
	if err != nil {
		return c.fail(exitFailed, "reading the served methods: %v", err)
	}
	decl, err := resolve(calls, pos[0])
	if err != nil {
		return c.fail(exitUsage, "%v", err)
	}
	name := methodName(decl)
	reqType, err := protoregistry.GlobalTypes.FindMessageByName(decl.Method.Input().FullName())
	if err != nil {
		return c.fail(exitFailed, "%s: request type: %v", name, err)
	}
	respType, err := protoregistry.GlobalTypes.FindMessageByName(decl.Method.Output().FullName())
	if err != nil {
		return c.fail(exitFailed, "%s: response type: %v", name, err)
	}
	fromStdin := len(pos) == 2 && pos[1] == "-"
	if fromStdin && *c.secretStdin {
		return c.fail(exitUsage, "--secret-stdin reads the credential from standard input, so the request cannot come from there too: give the credential in OPENTACT_PASSWORD or OPENTACT_SECRET")
	}
	// The credentials first, so that a mistake there is told before
	// standard input is waited for.
	conn, code, done := c.dial()
	if done {
		return code
	}
	defer conn.Close()

	var text []byte
	switch {
	case fromStdin:
		text, err = io.ReadAll(io.LimitReader(c.stdin, maxRequestBytes+1))
		if err != nil {
			return c.fail(exitUsage, "reading the request from standard input: %v", err)
		}
		if len(text) > maxRequestBytes {
			return c.fail(exitUsage, "the request on standard input is over %d bytes", maxRequestBytes)
		}
	case len(pos) == 2:
		text = []byte(pos[1])
	}
	req := reqType.New().Interface()
	if err := parseRequest(text, req); err != nil {
		return c.fail(exitUsage, "the request to %s: %v", name, err)
	}
	fields, secrets := secretsOf(req)
	if len(fields) > 0 && !fromStdin {
		return c.fail(exitUsage, "the request sets %s, a secret: give the request on standard input, with -, never on the command line, which other users of the machine and the shell history see", strings.Join(fields, ", "))
	}

	if decl.Kind == declare.Stream {
		return c.stream(ctx, conn, decl, req, respType, *showToken, secrets)
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp := respType.New().Interface()
	if err := conn.Invoke(ctx, decl.FullMethod, req, resp); err != nil {
		return c.callFailed(err, secrets...)
	}
	if !*showToken {
		hideTree(resp.ProtoReflect(), showTokenMarker)
	}
	return c.print(resp)
}

// parseRequest reads text, JSON with proto field names, into m; blank
// text is {}. Its error names the position and the field, never a value,
// which may be a secret.
func parseRequest(text []byte, m proto.Message) error {
	if len(bytes.TrimSpace(text)) == 0 {
		text = []byte("{}")
	}
	// encoding/json first: its syntax errors show one character at most,
	// where protojson's show the whole token.
	var doc any
	if err := json.Unmarshal(text, &doc); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := position(text, se.Offset)
			return fmt.Errorf("not JSON: line %d, column %d: %v", line, col, se)
		}
		return fmt.Errorf("not JSON: %v", err)
	}
	if _, ok := doc.(map[string]any); !ok {
		return fmt.Errorf("want a JSON object, the fields of %s", m.ProtoReflect().Descriptor().FullName())
	}
	if err := protojson.Unmarshal(text, m); err != nil {
		msg := err.Error()
		for _, p := range []string{"proto: ", "proto:\u00a0"} {
			msg = strings.TrimPrefix(msg, p)
		}
		// protojson quotes the value it cannot take.
		for _, s := range stringsIn(doc) {
			if len(s) >= minMaskedLen {
				msg = strings.ReplaceAll(msg, s, "[hidden]")
			}
		}
		return fmt.Errorf("not a valid %s: %s", m.ProtoReflect().Descriptor().FullName(), msg)
	}
	return nil
}

// position is the line and column, from 1, of the byte a
// json.SyntaxError's Offset ends at.
func position(text []byte, offset int64) (line, col int) {
	before := text[:min(max(offset-1, 0), int64(len(text)))]
	line = 1 + bytes.Count(before, []byte("\n"))
	return line, len(before) - bytes.LastIndexByte(before, '\n')
}

// stringsIn lists the string values in a decoded JSON document, not its
// member names.
func stringsIn(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, e := range v {
			out = append(out, stringsIn(e)...)
		}
		return out
	case map[string]any:
		var out []string
		for _, e := range v {
			out = append(out, stringsIn(e)...)
		}
		return out
	}
	return nil
}

// secretsOf names the secrets (fields marked debug_redact) set in m, and
// gives their text values, to be masked in an error.
func secretsOf(m proto.Message) (fields, values []string) {
	eachSecret(m.ProtoReflect(), func(_ protoreflect.Message, fd protoreflect.FieldDescriptor, v protoreflect.Value) {
		fields = append(fields, string(fd.Name()))
		switch {
		case fd.IsMap():
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				if s, ok := mv.Interface().(string); ok {
					values = append(values, s)
				}
				return true
			})
		case fd.IsList():
			for i := range v.List().Len() {
				if s, ok := v.List().Get(i).Interface().(string); ok {
					values = append(values, s)
				}
			}
		default:
			if s, ok := v.Interface().(string); ok {
				values = append(values, s)
			}
		}
	})
	return fields, values
}

// stream calls a server-streaming method and prints each message as it
// comes, until the stream ends, Ctrl-C (exit 0), or --timeout when given.
func (c *command) stream(ctx context.Context, conn *grpc.ClientConn, decl *declare.Call, req proto.Message, respType protoreflect.MessageType, showToken bool, secrets []string) int {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	timed := false
	c.fs.Visit(func(f *flag.Flag) { timed = timed || f.Name == "timeout" })
	if timed {
		var cancel context.CancelFunc
		ctx, cancel = c.withTimeout(ctx)
		defer cancel()
	}
	s, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, decl.FullMethod)
	if err == nil {
		err = s.SendMsg(req)
	}
	if err == nil {
		err = s.CloseSend()
	}
	for err == nil {
		resp := respType.New().Interface()
		if err = s.RecvMsg(resp); err != nil {
			break
		}
		if !showToken {
			hideTree(resp.ProtoReflect(), showTokenMarker)
		}
		if code := c.print(resp); code != exitOK {
			return code
		}
	}
	// The facade may tell of the deadline before the local timer fires.
	if errors.Is(err, io.EOF) || ctx.Err() != nil && status.Code(err) == codes.Canceled || timed && status.Code(err) == codes.DeadlineExceeded {
		return exitOK
	}
	return c.callFailed(err, secrets...)
}
