package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
)

// textcheckUUID is a token uuid that UpdateToken's own rule takes.
const textcheckUUID = "3f1e0c7a-5d2b-4e9a-9c1d-2b3a4c5d6e7f"

// TestTextSentToOpentactIsText: a string field holding a control
// character, a bidirectional formatting character or invalid UTF-8, or
// longer than the bound, is InvalidArgument (REST 400) with a BadRequest
// naming the field, over both doors, whatever the method, and is never
// sent to Opentact. The error never repeats the value.
func TestTextSentToOpentactIsText(t *testing.T) {
	t.Parallel()
	up := newTokenUpstream(t, nil)
	f := startFacade(t, up.URL)
	long := strings.Repeat("t", 16000)
	jsonString := func(s string) string {
		b, _ := json.Marshal(s)
		return string(b)
	}
	type tc struct {
		name       string
		grpc       func(context.Context) error
		restMethod string
		restPath   string
		restBody   string
		field      string
	}
	var cases []tc
	for _, name := range []string{"\x00", "a\x1b[31mb", "a\r\nb", "tab\there", "del\x7f", "\u0085", "\u202eevil", "\u2066x\u2069", "\u200e", "\u061c", "line\u2028sep"} {
		cases = append(cases, tc{"create name " + jsonString(name), func(ctx context.Context) error {
			_, err := f.tokens.CreateToken(ctx, &authv1.CreateTokenRequest{Name: name})
			return err
		}, http.MethodPost, "/v1/tokens", `{"name":` + jsonString(name) + `}`, "name"})
	}
	cases = append(cases,
		tc{"update name with ESC", func(ctx context.Context) error {
			_, err := f.tokens.UpdateToken(ctx, &authv1.UpdateTokenRequest{Uuid: textcheckUUID, Name: ptr("a\x1bb")})
			return err
		}, http.MethodPatch, "/v1/tokens/" + textcheckUUID, `{"name":"a\u001bb"}`, "name"},
		tc{"update uuid with a bidi isolate", func(ctx context.Context) error {
			_, err := f.tokens.UpdateToken(ctx, &authv1.UpdateTokenRequest{Uuid: "u\u2067-1", Name: ptr("n")})
			return err
		}, http.MethodPatch, "/v1/tokens/u%E2%81%A7-1", `{"name":"n"}`, "uuid"},
		tc{"update uuid %FF", nil, http.MethodPatch, "/v1/tokens/%FF", `{"name":"n"}`, "uuid"},
		tc{"update uuid with NUL", nil, http.MethodPatch, "/v1/tokens/a%00b", `{"name":"n"}`, "uuid"},
		tc{"update a long uuid", func(ctx context.Context) error {
			_, err := f.tokens.UpdateToken(ctx, &authv1.UpdateTokenRequest{Uuid: strings.Repeat("u", 5000)})
			return err
		}, http.MethodPatch, "/v1/tokens/" + strings.Repeat("u", 5000), `{"name":"n"}`, "uuid"},
		tc{"delete a 16,000-character token", func(ctx context.Context) error {
			_, err := f.tokens.DeleteToken(ctx, &authv1.DeleteTokenRequest{Token: long})
			return err
		}, http.MethodPost, "/v1/tokens:delete", `{"token":"` + long + `"}`, "token"},
		tc{"delete a token with LF", func(ctx context.Context) error {
			_, err := f.tokens.DeleteToken(ctx, &authv1.DeleteTokenRequest{Token: "tok\nX-Injected: 1"})
			return err
		}, http.MethodPost, "/v1/tokens:delete", `{"token":"tok\nX-Injected: 1"}`, "token"},
	)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.grpc != nil {
				err := tc.grpc(basicCtx(t))
				st := status.Convert(err)
				// A field may break a declared rule too (a uuid that is not
				// a UUID): it is named once per rule broken.
				if st.Code() != codes.InvalidArgument || !slices.Equal(slices.Compact(badRequestFields(st)), []string{tc.field}) {
					t.Errorf("gRPC: %v with fields %v, want InvalidArgument naming %s", err, badRequestFields(st), tc.field)
				}
				if info := errorInfo(st); info.GetReason() != "INVALID_REQUEST" {
					t.Errorf("gRPC: reason %q", info.GetReason())
				}
			}
			r, body := f.restBody(t, tc.restMethod, tc.restPath, http.Header{"Authorization": {demoBasic}}, tc.restBody)
			rst := restStatus(t, body)
			if r.StatusCode != http.StatusBadRequest || !slices.Equal(slices.Compact(badRequestFields(rst)), []string{tc.field}) {
				t.Errorf("REST: %d %.200s, want 400 naming %s", r.StatusCode, body, tc.field)
			}
			if strings.Contains(string(body), long) || strings.Contains(string(body), "evil") || strings.Contains(string(body), "X-Injected") {
				t.Errorf("REST: the error repeats the value: %.200s", body)
			}
		})
	}
	if got := up.requests(); len(got) != 0 {
		t.Errorf("Opentact saw %d requests, the first %+v", len(got), got[0])
	}

	// Text is any other Unicode.
	if _, err := f.tokens.CreateToken(basicCtx(t), &authv1.CreateTokenRequest{Name: "Zoë's tökén, 東京 ✓"}); err != nil {
		t.Errorf("a name in Unicode: %v", err)
	}
}
