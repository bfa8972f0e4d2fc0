package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	messagingv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/messaging/v1"
)

const smsUsage = `Usage: opentactctl sms send|get|search [flags]

Sends SMS and looks them up through opentact.messaging.v1.MessagingService.
A number is its digits, such as 12029822917; a leading + is allowed.

  send --from NUMBER --to NUMBER [--request-id ID] < MESSAGE
                      sends one message; its text comes on standard input,
                      never on the command line
  get UUID [--inbound]
                      a message sent (with --inbound, received)
  search [--from N] [--to N] [--state S] [--take N] [--skip N] [--outbound|--inbound]
                      messages sent and received, or of one direction

Turning SMS on for a number (EnableSMS) and the messaging profiles are
reached with opentactctl call: opentactctl methods lists them. Run
opentactctl sms COMMAND -h for its flags.
`

const smsSendUsage = `Usage: opentactctl sms send --from NUMBER --to NUMBER [--request-id ID] [flags] < MESSAGE

Calls opentact.messaging.v1.MessagingService/SendSMS through opentact-facade:
one message from --from, one of the account's numbers with SMS on, to --to
(digits, a leading + allowed), charged to the account. Prints the message as
JSON: its uuid and its state, "created" until Opentact has sent it (sms get
UUID follows it).

The text is a person's words, so it never comes from a flag or an argument:
command lines are visible to other users of the machine and kept in the
shell history. It is the whole of standard input, less one final line
break, 1 to 918 characters:
  printf '%s\n' "$TEXT" | opentactctl sms send --from 12029822917 --to 12025550123
  opentactctl sms send --from 12029822917 --to 12025550123 < message.txt
With --secret-stdin, standard input holds the credential, so the text cannot
come from there too: give the credential in OPENTACT_PASSWORD or
OPENTACT_SECRET.

A message is never sent twice by mistake. Every message carries a request
id: the one given with --request-id, or a new one, printed on standard error
before the call. To retry (after a timeout, say), run the same command again,
with the same text, and --request-id with that id: the facade answers with the
first call's message rather than sending it again, for 24 hours (each replica
of the facade keeps its own ids), and refuses (FailedPrecondition) the same
id with another message.

` + credentialsHelp + `
Flags:
`

const smsGetUsage = `Usage: opentactctl sms get UUID [--inbound] [flags]

Calls opentact.messaging.v1.MessagingService/GetSMS through opentact-facade:
the message sent with that uuid, as sms send and sms search print it, with
its state (created, sending, sent or failed) and whether it was delivered.
With --inbound, GetInboundSMS: a message one of the account's numbers
received. Prints it as JSON, its text included.

` + credentialsHelp + `
Flags:
`

const smsSearchUsage = `Usage: opentactctl sms search [--from N] [--to N] [--state S] [--take N] [--skip N] [--outbound|--inbound] [flags]

Calls opentact.messaging.v1.MessagingService/SearchSMS through opentact-facade:
the messages sent and received that match every filter given, a page at a
time: --take at most 1000, --skip the messages before the page. --from and
--to take a number or a mask of one.

With --outbound, SearchOutboundSMS: the messages sent, --from then being the
sending number, digits (no mask). With --inbound, SearchInboundSMS: the
messages received. Prints the page as JSON (take, skip, total, data), the
texts included.

` + credentialsHelp + `
Flags:
`

// maxMessageBytes bounds the text read from standard input: far beyond
// the 918 characters an SMS holds, which the facade checks.
const maxMessageBytes = 64 << 10

// message reads the text of an SMS: the whole of standard input, less one
// final line break (echo and printf '%s\n' add one). Its error is a usage
// error.
func (c *command) message() (string, error) {
	if f, ok := c.stdin.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprintln(c.stderr, "type the message, then Ctrl-D on a line of its own")
		}
	}
	text, err := io.ReadAll(io.LimitReader(c.stdin, maxMessageBytes+1))
	switch {
	case err != nil:
		return "", fmt.Errorf("reading the message from standard input: %w", err)
	case len(text) > maxMessageBytes:
		return "", fmt.Errorf("the message on standard input is over %d bytes: an SMS holds 918 characters at most", maxMessageBytes)
	}
	text = bytes.TrimSuffix(text, []byte("\n"))
	text = bytes.TrimSuffix(text, []byte("\r"))
	switch {
	case len(text) == 0:
		return "", fmt.Errorf("no message on standard input: give its text there, such as printf '%%s\\n' \"$TEXT\" | opentactctl sms send ...")
	case !utf8.Valid(text):
		return "", fmt.Errorf("the message on standard input is not UTF-8 text")
	}
	return string(text), nil
}

// phoneFlag reads the number of a required flag. Its error is a usage
// error.
func phoneFlag(f stringFlag, name, what string) (string, error) {
	if f.v == nil {
		return "", fmt.Errorf("give --%s, %s", name, what)
	}
	d, ok := numberDigits(*f.v)
	if !ok {
		return "", fmt.Errorf("--%s is not a number: give %s as digits, a leading + allowed", name, what)
	}
	return d, nil
}

func runSMSSend(ctx context.Context, c *command, args []string) int {
	var from, to stringFlag
	c.fs.Var(&from, "from", "the sending `NUMBER`: one of the account's, with SMS on (required)")
	c.fs.Var(&to, "to", "the recipient's `NUMBER` (required)")
	var rid requestID
	rid.define(c, "message")
	if code, done := c.parse(args); done {
		return code
	}
	if c.fs.NArg() > 0 {
		// Not echoed: it is most likely the text itself.
		return c.fail(exitUsage, "sms send takes no argument: the message goes on standard input, never on the command line, which other users of the machine and the shell history see")
	}
	req := &messagingv1.SendSMSRequest{}
	var err error
	if req.From, err = phoneFlag(from, "from", "the sending number, one of the account's"); err != nil {
		return c.fail(exitUsage, "%v", err)
	}
	if req.To, err = phoneFlag(to, "to", "the recipient's number"); err != nil {
		return c.fail(exitUsage, "%v", err)
	}
	if code, done := rid.check(c); done {
		return code
	}
	if *c.secretStdin {
		return c.fail(exitUsage, "--secret-stdin reads the credential from standard input, so the message cannot come from there too: give the credential in OPENTACT_PASSWORD or OPENTACT_SECRET")
	}
	// The credentials first, so that a mistake there is told before
	// standard input is waited for.
	conn, code, done := c.dial()
	if done {
		return code
	}
	defer conn.Close()
	if req.Message, err = c.message(); err != nil {
		return c.fail(exitUsage, "%v", err)
	}
	req.RequestId = rid.value(c, "sending")

	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := messagingv1.NewMessagingServiceClient(conn).SendSMS(ctx, req)
	if err != nil {
		return c.callFailed(err, req.Message)
	}
	return c.print(resp)
}

func runSMSGet(ctx context.Context, c *command, args []string) int {
	inbound := c.fs.Bool("inbound", false, "a message received (GetInboundSMS) rather than sent")
	pos, code, done := c.parseArgs(args)
	if done {
		return code
	}
	switch {
	case len(pos) == 0:
		return c.fail(exitUsage, "give the message's uuid, as sms send and sms search print it")
	case len(pos) > 1:
		return c.fail(exitUsage, "sms get takes one uuid; give them one at a time")
	case !isUUID(pos[0]):
		// Not echoed: it may be the text, or a secret.
		return c.fail(exitUsage, "the argument is not a uuid: give the message's uuid, as sms send and sms search print it")
	}
	conn, code, done := c.dial()
	if done {
		return code
	}
	defer conn.Close()

	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	client := messagingv1.NewMessagingServiceClient(conn)
	if *inbound {
		resp, err := client.GetInboundSMS(ctx, &messagingv1.GetInboundSMSRequest{Uuid: pos[0]})
		if err != nil {
			return c.callFailed(err)
		}
		return c.print(resp)
	}
	resp, err := client.GetSMS(ctx, &messagingv1.GetSMSRequest{Uuid: pos[0]})
	if err != nil {
		return c.callFailed(err)
	}
	return c.print(resp)
}

func runSMSSearch(ctx context.Context, c *command, args []string) int {
	var from, to, state stringFlag
	take := int32Flag{unit: "messages"}
	skip := int32Flag{unit: "messages"}
	c.fs.Var(&from, "from", "the sender's `NUMBER`, or a mask of it (with --outbound: the sending number, digits)")
	c.fs.Var(&to, "to", "the recipient's `NUMBER`, or a mask of it")
	c.fs.Var(&state, "state", "only messages in this `STATE`, such as sent or failed")
	c.fs.Var(&take, "take", "the page's size, at most 1000 (default: Opentact's)")
	c.fs.Var(&skip, "skip", "the messages before the page")
	outbound := c.fs.Bool("outbound", false, "only messages sent (SearchOutboundSMS)")
	inbound := c.fs.Bool("inbound", false, "only messages received (SearchInboundSMS)")
	if code, done := c.parse(args); done {
		return code
	}
	if code, done := c.noArgs(); done {
		return code
	}
	if *outbound && *inbound {
		return c.fail(exitUsage, "--outbound and --inbound exclude each other: give neither for both directions")
	}
	// Whole numbers lose their +, as everywhere in the API; a mask is the
	// facade's and Opentact's to read.
	for _, f := range []*stringFlag{&from, &to} {
		if f.v != nil {
			if d, ok := numberDigits(*f.v); ok {
				f.v = &d
			}
		}
	}
	if *outbound && from.v != nil {
		if _, ok := numberDigits(*from.v); !ok {
			return c.fail(exitUsage, "with --outbound, --from is the sending number, digits, not a mask")
		}
	}
	conn, code, done := c.dial()
	if done {
		return code
	}
	defer conn.Close()

	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	client := messagingv1.NewMessagingServiceClient(conn)
	switch {
	case *outbound:
		resp, err := client.SearchOutboundSMS(ctx, &messagingv1.SearchOutboundSMSRequest{Take: take.v, Skip: skip.v, Tn: from.v, To: to.v, State: state.v})
		if err != nil {
			return c.callFailed(err)
		}
		return c.printPage(resp)
	case *inbound:
		resp, err := client.SearchInboundSMS(ctx, &messagingv1.SearchInboundSMSRequest{Take: take.v, Skip: skip.v, From: from.v, To: to.v, State: state.v})
		if err != nil {
			return c.callFailed(err)
		}
		return c.printPage(resp)
	}
	resp, err := client.SearchSMS(ctx, &messagingv1.SearchSMSRequest{Take: take.v, Skip: skip.v, From: from.v, To: to.v, State: state.v})
	if err != nil {
		return c.callFailed(err)
	}
	return c.printPage(resp)
}
