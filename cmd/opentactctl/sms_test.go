package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	messagingv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/messaging/v1"
)

// smsText is a message's text: a person's words, which must reach
// Opentact's body and nothing else the command writes but the answer.
const smsText = "Meet me at 7, Anna: the door code is 4412"

// TestSMSCommands: each sms command sends its request, the numbers of
// send as JSON numbers without their +, the text from standard input, and
// prints the answer.
func TestSMSCommands(t *testing.T) {
	t.Parallel()
	o := startOpentact(t)
	sent := `{"from":` + tn1 + `,"to":` + recipient + `,"message":`
	for _, tc := range []requestTest{
		{
			name:  "send",
			stdin: smsText + "\n",
			args:  o.ctlArgs("sms", "send", "--from", "+"+tn1, "--to", recipient, "--request-id", "sms-1"),
			want:  seenRequest{Method: "POST", URI: "/rest/sms", Body: sent + quote(smsText) + `}`},
			out:   []string{`"uuid": "` + smsUUID + `"`, `"state": "created"`, `"from": "` + tn1 + `"`, `"message": ` + quote(smsText)},
		},
		{
			name:  "send, without the final CRLF",
			stdin: smsText + "\r\n",
			args:  o.ctlArgs("sms", "send", "--to", "+"+recipient, "--from", tn1, "--request-id", "sms-2"),
			want:  seenRequest{Method: "POST", URI: "/rest/sms", Body: sent + quote(smsText) + `}`},
		},
		{
			name:  "send a text without a line break, not UTF-8 free",
			stdin: "Grüße 👋",
			args:  o.ctlArgs("sms", "send", "--from", tn1, "--to", recipient, "--request-id", "sms-3"),
			want:  seenRequest{Method: "POST", URI: "/rest/sms", Body: sent + quote("Grüße 👋") + `}`},
		},
		{
			name: "get",
			args: o.ctlArgs("sms", "get", smsUUID),
			want: seenRequest{Method: "GET", URI: "/rest/sms/outbound/" + smsUUID},
			out:  []string{`"state": "sent"`, `"delivered": true`},
		},
		{
			name: "get --inbound",
			args: o.ctlArgs("sms", "get", "--inbound", smsiUUID),
			want: seenRequest{Method: "GET", URI: "/rest/sms/inbound/" + smsiUUID},
			out:  []string{`"uuid": "` + smsiUUID + `"`, `"from": "` + recipient + `"`, `"readed": false`},
		},
		{
			name: "search both directions",
			args: o.ctlArgs("sms", "search", "--from", "1202*", "--to", "+"+recipient, "--state", "sent", "--take", "10", "--skip", "0"),
			want: seenRequest{Method: "POST", URI: "/rest/sms/search?skip=0&take=10", Body: `{"from":"1202*","to":"` + recipient + `","state":"sent"}`},
			out:  []string{`"total": 2`, `"type": "sms"`, `"type": "smsi"`},
		},
		{
			name: "search --outbound: --from is the sending number",
			args: o.ctlArgs("sms", "search", "--outbound", "--from", "+"+tn1, "--take", "5"),
			want: seenRequest{Method: "POST", URI: "/rest/sms/search/outbound?take=5", Body: `{"tn":` + tn1 + `}`},
			out:  []string{`"uuid": "` + smsUUID + `"`, `"type": "smso"`},
		},
		{
			name: "search --inbound, nothing found",
			args: o.ctlArgs("sms", "search", "--inbound", "--from", recipient, "--to", tn1, "--state", "success"),
			want: seenRequest{Method: "POST", URI: "/rest/sms/search/inbound", Body: `{"from":"` + recipient + `","to":"` + tn1 + `","state":"success"}`},
			out:  []string{"{\n  \"take\": 10,\n  \"skip\": 0,\n  \"total\": 0,\n  \"data\": []\n}\n"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.run(t, o)
			r.wantRegularJSON(t)
			if r.stderr != "" {
				t.Errorf("stderr: %s", r.stderr)
			}
		})
	}

	t.Run("get of a message Opentact does not have", func(t *testing.T) {
		r := cli(t, fakeEnv, "", o.ctlArgs("sms", "get", orderUUID)...)
		r.wantCode(t, exitFailed)
		r.wantStderr(t, "opentactctl: NotFound: ")
		o.requests()
	})
}

// TestSMSRequestID: every message carries a request id: the one given, or
// a new one per run, printed on stderr before the call.
func TestSMSRequestID(t *testing.T) {
	t.Parallel()
	rec := startRecorder(t)
	args := []string{"sms", "send", "--from", tn1, "--to", recipient, "--plaintext", "--addr", rec.addr, "--email", fakeEmail}

	r := cli(t, fakeEnv, smsText, args...)
	r.wantCode(t, exitOK)
	m := idLine.FindStringSubmatch(r.stderr)
	if m == nil || m[1] != m[3] || m[2] != "sending" {
		t.Fatalf("stderr %q, want the request id line", r.stderr)
	}
	want := &messagingv1.SendSMSRequest{From: tn1, To: recipient, Message: smsText, RequestId: proto.String(m[1])}
	if got := rec.last(t); !proto.Equal(got, want) {
		t.Errorf("sent %v, want %v", got, want)
	}
	if strings.Contains(r.stderr, smsText) {
		t.Errorf("stderr shows the text: %s", r.stderr)
	}

	r = cli(t, fakeEnv, smsText, append(args, "--request-id", "sms-42")...)
	r.wantCode(t, exitOK)
	if got := rec.last(t).(*messagingv1.SendSMSRequest).GetRequestId(); got != "sms-42" || r.stderr != "" {
		t.Errorf("sent request_id %q, stderr %q; want sms-42 and nothing", got, r.stderr)
	}

	// The whole of standard input, lines and all, but its final line
	// break. (The facade's rules on line breaks are its own.)
	r = cli(t, fakeEnv, "first line\r\n\r\nthird line\n\n", append(args, "--request-id", "sms-43")...)
	r.wantCode(t, exitOK)
	if got := rec.last(t).(*messagingv1.SendSMSRequest).GetMessage(); got != "first line\r\n\r\nthird line\n" {
		t.Errorf("sent message %q", got)
	}
}

// TestSMSTextNeverOnTheCommandLine: the text is refused as an argument or
// a flag and not repeated; no error shows it, whoever echoes it.
func TestSMSTextNeverOnTheCommandLine(t *testing.T) {
	t.Parallel()
	o := startOpentact(t)
	send := func(extra ...string) []string {
		return o.ctlArgs("sms", "send", append([]string{"--from", tn1, "--to", recipient}, extra...)...)
	}
	for _, tc := range []struct {
		name    string
		stdin   string
		args    []string
		code    int
		mention []string
	}{
		{"the text as an argument", "", send(smsText), exitUsage, []string{"no argument", "standard input", "command line"}},
		{"the text after --", "", send("--", smsText), exitUsage, []string{"no argument", "standard input"}},
		{"the text as --message", "", send("--message", smsText), exitUsage, []string{"-message"}},
		{"the text as --message=", "", send("--message=" + smsText), exitUsage, []string{"-message"}},
		{"the text as --text=", "", send("--text=" + smsText), exitUsage, []string{"-text"}},
		{"the text where a number goes", smsText, o.ctlArgs("sms", "send", "--from", tn1, "--to", smsText), exitUsage, []string{"--to is not a number"}},
		{"the text where a uuid goes", "", o.ctlArgs("sms", "get", smsText), exitUsage, []string{"not a uuid"}},
		{"the text over 918 characters", strings.Repeat(smsText+" ", 25), send("--request-id", "long"), exitFailed, []string{"InvalidArgument", "\n  message: "}},
		// The facade hides it already; the CLI hides what a facade would not.
		{"Opentact quotes the text", smsText, o.ctlArgs("sms", "send", "--from", unknownTN, "--to", recipient, "--request-id", "quoted"), exitFailed, []string{"NotFound"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := cli(t, fakeEnv, tc.stdin, tc.args...)
			r.wantCode(t, tc.code)
			r.wantStderr(t, tc.mention...)
			r.wantNotShown(t, "door code", "Meet me")
			if r.stdout != "" {
				t.Errorf("stdout: %s", r.stdout)
			}
		})
	}
	if seen := o.requests(); len(seen) != 1 || seen[0].URI != "/rest/sms" || !strings.Contains(seen[0].Body, `"from":`+unknownTN) {
		t.Errorf("Opentact saw %+v, want only the send from %s", seen, unknownTN)
	}

	// A server that quotes the text in its error, past the facade.
	rec := startRecorder(t)
	r := cli(t, fakeEnv, smsText, "sms", "send", "--from", tn1, "--to", unknownTN, "--request-id", "x", "--plaintext", "--addr", rec.addr, "--email", fakeEmail)
	r.wantCode(t, exitFailed)
	r.wantStderr(t, `InvalidArgument: cannot send "[hidden]"`)
	r.wantNotShown(t, "door code")
}

// TestSMSUsageErrors: a command line the sms commands cannot use fails
// with exit 2, names the flag, and reaches nothing.
func TestSMSUsageErrors(t *testing.T) {
	t.Parallel()
	o := startOpentact(t)
	for _, tc := range []struct {
		name    string
		stdin   string
		args    []string
		mention []string
	}{
		{"no sms command", "", []string{"sms"}, []string{"Usage", "send", "search"}},
		{"unknown sms command", "", []string{"sms", "receive"}, []string{"Usage"}},
		{"send without --from", smsText, o.ctlArgs("sms", "send", "--to", recipient), []string{"give --from"}},
		{"send without --to", smsText, o.ctlArgs("sms", "send", "--from", tn1), []string{"give --to"}},
		{"send --from a mask", smsText, o.ctlArgs("sms", "send", "--from", "1202*", "--to", recipient), []string{"--from is not a number"}},
		{"send nothing", "", o.ctlArgs("sms", "send", "--from", tn1, "--to", recipient), []string{"no message on standard input"}},
		{"send a line break alone", "\n", o.ctlArgs("sms", "send", "--from", tn1, "--to", recipient), []string{"no message on standard input"}},
		{"send over 64 KiB", strings.Repeat("x", maxMessageBytes+1), o.ctlArgs("sms", "send", "--from", tn1, "--to", recipient), []string{"over 65536 bytes", "918 characters"}},
		{"send bytes that are not UTF-8", "caf\xe9", o.ctlArgs("sms", "send", "--from", tn1, "--to", recipient), []string{"not UTF-8"}},
		{"send with --secret-stdin", fakePassword + "\n" + smsText, o.ctlArgs("sms", "send", "--from", tn1, "--to", recipient, "--secret-stdin"), []string{"--secret-stdin", "OPENTACT_PASSWORD"}},
		{"send an empty --request-id", smsText, o.ctlArgs("sms", "send", "--from", tn1, "--to", recipient, "--request-id="), []string{"--request-id", "empty"}},
		{"get nothing", "", o.ctlArgs("sms", "get"), []string{"message's uuid"}},
		{"get two", "", o.ctlArgs("sms", "get", smsUUID, smsiUUID), []string{"one uuid"}},
		{"search --outbound --inbound", "", o.ctlArgs("sms", "search", "--outbound", "--inbound"), []string{"--outbound and --inbound"}},
		{"search --outbound with a mask", "", o.ctlArgs("sms", "search", "--outbound", "--from", "1202*"), []string{"--outbound", "--from", "not a mask"}},
		{"search --take not a number", "", o.ctlArgs("sms", "search", "--take", "all"), []string{"-take", "whole number of messages"}},
		{"search with an argument", "", o.ctlArgs("sms", "search", "sent"), []string{"unexpected argument"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := cli(t, fakeEnv, tc.stdin, tc.args...)
			r.wantCode(t, exitUsage)
			r.wantStderr(t, tc.mention...)
			r.wantNotShown(t, fakePassword)
			if r.stdout != "" {
				t.Errorf("stdout: %s", r.stdout)
			}
		})
	}
	t.Cleanup(func() {
		if seen := o.requests(); len(seen) != 0 {
			t.Errorf("Opentact saw %+v", seen)
		}
	})
}

// TestSMSHelp: the sms commands' usage says where the text comes from.
func TestSMSHelp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args    []string
		mention []string
	}{
		{[]string{"sms", "-h"}, []string{"send", "get", "search", "standard input", "opentactctl call"}},
		{[]string{"sms", "send", "-h"}, []string{"--from", "--to", "standard input", "never comes from a flag or an argument", "shell history", "918", "--secret-stdin", "--request-id", "24 hours"}},
		{[]string{"sms", "get", "-h"}, []string{"UUID", "--inbound", "GetInboundSMS"}},
		{[]string{"sms", "search", "-h"}, []string{"--from", "--to", "--state", "--take", "--skip", "--outbound", "--inbound", "mask"}},
	} {
		r := cli(t, nil, "", tc.args...)
		r.wantCode(t, exitOK)
		r.wantStderr(t, append([]string{"Usage"}, tc.mention...)...)
		if strings.Contains(r.stderr, "-message ") {
			t.Errorf("the usage offers a message flag:\n%s", r.stderr)
		}
	}
}

// TestBinarySMSSend runs sms send as a process: the text travels on
// standard input, never in the process's arguments, and reaches Opentact.
func TestBinarySMSSend(t *testing.T) {
	t.Parallel()
	bin := builtBinary(t)
	o := startOpentact(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cmd := exec.CommandContext(ctx, bin, o.ctlArgs("sms", "send", "--from", tn1, "--to", recipient)...)
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "OPENTACT_") }), "OPENTACT_PASSWORD="+fakePassword)
	cmd.Stdin = strings.NewReader(smsText + "\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %v\nstderr: %s", cmd.Args, err, stderr.String())
	}
	if slices.ContainsFunc(cmd.Args, func(a string) bool { return strings.Contains(a, "door code") }) {
		t.Errorf("the process's arguments hold the text: %q", cmd.Args)
	}
	if seen := o.requests(); len(seen) != 1 || !strings.Contains(seen[0].Body, `"message":`+quote(smsText)) {
		t.Errorf("Opentact saw %+v", seen)
	}
	if !strings.Contains(stdout.String(), `"uuid": "`+smsUUID+`"`) || !idLine.MatchString(stderr.String()) {
		t.Errorf("stdout %s\nstderr %s", stdout.String(), stderr.String())
	}
}

// TestSMSSendPromptsOnATerminal: with standard input a terminal (a
// character device), send says how to end the text it waits for.
func TestSMSSendPromptsOnATerminal(t *testing.T) {
	t.Parallel()
	o := startOpentact(t)
	tty, err := os.Open(os.DevNull) // a character device, as a terminal is
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var stdout, stderr bytes.Buffer
	lookupEnv := func(name string) (string, bool) { v, ok := fakeEnv[name]; return v, ok }
	code := run(context.Background(), o.ctlArgs("sms", "send", "--from", tn1, "--to", recipient), lookupEnv, tty, &stdout, &stderr)
	r := result{code: code, stdout: stdout.String(), stderr: stderr.String()}
	r.wantCode(t, exitUsage)
	r.wantStderr(t, "type the message, then Ctrl-D", "no message on standard input")
	if seen := o.requests(); len(seen) != 0 {
		t.Errorf("Opentact saw %+v", seen)
	}
}
