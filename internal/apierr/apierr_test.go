package apierr

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/durationpb"

	apiv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/api/v1"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

func TestUpstreamStatusTable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		err        *upstream.Error
		wantCode   codes.Code
		wantReason string
		wantHTTP   string // ErrorInfo metadata httpStatus; "" for none
		wantMsg    string // a part of the message
		wantRetry  time.Duration
		wantMeta   map[string]string // more ErrorInfo metadata
	}{
		{"400", httpErr(400, "Bad request"), codes.InvalidArgument, apiv1.ErrorReason_BAD_REQUEST.String(), "400", "opentact: Bad request", 0, nil},
		// Unauthenticated carries fixed text; Opentact's words go to the
		// metadata.
		{"401", httpErr(401, "Invalid credentials"), codes.Unauthenticated, apiv1.ErrorReason_UNAUTHORIZED.String(), "401", MessageUnauthorized, 0,
			map[string]string{"opentactMessage": "Invalid credentials"}},
		{"401 without message", httpErr(401, ""), codes.Unauthenticated, apiv1.ErrorReason_UNAUTHORIZED.String(), "401", MessageUnauthorized, 0, nil},
		{"402", httpErr(402, "Not enough account balance"), codes.FailedPrecondition, apiv1.ErrorReason_INSUFFICIENT_BALANCE.String(), "402", "opentact: Not enough account balance", 0, nil},
		{"403", httpErr(403, "Forbidden"), codes.PermissionDenied, apiv1.ErrorReason_FORBIDDEN.String(), "403", "opentact: Forbidden", 0, nil},
		{"404", httpErr(404, "Not found"), codes.NotFound, apiv1.ErrorReason_NOT_FOUND.String(), "404", "opentact: Not found", 0, nil},
		{"409", httpErr(409, "Conflict"), codes.FailedPrecondition, apiv1.ErrorReason_CONFLICT.String(), "409", "opentact: Conflict", 0, nil},
		{"429 with Retry-After", &upstream.Error{Failure: upstream.FailStatus, StatusCode: 429, Message: "Slow down", RetryAfter: 7 * time.Second},
			codes.ResourceExhausted, apiv1.ErrorReason_RATE_LIMITED.String(), "429", "opentact: Slow down", 7 * time.Second, nil},
		{"429 without Retry-After", httpErr(429, ""), codes.ResourceExhausted, apiv1.ErrorReason_RATE_LIMITED.String(), "429", "opentact answered HTTP 429", 0, nil},
		{"500", httpErr(500, "Oops"), codes.Internal, apiv1.ErrorReason_UPSTREAM_INTERNAL_ERROR.String(), "500", "opentact: Oops", 0, nil},
		{"501", httpErr(501, ""), codes.Unimplemented, apiv1.ErrorReason_NOT_IMPLEMENTED.String(), "501", "HTTP 501", 0, nil},
		{"502", httpErr(502, ""), codes.Unavailable, apiv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(), "502", "HTTP 502", 0, nil},
		{"503 with Retry-After", &upstream.Error{Failure: upstream.FailStatus, StatusCode: 503, RetryAfter: 2 * time.Second},
			codes.Unavailable, apiv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(), "503", "HTTP 503", 2 * time.Second, nil},
		{"504", httpErr(504, ""), codes.Unavailable, apiv1.ErrorReason_UPSTREAM_UNAVAILABLE.String(), "504", "HTTP 504", 0, nil},
		{"other 4xx: 418", httpErr(418, "I'm a teapot"), codes.FailedPrecondition, apiv1.ErrorReason_UPSTREAM_CLIENT_ERROR.String(), "418", "opentact: I'm a teapot", 0, nil},
		{"other 4xx: 422", httpErr(422, ""), codes.FailedPrecondition, apiv1.ErrorReason_UPSTREAM_CLIENT_ERROR.String(), "422", "HTTP 422", 0, nil},
		{"other 5xx: 505", httpErr(505, ""), codes.Internal, apiv1.ErrorReason_UPSTREAM_SERVER_ERROR.String(), "505", "HTTP 505", 0, nil},
		{"other 5xx: 599", httpErr(599, ""), codes.Internal, apiv1.ErrorReason_UPSTREAM_SERVER_ERROR.String(), "599", "HTTP 599", 0, nil},
		{"3xx: 301", httpErr(301, ""), codes.Internal, apiv1.ErrorReason_UPSTREAM_REDIRECT.String(), "301", "redirect (HTTP 301)", 0, nil},
		{"3xx: 307", httpErr(307, ""), codes.Internal, apiv1.ErrorReason_UPSTREAM_REDIRECT.String(), "307", "redirect (HTTP 307)", 0, nil},
		{"200 with success false", &upstream.Error{Failure: upstream.FailRejected, StatusCode: 200, Message: "Account suspended"},
			codes.Internal, apiv1.ErrorReason_UPSTREAM_REJECTED.String(), "200", "opentact: Account suspended", 0, nil},
		{"200 with success false and no message", &upstream.Error{Failure: upstream.FailRejected, StatusCode: 200},
			codes.Internal, apiv1.ErrorReason_UPSTREAM_REJECTED.String(), "200", "success false", 0, nil},
		{"200 with a body that is not the documented JSON", &upstream.Error{Failure: upstream.FailMalformed, StatusCode: 200},
			codes.Internal, apiv1.ErrorReason_UPSTREAM_MALFORMED_RESPONSE.String(), "200", "not the documented JSON", 0, nil},
		{"200 too large", &upstream.Error{Failure: upstream.FailTooLarge, StatusCode: 200},
			codes.Internal, apiv1.ErrorReason_UPSTREAM_RESPONSE_TOO_LARGE.String(), "200", "larger than the facade accepts", 0, nil},
		{"no complete answer", &upstream.Error{Failure: upstream.FailTransport},
			codes.Unavailable, apiv1.ErrorReason_UPSTREAM_UNREACHABLE.String(), "", "opentact unreachable", 0, nil},
		{"circuit open", &upstream.Error{Failure: upstream.FailCircuitOpen, RetryAfter: 5 * time.Second},
			codes.Unavailable, apiv1.ErrorReason_UPSTREAM_CIRCUIT_OPEN.String(), "", "stopped calling it", 5 * time.Second, nil},
		{"shed: no slot in time", &upstream.Error{Failure: upstream.FailShed, ShedReason: upstream.ShedQueue, RetryAfter: 400 * time.Millisecond, Estimate: 2 * time.Second},
			codes.Unavailable, apiv1.ErrorReason_UPSTREAM_OVERLOADED.String(), "", "answers in about 2s", 400 * time.Millisecond, nil},
		{"shed: too little time left", &upstream.Error{Failure: upstream.FailShed, ShedReason: upstream.ShedDeadline, Estimate: 1500 * time.Millisecond},
			codes.DeadlineExceeded, apiv1.ErrorReason_DEADLINE_TOO_SHORT.String(), "", "about 1.5s", 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := upstreamStatus(tc.err)
			if st.Code() != tc.wantCode {
				t.Errorf("code = %v, want %v", st.Code(), tc.wantCode)
			}
			if !strings.Contains(st.Message(), tc.wantMsg) {
				t.Errorf("message %q does not contain %q", st.Message(), tc.wantMsg)
			}
			var want = []any{&errdetails.ErrorInfo{Domain: "opentact.org", Reason: tc.wantReason}}
			if tc.wantHTTP != "" {
				want[0].(*errdetails.ErrorInfo).Metadata = map[string]string{"httpStatus": tc.wantHTTP}
			}
			for k, v := range tc.wantMeta {
				want[0].(*errdetails.ErrorInfo).Metadata[k] = v
			}
			if tc.wantCode == codes.Unauthenticated && st.Message() != MessageUnauthorized {
				t.Errorf("Unauthenticated message = %q, want the fixed %q", st.Message(), MessageUnauthorized)
			}
			if tc.wantRetry > 0 {
				want = append(want, &errdetails.RetryInfo{RetryDelay: durationpb.New(tc.wantRetry)})
			}
			if diff := cmp.Diff(want, st.Details(), protocmp.Transform()); diff != "" {
				t.Errorf("details mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func httpErr(code int, msg string) *upstream.Error {
	return &upstream.Error{Failure: upstream.FailStatus, StatusCode: code, Message: msg}
}

func TestErrorStatusPrefersTheCallersOwnEnd(t *testing.T) {
	t.Parallel()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	transport := &upstream.Error{Failure: upstream.FailTransport}

	tests := []struct {
		name       string
		ctx        context.Context
		err        error
		wantCode   codes.Code
		wantReason string
	}{
		{"caller cancelled", cancelled, context.Canceled, codes.Canceled, ""},
		{"caller cancelled while the upstream failed", cancelled, transport, codes.Canceled, ""},
		{"caller's deadline passed", expired, context.DeadlineExceeded, codes.DeadlineExceeded, ""},
		{"only the upstream timeout passed", context.Background(), context.DeadlineExceeded, codes.DeadlineExceeded, apiv1.ErrorReason_UPSTREAM_TIMEOUT.String()},
		{"upstream failure", context.Background(), transport, codes.Unavailable, apiv1.ErrorReason_UPSTREAM_UNREACHABLE.String()},
		{"no credentials", context.Background(), upstream.ErrNoCredentials, codes.Unauthenticated, apiv1.ErrorReason_CREDENTIALS_MISSING.String()},
		{"anything else is Internal without detail", context.Background(), errors.New("boom"), codes.Internal, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := FromError(tc.ctx, tc.err)
			if st.Code() != tc.wantCode {
				t.Errorf("code = %v, want %v", st.Code(), tc.wantCode)
			}
			if got := reasonOf(st); got != tc.wantReason {
				t.Errorf("reason = %q, want %q", got, tc.wantReason)
			}
		})
	}
}

func reasonOf(st *status.Status) string {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// The ErrorInfo reasons are part of the API: clients matched these strings
// before the enum existed, and must go on matching them.
func TestReasonStringsAreUnchanged(t *testing.T) {
	t.Parallel()
	want := []string{
		"CREDENTIALS_MISSING", "CREDENTIALS_MALFORMED", "INVALID_REQUEST", "BAD_REQUEST", "UNAUTHORIZED",
		"FORBIDDEN", "NOT_FOUND", "CONFLICT", "RATE_LIMITED", "UPSTREAM_INTERNAL_ERROR", "NOT_IMPLEMENTED",
		"UPSTREAM_UNAVAILABLE", "UPSTREAM_CLIENT_ERROR", "UPSTREAM_SERVER_ERROR", "UPSTREAM_REDIRECT",
		"UPSTREAM_REJECTED", "UPSTREAM_MALFORMED_RESPONSE", "UPSTREAM_RESPONSE_TOO_LARGE", "UPSTREAM_UNREACHABLE",
		"UPSTREAM_TIMEOUT", "UPSTREAM_CIRCUIT_OPEN", "FACADE_BUSY", "UPSTREAM_OVERLOADED", "DEADLINE_TOO_SHORT",
		"FACADE_SHUTTING_DOWN", "INSUFFICIENT_BALANCE", "REQUEST_ID_REUSED", "REQUEST_OUTCOME_UNKNOWN",
	}
	values := apiv1.ErrorReason(0).Descriptor().Values()
	var got []string
	for i := range values.Len() {
		if v := values.Get(i); v.Number() != 0 {
			got = append(got, apiv1.ErrorReason(v.Number()).String())
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ErrorReason values (-the strings clients match +the enum):\n%s", diff)
	}
}
