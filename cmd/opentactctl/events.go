package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	eventsv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/events/v1"
)

const eventsUsage = `Usage: opentactctl events [--types TYPE,...] [flags]

Streams the caller's Opentact events through
opentact.events.v1.EventService/StreamEvents and prints each as one line of
JSON as it comes, until Ctrl-C. --types keeps only Opentact's types named
(call_state, sms, balance, tn_order, ...); facade.gap events, which say that
events may have been missed, always come.

` + credentialsHelp + `
Flags:
`

// eventLine is an event as one line: Opentact's field names, no spaces.
var eventLine = protojson.MarshalOptions{UseProtoNames: true}

func runEvents(ctx context.Context, c *command, args []string) int {
	types := c.fs.String("types", "", "comma-separated event types to keep; all when empty")
	if code, done := c.parse(args); done {
		return code
	}
	if code, done := c.noArgs(); done {
		return code
	}
	req := &eventsv1.StreamEventsRequest{}
	for _, t := range strings.Split(*types, ",") {
		if t = strings.TrimSpace(t); t != "" {
			req.Types = append(req.Types, t)
		}
	}
	conn, code, done := c.dial()
	if done {
		return code
	}
	defer conn.Close()
	// A stream has no timeout: it ends with Ctrl-C (exit 0) or the facade.
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	stream, err := eventsv1.NewEventServiceClient(conn).StreamEvents(ctx, req)
	if err != nil {
		return c.callFailed(err)
	}
	for {
		ev, err := stream.Recv()
		switch {
		case errors.Is(err, io.EOF):
			return exitOK
		case err != nil && ctx.Err() != nil && status.Code(err) == codes.Canceled:
			return exitOK
		case err != nil:
			return c.callFailed(err)
		}
		b, err := eventLine.Marshal(ev)
		if err != nil {
			return c.fail(exitFailed, "printing an event: %v", err)
		}
		fmt.Fprintln(c.stdout, string(b))
	}
}
