package server_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"

	apiv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/api/v1"
	"github.com/opentact-facade/opentact-facade/internal/faultupstream"
)

// credentialKinds is how many credential sets callerCredentials builds.
const credentialKinds = 8

// callerCredentials is caller n's credentials of kind kind: each credential
// kind alone, and two combinations. No two callers share a value.
func callerCredentials(kind, n int) http.Header {
	id := strconv.Itoa(n)
	ha1b := md5.Sum([]byte("user" + id + "@example.com:example.com:pw-" + id))
	switch kind % credentialKinds {
	case 0:
		return http.Header{"Authorization": {basic("user"+id+"@example.com", "pw-"+id)}}
	case 1:
		return http.Header{"Authorization": {"Bearer api-token-" + id}}
	case 2:
		return http.Header{"X-Auth-Token": {"eyJhbGciOiJIUzI1NiJ9.user" + id + ".sig"}}
	case 3:
		return http.Header{"X-Auth-Google-Token": {"ya29.google-" + id}}
	case 4:
		return http.Header{"X-Auth-Facebook-Token": {"EAAB-facebook-" + id}}
	case 5:
		return http.Header{"X-Auth-HA1B-Token": {hex.EncodeToString(ha1b[:])}} // Opentact's spelling
	case 6:
		return http.Header{"Authorization": {basic("user"+id+"@example.com", "pw-"+id)}, "X-Auth-Token": {"jwt-of-user" + id}}
	default:
		return http.Header{"X-Auth-Google-Token": {"ya29.google-" + id}, "X-Auth-Facebook-Token": {"EAAB-facebook-" + id}, "X-Auth-HA1B-Token": {hex.EncodeToString(ha1b[:])}}
	}
}

// TestConcurrentCallersGetTheirOwnProfile releases 300 callers at once,
// each with credentials of its own (every kind, and combinations), half
// over gRPC and half over REST, and checks that each gets the profile its
// own credentials name, never another caller's. Run with -race.
func TestConcurrentCallersGetTheirOwnProfile(t *testing.T) {
	t.Parallel()
	const callers = 300
	up := startFaultUpstream(t)
	f := startFacade(t, up.URL(), noBreaker)
	warmUp(t, f, up)
	tr := &http.Transport{MaxIdleConnsPerHost: callers}
	defer tr.CloseIdleConnections()
	rc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var ready, done sync.WaitGroup
	release := make(chan struct{})
	var seen sync.Map // email -> caller
	for i := range callers {
		h := callerCredentials(i, i)
		rest := (i/credentialKinds)%2 == 1
		ready.Add(1)
		done.Go(func() {
			ready.Done()
			<-release
			var o outcome
			if rest {
				var err error
				if o, err = restCall(ctx, rc, f, h); err != nil {
					t.Errorf("caller %d (rest): %v", i, err)
					return
				}
			} else {
				o = grpcCall(ctx, f, h)
			}
			if msg := wrongAnswer(o, h, codes.OK, "", rest); msg != "" {
				t.Errorf("caller %d (rest %v, credentials %d): %s", i, rest, i%credentialKinds, msg)
				return
			}
			if other, dup := seen.LoadOrStore(o.user.Email, i); dup {
				t.Errorf("callers %d and %v got the same profile %s", i, other, o.user.Email)
			}
		})
	}
	ready.Wait()
	close(release)
	done.Wait()
	if got := up.Requests(); got != callers {
		t.Errorf("the upstream saw %d requests, want %d", got, callers)
	}
}

// loadKind is one kind of call in TestLoad's mix.
type loadKind struct {
	fault    faultupstream.Fault // selected per call through X-Auth-Token; "" for the default (OK)
	permille int
	code     codes.Code
	reason   string
	requests int64 // the upstream sees at least
}

// loadMix is mostly successes, with every fault whose answer does not
// depend on timing or on other calls (not Flap, whose cycle other callers
// share, nor Hang or Delay). Connection-closing faults are rare: every
// closed connection leaves a loopback TIME_WAIT.
var loadMix = []loadKind{
	{"", 600, codes.OK, "", 1},
	{faultupstream.OK, 100, codes.OK, "", 1},
	{faultupstream.Unauthorized, 80, codes.Unauthenticated, apiv1.ErrorReason_UNAUTHORIZED.String(), 1},
	{faultupstream.BrokenJSON, 40, codes.Internal, apiv1.ErrorReason_UPSTREAM_MALFORMED_RESPONSE.String(), 1},
	{faultupstream.HTML200, 40, codes.Internal, apiv1.ErrorReason_UPSTREAM_MALFORMED_RESPONSE.String(), 1},
	{faultupstream.InternalError, 40, codes.Internal, apiv1.ErrorReason_UPSTREAM_INTERNAL_ERROR.String(), 1},
	{faultupstream.Unavailable, 40, codes.Unavailable, apiv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(), 3},
	{faultupstream.HTML, 20, codes.Unavailable, apiv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(), 3},
	{faultupstream.Redirect, 30, codes.Internal, apiv1.ErrorReason_UPSTREAM_REDIRECT.String(), 1},
	{faultupstream.Reset, 5, codes.Unavailable, apiv1.ErrorReason_UPSTREAM_UNREACHABLE.String(), 3},
	{faultupstream.Truncate, 5, codes.Unavailable, apiv1.ErrorReason_UPSTREAM_UNREACHABLE.String(), 3},
}

// loadCall is call n of the mix: its kind and its caller's credentials.
func loadCall(n int) (loadKind, http.Header) {
	slot := n * 7919 % 1000 // a permutation of each block of 1000 calls
	k := loadMix[len(loadMix)-1]
	for _, c := range loadMix {
		if slot < c.permille {
			k = c
			break
		}
		slot -= c.permille
	}
	if k.fault == "" {
		return k, callerCredentials(n, n)
	}
	h := http.Header{"X-Auth-Token": {"fault:" + string(k.fault) + ":user" + strconv.Itoa(n)}}
	if n%2 == 0 {
		h["Authorization"] = []string{basic("user"+strconv.Itoa(n)+"@example.com", "pw")}
	}
	return k, h
}

// TestLoad is a short load test on loopback: a few thousand calls from
// many goroutines, gRPC and REST mixed, each caller with credentials of
// its own, mostly successes and some of every deterministic fault. Every
// answer must be right: a success carries its own caller's profile, a
// fault exactly its code and reason. It is bounded in count and time, and
// afterwards no goroutine is left behind.
//
// Not parallel: its goroutine check compares with the goroutines before it
// started, and its throughput is its own.
func TestLoad(t *testing.T) {
	calls, workers := 3000, 96
	if testing.Short() {
		calls, workers = 600, 64
	}
	var sum int
	for _, k := range loadMix {
		sum += k.permille
	}
	if sum != 1000 {
		t.Fatalf("the mix adds up to %d‰", sum)
	}

	ignore := goleak.IgnoreCurrent()
	goroutinesBefore := runtime.NumGoroutine()
	up := faultupstream.Start()
	defer up.Close()
	f, stop := startStoppableFacade(t, up.URL(), noBreaker)
	tr := &http.Transport{MaxIdleConns: workers, MaxIdleConnsPerHost: workers}
	defer tr.CloseIdleConnections()
	rc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	const bound = 60 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()

	var (
		next, wrong, restCalls atomic.Int64
		minRequests            atomic.Int64
		mu                     sync.Mutex
		wrongs                 []string
		byCode                 = map[codes.Code]int{}
		peak                   atomic.Int64
	)
	report := func(n int, rest bool, msg string) {
		wrong.Add(1)
		mu.Lock()
		defer mu.Unlock()
		if len(wrongs) < 10 {
			wrongs = append(wrongs, fmt.Sprintf("call %d (rest %v): %s", n, rest, msg))
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				n := int(next.Add(1) - 1)
				if n >= calls || ctx.Err() != nil {
					return
				}
				if n%100 == 0 {
					if g := int64(runtime.NumGoroutine()); g > peak.Load() {
						peak.Store(g) // racy max, good enough for a log line
					}
				}
				k, h := loadCall(n)
				minRequests.Add(k.requests)
				rest := n%3 == 0
				var o outcome
				if rest {
					restCalls.Add(1)
					var err error
					if o, err = restCall(ctx, rc, f, h); err != nil {
						report(n, rest, err.Error())
						continue
					}
				} else {
					o = grpcCall(ctx, f, h)
				}
				mu.Lock()
				byCode[o.st.Code()]++
				mu.Unlock()
				if msg := wrongAnswer(o, h, k.code, k.reason, rest); msg != "" {
					report(n, rest, fmt.Sprintf("fault %q: %s", k.fault, msg))
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	if ctx.Err() != nil {
		t.Errorf("the load did not finish within %v", bound)
	}
	done := min(int(next.Load()), calls)
	t.Logf("%d calls (%d over REST) from %d goroutines in %v: %.0f calls/s; codes %v",
		done, restCalls.Load(), workers, elapsed.Round(time.Millisecond), float64(done)/elapsed.Seconds(), byCode)
	if n := wrong.Load(); n > 0 {
		t.Errorf("%d wrong answers, among them:\n%s", n, joinLines(wrongs))
	}
	// Go's transport repeats a request reset on a reused connection (see
	// TestGoRetriesResetsOnReusedConnections), so the upstream may see more
	// than the minimum; never fewer.
	requests, least := up.Requests(), minRequests.Load()
	t.Logf("the upstream saw %d requests, at least %d expected (%d more from Go's transport retrying resets on reused connections)",
		requests, least, requests-least)
	if requests < least {
		t.Errorf("the upstream saw %d requests, want at least %d", requests, least)
	}
	if hits := up.RedirectHits(); hits != 0 {
		t.Errorf("the redirect target saw %d requests, want none", hits)
	}

	// Everything stopped, no goroutine of the facade, its upstream client,
	// the fake upstream or the clients is left (goleak's TestMain checks
	// the whole package again at its end).
	if err := stop(); err != nil {
		t.Errorf("Serve: %v", err)
	}
	up.Close()
	tr.CloseIdleConnections()
	if err := goleak.Find(ignore); err != nil {
		t.Errorf("goroutines left behind by the load: %v", err)
	}
	t.Logf("goroutines: %d before, about %d at the peak, %d after", goroutinesBefore, peak.Load(), runtime.NumGoroutine())
}

func joinLines(ss []string) string {
	var out string
	for _, s := range ss {
		out += "  " + s + "\n"
	}
	return out
}
