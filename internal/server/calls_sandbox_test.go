package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	callv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/call/v1"
	numberv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/number/v1"
	"github.com/opentact-facade/opentact-facade/internal/callflow"
	"github.com/opentact-facade/opentact-facade/internal/sandbox"
)

// ivrFlow is a small IVR: answer, greet, a menu of one key, hang up.
func ivrFlow() *callv1.CallFlow {
	say := func(text string) *callv1.Verb {
		return &callv1.Verb{Verb: &callv1.Verb_Say{Say: &callv1.Say{Text: text}}}
	}
	hangup := &callv1.Verb{Verb: &callv1.Verb_Hangup{Hangup: &callv1.Hangup{}}}
	return &callv1.CallFlow{Verbs: []*callv1.Verb{
		{Verb: &callv1.Verb_Answer{Answer: &callv1.Answer{}}},
		say("Hello & welcome"),
		{Verb: &callv1.Verb_Gather{Gather: &callv1.Gather{
			DtmfLength: proto.Uint32(1),
			Dtmf:       []*callv1.DTMF{{Value: proto.String("1"), Verbs: []*callv1.Verb{say("Bye"), hangup}}},
		}}},
		hangup,
	}}
}

// startVoice is a facade over a sandbox whose clock the test moves.
func startVoice(t *testing.T) (*facade, *sandbox.Sandbox, string, func(time.Duration)) {
	t.Helper()
	var now atomic.Int64
	now.Store(time.Date(2025, 9, 1, 9, 0, 0, 0, time.UTC).Unix())
	sb, err := sandbox.New(sandbox.Options{Now: func() time.Time { return time.Unix(now.Load(), 0) }})
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(sb)
	t.Cleanup(func() {
		_ = sb.Close()
		up.Close()
	})
	move := func(d time.Duration) {
		now.Add(int64(d / time.Second))
		sb.ClockMoved()
	}
	return startFacade(t, up.URL), sb, up.URL, move
}

// TestCallFlowsThroughTheFacade: a typed flow is rendered and saved as
// Opentact's multipart XML, and read back typed; XML is checked before it
// is sent, its fault naming the line; XML the facade does not type comes
// back as XML alone; RenderCallFlow needs no credentials.
func TestCallFlowsThroughTheFacade(t *testing.T) {
	t.Parallel()
	f, _, _, _ := startVoice(t)
	calls := callv1.NewCallControlServiceClient(f.conn)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", demoBasic)

	created, err := calls.CreateCallControlApp(ctx, &callv1.CreateCallControlAppRequest{Name: "ivr", Product: 1})
	if err != nil {
		t.Fatalf("CreateCallControlApp: %v", err)
	}
	app := created.GetApp().GetUuid()
	if created.GetApp().GetProduct().GetId() != 1 || created.GetApp().GetName() != "ivr" {
		t.Errorf("the app = %v, want product 1 (sent by its id alone) and its name", created.GetApp())
	}
	want, err := callflow.Render(ivrFlow())
	if err != nil {
		t.Fatal(err)
	}

	saved, err := calls.SaveCallFlow(ctx, &callv1.SaveCallFlowRequest{Uuid: app, Source: &callv1.SaveCallFlowRequest_Flow{Flow: ivrFlow()}})
	if err != nil {
		t.Fatalf("SaveCallFlow: %v", err)
	}
	if saved.GetXml() != string(want) || !proto.Equal(saved.GetFlow(), ivrFlow()) {
		t.Errorf("SaveCallFlow = %v, want the rendered XML and the flow", saved)
	}
	got, err := calls.GetCallFlow(ctx, &callv1.GetCallFlowRequest{Uuid: app})
	if err != nil || got.GetXml() != string(want) || !proto.Equal(got.GetFlow(), ivrFlow()) {
		t.Errorf("GetCallFlow = %v, %v; want the saved flow, typed", got, err)
	}

	// Hand-written XML with a typo on line 3 never reaches Opentact.
	bad := "<Response>\n  <Answer/>\n  <Sya>Hi</Sya>\n</Response>\n"
	_, err = calls.SaveCallFlow(ctx, &callv1.SaveCallFlowRequest{Uuid: app, Source: &callv1.SaveCallFlowRequest_Xml{Xml: bad}})
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "line 3: unknown verb <Sya>") || badRequestDescription(st, "xml") != "line 3: unknown verb <Sya>" {
		t.Errorf("bad XML: %v, want InvalidArgument naming line 3", err)
	}
	if got, _ := calls.GetCallFlow(ctx, &callv1.GetCallFlowRequest{Uuid: app}); got.GetXml() != string(want) {
		t.Errorf("after the refused XML the app's flow is %q", got.GetXml())
	}

	// A verb Opentact documents but the facade does not type: the XML is
	// saved and answered, the typed flow left unset. A flow over the
	// 4096 bytes of other text fields is taken (max_bytes).
	untyped := "<Response>\n  <Tone/>\n" + strings.Repeat("  <Say>"+strings.Repeat("x", 90)+"</Say>\n", 60) + "</Response>\n"
	if len(untyped) <= 4096 {
		t.Fatalf("the untyped flow is %d bytes; it must be over 4096", len(untyped))
	}
	saved, err = calls.SaveCallFlow(ctx, &callv1.SaveCallFlowRequest{Uuid: app, Source: &callv1.SaveCallFlowRequest_Xml{Xml: untyped}})
	if err != nil || saved.GetXml() != untyped || saved.GetFlow() != nil {
		t.Errorf("untyped XML: %v, %v; want it back as XML alone", saved, err)
	}

	// Over REST: the typed flow in the JSON body, and the render.
	body, err := protojson.Marshal(&callv1.SaveCallFlowRequest{Source: &callv1.SaveCallFlowRequest_Flow{Flow: ivrFlow()}})
	if err != nil {
		t.Fatal(err)
	}
	resp, b := f.restBody(t, http.MethodPut, "/v1/call-control-apps/"+app+"/call-flow", http.Header{"Authorization": {demoBasic}, "Content-Type": {"application/json"}}, string(body))
	var rest callv1.SaveCallFlowResponse
	if resp.StatusCode != http.StatusOK || protojson.Unmarshal(b, &rest) != nil || rest.GetXml() != string(want) {
		t.Errorf("REST PUT call-flow = %d %s", resp.StatusCode, b)
	}
	body, _ = protojson.Marshal(&callv1.RenderCallFlowRequest{Flow: ivrFlow()})
	resp, b = f.restBody(t, http.MethodPost, "/v1/call-flows:render", http.Header{"Content-Type": {"application/json"}}, string(body))
	var rendered callv1.RenderCallFlowResponse
	if resp.StatusCode != http.StatusOK || protojson.Unmarshal(b, &rendered) != nil || rendered.GetXml() != string(want) {
		t.Errorf("REST render without credentials = %d %s", resp.StatusCode, b)
	}
	// What Say speaks may run over lines, written as character
	// references so that the layout and an attribute keep them; a line
	// break elsewhere is refused, naming the field.
	sayLines := &callv1.Say{Text: "Welcome.\nPress 1\tfor sales.", TextAttr: proto.String("one\r\ntwo")}
	multi, err := calls.RenderCallFlow(context.Background(), &callv1.RenderCallFlowRequest{Flow: &callv1.CallFlow{Verbs: []*callv1.Verb{{Verb: &callv1.Verb_Say{Say: sayLines}}}}})
	if wantXML := `<Say text="one&#xD;&#xA;two">Welcome.&#xA;Press 1&#x9;for sales.</Say>`; err != nil || !strings.Contains(multi.GetXml(), wantXML) {
		t.Errorf("RenderCallFlow of a Say over lines = %q, %v; want it to hold %s", multi.GetXml(), err, wantXML)
	}
	_, err = calls.RenderCallFlow(context.Background(), &callv1.RenderCallFlowRequest{Flow: &callv1.CallFlow{Verbs: []*callv1.Verb{{Verb: &callv1.Verb_Say{Say: &callv1.Say{Text: "hi", Lang: proto.String("en\nus")}}}}}})
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || !slices.Contains(badRequestFields(st), "flow.verbs[0].say.lang") {
		t.Errorf("a Say's lang with a line break: %v, want InvalidArgument naming flow.verbs[0].say.lang", err)
	}
	// A flow that breaks a rule of its proto is refused before rendering.
	_, err = calls.RenderCallFlow(context.Background(), &callv1.RenderCallFlowRequest{Flow: &callv1.CallFlow{Verbs: []*callv1.Verb{{}}}})
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(strings.Join(badRequestFields(st), ","), "flow.verbs[0]") {
		t.Errorf("an empty verb: %v, want InvalidArgument naming flow.verbs[0]", err)
	}

	if _, err := calls.DeleteCallFlow(ctx, &callv1.DeleteCallFlowRequest{Uuid: app}); err != nil {
		t.Errorf("DeleteCallFlow: %v", err)
	}
	if _, err := calls.GetCallFlow(ctx, &callv1.GetCallFlowRequest{Uuid: app}); status.Code(err) != codes.NotFound {
		t.Errorf("GetCallFlow after the delete: %v, want NotFound", err)
	}
}

// badRequestDescription is the description of field's violation in st.
func badRequestDescription(st *status.Status, field string) string {
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				if v.GetField() == field {
					return v.GetDescription()
				}
			}
		}
	}
	return ""
}

// TestInboundCallThroughTheFacade: a call to a number assigned to an app
// shows in ListOnlineCalls, runs the app's saved flow (SearchCallFlowLogs
// lists its verbs), takes a flow executed on it, and ends in SearchCalls.
func TestInboundCallThroughTheFacade(t *testing.T) {
	t.Parallel()
	f, _, sandboxURL, move := startVoice(t)
	calls := callv1.NewCallControlServiceClient(f.conn)
	numbers := numberv1.NewNumberServiceClient(f.conn)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", demoBasic)
	docs := strconv.Itoa(sandbox.DocsNumber)

	created, err := calls.CreateCallControlApp(ctx, &callv1.CreateCallControlAppRequest{Name: "ivr", Product: 1})
	if err != nil {
		t.Fatal(err)
	}
	app := created.GetApp().GetUuid()
	ordered, err := numbers.OrderNumbers(ctx, &numberv1.OrderNumbersRequest{Items: []*numberv1.OrderItem{{Tn: proto.String(docs), Features: []string{"voice"}}}})
	if err != nil {
		t.Fatal(err)
	}
	lease := ordered.GetOrder().GetTnleases()[0].GetUuid()
	assigned, err := calls.AssignLeases(ctx, &callv1.AssignLeasesRequest{Uuid: app, Add: []string{lease}})
	if err != nil || len(assigned.GetData()) != 1 || assigned.GetData()[0].GetSipControlApp().GetUuid() != app {
		t.Fatalf("AssignLeases = %v, %v", assigned, err)
	}
	if _, err := calls.AssignLeases(ctx, &callv1.AssignLeasesRequest{Uuid: app, Add: []string{"0e5f3a9c-0000-4000-8000-0000000000c2"}}); status.Code(err) != codes.NotFound {
		t.Errorf("assigning a lease that is not the account's: %v, want NotFound", err)
	}
	if _, err := calls.SaveCallFlow(ctx, &callv1.SaveCallFlowRequest{Uuid: app, Source: &callv1.SaveCallFlowRequest_Flow{Flow: ivrFlow()}}); err != nil {
		t.Fatal(err)
	}

	// The sandbox's control call: someone calls the number.
	req, _ := http.NewRequest(http.MethodPost, sandboxURL+"/sandbox/inbound-call", strings.NewReader(`{"to":"`+docs+`","from":"18389990000"}`))
	req.Header.Set("Authorization", demoBasic)
	req.Header.Set("Content-Type", "application/json")
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ack struct{ Payload struct{ UUID string } }
	_ = json.NewDecoder(r.Body).Decode(&ack)
	r.Body.Close()
	if r.StatusCode != http.StatusAccepted || ack.Payload.UUID == "" {
		t.Fatalf("inbound-call = %d", r.StatusCode)
	}
	id := ack.Payload.UUID

	online, err := calls.ListOnlineCalls(ctx, &callv1.ListOnlineCallsRequest{})
	if err != nil || len(online.GetData()) != 1 {
		t.Fatalf("ListOnlineCalls = %v, %v", online, err)
	}
	if c := online.GetData()[0]; c.GetUuid() != id || c.GetState() != "online" || c.GetSipControlApp().GetUuid() != app || c.GetTn().GetTn() != docs || c.GetFrom() != "18389990000" {
		t.Errorf("online call = %v", c)
	}
	move(2 * time.Second) // answered: the saved flow runs
	executed, err := calls.ExecuteCallFlow(ctx, &callv1.ExecuteCallFlowRequest{Uuid: id, Source: &callv1.ExecuteCallFlowRequest_Xml{Xml: "<Response><Say>Still there?</Say></Response>"}})
	if err != nil || executed.GetCall().GetUuid() != id {
		t.Errorf("ExecuteCallFlow = %v, %v", executed, err)
	}
	move(2 * time.Second) // torn down

	logs, err := calls.SearchCallFlowLogs(ctx, &callv1.SearchCallFlowLogsRequest{Uuid: app, Take: proto.Int32(100)})
	if err != nil {
		t.Fatal(err)
	}
	var verbs []string
	for _, e := range logs.GetData() {
		verbs = append([]string{e.GetName()}, verbs...)
		if e.GetCall().GetUuid() != id || e.GetSipControlApp().GetUuid() != app {
			t.Errorf("flow log entry %v", e)
		}
	}
	if strings.Join(verbs, ",") != "Answer,Say,Gather,Hangup,Say" || logs.GetTotal() != 5 {
		t.Errorf("flow log = %v (total %d)", verbs, logs.GetTotal())
	}
	if online, _ := calls.ListOnlineCalls(ctx, &callv1.ListOnlineCallsRequest{}); len(online.GetData()) != 0 {
		t.Errorf("online after the call ended = %v", online)
	}
	page, err := calls.SearchCalls(ctx, &callv1.SearchCallsRequest{State: proto.String("offline"), SipControlApp: proto.String(app)})
	if err != nil || page.GetTotal() != 1 || page.GetData()[0].GetUuid() != id {
		t.Errorf("SearchCalls = %v, %v", page, err)
	}
	got, err := calls.GetCall(ctx, &callv1.GetCallRequest{Uuid: id})
	if err != nil || got.GetCall().GetState() != "offline" {
		t.Errorf("GetCall = %v, %v", got, err)
	}

	// UpdateLease takes a lease's app away with "" (sent as null).
	cleared, err := numbers.UpdateLease(ctx, &numberv1.UpdateLeaseRequest{Uuid: lease, SipControlApp: proto.String("")})
	if err != nil || cleared.GetLease().GetSipControlApp() != nil {
		t.Errorf("UpdateLease clearing the app = %v, %v", cleared, err)
	}
	if _, err := calls.AssignLeases(ctx, &callv1.AssignLeasesRequest{Uuid: app, Add: []string{lease}}); err != nil {
		t.Fatal(err)
	}

	// An app that still holds a number cannot go: Opentact's 409.
	_, err = calls.DeleteCallControlApp(ctx, &callv1.DeleteCallControlAppRequest{Uuid: app})
	if st := status.Convert(err); st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), "Conflict") || errorInfo(st).GetReason() != "CONFLICT" {
		t.Errorf("deleting an app in use: %v, want FailedPrecondition with Opentact's message", err)
	}
	if _, err := calls.RemoveLeases(ctx, &callv1.RemoveLeasesRequest{Uuid: app, Remove: []string{lease}}); err != nil {
		t.Fatal(err)
	}
	if _, err := calls.DeleteCallControlApp(ctx, &callv1.DeleteCallControlAppRequest{Uuid: app}); err != nil {
		t.Errorf("deleting the app once free: %v", err)
	}
}
