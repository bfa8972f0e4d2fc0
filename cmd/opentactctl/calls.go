package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"google.golang.org/protobuf/types/known/timestamppb"

	callv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/call/v1"
)

const callsUsage = `Usage: opentactctl calls online|search [flags]

Lists the calls of the account's call control apps through
opentact.call.v1.CallControlService, as a table (uuid, from, to, state, app,
created_on) or, with --json, as JSON.

  online [--json]     the calls under way
  search [--from N] [--to N] [--tn N] [--state online|offline] [--app UUID]
         [--take N] [--skip N] [--since TIME] [--until TIME] [--json]
                      a page of the call log

One call (GetCall), a flow run on a live call (ExecuteCallFlow) and an app's
flow log (SearchCallFlowLogs) are reached with opentactctl call
CallControlService/<Method>: opentactctl methods lists them. Run
opentactctl calls COMMAND -h for its flags.
`

const callsOnlineUsage = `Usage: opentactctl calls online [--json] [flags]

Calls opentact.call.v1.CallControlService/ListOnlineCalls through
opentact-facade: the calls under way, as a table, one call a line: uuid,
from, to, state, app (the uuid of the call control app) and created_on
(UTC); "-" where Opentact gave nothing. With --json, the answer as JSON
(data: the calls, whole).

` + credentialsHelp + `
Flags:
`

const callsSearchUsage = `Usage: opentactctl calls search [filters] [--take N] [--skip N] [--json] [flags]

Calls opentact.call.v1.CallControlService/SearchCalls through
opentact-facade: the calls of the call log that match every filter given,
newest first, a page at a time: --take at most 1000, --skip the calls before
the page. --from, --to and --tn take a number or a mask of one; --since and
--until times in RFC 3339, such as 2025-07-01T12:00:00Z (created_on from,
and up to).

Prints the page as a table, as calls online does; when more calls match
than the page holds, standard error says how to get the next page. With
--json, the page as JSON (take, skip, total, data).
  opentactctl calls search --state offline --since 2025-07-01T00:00:00Z --take 20

` + credentialsHelp + `
Flags:
`

// callStates are the states of the call log, as --state takes them.
var callStates = []string{"online", "offline"}

// timeFlag is an optional time flag, in RFC 3339: nil until given.
type timeFlag struct{ v *timestamppb.Timestamp }

func (f *timeFlag) String() string {
	if f == nil || f.v == nil {
		return ""
	}
	return f.v.AsTime().UTC().Format(time.RFC3339Nano)
}

func (f *timeFlag) Set(s string) error {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return errors.New("want a time in RFC 3339, such as 2025-07-01T12:00:00Z")
	}
	f.v = timestamppb.New(t)
	return nil
}

// printCalls prints calls as a table: a header, then one call a line.
func (c *command) printCalls(calls []*callv1.Call) int {
	w := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "UUID\tFROM\tTO\tSTATE\tAPP\tCREATED_ON")
	for _, k := range calls {
		created := ""
		if k.CreatedOn != nil {
			created = k.GetCreatedOn().AsTime().UTC().Format(time.RFC3339)
		}
		cells := []string{k.GetUuid(), k.GetFrom(), k.GetTo(), k.GetState(), k.GetSipControlApp().GetUuid(), created}
		for i, s := range cells {
			cells[i] = cell(s)
		}
		fmt.Fprintln(w, strings.Join(cells, "\t"))
	}
	if err := w.Flush(); err != nil {
		return c.fail(exitFailed, "printing the calls: %v", err)
	}
	return exitOK
}

// cell is s as one cell of a table: "-" when empty, and no control
// character (a tab, a line break, a terminal's escape) from the answer.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

func runCallsOnline(ctx context.Context, c *command, args []string) int {
	asJSON := c.fs.Bool("json", false, "print the answer as JSON instead of a table")
	if code, done := c.parse(args); done {
		return code
	}
	if code, done := c.noArgs(); done {
		return code
	}
	conn, code, done := c.dial()
	if done {
		return code
	}
	defer conn.Close()

	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := callv1.NewCallControlServiceClient(conn).ListOnlineCalls(ctx, &callv1.ListOnlineCallsRequest{})
	if err != nil {
		return c.callFailed(err)
	}
	hideTree(resp.ProtoReflect(), "[hidden]")
	if *asJSON {
		return c.printPage(resp)
	}
	return c.printCalls(resp.GetData())
}

func runCallsSearch(ctx context.Context, c *command, args []string) int {
	var from, to, tn, state, app stringFlag
	var since, until timeFlag
	take := int32Flag{unit: "calls"}
	skip := int32Flag{unit: "calls"}
	c.fs.Var(&from, "from", "the caller's `NUMBER`, or a mask of it")
	c.fs.Var(&to, "to", "the called `NUMBER`, or a mask of it")
	c.fs.Var(&tn, "tn", "the account's `NUMBER` the call is to or from, or a mask of it")
	c.fs.Var(&state, "state", "only calls in this `STATE`: online or offline")
	c.fs.Var(&app, "app", "only the calls of this call control app, by its `UUID`")
	c.fs.Var(&take, "take", "the page's size, at most 1000 (default: Opentact's)")
	c.fs.Var(&skip, "skip", "the calls before the page")
	c.fs.Var(&since, "since", "only calls made at or after this `TIME`, in RFC 3339")
	c.fs.Var(&until, "until", "only calls made up to this `TIME`, in RFC 3339")
	asJSON := c.fs.Bool("json", false, "print the page as JSON instead of a table")
	if code, done := c.parse(args); done {
		return code
	}
	if code, done := c.noArgs(); done {
		return code
	}
	if state.v != nil {
		s := strings.ToLower(*state.v)
		if !slices.Contains(callStates, s) {
			return c.fail(exitUsage, "--state: want %s", strings.Join(callStates, " or "))
		}
		state.v = &s
	}
	if app.v != nil && !isUUID(*app.v) {
		return c.fail(exitUsage, "--app is not a uuid: give the call control app's uuid, as CallControlService/ListCallControlApps lists it")
	}
	if since.v != nil && until.v != nil && since.v.AsTime().After(until.v.AsTime()) {
		return c.fail(exitUsage, "--since is after --until: no call can match")
	}
	// Whole numbers lose their +, as everywhere in the API; a mask is the
	// facade's and Opentact's to read.
	for _, f := range []*stringFlag{&from, &to, &tn} {
		if f.v != nil {
			if d, ok := numberDigits(*f.v); ok {
				f.v = &d
			}
		}
	}
	req := &callv1.SearchCallsRequest{
		Take: take.v, Skip: skip.v, Tn: tn.v, From: from.v, To: to.v, State: state.v, SipControlApp: app.v,
		CreatedOnFrom: since.v, CreatedOnTo: until.v,
	}
	conn, code, done := c.dial()
	if done {
		return code
	}
	defer conn.Close()

	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := callv1.NewCallControlServiceClient(conn).SearchCalls(ctx, req)
	if err != nil {
		return c.callFailed(err)
	}
	hideTree(resp.ProtoReflect(), "[hidden]")
	if *asJSON {
		return c.printPage(resp)
	}
	if code := c.printCalls(resp.GetData()); code != exitOK {
		return code
	}
	// The page's place, as Opentact answered it, else as asked.
	before := resp.GetSkip()
	if resp.Skip == nil && skip.v != nil {
		before = *skip.v
	}
	if n := int32(len(resp.GetData())); n > 0 && resp.Total != nil && resp.GetTotal() > before+n {
		fmt.Fprintf(c.stderr, "calls %d to %d of %d: --skip %d for the next page\n", before+1, before+n, resp.GetTotal(), before+n)
	}
	return exitOK
}
