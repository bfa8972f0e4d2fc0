package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	gwruntime "github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	apiv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/api/v1"
	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/apierr"
	"github.com/opentact-facade/opentact-facade/internal/faultupstream"
	"github.com/opentact-facade/opentact-facade/internal/server"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// This file drives every fault of internal/faultupstream through the
// facade, over gRPC and REST, and checks the code, the ErrorInfo, the time
// taken and how many requests the upstream saw. Its helpers are shared by
// breaker_test.go, cancel_test.go, load_test.go and session_logs_test.go.

// startFaultUpstream starts a fault-injecting upstream closed at the end of
// the test (after the facade, whose cleanup was registered later).
func startFaultUpstream(t *testing.T) *faultupstream.Server {
	t.Helper()
	up := faultupstream.Start()
	t.Cleanup(up.Close)
	return up
}

// noBreaker turns the circuit breaker off, for tests about single calls.
func noBreaker(o *server.Options) { o.Breaker = &upstream.BreakerPolicy{} }

// startFacadeServer is startFacade that also hands back the *server.Server
// (for BreakerState).
func startFacadeServer(t *testing.T, upstreamURL string, mods ...func(*server.Options)) (*facade, *server.Server) {
	t.Helper()
	logs := &syncBuffer{}
	opts := server.Options{
		GRPCAddr:      "127.0.0.1:0",
		HTTPAddr:      "127.0.0.1:0",
		Upstream:      upstreamURL,
		ShutdownGrace: 5 * time.Second,
		Logger:        slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, m := range mods {
		m(&opts)
	}
	s, err := server.New(opts)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	conn, err := grpc.NewClient(s.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		cancel()
		<-done
		t.Fatal(err)
	}
	tr := &http.Transport{}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		_ = conn.Close()
		tr.CloseIdleConnections()
	})
	return &facade{
		client:  authv1.NewAuthServiceClient(conn),
		conn:    conn,
		restURL: "http://" + s.HTTPAddr().String(),
		http:    &http.Client{Transport: tr, Timeout: 10 * time.Second},
		logs:    logs,
	}, s
}

// profile is what a caller needs to tell its own answer from another's.
type profile struct {
	Email string `json:"email"`
	UUID  string `json:"uuid"`
	Token string `json:"token"`
}

// profileFor is the profile faultupstream answers to credential headers h.
func profileFor(h http.Header) profile {
	return profile{faultupstream.EmailFor(h), faultupstream.UUIDFor(h), faultupstream.TokenFor(h)}
}

// outcome is the result of one GetAuth call, over gRPC or REST.
type outcome struct {
	st       *status.Status // codes.OK on success
	user     profile        // on success
	httpCode int            // REST only
	header   http.Header    // REST only
	elapsed  time.Duration
}

// toMetadata turns credential headers into gRPC metadata.
func toMetadata(h http.Header) metadata.MD {
	md := metadata.MD{}
	for k, vs := range h {
		md.Append(strings.ToLower(k), vs...)
	}
	return md
}

// grpcCall calls GetAuth through the generated stub with h as metadata.
func grpcCall(ctx context.Context, f *facade, h http.Header) outcome {
	start := time.Now()
	resp, err := f.client.GetAuth(metadata.NewOutgoingContext(ctx, toMetadata(h)), &authv1.GetAuthRequest{})
	o := outcome{st: status.Convert(err), elapsed: time.Since(start)}
	if err == nil {
		o.st = status.New(codes.OK, "")
		u := resp.GetUser()
		o.user = profile{u.GetEmail(), u.GetUuid(), u.GetToken()}
	}
	return o
}

// restCall calls GET /v1/auth with h through c. Its error is the client's
// (the request failed, or the answer is unreadable), never the facade's
// answer, which is in the outcome.
func restCall(ctx context.Context, c *http.Client, f *facade, h http.Header) (outcome, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.restURL+"/v1/auth", nil)
	if err != nil {
		return outcome{}, err
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return outcome{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	o := outcome{elapsed: time.Since(start), httpCode: resp.StatusCode, header: resp.Header}
	if err != nil {
		return o, err
	}
	if resp.StatusCode == http.StatusOK {
		var got struct {
			User profile `json:"user"`
		}
		if err := json.Unmarshal(body, &got); err != nil {
			return o, fmt.Errorf("200 body %q: %w", body, err)
		}
		o.st, o.user = status.New(codes.OK, ""), got.User
		return o, nil
	}
	var s spb.Status
	if err := protojson.Unmarshal(body, &s); err != nil {
		return o, fmt.Errorf("HTTP %d body %q is not a google.rpc.Status: %w", resp.StatusCode, body, err)
	}
	o.st = status.FromProto(&s)
	return o, nil
}

// grpcTimeout is a Grpc-Timeout header value for d, in milliseconds.
func grpcTimeout(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + "m" }

// retryInfo is the RetryInfo delay of st, 0 without one.
func retryInfo(st *status.Status) time.Duration {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			return ri.GetRetryDelay().AsDuration()
		}
	}
	return 0
}

// wrongAnswer says how o differs from what a caller with credentials h
// expects: code and ErrorInfo reason ("" for none), the caller's own
// profile on success, and over REST the HTTP status the gateway derives
// from the code. It returns "" when o is right.
func wrongAnswer(o outcome, h http.Header, code codes.Code, reason string, rest bool) string {
	if o.st == nil {
		return "no status"
	}
	if o.st.Code() != code {
		return fmt.Sprintf("code %v (%q), want %v", o.st.Code(), o.st.Message(), code)
	}
	if got := errorInfo(o.st).GetReason(); got != reason {
		return fmt.Sprintf("reason %q, want %q", got, reason)
	}
	if reason != "" && errorInfo(o.st).GetDomain() != apierr.Domain {
		return fmt.Sprintf("ErrorInfo domain %q, want %q", errorInfo(o.st).GetDomain(), apierr.Domain)
	}
	if rest {
		if want := gwruntime.HTTPStatusFromCode(code); o.httpCode != want {
			return fmt.Sprintf("HTTP status %d, want %d", o.httpCode, want)
		}
	}
	if code == codes.OK {
		if want := profileFor(h); o.user != want {
			return fmt.Sprintf("profile %+v, want the caller's own %+v", o.user, want)
		}
	}
	return ""
}

// warmUp makes a first call over gRPC and over REST without credentials:
// it opens the client connections and runs the facade's first-call setup
// (the gateway's in-memory connection, lazy initialisation), which would
// otherwise count in the first measured call, and never reaches the
// upstream, so that the facade's pool toward it stays empty.
func warmUp(t *testing.T, f *facade, up *faultupstream.Server) {
	t.Helper()
	if o := grpcCall(context.Background(), f, nil); wrongAnswer(o, nil, codes.Unauthenticated, apiv1.ErrorReason_CREDENTIALS_MISSING.String(), false) != "" {
		t.Fatalf("warm-up over gRPC: %v", o.st.Err())
	}
	o, err := restCall(context.Background(), f.http, f, nil)
	if err != nil {
		t.Fatalf("warm-up over REST: %v", err)
	}
	if msg := wrongAnswer(o, nil, codes.Unauthenticated, apiv1.ErrorReason_CREDENTIALS_MISSING.String(), true); msg != "" {
		t.Fatalf("warm-up over REST: %s", msg)
	}
	if n := up.Requests(); n != 0 {
		t.Fatalf("calls without credentials reached the upstream (%d requests)", n)
	}
}

// guard bounds a wait for something that must happen, only so that a
// failing test ends rather than hangs: a loaded machine may take seconds,
// and the behaviour under test is told apart by what happens, not by when.
const guard = 30 * time.Second

// waitFor polls cond every few milliseconds, for up to guard.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitDisconnects waits for the upstream to count n disconnects and
// returns how long that took. Its bound of 30s only keeps a failing test
// from hanging: callers make the facade's own bounds on a request far
// longer.
func waitDisconnects(t *testing.T, up *faultupstream.Server, n int64) time.Duration {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	if err := up.WaitDisconnects(ctx, n); err != nil {
		t.Fatalf("the upstream saw %d disconnects in %v, want %d: the facade left its request running", up.Disconnects(), guard, n)
	}
	return time.Since(start)
}

// TestFaults runs one row per fault of faultupstream, each against its own
// upstream and facade, first over gRPC and then over REST, and checks the
// code and ErrorInfo, the HTTP status, the time taken and the requests the
// upstream saw. The breaker is off (it has its own tests), so every row
// depends on its own calls alone.
//
// Every row's first request goes out on a fresh connection: a new facade
// has none pooled. Reset and Truncate close theirs, so every attempt of
// theirs dials anew too, and Go's transport never repeats a request on its
// own (it does for a reused connection that is reset; see
// TestGoRetriesResetsOnReusedConnections). The request counts are exact.
//
// Lower time bounds appear where the behaviour is to wait. The one upper
// bound tells a call passed on from one that waited 10s: outcomes, not
// the machine's speed, tell the rest apart (a loaded CI machine runs
// this with -race on two cores).
func TestFaults(t *testing.T) {
	t.Parallel()
	type row struct {
		name       string
		fault      faultupstream.Fault         // the upstream's fault for every request
		setup      func(*faultupstream.Server) // more settings of the upstream
		opts       func(*server.Options)       // the facade's options
		deadline   time.Duration               // the caller's; 0 for none
		code       codes.Code                  // the answer
		reason     string                      // ErrorInfo reason; "" for no ErrorInfo
		httpStatus string                      // ErrorInfo metadata httpStatus
		retryInfo  time.Duration               // RetryInfo, and Retry-After over REST
		requests   int64                       // the upstream sees per call
		minTime    time.Duration               // a call takes at least
		maxTime    time.Duration               // a call takes less, when set: only below a longer wait the row rules out
		disconnect bool                        // the upstream sees the facade go before it answered
	}
	delay := func(d time.Duration) func(*faultupstream.Server) {
		return func(up *faultupstream.Server) { up.SetDelay(d) }
	}
	retryAfter := func(d time.Duration) func(*faultupstream.Server) {
		return func(up *faultupstream.Server) { up.SetRetryAfter(d) }
	}
	rows := []row{
		{name: "ok", fault: faultupstream.OK, code: codes.OK, requests: 1},
		{name: "delay within the deadline", fault: faultupstream.Delay, setup: delay(300 * time.Millisecond),
			deadline: 5 * time.Second, code: codes.OK, requests: 1, minTime: 300 * time.Millisecond},
		{name: "delay beyond the caller's deadline", fault: faultupstream.Delay, setup: delay(time.Minute),
			deadline: 300 * time.Millisecond, code: codes.DeadlineExceeded, requests: 1,
			minTime: 250 * time.Millisecond, disconnect: true},
		{name: "hang until the caller's deadline", fault: faultupstream.Hang, deadline: 300 * time.Millisecond,
			code: codes.DeadlineExceeded, requests: 1, minTime: 250 * time.Millisecond, disconnect: true},
		{name: "hang until --upstream-timeout", fault: faultupstream.Hang,
			opts: func(o *server.Options) { o.UpstreamTimeout = 300 * time.Millisecond },
			code: codes.DeadlineExceeded, reason: apiv1.ErrorReason_UPSTREAM_TIMEOUT.String(), requests: 1,
			minTime: 250 * time.Millisecond, disconnect: true},
		{name: "reset", fault: faultupstream.Reset, code: codes.Unavailable, reason: apiv1.ErrorReason_UPSTREAM_UNREACHABLE.String(),
			requests: 3},
		{name: "truncate", fault: faultupstream.Truncate, code: codes.Unavailable, reason: apiv1.ErrorReason_UPSTREAM_UNREACHABLE.String(),
			requests: 3},
		{name: "huge (64 MiB)", fault: faultupstream.Huge, code: codes.Internal, reason: apiv1.ErrorReason_UPSTREAM_RESPONSE_TOO_LARGE.String(),
			httpStatus: "200", requests: 1, disconnect: true},
		// Headers are capped too (upstream.MaxResponseHeaderBytes): an 8 MiB
		// header block is refused as soon as the cap is passed.
		{name: "huge headers (8 MiB)", fault: faultupstream.HugeHeaders, code: codes.Internal, reason: apiv1.ErrorReason_UPSTREAM_RESPONSE_TOO_LARGE.String(),
			requests: 1},
		{name: "a body over a lowered --upstream-max-body", fault: faultupstream.OK, opts: func(o *server.Options) { o.UpstreamMaxBody = 256 },
			code: codes.Internal, reason: apiv1.ErrorReason_UPSTREAM_RESPONSE_TOO_LARGE.String(), httpStatus: "200", requests: 1},
		{name: "html 502", fault: faultupstream.HTML, code: codes.Unavailable, reason: apiv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(),
			httpStatus: "502", requests: 3},
		{name: "html 200", fault: faultupstream.HTML200, code: codes.Internal, reason: apiv1.ErrorReason_UPSTREAM_MALFORMED_RESPONSE.String(),
			httpStatus: "200", requests: 1},
		{name: "broken json", fault: faultupstream.BrokenJSON, code: codes.Internal, reason: apiv1.ErrorReason_UPSTREAM_MALFORMED_RESPONSE.String(),
			httpStatus: "200", requests: 1},
		{name: "redirect to another listener", fault: faultupstream.Redirect, code: codes.Internal, reason: apiv1.ErrorReason_UPSTREAM_REDIRECT.String(),
			httpStatus: "302", requests: 1},
		{name: "503 without Retry-After", fault: faultupstream.Unavailable, code: codes.Unavailable, reason: apiv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(),
			httpStatus: "503", requests: 3},
		// Retry-After 1s is within the 2s the policy honours: two waits of 1s.
		{name: "503 with Retry-After 1s", fault: faultupstream.Unavailable, setup: retryAfter(time.Second),
			code: codes.Unavailable, reason: apiv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(), httpStatus: "503", retryInfo: time.Second,
			requests: 3, minTime: 2 * time.Second},
		// Retry-After 2s, the most the policy honours, under a 3.9s
		// deadline: the second wait would end after the deadline, so it is
		// not started, and the last failure comes back (at about 2s), not
		// DeadlineExceeded at 3.9s. The second request has 1.9s.
		{name: "503 with Retry-After 2s and a 3.9s deadline", fault: faultupstream.Unavailable, setup: retryAfter(2 * time.Second),
			deadline: 3900 * time.Millisecond, code: codes.Unavailable, reason: apiv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(), httpStatus: "503",
			retryInfo: 2 * time.Second, requests: 2, minTime: 2 * time.Second},
		// Retry-After 10s is beyond what the policy waits: passed on, not
		// waited for.
		{name: "503 with Retry-After 10s", fault: faultupstream.Unavailable, setup: retryAfter(10 * time.Second),
			code: codes.Unavailable, reason: apiv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(), httpStatus: "503", retryInfo: 10 * time.Second,
			requests: 1, maxTime: 9 * time.Second},
		{name: "flap 503 then OK", fault: faultupstream.Flap, setup: func(up *faultupstream.Server) { up.SetFlap(1) },
			code: codes.OK, requests: 2},
		{name: "401", fault: faultupstream.Unauthorized, code: codes.Unauthenticated, reason: apiv1.ErrorReason_UNAUTHORIZED.String(),
			httpStatus: "401", requests: 1},
		{name: "500", fault: faultupstream.InternalError, code: codes.Internal, reason: apiv1.ErrorReason_UPSTREAM_INTERNAL_ERROR.String(),
			httpStatus: "500", requests: 1},
	}
	covered := map[faultupstream.Fault]bool{}
	for _, tc := range rows {
		covered[tc.fault] = true
	}
	for _, f := range faultupstream.Faults() {
		if !covered[f] {
			t.Errorf("no row for fault %q", f)
		}
	}

	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := startFaultUpstream(t)
			up.SetFault(tc.fault)
			if tc.setup != nil {
				tc.setup(up)
			}
			mods := []func(*server.Options){noBreaker}
			if tc.opts != nil {
				mods = append(mods, tc.opts)
			}
			f := startFacade(t, up.URL(), mods...)
			warmUp(t, f, up)
			h := http.Header{"Authorization": {basic(strings.ReplaceAll(tc.name, " ", "-")+"@example.com", "pw")}}

			var disconnects int64
			for i, via := range []string{"grpc", "rest"} {
				var o outcome
				if via == "grpc" {
					ctx := context.Background()
					if tc.deadline > 0 {
						var cancel context.CancelFunc
						ctx, cancel = context.WithTimeout(ctx, tc.deadline)
						defer cancel()
					}
					o = grpcCall(ctx, f, h)
				} else {
					rh := h.Clone()
					if tc.deadline > 0 {
						rh.Set("Grpc-Timeout", grpcTimeout(tc.deadline))
					}
					var err error
					if o, err = restCall(context.Background(), f.http, f, rh); err != nil {
						t.Fatalf("rest: %v", err)
					}
				}
				t.Logf("%s: %v in %v, %d requests", via, o.st.Code(), o.elapsed.Round(time.Millisecond), up.Requests())

				if msg := wrongAnswer(o, h, tc.code, tc.reason, via == "rest"); msg != "" {
					t.Errorf("%s: %s", via, msg)
				}
				if got := errorInfo(o.st).GetMetadata()["httpStatus"]; got != tc.httpStatus {
					t.Errorf("%s: ErrorInfo httpStatus %q, want %q", via, got, tc.httpStatus)
				}
				if got := retryInfo(o.st); got != tc.retryInfo {
					t.Errorf("%s: RetryInfo %v, want %v", via, got, tc.retryInfo)
				}
				if via == "rest" {
					want := ""
					if tc.retryInfo > 0 {
						want = strconv.Itoa(int(math.Ceil(tc.retryInfo.Seconds())))
					}
					if got := o.header.Get("Retry-After"); got != want {
						t.Errorf("rest: Retry-After %q, want %q", got, want)
					}
				}
				if o.elapsed < tc.minTime || tc.maxTime > 0 && o.elapsed >= tc.maxTime {
					t.Errorf("%s: took %v, want at least %v and less than %v (0: no bound)", via, o.elapsed, tc.minTime, tc.maxTime)
				}
				if got, want := up.Requests(), int64(i+1)*tc.requests; got != want {
					t.Errorf("%s: the upstream saw %d requests in all, want %d", via, got, want)
				}
				if got := up.RedirectHits(); got != 0 {
					t.Errorf("%s: the redirect target saw %d requests, want none", via, got)
				}
				if tc.disconnect {
					disconnects++
					waitDisconnects(t, up, disconnects)
				}
			}
			if !tc.disconnect && up.Disconnects() != 0 {
				t.Errorf("the upstream counted %d disconnects, want none", up.Disconnects())
			}
		})
	}
}

// TestHugeBodyDoesNotGrowMemory: a 64 MiB answer fails the call as soon as
// the 1 MiB cap is passed, and the facade allocates about the cap, not the
// body. The facade runs in this process, so runtime.MemStats measures it;
// the test is not parallel, so that no other test allocates meanwhile.
func TestHugeBodyDoesNotGrowMemory(t *testing.T) {
	up := startFaultUpstream(t)
	f := startFacade(t, up.URL(), noBreaker)
	h := http.Header{"X-Auth-Token": {"huge-memory"}}

	// Warm up: the connections, pools and buffers of a first call.
	if o := grpcCall(context.Background(), f, h); o.st.Code() != codes.OK {
		t.Fatalf("warm-up call: %v", o.st.Err())
	}
	up.SetFault(faultupstream.Huge)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	o := grpcCall(context.Background(), f, h)
	runtime.ReadMemStats(&after)

	if msg := wrongAnswer(o, h, codes.Internal, apiv1.ErrorReason_UPSTREAM_RESPONSE_TOO_LARGE.String(), false); msg != "" {
		t.Errorf("grpc: %s", msg)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("a %d MiB answer: %v, %.1f MiB allocated by the whole process during the call (cap %d MiB)",
		faultupstream.HugeBodySize>>20, o.elapsed.Round(time.Millisecond), float64(alloc)/(1<<20), upstream.DefaultMaxBodySize>>20)
	if alloc > 16<<20 {
		t.Errorf("%.1f MiB allocated during the call; want well below the %d MiB body (the facade must stop reading at the cap)",
			float64(alloc)/(1<<20), faultupstream.HugeBodySize>>20)
	}
	if up.Requests() != 2 {
		t.Errorf("the upstream saw %d requests, want 2 (warm-up and one attempt)", up.Requests())
	}
	waitDisconnects(t, up, 1) // the facade hung up rather than draining the rest
}

// TestNoReplayOfResetsOnReusedConnections: left to itself, Go's transport
// sends a GET whose reused keep-alive connection is reset before any
// answer again, on the next pooled connection, until it runs on a fresh
// one: one attempt of the facade's could reach Opentact once per idle
// pooled connection. The client makes its GETs non-replayable, so an
// attempt is one request, whatever the pool holds.
func TestNoReplayOfResetsOnReusedConnections(t *testing.T) {
	t.Parallel()
	up := startFaultUpstream(t)
	f := startFacade(t, up.URL(), noBreaker, func(o *server.Options) { o.UpstreamMaxAttempts = 1 })

	// k concurrent slow calls leave k idle connections in the facade's pool.
	const k = 4
	up.SetFault(faultupstream.Delay)
	up.SetDelay(200 * time.Millisecond)
	errs := make(chan error, k)
	for i := range k {
		go func() {
			errs <- grpcCall(context.Background(), f, http.Header{"X-Auth-Token": {"warm-" + strconv.Itoa(i)}}).st.Err()
		}()
	}
	for range k {
		if err := <-errs; err != nil {
			t.Fatalf("warm-up: %v", err)
		}
	}
	if up.Requests() != k {
		t.Fatalf("warm-up: %d requests, want %d", up.Requests(), k)
	}

	reset := http.Header{"X-Auth-Token": {"fault:reset:1"}}
	o := grpcCall(context.Background(), f, reset)
	if msg := wrongAnswer(o, reset, codes.Unavailable, apiv1.ErrorReason_UPSTREAM_UNREACHABLE.String(), false); msg != "" {
		t.Errorf("first reset call: %s", msg)
	}
	first := up.Requests() - k
	if first != 1 {
		t.Errorf("MaxAttempts 1, %d idle pooled connections: the first reset call made %d requests, want 1 (Go's transport must not replay it on the other pooled connections)", k, first)
	}

	before := up.Requests()
	o = grpcCall(context.Background(), f, reset)
	if msg := wrongAnswer(o, reset, codes.Unavailable, apiv1.ErrorReason_UPSTREAM_UNREACHABLE.String(), false); msg != "" {
		t.Errorf("second reset call: %s", msg)
	}
	if got := up.Requests() - before; got != 1 {
		t.Errorf("the second reset call, with the pool drained, made %d requests, want 1", got)
	}
}
