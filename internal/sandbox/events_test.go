package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/opentact-facade/opentact-facade/internal/sandbox"
)

// startEvents serves a sandbox on the test's clock, closed at the end.
func startEvents(t *testing.T, clk *clock, opts sandbox.Options) (*httptest.Server, *sandbox.Sandbox) {
	t.Helper()
	opts.Accounts = append(opts.Accounts, otherAccount(), colleague(), poorAccount())
	opts.Now = clk.Now
	sb, err := sandbox.New(opts)
	if err != nil {
		t.Fatalf("sandbox.New: %v", err)
	}
	srv := httptest.NewServer(sb)
	t.Cleanup(func() {
		if err := sb.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		srv.Close()
	})
	return srv, sb
}

// moveClock moves clk on by d and tells sb.
func moveClock(sb *sandbox.Sandbox, clk *clock, d time.Duration) {
	clk.Set(clk.Now().Add(d))
	sb.ClockMoved()
}

func dial(t *testing.T, srv *httptest.Server, path string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(srv.URL, "http")+path, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

func jwtOf(t *testing.T, srv *httptest.Server, h http.Header) string {
	t.Helper()
	var p struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(payloadJSON(t, call(t, srv, http.MethodGet, "/rest/auth", h)), &p); err != nil || p.Token == "" {
		t.Fatalf("no token: %v", err)
	}
	return p.Token
}

func payloadJSON(t *testing.T, r response) json.RawMessage {
	t.Helper()
	var env struct {
		Success bool            `json:"success"`
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(r.body, &env); err != nil || !env.Success {
		t.Fatalf("answer %d %s: want success", r.status, r.body)
	}
	return env.Payload
}

func writeText(t *testing.T, c *websocket.Conn, text string) {
	t.Helper()
	if err := c.Write(t.Context(), websocket.MessageText, []byte(text)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// readRaw reads one frame; the bound only keeps a broken test from
// hanging.
func readRaw(t *testing.T, c *websocket.Conn) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	return b, err
}

type frame = map[string]any

func readFrame(t *testing.T, c *websocket.Conn) frame {
	t.Helper()
	b, err := readRaw(t, c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var f frame
	if err := d.Decode(&f); err != nil {
		t.Fatalf("frame %s: %v", b, err)
	}
	return f
}

// subscribe opens an events socket for the user of h and authenticates it.
func subscribe(t *testing.T, srv *httptest.Server, h http.Header) (*websocket.Conn, frame) {
	t.Helper()
	c := dial(t, srv, "/")
	writeText(t, c, `{"type":"auth","payload":"`+jwtOf(t, srv, h)+`"}`)
	f := readFrame(t, c)
	if f["type"] != "auth" || f["payload"] == nil {
		t.Fatalf("auth answer = %v", f)
	}
	return c, f
}

// wantClosed reads until the socket closes, and checks its status.
func wantClosed(t *testing.T, c *websocket.Conn, code websocket.StatusCode) {
	t.Helper()
	for {
		if _, err := readRaw(t, c); err != nil {
			if got := websocket.CloseStatus(err); got != code {
				t.Errorf("closed with %v (%v), want %v", got, err, code)
			}
			return
		}
	}
}

func get(f frame, path ...string) any {
	var v any = f
	for _, k := range path {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

func TestEventsAuth(t *testing.T) {
	t.Parallel()
	clk := newClock(time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC))
	srv, _ := startEvents(t, clk, sandbox.Options{})

	for _, path := range []string{"/", "/ws"} {
		c := dial(t, srv, path)
		writeText(t, c, `{"type":"auth","payload":"`+jwtOf(t, srv, demoBasic)+`"}`)
		f := readFrame(t, c)
		conn, _ := get(f, "payload", "uuid").(string)
		want := "WSS connection " + conn + "@127.0.0.1 - success auth " + sandbox.DemoEmail
		if f["type"] != "auth" || f["message"] != want || conn == "" || f["uuid"] == conn || f["uuid"] == nil {
			t.Errorf("%s: auth frame = %v, want message %q", path, f, want)
		}
		for _, k := range []string{"created_on", "modified_on"} {
			if _, err := time.Parse(time.RFC3339, fmt.Sprint(f[k])); err != nil || f[k] != opentactTime(clk.Now()) {
				t.Errorf("%s = %v, want %s", k, f[k], opentactTime(clk.Now()))
			}
		}
		user, _ := get(f, "payload", "user").(map[string]any)
		if user["uuid"] != "0116f6d1-1280-44b2-9134-da48509ec575" || user["email"] != sandbox.DemoEmail || user["wss_online"] != true ||
			user["token"] != nil || user["account"] != nil || user["first_name"] != "First Name" {
			t.Errorf("payload.user = %v", user)
		}
		if get(f, "payload", "ip") != "127.0.0.1" || get(f, "payload", "account", "uuid") != "f2cb79fb-6bf8-4484-8034-debf95aac73b" ||
			get(f, "account", "uuid") != "f2cb79fb-6bf8-4484-8034-debf95aac73b" || get(f, "account", "level") != "Level0" {
			t.Errorf("auth frame's ip and accounts = %v", f)
		}
		if dr, ok := f["delivery_report"].([]any); !ok || len(dr) != 0 {
			t.Errorf("delivery_report = %v, want []", f["delivery_report"])
		}
	}
	// GET / without an upgrade is what it was.
	wantNotFound(t, call(t, srv, http.MethodGet, "/", nil))
}

func TestEventsAuthFailure(t *testing.T) {
	t.Parallel()
	start := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	clk := newClock(start)
	srv, sb := startEvents(t, clk, sandbox.Options{TokenTTL: time.Hour})
	expired := jwtOf(t, srv, demoBasic)
	clk.Set(start.Add(2 * time.Hour))
	other, _ := json.Marshal(map[string]string{"type": "auth", "payload": jwtOf(t, srv, demoBasic) + "x"})

	for name, first := range map[string]string{
		"bad signature": string(other),
		"expired":       `{"type":"auth","payload":"` + expired + `"}`,
		"not a JWT":     `{"type":"auth","payload":"demo-api-token"}`,
		"not auth":      `{"type":"subscribe","payload":"x"}`,
		"not JSON":      `hello`,
	} {
		c := dial(t, srv, "/")
		writeText(t, c, first)
		if b, err := readRaw(t, c); err != nil || string(b) != `{"type":"auth","success":false,"message":"Unauthorized"}` {
			t.Errorf("%s: first frame = %s, %v", name, b, err)
		}
		wantClosed(t, c, websocket.StatusPolicyViolation)
	}

	// No auth frame within AuthTimeout of the sandbox's clock.
	c := dial(t, srv, "/")
	// Its auth deadline is scheduled once the server has read nothing; a
	// good socket after it proves the first is past its upgrade.
	subscribe(t, srv, demoBasic)
	moveClock(sb, clk, sandbox.AuthTimeout)
	if b, err := readRaw(t, c); err != nil || !strings.Contains(string(b), `"success":false`) {
		t.Errorf("after the deadline: %s, %v", b, err)
	}
	wantClosed(t, c, websocket.StatusPolicyViolation)
}

func TestEventsSMS(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	clk := newClock(at)
	srv, sb := startEvents(t, clk, sandbox.Options{})
	from := smsReady(t, srv, demoBasic, "202*")
	c, _ := subscribe(t, srv, demoBasic)

	sent := object(t, sendSMS(t, srv, demoBasic, from, "12025550123", "Hello"), http.StatusOK)
	id := sent["uuid"]
	want := func(f frame, state string, delivered bool) {
		t.Helper()
		msg := "SMS: type: smso, state: " + state
		if f["type"] != "sms" || f["message"] != msg || get(f, "payload", "uuid") != id || get(f, "payload", "type") != "smso" ||
			get(f, "payload", "state") != state || get(f, "payload", "delivered") != delivered ||
			get(f, "payload", "from") != json.Number(from) || get(f, "payload", "message") != "Hello" {
			t.Errorf("frame = %v, want %s delivered %v", f, msg, delivered)
		}
	}
	want(readFrame(t, c), "created", false)
	if f := readFrame(t, c); f["type"] != "balance" || f["source_action"] != "sms_charge" || f["payload"] != json.Number("98.87495") ||
		f["message"] != "New balance is 98.87495" || f["timestamp"] != opentactTime(at) {
		t.Errorf("balance frame = %v", f)
	}
	moveClock(sb, clk, time.Second)
	moveClock(sb, clk, time.Second)
	success := readFrame(t, c)
	want(success, "success", false)
	delivered := readFrame(t, c)
	want(delivered, "success", true)
	if success["timestamp"] != opentactTime(at.Add(sandbox.SMSDeliveryDelay)) || delivered["timestamp"] != success["timestamp"] {
		t.Errorf("timestamps %v, %v; want %s", success["timestamp"], delivered["timestamp"], opentactTime(at.Add(2*time.Second)))
	}
}

func TestEventsOrder(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	clk := newClock(at)
	srv, _ := startEvents(t, clk, sandbox.Options{TokenTTL: time.Minute})
	c, _ := subscribe(t, srv, demoBasic)
	clk.Set(at.Add(time.Hour)) // the JWT's expiry does not end the socket

	o := order(t, srv, demoBasic, `["voice"]`, docsTN)
	f := readFrame(t, c)
	if f["type"] != "tn_order" || get(f, "payload", "uuid") != o["uuid"] || get(f, "payload", "state") != "success" ||
		get(f, "payload", "success") != json.Number("1") || f["timestamp"] != opentactTime(at.Add(time.Hour)) {
		t.Errorf("tn_order frame = %v, order %v", f, o)
	}
	if tns, _ := get(f, "payload", "tns").([]any); len(tns) != 1 {
		t.Errorf("tn_order payload's tns = %v", get(f, "payload", "tns"))
	}
	b, err := readRaw(t, c)
	if err != nil || !bytes.Contains(b, []byte(`"payload":98.87895`)) || !bytes.Contains(b, []byte(`"source_action":"tn_order"`)) ||
		!bytes.Contains(b, []byte(`"message":"New balance is 98.87895"`)) || !bytes.Contains(b, []byte(`"type":"balance"`)) {
		t.Errorf("balance frame = %s, %v", b, err)
	}
}

func TestEventsInboundSMS(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	clk := newClock(at)
	srv, _ := startEvents(t, clk, sandbox.Options{})
	order(t, srv, demoBasic, `["voice","sms"]`, docsTN)
	theirs := tns(searchNumbers(t, srv, poorBasic, "", `{"pattern":"305*","size":1}`).data)[0]
	order(t, srv, poorBasic, `["voice"]`, theirs)
	c, _ := subscribe(t, srv, demoBasic)

	body := `{"to":` + docsTN + `,"from":"+12025550199","message":"Hi there"}`
	r := send(t, srv, http.MethodPost, "/sandbox/inbound-sms", demoBasic, body)
	var ack struct{ UUID string }
	if r.status != http.StatusAccepted || json.Unmarshal(payloadJSON(t, r), &ack) != nil || ack.UUID == "" {
		t.Fatalf("inbound-sms = %d %s", r.status, r.body)
	}
	f := readFrame(t, c)
	if f["type"] != "sms" || f["message"] != "SMS: type: smsi, state: success" || get(f, "payload", "uuid") != ack.UUID ||
		get(f, "payload", "type") != "smsi" || get(f, "payload", "state") != "success" || get(f, "payload", "delivered") != true ||
		get(f, "payload", "from") != json.Number("12025550199") || get(f, "payload", "to") != json.Number(docsTN) ||
		get(f, "payload", "message") != "Hi there" {
		t.Errorf("smsi frame = %v", f)
	}

	// Kept: the inbound search and get find it; the outbound ones do not.
	in := searchPage(t, send(t, srv, http.MethodPost, "/rest/sms/search/inbound", demoBasic, `{}`))
	if in.total != 1 || in.data[0]["uuid"] != ack.UUID || in.data[0]["type"] != "smsi" {
		t.Errorf("inbound search = %v", in.data)
	}
	if p := searchPage(t, send(t, srv, http.MethodPost, "/rest/sms/search", demoBasic, `{}`)); p.total != 1 || p.data[0]["type"] != "smsi" {
		t.Errorf("search of both directions = %v", p.data)
	}
	if p := searchPage(t, send(t, srv, http.MethodPost, "/rest/sms/search/outbound", demoBasic, `{}`)); p.total != 0 {
		t.Errorf("outbound search = %v, want none", p.data)
	}
	if got := object(t, call(t, srv, http.MethodGet, "/rest/sms/inbound/"+ack.UUID, demoBasic), http.StatusOK); got["message"] != "Hi there" {
		t.Errorf("inbound get = %v", got)
	}
	wantNotFound(t, call(t, srv, http.MethodGet, "/rest/sms/outbound/"+ack.UUID, demoBasic))
	wantNotFound(t, call(t, srv, http.MethodGet, "/rest/sms/inbound/"+ack.UUID, otherBasic))

	// Not the account's number; a bad body; no credentials.
	for _, to := range []string{theirs, "19999999999"} {
		wantOpentactError(t, send(t, srv, http.MethodPost, "/sandbox/inbound-sms", demoBasic, `{"to":`+to+`,"from":12025550199,"message":"x"}`),
			http.StatusBadRequest, "to is not a number the account leases")
	}
	wantFields(t, send(t, srv, http.MethodPost, "/sandbox/inbound-sms", demoBasic, `{"to":`+docsTN+`}`))
	if r := send(t, srv, http.MethodPost, "/sandbox/inbound-sms", nil, body); r.status != http.StatusUnauthorized {
		t.Errorf("without credentials: %d %s", r.status, r.body)
	}
}

func TestEventsInboundCall(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	clk := newClock(at)
	srv, sb := startEvents(t, clk, sandbox.Options{})
	order(t, srv, demoBasic, `["voice"]`, docsTN)
	c, _ := subscribe(t, srv, demoBasic)

	r := send(t, srv, http.MethodPost, "/sandbox/inbound-call", demoBasic, `{"to":"`+docsTN+`","from":"+18389990000"}`)
	var ack struct{ UUID string }
	if r.status != http.StatusAccepted || json.Unmarshal(payloadJSON(t, r), &ack) != nil || ack.UUID == "" {
		t.Fatalf("inbound-call = %d %s", r.status, r.body)
	}
	for i, state := range []string{"init", "ringing", "live", "hangup", "destroyed"} {
		if i > 0 {
			moveClock(sb, clk, time.Second)
		}
		f := readFrame(t, c)
		now := opentactTime(at.Add(time.Duration(i) * time.Second))
		d := json.Number(fmt.Sprint(i))
		if f["type"] != "call_state" || f["message"] != "CallSCA in 18389990000 > "+docsTN+" - "+state || f["created_on"] != now ||
			get(f, "payload", "state") != state || get(f, "payload", "duration") != d {
			t.Errorf("%s: frame = %v", state, f)
		}
		cl, _ := f["call"].(map[string]any)
		if cl["uuid"] != ack.UUID || cl["direction"] != "in" || cl["state"] != state || cl["type"] != "CallSCA" || cl["duration"] != d ||
			cl["from"] != "18389990000" || cl["to"] != docsTN || get(f, "call", "tn", "tn") != json.Number(docsTN) ||
			get(f, "call", "account", "uuid") != "f2cb79fb-6bf8-4484-8034-debf95aac73b" || cl["init_on"] != opentactTime(at) {
			t.Errorf("%s: call = %v", state, cl)
		}
		for j, k := range []string{"init_on", "ring_on", "answer_on", "hangup_on", "destroy_on"} {
			if happened := cl[k] != nil; happened != (j <= i) {
				t.Errorf("%s: %s = %v", state, k, cl[k])
			}
		}
		end := i >= 3
		if (cl["q850_cause"] == json.Number("16") && cl["q850_cause_string"] == "NORMAL_CLEARING") != end {
			t.Errorf("%s: q850 = %v %v", state, cl["q850_cause"], cl["q850_cause_string"])
		}
	}
	wantOpentactError(t, send(t, srv, http.MethodPost, "/sandbox/inbound-call", otherBasic, `{"to":`+docsTN+`,"from":12025550199}`),
		http.StatusBadRequest, "to is not a number the account leases")
	if r := send(t, srv, http.MethodPost, "/sandbox/inbound-call", nil, `{"to":`+docsTN+`,"from":12025550199}`); r.status != http.StatusUnauthorized {
		t.Errorf("without credentials: %d %s", r.status, r.body)
	}
}

// TestEventsIsolation: an account's events reach each of its users'
// sockets, and no other account's.
func TestEventsIsolation(t *testing.T) {
	t.Parallel()
	clk := newClock(time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC))
	srv, _ := startEvents(t, clk, sandbox.Options{})
	demo, _ := subscribe(t, srv, demoBasic)
	mate, _ := subscribe(t, srv, colleagueBasic) // the demo account's other user
	other, _ := subscribe(t, srv, poorBasic)

	o := order(t, srv, demoBasic, `["voice"]`, docsTN)
	for _, c := range []*websocket.Conn{demo, mate} {
		if f := readFrame(t, c); f["type"] != "tn_order" || get(f, "payload", "uuid") != o["uuid"] {
			t.Errorf("demo account's socket got %v, want its order", f)
		}
	}
	// Frames of one socket keep their order: had the other account's
	// socket been sent the demo's order, it would come before its own.
	theirs := order(t, srv, poorBasic, `["voice"]`, tns(searchNumbers(t, srv, poorBasic, "", `{"pattern":"305*","size":1}`).data)[0])
	if f := readFrame(t, other); f["type"] != "tn_order" || get(f, "payload", "uuid") != theirs["uuid"] {
		t.Errorf("other account's socket got %v first, want its own order %v", f, theirs["uuid"])
	}
	if f := readFrame(t, demo); f["type"] != "balance" {
		t.Errorf("demo socket got %v, want its balance", f)
	}
	send(t, srv, http.MethodPost, "/sandbox/inbound-sms", demoBasic, `{"to":`+docsTN+`,"from":12025550199,"message":"x"}`)
	if f := readFrame(t, demo); f["type"] != "sms" {
		t.Errorf("demo socket got %v, want its SMS and not the other account's order", f)
	}
}

func TestEventsSocketsPerUser(t *testing.T) {
	t.Parallel()
	clk := newClock(time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC))
	srv, _ := startEvents(t, clk, sandbox.Options{})
	token := jwtOf(t, srv, otherBasic)
	for range sandbox.MaxSocketsPerUser {
		c := dial(t, srv, "/")
		writeText(t, c, `{"type":"auth","payload":"`+token+`"}`)
		if f := readFrame(t, c); get(f, "payload", "uuid") == nil {
			t.Fatalf("auth = %v", f)
		}
	}
	c := dial(t, srv, "/")
	writeText(t, c, `{"type":"auth","payload":"`+token+`"}`)
	if b, err := readRaw(t, c); err != nil || !strings.Contains(string(b), `"success":false`) {
		t.Errorf("one socket too many: %s, %v", b, err)
	}
	wantClosed(t, c, websocket.StatusTryAgainLater)
	subscribe(t, srv, colleagueBasic) // another user of the same account is not counted
}

// TestEventsClose: Close ends the sockets with 1001, and no new one opens.
func TestEventsClose(t *testing.T) {
	t.Parallel()
	clk := newClock(time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC))
	srv, sb := startEvents(t, clk, sandbox.Options{InboundSMSEvery: time.Minute})
	c, _ := subscribe(t, srv, demoBasic)
	pending := dial(t, srv, "/")
	third, _ := subscribe(t, srv, otherBasic) // pending is past its upgrade
	// The clients read while Close waits for their close handshakes.
	codes := make(chan websocket.StatusCode, 3)
	for _, c := range []*websocket.Conn{c, pending, third} {
		go func() {
			for {
				if _, _, err := c.Read(context.Background()); err != nil {
					codes <- websocket.CloseStatus(err)
					return
				}
			}
		}()
	}
	if err := sb.Close(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if code := <-codes; code != websocket.StatusGoingAway {
			t.Errorf("closed with %v, want 1001", code)
		}
	}
	_, resp, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("dial after Close: %v, %v", resp, err)
	}
	_ = sb.Close() // twice is fine
}

// TestInboundSMSEvery: with the option, each account leasing a number
// receives an SMS per interval of the clock.
func TestInboundSMSEvery(t *testing.T) {
	t.Parallel()
	clk := newClock(time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC))
	srv, sb := startEvents(t, clk, sandbox.Options{InboundSMSEvery: time.Minute})
	order(t, srv, demoBasic, `["voice","sms"]`, docsTN)
	c, _ := subscribe(t, srv, demoBasic)
	for range 2 {
		moveClock(sb, clk, time.Minute)
		if f := readFrame(t, c); get(f, "payload", "type") != "smsi" || get(f, "payload", "to") != json.Number(docsTN) {
			t.Errorf("frame = %v, want an inbound SMS", f)
		}
	}
	if p := searchPage(t, send(t, srv, http.MethodPost, "/rest/sms/search/inbound", demoBasic, `{}`)); p.total != 2 {
		t.Errorf("inbound search total = %d, want 2", p.total)
	}
}

func TestEventSubscriptions(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)
	clk := newClock(at)
	srv, _ := startEvents(t, clk, sandbox.Options{})
	const path = "/rest/event/subscription"

	made := object(t, send(t, srv, http.MethodPost, path, demoBasic, `{"type":"call_state","channel":"wss"}`), http.StatusCreated)
	for k, want := range map[string]any{"type": "call_state", "channel": "wss", "is_active": true, "expired_on": nil,
		"created_on": opentactTime(at), "modified_on": opentactTime(at)} {
		if made[k] != want {
			t.Errorf("created %s = %v, want %v", k, made[k], want)
		}
	}
	off := object(t, send(t, srv, http.MethodPost, path, demoBasic, `{"type":"sms","is_active":false,"expired_on":"2026-01-02T03:04:05Z"}`), http.StatusCreated)
	if off["is_active"] != false || off["expired_on"] != "2026-01-02T03:04:05.000Z" || off["channel"] != "wss" {
		t.Errorf("created = %v", off)
	}
	list, _ := payload(t, call(t, srv, http.MethodGet, path, demoBasic), http.StatusOK).([]any)
	if len(list) != 2 || list[0].(map[string]any)["uuid"] != made["uuid"] {
		t.Errorf("list = %v", list)
	}
	if l, _ := payload(t, call(t, srv, http.MethodGet, path, otherBasic), http.StatusOK).([]any); len(l) != 0 {
		t.Errorf("other account's list = %v", l)
	}
	wantNotFound(t, call(t, srv, http.MethodDelete, path+"/"+fmt.Sprint(made["uuid"]), otherBasic))
	if got := object(t, call(t, srv, http.MethodDelete, path+"/"+fmt.Sprint(made["uuid"]), demoBasic), http.StatusOK); got["uuid"] != made["uuid"] {
		t.Errorf("deleted = %v", got)
	}
	wantNotFound(t, call(t, srv, http.MethodDelete, path+"/"+fmt.Sprint(made["uuid"]), demoBasic))
	for _, body := range []string{`{}`, `{"type":""}`, `{"type":"sms","channel":"http"}`, `{"type":"sms","is_active":"yes"}`, `{"type":"sms","expired_on":"soon"}`} {
		wantFields(t, send(t, srv, http.MethodPost, path, demoBasic, body))
	}
}
