package sandbox_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/opentact-facade/opentact-facade/internal/sandbox"
)

const campaign = "5c1d2e3f-0000-4000-8000-0000000000ca"

func createProfile(t *testing.T, srv *httptest.Server, h http.Header, name string) string {
	t.Helper()
	p := object(t, send(t, srv, http.MethodPost, "/rest/profile/messaging", h, `{"name":"`+name+`"}`), http.StatusCreated)
	return fmt.Sprint(p["uuid"])
}

func enableSMS(t *testing.T, srv *httptest.Server, h http.Header, lease, profile string) map[string]any {
	t.Helper()
	return object(t, send(t, srv, http.MethodPost, "/rest/lease/tn/"+lease+"/subscription/sms", h,
		`{"messaging_profile":"`+profile+`","sms_campaign":"`+campaign+`"}`), http.StatusOK)
}

func sendSMS(t *testing.T, srv *httptest.Server, h http.Header, from, to, message string) response {
	t.Helper()
	return send(t, srv, http.MethodPost, "/rest/sms", h, fmt.Sprintf(`{"from":%s,"to":%s,"message":%q}`, from, to, message))
}

func TestEnableSMS(t *testing.T) {
	t.Parallel()
	srv := startNumbers(t, nil)
	lease := asRecords(order(t, srv, demoBasic, `["voice","sms"]`, docsTN)["tnleases"])[0]
	id := fmt.Sprint(lease["uuid"])

	// A messaging profile that does not exist, or another account's.
	otherProfile := createProfile(t, srv, otherBasic, "theirs")
	for _, p := range []string{"0e5f3a9c-0000-4000-8000-0000000000c2", otherProfile} {
		r := send(t, srv, http.MethodPost, "/rest/lease/tn/"+id+"/subscription/sms", demoBasic, `{"messaging_profile":"`+p+`","sms_campaign":"`+campaign+`"}`)
		wantOpentactError(t, r, http.StatusNotFound, "Messaging profile not found")
	}
	for _, body := range []string{`{}`, `{"messaging_profile":"x"}`, `{"messaging_profile":7,"sms_campaign":"x"}`} {
		wantFields(t, send(t, srv, http.MethodPost, "/rest/lease/tn/"+id+"/subscription/sms", demoBasic, body))
	}

	profile := createProfile(t, srv, demoBasic, "demo")
	wantNotFound(t, send(t, srv, http.MethodPost, "/rest/lease/tn/"+id+"/subscription/sms", otherBasic,
		`{"messaging_profile":"`+otherProfile+`","sms_campaign":"`+campaign+`"}`))
	sub := enableSMS(t, srv, demoBasic, docsTN, profile) // by number
	if sub["type"] != "sms" || sub["messaging_profile"].(map[string]any)["name"] != "demo" || sub["sms_campaign"].(map[string]any)["uuid"] != campaign {
		t.Errorf("subscription = %v", sub)
	}
	got := object(t, call(t, srv, http.MethodGet, "/rest/lease/tn/"+id, demoBasic), http.StatusOK)
	subs := asRecords(got["subscriptions"])
	if got["sms"] != true || got["messaging_profile"].(map[string]any)["uuid"] != profile || len(subs) != 1 || subs[0]["uuid"] != sub["uuid"] {
		t.Errorf("lease after EnableSMS = %v", got)
	}
	list, _ := payload(t, call(t, srv, http.MethodGet, "/rest/profile/messaging/"+profile+"/tnleases", demoBasic), http.StatusOK).([]any)
	if len(list) != 1 || list[0].(map[string]any)["uuid"] != id {
		t.Errorf("profile's leases = %v, want the lease", list)
	}
	wantNotFound(t, call(t, srv, http.MethodGet, "/rest/profile/messaging/"+profile+"/tnleases", otherBasic))

	// Off, then off again.
	off := object(t, call(t, srv, http.MethodDelete, "/rest/lease/tn/"+id+"/subscription/sms", demoBasic), http.StatusOK)
	if off["uuid"] != sub["uuid"] {
		t.Errorf("DisableSMS = %v, want the subscription", off)
	}
	wantNotFound(t, call(t, srv, http.MethodDelete, "/rest/lease/tn/"+id+"/subscription/sms", demoBasic))
	if got := object(t, call(t, srv, http.MethodGet, "/rest/lease/tn/"+id, demoBasic), http.StatusOK); got["sms"] != false || len(asRecords(got["subscriptions"])) != 0 {
		t.Errorf("lease after DisableSMS = %v", got)
	}
}

// smsReady orders a number for h with SMS on through a new profile, and
// returns the number.
func smsReady(t *testing.T, srv *httptest.Server, h http.Header, pattern string) string {
	t.Helper()
	tn := tns(searchNumbers(t, srv, h, "", `{"pattern":"`+pattern+`","size":1}`).data)[0]
	order(t, srv, h, `["voice","sms"]`, tn)
	enableSMS(t, srv, h, tn, createProfile(t, srv, h, "p"+tn))
	return tn
}

func TestSendSMS(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	clk := newClock(at)
	srv := startNumbers(t, clk)
	const to = "12025550123"

	// Not a lease of the account's with SMS on.
	leased := tns(searchNumbers(t, srv, demoBasic, "", `{"pattern":"212*","size":1}`).data)[0]
	order(t, srv, demoBasic, `["voice","sms"]`, leased) // SMS not enabled
	free := tns(searchNumbers(t, srv, demoBasic, "", `{"pattern":"206*","size":1}`).data)[0]
	theirs := smsReady(t, srv, poorBasic, "305*")
	for _, from := range []string{leased, free, theirs, "19999999999"} {
		wantOpentactError(t, sendSMS(t, srv, demoBasic, from, to, "hi"), http.StatusNotFound, "TNLease not found")
	}

	from := smsReady(t, srv, demoBasic, "202*")
	before := balance(t, srv, demoBasic)
	sent := object(t, sendSMS(t, srv, demoBasic, from, `"+`+to+`"`, "Hello from the sandbox"), http.StatusOK)
	for k, want := range map[string]any{"type": "smso", "state": "created", "delivered": false, "automated": false,
		"from": json.Number(from), "to": json.Number(to), "message": "Hello from the sandbox",
		"created_on": opentactTime(at), "modified_on": opentactTime(at)} {
		if sent[k] != want {
			t.Errorf("sent %s = %v, want %v", k, sent[k], want)
		}
	}
	if tn, _ := sent["tn"].(map[string]any); tn["tn"] != json.Number(from) {
		t.Errorf("sent tn = %v, want %s", sent["tn"], from)
	}
	// 2.00 for two numbers and 0.004 for the message, from 99.87895.
	if before != "97.87895" || balance(t, srv, demoBasic) != "97.87495" {
		t.Errorf("balance before and after = %s, %s; want 97.87895, 97.87495", before, balance(t, srv, demoBasic))
	}
	id := fmt.Sprint(sent["uuid"])
	get := func() map[string]any {
		t.Helper()
		return object(t, call(t, srv, http.MethodGet, "/rest/sms/outbound/"+id, demoBasic), http.StatusOK)
	}
	outbound := func(body string) int {
		t.Helper()
		return searchPage(t, send(t, srv, http.MethodPost, "/rest/sms/search/outbound", demoBasic, body)).total
	}
	if m := get(); m["state"] != "created" || m["delivered"] != false {
		t.Errorf("at once: %v %v, want created, not delivered", m["state"], m["delivered"])
	}
	clk.Set(at.Add(sandbox.SMSDeliveryDelay - time.Second))
	if m := get(); m["state"] != "created" || outbound(`{"state":"sent"}`) != 0 || outbound(`{"state":"created"}`) != 1 {
		t.Errorf("before the delay: %v, want created", m["state"])
	}
	clk.Set(at.Add(sandbox.SMSDeliveryDelay))
	m := get()
	if m["state"] != "sent" || m["delivered"] != true || m["modified_on"] != opentactTime(at.Add(sandbox.SMSDeliveryDelay)) || m["created_on"] != opentactTime(at) {
		t.Errorf("after the delay: %v", m)
	}
	for body, want := range map[string]int{
		`{"state":"sent","delivered":true}`: 1, `{"state":"created"}`: 0, `{"tn":` + from + `}`: 1, `{"tn":` + leased + `}`: 0,
		`{"to":"1202555*"}`: 1, `{"to":"1303*"}`: 0, `{"message":"*sandbox"}`: 1, `{"message":"Hello"}`: 0,
	} {
		if got := outbound(body); got != want {
			t.Errorf("outbound search %s = %d, want %d", body, got, want)
		}
	}

	// The search of both directions answers SMSRecord.
	clk.Set(at.Add(time.Minute))
	object(t, sendSMS(t, srv, demoBasic, from, to, "second"), http.StatusOK)
	p := searchPage(t, send(t, srv, http.MethodPost, "/rest/sms/search?take=5", demoBasic, `{"from":"`+from+`"}`))
	if p.total != 2 || p.data[0]["message"] != "second" || p.data[1]["uuid"] != id {
		t.Fatalf("search = %v, want both, newest first", p.data)
	}
	rec := p.data[1]
	for k, want := range map[string]any{"type": "sms", "state": "sent", "delivered": true, "from": from, "to": to,
		"account_uuid": "f2cb79fb-6bf8-4484-8034-debf95aac73b", "thread": sent["thread"]} {
		if rec[k] != want {
			t.Errorf("record %s = %v, want %v", k, rec[k], want)
		}
	}
	if p.data[0]["state"] != "created" || p.data[0]["thread"] != sent["thread"] {
		t.Errorf("second message = %v, want created, in the same thread", p.data[0])
	}
	if p := searchPage(t, send(t, srv, http.MethodPost, "/rest/sms/search", demoBasic, `{"order":{"created_on":"ASC"},"take":1}`)); p.data[0]["uuid"] != id {
		t.Errorf("oldest first = %v", p.data)
	}
	if p := searchPage(t, send(t, srv, http.MethodPost, "/rest/sms/search/inbound", demoBasic, `{}`)); p.total != 0 {
		t.Errorf("inbound = %v, want none", p.data)
	}
	wantNotFound(t, call(t, srv, http.MethodGet, "/rest/sms/inbound/"+id, demoBasic))

	// Another account sees none of it.
	wantNotFound(t, call(t, srv, http.MethodGet, "/rest/sms/outbound/"+id, otherBasic))
	for _, path := range []string{"/rest/sms/search", "/rest/sms/search/outbound"} {
		if p := searchPage(t, send(t, srv, http.MethodPost, path, otherBasic, ``)); p.total != 0 {
			t.Errorf("other account's %s = %v", path, p.data)
		}
	}

	// Disabled, a number cannot send; deleting its profile does the same.
	object(t, call(t, srv, http.MethodDelete, "/rest/lease/tn/"+from+"/subscription/sms", demoBasic), http.StatusOK)
	wantOpentactError(t, sendSMS(t, srv, demoBasic, from, to, "hi"), http.StatusNotFound, "TNLease not found")
	profile := createProfile(t, srv, demoBasic, "again")
	enableSMS(t, srv, demoBasic, from, profile)
	object(t, sendSMS(t, srv, demoBasic, from, to, "hi"), http.StatusOK)
	object(t, call(t, srv, http.MethodDelete, "/rest/profile/messaging/"+profile, demoBasic), http.StatusOK)
	wantOpentactError(t, sendSMS(t, srv, demoBasic, from, to, "hi"), http.StatusNotFound, "TNLease not found")
}

func TestSendSMSCharges(t *testing.T) {
	t.Parallel()
	srv := startNumbers(t, nil)
	from := smsReady(t, srv, poorBasic, "202*") // 1.00 of 1.012
	for i := range 3 {
		object(t, sendSMS(t, srv, poorBasic, from, "12025550123", fmt.Sprint("message ", i)), http.StatusOK)
	}
	if got := balance(t, srv, poorBasic); got != "0" {
		t.Errorf("balance = %s, want 0 exactly", got)
	}
	wantOpentactError(t, sendSMS(t, srv, poorBasic, from, "12025550123", "one too many"), http.StatusPaymentRequired, "Not enough account balance")
	if p := searchPage(t, send(t, srv, http.MethodPost, "/rest/sms/search/outbound", poorBasic, ``)); p.total != 3 {
		t.Errorf("messages kept = %d, want 3 (not the refused one)", p.total)
	}
}

func TestSendSMSValidation(t *testing.T) {
	t.Parallel()
	srv := startNumbers(t, nil)
	from := smsReady(t, srv, demoBasic, "202*")
	secret := "a person's words"
	for _, tc := range []struct{ body, field string }{
		{`{"to":12025550123,"message":"hi"}`, "from"},
		{`{"from":"12o2","to":12025550123,"message":"hi"}`, "from"},
		{`{"from":` + from + `,"message":"hi"}`, "to"},
		{`{"from":` + from + `,"to":"abc","message":"hi"}`, "to"},
		{`{"from":` + from + `,"to":12025550123}`, "message"},
		{`{"from":` + from + `,"to":12025550123,"message":""}`, "message"},
		{`{"from":` + from + `,"to":12025550123,"message":"` + strings.Repeat("é", 919) + `"}`, "message"},
		{`{"from":` + from + `,"to":12025550123,"message":"hi","custom_callback_url":"x"}`, "custom_callback_url"},
	} {
		t.Run(tc.body[:min(60, len(tc.body))], func(t *testing.T) {
			t.Parallel()
			fields := wantFields(t, send(t, srv, http.MethodPost, "/rest/sms", demoBasic, tc.body))
			if _, ok := fields[tc.field]; !ok || len(fields) != 1 {
				t.Errorf("fields = %v, want %s alone", fields, tc.field)
			}
		})
	}
	// The most a message holds, and the schema's tn for from.
	object(t, send(t, srv, http.MethodPost, "/rest/sms", demoBasic, `{"tn":`+from+`,"to":"+12025550123","message":"`+strings.Repeat("é", 918)+`"}`), http.StatusOK)
	// A refused message's text is not echoed.
	r := send(t, srv, http.MethodPost, "/rest/sms", demoBasic, `{"from":`+from+`,"to":1,"message":"`+secret+`"}`)
	if r.status != http.StatusBadRequest || strings.Contains(string(r.body), secret) {
		t.Errorf("answer = %d %s", r.status, r.body)
	}
}

func TestHistoryBounds(t *testing.T) {
	t.Parallel()
	srv := startNumbers(t, nil)
	from := smsReady(t, srv, demoBasic, "202*")
	var first string
	for i := range sandbox.MaxSMS + 1 {
		m := object(t, sendSMS(t, srv, demoBasic, from, "12025550123", "m"), http.StatusOK)
		if i == 0 {
			first = fmt.Sprint(m["uuid"])
		}
	}
	if p := searchPage(t, send(t, srv, http.MethodPost, "/rest/sms/search/outbound", demoBasic, ``)); p.total != sandbox.MaxSMS {
		t.Errorf("messages kept = %d, want %d", p.total, sandbox.MaxSMS)
	}
	wantNotFound(t, call(t, srv, http.MethodGet, "/rest/sms/outbound/"+first, demoBasic))

	firstOrder := fmt.Sprint(object(t, send(t, srv, http.MethodPost, "/rest/order", otherBasic, `{"items":[{"tn":19999999999}]}`), http.StatusCreated)["uuid"])
	for range sandbox.MaxOrders {
		object(t, send(t, srv, http.MethodPost, "/rest/order", otherBasic, `{"items":[{"tn":19999999999}]}`), http.StatusCreated)
	}
	if p := searchPage(t, send(t, srv, http.MethodPost, "/rest/order/search", otherBasic, ``)); p.total != sandbox.MaxOrders {
		t.Errorf("orders kept = %d, want %d", p.total, sandbox.MaxOrders)
	}
	wantNotFound(t, call(t, srv, http.MethodGet, "/rest/order/"+firstOrder, otherBasic))
}
