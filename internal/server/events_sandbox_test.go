package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/events/v1"
	numberv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/number/v1"
	"github.com/opentact-facade/opentact-facade/internal/sandbox"
	"github.com/opentact-facade/opentact-facade/internal/server"
)

// TestEventsFromTheSandbox walks make run's events: a stream over the
// sandbox's WebSocket gets the order and balance events of an order, an
// inbound SMS and an inbound call's first state, each typed.
func TestEventsFromTheSandbox(t *testing.T) {
	t.Parallel()
	sb, err := sandbox.New(sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	upstream := httptest.NewServer(sb)
	t.Cleanup(func() {
		_ = sb.Close()
		upstream.Close()
	})
	f := startFacade(t, upstream.URL, func(o *server.Options) { o.EventsURL = "ws" + strings.TrimPrefix(upstream.URL, "http") + "/" })
	ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(context.Background(), "authorization", demoBasic))
	defer cancel()
	stream, err := eventsv1.NewEventServiceClient(f.conn).StreamEvents(ctx, &eventsv1.StreamEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Header(); err != nil {
		t.Fatal(err)
	}
	next := func(typ string) *eventsv1.Event {
		t.Helper()
		for {
			ev, err := stream.Recv()
			if err != nil {
				t.Fatalf("waiting for %s: %v", typ, err)
			}
			if ev.GetType() == typ {
				return ev
			}
		}
	}
	// The socket opens after the stream's headers; wait for it before the
	// order, since Opentact keeps no event for later.
	waitFor(t, "the sandbox socket", func() bool { return metric(t, f, "opentact_facade_event_sockets") == 1 })

	docs := strconv.Itoa(sandbox.DocsNumber)
	if _, err := numberv1.NewNumberServiceClient(f.conn).OrderNumbers(ctx, &numberv1.OrderNumbersRequest{Items: []*numberv1.OrderItem{
		{Tn: proto.String(docs), Features: []string{"voice", "sms"}},
	}}); err != nil {
		t.Fatalf("OrderNumbers: %v", err)
	}
	if o := next("tn_order").GetTnOrder(); o.GetState() != "success" || len(o.GetTns()) != 1 || o.GetTns()[0].GetTn() != docs {
		t.Fatalf("tn_order event: %v", o)
	}
	if b := next("balance").GetBalance(); b.GetBalance() == "" || b.GetSourceAction() != "tn_order" {
		t.Fatalf("balance event: %v", b)
	}

	control := func(path, body string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, upstream.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", demoBasic)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
	}
	control("/sandbox/inbound-sms", `{"to":"`+docs+`","from":"12025550123","message":"Hi there"}`)
	if s := next("sms").GetSms(); s.GetType() != "smsi" || s.GetMessage() != "Hi there" || s.GetTo() != docs {
		t.Fatalf("sms event: %v", s)
	}
	control("/sandbox/inbound-call", `{"to":"`+docs+`","from":"12025550123"}`)
	if c := next("call_state").GetCallState(); c.GetState() != "init" || c.GetCall().GetDirection() != "in" || c.GetCall().GetTo() != docs {
		t.Fatalf("call_state event: %v", c)
	}
}
