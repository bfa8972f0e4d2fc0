package server_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	apiv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/api/v1"
	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/apierr"
	"github.com/opentact-facade/opentact-facade/internal/server"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

const secretToken = "tok-SECRET-4242"

func opentactError(code int, msg string) http.HandlerFunc {
	return answer(code, fmt.Sprintf(`{"success":false,"message":%q,"status":%d}`, msg, code))
}

// hijack hands the raw connection to fn, to misbehave below HTTP.
func hijack(fn func(rw *bufio.ReadWriter)) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		conn, rw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		fn(rw)
		_ = rw.Flush()
	}
}

// TestErrorTable drives every row of the error table in docs/errors.md through a
// real upstream, over gRPC and over REST, and checks the code, the
// ErrorInfo, the HTTP status the gateway derives, and that Opentact's
// message, but never the caller's credential, reaches the caller.
func TestErrorTable(t *testing.T) {
	t.Parallel()
	type row struct {
		name       string
		handler    http.HandlerFunc
		upstream   string // overrides the recorder's URL
		code       codes.Code
		reason     string
		httpStatus string // ErrorInfo metadata
		msg        string // part of the message
		retry      time.Duration
		attempts   int64 // requests the upstream sees per call: 3 for a transient failure, retried; else 1
	}
	rows := []row{
		{name: "400", handler: opentactError(400, "Bad request"), code: codes.InvalidArgument, reason: apiv1.ErrorReason_BAD_REQUEST.String(), httpStatus: "400", msg: "opentact: Bad request"},
		{name: "401", handler: opentactError(401, "Invalid credentials"), code: codes.Unauthenticated, reason: apiv1.ErrorReason_UNAUTHORIZED.String(), httpStatus: "401", msg: apierr.MessageUnauthorized},
		{name: "401 echoing the token", handler: opentactError(401, "Token "+secretToken+" is invalid"), code: codes.Unauthenticated, reason: apiv1.ErrorReason_UNAUTHORIZED.String(), httpStatus: "401", msg: apierr.MessageUnauthorized},
		{name: "402", handler: opentactError(402, "Not enough account balance"), code: codes.FailedPrecondition, reason: apiv1.ErrorReason_INSUFFICIENT_BALANCE.String(), httpStatus: "402", msg: "opentact: Not enough account balance"},
		{name: "403", handler: opentactError(403, "Forbidden"), code: codes.PermissionDenied, reason: apiv1.ErrorReason_FORBIDDEN.String(), httpStatus: "403", msg: "opentact: Forbidden"},
		{name: "404", handler: opentactError(404, "User not found"), code: codes.NotFound, reason: apiv1.ErrorReason_NOT_FOUND.String(), httpStatus: "404", msg: "opentact: User not found"},
		{name: "409", handler: opentactError(409, "Conflict"), code: codes.FailedPrecondition, reason: apiv1.ErrorReason_CONFLICT.String(), httpStatus: "409", msg: "opentact: Conflict"},
		{name: "429", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "12")
			opentactError(429, "Too many requests")(w, r)
		}, code: codes.ResourceExhausted, reason: apiv1.ErrorReason_RATE_LIMITED.String(), httpStatus: "429", msg: "opentact: Too many requests", retry: 12 * time.Second},
		{name: "500", handler: opentactError(500, "Internal error"), code: codes.Internal, reason: apiv1.ErrorReason_UPSTREAM_INTERNAL_ERROR.String(), httpStatus: "500", msg: "opentact: Internal error"},
		{name: "501", handler: opentactError(501, "Not implemented"), code: codes.Unimplemented, reason: apiv1.ErrorReason_NOT_IMPLEMENTED.String(), httpStatus: "501", msg: "Not implemented"},
		{name: "502 HTML from a load balancer", handler: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(502)
			_, _ = io.WriteString(w, "<html><body><h1>502 Bad Gateway</h1></body></html>")
		}, code: codes.Unavailable, reason: apiv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(), httpStatus: "502", msg: "HTTP 502", attempts: 3},
		{name: "503", handler: opentactError(503, "Maintenance"), code: codes.Unavailable, reason: apiv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(), httpStatus: "503", msg: "Maintenance", attempts: 3},
		{name: "504", handler: opentactError(504, "Gateway timeout"), code: codes.Unavailable, reason: apiv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(), httpStatus: "504", msg: "Gateway timeout", attempts: 3},
		{name: "other 4xx", handler: opentactError(422, "Unprocessable"), code: codes.FailedPrecondition, reason: apiv1.ErrorReason_UPSTREAM_CLIENT_ERROR.String(), httpStatus: "422", msg: "Unprocessable"},
		{name: "other 5xx", handler: opentactError(507, "Insufficient storage"), code: codes.Internal, reason: apiv1.ErrorReason_UPSTREAM_SERVER_ERROR.String(), httpStatus: "507", msg: "Insufficient storage"},
		{name: "3xx", handler: func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://elsewhere.example/rest/auth", http.StatusMovedPermanently)
		}, code: codes.Internal, reason: apiv1.ErrorReason_UPSTREAM_REDIRECT.String(), httpStatus: "301", msg: "redirect"},
		{name: "200 with success false", handler: answer(200, `{"success":false,"message":"Account locked","status":200}`), code: codes.Internal, reason: apiv1.ErrorReason_UPSTREAM_REJECTED.String(), httpStatus: "200", msg: "opentact: Account locked"},
		{name: "200 with HTML", handler: answer(200, `<!doctype html><p>hello`), code: codes.Internal, reason: apiv1.ErrorReason_UPSTREAM_MALFORMED_RESPONSE.String(), httpStatus: "200", msg: "not the documented JSON"},
		{name: "200 with broken JSON", handler: answer(200, `{"success":true,"payload":{"uuid":"u"`), code: codes.Internal, reason: apiv1.ErrorReason_UPSTREAM_MALFORMED_RESPONSE.String(), httpStatus: "200", msg: "not the documented JSON"},
		{name: "200 without payload", handler: answer(200, `{"success":true}`), code: codes.Internal, reason: apiv1.ErrorReason_UPSTREAM_MALFORMED_RESPONSE.String(), httpStatus: "200", msg: "not the documented JSON"},
		{name: "connection refused", upstream: "http://" + closedAddr(t), code: codes.Unavailable, reason: apiv1.ErrorReason_UPSTREAM_UNREACHABLE.String(), msg: "connection refused", attempts: 3},
		{name: "connection reset before an answer", handler: hijack(func(*bufio.ReadWriter) {}), code: codes.Unavailable, reason: apiv1.ErrorReason_UPSTREAM_UNREACHABLE.String(), msg: "unreachable", attempts: 3},
		{name: "body cut off", handler: hijack(func(rw *bufio.ReadWriter) {
			_, _ = rw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"success\":true,\"payload\":{")
		}), code: codes.Unavailable, reason: apiv1.ErrorReason_UPSTREAM_UNREACHABLE.String(), msg: "closed before the answer was complete", attempts: 3},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url := tc.upstream
			var rec *recorder
			if url == "" {
				rec = newRecorder(t, tc.handler)
				url = rec.URL
			}
			// The breaker is off: this table is about single calls; the
			// breaker has its own tests.
			f := startFacade(t, url, func(o *server.Options) { o.Breaker = &upstream.BreakerPolicy{} })
			wantAttempts := max(tc.attempts, 1)

			ctx := metadata.AppendToOutgoingContext(context.Background(), "x-auth-token", secretToken)
			_, err := f.client.GetAuth(ctx, &authv1.GetAuthRequest{})
			checkStatus(t, "grpc", status.Convert(err), tc.code, tc.reason, tc.httpStatus, tc.msg, tc.retry)
			if rec != nil && rec.calls.Load() != wantAttempts {
				t.Errorf("grpc: the upstream saw %d requests, want %d", rec.calls.Load(), wantAttempts)
			}

			resp, body := f.rest(t, http.MethodGet, "/v1/auth", http.Header{"X-Auth-Token": {secretToken}})
			if rec != nil && rec.calls.Load() != 2*wantAttempts {
				t.Errorf("rest: the upstream saw %d requests in all, want %d", rec.calls.Load(), 2*wantAttempts)
			}
			if got, want := resp.Header.Values("WWW-Authenticate"), []string{`Basic realm="opentact"`, "Bearer"}; tc.code == codes.Unauthenticated && !slices.Equal(got, want) {
				t.Errorf("rest: WWW-Authenticate %q, want the challenges %q", got, want)
			}
			if want := runtime.HTTPStatusFromCode(tc.code); resp.StatusCode != want {
				t.Errorf("rest: HTTP status %d, want %d", resp.StatusCode, want)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("rest: Content-Type %q, want application/json", ct)
			}
			if tc.retry > 0 && resp.Header.Get("Retry-After") != fmt.Sprint(int(tc.retry.Seconds())) {
				t.Errorf("rest: Retry-After %q, want %v", resp.Header.Get("Retry-After"), tc.retry.Seconds())
			}
			checkStatus(t, "rest", restStatus(t, body), tc.code, tc.reason, tc.httpStatus, tc.msg, tc.retry)
			for k, v := range resp.Header {
				if strings.Contains(strings.Join(v, " "), secretToken) {
					t.Errorf("rest: header %s shows the credential", k)
				}
			}
		})
	}
}

func checkStatus(t *testing.T, via string, st *status.Status, code codes.Code, reason, httpStatus, msg string, retry time.Duration) {
	t.Helper()
	if st.Code() != code {
		t.Errorf("%s: code %v, want %v (%s)", via, st.Code(), code, st.Message())
	}
	if !strings.Contains(st.Message(), msg) {
		t.Errorf("%s: message %q, want it to contain %q", via, st.Message(), msg)
	}
	if strings.Contains(st.Message(), secretToken) {
		t.Errorf("%s: message %q shows the caller's credential", via, st.Message())
	}
	for k, v := range errorInfo(st).GetMetadata() {
		if strings.Contains(v, secretToken) {
			t.Errorf("%s: ErrorInfo metadata %s = %q shows the caller's credential", via, k, v)
		}
	}
	var infos int
	var gotRetry time.Duration
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			infos++
			if d.GetDomain() != "opentact.org" || d.GetReason() != reason || d.GetMetadata()["httpStatus"] != httpStatus {
				t.Errorf("%s: ErrorInfo %v, want domain opentact.org, reason %s, httpStatus %q", via, d, reason, httpStatus)
			}
		case *errdetails.RetryInfo:
			gotRetry = d.GetRetryDelay().AsDuration()
		}
	}
	if infos != 1 {
		t.Errorf("%s: %d ErrorInfo details, want 1", via, infos)
	}
	if gotRetry != retry {
		t.Errorf("%s: RetryInfo %v, want %v", via, gotRetry, retry)
	}
}

// hang answers nothing until the caller goes away.
func hang(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

// TestCallerDeadlineBoundsTheCall: the facade's own bound on a call is an
// hour here, so that a 504 within f.http's 10s can only be the caller's
// Grpc-Timeout. (Over gRPC the client's deadline ends the call on the
// client's side whatever the facade does.)
func TestCallerDeadlineBoundsTheCall(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, hang)
	f := startFacade(t, up.URL, func(o *server.Options) { o.UpstreamTimeout, o.MaxCallTimeout = time.Hour, time.Hour })

	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "authorization", demoBasic), 200*time.Millisecond)
	defer cancel()
	_, err := f.client.GetAuth(ctx, &authv1.GetAuthRequest{})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("grpc: %v, want DeadlineExceeded", err)
	}

	resp, body := f.rest(t, http.MethodGet, "/v1/auth", http.Header{"Authorization": {demoBasic}, "Grpc-Timeout": {"200m"}})
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("rest: status %d, want 504", resp.StatusCode)
	}
	if st := restStatus(t, body); st.Code() != codes.DeadlineExceeded {
		t.Errorf("rest: code %v, want DeadlineExceeded", st.Code())
	}
}

func TestUpstreamTimeout(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, hang)
	f := startFacade(t, up.URL, func(o *server.Options) { o.UpstreamTimeout = 150 * time.Millisecond })

	// No deadline from the caller; should the upstream timeout not apply,
	// the test's own deadline ends the call, without the reason.
	ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(context.Background(), "authorization", demoBasic))
	defer cancel()
	timer := time.AfterFunc(guard, cancel)
	defer timer.Stop()
	_, err := f.client.GetAuth(ctx, &authv1.GetAuthRequest{})
	st := status.Convert(err)
	if st.Code() != codes.DeadlineExceeded || errorInfo(st).GetReason() != apiv1.ErrorReason_UPSTREAM_TIMEOUT.String() {
		t.Errorf("%v, want DeadlineExceeded with reason %s", err, apiv1.ErrorReason_UPSTREAM_TIMEOUT.String())
	}
}

// TestCallerCancellation: the server records Canceled for a call its
// caller abandoned (the caller itself no longer listens).
func TestCallerCancellation(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 1)
	up := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		hang(w, r)
	})
	f := startFacade(t, up.URL)

	ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(context.Background(), "authorization", demoBasic))
	go func() {
		<-arrived
		cancel()
	}()
	if _, err := f.client.GetAuth(ctx, &authv1.GetAuthRequest{}); status.Code(err) != codes.Canceled {
		t.Fatalf("%v, want Canceled", err)
	}
	deadline := time.Now().Add(guard)
	for time.Now().Before(deadline) {
		for _, l := range f.logs.lines("finished call") {
			if l["grpc.method"] == "GetAuth" {
				if l["grpc.code"] != "Canceled" {
					t.Errorf("server recorded %v, want Canceled", l["grpc.code"])
				}
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Error("the server never finished the call")
}

// TestOpentactMessagesLoseEveryFormOfThePassword: an Opentact whose 400
// quotes the caller's password percent-encoded, base64-encoded and
// upper-cased, in its message and in a field error: no form of it reaches
// the caller, over gRPC or REST, nor the logs.
func TestOpentactMessagesLoseEveryFormOfThePassword(t *testing.T) {
	t.Parallel()
	const email = "scrub.forms@secret-example.test"
	const password = "Pw/Quokka+77 31%x"
	userPass := []byte(email + ":" + password)
	forms := []string{
		password, strings.ToUpper(password), url.QueryEscape(password), url.PathEscape(password),
		strings.ToLower(url.QueryEscape(password)),
		base64.StdEncoding.EncodeToString([]byte(password)), base64.RawURLEncoding.EncodeToString([]byte(password)),
		base64.StdEncoding.EncodeToString(userPass), base64.URLEncoding.EncodeToString(userPass),
		"Quokka", "QUOKKA",
	}
	up := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		_, pw, _ := r.BasicAuth()
		msg := fmt.Sprintf("Invalid password %s (%s, %s); as base64 %s, the header %s",
			strings.ToUpper(pw), url.QueryEscape(pw), strings.ToLower(url.QueryEscape(pw)),
			base64.StdEncoding.EncodeToString([]byte(pw)), base64.URLEncoding.EncodeToString([]byte(email+":"+pw)))
		body, _ := json.Marshal(map[string]any{"success": false, "status": 400, "message": msg,
			"fields": map[string]any{"password": map[string]string{"message": url.PathEscape(pw) + " is not allowed"}}})
		answer(http.StatusBadRequest, string(body))(w, r)
	})
	f := startFacade(t, up.URL)
	cred := basic(email, password)

	_, err := f.client.GetAuth(metadata.AppendToOutgoingContext(context.Background(), "authorization", cred), &authv1.GetAuthRequest{})
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "Invalid password [REDACTED]") {
		t.Errorf("gRPC: %v, want InvalidArgument with Opentact's message, scrubbed", err)
	}
	r, body := f.rest(t, http.MethodGet, "/v1/auth", http.Header{"Authorization": {cred}})
	if r.StatusCode != http.StatusBadRequest {
		t.Fatalf("REST: %d %s", r.StatusCode, body)
	}
	if n := up.calls.Load(); n != 2 {
		t.Fatalf("Opentact saw %d requests, want 2", n)
	}
	for what, text := range map[string]string{
		"the gRPC status": fmt.Sprint(st.Proto()), "the REST body": string(body), "the logs": f.logs.String(),
	} {
		for _, form := range forms {
			if strings.Contains(strings.ToLower(text), strings.ToLower(form)) {
				t.Errorf("%s hold the password as %q:\n%s", what, form, text)
			}
		}
	}
}

// TestShortPasswordsLeaveWordsWhole: a password of one to three
// characters is too short to be told from a piece of a word, and Opentact's
// message reaches the caller and the logs whole.
func TestShortPasswordsLeaveWordsWhole(t *testing.T) {
	t.Parallel()
	const msg = "Invalid credentials, or the user already exists"
	up := newRecorder(t, opentactError(http.StatusBadRequest, msg))
	f := startFacade(t, up.URL)
	for _, pw := range []string{"a", "x", "ex", "ist"} {
		_, err := f.client.GetAuth(metadata.AppendToOutgoingContext(context.Background(), "authorization", basic("short@example.test", pw)), &authv1.GetAuthRequest{})
		if st := status.Convert(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), msg) {
			t.Errorf("password %q: %v, want InvalidArgument with %q whole", pw, err, msg)
		}
	}
	lines := f.logs.lines("opentact call failed")
	if len(lines) != 4 {
		t.Fatalf("%d opentact call failed lines, want 4", len(lines))
	}
	for _, l := range lines {
		if e, _ := l["error"].(string); !strings.Contains(e, msg) {
			t.Errorf("logged error %q, want %q whole", e, msg)
		}
	}
}
