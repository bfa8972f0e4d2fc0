package server_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/opentact-facade/opentact-facade/internal/faultupstream"
	"github.com/opentact-facade/opentact-facade/internal/server"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// secretMarker is in every secret value the session sends, so that a
// fragment of one in the logs shows too, not only a whole one.
const secretMarker = "S3cr3t"

// secretBook hands out secret values and remembers every one, with the
// forms they travel in.
type secretBook struct {
	mu      sync.Mutex
	n       int
	secrets []string
}

// value is a new secret value holding secretMarker.
func (b *secretBook) value(kind string) string {
	b.mu.Lock()
	b.n++
	v := fmt.Sprintf("%s-%s-%04d-x9", kind, secretMarker, b.n)
	b.mu.Unlock()
	b.add(v)
	return v
}

func (b *secretBook) add(ss ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range ss {
		if s != "" {
			b.secrets = append(b.secrets, s)
		}
	}
}

// basic is a Basic header with a secret password; the password, the
// email:password pair, its base64 and the whole header are all secrets.
func (b *secretBook) basic() string {
	b.mu.Lock()
	b.n++
	email := fmt.Sprintf("user-%04d@example.com", b.n) // an address, not a secret
	b.mu.Unlock()
	password := b.value("password")
	h := basic(email, password)
	b.add(email+":"+password, strings.TrimPrefix(h, "Basic "), h)
	return h
}

// credentials is a set of secret credentials of the given kind (0 to 5:
// Basic, Bearer, X-Auth-Token, Google, Facebook, HA1B).
func (b *secretBook) credentials(kind int) http.Header {
	switch kind % 6 {
	case 0:
		return http.Header{"Authorization": {b.basic()}}
	case 1:
		tok := b.value("bearer")
		b.add("Bearer " + tok)
		return http.Header{"Authorization": {"Bearer " + tok}}
	case 2:
		return http.Header{"X-Auth-Token": {b.value("jwt")}}
	case 3:
		return http.Header{"X-Auth-Google-Token": {b.value("google")}}
	case 4:
		return http.Header{"X-Auth-Facebook-Token": {b.value("facebook")}}
	default:
		return http.Header{"X-Auth-HA1B-Token": {b.value("ha1b")}}
	}
}

// TestFullSessionLogsHoldNoSecrets runs a full session through facades
// logging at the most verbose level there is (far below Debug), over gRPC
// and REST: a success with every credential kind, every fault of
// faultupstream (each error path: 401, 500, 503 retried, HTML, broken JSON,
// too large, redirect, reset, truncate, hang and delay past a deadline,
// flap), an open circuit, malformed and missing credentials. Every
// credential value sent is a secret, and so is every JWT returned; none may
// appear in the logs, whole, base64-encoded, or in part.
func TestFullSessionLogsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.Level(-1 << 20), AddSource: true}))
	verbose := func(o *server.Options) { o.Logger = logger }
	up := startFaultUpstream(t)
	f := startFacade(t, up.URL(), noBreaker, verbose)
	// A second facade whose breaker opens after one failure, for the
	// circuit-open path.
	g := startFacade(t, up.URL(), verbose, func(o *server.Options) {
		o.Breaker = &upstream.BreakerPolicy{Failures: 1, OpenFor: time.Minute}
		o.UpstreamMaxAttempts = 1
	})
	book := &secretBook{}
	ctx := context.Background()
	var calls int

	// call makes one call over gRPC and one over REST with h (a fresh
	// value of the same kinds is not needed: the same secret twice is
	// fine), checks the code, and records returned tokens as secrets.
	call := func(what string, fc *facade, h http.Header, deadline time.Duration, code codes.Code) {
		t.Helper()
		gctx, cancel := ctx, context.CancelFunc(func() {})
		if deadline > 0 {
			gctx, cancel = context.WithTimeout(ctx, deadline)
		}
		o := grpcCall(gctx, fc, h)
		cancel()
		calls++
		if o.st.Code() != code {
			t.Errorf("%s over gRPC: %v (%s), want %v", what, o.st.Code(), o.st.Message(), code)
		}
		book.add(o.user.Token, faultupstream.TokenFor(h))

		rh := h.Clone()
		if deadline > 0 {
			rh.Set("Grpc-Timeout", grpcTimeout(deadline))
		}
		ro, err := restCall(ctx, fc.http, fc, rh)
		calls++
		if err != nil {
			t.Errorf("%s over REST: %v", what, err)
			return
		}
		if ro.st.Code() != code {
			t.Errorf("%s over REST: %v (%s), want %v", what, ro.st.Code(), ro.st.Message(), code)
		}
		book.add(ro.user.Token)
	}

	// Success with every credential kind, alone and all together.
	all := http.Header{}
	for kind := range 6 {
		h := book.credentials(kind)
		call(fmt.Sprintf("credential kind %d", kind), f, h, 0, codes.OK)
		for k, v := range book.credentials(kind) {
			if k != "X-Auth-Token" {
				all[k] = v
			}
		}
	}
	call("every kind at once", f, all, 0, codes.OK)

	// Every fault, selected through a secret X-Auth-Token, alongside a
	// secret credential of another kind.
	faults := []struct {
		fault    faultupstream.Fault
		deadline time.Duration
		code     codes.Code
	}{
		{faultupstream.OK, 0, codes.OK},
		{faultupstream.Delay, 200 * time.Millisecond, codes.DeadlineExceeded}, // 1s delay by default
		{faultupstream.Hang, 200 * time.Millisecond, codes.DeadlineExceeded},
		{faultupstream.Reset, 0, codes.Unavailable},
		{faultupstream.Truncate, 0, codes.Unavailable},
		{faultupstream.Huge, 0, codes.Internal},
		{faultupstream.HugeHeaders, 0, codes.Internal},
		{faultupstream.HTML, 0, codes.Unavailable},
		{faultupstream.HTML200, 0, codes.Internal},
		{faultupstream.BrokenJSON, 0, codes.Internal},
		{faultupstream.Redirect, 0, codes.Internal},
		{faultupstream.Unavailable, 0, codes.Unavailable},
		{faultupstream.Flap, 0, codes.OK}, // 503, then OK on the retry
		{faultupstream.Unauthorized, 0, codes.Unauthenticated},
		{faultupstream.InternalError, 0, codes.Internal},
	}
	if len(faults) != len(faultupstream.Faults()) {
		t.Errorf("%d faults in the session, want all %d", len(faults), len(faultupstream.Faults()))
	}
	for i, fc := range faults {
		h := book.credentials([]int{0, 1, 3, 4, 5}[i%5])
		h.Set("X-Auth-Token", "fault:"+string(fc.fault)+":"+book.value("fault-token"))
		book.add(h.Get("X-Auth-Token"))
		call("fault "+string(fc.fault), f, h, fc.deadline, fc.code)
	}

	// The circuit opens on g after one failure; then it refuses.
	h := book.credentials(0)
	h.Set("X-Auth-Token", "fault:unavailable:"+book.value("fault-token"))
	book.add(h.Get("X-Auth-Token"))
	o := grpcCall(ctx, g, h)
	calls++
	if o.st.Code() != codes.Unavailable {
		t.Errorf("opening the circuit: %v, want Unavailable", o.st.Code())
	}
	for kind := range 6 {
		call("circuit open", g, book.credentials(kind), 0, codes.Unavailable)
	}

	// Malformed credentials: over gRPC a credential sent twice, or too
	// long; over REST also a value with a non-ASCII byte.
	twice := http.Header{"X-Auth-Token": {book.value("twice"), book.value("twice")}}
	call("a credential sent twice", f, twice, 0, codes.InvalidArgument)
	call("a credential too long", f, http.Header{"X-Auth-Google-Token": {book.value("long") + strings.Repeat("A", 9<<10)}}, 0, codes.InvalidArgument)
	bad := book.basic() + "\xe9"
	if ro, err := restCall(ctx, f.http, f, http.Header{"Authorization": {bad}}); err != nil || ro.st.Code() != codes.InvalidArgument {
		t.Errorf("a non-ASCII credential over REST: %v %v, want InvalidArgument", ro.st, err)
	}
	calls++

	// No credential at all.
	call("no credentials", f, http.Header{}, 0, codes.Unauthenticated)

	// The session reached the logs: an access line per call that got to
	// the gRPC server (all but the three malformed REST calls, refused
	// before it), a failure line per failed upstream call, at every level
	// from debug to warn.
	out := logs.String()
	finished := len(logs.lines("finished call"))
	failed := len(logs.lines("opentact call failed"))
	t.Logf("%d calls; %d bytes of logs: %d finished call lines, %d opentact call failed lines; %d secrets checked",
		calls, len(out), finished, failed, len(book.secrets))
	if finished < calls-3 || failed < 20 {
		t.Fatalf("%d finished call and %d opentact call failed lines for %d calls; the test would prove little:\n%s", finished, failed, calls, out)
	}
	for _, level := range []string{`"level":"DEBUG"`, `"level":"INFO"`, `"level":"WARN"`} {
		if !strings.Contains(out, level) {
			t.Errorf("no %s line in the logs", level)
		}
	}

	if strings.Contains(out, secretMarker) {
		i := strings.Index(out, secretMarker)
		t.Errorf("the logs hold a secret, or part of one: …%s…", out[max(0, i-80):min(len(out), i+80)])
	}
	for _, s := range book.secrets {
		if strings.Contains(out, s) {
			t.Errorf("the logs contain the secret %q", s)
		}
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if e := enc.EncodeToString([]byte(s)); strings.Contains(out, e) {
				t.Errorf("the logs contain the secret %q in base64 (%s)", s, e)
			}
		}
	}
}
