package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	callv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/call/v1"
	"github.com/opentact-facade/opentact-facade/internal/sandbox"
)

// clockStack is a stack whose sandbox runs on a clock the test moves, so
// that an inbound call stays online until the test ends it.
type clockStack struct {
	*stack
	sandbox *sandbox.Sandbox
	url     string       // the sandbox's, for its /sandbox/ controls
	now     atomic.Int64 // the sandbox's clock, in Unix seconds
}

func startClockStack(t *testing.T) *clockStack {
	t.Helper()
	cs := &clockStack{stack: &stack{}}
	cs.now.Store(time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC).Unix())
	sb, err := sandbox.New(sandbox.Options{Now: func() time.Time { return time.Unix(cs.now.Load(), 0) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sb.Close() })
	cs.sandbox = sb
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cs.upstream.Add(1)
		sb.ServeHTTP(w, r)
	}))
	t.Cleanup(up.Close)
	cs.url = up.URL
	cs.addr, cs.rest = startFacade(t, up.URL, nil)
	return cs
}

// moveClock moves the sandbox's clock by d.
func (cs *clockStack) moveClock(d time.Duration) {
	cs.now.Add(int64(d / time.Second))
	cs.sandbox.ClockMoved()
}

// inboundCall has the sandbox play a call from from to the account's
// number to, and returns its uuid.
func (cs *clockStack) inboundCall(t *testing.T, from, to string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, cs.url+"/sandbox/inbound-call",
		strings.NewReader(`{"to": "`+to+`", "from": "`+from+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(sandbox.DemoEmail, sandbox.DemoPassword)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var ack struct {
		Payload struct {
			UUID string `json:"uuid"`
		} `json:"payload"`
	}
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(body, &ack) != nil || !isUUID(ack.Payload.UUID) {
		t.Fatalf("inbound-call = %d %s", resp.StatusCode, body)
	}
	return ack.Payload.UUID
}

// run runs the command against cs with the demo account's credentials and
// wants it to succeed.
func (cs *clockStack) run(t *testing.T, group, sub string, extra ...string) result {
	t.Helper()
	r := cli(t, demoEnv, "", callflowArgs(cs.stack, group, sub, extra...)...)
	r.wantCode(t, exitOK)
	return r
}

// appWithNumber makes a call control app, orders a number and assigns it
// to the app, through the command line; it returns the app's uuid and the
// number.
func appWithNumber(t *testing.T, cs *clockStack) (app, tn string) {
	t.Helper()
	app = createApp(t, cs.stack)
	tn = strings.TrimSpace(cs.run(t, "number", "search", "--province", "DC", "--size", "1", "--plain").stdout)
	if _, ok := numberDigits(tn); !ok {
		t.Fatalf("number search printed %q", tn)
	}
	cs.run(t, "number", "order", tn, "--request-id", "order-"+tn)
	var leases struct {
		Data []struct {
			UUID string `json:"uuid"`
		} `json:"data"`
	}
	out := cs.run(t, "number", "list", "--tn", tn).stdout
	if err := json.Unmarshal([]byte(out), &leases); err != nil || len(leases.Data) != 1 {
		t.Fatalf("number list printed %s (%v)", out, err)
	}
	cs.run(t, "call", "CallControlService/AssignLeases", `{"uuid": "`+app+`", "add": ["`+leases.Data[0].UUID+`"]}`)
	return app, tn
}

// tableRows are the rows of a calls table, each split into its cells,
// after checking the header.
func tableRows(t *testing.T, out string) [][]string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != "UUID FROM TO STATE APP CREATED_ON" {
		t.Fatalf("table header %q:\n%s", lines[0], out)
	}
	var rows [][]string
	for _, l := range lines[1:] {
		rows = append(rows, strings.Fields(l))
	}
	return rows
}

// TestCalls: calls to a number of an app are listed while under way, then
// found in the call log, as tables and as JSON.
func TestCalls(t *testing.T) {
	t.Parallel()
	cs := startClockStack(t)

	r := cs.run(t, "calls", "online")
	if rows := tableRows(t, r.stdout); len(rows) != 0 || r.stderr != "" {
		t.Errorf("calls online with no call printed\n%s\nstderr %s", r.stdout, r.stderr)
	}
	r = cs.run(t, "calls", "online", "--json")
	if r.stdout != "{\n  \"data\": []\n}\n" {
		t.Errorf("calls online --json with no call printed\n%s", r.stdout)
	}

	app, tn := appWithNumber(t, cs)
	first := cs.inboundCall(t, "18389990000", tn)
	second := cs.inboundCall(t, "14155550123", tn)
	created := time.Unix(cs.now.Load(), 0).UTC().Format(time.RFC3339)

	r = cs.run(t, "calls", "online")
	rows := tableRows(t, r.stdout)
	want := map[string][]string{
		first:  {first, "18389990000", tn, "online", app, created},
		second: {second, "14155550123", tn, "online", app, created},
	}
	if len(rows) != 2 {
		t.Fatalf("calls online printed\n%s\nwant 2 calls", r.stdout)
	}
	for _, row := range rows {
		if strings.Join(row, " ") != strings.Join(want[row[0]], " ") {
			t.Errorf("calls online row %q, want %q", row, want[row[0]])
		}
	}
	if !regexp.MustCompile(`(?m)^UUID {2,}FROM {2,}TO {2,}STATE {2,}APP {2,}CREATED_ON$`).MatchString(r.stdout) {
		t.Errorf("the table's columns are not aligned:\n%s", r.stdout)
	}

	r = cs.run(t, "calls", "online", "--json")
	r.wantRegularJSON(t)
	online := &callv1.ListOnlineCallsResponse{}
	if err := protojson.Unmarshal([]byte(r.stdout), online); err != nil {
		t.Fatal(err)
	}
	if len(online.GetData()) != 2 || online.GetData()[0].GetSipControlApp().GetUuid() != app || online.GetData()[0].GetTn().GetTn() != tn {
		t.Errorf("calls online --json printed %s", r.stdout)
	}

	r = cs.run(t, "calls", "search", "--state", "online", "--app", app)
	if rows := tableRows(t, r.stdout); len(rows) != 2 {
		t.Errorf("calls search --state online printed\n%s", r.stdout)
	}

	// The calls end: no call under way, both in the log as offline.
	cs.moveClock(10 * time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		r = cs.run(t, "calls", "online")
		if len(tableRows(t, r.stdout)) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("calls still online after the clock moved:\n%s", r.stdout)
		}
		time.Sleep(20 * time.Millisecond)
	}

	for _, tc := range []struct {
		name  string
		args  []string
		calls []string
		more  string // the line on stderr
	}{
		{"every call", nil, []string{second, first}, ""},
		{"offline, from a number with its +", []string{"--state", "offline", "--from", "+18389990000"}, []string{first}, ""},
		{"from a mask", []string{"--from", "1415*"}, []string{second}, ""},
		{"to the number, by --tn", []string{"--tn", tn, "--to", tn}, []string{second, first}, ""},
		{"the app's", []string{"--app", app}, []string{second, first}, ""},
		{"another app's", []string{"--app", "5a0c7f3e-8b1d-4c2e-9f6a-1b2c3d4e5f60"}, nil, ""},
		{"still online", []string{"--state", "ONLINE"}, nil, ""},
		{"the first page of one", []string{"--take", "1"}, []string{second}, "calls 1 to 1 of 2: --skip 1 for the next page\n"},
		{"the second page of one", []string{"--take", "1", "--skip", "1"}, []string{first}, ""},
		{"since they were made", []string{"--since", "2025-07-01T12:00:00Z", "--until", "2025-07-01T12:00:00+00:00"}, []string{second, first}, ""},
		{"since later", []string{"--since", "2025-07-01T12:00:01Z"}, nil, ""},
		{"until earlier", []string{"--until", "2025-07-01T13:59:59+02:00"}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := cs.run(t, "calls", "search", tc.args...)
			rows := tableRows(t, r.stdout)
			var got []string
			for _, row := range rows {
				got = append(got, row[0])
				if row[3] != "offline" || row[4] != app {
					t.Errorf("row %q", row)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.calls, ",") {
				t.Errorf("calls search %v printed\n%s\nwant the calls %v", tc.args, r.stdout, tc.calls)
			}
			if r.stderr != tc.more {
				t.Errorf("stderr %q, want %q", r.stderr, tc.more)
			}
		})
	}

	r = cs.run(t, "calls", "search", "--json", "--take", "1")
	r.wantRegularJSON(t)
	page := &callv1.SearchCallsResponse{}
	if err := protojson.Unmarshal([]byte(r.stdout), page); err != nil {
		t.Fatal(err)
	}
	if page.GetTotal() != 2 || len(page.GetData()) != 1 || page.GetData()[0].GetUuid() != second || r.stderr != "" {
		t.Errorf("calls search --json printed %s\nstderr %s", r.stdout, r.stderr)
	}
	r = cs.run(t, "calls", "search", "--json", "--state", "online")
	if !strings.Contains(r.stdout, "\"total\": 0") || !strings.Contains(r.stdout, "\"data\": []") {
		t.Errorf("an empty page as JSON:\n%s", r.stdout)
	}
}

// TestCallsUsageErrors: a command line calls cannot use fails with exit 2
// and reaches nothing.
func TestCallsUsageErrors(t *testing.T) {
	t.Parallel()
	st := startStack(t, nil)
	for _, tc := range []struct {
		name    string
		args    []string
		mention []string
	}{
		{"no calls command", []string{"calls"}, []string{"Usage", "online", "search"}},
		{"unknown calls command", []string{"calls", "hangup"}, []string{"Usage"}},
		{"online with an argument", callflowArgs(st, "calls", "online", "now"), []string{"unexpected argument"}},
		{"search with an argument", callflowArgs(st, "calls", "search", "1202"), []string{"unexpected argument"}},
		{"search --state unknown", callflowArgs(st, "calls", "search", "--state", "live"), []string{"--state", "online or offline"}},
		{"search --app not a uuid", callflowArgs(st, "calls", "search", "--app", "ivr"), []string{"--app is not a uuid"}},
		{"search --since not a time", callflowArgs(st, "calls", "search", "--since", "yesterday"), []string{"-since", "RFC 3339"}},
		{"search --until a date alone", callflowArgs(st, "calls", "search", "--until", "2025-07-01"), []string{"-until", "RFC 3339"}},
		{"search --since after --until", callflowArgs(st, "calls", "search", "--since", "2025-07-02T00:00:00Z", "--until", "2025-07-01T00:00:00Z"), []string{"--since is after --until"}},
		{"search --take not a number", callflowArgs(st, "calls", "search", "--take", "ten"), []string{"-take", "whole number of calls"}},
		{"online without credentials", []string{"calls", "online", "--plaintext", "--addr", st.addr}, []string{"--email"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := demoEnv
			if strings.HasSuffix(tc.name, "without credentials") {
				env = nil
			}
			r := cli(t, env, "", tc.args...)
			r.wantCode(t, exitUsage)
			r.wantStderr(t, tc.mention...)
			if r.stdout != "" {
				t.Errorf("stdout: %s", r.stdout)
			}
		})
	}
	t.Run("refused by the facade", func(t *testing.T) {
		t.Parallel()
		r := cli(t, demoEnv, "", callflowArgs(st, "calls", "search", "--take", "1001")...)
		r.wantCode(t, exitFailed)
		r.wantStderr(t, "InvalidArgument", "\n  take: ")
	})
	t.Cleanup(func() {
		if n := st.upstream.Load(); n != 0 {
			t.Errorf("the upstream saw %d requests", n)
		}
	})
}

// TestCallsTableCells: a cell never carries a control character from the
// answer, and an empty one shows "-".
func TestCallsTableCells(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                     "-",
		"18389990000":          "18389990000",
		"sip:anna@example.com": "sip:anna@example.com",
		"a\tb\nc\x1b[31m":      "a?b?c?[31m",
	} {
		if got := cell(in); got != want {
			t.Errorf("cell(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestCallsHelp: the calls commands' usage says what each takes.
func TestCallsHelp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args    []string
		mention []string
	}{
		{[]string{"calls", "-h"}, []string{"online", "search", "--json", "opentactctl call"}},
		{[]string{"calls", "online", "-h"}, []string{"ListOnlineCalls", "--json", "created_on"}},
		{[]string{"calls", "search", "-h"}, []string{"SearchCalls", "-from", "-to", "-tn", "-state", "-app", "-take", "-skip", "-since", "-until", "RFC 3339", "--json"}},
	} {
		r := cli(t, nil, "", tc.args...)
		r.wantCode(t, exitOK)
		r.wantStderr(t, append([]string{"Usage"}, tc.mention...)...)
	}
}
