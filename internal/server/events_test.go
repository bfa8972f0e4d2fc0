package server_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	eventsv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/events/v1"
	"github.com/opentact-facade/opentact-facade/internal/events"
	"github.com/opentact-facade/opentact-facade/internal/server"
)

// eventsUpstream is a scripted Opentact: GET /rest/auth answers a user
// per Basic login with a fresh JWT each time, and / is the events
// WebSocket, which checks the auth frame and lets the test send frames
// to, drop or silence a user's sockets.
type eventsUpstream struct {
	srv *httptest.Server
	ttl time.Duration // of the JWTs it issues

	mu         sync.Mutex
	silentNext bool                // the next socket reads nothing after auth, so pings go unanswered
	refuseNext int                 // refuse this many upgrades with 503
	done       chan struct{}       // closed when the test ends
	issued     map[string][]string // tokens issued, by user
	auths      map[string][]string // tokens in auth frames, by user
	sockets    map[string][]*upSocket
}

type upSocket struct {
	c      *websocket.Conn
	closed chan struct{}
}

// users: Basic login → user uuid and account uuid.
var eventUsers = map[string][2]string{
	"alice": {"a11ce000-0000-4000-8000-000000000001", "acc00000-0000-4000-8000-00000000000a"},
	"bob":   {"b0b00000-0000-4000-8000-000000000002", "acc00000-0000-4000-8000-00000000000b"},
}

func newEventsUpstream(t *testing.T, ttl time.Duration) *eventsUpstream {
	up := &eventsUpstream{ttl: ttl, done: make(chan struct{}), issued: map[string][]string{}, auths: map[string][]string{}, sockets: map[string][]*upSocket{}}
	up.srv = httptest.NewServer(http.HandlerFunc(up.serve))
	t.Cleanup(func() {
		close(up.done)
		up.mu.Lock()
		for _, ss := range up.sockets {
			for _, s := range ss {
				s.c.CloseNow()
			}
		}
		up.mu.Unlock()
		up.srv.Close()
	})
	return up
}

func (up *eventsUpstream) wsURL() string { return "ws" + strings.TrimPrefix(up.srv.URL, "http") }

func (up *eventsUpstream) jwt(user string, n int) string {
	enc := base64.RawURLEncoding.EncodeToString
	claims, _ := json.Marshal(map[string]any{"uuid": user, "n": n, "exp": time.Now().Add(up.ttl).Unix()})
	return enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc(claims) + ".c2ln"
}

func (up *eventsUpstream) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/rest/auth" {
		login, _, _ := r.BasicAuth()
		u, ok := eventUsers[login]
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"success":false,"message":"Unauthorized"}`)
			return
		}
		up.mu.Lock()
		tok := up.jwt(u[0], len(up.issued[u[0]]))
		up.issued[u[0]] = append(up.issued[u[0]], tok)
		up.mu.Unlock()
		fmt.Fprintf(w, `{"success":true,"payload":{"uuid":%q,"email":"%s@example.com","token":%q,"account":{"uuid":%q}}}`, u[0], login, tok, u[1])
		return
	}
	up.mu.Lock()
	refuse := up.refuseNext > 0
	if refuse {
		up.refuseNext--
	}
	up.mu.Unlock()
	if refuse {
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := r.Context()
	_, b, err := c.Read(ctx)
	if err != nil {
		return
	}
	var frame struct{ Type, Payload string }
	_ = json.Unmarshal(b, &frame)
	user := ""
	up.mu.Lock()
	for u, toks := range up.issued {
		for _, tok := range toks {
			if tok == frame.Payload && frame.Type == "auth" {
				user = u
			}
		}
	}
	if user != "" {
		up.auths[user] = append(up.auths[user], frame.Payload)
	}
	up.mu.Unlock()
	if user == "" {
		_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"auth","success":false,"message":"Unauthorized"}`))
		c.Close(websocket.StatusPolicyViolation, "unauthorized")
		return
	}
	s := &upSocket{c: c, closed: make(chan struct{})}
	up.mu.Lock()
	up.sockets[user] = append(up.sockets[user], s)
	silent := up.silentNext
	up.silentNext = false
	up.mu.Unlock()
	defer close(s.closed)
	// Registered before the answer, so that the test can send to the
	// socket as soon as the facade has it.
	ans := fmt.Sprintf(`{"uuid":"f0000000-0000-4000-8000-000000000000","created_on":"2024-02-19T16:06:00Z","type":"auth","message":"WSS connection c@127.0.0.1 - success auth","payload":{"uuid":"c","ip":"127.0.0.1","user":{"uuid":%q}},"account":{},"delivery_report":[]}`, user)
	if err := c.Write(ctx, websocket.MessageText, []byte(ans)); err != nil {
		return
	}
	if silent {
		select {
		case <-ctx.Done():
		case <-up.done:
		}
		return
	}
	// Reading answers pings.
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return
		}
	}
}

// open returns the user's open sockets' count, and the newest.
func (up *eventsUpstream) socket(user string) (int, *upSocket) {
	up.mu.Lock()
	defer up.mu.Unlock()
	n := 0
	var last *upSocket
	for _, s := range up.sockets[user] {
		select {
		case <-s.closed:
		default:
			n++
			last = s
		}
	}
	return n, last
}

func (up *eventsUpstream) authFrames(user string) []string {
	up.mu.Lock()
	defer up.mu.Unlock()
	return append([]string(nil), up.auths[user]...)
}

func (up *eventsUpstream) send(t *testing.T, user, frame string) {
	t.Helper()
	_, s := up.socket(user)
	if s == nil {
		t.Fatalf("no socket of %s open", user)
	}
	if err := s.c.Write(context.Background(), websocket.MessageText, []byte(frame)); err != nil {
		t.Fatalf("writing to %s's socket: %v", user, err)
	}
}

func smsFrame(i int) string {
	return fmt.Sprintf(`{"timestamp":"2024-02-19T16:06:%02dZ","message":"SMS: type: smso, state: success","type":"sms","payload":{"type":"smso","uuid":"s%d","from":"18382050008","to":"14155550100","message":"hello %d","state":"success"}}`, i%60, i, i)
}

func balanceFrame(i int) string {
	return fmt.Sprintf(`{"timestamp":"2024-02-19T16:06:00Z","message":"New balance is %d.01","type":"balance","source_action":"voice_charge_in","payload":%d.0100000000000000001}`, i, i)
}

// startEventsFacade runs a facade against up with the events hub's
// timings shortened as mods say.
func startEventsFacade(t *testing.T, up *eventsUpstream, mods ...func(*server.Options)) (*facade, func() error) {
	t.Helper()
	return startStoppableFacade(t, up.srv.URL, append([]func(*server.Options){func(o *server.Options) {
		o.EventsURL = up.wsURL()
		o.Events.MinBackoff = 10 * time.Millisecond
		o.Events.MaxBackoff = 50 * time.Millisecond
		o.Events.Linger = 50 * time.Millisecond
	}}, mods...)...)
}

type eventStream struct {
	stream grpc.ServerStreamingClient[eventsv1.Event]
	cancel context.CancelFunc
}

func openStream(t *testing.T, conn grpc.ClientConnInterface, login string, types ...string) eventStream {
	t.Helper()
	ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(context.Background(), "authorization", basic(login, "pw")))
	t.Cleanup(cancel)
	s, err := eventsv1.NewEventServiceClient(conn).StreamEvents(ctx, &eventsv1.StreamEventsRequest{Types: types})
	if err != nil {
		t.Fatal(err)
	}
	// The headers come once the stream has joined its user's socket.
	if _, err := s.Header(); err != nil {
		t.Fatal(err)
	}
	return eventStream{stream: s, cancel: cancel}
}

func (s eventStream) next(t *testing.T) *eventsv1.Event {
	t.Helper()
	ev, err := s.stream.Recv()
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	return ev
}

// TestEventsOneSocketPerUserFansOut: a user's streams over both doors
// share one socket, opened with the user's JWT in the auth frame; a
// burst reaches each stream whole and in order, filtered by type; the
// socket closes after the last stream.
func TestEventsOneSocketPerUserFansOut(t *testing.T) {
	t.Parallel()
	up := newEventsUpstream(t, time.Hour)
	f, _ := startEventsFacade(t, up)
	alice := eventUsers["alice"][0]

	all := []eventStream{openStream(t, f.conn, "alice"), openStream(t, f.conn, "alice"), openStream(t, f.conn, "alice")}
	onlySMS := openStream(t, f.conn, "alice", "sms")
	// The REST stream's headers come with its first event.
	req, _ := http.NewRequest(http.MethodGet, f.restURL+"/v1/events:stream?types=balance", nil)
	req.Header.Set("Authorization", basic("alice", "pw"))
	type answer struct {
		resp *http.Response
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := (&http.Client{}).Do(req)
		answered <- answer{resp, err}
	}()
	waitFor(t, "the REST stream to join", func() bool {
		return metric(t, f, "opentact_facade_event_streams") == 5
	})
	if n, _ := up.socket(alice); n != 1 {
		t.Fatalf("%d sockets open for alice, want 1", n)
	}
	if frames, issued := up.authFrames(alice), up.issued[alice]; len(frames) != 1 || frames[0] != issued[0] {
		t.Fatalf("auth frames %q, want the JWT GET /rest/auth issued", frames)
	}

	const burst = 200
	for i := range burst {
		if i%2 == 0 {
			up.send(t, alice, smsFrame(i))
		} else {
			up.send(t, alice, balanceFrame(i))
		}
	}
	for k, s := range all {
		for i := range burst {
			ev := s.next(t)
			switch {
			case i%2 == 0 && ev.GetSms().GetUuid() != fmt.Sprintf("s%d", i):
				t.Fatalf("stream %d event %d: %v", k, i, ev)
			case i%2 == 1 && ev.GetBalance().GetBalance() != fmt.Sprintf("%d.0100000000000000001", i):
				t.Fatalf("stream %d event %d: %v", k, i, ev)
			}
		}
	}
	for i := 0; i < burst; i += 2 {
		if ev := onlySMS.next(t); ev.GetType() != "sms" || ev.GetSms().GetUuid() != fmt.Sprintf("s%d", i) {
			t.Fatalf("sms-only stream: %v", ev)
		}
	}
	a := <-answered
	if a.err != nil {
		t.Fatal(a.err)
	}
	resp := a.resp
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("REST stream: %d", resp.StatusCode)
	}
	lines := bufio.NewScanner(resp.Body)
	for i := 1; i < burst; i += 2 {
		if !lines.Scan() {
			t.Fatalf("REST stream ended: %v", lines.Err())
		}
		var line struct {
			Result struct {
				Type    string
				Balance struct{ Balance string }
			}
		}
		if err := json.Unmarshal(lines.Bytes(), &line); err != nil || line.Result.Type != "balance" || line.Result.Balance.Balance != fmt.Sprintf("%d.0100000000000000001", i) {
			t.Fatalf("REST line %s: %v", lines.Bytes(), err)
		}
	}

	resp.Body.Close()
	for _, s := range append(all, onlySMS) {
		s.cancel()
	}
	waitFor(t, "the socket to close after the last stream", func() bool { n, _ := up.socket(alice); return n == 0 })
}

// TestEventsUsersAreIsolated: two users' streams on one replica see only
// their own events, socket or webhook, however they interleave.
func TestEventsUsersAreIsolated(t *testing.T) {
	t.Parallel()
	up := newEventsUpstream(t, time.Hour)
	f, _ := startEventsFacade(t, up, func(o *server.Options) { o.WebhookKey = "0123456789abcdef-key" })
	alice, bob := eventUsers["alice"][0], eventUsers["bob"][0]
	as, bs := openStream(t, f.conn, "alice"), openStream(t, f.conn, "bob")
	waitFor(t, "both sockets", func() bool { a, _ := up.socket(alice); b, _ := up.socket(bob); return a == 1 && b == 1 })

	var wg sync.WaitGroup
	const n = 100
	for _, user := range []string{alice, bob} {
		wg.Go(func() {
			for i := range n {
				up.send(t, user, fmt.Sprintf(`{"uuid":"%s-%d","type":"call_state","created_on":"2024-02-19T16:24:46Z","payload":{"state":"live","duration":1},"call":{"uuid":"%s"}}`, user, i, user))
			}
		})
	}
	wg.Go(func() {
		for i := range n {
			body := fmt.Sprintf(`{"type":"smsi","uuid":"hook-%d","from":"14155550100","to":"18382050008","message":"hi","account":{"uuid":%q}}`, i, eventUsers["bob"][1])
			resp, _ := f.do(t, f.restURL, http.MethodPost, "/v1/webhooks/opentact/0123456789abcdef-key", nil, body)
			if resp.StatusCode != http.StatusNoContent {
				t.Errorf("webhook: %d", resp.StatusCode)
			}
		}
	})
	wg.Wait()
	for range n {
		if ev := as.next(t); ev.GetCallState().GetCall().GetUuid() != alice {
			t.Fatalf("alice's stream got %v", ev)
		}
	}
	calls, hooks := 0, 0
	for range 2 * n {
		ev := bs.next(t)
		switch {
		case ev.GetCallState().GetCall().GetUuid() == bob:
			calls++
		case strings.HasPrefix(ev.GetSms().GetUuid(), "hook-"):
			hooks++
		default:
			t.Fatalf("bob's stream got %v", ev)
		}
	}
	if calls != n || hooks != n {
		t.Fatalf("bob got %d calls and %d webhook SMS, want %d each", calls, hooks, n)
	}
}

// TestEventsSurviveADroppedSocket: a socket dropped by Opentact, or gone
// silent (no answer to pings), is reopened while the streams stay open,
// and each stream is told of the gap.
func TestEventsSurviveADroppedSocket(t *testing.T) {
	t.Parallel()
	up := newEventsUpstream(t, time.Hour)
	f, _ := startEventsFacade(t, up, func(o *server.Options) {
		o.Events.PingEvery = 20 * time.Millisecond
		o.Events.PingTimeout = 500 * time.Millisecond
	})
	alice := eventUsers["alice"][0]
	s1, s2 := openStream(t, f.conn, "alice"), openStream(t, f.conn, "alice", "sms")
	waitFor(t, "the socket", func() bool { n, _ := up.socket(alice); return n == 1 })

	// Dropped, then dropped again into a socket that goes silent.
	for i, how := range []string{"closed by Opentact (1011)", "closed by Opentact (1011)", "no answer to ping"} {
		_, sock := up.socket(alice)
		before := time.Now()
		if i == 1 {
			up.mu.Lock()
			up.silentNext = true
			up.mu.Unlock()
		}
		if i < 2 {
			sock.c.Close(websocket.StatusInternalError, "bye")
		}
		for _, s := range []eventStream{s1, s2} {
			ev := s.next(t)
			gap := ev.GetGap()
			if ev.GetType() != events.TypeGap || gap == nil || gap.GetReason() != how {
				t.Fatalf("after the socket was %s: %v", how, ev)
			}
			if from, to := gap.GetFrom().AsTime(), gap.GetTo().AsTime(); from.Before(before.Add(-time.Second)) || to.Before(from) {
				t.Fatalf("gap from %v to %v, socket dropped at %v", from, to, before)
			}
		}
		if i == 1 {
			continue // the silent socket sends nothing
		}
		up.send(t, alice, smsFrame(7))
		for _, s := range []eventStream{s1, s2} {
			if ev := s.next(t); ev.GetSms().GetUuid() != "s7" {
				t.Fatalf("after reopening: %v", ev)
			}
		}
	}
	if n := len(up.authFrames(alice)); n != 4 {
		t.Fatalf("%d auth frames, want 4 (the open and three reopens)", n)
	}
	if m := metric(t, f, "opentact_facade_event_gaps_total"); m != 3 {
		t.Fatalf("opentact_facade_event_gaps_total %v, want 3", m)
	}
}

// TestEventsSlowConsumerEnded: a stream that does not read is ended with
// RESOURCE_EXHAUSTED once its buffer is full; the other stream and the
// socket go on.
func TestEventsSlowConsumerEnded(t *testing.T) {
	t.Parallel()
	up := newEventsUpstream(t, time.Hour)
	f, _ := startEventsFacade(t, up, func(o *server.Options) { o.Events.Buffer = 8 })
	alice := eventUsers["alice"][0]
	// A small fixed window, so that a stream that does not read blocks
	// its sender soon.
	slowConn, err := grpc.NewClient(f.conn.Target(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer slowConn.Close()
	slow, fast := openStream(t, slowConn, "alice"), openStream(t, f.conn, "alice")
	waitFor(t, "the socket", func() bool { n, _ := up.socket(alice); return n == 1 })

	big := strings.Repeat("x", 4<<10)
	const n = 200 // 800 KiB: well past the slow stream's window and buffer
	for i := range n {
		// In step with the fast stream, which so never falls behind.
		up.send(t, alice, strings.Replace(smsFrame(i), "hello", big, 1))
		if got := fast.next(t).GetSms().GetUuid(); got != fmt.Sprintf("s%d", i) {
			t.Fatalf("fast stream: event %d is %s", i, got)
		}
	}
	var got error
	for got == nil {
		_, got = slow.stream.Recv()
	}
	if st := status.Convert(got); st.Code() != codes.ResourceExhausted || !strings.Contains(st.Message(), "behind") {
		t.Fatalf("slow stream ended with %v", got)
	}
	if m := metric(t, f, "opentact_facade_event_slow_consumers_total"); m != 1 {
		t.Fatalf("opentact_facade_event_slow_consumers_total %v, want 1", m)
	}
}

// TestEventsRenewTheJWT: the socket's JWT is renewed before it expires,
// and a reopen authenticates with the new one.
func TestEventsRenewTheJWT(t *testing.T) {
	t.Parallel()
	up := newEventsUpstream(t, 4*time.Second)
	f, _ := startEventsFacade(t, up, func(o *server.Options) { o.Events.RenewBefore = 3 * time.Second })
	alice := eventUsers["alice"][0]
	s := openStream(t, f.conn, "alice")
	waitFor(t, "the socket", func() bool { n, _ := up.socket(alice); return n == 1 })
	waitFor(t, "a renewal", func() bool { up.mu.Lock(); defer up.mu.Unlock(); return len(up.issued[alice]) >= 2 })
	up.mu.Lock()
	renewed := up.issued[alice][len(up.issued[alice])-1]
	up.mu.Unlock()
	_, sock := up.socket(alice)
	sock.c.Close(websocket.StatusGoingAway, "bye")
	if ev := s.next(t); ev.GetType() != events.TypeGap {
		t.Fatalf("got %v", ev)
	}
	frames := up.authFrames(alice)
	if last := frames[len(frames)-1]; last == frames[0] || len(frames) != 2 {
		t.Fatalf("auth frames %d; the reopen used the first JWT again", len(frames))
	} else if up.mu.Lock(); !strings.Contains(strings.Join(up.issued[alice][1:], " "), last) {
		up.mu.Unlock()
		t.Fatalf("the reopen used %q, not a renewed JWT (newest %q)", last, renewed)
	} else {
		up.mu.Unlock()
	}
}

// TestEventsRefusals: a stream needs valid credentials and a valid
// filter, checked before any socket opens.
func TestEventsRefusals(t *testing.T) {
	t.Parallel()
	up := newEventsUpstream(t, time.Hour)
	f, _ := startEventsFacade(t, up)
	for _, tc := range []struct {
		login string
		types []string
		code  codes.Code
	}{
		{"mallory", nil, codes.Unauthenticated},
		{"alice", []string{"sms\n"}, codes.InvalidArgument},
		{"alice", []string{""}, codes.InvalidArgument},
	} {
		ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", basic(tc.login, "pw"))
		s, err := eventsv1.NewEventServiceClient(f.conn).StreamEvents(ctx, &eventsv1.StreamEventsRequest{Types: tc.types})
		if err == nil {
			_, err = s.Recv()
		}
		if status.Code(err) != tc.code {
			t.Errorf("%s %q: %v, want %v", tc.login, tc.types, err, tc.code)
		}
	}
	if n, _ := up.socket(eventUsers["alice"][0]); n != 0 {
		t.Fatalf("a refused stream opened a socket")
	}
}

// TestEventsWebhooks: the route takes Opentact's calls only with the
// configured key, bounded and checked, and never logs the key.
func TestEventsWebhooks(t *testing.T) {
	t.Parallel()
	const key = "s3cret-webhook-key-0123"
	up := newEventsUpstream(t, time.Hour)
	f, _ := startEventsFacade(t, up, func(o *server.Options) { o.WebhookKey = key })
	off, _ := startEventsFacade(t, up)
	s := openStream(t, f.conn, "bob")
	bobAccount := eventUsers["bob"][1]
	call := fmt.Sprintf(`{"uuid":"c1","direction":"in","from":"14155550100","to":"18382050008","state":"ringing","account":{"uuid":%q}}`, bobAccount)

	for _, tc := range []struct {
		name, base, path, body string
		want                   int
	}{
		{"good key", f.restURL, "/v1/webhooks/opentact/" + key, call, http.StatusNoContent},
		{"bad key", f.restURL, "/v1/webhooks/opentact/" + key + "x", call, http.StatusNotFound},
		{"no key configured", off.restURL, "/v1/webhooks/opentact/" + key, call, http.StatusNotFound},
		{"not JSON", f.restURL, "/v1/webhooks/opentact/" + key, `{"a":`, http.StatusBadRequest},
		{"no account", f.restURL, "/v1/webhooks/opentact/" + key, `{"direction":"in"}`, http.StatusBadRequest},
		{"too large", f.restURL, "/v1/webhooks/opentact/" + key, `{"x":"` + strings.Repeat("a", 100<<10) + `"}`, http.StatusRequestEntityTooLarge},
	} {
		resp, body := f.do(t, tc.base, http.MethodPost, tc.path, nil, tc.body)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, resp.StatusCode, body, tc.want)
		}
		// A refusal is answered as every REST error is: a google.rpc.Status
		// with the gRPC code of its HTTP status.
		if want := map[int]codes.Code{http.StatusNotFound: codes.NotFound, http.StatusBadRequest: codes.InvalidArgument,
			http.StatusRequestEntityTooLarge: codes.ResourceExhausted}[tc.want]; tc.want != http.StatusNoContent && restStatus(t, body).Code() != want {
			t.Errorf("%s: %s, want a google.rpc.Status of %v", tc.name, body, want)
		}
	}
	ev := s.next(t)
	if ev.GetCallState().GetState() != "ringing" || ev.GetCallState().GetCall().GetUuid() != "c1" {
		t.Fatalf("webhook event: %v", ev)
	}
	for _, outcome := range []string{"accepted", "bad_key", "bad_body", "no_account", "too_large"} {
		if m := metric(t, f, "opentact_facade_webhook_events_total", `outcome="`+outcome+`"`); m != 1 {
			t.Errorf("opentact_facade_webhook_events_total{outcome=%q} %v, want 1", outcome, m)
		}
	}
	if strings.Contains(f.logs.String(), key) || strings.Contains(off.logs.String(), key) {
		t.Fatal("the webhook key reached a log line")
	}
}

// TestEventsEndAtShutdown: SIGTERM ends each stream with UNAVAILABLE and
// RetryInfo, so that its client opens it on another replica.
func TestEventsEndAtShutdown(t *testing.T) {
	t.Parallel()
	up := newEventsUpstream(t, time.Hour)
	f, stop := startEventsFacade(t, up)
	s := openStream(t, f.conn, "alice")
	ended := make(chan error, 1)
	go func() {
		_, err := s.stream.Recv()
		ended <- err
	}()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	err := <-ended
	st := status.Convert(err)
	if st.Code() != codes.Unavailable {
		t.Fatalf("stream ended with %v", err)
	}
	for _, d := range st.Details() {
		if _, ok := d.(*errdetails.RetryInfo); ok {
			return
		}
	}
	t.Fatalf("no RetryInfo in %v", st.Details())
}

// TestEventsRESTStreamOutlivesTheWriteTimeout: a REST stream is not cut
// by the HTTP server's write timeout, which bounds an ordinary answer
// (the longest call timeout and 5 s more: 6 s here).
func TestEventsRESTStreamOutlivesTheWriteTimeout(t *testing.T) {
	t.Parallel()
	up := newEventsUpstream(t, time.Hour)
	f, _ := startEventsFacade(t, up, func(o *server.Options) {
		o.UpstreamTimeout, o.MaxCallTimeout = time.Second, time.Second
	})
	alice := eventUsers["alice"][0]
	req, _ := http.NewRequest(http.MethodGet, f.restURL+"/v1/events:stream", nil)
	req.Header.Set("Authorization", basic("alice", "pw"))
	opened := time.Now()
	answered := make(chan *http.Response, 1)
	go func() {
		resp, err := (&http.Client{}).Do(req)
		if err != nil {
			t.Error(err)
		}
		answered <- resp
	}()
	waitFor(t, "the socket", func() bool { n, _ := up.socket(alice); return n == 1 })
	waitFor(t, "the write timeout to pass", func() bool { return time.Since(opened) > 7*time.Second })
	up.send(t, alice, smsFrame(1))
	resp := <-answered
	if resp == nil {
		t.FailNow()
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.Contains(line, `"result"`) || !strings.Contains(line, `"s1"`) {
		t.Fatalf("after the write timeout: %q, %v", line, err)
	}
}

// TestEventsFramesRefused: a frame over 64 KiB, one that is not JSON and
// a binary one are dropped and counted; the socket stays open and the
// next event arrives.
func TestEventsFramesRefused(t *testing.T) {
	t.Parallel()
	up := newEventsUpstream(t, time.Hour)
	f, _ := startEventsFacade(t, up)
	alice := eventUsers["alice"][0]
	s := openStream(t, f.conn, "alice")
	waitFor(t, "the socket", func() bool { n, _ := up.socket(alice); return n == 1 })
	up.send(t, alice, strings.Replace(smsFrame(1), "hello", strings.Repeat("x", 70<<10), 1))
	up.send(t, alice, `{"type":"sms",`)
	_, sock := up.socket(alice)
	if err := sock.c.Write(context.Background(), websocket.MessageBinary, []byte(smsFrame(3))); err != nil {
		t.Fatal(err)
	}
	up.send(t, alice, smsFrame(2))
	if ev := s.next(t); ev.GetSms().GetUuid() != "s2" {
		t.Fatalf("got %v, want s2 after the refused frames", ev)
	}
	for _, reason := range []string{"too_large", "malformed", "binary"} {
		if m := metric(t, f, "opentact_facade_events_refused_total", `reason="`+reason+`"`); m != 1 {
			t.Errorf("opentact_facade_events_refused_total{reason=%q} %v, want 1", reason, m)
		}
	}
	if n := len(up.authFrames(alice)); n != 1 {
		t.Errorf("%d auth frames: the socket was reopened", n)
	}
}

// TestEventsWebhookNetworks: with --webhook-allow-cidr, a caller from
// another network is refused, even with the key.
func TestEventsWebhookNetworks(t *testing.T) {
	t.Parallel()
	const key = "s3cret-webhook-key-0123"
	up := newEventsUpstream(t, time.Hour)
	f, _ := startEventsFacade(t, up, func(o *server.Options) {
		o.WebhookKey = key
		o.WebhookAllow = []netip.Prefix{netip.MustParsePrefix("72.21.26.35/32")}
	})
	body := fmt.Sprintf(`{"type":"smsi","uuid":"x","account":{"uuid":%q}}`, eventUsers["bob"][1])
	if resp, b := f.do(t, f.restURL, http.MethodPost, "/v1/webhooks/opentact/"+key, nil, body); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("from 127.0.0.1: %d %s, want 403", resp.StatusCode, b)
	}
	if m := metric(t, f, "opentact_facade_webhook_events_total", `outcome="forbidden_address"`); m != 1 {
		t.Fatalf("forbidden_address %v, want 1", m)
	}
	g, _ := startEventsFacade(t, up, func(o *server.Options) {
		o.WebhookKey = key
		o.WebhookAllow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	if resp, b := g.do(t, g.restURL, http.MethodPost, "/v1/webhooks/opentact/"+key, nil, body); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("from an allowed network: %d %s, want 204", resp.StatusCode, b)
	}
}

// TestEventsGapSaysWhyTheSocketDropped: when reopening takes several
// attempts, the gap's reason is the drop's, not the failed attempts'.
func TestEventsGapSaysWhyTheSocketDropped(t *testing.T) {
	t.Parallel()
	up := newEventsUpstream(t, time.Hour)
	f, _ := startEventsFacade(t, up)
	alice := eventUsers["alice"][0]
	s := openStream(t, f.conn, "alice")
	waitFor(t, "the socket", func() bool { n, _ := up.socket(alice); return n == 1 })
	up.mu.Lock()
	up.refuseNext = 2
	up.mu.Unlock()
	_, sock := up.socket(alice)
	sock.c.Close(websocket.StatusInternalError, "bye")
	ev := s.next(t)
	if got := ev.GetGap().GetReason(); got != "closed by Opentact (1011)" {
		t.Fatalf("gap reason %q, want the drop's", got)
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	if up.refuseNext != 0 {
		t.Fatalf("%d refusals left: the reopen did not retry", up.refuseNext)
	}
}
