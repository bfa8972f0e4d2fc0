package server_test

import (
	"context"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	messagingv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/messaging/v1"
	numberv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/number/v1"
	"github.com/opentact-facade/opentact-facade/internal/sandbox"
)

// TestNumbersAndSMSEndToEnd walks a day's work through the facade's gRPC
// stubs against the sandbox: search numbers, order one, make a messaging
// profile, turn SMS on, send, look the message up as the sandbox's clock
// moves on, release the number.
func TestNumbersAndSMSEndToEnd(t *testing.T) {
	t.Parallel()
	start := time.Date(2025, 9, 1, 9, 0, 0, 0, time.UTC)
	var now atomic.Int64
	now.Store(start.Unix())
	sb, err := sandbox.New(sandbox.Options{Now: func() time.Time { return time.Unix(now.Load(), 0) }})
	if err != nil {
		t.Fatal(err)
	}
	upstream := httptest.NewServer(sb)
	t.Cleanup(upstream.Close)
	f := startFacade(t, upstream.URL)
	numbers := numberv1.NewNumberServiceClient(f.conn)
	messaging := messagingv1.NewMessagingServiceClient(f.conn)
	profiles := messagingv1.NewMessagingProfileServiceClient(f.conn)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", demoBasic)
	docs := strconv.Itoa(sandbox.DocsNumber)

	found, err := numbers.SearchNumbers(ctx, &numberv1.SearchNumbersRequest{Pattern: proto.String("202982*"), Size: proto.Int32(100)})
	if err != nil {
		t.Fatalf("SearchNumbers: %v", err)
	}
	var number *numberv1.Number
	for _, n := range found.GetData() {
		if n.GetTn() == docs {
			number = n
		}
	}
	if number == nil || found.GetTotal() != int32(len(found.GetData())) || found.GetTake() != 100 {
		t.Fatalf("SearchNumbers = %v, want %s among the numbers", found, docs)
	}
	if number.GetProfile().GetNrc() != "1.00" || number.GetOtherFields()["rateCenter"] != `"WSHNGTNZN1"` {
		t.Errorf("number = %v, want profile US at 1.00, rate center WSHNGTNZN1", number)
	}

	ordered, err := numbers.OrderNumbers(ctx, &numberv1.OrderNumbersRequest{Items: []*numberv1.OrderItem{
		{Tn: proto.String("+" + docs), Features: []string{"voice", "sms"}, Autorenew: proto.Bool(true)},
	}})
	if err != nil {
		t.Fatalf("OrderNumbers: %v", err)
	}
	o := ordered.GetOrder()
	if o.GetState() != "success" || o.GetSuccess() != 1 || len(o.GetTnleases()) != 1 || o.GetTns()[0].GetTn() != docs {
		t.Fatalf("order = %v", o)
	}
	leaseID := o.GetTnleases()[0].GetUuid()
	me, err := f.client.GetAuth(ctx, &authv1.GetAuthRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := me.GetUser().GetAccount().GetBalance(); got != "98.87895" {
		t.Errorf("balance after the order = %s, want 98.87895", got)
	}

	profile, err := profiles.CreateMessagingProfile(ctx, &messagingv1.CreateMessagingProfileRequest{Name: "demo"})
	if err != nil {
		t.Fatalf("CreateMessagingProfile: %v", err)
	}
	sub, err := messaging.EnableSMS(ctx, &messagingv1.EnableSMSRequest{TnLease: leaseID,
		MessagingProfile: profile.GetMessagingProfile().GetUuid(), SmsCampaign: "5c1d2e3f-0000-4000-8000-0000000000ca"})
	if err != nil {
		t.Fatalf("EnableSMS: %v", err)
	}
	if sub.GetSubscription().GetType() != "sms" || sub.GetSubscription().GetMessagingProfile().GetName() != "demo" {
		t.Errorf("subscription = %v", sub.GetSubscription())
	}

	sent, err := messaging.SendSMS(ctx, &messagingv1.SendSMSRequest{From: docs, To: "+12025550123", Message: "Hello from the sandbox"})
	if err != nil {
		t.Fatalf("SendSMS: %v", err)
	}
	if m := sent.GetSms(); m.GetState() != "created" || m.GetDelivered() || m.GetFrom() != docs || m.GetTo() != "12025550123" {
		t.Errorf("sent = %v, want created from %s to 12025550123", m, docs)
	}
	now.Store(start.Add(sandbox.SMSDeliveryDelay).Unix())
	got, err := messaging.GetSMS(ctx, &messagingv1.GetSMSRequest{Uuid: sent.GetSms().GetUuid()})
	if err != nil {
		t.Fatalf("GetSMS: %v", err)
	}
	if m := got.GetSms(); m.GetState() != "sent" || !m.GetDelivered() || m.GetMessage() != "Hello from the sandbox" {
		t.Errorf("GetSMS = %v, want sent and delivered", m)
	}

	released, err := numbers.ReleaseNumber(ctx, &numberv1.ReleaseNumberRequest{Uuid: leaseID})
	if err != nil {
		t.Fatalf("ReleaseNumber: %v", err)
	}
	if released.GetLease().GetUuid() != leaseID {
		t.Errorf("released = %v", released.GetLease())
	}
	_, err = messaging.SendSMS(ctx, &messagingv1.SendSMSRequest{From: docs, To: "12025550123", Message: "again"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("SendSMS from a released number: %v, want NotFound", err)
	}
	again, err := numbers.SearchNumbers(ctx, &numberv1.SearchNumbersRequest{Pattern: proto.String(docs)})
	if err != nil || again.GetTotal() != 1 {
		t.Errorf("SearchNumbers after the release = %v, %v; want the number back", again, err)
	}
}

// TestNumberAndSMSRequestsValidatedBeforeOpentact: the rules hold
// before anything is sent: an order's items each need their tn, a search
// page is at most 1,000, an SMS needs digits and 1 to 918 characters.
func TestNumberAndSMSRequestsValidatedBeforeOpentact(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, answer(200, `{"success":true,"payload":{}}`))
	f := startFacade(t, up.URL)
	numbers := numberv1.NewNumberServiceClient(f.conn)
	messaging := messagingv1.NewMessagingServiceClient(f.conn)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", demoBasic)
	for _, tc := range []struct {
		name  string
		call  func() error
		field string
	}{
		{"an order of nothing", func() error {
			_, err := numbers.OrderNumbers(ctx, &numberv1.OrderNumbersRequest{})
			return err
		}, "items"},
		{"an item without a tn", func() error {
			_, err := numbers.OrderNumbers(ctx, &numberv1.OrderNumbersRequest{Items: []*numberv1.OrderItem{{Features: []string{"voice"}}}})
			return err
		}, "items[0].tn"},
		{"a page of 1,001", func() error {
			_, err := numbers.ListLeases(ctx, &numberv1.ListLeasesRequest{Take: proto.Int32(1001)})
			return err
		}, "take"},
		{"a search page of 101", func() error {
			_, err := numbers.SearchNumbers(ctx, &numberv1.SearchNumbersRequest{Size: proto.Int32(101)})
			return err
		}, "size"},
		{"an SMS to a name", func() error {
			_, err := messaging.SendSMS(ctx, &messagingv1.SendSMSRequest{From: "12025550100", To: "Bob", Message: "hi"})
			return err
		}, "to"},
		{"an empty SMS", func() error {
			_, err := messaging.SendSMS(ctx, &messagingv1.SendSMSRequest{From: "12025550100", To: "12025550101"})
			return err
		}, "message"},
		{"an SMS of 919 characters", func() error {
			_, err := messaging.SendSMS(ctx, &messagingv1.SendSMSRequest{From: "12025550100", To: "12025550101", Message: strings.Repeat("x", 919)})
			return err
		}, "message"},
		{"a release of a name", func() error {
			_, err := numbers.ReleaseNumber(ctx, &numberv1.ReleaseNumberRequest{Uuid: "my-number"})
			return err
		}, "uuid"},
	} {
		err := tc.call()
		if st := status.Convert(err); st.Code() != codes.InvalidArgument || !slices.Contains(badRequestFields(st), tc.field) {
			t.Errorf("%s: %v (fields %v), want InvalidArgument naming %s", tc.name, err, badRequestFields(st), tc.field)
		}
	}
	if n := up.calls.Load(); n != 0 {
		t.Errorf("Opentact saw %d requests, want none", n)
	}
}
