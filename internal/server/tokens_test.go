package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/sandbox"
	"github.com/opentact-facade/opentact-facade/internal/server"
)

// seen is one request as Opentact received it.
type seen struct {
	Method, URI, Body string
	Header            http.Header
}

// tokenUpstream is an Opentact that records every request (method, the
// request URI exactly as sent, body) and answers with answerFor.
type tokenUpstream struct {
	*recorder
	mu   sync.Mutex
	reqs []seen
}

const tokenJSON = `{"name":"ci","ttl":3600,"token":"7VLyaDSQ8W48IETeNBfxbBqwgwzWLTvFojSnLgiXP5X8NSoE","expired_on":"2020-10-26T16:57:28.701Z","uuid":"bac27d93-df33-4e47-b4a1-edfcae0d3654","created_on":"2020-10-26T15:57:28.706Z","modified_on":"2020-10-26T15:57:28.706Z"}`

func newTokenUpstream(t *testing.T, h http.HandlerFunc) *tokenUpstream {
	t.Helper()
	u := &tokenUpstream{}
	if h == nil {
		h = func(w http.ResponseWriter, r *http.Request) {
			switch {
			case r.Method == http.MethodGet && r.URL.Path == "/rest/auth":
				answer(200, okBody)(w, r)
			case r.Method == http.MethodGet && r.URL.Path == "/rest/token/list":
				answer(200, `{"success":true,"payload":[`+tokenJSON+`]}`)(w, r)
			case r.Method == http.MethodDelete && r.URL.Path == "/rest/token/all":
				answer(200, `{"success":true,"payload":{}}`)(w, r)
			default:
				answer(200, `{"success":true,"payload":`+tokenJSON+`}`)(w, r)
			}
		}
	}
	u.recorder = newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, seen{r.Method, r.RequestURI, string(body), r.Header.Clone()})
		u.mu.Unlock()
		h(w, r)
	})
	return u
}

func (u *tokenUpstream) requests() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.reqs)
}

func (u *tokenUpstream) reset() {
	u.mu.Lock()
	u.reqs = nil
	u.mu.Unlock()
}

func basicCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return metadata.AppendToOutgoingContext(ctx, "authorization", demoBasic)
}

func ptr[T any](v T) *T { return &v }

// otherUUID is a token uuid other than tokenJSON's.
const otherUUID = "2f0e8c4a-9b7d-4e31-8a6c-5d2b1f9e7c30"

// TestTokenCallsReachOpentactAsDocumented: each RPC, over gRPC and over
// REST, sends exactly Opentact's documented request (method, path, body:
// only the fields set, ttl a JSON number), and the answer maps to the
// documented Token.
func TestTokenCallsReachOpentactAsDocumented(t *testing.T) {
	t.Parallel()
	up := newTokenUpstream(t, nil)
	f := startFacade(t, up.URL)
	auth := http.Header{"Authorization": {demoBasic}}
	for _, tc := range []struct {
		name       string
		grpc       func(context.Context) (proto.Message, error)
		restMethod string
		restPath   string
		restBody   string
		want       seen // Header unused
	}{
		{"create", func(ctx context.Context) (proto.Message, error) {
			return f.tokens.CreateToken(ctx, &authv1.CreateTokenRequest{Name: "ci", Ttl: ptr[int32](3600)})
		}, http.MethodPost, "/v1/tokens", `{"name":"ci","ttl":3600}`, seen{Method: "POST", URI: "/rest/token", Body: `{"name":"ci","ttl":3600}`}},
		{"create without ttl", func(ctx context.Context) (proto.Message, error) {
			return f.tokens.CreateToken(ctx, &authv1.CreateTokenRequest{Name: "ci"})
		}, http.MethodPost, "/v1/tokens", `{"name":"ci"}`, seen{Method: "POST", URI: "/rest/token", Body: `{"name":"ci"}`}},
		{"list", func(ctx context.Context) (proto.Message, error) {
			return f.tokens.ListTokens(ctx, &authv1.ListTokensRequest{})
		}, http.MethodGet, "/v1/tokens", "", seen{Method: "GET", URI: "/rest/token/list"}},
		{"update the name only", func(ctx context.Context) (proto.Message, error) {
			return f.tokens.UpdateToken(ctx, &authv1.UpdateTokenRequest{Uuid: "bac27d93-df33-4e47-b4a1-edfcae0d3654", Name: ptr("renamed")})
		}, http.MethodPatch, "/v1/tokens/bac27d93-df33-4e47-b4a1-edfcae0d3654", `{"name":"renamed"}`,
			seen{Method: "PATCH", URI: "/rest/token/bac27d93-df33-4e47-b4a1-edfcae0d3654", Body: `{"name":"renamed"}`}},
		{"update the ttl only", func(ctx context.Context) (proto.Message, error) {
			return f.tokens.UpdateToken(ctx, &authv1.UpdateTokenRequest{Uuid: otherUUID, Ttl: ptr[int32](120)})
		}, http.MethodPatch, "/v1/tokens/" + otherUUID, `{"ttl":120}`, seen{Method: "PATCH", URI: "/rest/token/" + otherUUID, Body: `{"ttl":120}`}},
		{"delete", func(ctx context.Context) (proto.Message, error) {
			return f.tokens.DeleteToken(ctx, &authv1.DeleteTokenRequest{Token: "7VLyaDSQ8W48IETeNBfxbBqwgwzWLTvFojSnLgiXP5X8NSoE"})
		}, http.MethodPost, "/v1/tokens:delete", `{"token":"7VLyaDSQ8W48IETeNBfxbBqwgwzWLTvFojSnLgiXP5X8NSoE"}`,
			seen{Method: "DELETE", URI: "/rest/token/7VLyaDSQ8W48IETeNBfxbBqwgwzWLTvFojSnLgiXP5X8NSoE"}},
		// No path tricks: a value is one escaped segment, never another
		// path, a query, or a dot segment.
		{"delete a path trick", func(ctx context.Context) (proto.Message, error) {
			return f.tokens.DeleteToken(ctx, &authv1.DeleteTokenRequest{Token: "../auth?x=1"})
		}, http.MethodPost, "/v1/tokens:delete", `{"token":"../auth?x=1"}`, seen{Method: "DELETE", URI: "/rest/token/..%2Fauth%3Fx=1"}},
		{"delete a dot segment", func(ctx context.Context) (proto.Message, error) {
			return f.tokens.DeleteToken(ctx, &authv1.DeleteTokenRequest{Token: ".."})
		}, http.MethodPost, "/v1/tokens:delete", `{"token":".."}`, seen{Method: "DELETE", URI: "/rest/token/%2E%2E"}},
		{"delete a fragment and spaces", func(ctx context.Context) (proto.Message, error) {
			return f.tokens.DeleteToken(ctx, &authv1.DeleteTokenRequest{Token: "a b#c%d"})
		}, http.MethodPost, "/v1/tokens:delete", `{"token":"a b#c%d"}`, seen{Method: "DELETE", URI: "/rest/token/a%20b%23c%25d"}},
		{"delete all", func(ctx context.Context) (proto.Message, error) {
			return f.tokens.DeleteAllTokens(ctx, &authv1.DeleteAllTokensRequest{})
		}, http.MethodDelete, "/v1/tokens", "", seen{Method: "DELETE", URI: "/rest/token/all"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up.reset()
			resp, err := tc.grpc(basicCtx(t))
			if err != nil {
				t.Fatalf("gRPC: %v", err)
			}
			r, body := f.restBody(t, tc.restMethod, tc.restPath, auth, tc.restBody)
			if r.StatusCode != http.StatusOK {
				t.Fatalf("REST %s %s: %d %s", tc.restMethod, tc.restPath, r.StatusCode, body)
			}
			reqs := up.requests()
			if len(reqs) != 2 {
				t.Fatalf("Opentact saw %d requests, want 2 (one per door): %+v", len(reqs), reqs)
			}
			for i, door := range []string{"gRPC", "REST"} {
				got := reqs[i]
				if got.Method != tc.want.Method || got.URI != tc.want.URI || got.Body != tc.want.Body {
					t.Errorf("%s: Opentact saw %s %s %q, want %s %s %q", door, got.Method, got.URI, got.Body, tc.want.Method, tc.want.URI, tc.want.Body)
				}
				if got.Header.Get("Authorization") != demoBasic {
					t.Errorf("%s: credentials not forwarded", door)
				}
				if ct := got.Header.Get("Content-Type"); (tc.want.Body != "") != (ct == "application/json") {
					t.Errorf("%s: Content-Type %q with body %q", door, ct, tc.want.Body)
				}
			}
			var tok *authv1.Token
			switch m := resp.(type) {
			case interface{ GetToken() *authv1.Token }:
				tok = m.GetToken()
			case *authv1.ListTokensResponse:
				if len(m.GetTokens()) != 1 {
					t.Fatalf("ListTokens: %d tokens, want 1", len(m.GetTokens()))
				}
				tok = m.GetTokens()[0]
			case *authv1.DeleteAllTokensResponse:
				return
			}
			if tok.GetUuid() != "bac27d93-df33-4e47-b4a1-edfcae0d3654" || tok.GetName() != "ci" || tok.GetTtl() != 3600 ||
				tok.GetToken() != "7VLyaDSQ8W48IETeNBfxbBqwgwzWLTvFojSnLgiXP5X8NSoE" ||
				tok.GetExpiredOn().AsTime() != time.Date(2020, 10, 26, 16, 57, 28, 701e6, time.UTC) ||
				tok.GetCreatedOn().AsTime() != time.Date(2020, 10, 26, 15, 57, 28, 706e6, time.UTC) {
				t.Errorf("token mapped as %v", tok)
			}
			if !strings.Contains(string(body), `"expired_on":"2020-10-26T16:57:28.701Z"`) && !strings.Contains(tc.name, "all") {
				t.Errorf("REST answer %s", body)
			}
		})
	}
}

// TestTokenFieldsKeepPresence: a token field Opentact left out, sent as
// null or as a type it cannot be stays unset, over gRPC and REST.
func TestTokenFieldsKeepPresence(t *testing.T) {
	t.Parallel()
	up := newTokenUpstream(t, answer(200, `{"success":true,"payload":[{"uuid":"u-1","name":null,"ttl":"sixty","expired_on":"soon"}]}`))
	f := startFacade(t, up.URL)
	resp, err := f.tokens.ListTokens(basicCtx(t), &authv1.ListTokensRequest{})
	if err != nil {
		t.Fatal(err)
	}
	tok := resp.GetTokens()[0]
	if tok.GetUuid() != "u-1" || tok.Name != nil || tok.Ttl != nil || tok.Token != nil || tok.ExpiredOn != nil || tok.CreatedOn != nil {
		t.Errorf("presence lost: %v", tok)
	}
	_, body := f.rest(t, http.MethodGet, "/v1/tokens", http.Header{"Authorization": {demoBasic}})
	if string(body) != `{"tokens":[{"uuid":"u-1"}]}` {
		t.Errorf("REST answer %s", body)
	}
}

func badRequestFields(st *status.Status) []string {
	var fields []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fields = append(fields, v.GetField())
			}
		}
	}
	slices.Sort(fields)
	return fields
}

// TestTokenRequestsValidatedBeforeOpentact: a request that breaks a rule
// of its proto is InvalidArgument with a BadRequest naming the field, over
// both doors, and never sent.
func TestTokenRequestsValidatedBeforeOpentact(t *testing.T) {
	t.Parallel()
	up := newTokenUpstream(t, nil)
	f := startFacade(t, up.URL)
	for _, tc := range []struct {
		name       string
		grpc       func(context.Context) error
		restMethod string
		restPath   string
		restBody   string
		fields     []string
	}{
		{"create without a name", func(ctx context.Context) error {
			_, err := f.tokens.CreateToken(ctx, &authv1.CreateTokenRequest{})
			return err
		}, http.MethodPost, "/v1/tokens", `{}`, []string{"name"}},
		{"create with ttl 59", func(ctx context.Context) error {
			_, err := f.tokens.CreateToken(ctx, &authv1.CreateTokenRequest{Name: "x", Ttl: ptr[int32](59)})
			return err
		}, http.MethodPost, "/v1/tokens", `{"name":"x","ttl":59}`, []string{"ttl"}},
		{"create with both wrong", func(ctx context.Context) error {
			_, err := f.tokens.CreateToken(ctx, &authv1.CreateTokenRequest{Ttl: ptr[int32](0)})
			return err
		}, http.MethodPost, "/v1/tokens", `{"ttl":0}`, []string{"name", "ttl"}},
		{"update without a uuid", func(ctx context.Context) error {
			_, err := f.tokens.UpdateToken(ctx, &authv1.UpdateTokenRequest{Name: ptr("x")})
			return err
		}, "", "", "", []string{"uuid"}},
		// A uuid is a UUID: no word of Opentact's path ("all" would make
		// PATCH /rest/token/all), nor a token's secret given by mistake.
		{"update the uuid ALL", func(ctx context.Context) error {
			_, err := f.tokens.UpdateToken(ctx, &authv1.UpdateTokenRequest{Uuid: "ALL", Name: ptr("x")})
			return err
		}, http.MethodPatch, "/v1/tokens/ALL", `{"name":"x"}`, []string{"uuid"}},
		{"update the uuid all", func(ctx context.Context) error {
			_, err := f.tokens.UpdateToken(ctx, &authv1.UpdateTokenRequest{Uuid: "all", Name: ptr("x")})
			return err
		}, http.MethodPatch, "/v1/tokens/all", `{"name":"x"}`, []string{"uuid"}},
		{"update the uuid list", func(ctx context.Context) error {
			_, err := f.tokens.UpdateToken(ctx, &authv1.UpdateTokenRequest{Uuid: "list", Ttl: ptr[int32](60)})
			return err
		}, http.MethodPatch, "/v1/tokens/list", `{"ttl":60}`, []string{"uuid"}},
		{"update a token's secret", func(ctx context.Context) error {
			_, err := f.tokens.UpdateToken(ctx, &authv1.UpdateTokenRequest{Uuid: "7VLyaDSQ8W48IETeNBfxbBqwgwzWLTvFojSnLgiXP5X8NSoE", Name: ptr("x")})
			return err
		}, http.MethodPatch, "/v1/tokens/7VLyaDSQ8W48IETeNBfxbBqwgwzWLTvFojSnLgiXP5X8NSoE", `{"name":"x"}`, []string{"uuid"}},
		{"update a uuid one digit short", func(ctx context.Context) error {
			_, err := f.tokens.UpdateToken(ctx, &authv1.UpdateTokenRequest{Uuid: "bac27d93-df33-4e47-b4a1-edfcae0d365", Name: ptr("x")})
			return err
		}, http.MethodPatch, "/v1/tokens/bac27d93-df33-4e47-b4a1-edfcae0d365", `{"name":"x"}`, []string{"uuid"}},
		{"update with ttl -5", func(ctx context.Context) error {
			_, err := f.tokens.UpdateToken(ctx, &authv1.UpdateTokenRequest{Uuid: otherUUID, Ttl: ptr[int32](-5)})
			return err
		}, http.MethodPatch, "/v1/tokens/" + otherUUID, `{"ttl":-5}`, []string{"ttl"}},
		{"delete without a token", func(ctx context.Context) error {
			_, err := f.tokens.DeleteToken(ctx, &authv1.DeleteTokenRequest{})
			return err
		}, http.MethodPost, "/v1/tokens:delete", `{}`, []string{"token"}},
		// On Opentact's path, "all" would revoke every token.
		{"delete the token named all", func(ctx context.Context) error {
			_, err := f.tokens.DeleteToken(ctx, &authv1.DeleteTokenRequest{Token: "all"})
			return err
		}, http.MethodPost, "/v1/tokens:delete", `{"token":"all"}`, []string{"token"}},
		// In any letter case: Opentact's path may not tell ALL from all.
		{"delete the token named ALL", func(ctx context.Context) error {
			_, err := f.tokens.DeleteToken(ctx, &authv1.DeleteTokenRequest{Token: "ALL"})
			return err
		}, http.MethodPost, "/v1/tokens:delete", `{"token":"ALL"}`, []string{"token"}},
		{"delete the token named All", func(ctx context.Context) error {
			_, err := f.tokens.DeleteToken(ctx, &authv1.DeleteTokenRequest{Token: "All"})
			return err
		}, http.MethodPost, "/v1/tokens:delete", `{"token":"All"}`, []string{"token"}},
		{"delete the token named LIST", func(ctx context.Context) error {
			_, err := f.tokens.DeleteToken(ctx, &authv1.DeleteTokenRequest{Token: "LIST"})
			return err
		}, http.MethodPost, "/v1/tokens:delete", `{"token":"LIST"}`, []string{"token"}},
		{"delete the token named lIsT", func(ctx context.Context) error {
			_, err := f.tokens.DeleteToken(ctx, &authv1.DeleteTokenRequest{Token: "lIsT"})
			return err
		}, http.MethodPost, "/v1/tokens:delete", `{"token":"lIsT"}`, []string{"token"}},
		// Under the 4 KiB every text field has, over the 1 KiB a path value
		// of Opentact's has.
		{"delete a 2,000-byte token", func(ctx context.Context) error {
			_, err := f.tokens.DeleteToken(ctx, &authv1.DeleteTokenRequest{Token: strings.Repeat("t", 2000)})
			return err
		}, http.MethodPost, "/v1/tokens:delete", `{"token":"` + strings.Repeat("t", 2000) + `"}`, []string{"token"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.grpc(basicCtx(t))
			st := status.Convert(err)
			if st.Code() != codes.InvalidArgument || !slices.Equal(badRequestFields(st), tc.fields) {
				t.Errorf("gRPC: %v with fields %v, want InvalidArgument naming %v", err, badRequestFields(st), tc.fields)
			}
			if info := errorInfo(st); info.GetReason() != "INVALID_REQUEST" {
				t.Errorf("gRPC: reason %q", info.GetReason())
			}
			if tc.restPath != "" {
				r, body := f.restBody(t, tc.restMethod, tc.restPath, http.Header{"Authorization": {demoBasic}}, tc.restBody)
				rst := restStatus(t, body)
				if r.StatusCode != http.StatusBadRequest || !slices.Equal(badRequestFields(rst), tc.fields) {
					t.Errorf("REST: %d %s, want 400 naming %v", r.StatusCode, body, tc.fields)
				}
			}
		})
	}
	if n := len(up.requests()); n != 0 {
		t.Errorf("Opentact saw %d invalid requests", n)
	}
}

// TestOpentactFieldErrorsBecomeBadRequest: Opentact's own 400 with
// "fields" is InvalidArgument with one field violation per entry, its
// messages scrubbed of secrets; the REST body carries the same.
func TestOpentactFieldErrorsBecomeBadRequest(t *testing.T) {
	t.Parallel()
	const secret = "Zq8VLyaDSQ8W48IETeNBfxbBqwgwzWLTvFojSnLgiXP5X8NS"
	up := newTokenUpstream(t, answer(400, `{"success":false,"status":400,"message":"Validation failed","fields":{"ttl":{"message":"must be at least 60","value":30},"name":{"message":"`+secret+` is taken","value":"x"}}}`))
	f := startFacade(t, up.URL)
	_, err := f.tokens.CreateToken(basicCtx(t), &authv1.CreateTokenRequest{Name: "x"})
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument || !slices.Equal(badRequestFields(st), []string{"name", "ttl"}) {
		t.Fatalf("%v with fields %v, want InvalidArgument naming name and ttl", err, badRequestFields(st))
	}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				if v.GetField() == "ttl" && v.GetDescription() != "must be at least 60" {
					t.Errorf("ttl: %q", v.GetDescription())
				}
				if strings.Contains(v.GetDescription(), secret) {
					t.Errorf("a secret in a field violation: %q", v.GetDescription())
				}
			}
		}
	}
	r, body := f.restBody(t, http.MethodPost, "/v1/tokens", http.Header{"Authorization": {demoBasic}}, `{"name":"x"}`)
	if r.StatusCode != http.StatusBadRequest || !slices.Equal(badRequestFields(restStatus(t, body)), []string{"name", "ttl"}) {
		t.Errorf("REST: %d %s", r.StatusCode, body)
	}
}

// TestCreateTokenIsNeverRepeatedOnceSent: a 503 or a connection cut after
// the request was sent fails CreateToken at once (a retry could make a
// second token), where the idempotent calls retry.
func TestCreateTokenIsNeverRepeatedOnceSent(t *testing.T) {
	t.Parallel()
	for _, fault := range []string{"503", "reset"} {
		t.Run(fault, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int64
			up := newTokenUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				n.Add(1)
				if fault == "503" {
					answer(503, `{"success":false,"status":503,"message":"busy"}`)(w, r)
					return
				}
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					_ = conn.Close()
				}
			})
			f := startFacade(t, up.URL, telQuickRetries)
			_, err := f.tokens.CreateToken(basicCtx(t), &authv1.CreateTokenRequest{Name: "x"})
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("CreateToken: %v, want Unavailable", err)
			}
			if got := n.Load(); got != 1 {
				t.Errorf("CreateToken reached Opentact %d times, want 1", got)
			}
			n.Store(0)
			_, err = f.tokens.UpdateToken(basicCtx(t), &authv1.UpdateTokenRequest{Uuid: otherUUID, Name: ptr("x")})
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("UpdateToken: %v, want Unavailable", err)
			}
			if got := n.Load(); got != 3 {
				t.Errorf("UpdateToken (idempotent) reached Opentact %d times, want 3", got)
			}
		})
	}
}

// TestWritesAreNeverShared: identical CreateToken calls at once each make
// their own request; identical ListTokens calls at once share one; with
// the cache on, ListTokens is still never answered from it.
func TestWritesAreNeverShared(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	arrivals := make(chan struct{}, 64)
	up := newTokenUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		arrivals <- struct{}{}
		<-release
		if r.Method == http.MethodGet {
			answer(200, `{"success":true,"payload":[]}`)(w, r)
			return
		}
		answer(200, `{"success":true,"payload":`+tokenJSON+`}`)(w, r)
	})
	f := startFacade(t, up.URL, func(o *server.Options) { o.CacheTTL = time.Minute })
	arrive := func(what string) {
		t.Helper()
		select {
		case <-arrivals:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s never reached Opentact", what)
		}
	}
	const n = 8
	errs := make(chan error, n)
	wait := func() {
		t.Helper()
		for range n {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
	}

	// Each CreateToken reaches Opentact while the others wait.
	for range n {
		go func() {
			_, err := f.tokens.CreateToken(basicCtx(t), &authv1.CreateTokenRequest{Name: "same"})
			errs <- err
		}()
	}
	for i := range n {
		arrive(fmt.Sprintf("CreateToken %d of %d (shared with another?)", i+1, n))
	}
	for range n {
		release <- struct{}{}
	}
	wait()

	// The ListTokens calls after the first join its request.
	list := func() {
		_, err := f.tokens.ListTokens(basicCtx(t), &authv1.ListTokensRequest{})
		errs <- err
	}
	go list()
	arrive("the first ListTokens")
	for range n - 1 {
		go list()
	}
	telWaitFor(t, "every ListTokens call to start", func() bool {
		ms, _ := telScrape(t, f)
		return ms.value(t, "grpc_server_started_total", map[string]string{"grpc_method": "ListTokens"}) == n
	})
	select {
	case <-arrivals:
		t.Error("a second ListTokens request reached Opentact while the first was under way")
	case <-time.After(200 * time.Millisecond):
	}
	release <- struct{}{}
	wait()

	// Not cached: another ListTokens is another request.
	go list()
	arrive("a ListTokens after the first (answered from the cache?)")
	release <- struct{}{}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}

// TestRevocationThroughTheFacadeIsImmediate: with the cache on, an
// answer to a call carrying Bearer T is cached; once DeleteToken(T)
// succeeds none is served; once DeleteAllTokens succeeds no answer to a
// call carrying a Bearer token is, while Basic answers stay.
func TestRevocationThroughTheFacadeIsImmediate(t *testing.T) {
	t.Parallel()
	var auths atomic.Int64
	up := newTokenUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/rest/auth":
			auths.Add(1)
			answer(200, okBody)(w, r)
		case r.URL.Path == "/rest/token/all":
			answer(200, `{"success":true,"payload":{}}`)(w, r)
		default:
			answer(200, `{"success":true,"payload":`+tokenJSON+`}`)(w, r)
		}
	})
	f := startFacade(t, up.URL, func(o *server.Options) { o.CacheTTL = time.Minute })
	getAuth := func(authz string) {
		t.Helper()
		ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", authz)
		if _, err := f.client.GetAuth(ctx, &authv1.GetAuthRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	cachedNow := func(authz string) bool {
		t.Helper()
		before := auths.Load()
		getAuth(authz)
		return auths.Load() == before
	}
	const t1, t2 = "Tok1aDSQ8W48IETeNBfxbBqwgwzWLTvFojSnLgiXP5X8NSoE", "Tok2aDSQ8W48IETeNBfxbBqwgwzWLTvFojSnLgiXP5X8NSoE"
	for _, a := range []string{"Bearer " + t1, "Bearer " + t2, demoBasic} {
		getAuth(a)
		if !cachedNow(a) {
			t.Fatalf("%.10s...: the second GetAuth was not answered from the cache", a)
		}
	}
	if _, err := f.tokens.DeleteToken(basicCtx(t), &authv1.DeleteTokenRequest{Token: t1}); err != nil {
		t.Fatal(err)
	}
	if cachedNow("Bearer " + t1) {
		t.Error("after DeleteToken(T), a call carrying Bearer T was answered from the cache")
	}
	if !cachedNow("Bearer " + t2) {
		t.Error("DeleteToken(T1) dropped T2's answer")
	}
	// Over REST too, and for every Bearer token.
	r, body := f.rest(t, http.MethodDelete, "/v1/tokens", http.Header{"Authorization": {demoBasic}})
	if r.StatusCode != http.StatusOK || string(body) != `{}` {
		t.Fatalf("REST DeleteAllTokens: %d %s", r.StatusCode, body)
	}
	for _, a := range []string{"Bearer " + t1, "Bearer " + t2} {
		if cachedNow(a) {
			t.Errorf("after DeleteAllTokens, %.10s... was answered from the cache", a)
		}
	}
	if !cachedNow(demoBasic) {
		t.Error("DeleteAllTokens dropped a Basic answer")
	}
}

// TestCachedAnswersEndAtTheTokensExpiry: with the cache on, a token
// answer through the facade that shows token T expiring ends the cached
// answers to calls carrying Bearer T at that time (less the skew):
// ListTokens showing T expired drops T's answer at once and keeps the
// next one out; CreateToken answering T about to expire keeps T's
// answers out from the start; UpdateToken extending T lets them be cached
// again; other tokens' answers stay.
func TestCachedAnswersEndAtTheTokensExpiry(t *testing.T) {
	t.Parallel()
	const t1, t2 = "Exp1aDSQ8W48IETeNBfxbBqwgwzWLTvFojSnLgiXP5X8NSoE", "Exp2aDSQ8W48IETeNBfxbBqwgwzWLTvFojSnLgiXP5X8NSoE"
	token := func(tok string, expires time.Time) string {
		return fmt.Sprintf(`{"name":"ci","ttl":60,"token":%q,"expired_on":%q,"uuid":"bac27d93-df33-4e47-b4a1-edfcae0d3654"}`,
			tok, expires.UTC().Format(time.RFC3339Nano))
	}
	var auths atomic.Int64
	var next atomic.Value // the token answer's payload
	up := newTokenUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/rest/auth" {
			auths.Add(1)
			answer(200, okBody)(w, r)
			return
		}
		answer(200, `{"success":true,"payload":`+next.Load().(string)+`}`)(w, r)
	})
	f := startFacade(t, up.URL, func(o *server.Options) { o.CacheTTL = time.Hour })
	cachedNow := func(tok string) bool {
		t.Helper()
		ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
		before := auths.Load()
		if _, err := f.client.GetAuth(ctx, &authv1.GetAuthRequest{}); err != nil {
			t.Fatal(err)
		}
		return auths.Load() == before
	}
	for _, tok := range []string{t1, t2} {
		cachedNow(tok)
		if !cachedNow(tok) {
			t.Fatalf("%.4s: the second GetAuth was not answered from the cache", tok)
		}
	}

	next.Store(`[` + token(t1, time.Now().Add(-time.Minute)) + `]`)
	if _, err := f.tokens.ListTokens(basicCtx(t), &authv1.ListTokensRequest{}); err != nil {
		t.Fatal(err)
	}
	if cachedNow(t1) || cachedNow(t1) {
		t.Error("after ListTokens showed T1 expired, a call carrying Bearer T1 was answered from the cache")
	}
	if !cachedNow(t2) {
		t.Error("ListTokens showing T1 expired dropped T2's answer")
	}

	// Extended: cached again. Over REST too.
	next.Store(token(t1, time.Now().Add(time.Hour)))
	r, body := f.restBody(t, http.MethodPatch, "/v1/tokens/bac27d93-df33-4e47-b4a1-edfcae0d3654",
		http.Header{"Authorization": {demoBasic}, "Content-Type": {"application/json"}}, `{"ttl":3600}`)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("REST UpdateToken: %d %s", r.StatusCode, body)
	}
	cachedNow(t1)
	if !cachedNow(t1) {
		t.Error("after UpdateToken extended T1, its answer was not cached again")
	}

	// Created expiring within the skew: never cached.
	const t3 = "Exp3aDSQ8W48IETeNBfxbBqwgwzWLTvFojSnLgiXP5X8NSoE"
	next.Store(token(t3, time.Now().Add(2*time.Second)))
	if _, err := f.tokens.CreateToken(basicCtx(t), &authv1.CreateTokenRequest{Name: "ci", Ttl: ptr(int32(60))}); err != nil {
		t.Fatal(err)
	}
	if cachedNow(t3) || cachedNow(t3) {
		t.Error("a call carrying a token about to expire was answered from the cache")
	}
}

// TestRESTBodiesAndRoutes: POST and PATCH bodies reach the service;
// malformed JSON and unknown fields are 400 before Opentact; the body cap
// is 413; a known path with another method is 405 with that route's
// Allow.
func TestRESTBodiesAndRoutes(t *testing.T) {
	t.Parallel()
	up := newTokenUpstream(t, nil)
	f := startFacade(t, up.URL)
	auth := http.Header{"Authorization": {demoBasic}}
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		allow                    string
	}{
		{"malformed JSON", http.MethodPost, "/v1/tokens", `{"name":`, http.StatusBadRequest, ""},
		{"not an object", http.MethodPost, "/v1/tokens", `"x"`, http.StatusBadRequest, ""},
		{"unknown field", http.MethodPost, "/v1/tokens", `{"name":"x","tll":3600}`, http.StatusBadRequest, ""},
		{"ttl as text", http.MethodPatch, "/v1/tokens/" + otherUUID, `{"ttl":"soon"}`, http.StatusBadRequest, ""},
		{"body too large", http.MethodPost, "/v1/tokens", `{"name":"` + strings.Repeat("n", 20<<10) + `"}`, http.StatusRequestEntityTooLarge, ""},
		{"PUT on /v1/tokens", http.MethodPut, "/v1/tokens", `{}`, http.StatusMethodNotAllowed, "DELETE, GET, POST"},
		{"GET on a token", http.MethodGet, "/v1/tokens/" + otherUUID, "", http.StatusMethodNotAllowed, "PATCH"},
		{"GET on delete", http.MethodGet, "/v1/tokens:delete", "", http.StatusMethodNotAllowed, "POST"},
		{"POST on auth", http.MethodPost, "/v1/auth", `{}`, http.StatusMethodNotAllowed, "GET"},
		{"unknown path", http.MethodGet, "/v1/nothing", "", http.StatusNotFound, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, body := f.restBody(t, tc.method, tc.path, auth, tc.body)
			if r.StatusCode != tc.code || r.Header.Get("Allow") != tc.allow {
				t.Errorf("%d, Allow %q: %s; want %d, Allow %q", r.StatusCode, r.Header.Get("Allow"), body, tc.code, tc.allow)
			}
			if r.StatusCode != http.StatusRequestEntityTooLarge {
				restStatus(t, body) // the gateway's error format
			}
		})
	}
	if n := len(up.requests()); n != 0 {
		t.Errorf("Opentact saw %d requests from bad REST calls", n)
	}
	// A body reaches the service, after the calls above on the same
	// connections.
	r, body := f.restBody(t, http.MethodPatch, "/v1/tokens/"+otherUUID, auth, `{"name":"from-rest","ttl":61}`)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("PATCH: %d %s", r.StatusCode, body)
	}
	if got := up.requests(); len(got) != 1 || got[0].Body != `{"name":"from-rest","ttl":61}` {
		t.Errorf("Opentact saw %+v", got)
	}
}

// TestTokenSecretsStaySecret: token values created, listed and deleted,
// and echoed back by Opentact in an error, never reach a log line (at
// debug level), an error message, a metric label or a trace.
func TestTokenSecretsStaySecret(t *testing.T) {
	t.Parallel()
	const created = "Cr8aDSQ8W48IETeNBfxbBqwgwzWLTvFojSnLgiXP5X8NSoE1"
	const deleted = "De1aDSQ8W48IETeNBfxbBqwgwzWLTvFojSnLgiXP5X8NSoE2"
	tokenBody := strings.ReplaceAll(tokenJSON, "7VLyaDSQ8W48IETeNBfxbBqwgwzWLTvFojSnLgiXP5X8NSoE", created)
	up := newTokenUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodDelete:
			// An Opentact that names the token it did not find.
			answer(404, `{"success":false,"status":404,"message":"Token `+strings.TrimPrefix(r.URL.Path, "/rest/token/")+` not found"}`)(w, r)
		case r.URL.Path == "/rest/token/list":
			answer(200, `{"success":true,"payload":[`+tokenBody+`]}`)(w, r)
		default:
			answer(200, `{"success":true,"payload":`+tokenBody+`}`)(w, r)
		}
	})
	exp := telExporter(t)
	f := startFacade(t, up.URL, func(o *server.Options) { o.TracerProvider = exp.tp })
	ctx := basicCtx(t)
	if _, err := f.tokens.CreateToken(ctx, &authv1.CreateTokenRequest{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.tokens.ListTokens(ctx, &authv1.ListTokensRequest{}); err != nil {
		t.Fatal(err)
	}
	_, err := f.tokens.DeleteToken(ctx, &authv1.DeleteTokenRequest{Token: deleted})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("DeleteToken: %v, want NotFound", err)
	}
	r, body := f.restBody(t, http.MethodPost, "/v1/tokens:delete", http.Header{"Authorization": {demoBasic}}, `{"token":"`+deleted+`"}`)
	if r.StatusCode != http.StatusNotFound {
		t.Fatalf("REST DeleteToken: %d %s", r.StatusCode, body)
	}
	_, raw := telScrape(t, f)
	telWaitFor(t, "spans of the delete calls", func() bool { return len(exp.spans()) >= 8 })
	var spans strings.Builder
	for _, s := range exp.spans() {
		spans.WriteString(telSpanText(s))
	}
	for what, text := range map[string]string{
		"the logs": f.logs.String(), "the gRPC error": err.Error(), "the REST error": string(body),
		"the metrics": raw, "the spans": spans.String(),
	} {
		for _, s := range []string{created, deleted} {
			if strings.Contains(text, s) {
				t.Errorf("%s hold a token: %s", what, s)
			}
		}
	}
	if !strings.Contains(spans.String(), "/rest/token/{token}") {
		t.Error("the client span of DeleteToken does not name its route")
	}
}

// TestEveryMethodIsObserved: every method of both services, over both
// doors, gets an access-log line, its gRPC server metrics, and its own
// endpoint label on the upstream metrics.
func TestEveryMethodIsObserved(t *testing.T) {
	t.Parallel()
	up := newTokenUpstream(t, nil)
	f := startFacade(t, up.URL)
	auth := http.Header{"Authorization": {demoBasic}}
	ctx := basicCtx(t)
	calls := []struct {
		method, endpoint string
		grpc             func() error
		rest             func() int
	}{
		{"AuthService/GetAuth", "auth", func() error { _, err := f.client.GetAuth(ctx, &authv1.GetAuthRequest{}); return err },
			func() int { r, _ := f.rest(t, "GET", "/v1/auth", auth); return r.StatusCode }},
		{"TokenService/CreateToken", "token.create", func() error {
			_, err := f.tokens.CreateToken(ctx, &authv1.CreateTokenRequest{Name: "x"})
			return err
		}, func() int { r, _ := f.restBody(t, "POST", "/v1/tokens", auth, `{"name":"x"}`); return r.StatusCode }},
		{"TokenService/ListTokens", "token.list", func() error { _, err := f.tokens.ListTokens(ctx, &authv1.ListTokensRequest{}); return err },
			func() int { r, _ := f.rest(t, "GET", "/v1/tokens", auth); return r.StatusCode }},
		{"TokenService/UpdateToken", "token.update", func() error {
			_, err := f.tokens.UpdateToken(ctx, &authv1.UpdateTokenRequest{Uuid: otherUUID, Name: ptr("x")})
			return err
		}, func() int {
			r, _ := f.restBody(t, "PATCH", "/v1/tokens/"+otherUUID, auth, `{"name":"x"}`)
			return r.StatusCode
		}},
		{"TokenService/DeleteToken", "token.delete", func() error {
			_, err := f.tokens.DeleteToken(ctx, &authv1.DeleteTokenRequest{Token: "t"})
			return err
		}, func() int {
			r, _ := f.restBody(t, "POST", "/v1/tokens:delete", auth, `{"token":"t"}`)
			return r.StatusCode
		}},
		{"TokenService/DeleteAllTokens", "token.delete_all", func() error {
			_, err := f.tokens.DeleteAllTokens(ctx, &authv1.DeleteAllTokensRequest{})
			return err
		}, func() int { r, _ := f.rest(t, "DELETE", "/v1/tokens", auth); return r.StatusCode }},
	}
	for _, c := range calls {
		if err := c.grpc(); err != nil {
			t.Fatalf("%s over gRPC: %v", c.method, err)
		}
		if code := c.rest(); code != http.StatusOK {
			t.Fatalf("%s over REST: %d", c.method, code)
		}
	}
	ms, _ := telScrape(t, f)
	lines := f.logs.lines("finished call")
	for _, c := range calls {
		service, method, _ := strings.Cut(c.method, "/")
		service = "opentact.auth.v1." + service
		for _, transport := range []string{"grpc", "rest"} {
			if !slices.ContainsFunc(lines, func(l map[string]any) bool {
				return l["grpc.service"] == service && l["grpc.method"] == method && l["transport"] == transport && l["grpc.code"] == "OK"
			}) {
				t.Errorf("no access-log line for %s over %s", c.method, transport)
			}
		}
		if got := ms.value(t, "grpc_server_handled_total", map[string]string{"grpc_service": service, "grpc_method": method, "grpc_code": "OK"}); got != 2 {
			t.Errorf("grpc_server_handled_total for %s = %v, want 2", c.method, got)
		}
		if got := ms.value(t, "opentact_upstream_requests_total", map[string]string{"endpoint": c.endpoint, "outcome": "2xx"}); got != 2 {
			t.Errorf("opentact_upstream_requests_total{endpoint=%q} = %v, want 2", c.endpoint, got)
		}
	}
}

// TestBothServicesAreDiscoverable: health answers per service name,
// reflection lists both services, and /openapi.json describes both.
func TestBothServicesAreDiscoverable(t *testing.T) {
	t.Parallel()
	f := startFacade(t, startSandbox(t).URL)
	ctx := basicCtx(t)
	hc := healthpb.NewHealthClient(f.conn)
	for _, name := range []string{"", "opentact.auth.v1.AuthService", "opentact.auth.v1.TokenService"} {
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: name})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health of %q: %v, %v", name, resp.GetStatus(), err)
		}
	}
	names := reflectedServices(t, f)
	for _, want := range []string{"opentact.auth.v1.AuthService", "opentact.auth.v1.TokenService"} {
		if !slices.Contains(names, want) {
			t.Errorf("reflection lists %v, not %s", names, want)
		}
	}
	_, body := f.rest(t, http.MethodGet, "/openapi.json", nil)
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	for path, method := range map[string]string{"/v1/auth": "get", "/v1/tokens": "post", "/v1/tokens/{uuid}": "patch", "/v1/tokens:delete": "post"} {
		if _, ok := doc.Paths[path][method]; !ok {
			t.Errorf("/openapi.json has no %s %s", method, path)
		}
	}
}

// TestTokenLifecycleOnTheSandbox: through the facade and the sandbox, a
// created token works at once as Bearer (for GetAuth and the token calls
// themselves), is listed, and once deleted is refused.
func TestTokenLifecycleOnTheSandbox(t *testing.T) {
	t.Parallel()
	f := startFacade(t, startSandbox(t).URL)
	created, err := f.tokens.CreateToken(basicCtx(t), &authv1.CreateTokenRequest{Name: "lifecycle", Ttl: ptr[int32](600)})
	if err != nil {
		t.Fatal(err)
	}
	secret := created.GetToken().GetToken()
	if len(secret) != 48 || created.GetToken().GetTtl() != 600 {
		t.Fatalf("created %v", created.GetToken())
	}
	bearer := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+secret)
	user, err := f.client.GetAuth(bearer, &authv1.GetAuthRequest{})
	if err != nil || user.GetUser().GetEmail() != sandbox.DemoEmail {
		t.Fatalf("GetAuth with the new token: %v, %v", user, err)
	}
	list, err := f.tokens.ListTokens(bearer, &authv1.ListTokensRequest{})
	if err != nil || !slices.ContainsFunc(list.GetTokens(), func(t *authv1.Token) bool { return t.GetUuid() == created.GetToken().GetUuid() }) {
		t.Fatalf("ListTokens with the new token: %v, %v", list, err)
	}
	r, body := f.restBody(t, http.MethodPost, "/v1/tokens:delete", http.Header{"Authorization": {demoBasic}}, `{"token":"`+secret+`"}`)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("REST DeleteToken: %d %s", r.StatusCode, body)
	}
	if _, err := f.client.GetAuth(bearer, &authv1.GetAuthRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("GetAuth with the deleted token: %v, want Unauthenticated", err)
	}
	_, err = f.tokens.DeleteToken(basicCtx(t), &authv1.DeleteTokenRequest{Token: secret})
	if st := status.Convert(err); st.Code() != codes.NotFound || !strings.Contains(st.Message(), "Token not found") {
		t.Errorf("deleting it again: %v, want NotFound Token not found", err)
	}
}

// telExporter is an in-memory span exporter and its tracer provider.
type spanRecorder struct {
	tp  *sdktrace.TracerProvider
	exp *tracetest.InMemoryExporter
}

func telExporter(t *testing.T) spanRecorder {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return spanRecorder{tp, exp}
}

func (r spanRecorder) spans() tracetest.SpanStubs { return r.exp.GetSpans() }

// reflectedServices lists the services reflection names, as grpcurl list
// does.
func reflectedServices(t *testing.T, f *facade) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := rpb.NewServerReflectionClient(f.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.CloseSend()
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	return names
}
