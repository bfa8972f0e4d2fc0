package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/opentact-facade/opentact-facade/internal/server"
)

// TestSMSTextAndNumbersStayOutOfErrorsAndLogs: Opentact's messages and
// field errors may quote a request's SMS text and phone numbers. Through
// SendSMS, over both doors, neither the status (its message and details),
// the REST body, a log line nor a span holds the text or a whole number;
// the numbers' last four digits are shown.
func TestSMSTextAndNumbersStayOutOfErrorsAndLogs(t *testing.T) {
	t.Parallel()
	const (
		text = "Meet me at the usual place tonight"
		from = "12029822917"
		to   = "12025550123"
	)
	for _, tc := range []struct {
		name   string
		answer http.HandlerFunc
		code   codes.Code
	}{
		{"400 with fields", answer(http.StatusBadRequest, fmt.Sprintf(`{"success":false,"status":400,
			"message":"Invalid SMS from %s to +%s: '%s'",
			"fields":{"to":{"message":"+%s is not a mobile number","value":%s},"message":{"message":"%s is not allowed"}}}`,
			from, to, text, to, to, text)), codes.InvalidArgument},
		{"404", opentactError(http.StatusNotFound, "TNLease "+from+" not found; message '"+text+"' not sent to "+to), codes.NotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := newRecorder(t, tc.answer)
			exp := telExporter(t)
			f := startFacade(t, up.URL, func(o *server.Options) { o.TracerProvider = exp.tp })
			req := smsRequest("", text)
			req.From = "+" + from
			req.To = to
			leaks := func(where, s string) {
				t.Helper()
				for _, v := range []string{text, from, to} {
					if strings.Contains(s, v) {
						t.Errorf("%s holds %q:\n%s", where, v, s)
					}
				}
			}

			_, err := sendSMS(t.Context(), t, f, "grpc", ridCreds, req)
			st := status.Convert(err)
			if st.Code() != tc.code {
				t.Fatalf("gRPC: %v, want %v", err, tc.code)
			}
			all, _ := protojson.Marshal(st.Proto())
			leaks("the gRPC status", string(all))
			for _, last4 := range []string{"***2917", "***0123"} {
				if !strings.Contains(string(all), last4) {
					t.Errorf("the gRPC status does not show %s: %s", last4, all)
				}
			}

			body, _ := protojson.Marshal(req)
			resp, b := f.restBody(t, http.MethodPost, "/v1/sms", ridCreds, string(body))
			if resp.StatusCode == http.StatusOK {
				t.Fatalf("REST: %d %s", resp.StatusCode, b)
			}
			leaks("the REST body", string(b))
			if !strings.Contains(string(b), "***2917") {
				t.Errorf("the REST body does not show ***2917: %s", b)
			}

			if n := up.calls.Load(); n != 2 {
				t.Fatalf("Opentact saw %d requests, want 2", n)
			}
			if len(f.logs.lines("opentact call failed")) != 2 || len(f.logs.lines("finished call")) != 2 {
				t.Errorf("want a failure line and an access line per call; logs:\n%s", f.logs.String())
			}
			leaks("the logs", f.logs.String())
			if !strings.Contains(f.logs.String(), "***2917") {
				t.Errorf("the logs do not show ***2917:\n%s", f.logs.String())
			}

			telWaitFor(t, "every span", func() bool { return len(exp.spans()) >= 4 })
			for _, s := range exp.spans() {
				leaks("span "+s.Name, telSpanText(s))
			}
		})
	}
}

// TestSMSTextStaysOutOfTheLogsOfACallThatSucceeds: a call that succeeds
// logs nothing of its request either.
func TestSMSTextStaysOutOfTheLogsOfACallThatSucceeds(t *testing.T) {
	t.Parallel()
	const text = "Meet me at the usual place tonight"
	up := newRidUpstream(t)
	exp := telExporter(t)
	f := startFacade(t, up.URL, func(o *server.Options) { o.TracerProvider = exp.tp })
	for _, door := range []string{"grpc", "rest"} {
		ctx, cancel := context.WithTimeout(t.Context(), guard)
		_, err := sendSMS(ctx, t, f, door, ridCreds, smsRequest("k-"+door, text))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	telWaitFor(t, "every span", func() bool { return len(exp.spans()) >= 4 })
	var spans strings.Builder
	for _, s := range exp.spans() {
		spans.WriteString(telSpanText(s))
	}
	for where, s := range map[string]string{"the logs": f.logs.String(), "the spans": spans.String()} {
		for _, v := range []string{text, "12029822917", "12025550123"} {
			if strings.Contains(s, v) {
				t.Errorf("%s hold %q:\n%s", where, v, s)
			}
		}
	}
}
