package sandbox_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/opentact-facade/opentact-facade/internal/sandbox"
)

// flowBody is a multipart body with xml as its "file" part, as the
// facade sends a call flow.
func flowBody(t *testing.T, xml string) (*bytes.Buffer, string) {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	part, err := mw.CreateFormFile("file", "file")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = part.Write([]byte(xml))
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return &b, mw.FormDataContentType()
}

func postFlow(t *testing.T, srv *httptest.Server, h http.Header, path, xml string) response {
	t.Helper()
	body, ct := flowBody(t, xml)
	return request(t, srv, http.MethodPost, path, h, body, ct)
}

func createApp(t *testing.T, srv *httptest.Server, h http.Header, name string) string {
	t.Helper()
	app := object(t, send(t, srv, http.MethodPost, "/rest/sip/app", h, `{"name":"`+name+`","product":1}`), http.StatusCreated)
	return fmt.Sprint(app["uuid"])
}

const ivr = `<?xml version="1.0" encoding="UTF-8"?>
<Response>
  <Answer/>
  <Say lang="en">Hello</Say>
  <Gather dtmf_length="1"><DTMF value="1"><Hangup/></DTMF></Gather>
  <Hangup/>
</Response>
`

// TestCallControlFlows: an app's flow is saved, read back and deleted;
// XML Opentact could not run is refused; another account's app is not
// found.
func TestCallControlFlows(t *testing.T) {
	t.Parallel()
	srv := startNumbers(t, nil)
	app := createApp(t, srv, demoBasic, "ivr")
	path := "/rest/sip/app/call/flow/" + app

	wantOpentactError(t, call(t, srv, http.MethodGet, path, demoBasic), http.StatusNotFound, "No call flow is saved for this app")
	saved := decode(t, postFlow(t, srv, demoBasic, path, ivr).body)
	if saved["payload"] != ivr || !strings.HasSuffix(fmt.Sprint(saved["url"]), app+".xml") {
		t.Errorf("save = %v", saved)
	}
	if got := decode(t, call(t, srv, http.MethodGet, path, demoBasic).body); got["payload"] != ivr {
		t.Errorf("get = %v", got)
	}
	r := postFlow(t, srv, demoBasic, path, "<Response>\n  <Sya/>\n</Response>")
	if msg := decode(t, r.body)["message"]; r.status != http.StatusBadRequest || msg != "Invalid call flow XML: line 2: unknown verb <Sya>" {
		t.Errorf("bad XML = %d %v", r.status, msg)
	}
	if r := send(t, srv, http.MethodPost, path, demoBasic, `{"file":"<Response/>"}`); r.status != http.StatusBadRequest {
		t.Errorf("a JSON body = %d %s", r.status, r.body)
	}
	wantNotFound(t, call(t, srv, http.MethodGet, path, otherBasic))
	wantNotFound(t, postFlow(t, srv, otherBasic, path, ivr))
	if r := call(t, srv, http.MethodDelete, path, demoBasic); r.status != http.StatusOK {
		t.Errorf("delete = %d %s", r.status, r.body)
	}
	wantOpentactError(t, call(t, srv, http.MethodDelete, path, demoBasic), http.StatusNotFound, "No call flow is saved for this app")
}

// TestAppLeases: numbers are assigned to an app and taken back; a lease
// that is not the account's is 404 and changes nothing.
func TestAppLeases(t *testing.T) {
	t.Parallel()
	srv := startNumbers(t, nil)
	app := createApp(t, srv, demoBasic, "ivr")
	lease := fmt.Sprint(asRecords(order(t, srv, demoBasic, `["voice"]`, docsTN)["tnleases"])[0]["uuid"])
	theirs := fmt.Sprint(asRecords(order(t, srv, poorBasic, `["voice"]`, tns(searchNumbers(t, srv, poorBasic, "", `{"pattern":"305*","size":1}`).data)[0])["tnleases"])[0]["uuid"])
	path := "/rest/sip/app/" + app + "/tnlease"

	wantOpentactError(t, send(t, srv, http.MethodPost, path, demoBasic, `{"add":["`+lease+`","`+theirs+`"]}`), http.StatusNotFound, "TNLease not found")
	if got := asRecords(payload(t, call(t, srv, http.MethodGet, path, demoBasic), http.StatusOK)); len(got) != 0 {
		t.Errorf("after a refused assignment the app has %v", got)
	}
	got := asRecords(payload(t, send(t, srv, http.MethodPost, path, demoBasic, `{"add":["`+lease+`"]}`), http.StatusOK))
	if len(got) != 1 || got[0]["uuid"] != lease || get(got[0], "sip_control_app", "uuid") != app {
		t.Errorf("assign = %v", got)
	}
	if got := asRecords(payload(t, call(t, srv, http.MethodGet, path, demoBasic), http.StatusOK)); len(got) != 1 {
		t.Errorf("the app's leases = %v", got)
	}
	wantNotFound(t, send(t, srv, http.MethodPost, "/rest/sip/app/"+app+"/tnlease", otherBasic, `{"add":["`+lease+`"]}`))
	got = asRecords(payload(t, send(t, srv, http.MethodPost, path, demoBasic, `{"remove":["`+lease+`"]}`), http.StatusOK))
	if len(got) != 1 || got[0]["sip_control_app"] != nil {
		t.Errorf("remove = %v", got)
	}
}

// TestInboundCallRunsTheAppsFlow: a call to a number assigned to an app is
// online while it lasts, runs the app's saved flow once answered (each
// verb in the flow log), takes a flow executed on it, and ends in the
// call log; its call_state events name the app.
func TestInboundCallRunsTheAppsFlow(t *testing.T) {
	t.Parallel()
	clk := newClock(time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC))
	var logs syncBuffer
	srv, sb := startEvents(t, clk, sandbox.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	c, _ := subscribe(t, srv, demoBasic)
	app := createApp(t, srv, demoBasic, "ivr")
	lease := fmt.Sprint(asRecords(order(t, srv, demoBasic, `["voice"]`, docsTN)["tnleases"])[0]["uuid"])
	readFrame(t, c) // the order's
	readFrame(t, c) // its charge's
	payload(t, send(t, srv, http.MethodPost, "/rest/sip/app/"+app+"/tnlease", demoBasic, `{"add":["`+lease+`"]}`), http.StatusOK)
	postFlow(t, srv, demoBasic, "/rest/sip/app/call/flow/"+app, ivr)

	r := send(t, srv, http.MethodPost, "/sandbox/inbound-call", demoBasic, `{"to":"`+docsTN+`","from":"18389990000"}`)
	var ack struct{ UUID string }
	if r.status != http.StatusAccepted || json.Unmarshal(payloadJSON(t, r), &ack) != nil {
		t.Fatalf("inbound-call = %d %s", r.status, r.body)
	}
	online := asRecords(payload(t, call(t, srv, http.MethodGet, "/rest/sip/app/call/online", demoBasic), http.StatusOK))
	if len(online) != 1 || online[0]["uuid"] != ack.UUID || online[0]["state"] != "online" || get(online[0], "sip_control_app", "uuid") != app {
		t.Fatalf("online = %v", online)
	}
	for i := range 5 {
		if i > 0 {
			moveClock(sb, clk, time.Second)
		}
		if f := readFrame(t, c); f["type"] != "call_state" || get(f, "call", "sip_control_app", "uuid") != app {
			t.Errorf("frame %d = %v", i, f)
		}
		if i == 2 { // live: the flow ran; a flow executed now runs too
			r := postFlow(t, srv, demoBasic, "/rest/sip/app/call/"+ack.UUID, "<Response><Say>Bye</Say></Response>")
			if got := object(t, r, http.StatusOK); got["uuid"] != ack.UUID {
				t.Errorf("execute = %v", got)
			}
		}
	}
	logsPage := object(t, send(t, srv, http.MethodPost, "/rest/sip/app/"+app+"/logs", demoBasic, `{}`), http.StatusOK)
	var names []string
	for _, e := range asRecords(logsPage["data"]) {
		names = append([]string{fmt.Sprint(e["name"])}, names...) // newest first
		if get(e, "call", "uuid") != ack.UUID {
			t.Errorf("log entry %v", e)
		}
	}
	if strings.Join(names, ",") != "Answer,Say,Gather,Hangup,Say" {
		t.Errorf("flow log = %v", names)
	}
	for _, verb := range []string{"verb=Answer", "verb=Gather", "verb=Hangup"} {
		if !strings.Contains(logs.String(), verb) {
			t.Errorf("the sandbox did not log %s:\n%s", verb, logs.String())
		}
	}
	if got := asRecords(payload(t, call(t, srv, http.MethodGet, "/rest/sip/app/call/online", demoBasic), http.StatusOK)); len(got) != 0 {
		t.Errorf("online after the call = %v", got)
	}
	page := object(t, send(t, srv, http.MethodPost, "/rest/sip/app/call/search", demoBasic, `{"state":"offline","from":"1838*"}`), http.StatusOK)
	if recs := asRecords(page["data"]); page["total"] != json.Number("1") || len(recs) != 1 || recs[0]["uuid"] != ack.UUID {
		t.Errorf("call log = %v", page)
	}
	if r := postFlow(t, srv, demoBasic, "/rest/sip/app/call/"+ack.UUID, ivr); r.status != http.StatusBadRequest {
		t.Errorf("execute on an ended call = %d %s", r.status, r.body)
	}
	wantNotFound(t, call(t, srv, http.MethodGet, "/rest/sip/app/call/"+ack.UUID, otherBasic))
}
