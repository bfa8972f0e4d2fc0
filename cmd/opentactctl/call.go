package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/opentact-facade/opentact-facade/internal/declare"
	"github.com/opentact-facade/opentact-facade/internal/engine"
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

// served is the declaration of every method the facade serves, read from
// the descriptors of service.Services as the facade reads them.
func served() ([]*declare.Call, error) {
	return engine.Declared(service.Services)
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
