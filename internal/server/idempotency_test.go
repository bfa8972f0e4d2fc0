package server_test

// The request_id store, end to end: SendSMS over real listeners, both
// doors, against an httptest Opentact that numbers its requests and can
// hold them, fail them, or cut them off.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	apiv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/api/v1"
	messagingv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/messaging/v1"
	"github.com/opentact-facade/opentact-facade/internal/server"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// ridUpstream stands in for Opentact's POST /rest/sms. Request n (from 1)
// is answered with the SMS "sms-n", unless answer is set; while held, a
// request waits for release first.
type ridUpstream struct {
	*recorder
	n       atomic.Int64
	arrived chan int
	mu      sync.Mutex
	held    chan struct{}
	answer  http.HandlerFunc
}

func newRidUpstream(t *testing.T) *ridUpstream {
	u := &ridUpstream{arrived: make(chan int, 64)}
	u.recorder = newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		n := int(u.n.Add(1))
		u.mu.Lock()
		held, h := u.held, u.answer
		u.mu.Unlock()
		u.arrived <- n
		if held != nil {
			select {
			case <-held:
			case <-r.Context().Done():
				return
			}
		}
		if h != nil {
			h(w, r)
			return
		}
		payload(fmt.Sprintf(`{"uuid":"sms-%d","type":"smso","state":"created"}`, n))(w, r)
	})
	return u
}

// hold makes requests wait until the function returned is called.
func (u *ridUpstream) hold(t *testing.T) (release func()) {
	ch := make(chan struct{})
	u.mu.Lock()
	u.held = ch
	u.mu.Unlock()
	release = sync.OnceFunc(func() { close(ch) })
	t.Cleanup(release)
	return release
}

// set makes the upstream answer with h (nil: the SMS) from now on.
func (u *ridUpstream) set(h http.HandlerFunc) {
	u.mu.Lock()
	u.answer = h
	u.mu.Unlock()
}

func (u *ridUpstream) waitArrival(t *testing.T) int {
	t.Helper()
	select {
	case n := <-u.arrived:
		return n
	case <-time.After(guard):
		t.Fatalf("no request reached Opentact in %v", guard)
		return 0
	}
}

// ridCreds are the credentials of the calls, unless a test says others.
var ridCreds = http.Header{"Authorization": {cfBasic}, "X-Auth-Token": {cfJWT}}

func smsRequest(id, text string) *messagingv1.SendSMSRequest {
	r := &messagingv1.SendSMSRequest{From: "+12029822917", To: "12025550123", Message: text}
	if id != "" {
		r.RequestId = proto.String(id)
	}
	return r
}

// sendSMS calls SendSMS through door ("grpc" or "rest") with creds.
func sendSMS(ctx context.Context, t *testing.T, f *facade, door string, creds http.Header, req *messagingv1.SendSMSRequest) (*messagingv1.SendSMSResponse, error) {
	t.Helper()
	if door == "grpc" {
		md := metadata.MD{}
		for k, vs := range creds {
			md.Append(strings.ToLower(k), vs...)
		}
		return messagingv1.NewMessagingServiceClient(f.conn).SendSMS(metadata.NewOutgoingContext(ctx, md), req)
	}
	body, err := protojson.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, f.restURL+"/v1/sms", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range creds {
		hr.Header[k] = vs
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := f.http.Do(hr)
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, restStatus(t, b).Err()
	}
	out := &messagingv1.SendSMSResponse{}
	if err := protojson.Unmarshal(b, out); err != nil {
		t.Fatalf("REST answer %s: %v", b, err)
	}
	return out, nil
}

// mustSend is sendSMS within guard, failing the test on an error; it
// returns the SMS's uuid.
func mustSend(t *testing.T, f *facade, door string, creds http.Header, req *messagingv1.SendSMSRequest) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), guard)
	defer cancel()
	resp, err := sendSMS(ctx, t, f, door, creds, req)
	if err != nil {
		t.Fatalf("SendSMS over %s: %v", door, err)
	}
	return resp.GetSms().GetUuid()
}

// wantReason checks err's code and ErrorInfo reason.
func wantReason(t *testing.T, what string, err error, code codes.Code, reason apiv1.ErrorReason) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != code || errorInfo(st).GetReason() != reason.String() {
		t.Errorf("%s: %v (%s), want %v with reason %s", what, st.Code(), st.Message(), code, reason)
	}
}

// TestRequestIDReplaysTheFirstAnswer: a repeat of a call with the same
// credentials and request_id, over either door, gets the first call's
// answer, and Opentact sees one request.
func TestRequestIDReplaysTheFirstAnswer(t *testing.T) {
	t.Parallel()
	for _, first := range []string{"grpc", "rest"} {
		t.Run("first over "+first, func(t *testing.T) {
			t.Parallel()
			up := newRidUpstream(t)
			f := startFacade(t, up.URL)
			req := smsRequest("order-1", "hello")
			if got := mustSend(t, f, first, ridCreds, req); got != "sms-1" {
				t.Fatalf("first call answered %q, want sms-1", got)
			}
			for _, door := range []string{"grpc", "rest"} {
				if got := mustSend(t, f, door, ridCreds, req); got != "sms-1" {
					t.Errorf("a repeat over %s answered %q, want the first answer, sms-1", door, got)
				}
			}
			if n := up.calls.Load(); n != 1 {
				t.Errorf("Opentact saw %d requests, want 1", n)
			}
			// Another request_id is another message.
			if got := mustSend(t, f, "grpc", ridCreds, smsRequest("order-2", "hello")); got != "sms-2" {
				t.Errorf("another request_id answered %q, want a new message, sms-2", got)
			}
			shCheckMetrics(t, f, map[string]float64{
				`opentact_facade_idempotency_requests_total{result="first"}`:    2,
				`opentact_facade_idempotency_requests_total{result="replayed"}`: 2,
				`opentact_facade_idempotency_entries`:                           2,
			})
			var replayed int
			for _, l := range f.logs.lines("finished call") {
				if l["idempotency"] == "replayed" {
					replayed++
				}
			}
			if replayed != 2 {
				t.Errorf("%d access lines say idempotency replayed, want 2", replayed)
			}
		})
	}
}

// TestRequestIDWithoutOneSendsEachCall: without a request_id, every call
// is a message of its own.
func TestRequestIDWithoutOneSendsEachCall(t *testing.T) {
	t.Parallel()
	up := newRidUpstream(t)
	f := startFacade(t, up.URL)
	for _, door := range []string{"grpc", "rest"} {
		mustSend(t, f, door, ridCreds, smsRequest("", "hello"))
	}
	if n := up.calls.Load(); n != 2 {
		t.Errorf("Opentact saw %d requests, want 2", n)
	}
}

// TestRequestIDWaitsForTheFirstCall: calls with the key of a call under
// way wait for its answer, over either door, and Opentact sees one
// request.
func TestRequestIDWaitsForTheFirstCall(t *testing.T) {
	t.Parallel()
	up := newRidUpstream(t)
	f := startFacade(t, up.URL)
	release := up.hold(t)
	req := smsRequest("k", "hello")
	type result struct {
		uuid string
		err  error
	}
	results := make(chan result, 3)
	call := func(door string) {
		resp, err := sendSMS(t.Context(), t, f, door, ridCreds, req)
		results <- result{resp.GetSms().GetUuid(), err}
	}
	go call("grpc")
	up.waitArrival(t)
	go call("rest")
	go call("grpc")
	waitFor(t, "3 calls in flight", func() bool { return metric(t, f, "opentact_facade_calls_in_flight") == 3 })
	release()
	for range 3 {
		r := <-results
		if r.err != nil || r.uuid != "sms-1" {
			t.Errorf("a call answered %q, %v; want sms-1", r.uuid, r.err)
		}
	}
	if n := up.calls.Load(); n != 1 {
		t.Errorf("Opentact saw %d requests, want 1", n)
	}
}

// TestRequestIDFirstCallOutlivesItsCaller: the first call goes on when
// its caller gives up, so that a repeat gets its answer rather than an
// unknown outcome.
func TestRequestIDFirstCallOutlivesItsCaller(t *testing.T) {
	t.Parallel()
	up := newRidUpstream(t)
	f := startFacade(t, up.URL)
	release := up.hold(t)
	req := smsRequest("k", "hello")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := sendSMS(ctx, t, f, "grpc", ridCreds, req)
		done <- err
	}()
	up.waitArrival(t)
	cancel()
	if err := <-done; status.Code(err) != codes.Canceled {
		t.Fatalf("the cancelled call: %v, want Canceled", err)
	}
	release()
	if got := mustSend(t, f, "rest", ridCreds, req); got != "sms-1" {
		t.Errorf("the repeat answered %q, want the first call's answer, sms-1", got)
	}
	if n := up.calls.Load(); n != 1 {
		t.Errorf("Opentact saw %d requests, want 1", n)
	}
}

// TestRequestIDReusedForAnotherRequest: a request_id used for another
// request is FAILED_PRECONDITION, REQUEST_ID_REUSED, while the first call
// is under way and after it, and nothing is sent.
func TestRequestIDReusedForAnotherRequest(t *testing.T) {
	t.Parallel()
	up := newRidUpstream(t)
	f := startFacade(t, up.URL)
	release := up.hold(t)
	first := make(chan error, 1)
	go func() {
		_, err := sendSMS(t.Context(), t, f, "grpc", ridCreds, smsRequest("k", "hello"))
		first <- err
	}()
	up.waitArrival(t)
	others := []*messagingv1.SendSMSRequest{smsRequest("k", "hello!"), {From: "12029822917", To: "12025550123", Message: "hello", RequestId: proto.String("k")}}
	check := func(when string) {
		for _, door := range []string{"grpc", "rest"} {
			for _, other := range others {
				ctx, cancel := context.WithTimeout(t.Context(), guard)
				_, err := sendSMS(ctx, t, f, door, ridCreds, other)
				cancel()
				wantReason(t, when+", over "+door, err, codes.FailedPrecondition, apiv1.ErrorReason_REQUEST_ID_REUSED)
			}
		}
	}
	check("under way")
	release()
	if err := <-first; err != nil {
		t.Fatalf("the first call: %v", err)
	}
	check("after")
	if n := up.calls.Load(); n != 1 {
		t.Errorf("Opentact saw %d requests, want 1", n)
	}
	shCheckMetrics(t, f, map[string]float64{`opentact_facade_idempotency_requests_total{result="conflict"}`: 8})
}

// TestRequestIDPerCredentials: the same request_id with other credentials
// is another key.
func TestRequestIDPerCredentials(t *testing.T) {
	t.Parallel()
	up := newRidUpstream(t)
	f := startFacade(t, up.URL)
	req := smsRequest("k", "hello")
	other := http.Header{"Authorization": {cfBasic}, "X-Auth-Token": {cfJWT + "x"}}
	a := mustSend(t, f, "grpc", ridCreds, req)
	b := mustSend(t, f, "grpc", other, req)
	if a == b || up.calls.Load() != 2 {
		t.Errorf("two credential sets answered %q and %q with %d requests; want two messages", a, b, up.calls.Load())
	}
	if got := mustSend(t, f, "rest", other, req); got != b {
		t.Errorf("a repeat with the second credentials answered %q, want %q", got, b)
	}
}

// clock is a settable time for the store's 24 hours.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestRequestIDWindow: a repeat within 24 hours gets the first answer;
// from 24 hours on, the request_id is new again.
func TestRequestIDWindow(t *testing.T) {
	t.Parallel()
	up := newRidUpstream(t)
	c := &clock{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	f := startFacade(t, up.URL, func(o *server.Options) { o.Now = c.Now })
	req := smsRequest("k", "hello")
	mustSend(t, f, "grpc", ridCreds, req)
	c.advance(24*time.Hour - time.Second)
	if got := mustSend(t, f, "grpc", ridCreds, req); got != "sms-1" {
		t.Errorf("a repeat just within 24 hours answered %q, want sms-1", got)
	}
	c.advance(time.Second)
	if got := mustSend(t, f, "grpc", ridCreds, req); got != "sms-2" {
		t.Errorf("a repeat after 24 hours answered %q, want a new message, sms-2", got)
	}
	if got := mustSend(t, f, "rest", ridCreds, req); got != "sms-2" {
		t.Errorf("a repeat of that answered %q, want sms-2", got)
	}
}

// TestRequestIDStoreBound: past --idempotency-max-entries, and past
// --idempotency-max-bytes, the least recently used outcome goes first,
// and its request_id is new again.
func TestRequestIDStoreBound(t *testing.T) {
	t.Parallel()
	// sends makes a call with each request_id in turn and returns how
	// many requests Opentact saw for them.
	sends := func(t *testing.T, f *facade, up *ridUpstream, ids ...string) int64 {
		t.Helper()
		before := up.calls.Load()
		for _, id := range ids {
			mustSend(t, f, "grpc", ridCreds, smsRequest(id, "hello"))
		}
		return up.calls.Load() - before
	}
	t.Run("entries", func(t *testing.T) {
		t.Parallel()
		up := newRidUpstream(t)
		f := startFacade(t, up.URL, func(o *server.Options) { o.IdempotencyMaxEntries = 2 })
		sends(t, f, up, "a", "b", "a") // a is now used last: b goes first
		sends(t, f, up, "c")
		if n := sends(t, f, up, "a", "c"); n != 0 {
			t.Errorf("repeats of the kept request_ids made %d requests, want 0", n)
		}
		if n := sends(t, f, up, "b"); n != 1 {
			t.Errorf("a repeat of the evicted request_id made %d requests, want 1", n)
		}
		if v := metric(t, f, "opentact_facade_idempotency_evictions_total"); v < 1 {
			t.Errorf("opentact_facade_idempotency_evictions_total = %v, want at least 1", v)
		}
	})
	t.Run("bytes", func(t *testing.T) {
		t.Parallel()
		up := newRidUpstream(t)
		// One answer and its overhead (1280 bytes) fit, two do not.
		f := startFacade(t, up.URL, func(o *server.Options) { o.IdempotencyMaxBytes = 2 * 1280 })
		sends(t, f, up, "a", "b")
		if n := sends(t, f, up, "b"); n != 0 {
			t.Errorf("a repeat of the kept request_id made %d requests, want 0", n)
		}
		if n := sends(t, f, up, "a"); n != 1 {
			t.Errorf("a repeat of the evicted request_id made %d requests, want 1", n)
		}
		if v := metric(t, f, "opentact_facade_idempotency_bytes"); v > 2*1280 {
			t.Errorf("opentact_facade_idempotency_bytes = %v, over the bound", v)
		}
	})
}

// TestRequestIDRefusedCallMayBeRetried: when Opentact refused the first
// call (a 4xx), or never got it, the same request_id may be sent again.
func TestRequestIDRefusedCallMayBeRetried(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		answer http.HandlerFunc
		code   codes.Code
		reason apiv1.ErrorReason
	}{
		{"402", opentactError(402, "Not enough account balance"), codes.FailedPrecondition, apiv1.ErrorReason_INSUFFICIENT_BALANCE},
		{"404", opentactError(404, "TNLease not found"), codes.NotFound, apiv1.ErrorReason_NOT_FOUND},
		{"400", opentactError(400, "Bad request"), codes.InvalidArgument, apiv1.ErrorReason_BAD_REQUEST},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := newRidUpstream(t)
			f := startFacade(t, up.URL)
			up.set(tc.answer)
			req := smsRequest("k", "hello")
			for _, door := range []string{"grpc", "rest"} {
				_, err := sendSMS(t.Context(), t, f, door, ridCreds, req)
				wantReason(t, "over "+door, err, tc.code, tc.reason)
			}
			up.set(nil)
			if got := mustSend(t, f, "grpc", ridCreds, req); got != "sms-3" {
				t.Errorf("the retry answered %q, want sms-3", got)
			}
			if n := up.calls.Load(); n != 3 {
				t.Errorf("Opentact saw %d requests, want 3: each refused call may be sent again", n)
			}
		})
	}
	t.Run("never sent", func(t *testing.T) {
		t.Parallel()
		f := startFacade(t, "http://"+closedAddr(t), func(o *server.Options) { o.Breaker = &upstream.BreakerPolicy{} })
		req := smsRequest("k", "hello")
		for _, door := range []string{"grpc", "rest", "grpc"} {
			_, err := sendSMS(t.Context(), t, f, door, ridCreds, req)
			wantReason(t, "over "+door, err, codes.Unavailable, apiv1.ErrorReason_UPSTREAM_UNREACHABLE)
		}
		shCheckMetrics(t, f, map[string]float64{`opentact_facade_idempotency_requests_total{result="first"}`: 3})
	})
}

// TestRequestIDUnknownOutcomeIsNotSentAgain: when the first call may have
// reached Opentact and no answer says it did not act (a 5xx, the
// connection lost once the request was written, no answer in time), a
// repeat is ABORTED, REQUEST_OUTCOME_UNKNOWN, and nothing is sent again.
func TestRequestIDUnknownOutcomeIsNotSentAgain(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		answer http.HandlerFunc
		hang   bool
	}{
		{name: "500", answer: opentactError(500, "Internal error")},
		{name: "503", answer: opentactError(503, "Maintenance")},
		{name: "cut off", answer: hijack(func(*bufio.ReadWriter) {})},
		{name: "200 not JSON", answer: answer(200, "<html>")},
		{name: "no answer in time", hang: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := newRidUpstream(t)
			f := startFacade(t, up.URL, func(o *server.Options) { o.Breaker = &upstream.BreakerPolicy{} })
			up.set(tc.answer)
			ctx := t.Context()
			if tc.hang {
				up.hold(t)
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
				defer cancel()
			}
			req := smsRequest("k", "hello")
			_, err := sendSMS(ctx, t, f, "grpc", ridCreds, req)
			if err == nil {
				t.Fatal("the first call succeeded")
			}
			up.set(nil)
			for _, door := range []string{"grpc", "rest"} {
				_, err := sendSMS(t.Context(), t, f, door, ridCreds, req)
				wantReason(t, "a repeat over "+door, err, codes.Aborted, apiv1.ErrorReason_REQUEST_OUTCOME_UNKNOWN)
			}
			if n := up.calls.Load(); n != 1 {
				t.Errorf("Opentact saw %d requests, want 1", n)
			}
			shCheckMetrics(t, f, map[string]float64{`opentact_facade_idempotency_requests_total{result="unknown"}`: 2})
		})
	}
}
