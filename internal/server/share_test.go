package server_test

// Request coalescing and the response cache, end to end: real listeners,
// the generated gRPC stub, the REST gateway over real HTTP, and an
// httptest upstream that holds each request until the test lets it go.

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
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

	spb "google.golang.org/genproto/googleapis/rpc/status"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/server"
)

// shUpstream stands in for Opentact. Requests are numbered from 1 in the
// order they arrive, and each number is sent on arrived; while the
// upstream holds, a request waits for release, and one whose connection
// goes first (r.Context().Done()) is reported on gone. It answers code
// with a profile derived from the request's credentials (shProfileFor),
// or Opentact's error envelope when code is not 200.
type shUpstream struct {
	rec      *recorder
	arrived  chan int
	gone     chan int
	released chan struct{}
	release  func()
	n        atomic.Int64
}

type shUpstreamOpts struct {
	hold  bool                       // hold each request until release
	code  int                        // 200 if 0
	token func(h http.Header) string // the payload's token; shProfileFor's if nil
}

func newShUpstream(t *testing.T, o shUpstreamOpts) *shUpstream {
	t.Helper()
	u := &shUpstream{arrived: make(chan int, 256), gone: make(chan int, 256), released: make(chan struct{})}
	u.release = sync.OnceFunc(func() { close(u.released) })
	if !o.hold {
		u.release()
	}
	u.rec = newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		n := int(u.n.Add(1))
		u.arrived <- n
		select {
		case <-u.released:
		case <-r.Context().Done():
			u.gone <- n
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if o.code != 0 && o.code != http.StatusOK {
			w.WriteHeader(o.code)
			_, _ = fmt.Fprintf(w, `{"success":false,"message":"Unauthorized","status":%d}`, o.code)
			return
		}
		p := shProfileFor(r.Header)
		if o.token != nil {
			p.Token = o.token(r.Header)
		}
		body, _ := json.Marshal(map[string]any{"success": true, "payload": map[string]any{
			"uuid": p.UUID, "email": p.Email, "token": p.Token, "role": "User",
		}})
		_, _ = w.Write(body)
	})
	t.Cleanup(u.release) // before the upstream closes: cleanups run last-in first-out
	return u
}

// waitArrival waits for the next request and returns its number.
func (u *shUpstream) waitArrival(t *testing.T) int {
	t.Helper()
	select {
	case n := <-u.arrived:
		return n
	case <-time.After(10 * time.Second):
		t.Fatalf("no request reached the upstream in 10s (%d so far)", u.rec.calls.Load())
		return 0
	}
}

// noArrival checks that no further request arrives for d.
func (u *shUpstream) noArrival(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case n := <-u.arrived:
		t.Fatalf("request %d reached the upstream; want the calls to share the one under way", n)
	case <-time.After(d):
	}
}

// shProfile is what the upstream answers for one credential set.
type shProfile struct{ UUID, Email, Token string }

// shProfileFor derives a profile from the credential headers
// Authorization and X-Auth-Token (either may be absent): two credential
// sets get two profiles.
func shProfileFor(h http.Header) shProfile {
	sum := sha256.Sum256([]byte(h.Get("Authorization") + "\x00" + h.Get("X-Auth-Token")))
	id := hex.EncodeToString(sum[:8])
	return shProfile{UUID: "uuid-" + id, Email: id + "@share.test", Token: "opaque-" + id}
}

func (p shProfile) check(u *authv1.User) error {
	if u.GetUuid() != p.UUID || u.GetEmail() != p.Email || u.GetToken() != p.Token {
		return fmt.Errorf("got user %s <%s> token %q, want %s <%s> token %q", u.GetUuid(), u.GetEmail(), u.GetToken(), p.UUID, p.Email, p.Token)
	}
	return nil
}

// shCreds is a credential set: an X-Auth-Token, and an Authorization
// header when auth is not empty.
func shCreds(token, auth string) http.Header {
	h := http.Header{"X-Auth-Token": {token}}
	if auth != "" {
		h.Set("Authorization", auth)
	}
	return h
}

// shGRPC calls GetAuth over gRPC with the credentials h, within ctx.
func shGRPC(ctx context.Context, f *facade, h http.Header) (*authv1.User, error) {
	md := metadata.MD{}
	for k, vs := range h {
		md.Append(strings.ToLower(k), vs...)
	}
	resp, err := f.client.GetAuth(metadata.NewOutgoingContext(ctx, md), &authv1.GetAuthRequest{})
	return resp.GetUser(), err
}

// shREST calls GET /v1/auth on the gateway with the credentials h, within
// ctx; an error answer comes back as its gRPC status.
func shREST(ctx context.Context, f *facade, h http.Header) (*authv1.User, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.restURL+"/v1/auth", nil)
	if err != nil {
		return nil, err
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	resp, err := f.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var s spb.Status
		if err := protojson.Unmarshal(body, &s); err != nil {
			return nil, fmt.Errorf("HTTP %d, body %q: %w", resp.StatusCode, body, err)
		}
		return nil, status.FromProto(&s).Err()
	}
	var out authv1.GetAuthResponse
	if err := protojson.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("body %q: %w", body, err)
	}
	return out.GetUser(), nil
}

// shCall calls over gRPC or REST.
func shCall(ctx context.Context, f *facade, rest bool, h http.Header) (*authv1.User, error) {
	if rest {
		return shREST(ctx, f, h)
	}
	return shGRPC(ctx, f, h)
}

// shMustCall makes one call with a 10s bound and fails the test on error.
func shMustCall(t *testing.T, f *facade, rest bool, h http.Header) *authv1.User {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u, err := shCall(ctx, f, rest, h)
	if err != nil {
		t.Fatalf("GetAuth (rest %v): %v", rest, err)
	}
	return u
}

// shMetrics scrapes /metrics in the Prometheus text format.
func shMetrics(t *testing.T, f *facade) string {
	t.Helper()
	resp, body := f.admin(t, "/metrics")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, body)
	}
	return string(body)
}

// shSample sums the samples of metric name whose labels contain every
// one of labels (each written as in the exposition, `k="v"`); ok is false
// when there is none.
func shSample(text, name string, labels ...string) (sum float64, ok bool) {
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		series, value, found := strings.Cut(line, " ")
		if !found || (series != name && !strings.HasPrefix(series, name+"{")) {
			continue
		}
		match := true
		for _, l := range labels {
			match = match && strings.Contains(series, l)
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err != nil {
			continue
		}
		sum, ok = sum+v, true
	}
	return sum, ok
}

// shCheckMetrics checks the values of series, given as name or
// name{k="v"} exactly as the exposition writes them.
func shCheckMetrics(t *testing.T, f *facade, want map[string]float64) {
	t.Helper()
	text := shMetrics(t, f)
	for series, w := range want {
		name, labels, _ := strings.Cut(series, "{")
		var ls []string
		if labels != "" {
			ls = strings.Split(strings.TrimSuffix(labels, "}"), ",")
		}
		got, ok := shSample(text, name, ls...)
		if !ok {
			t.Errorf("/metrics has no %s", series)
			continue
		}
		if got != w {
			t.Errorf("%s = %v, want %v", series, got, w)
		}
	}
}

// shWaitStarted waits until the facade has started n GetAuth calls in
// all (grpc_server_started_total, REST calls included: they are gRPC
// calls on the in-memory connection).
func shWaitStarted(t *testing.T, f *facade, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, _ := shSample(shMetrics(t, f), "grpc_server_started_total", `grpc_method="GetAuth"`)
		if int(got) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %v of %d calls started in 10s", got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// shAccessLines are the facade's "finished call" lines for GetAuth.
func shAccessLines(f *facade) []map[string]any {
	var out []map[string]any
	for _, l := range f.logs.lines("finished call") {
		if l["grpc.method"] == "GetAuth" {
			out = append(out, l)
		}
	}
	return out
}

// shWaitLine waits up to within for a GetAuth access line whose code is
// one of codes. A caller whose own deadline passed shows as
// DeadlineExceeded or, when its client's timer fired before the
// server's (the client then resets the stream), as Canceled.
func shWaitLine(t *testing.T, f *facade, within time.Duration, want ...codes.Code) map[string]any {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		for _, l := range shAccessLines(f) {
			for _, c := range want {
				if l["grpc.code"] == c.String() {
					return l
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no GetAuth call ended %v on the server within %v; lines: %v", want, within, shAccessLines(f))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// shResult is one concurrent call's outcome.
type shResult struct {
	user    *authv1.User
	err     error
	elapsed time.Duration
}

// shGo makes a call in its own goroutine; its outcome comes on the
// returned channel.
func shGo(ctx context.Context, f *facade, rest bool, h http.Header) <-chan shResult {
	ch := make(chan shResult, 1)
	go func() {
		start := time.Now()
		u, err := shCall(ctx, f, rest, h)
		ch <- shResult{u, err, time.Since(start)}
	}()
	return ch
}

func shRecv(t *testing.T, ch <-chan shResult) shResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(15 * time.Second):
		t.Fatal("a call did not end in 15s")
		return shResult{}
	}
}

func shCtx(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx, cancel
}

// shFacade starts a facade in front of u, and lets u's held requests go
// when the test ends before the facade's graceful stop waits on them.
func shFacade(t *testing.T, u *shUpstream, mods ...func(*server.Options)) *facade {
	t.Helper()
	f := startFacade(t, u.rec.URL, mods...)
	t.Cleanup(u.release)
	return f
}

func shCacheTTL(ttl time.Duration, maxEntries int) func(*server.Options) {
	return func(o *server.Options) { o.CacheTTL, o.CacheMaxEntries = ttl, maxEntries }
}

// ---------------------------------------------------------------------------
// Coalescing

// TestShareCoalescesIdenticalCalls: 50 identical calls, over gRPC and
// REST, while the first one's request is under way, make that one request
// and all get its answer.
func TestShareCoalescesIdenticalCalls(t *testing.T) {
	t.Parallel()
	up := newShUpstream(t, shUpstreamOpts{hold: true})
	f := shFacade(t, up)
	creds := shCreds("tok-coalesce", "")
	want := shProfileFor(creds)

	// The first call's deadline is the shared request's: the joiners'
	// must end no later (REST calls without one get the 10s default).
	ctx, _ := shCtx(t, 25*time.Second)
	first := shGo(ctx, f, false, creds)
	up.waitArrival(t)

	const joiners = 49
	jctx, _ := shCtx(t, 15*time.Second)
	results := make([]<-chan shResult, joiners)
	for i := range joiners {
		results[i] = shGo(jctx, f, i%2 == 1, creds)
	}
	shWaitStarted(t, f, 1+joiners)
	up.noArrival(t, 300*time.Millisecond)
	if n := up.rec.calls.Load(); n != 1 {
		t.Fatalf("the upstream saw %d requests while the first was held, want 1", n)
	}
	up.release()

	if r := shRecv(t, first); r.err != nil {
		t.Errorf("first call: %v", r.err)
	} else if err := want.check(r.user); err != nil {
		t.Errorf("first call: %v", err)
	}
	var firstUser *authv1.User
	for i, ch := range results {
		r := shRecv(t, ch)
		if r.err != nil {
			t.Errorf("joiner %d (rest %v): %v", i, i%2 == 1, r.err)
			continue
		}
		if err := want.check(r.user); err != nil {
			t.Errorf("joiner %d: %v", i, err)
		}
		if firstUser == nil {
			firstUser = r.user
		} else if !proto.Equal(r.user, firstUser) {
			t.Errorf("joiner %d got %v, another joiner %v", i, r.user, firstUser)
		}
	}
	if n := up.rec.calls.Load(); n != 1 {
		t.Errorf("the upstream saw %d requests, want 1", n)
	}
	shCheckMetrics(t, f, map[string]float64{"opentact_facade_shared_calls_total": joiners})

	var shared, own, rest, wantREST int
	for i := range joiners {
		if i%2 == 1 {
			wantREST++
		}
	}
	for _, l := range shAccessLines(f) {
		if l["grpc.code"] != "OK" {
			t.Errorf("access line with code %v: %v", l["grpc.code"], l)
		}
		if l["transport"] == "rest" {
			rest++
		}
		switch l["upstream.shared"] {
		case true:
			shared++
		case nil:
			own++
			if l["upstream.attempts"] != 1.0 || l["upstream.status"] != 200.0 {
				t.Errorf("the first call's line: %v, want upstream.attempts 1, upstream.status 200", l)
			}
		default:
			t.Errorf("upstream.shared = %v, want true or absent", l["upstream.shared"])
		}
		if l["cache"] != nil {
			t.Errorf("cache = %v without a cache", l["cache"])
		}
	}
	if shared != joiners || own != 1 || rest != wantREST {
		t.Errorf("%d access lines with upstream.shared, %d without, %d over REST; want %d, 1, %d", shared, own, rest, joiners, wantREST)
	}
}

// TestShareNeverAcrossCredentials: concurrent calls with distinct
// credentials each make their own request and get their own profile.
func TestShareNeverAcrossCredentials(t *testing.T) {
	t.Parallel()
	up := newShUpstream(t, shUpstreamOpts{hold: true})
	f := shFacade(t, up)

	const n = 30
	ctx, _ := shCtx(t, 20*time.Second)
	creds := make([]http.Header, n)
	results := make([]<-chan shResult, n)
	for i := range n {
		creds[i] = shCreds(fmt.Sprintf("tok-distinct-%d", i), "")
		results[i] = shGo(ctx, f, i%3 == 0, creds[i])
	}
	for range n {
		up.waitArrival(t)
	}
	up.release()
	for i, ch := range results {
		r := shRecv(t, ch)
		if r.err != nil {
			t.Errorf("call %d: %v", i, r.err)
			continue
		}
		if err := shProfileFor(creds[i]).check(r.user); err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
	if got := up.rec.calls.Load(); got != n {
		t.Errorf("the upstream saw %d requests, want %d", got, n)
	}
	shCheckMetrics(t, f, map[string]float64{"opentact_facade_shared_calls_total": 0})
}

// TestShareNeverAcrossCredentialSets: the same X-Auth-Token, alone and
// with an Authorization header, is two credential sets.
func TestShareNeverAcrossCredentialSets(t *testing.T) {
	t.Parallel()
	up := newShUpstream(t, shUpstreamOpts{hold: true})
	f := shFacade(t, up)

	alone := shCreds("tok-set", "")
	both := shCreds("tok-set", basic("set@example.com", "pw"))
	ctx, _ := shCtx(t, 20*time.Second)
	a := shGo(ctx, f, false, alone)
	up.waitArrival(t)
	b := shGo(ctx, f, true, both)
	up.waitArrival(t)
	up.release()
	if r := shRecv(t, a); r.err != nil {
		t.Errorf("X-Auth-Token alone: %v", r.err)
	} else if err := shProfileFor(alone).check(r.user); err != nil {
		t.Errorf("X-Auth-Token alone: %v", err)
	}
	if r := shRecv(t, b); r.err != nil {
		t.Errorf("X-Auth-Token and Authorization: %v", r.err)
	} else if err := shProfileFor(both).check(r.user); err != nil {
		t.Errorf("X-Auth-Token and Authorization: %v", err)
	}
	if got := up.rec.calls.Load(); got != 2 {
		t.Errorf("the upstream saw %d requests, want 2", got)
	}
}

// TestShareSurvivesOneCallerCancelling: the caller that started the
// shared request cancels; the request goes on for the one still waiting.
func TestShareSurvivesOneCallerCancelling(t *testing.T) {
	t.Parallel()
	up := newShUpstream(t, shUpstreamOpts{hold: true})
	f := shFacade(t, up)
	creds := shCreds("tok-cancel-one", "")

	actx, cancelA := shCtx(t, 20*time.Second)
	a := shGo(actx, f, false, creds)
	up.waitArrival(t)
	bctx, _ := shCtx(t, 10*time.Second)
	b := shGo(bctx, f, false, creds)
	shWaitStarted(t, f, 2)
	time.Sleep(100 * time.Millisecond) // B from started to joined

	cancelA()
	if r := shRecv(t, a); status.Code(r.err) != codes.Canceled {
		t.Errorf("A: %v, want Canceled", r.err)
	}
	select {
	case n := <-up.gone:
		t.Fatalf("request %d was cancelled with A, while B still waits on it", n)
	case <-time.After(300 * time.Millisecond):
	}
	up.release()
	if r := shRecv(t, b); r.err != nil {
		t.Errorf("B: %v", r.err)
	} else if err := shProfileFor(creds).check(r.user); err != nil {
		t.Errorf("B: %v", err)
	}
	if got := up.rec.calls.Load(); got != 1 {
		t.Errorf("the upstream saw %d requests, want 1", got)
	}
}

// TestShareCancelledWhenLastCallerLeaves: when every caller waiting on a
// shared request has gone, the upstream sees its request go, well before
// any bound of the facade's or the callers' (an hour) would end it, and a
// later identical call makes a new request rather than join the dying
// one.
func TestShareCancelledWhenLastCallerLeaves(t *testing.T) {
	t.Parallel()
	for _, order := range []string{"first leaves first", "joiner leaves first"} {
		t.Run(order, func(t *testing.T) {
			t.Parallel()
			up := newShUpstream(t, shUpstreamOpts{hold: true})
			f := shFacade(t, up, func(o *server.Options) { o.UpstreamTimeout, o.MaxCallTimeout = time.Hour, time.Hour })
			creds := shCreds("tok-cancel-all", "")

			actx, cancelA := shCtx(t, time.Hour)
			a := shGo(actx, f, false, creds)
			req := up.waitArrival(t)
			bctx, cancelB := shCtx(t, time.Hour)
			b := shGo(bctx, f, true, creds)
			shWaitStarted(t, f, 2)
			time.Sleep(100 * time.Millisecond)

			if order == "first leaves first" {
				cancelA()
				shRecv(t, a)
				cancelB()
				shRecv(t, b)
			} else {
				cancelB()
				shRecv(t, b)
				cancelA()
				shRecv(t, a)
			}
			select {
			case n := <-up.gone:
				if n != req {
					t.Fatalf("request %d went, want %d", n, req)
				}
			case <-time.After(guard):
				t.Fatalf("the upstream request outlived every caller by %v", guard)
			}
			if got := up.rec.calls.Load(); got != 1 {
				t.Errorf("the upstream saw %d requests, want 1", got)
			}

			cctx, _ := shCtx(t, 10*time.Second)
			c := shGo(cctx, f, false, creds)
			up.waitArrival(t)
			up.release()
			if r := shRecv(t, c); r.err != nil {
				t.Errorf("a call after both left: %v", r.err)
			}
		})
	}
}

// TestShareJoinerKeepsOwnDeadline: a joiner with a short deadline ends at
// it, on the server too; the shared request goes on for the caller with
// time left.
func TestShareJoinerKeepsOwnDeadline(t *testing.T) {
	t.Parallel()
	up := newShUpstream(t, shUpstreamOpts{hold: true})
	// A's request outlasts every wait below.
	f := shFacade(t, up, func(o *server.Options) { o.UpstreamTimeout, o.MaxCallTimeout = time.Hour, time.Hour })
	creds := shCreds("tok-own-deadline", "")

	actx, _ := shCtx(t, time.Hour)
	a := shGo(actx, f, false, creds)
	up.waitArrival(t)

	bctx, _ := shCtx(t, 300*time.Millisecond)
	b := shGo(bctx, f, false, creds)
	r := shRecv(t, b)
	if status.Code(r.err) != codes.DeadlineExceeded {
		t.Errorf("B: %v, want DeadlineExceeded", r.err)
	}
	// The client gives up at its deadline whatever the server does: the
	// server's access line, written while A's request is still held,
	// says that the server let B go without waiting for it.
	line := shWaitLine(t, f, guard, codes.DeadlineExceeded, codes.Canceled)
	if line["upstream.shared"] != true {
		t.Errorf("B's line %v, want upstream.shared (B joined A's request)", line)
	}
	select {
	case n := <-up.gone:
		t.Fatalf("request %d went with B, while A still waits on it", n)
	default:
	}

	up.release()
	if r := shRecv(t, a); r.err != nil {
		t.Errorf("A: %v", r.err)
	} else if err := shProfileFor(creds).check(r.user); err != nil {
		t.Errorf("A: %v", err)
	}
	if got := up.rec.calls.Load(); got != 1 {
		t.Errorf("the upstream saw %d requests, want 1", got)
	}
}

// TestShareJoinNeedsCompatibleDeadline: a caller with more time than the
// shared request has does not join it: it makes its own request, which
// outlives the first caller's deadline.
func TestShareJoinNeedsCompatibleDeadline(t *testing.T) {
	t.Parallel()
	up := newShUpstream(t, shUpstreamOpts{hold: true})
	f := shFacade(t, up)
	creds := shCreds("tok-join-deadline", "")

	// A's deadline is short, but long enough for B to start while A's
	// request is surely still under way.
	actx, _ := shCtx(t, time.Second)
	a := shGo(actx, f, false, creds)
	reqA := up.waitArrival(t)
	bctx, _ := shCtx(t, 10*time.Second)
	b := shGo(bctx, f, true, creds)
	reqB := up.waitArrival(t)
	select {
	case n := <-up.gone:
		t.Fatalf("request %d went before B's arrived: A's deadline was too short for this test", n)
	default:
	}

	if r := shRecv(t, a); status.Code(r.err) != codes.DeadlineExceeded {
		t.Errorf("A: %v, want DeadlineExceeded", r.err)
	}
	shWaitLine(t, f, 2*time.Second, codes.DeadlineExceeded, codes.Canceled)
	select {
	case n := <-up.gone:
		if n != reqA {
			t.Errorf("request %d went at A's deadline, want A's own, %d", n, reqA)
		}
	case <-time.After(2 * time.Second):
		t.Errorf("A's request %d outlived A's deadline by 2s", reqA)
	}

	up.release()
	if r := shRecv(t, b); r.err != nil {
		t.Errorf("B: %v", r.err)
	} else if err := shProfileFor(creds).check(r.user); err != nil {
		t.Errorf("B: %v", err)
	}
	if got := up.rec.calls.Load(); got != 2 || reqB != 2 {
		t.Errorf("the upstream saw %d requests, want 2", got)
	}
	shCheckMetrics(t, f, map[string]float64{"opentact_facade_shared_calls_total": 0})
}

// TestShareErrorsSharedNeverCached: an error answer reaches every caller
// that shared its request, and is never kept by the cache.
func TestShareErrorsSharedNeverCached(t *testing.T) {
	t.Parallel()
	t.Run("shared", func(t *testing.T) {
		t.Parallel()
		up := newShUpstream(t, shUpstreamOpts{hold: true, code: http.StatusUnauthorized})
		f := shFacade(t, up, shCacheTTL(time.Minute, 0))
		creds := shCreds("tok-401-shared", "")

		const n = 8
		ctx, _ := shCtx(t, 20*time.Second)
		results := []<-chan shResult{shGo(ctx, f, false, creds)}
		up.waitArrival(t)
		jctx, _ := shCtx(t, 10*time.Second)
		for i := 1; i < n; i++ {
			results = append(results, shGo(jctx, f, i%2 == 1, creds))
		}
		shWaitStarted(t, f, n)
		up.noArrival(t, 200*time.Millisecond)
		up.release()
		for i, ch := range results {
			if r := shRecv(t, ch); status.Code(r.err) != codes.Unauthenticated {
				t.Errorf("call %d: %v, want Unauthenticated", i, r.err)
			}
		}
		if got := up.rec.calls.Load(); got != 1 {
			t.Errorf("the upstream saw %d requests, want 1", got)
		}
		shCheckMetrics(t, f, map[string]float64{
			"opentact_facade_shared_calls_total": n - 1,
			"opentact_facade_cache_entries":      0,
		})
	})
	t.Run("not cached", func(t *testing.T) {
		t.Parallel()
		up := newShUpstream(t, shUpstreamOpts{code: http.StatusUnauthorized})
		f := shFacade(t, up, shCacheTTL(time.Minute, 0))
		creds := shCreds("tok-401-cache", "")
		for i, rest := range []bool{false, true} {
			ctx, _ := shCtx(t, 10*time.Second)
			if _, err := shCall(ctx, f, rest, creds); status.Code(err) != codes.Unauthenticated {
				t.Errorf("call %d: %v, want Unauthenticated", i, err)
			}
		}
		if got := up.rec.calls.Load(); got != 2 {
			t.Errorf("the upstream saw %d requests, want 2 (an error is never cached)", got)
		}
		shCheckMetrics(t, f, map[string]float64{
			`opentact_facade_cache_requests_total{result="hit"}`:  0,
			`opentact_facade_cache_requests_total{result="miss"}`: 2,
			"opentact_facade_cache_entries":                       0,
		})
	})
}

// ---------------------------------------------------------------------------
// The response cache

// shJWT is a JWT-shaped token whose payload has exp; header and signature
// are arbitrary.
func shJWT(exp time.Time) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." +
		enc(fmt.Appendf(nil, `{"uuid":"u","exp":%d}`, exp.Unix())) + "." + enc([]byte("not-a-signature"))
}

func TestCacheHits(t *testing.T) {
	t.Parallel()
	up := newShUpstream(t, shUpstreamOpts{})
	f := shFacade(t, up, shCacheTTL(time.Minute, 0))
	c1, c2 := shCreds("tok-cache-1", ""), shCreds("tok-cache-2", "")

	if err := shProfileFor(c1).check(shMustCall(t, f, false, c1)); err != nil {
		t.Errorf("first call: %v", err)
	}
	if err := shProfileFor(c1).check(shMustCall(t, f, true, c1)); err != nil {
		t.Errorf("second call (REST): %v", err)
	}
	if got := up.rec.calls.Load(); got != 1 {
		t.Errorf("the upstream saw %d requests for two identical calls, want 1", got)
	}
	shCheckMetrics(t, f, map[string]float64{
		`opentact_facade_cache_requests_total{result="hit"}`:  1,
		`opentact_facade_cache_requests_total{result="miss"}`: 1,
		"opentact_facade_cache_entries":                       1,
		"opentact_facade_cache_evictions_total":               0,
		"opentact_facade_shared_calls_total":                  0,
	})
	lines := shAccessLines(f)
	if len(lines) != 2 {
		t.Fatalf("%d access lines, want 2", len(lines))
	}
	if lines[0]["cache"] != nil || lines[0]["upstream.attempts"] != 1.0 {
		t.Errorf("the first call's line: %v, want upstream.attempts 1 and no cache field", lines[0])
	}
	if lines[1]["cache"] != "hit" || lines[1]["grpc.code"] != "OK" {
		t.Errorf("the second call's line: %v, want cache hit", lines[1])
	}
	for k := range lines[1] {
		if strings.HasPrefix(k, "upstream.") {
			t.Errorf("the cache hit's line has %s=%v", k, lines[1][k])
		}
	}

	// Other credentials: an entry of their own, and each caller only ever
	// its own profile.
	if err := shProfileFor(c2).check(shMustCall(t, f, false, c2)); err != nil {
		t.Errorf("other credentials: %v", err)
	}
	for i := range 4 {
		c := []http.Header{c1, c2}[i%2]
		if err := shProfileFor(c).check(shMustCall(t, f, i >= 2, c)); err != nil {
			t.Errorf("cached call %d: %v", i, err)
		}
	}
	if got := up.rec.calls.Load(); got != 2 {
		t.Errorf("the upstream saw %d requests, want 2", got)
	}
	shCheckMetrics(t, f, map[string]float64{
		`opentact_facade_cache_requests_total{result="hit"}`:  5,
		`opentact_facade_cache_requests_total{result="miss"}`: 2,
		"opentact_facade_cache_entries":                       2,
	})
}

func TestCacheTTL(t *testing.T) {
	t.Parallel()
	up := newShUpstream(t, shUpstreamOpts{})
	f := shFacade(t, up, shCacheTTL(300*time.Millisecond, 0))
	creds := shCreds("tok-ttl", "")
	shMustCall(t, f, false, creds)
	time.Sleep(500 * time.Millisecond)
	if err := shProfileFor(creds).check(shMustCall(t, f, false, creds)); err != nil {
		t.Error(err)
	}
	if got := up.rec.calls.Load(); got != 2 {
		t.Errorf("the upstream saw %d requests, want 2 (the answer outlived its TTL)", got)
	}
	// An entry that ran out was not pushed out of a full cache.
	shCheckMetrics(t, f, map[string]float64{
		`opentact_facade_cache_requests_total{result="hit"}`:  0,
		`opentact_facade_cache_requests_total{result="miss"}`: 2,
		"opentact_facade_cache_evictions_total":               0,
		"opentact_facade_cache_entries":                       1,
	})
}

// TestCacheJWTExpiry: an answer is never served within 5s of its JWT's
// exp, whatever the TTL.
func TestCacheJWTExpiry(t *testing.T) {
	t.Parallel()
	t.Run("expiring", func(t *testing.T) {
		t.Parallel()
		var issued atomic.Int64 // when the first token was made
		up := newShUpstream(t, shUpstreamOpts{token: func(http.Header) string {
			now := time.Now()
			issued.CompareAndSwap(0, now.UnixNano())
			return shJWT(now.Add(7 * time.Second))
		}})
		f := shFacade(t, up, shCacheTTL(time.Minute, 0))
		creds := shCreds("tok-jwt-exp", "")
		first := shMustCall(t, f, false, creds)
		if second := shMustCall(t, f, true, creds); !proto.Equal(first, second) {
			t.Errorf("second call got %v, want the cached %v", second, first)
		}
		if got := up.rec.calls.Load(); got != 1 {
			t.Errorf("the upstream saw %d requests for a call right after, want 1 (a cache hit)", got)
		}
		// exp is a whole second: the entry ends within (1s, 2s] of the
		// first answer.
		time.Sleep(time.Until(time.Unix(0, issued.Load()).Add(2500 * time.Millisecond)))
		if third := shMustCall(t, f, false, creds); proto.Equal(first, third) {
			t.Errorf("a call 2.5s later got the answer whose JWT expires in under 5s")
		}
		if got := up.rec.calls.Load(); got != 2 {
			t.Errorf("the upstream saw %d requests, want 2", got)
		}
		shCheckMetrics(t, f, map[string]float64{
			`opentact_facade_cache_requests_total{result="hit"}`:  1,
			`opentact_facade_cache_requests_total{result="miss"}`: 2,
		})
	})
	for name, ttl := range map[string]time.Duration{"expired": -time.Minute, "expiring within 5s": 3 * time.Second} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			up := newShUpstream(t, shUpstreamOpts{token: func(http.Header) string { return shJWT(time.Now().Add(ttl)) }})
			f := shFacade(t, up, shCacheTTL(time.Minute, 0))
			creds := shCreds("tok-jwt-"+name, "")
			shMustCall(t, f, false, creds)
			shMustCall(t, f, false, creds)
			if got := up.rec.calls.Load(); got != 2 {
				t.Errorf("the upstream saw %d requests, want 2 (never cached)", got)
			}
			shCheckMetrics(t, f, map[string]float64{"opentact_facade_cache_entries": 0})
		})
	}
}

// TestCacheLRU: the cache holds CacheMaxEntries answers, the least
// recently used out first.
func TestCacheLRU(t *testing.T) {
	t.Parallel()
	up := newShUpstream(t, shUpstreamOpts{})
	f := shFacade(t, up, shCacheTTL(time.Minute, 2))
	u := func(i int) http.Header { return shCreds(fmt.Sprintf("tok-lru-u%d", i), "") }
	for _, i := range []int{1, 2, 3, 1} {
		if err := shProfileFor(u(i)).check(shMustCall(t, f, false, u(i))); err != nil {
			t.Errorf("u%d: %v", i, err)
		}
	}
	if got := up.rec.calls.Load(); got != 4 {
		t.Errorf("the upstream saw %d requests for u1, u2, u3, u1; want 4 (u1 evicted)", got)
	}
	// u1 pushed u2 out in turn; u3 is still there.
	if err := shProfileFor(u(3)).check(shMustCall(t, f, true, u(3))); err != nil {
		t.Errorf("u3: %v", err)
	}
	if got := up.rec.calls.Load(); got != 4 {
		t.Errorf("the upstream saw %d requests, want 4 (u3 a hit)", got)
	}
	shCheckMetrics(t, f, map[string]float64{
		`opentact_facade_cache_requests_total{result="hit"}`:  1,
		`opentact_facade_cache_requests_total{result="miss"}`: 4,
		"opentact_facade_cache_evictions_total":               2,
		"opentact_facade_cache_entries":                       2,
	})
}

// TestCacheOffByDefault: without CacheTTL nothing is cached and there is
// no cache metric.
func TestCacheOffByDefault(t *testing.T) {
	t.Parallel()
	up := newShUpstream(t, shUpstreamOpts{})
	f := shFacade(t, up)
	creds := shCreds("tok-no-cache", "")
	shMustCall(t, f, false, creds)
	shMustCall(t, f, true, creds)
	if got := up.rec.calls.Load(); got != 2 {
		t.Errorf("the upstream saw %d requests, want 2", got)
	}
	text := shMetrics(t, f)
	if strings.Contains(text, "opentact_facade_cache_") {
		t.Errorf("/metrics has cache series without a cache:\n%s", shGrep(text, "opentact_facade_cache_"))
	}
	if _, ok := shSample(text, "opentact_facade_shared_calls_total"); !ok {
		t.Error("/metrics has no opentact_facade_shared_calls_total")
	}
	for _, l := range shAccessLines(f) {
		if l["cache"] != nil {
			t.Errorf("access line with cache=%v without a cache", l["cache"])
		}
	}
}

func shGrep(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
