package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/faultupstream"
	"github.com/opentact-facade/opentact-facade/internal/server"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// The helpers of this file start with "tel", so as not to clash with those
// of the other test files of the package.

// telBasic is an Authorization: Basic value.
func telBasic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// telSecrets is what must never show up in a metric, a span or a log:
// what callers sent and what Opentact answered that identifies someone.
type telSecrets struct {
	mu     sync.Mutex
	values []string
}

func (s *telSecrets) add(vs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range vs {
		if v == "" {
			continue
		}
		s.values = append(s.values, v)
		// A Basic value's parts are secrets too.
		if b64, ok := strings.CutPrefix(v, "Basic "); ok {
			s.values = append(s.values, b64)
			if raw, err := base64.StdEncoding.DecodeString(b64); err == nil {
				user, password, _ := strings.Cut(string(raw), ":")
				s.values = append(s.values, user, password)
			}
		}
	}
}

// addUser adds what a GetAuth answer says about its user.
func (s *telSecrets) addUser(u *authv1.User) {
	s.add(u.GetEmail(), u.GetToken(), u.GetUuid(), u.GetAccount().GetEmail())
}

// addRESTUser adds the same from a REST answer's body.
func (s *telSecrets) addRESTUser(t *testing.T, body []byte) {
	t.Helper()
	var r struct {
		User struct {
			UUID    string `json:"uuid"`
			Email   string `json:"email"`
			Token   string `json:"token"`
			Account struct {
				Email string `json:"email"`
			} `json:"account"`
		} `json:"user"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.User.Email == "" || r.User.Token == "" {
		t.Fatalf("REST answer %s: want a user with an e-mail and a token (%v)", body, err)
	}
	s.add(r.User.Email, r.User.Token, r.User.UUID, r.User.Account.Email)
}

// in returns the secrets found in text, with where.
func (s *telSecrets) in(where, text string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var found []string
	for _, v := range s.values {
		if strings.Contains(text, v) {
			found = append(found, fmt.Sprintf("%s holds %q", where, v))
		}
	}
	return found
}

// telMetrics is one scrape of /metrics, parsed.
type telMetrics map[string]*dto.MetricFamily

// telScrape scrapes GET /metrics on the facade's admin port, in the
// Prometheus text format, and parses it.
func telScrape(t *testing.T, f *facade) (telMetrics, string) {
	t.Helper()
	resp, body := f.admin(t, "/metrics")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET /metrics: Content-Type %q, want the Prometheus text format", ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("GET /metrics is not the Prometheus text format: %v\n%s", err, body)
	}
	return mfs, string(body)
}

func telLabels(m *dto.Metric) map[string]string {
	l := map[string]string{}
	for _, p := range m.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return l
}

// find returns the series of family name whose labels include want.
func (ms telMetrics) find(name string, want map[string]string) []*dto.Metric {
	var out []*dto.Metric
	for _, m := range ms[name].GetMetric() {
		got := telLabels(m)
		ok := true
		for k, v := range want {
			if got[k] != v {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

// value is the value of the one series of family name whose labels
// include want: a counter's or gauge's value, a histogram's sample count.
func (ms telMetrics) value(t *testing.T, name string, want map[string]string) float64 {
	t.Helper()
	mf, ok := ms[name]
	if !ok {
		t.Fatalf("no metric %s in the scrape", name)
	}
	found := ms.find(name, want)
	if len(found) != 1 {
		t.Fatalf("%d series of %s with labels %v, want 1", len(found), name, want)
	}
	m := found[0]
	switch mf.GetType() {
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue()
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue()
	case dto.MetricType_UNTYPED:
		return m.GetUntyped().GetValue()
	case dto.MetricType_HISTOGRAM:
		return float64(m.GetHistogram().GetSampleCount())
	}
	t.Fatalf("%s is a %v", name, mf.GetType())
	return 0
}

// check compares values; want maps "name{k=v,...}" to a value.
func (ms telMetrics) check(t *testing.T, when string, want map[string]float64) {
	t.Helper()
	for key, w := range want {
		name, labels := telParseKey(key)
		if got := ms.value(t, name, labels); got != w {
			t.Errorf("%s: %s = %v, want %v", when, key, got, w)
		}
	}
}

func telParseKey(key string) (string, map[string]string) {
	name, rest, ok := strings.Cut(key, "{")
	labels := map[string]string{}
	if ok {
		for _, kv := range strings.Split(strings.TrimSuffix(rest, "}"), ",") {
			k, v, _ := strings.Cut(kv, "=")
			labels[k] = strings.Trim(v, `"`)
		}
	}
	return name, labels
}

// telLabelSecrets lists the secrets found in any label value of ms.
func telLabelSecrets(ms telMetrics, secrets *telSecrets) []string {
	var found []string
	for name, mf := range ms {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				found = append(found, secrets.in(name+"{"+l.GetName()+"}", l.GetValue())...)
			}
		}
	}
	return found
}

func telWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func telFaultUpstream(t *testing.T) *faultupstream.Server {
	t.Helper()
	up := faultupstream.Start()
	t.Cleanup(up.Close)
	return up
}

// telQuickRetries retries at once (almost), so that tests do not sleep.
func telQuickRetries(o *server.Options) {
	o.Retry = &upstream.RetryPolicy{MaxAttempts: 3, BaseBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}
}

func telCtx(t *testing.T, kv ...string) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return metadata.AppendToOutgoingContext(ctx, kv...)
}

var (
	telGetAuthLabels = `grpc_service="opentact.auth.v1.AuthService",grpc_method="GetAuth",grpc_type="unary"`
	telHandled       = func(code string) string {
		return `grpc_server_handled_total{` + telGetAuthLabels + `,grpc_code="` + code + `"}`
	}
	telHandling = `grpc_server_handling_seconds{` + telGetAuthLabels + `}`
	telStarted  = `grpc_server_started_total{` + telGetAuthLabels + `}`
)

func telRequests(outcome string) string {
	return `opentact_upstream_requests_total{endpoint="auth",outcome="` + outcome + `"}`
}

func telDurations(outcome string) string {
	return `opentact_upstream_request_duration_seconds{endpoint="auth",outcome="` + outcome + `"}`
}

func telCircuit(state string) string {
	return `opentact_upstream_circuit_state{state="` + state + `"}`
}

// telOutcomes are the outcomes, in the order telUpstreamWant takes their
// counts.
var telOutcomes = []string{"2xx", "3xx", "4xx", "5xx", "transport_error", "canceled"}

// telUpstreamWant is the requests and durations each outcome must count.
func telUpstreamWant(want map[string]float64, counts ...float64) {
	for i, o := range telOutcomes {
		want[telRequests(o)] = counts[i]
		want[telDurations(o)] = counts[i]
	}
}

// TestMetricsCountCallsAndUpstreamOutcomes makes calls of every kind over
// gRPC and REST, scrapes /metrics after each phase, and checks the exact
// counts; then that no label of any scrape holds a secret.
func TestMetricsCountCallsAndUpstreamOutcomes(t *testing.T) {
	t.Parallel()
	up := telFaultUpstream(t)
	f := startFacade(t, up.URL(), telQuickRetries, func(o *server.Options) {
		o.Breaker = &upstream.BreakerPolicy{Failures: 3, OpenFor: time.Minute}
	})
	secrets := &telSecrets{}
	var scrapes []string
	scrape := func() telMetrics {
		t.Helper()
		ms, raw := telScrape(t, f)
		scrapes = append(scrapes, raw)
		for _, s := range telLabelSecrets(ms, secrets) {
			t.Errorf("label: %s", s)
		}
		return ms
	}

	// Before any call: every series there, at 0, the breaker closed.
	ms := scrape()
	want := map[string]float64{
		telHandled("OK"): 0, telHandling: 0, telStarted: 0,
		"opentact_upstream_retries_total{endpoint=auth}": 0, "opentact_upstream_circuit_rejections_total{endpoint=auth}": 0,
		"opentact_upstream_requests_in_flight{endpoint=auth}": 0,
		telCircuit("closed"): 1, telCircuit("half-open"): 0, telCircuit("open"): 0,
	}
	telUpstreamWant(want, 0, 0, 0, 0, 0, 0)
	ms.check(t, "before any call", want)

	// Phase 1: a gRPC call and a REST call that succeed.
	basicCred := telBasic("tel.metrics.user@secret-example.test", "pw-SECRET-metrics-7d1e")
	secrets.add(basicCred)
	resp, err := f.client.GetAuth(telCtx(t, "authorization", basicCred), &authv1.GetAuthRequest{})
	if err != nil {
		t.Fatalf("gRPC GetAuth: %v", err)
	}
	secrets.addUser(resp.GetUser())
	r, body := f.rest(t, http.MethodGet, "/v1/auth", http.Header{"Authorization": {basicCred}})
	if r.StatusCode != http.StatusOK {
		t.Fatalf("REST GetAuth: %d %s", r.StatusCode, body)
	}
	secrets.addRESTUser(t, body)

	ms = scrape()
	want = map[string]float64{
		telHandled("OK"): 2, telHandled("Unauthenticated"): 0, telHandled("Unavailable"): 0,
		telHandling: 2, telStarted: 2,
		"opentact_upstream_retries_total{endpoint=auth}": 0, "opentact_upstream_circuit_rejections_total{endpoint=auth}": 0,
		"opentact_upstream_requests_in_flight{endpoint=auth}": 0,
		telCircuit("closed"): 1, telCircuit("open"): 0,
	}
	telUpstreamWant(want, 2, 0, 0, 0, 0, 0)
	ms.check(t, "after 2 successes", want)

	// The histogram is a real one, with buckets.
	if h := ms.find("grpc_server_handling_seconds", map[string]string{"grpc_method": "GetAuth"}); len(h) != 1 ||
		len(h[0].GetHistogram().GetBucket()) == 0 || h[0].GetHistogram().GetSampleSum() <= 0 {
		t.Errorf("grpc_server_handling_seconds for GetAuth: %v, want one histogram with buckets and a positive sum", h)
	}
	if h := ms.find("opentact_upstream_request_duration_seconds", map[string]string{"endpoint": "auth", "outcome": "2xx"}); len(h) != 1 ||
		len(h[0].GetHistogram().GetBucket()) == 0 || h[0].GetHistogram().GetSampleSum() <= 0 {
		t.Errorf("opentact_upstream_request_duration_seconds{outcome=2xx}: %v, want a histogram with buckets and a positive sum", h)
	}

	// Runtime, process and build.
	if g := ms.value(t, "go_goroutines", nil); g <= 0 {
		t.Errorf("go_goroutines = %v", g)
	}
	for _, name := range []string{"process_cpu_seconds_total", "process_resident_memory_bytes", "process_start_time_seconds", "process_open_fds", "go_memstats_alloc_bytes"} {
		if _, ok := ms[name]; !ok {
			t.Errorf("no %s in the scrape", name)
		}
	}
	if v := ms.value(t, "opentact_facade_build_info", nil); v != 1 {
		t.Errorf("opentact_facade_build_info = %v, want 1", v)
	}
	bi := telLabels(ms.find("opentact_facade_build_info", nil)[0])
	if bi["version"] == "" || bi["commit"] == "" || bi["goversion"] != runtime.Version() || len(bi) != 3 {
		t.Errorf("opentact_facade_build_info labels %v: want version, commit and goversion=%s", bi, runtime.Version())
	}

	// Phase 2: a 401 (gRPC), a 503 retried into a 200 (REST), and a TCP
	// reset on every attempt (gRPC), whose 3 failures in a row open the
	// breaker.
	tok401 := "fault:unauthorized:tok-SECRET-401-b3c9"
	secrets.add(tok401)
	_, err = f.client.GetAuth(telCtx(t, "x-auth-token", tok401), &authv1.GetAuthRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("401: %v, want Unauthenticated", err)
	}
	tokFlap := "fault:flap:tok-SECRET-flap-51aa"
	secrets.add(tokFlap)
	r, body = f.rest(t, http.MethodGet, "/v1/auth", http.Header{"X-Auth-Token": {tokFlap}})
	if r.StatusCode != http.StatusOK {
		t.Fatalf("REST after a 503: %d %s", r.StatusCode, body)
	}
	secrets.addRESTUser(t, body)
	tokReset := "fault:reset:tok-SECRET-reset-0e77"
	secrets.add(tokReset)
	_, err = f.client.GetAuth(telCtx(t, "x-auth-token", tokReset), &authv1.GetAuthRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("reset: %v, want Unavailable", err)
	}

	ms = scrape()
	want = map[string]float64{
		telHandled("OK"): 3, telHandled("Unauthenticated"): 1, telHandled("Unavailable"): 1,
		telHandling: 5, telStarted: 5,
		// 1 retry after the 503, 2 after the resets.
		"opentact_upstream_retries_total{endpoint=auth}":            3,
		"opentact_upstream_circuit_rejections_total{endpoint=auth}": 0,
		"opentact_upstream_requests_in_flight{endpoint=auth}":       0,
		telCircuit("closed"): 0, telCircuit("half-open"): 0, telCircuit("open"): 1,
	}
	telUpstreamWant(want, 3, 0, 1, 1, 3, 0)
	ms.check(t, "after a 401, a retried 503 and 3 resets", want)

	// Phase 3: the breaker is open; calls fail at once, without a request.
	_, err = f.client.GetAuth(telCtx(t, "authorization", basicCred), &authv1.GetAuthRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("open breaker, gRPC: %v, want Unavailable", err)
	}
	r, body = f.rest(t, http.MethodGet, "/v1/auth", http.Header{"Authorization": {basicCred}})
	if r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("open breaker, REST: %d %s", r.StatusCode, body)
	}

	// Calls that never reach Opentact, open breaker or not: no
	// credential; a method that does not exist; a path that does not
	// exist. The names of the last two are the caller's, and no label may
	// take them.
	if _, err = f.client.GetAuth(telCtx(t), &authv1.GetAuthRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no credential: %v, want Unauthenticated", err)
	}
	method := "/opentact.auth.v1.AuthService/tok-SECRET-method-9a41"
	secrets.add("tok-SECRET-method-9a41", "tok-SECRET-path-9a41")
	if err = f.conn.Invoke(telCtx(t), method, &authv1.GetAuthRequest{}, &authv1.GetAuthResponse{}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("unknown method: %v, want Unimplemented", err)
	}
	if r, body = f.rest(t, http.MethodGet, "/v1/tok-SECRET-path-9a41", nil); r.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown path: %d %s", r.StatusCode, body)
	}

	ms = scrape()
	want = map[string]float64{
		telHandled("OK"): 3, telHandled("Unauthenticated"): 2, telHandled("Unavailable"): 3,
		telHandling: 8, telStarted: 8,
		"opentact_upstream_retries_total{endpoint=auth}":            3,
		"opentact_upstream_circuit_rejections_total{endpoint=auth}": 2,
		"opentact_upstream_requests_in_flight{endpoint=auth}":       0,
		telCircuit("closed"): 0, telCircuit("open"): 1,
	}
	telUpstreamWant(want, 3, 0, 1, 1, 3, 0)
	ms.check(t, "with the breaker open", want)

	// No secret anywhere in any scrape, labels or not.
	for i, raw := range scrapes {
		for _, s := range secrets.in(fmt.Sprintf("scrape %d", i), raw) {
			t.Error(s)
		}
	}
	if len(secrets.values) < 12 {
		t.Fatalf("only %d secrets checked: %q", len(secrets.values), secrets.values)
	}
}

// TestMetricsUpstreamInFlight holds calls upstream and watches
// opentact_upstream_requests_in_flight go up and back down, and the
// abandoned requests counted as canceled.
func TestMetricsUpstreamInFlight(t *testing.T) {
	t.Parallel()
	up := telFaultUpstream(t)
	// The calls hang until the test ends them: no bound of the facade's
	// may end them first on a loaded machine.
	f := startFacade(t, up.URL(), func(o *server.Options) {
		o.UpstreamTimeout, o.MaxCallTimeout = 2*guard, 2*guard
		o.UpstreamTimeouts.ResponseHeader = 2 * guard
	})
	inFlight := func() float64 {
		ms, _ := telScrape(t, f)
		return ms.value(t, "opentact_upstream_requests_in_flight", map[string]string{"endpoint": "auth"})
	}

	// A gRPC call that hangs upstream.
	ctx, cancelGRPC := context.WithCancel(metadata.AppendToOutgoingContext(context.Background(), "x-auth-token", "fault:hang:grpc"))
	defer cancelGRPC()
	grpcDone := make(chan error, 1)
	go func() {
		_, err := f.client.GetAuth(ctx, &authv1.GetAuthRequest{})
		grpcDone <- err
	}()
	telWaitFor(t, "the gRPC call to reach the upstream", func() bool { return up.Requests() == 1 })
	if n := inFlight(); n != 1 {
		t.Errorf("in flight with one call hanging: %v, want 1", n)
	}

	// And a REST call.
	rctx, cancelREST := context.WithCancel(context.Background())
	defer cancelREST()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, f.restURL+"/v1/auth", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", "fault:hang:rest")
	restDone := make(chan error, 1)
	go func() {
		resp, err := (&http.Client{Transport: f.http.Transport}).Do(req) // no timeout: the test ends it
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("REST call answered %d", resp.StatusCode)
		}
		restDone <- err
	}()
	telWaitFor(t, "the REST call to reach the upstream", func() bool { return up.Requests() == 2 })
	if n := inFlight(); n != 2 {
		t.Errorf("in flight with two calls hanging: %v, want 2", n)
	}

	cancelGRPC()
	if err := <-grpcDone; status.Code(err) != codes.Canceled {
		t.Errorf("gRPC call: %v, want Canceled", err)
	}
	cancelREST()
	if err := <-restDone; err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("REST call: %v, want context canceled", err)
	}
	// The calls may end before their abandoned requests to Opentact do,
	// and one scrape is no snapshot (a request may be out of flight and
	// not yet counted): wait until everything adds up, then check.
	want := map[string]float64{"opentact_upstream_requests_in_flight{endpoint=auth}": 0, telHandled("Canceled"): 2}
	telUpstreamWant(want, 0, 0, 0, 0, 0, 2)
	var ms telMetrics
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		ms, _ = telScrape(t, f)
		done := true
		for key, w := range want {
			if name, labels := telParseKey(key); ms.value(t, name, labels) != w {
				done = false
			}
		}
		if done {
			break
		}
	}
	ms.check(t, "after both calls gave up", want)
}

// Trace context of the callers in the trace tests.
const (
	telGRPCTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	telGRPCParent = "00f067aa0ba902b7"
	telRESTTrace  = "0af7651916cd43dd8448eb211c80319c"
	telRESTParent = "b7ad6b7169203331"
	telErrTrace   = "5e0c63257de34c92bf9efcd03927272e"
	telErrParent  = "a1b2c3d4e5f60718"
	telTraceState = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
)

func telTraceparent(traceID, parent string) string { return "00-" + traceID + "-" + parent + "-01" }

// telSpansOf returns the server spans of GetAuth and the client spans
// under them in trace traceID.
func telSpansOf(spans tracetest.SpanStubs, traceID string) (servers, clients []tracetest.SpanStub) {
	for _, s := range spans {
		if s.SpanContext.TraceID().String() != traceID {
			continue
		}
		switch s.SpanKind {
		case trace.SpanKindServer:
			servers = append(servers, s)
		case trace.SpanKindClient:
			clients = append(clients, s)
		}
	}
	return servers, clients
}

// telHeaderWith returns the upstream request whose traceparent names
// traceID.
func telHeaderWith(up *recorder, traceID string) http.Header {
	up.mu.Lock()
	defer up.mu.Unlock()
	for _, h := range up.headers {
		if strings.Contains(h.Get("Traceparent"), traceID) {
			return h
		}
	}
	return nil
}

// telSpanText is everything a span carries, for the secrets check.
func telSpanText(s tracetest.SpanStub) string {
	var b strings.Builder
	kv := func(attrs []attribute.KeyValue) {
		for _, a := range attrs {
			fmt.Fprintf(&b, "%s=%s\n", a.Key, a.Value.Emit())
		}
	}
	b.WriteString(s.Name + "\n" + s.Status.Description + "\n")
	kv(s.Attributes)
	for _, e := range s.Events {
		b.WriteString(e.Name + "\n")
		kv(e.Attributes)
	}
	for _, l := range s.Links {
		kv(l.Attributes)
	}
	if s.Resource != nil {
		kv(s.Resource.Attributes())
	}
	return b.String()
}

// TestTraceServerAndUpstreamSpans continues a gRPC caller's and a REST
// caller's trace: a server span for GetAuth under the caller's span, a
// client span under it for the request to Opentact, and Opentact given
// the client span's traceparent (and the caller's tracestate).
func TestTraceServerAndUpstreamSpans(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })

	const badToken = "tok-SECRET-trace-400-77ac"
	up := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		if tok := r.Header.Get("X-Auth-Token"); tok != "" {
			// An Opentact that echoes the credential in its message.
			answer(http.StatusBadRequest, `{"success":false,"status":400,"message":"bad token `+tok+`"}`)(w, r)
			return
		}
		answer(http.StatusOK, okBody)(w, r)
	})
	f := startFacade(t, up.URL, func(o *server.Options) { o.TracerProvider = tp })

	secrets := &telSecrets{}
	cred := telBasic("tel.trace.user@secret-example.test", "pw-SECRET-trace-c0ff")
	secrets.add(cred, badToken, "someone@example.com",
		"eyJhbGciOiJIUzI1NiJ9.eyJ1dWlkIjoidS0xIn0.c2lnbmF0dXJl", "eyJ1dWlkIjoidS0xIn0")

	_, err := f.client.GetAuth(telCtx(t,
		"authorization", cred,
		"traceparent", telTraceparent(telGRPCTrace, telGRPCParent),
		"tracestate", telTraceState,
	), &authv1.GetAuthRequest{})
	if err != nil {
		t.Fatalf("gRPC GetAuth: %v", err)
	}
	r, body := f.rest(t, http.MethodGet, "/v1/auth", http.Header{
		"Authorization": {cred},
		"Traceparent":   {telTraceparent(telRESTTrace, telRESTParent)},
		"Tracestate":    {telTraceState},
	})
	if r.StatusCode != http.StatusOK {
		t.Fatalf("REST GetAuth: %d %s", r.StatusCode, body)
	}
	// A failing call, whose error the spans record.
	_, err = f.client.GetAuth(telCtx(t,
		"x-auth-token", badToken,
		"traceparent", telTraceparent(telErrTrace, telErrParent),
	), &authv1.GetAuthRequest{})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("GetAuth answered 400: %v, want InvalidArgument", err)
	}

	for _, c := range []struct {
		via, traceID, parent, state string
	}{
		{"gRPC", telGRPCTrace, telGRPCParent, telTraceState},
		{"REST", telRESTTrace, telRESTParent, telTraceState},
		{"gRPC, failing", telErrTrace, telErrParent, ""},
	} {
		// The server span ends after the answer is sent: wait for it.
		var servers, clients []tracetest.SpanStub
		telWaitFor(t, c.via+" spans", func() bool {
			servers, clients = telSpansOf(exp.GetSpans(), c.traceID)
			return len(servers) > 0 && len(clients) > 0
		})
		if len(servers) != 1 || len(clients) != 1 {
			t.Errorf("%s: %d server and %d client spans in the caller's trace, want 1 and 1", c.via, len(servers), len(clients))
			continue
		}
		srv, cli := servers[0], clients[0]
		if srv.Name != "opentact.auth.v1.AuthService/GetAuth" {
			t.Errorf("%s: server span %q", c.via, srv.Name)
		}
		if got := srv.Parent.SpanID().String(); got != c.parent || !srv.Parent.IsRemote() {
			t.Errorf("%s: server span's parent %s (remote %v), want the caller's %s", c.via, got, srv.Parent.IsRemote(), c.parent)
		}
		if got := srv.SpanContext.TraceState().String(); got != c.state {
			t.Errorf("%s: server span's tracestate %q, want %q", c.via, got, c.state)
		}
		if cli.Parent.SpanID() != srv.SpanContext.SpanID() {
			t.Errorf("%s: client span %q's parent %s, want the server span %s", c.via, cli.Name, cli.Parent.SpanID(), srv.SpanContext.SpanID())
		}
		if cli.Name != "opentact GET /rest/auth" {
			t.Errorf("%s: client span %q", c.via, cli.Name)
		}
		h := telHeaderWith(up, c.traceID)
		if h == nil {
			t.Errorf("%s: the upstream got no traceparent in the caller's trace", c.via)
			continue
		}
		if got, want := h.Get("Traceparent"), telTraceparent(c.traceID, cli.SpanContext.SpanID().String()); got != want {
			t.Errorf("%s: upstream Traceparent %q, want %q (the client span's)", c.via, got, want)
		}
		if got := h.Get("Tracestate"); got != c.state {
			t.Errorf("%s: upstream Tracestate %q, want %q", c.via, got, c.state)
		}
		if got := h.Values("Traceparent"); len(got) != 1 {
			t.Errorf("%s: upstream got %d traceparent values %q, want 1", c.via, len(got), got)
		}
	}

	// The failing call's server span records its code. (Its status stays
	// Unset: by OpenTelemetry's semantic conventions a server span is an
	// error only for the server's own faults, not InvalidArgument.)
	if servers, _ := telSpansOf(exp.GetSpans(), telErrTrace); len(servers) == 1 {
		var code string
		for _, a := range servers[0].Attributes {
			if a.Key == "rpc.response.status_code" || a.Key == "rpc.grpc.status_code" {
				code = a.Value.Emit()
			}
		}
		if code != "INVALID_ARGUMENT" && code != "3" {
			t.Errorf("failing call: server span attributes %v do not record INVALID_ARGUMENT", servers[0].Attributes)
		}
	}
	spans := exp.GetSpans()
	if len(spans) != 6 {
		t.Errorf("%d spans, want 6 (a server and a client span per call)", len(spans))
	}
	for _, s := range spans {
		for _, found := range secrets.in(fmt.Sprintf("span %q", s.Name), telSpanText(s)) {
			t.Error(found)
		}
	}
}

// TestTraceWithoutTracerProvider checks that, with tracing off, the
// facade sends Opentact no trace context of its own, and reports what a
// caller's own traceparent becomes.
func TestTraceWithoutTracerProvider(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, answer(http.StatusOK, okBody))
	f := startFacade(t, up.URL)
	cred := telBasic("tel.notrace@secret-example.test", "pw-SECRET-notrace")
	traceHeaders := []string{"Traceparent", "Tracestate", "Baggage"}

	if _, err := f.client.GetAuth(telCtx(t, "authorization", cred), &authv1.GetAuthRequest{}); err != nil {
		t.Fatal(err)
	}
	r, body := f.rest(t, http.MethodGet, "/v1/auth", http.Header{"Authorization": {cred}})
	if r.StatusCode != http.StatusOK {
		t.Fatalf("REST: %d %s", r.StatusCode, body)
	}
	up.mu.Lock()
	for i, h := range up.headers {
		for _, k := range traceHeaders {
			if v := h.Values(k); v != nil {
				t.Errorf("request %d: the upstream got %s %q though nobody traces", i, k, v)
			}
		}
	}
	up.mu.Unlock()

	// A caller that sends its own trace context: not designed either way;
	// log what Opentact gets.
	if _, err := f.client.GetAuth(telCtx(t, "authorization", cred,
		"traceparent", telTraceparent(telGRPCTrace, telGRPCParent), "tracestate", telTraceState), &authv1.GetAuthRequest{}); err != nil {
		t.Fatal(err)
	}
	r, body = f.rest(t, http.MethodGet, "/v1/auth", http.Header{"Authorization": {cred},
		"Traceparent": {telTraceparent(telRESTTrace, telRESTParent)}, "Tracestate": {telTraceState}})
	if r.StatusCode != http.StatusOK {
		t.Fatalf("REST: %d %s", r.StatusCode, body)
	}
	up.mu.Lock()
	for i, via := range []string{"gRPC", "REST"} {
		h := up.headers[2+i]
		got := map[string][]string{}
		for _, k := range traceHeaders {
			if v := h.Values(k); v != nil {
				got[k] = v
			}
		}
		t.Logf("tracing off, %s caller sent a traceparent: the upstream got trace headers %v", via, got)
	}
	up.mu.Unlock()
	if n := len(f.logs.lines("finished call")); n != 4 {
		t.Errorf("%d finished call lines, want 4", n)
	}
	for _, l := range f.logs.lines("finished call") {
		if id, ok := l["trace_id"]; ok {
			t.Errorf("tracing off, yet a finished call line has trace_id %v", id)
		}
	}
}

// TestTraceBaggageStaysHere: a caller's W3C baggage is its own business,
// not Opentact's: the facade forwards credentials and the trace context,
// nothing else.
func TestTraceBaggageStaysHere(t *testing.T) {
	t.Parallel()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewInMemoryExporter()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	up := newRecorder(t, answer(http.StatusOK, okBody))
	f := startFacade(t, up.URL, func(o *server.Options) { o.TracerProvider = tp })
	cred := telBasic("tel.baggage@secret-example.test", "pw-SECRET-baggage")

	if _, err := f.client.GetAuth(telCtx(t, "authorization", cred,
		"traceparent", telTraceparent(telGRPCTrace, telGRPCParent),
		"baggage", "user.email=victim%40example.com,session=SECRET-sess-1"), &authv1.GetAuthRequest{}); err != nil {
		t.Fatal(err)
	}
	r, body := f.rest(t, http.MethodGet, "/v1/auth", http.Header{"Authorization": {cred},
		"Traceparent": {telTraceparent(telRESTTrace, telRESTParent)},
		"Baggage":     {"user.email=victim%40example.com,session=SECRET-sess-2"}})
	if r.StatusCode != http.StatusOK {
		t.Fatalf("REST: %d %s", r.StatusCode, body)
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	for i, h := range up.headers {
		if h.Get("Traceparent") == "" {
			t.Errorf("request %d: no traceparent", i)
		}
		if v := h.Values("Baggage"); v != nil {
			t.Errorf("request %d: the upstream got the caller's baggage %q", i, v)
		}
	}
}

// telDialer dials gRPC and records the local address of each connection,
// which the server sees as the peer.
type telDialer struct {
	mu    sync.Mutex
	local []string
}

func (d *telDialer) dial(ctx context.Context, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err == nil {
		d.mu.Lock()
		d.local = append(d.local, c.LocalAddr().String())
		d.mu.Unlock()
	}
	return c, err
}

func (d *telDialer) addrs() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.local...)
}

var telTraceID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestAccessLogOneLinePerCall makes gRPC and REST calls and checks each one's
// finished call line.
func TestAccessLogOneLinePerCall(t *testing.T) {
	t.Parallel()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(tracetest.NewInMemoryExporter()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	up := telFaultUpstream(t)
	up.SetFlap(2) // two 503s, then a 200
	f := startFacade(t, up.URL(), telQuickRetries, func(o *server.Options) {
		o.TracerProvider = tp
		o.Breaker = &upstream.BreakerPolicy{} // off: the resets must not open it
	})

	// Our own gRPC connection, to know the address the server sees.
	dialer := &telDialer{}
	conn, err := grpc.NewClient("passthrough:///"+f.conn.Target(),
		grpc.WithContextDialer(dialer.dial),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	client := authv1.NewAuthServiceClient(conn)

	secrets := &telSecrets{}
	cred := telBasic("tel.log.user@secret-example.test", "pw-SECRET-log-4b1d")
	tokBad := "fault:unauthorized:tok-SECRET-log-401"
	tokFlap := "fault:flap:tok-SECRET-log-flap"
	tokReset := "fault:reset:tok-SECRET-log-reset"
	tokMalformed := "tok-SECRET-log-twice"
	secrets.add(cred, tokBad, tokFlap, tokReset, tokMalformed)

	seen := 0
	// next returns the one finished call line the call just made.
	next := func(what string) map[string]any {
		t.Helper()
		lines := f.logs.lines("finished call")
		if len(lines) != seen+1 {
			t.Fatalf("%s: %d finished call lines after %d calls, want one per call:\n%s", what, len(lines), seen+1, f.logs.String())
		}
		seen++
		return lines[seen-1]
	}
	grpcCall := func(kv ...string) error {
		t.Helper()
		resp, err := client.GetAuth(telCtx(t, kv...), &authv1.GetAuthRequest{})
		if err == nil {
			secrets.addUser(resp.GetUser())
		}
		return err
	}
	// REST from a plain http.Client on loopback.
	restCall := func(h http.Header) int {
		t.Helper()
		r, body := f.rest(t, http.MethodGet, "/v1/auth", h)
		if r.StatusCode == http.StatusOK {
			secrets.addRESTUser(t, body)
		}
		return r.StatusCode
	}

	type want struct {
		code      string
		transport string
		peer      string // "" for the gRPC connection's local address
		status    int    // upstream.status; -1: no upstream fields
		attempts  int
		traceID   string // "" for any valid one
	}
	check := func(what string, l map[string]any, w want) {
		t.Helper()
		if l["grpc.method"] != "GetAuth" || l["grpc.service"] != "opentact.auth.v1.AuthService" {
			t.Errorf("%s: grpc.service %v, grpc.method %v", what, l["grpc.service"], l["grpc.method"])
		}
		if l["grpc.code"] != w.code {
			t.Errorf("%s: grpc.code %v, want %s", what, l["grpc.code"], w.code)
		}
		if ms, ok := l["grpc.time_ms"].(string); !ok {
			t.Errorf("%s: grpc.time_ms %#v", what, l["grpc.time_ms"])
		} else if v, err := strconv.ParseFloat(ms, 64); err != nil || v < 0 {
			t.Errorf("%s: grpc.time_ms %q", what, ms)
		}
		if l["transport"] != w.transport {
			t.Errorf("%s: transport %v, want %s", what, l["transport"], w.transport)
		}
		peer := w.peer
		if peer == "" {
			if a := dialer.addrs(); len(a) == 1 {
				peer = a[0]
			} else {
				t.Errorf("%s: the client dialed %d connections: %v", what, len(a), a)
			}
		}
		if l["peer.address"] != peer {
			t.Errorf("%s: peer.address %v, want %s", what, l["peer.address"], peer)
		}
		if w.status < 0 {
			for _, k := range []string{"upstream.status", "upstream.attempts"} {
				if v, ok := l[k]; ok {
					t.Errorf("%s: %s %v on a call that never reached Opentact", what, k, v)
				}
			}
		} else {
			if l["upstream.status"] != float64(w.status) {
				t.Errorf("%s: upstream.status %v, want %d", what, l["upstream.status"], w.status)
			}
			if l["upstream.attempts"] != float64(w.attempts) {
				t.Errorf("%s: upstream.attempts %v, want %d", what, l["upstream.attempts"], w.attempts)
			}
		}
		id, _ := l["trace_id"].(string)
		if w.traceID != "" && id != w.traceID {
			t.Errorf("%s: trace_id %q, want the caller's %s", what, id, w.traceID)
		} else if !telTraceID.MatchString(id) {
			t.Errorf("%s: trace_id %q", what, id)
		}
	}

	// gRPC, success, in the caller's trace.
	if err := grpcCall("authorization", cred, "traceparent", telTraceparent(telGRPCTrace, telGRPCParent)); err != nil {
		t.Fatal(err)
	}
	check("gRPC OK", next("gRPC OK"), want{code: "OK", transport: "grpc", status: 200, attempts: 1, traceID: telGRPCTrace})

	// REST, success, in the caller's trace.
	if code := restCall(http.Header{"Authorization": {cred}, "Traceparent": {telTraceparent(telRESTTrace, telRESTParent)}}); code != http.StatusOK {
		t.Fatalf("REST OK: %d", code)
	}
	check("REST OK", next("REST OK"), want{code: "OK", transport: "rest", peer: "127.0.0.1", status: 200, attempts: 1, traceID: telRESTTrace})

	// REST, with a forged X-Forwarded-For: the peer is still the TCP peer.
	for _, xff := range [][]string{{"6.6.6.6"}, {"6.6.6.6, 7.7.7.7"}, {"6.6.6.6", "7.7.7.7"}, {"6.6.6.6,"}} {
		if code := restCall(http.Header{"Authorization": {cred}, "X-Forwarded-For": xff}); code != http.StatusOK {
			t.Fatalf("REST with X-Forwarded-For %q: %d", xff, code)
		}
		check(fmt.Sprintf("REST, X-Forwarded-For %q", xff), next("REST XFF"), want{code: "OK", transport: "rest", peer: "127.0.0.1", status: 200, attempts: 1})
	}
	// gRPC with x-forwarded-for metadata: not a REST call, not rewritten.
	if err := grpcCall("authorization", cred, "x-forwarded-for", "6.6.6.6"); err != nil {
		t.Fatal(err)
	}
	check("gRPC, x-forwarded-for", next("gRPC XFF"), want{code: "OK", transport: "grpc", status: 200, attempts: 1})

	// Bad credentials: Opentact's 401.
	if err := grpcCall("x-auth-token", tokBad); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("gRPC 401: %v", err)
	}
	check("gRPC 401", next("gRPC 401"), want{code: "Unauthenticated", transport: "grpc", status: 401, attempts: 1})
	if code := restCall(http.Header{"X-Auth-Token": {tokBad}}); code != http.StatusUnauthorized {
		t.Fatalf("REST 401: %d", code)
	}
	check("REST 401", next("REST 401"), want{code: "Unauthenticated", transport: "rest", peer: "127.0.0.1", status: 401, attempts: 1})

	// Retried twice: 503, 503, 200.
	if code := restCall(http.Header{"X-Auth-Token": {tokFlap}}); code != http.StatusOK {
		t.Fatalf("REST after two 503s: %d", code)
	}
	check("REST retried twice", next("REST flap"), want{code: "OK", transport: "rest", peer: "127.0.0.1", status: 200, attempts: 3})

	// No answer at all, three times.
	if err := grpcCall("x-auth-token", tokReset); status.Code(err) != codes.Unavailable {
		t.Fatalf("gRPC reset: %v", err)
	}
	check("gRPC reset", next("gRPC reset"), want{code: "Unavailable", transport: "grpc", status: 0, attempts: 3})

	// Never reaching Opentact: no credential, a malformed one.
	if err := grpcCall(); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("gRPC without credentials: %v", err)
	}
	check("gRPC, no credential", next("gRPC none"), want{code: "Unauthenticated", transport: "grpc", status: -1})
	if code := restCall(nil); code != http.StatusUnauthorized {
		t.Fatalf("REST without credentials: %d", code)
	}
	check("REST, no credential", next("REST none"), want{code: "Unauthenticated", transport: "rest", peer: "127.0.0.1", status: -1})
	if err := grpcCall("x-auth-token", tokMalformed, "x-auth-token", tokMalformed); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("gRPC with a credential twice: %v", err)
	}
	check("gRPC, credential twice", next("gRPC twice"), want{code: "InvalidArgument", transport: "grpc", status: -1})

	if got := up.Requests(); got < 13 {
		t.Errorf("the upstream got %d requests, want at least 13", got)
	}
	logs := f.logs.String()
	for _, s := range secrets.in("the logs", logs) {
		t.Error(s)
	}
}

// TestTraceShowsRoutesNotPathValues: with tracing on, every call to
// Opentact, over both doors, has a client span named by its route
// template and whose url.full is the template, not the real URL: no path
// value (a token's uuid, a token's secret), raw or escaped, reaches a span's
// name, attribute or event; Opentact still gets the real, escaped path.
func TestTraceShowsRoutesNotPathValues(t *testing.T) {
	t.Parallel()
	const uuid = "5b1c0f3e-7d2a-4c69-9e1b-3f8a2d4c6e70"
	const secret = "Sec/RET+tok en%41~trace"
	up := newTokenUpstream(t, nil)
	exp := telExporter(t)
	f := startFacade(t, up.URL, func(o *server.Options) { o.TracerProvider = exp.tp })
	auth := http.Header{"Authorization": {demoBasic}}
	ctx := basicCtx(t)

	calls := []struct {
		name, route, uri string
		grpc             func() error
		method, path     string
		body             string
	}{
		{"GetAuth", "GET /rest/auth", "/rest/auth", func() error {
			_, err := f.client.GetAuth(ctx, &authv1.GetAuthRequest{})
			return err
		}, http.MethodGet, "/v1/auth", ""},
		{"CreateToken", "POST /rest/token", "/rest/token", func() error {
			_, err := f.tokens.CreateToken(ctx, &authv1.CreateTokenRequest{Name: "ci"})
			return err
		}, http.MethodPost, "/v1/tokens", `{"name":"ci"}`},
		{"ListTokens", "GET /rest/token/list", "/rest/token/list", func() error {
			_, err := f.tokens.ListTokens(ctx, &authv1.ListTokensRequest{})
			return err
		}, http.MethodGet, "/v1/tokens", ""},
		{"UpdateToken", "PATCH /rest/token/{uuid}", "/rest/token/" + uuid, func() error {
			_, err := f.tokens.UpdateToken(ctx, &authv1.UpdateTokenRequest{Uuid: uuid, Name: ptr("x")})
			return err
		}, http.MethodPatch, "/v1/tokens/" + uuid, `{"name":"x"}`},
		{"DeleteToken", "DELETE /rest/token/{token}", "/rest/token/" + url.PathEscape(secret), func() error {
			_, err := f.tokens.DeleteToken(ctx, &authv1.DeleteTokenRequest{Token: secret})
			return err
		}, http.MethodPost, "/v1/tokens:delete", `{"token":"Sec/RET+tok en%41~trace"}`},
		{"DeleteAllTokens", "DELETE /rest/token/all", "/rest/token/all", func() error {
			_, err := f.tokens.DeleteAllTokens(ctx, &authv1.DeleteAllTokensRequest{})
			return err
		}, http.MethodDelete, "/v1/tokens", ""},
	}
	for _, c := range calls {
		if err := c.grpc(); err != nil {
			t.Fatalf("gRPC %s: %v", c.name, err)
		}
		if r, body := f.restBody(t, c.method, c.path, auth, c.body); r.StatusCode != http.StatusOK {
			t.Fatalf("REST %s: %d %s", c.name, r.StatusCode, body)
		}
	}

	// Opentact got the real paths, escaped as one segment each.
	reqs := up.requests()
	if len(reqs) != 2*len(calls) {
		t.Fatalf("Opentact saw %d requests, want %d", len(reqs), 2*len(calls))
	}
	for i, c := range calls {
		for door, got := range reqs[2*i : 2*i+2] {
			if got.URI != c.uri {
				t.Errorf("%s (door %d): Opentact saw %s, want %s", c.name, door, got.URI, c.uri)
			}
		}
	}

	// A server span and a client span per call.
	telWaitFor(t, "every span", func() bool { return len(exp.spans()) >= 4*len(calls) })
	spans := exp.spans()
	clients := map[string]int{}
	for _, s := range spans {
		if s.SpanKind != trace.SpanKindClient {
			continue
		}
		clients[s.Name]++
		_, route, _ := strings.Cut(strings.TrimPrefix(s.Name, "opentact "), " ")
		want := up.URL + (&url.URL{Path: route}).EscapedPath()
		for _, a := range s.Attributes {
			if a.Key == "url.full" && a.Value.AsString() != want {
				t.Errorf("span %q: url.full %q, want the route's %q", s.Name, a.Value.AsString(), want)
			}
		}
	}
	for _, c := range calls {
		if n := clients["opentact "+c.route]; n != 2 {
			t.Errorf("%d client spans named %q, want 2 (one per door); client spans: %v", n, "opentact "+c.route, clients)
		}
	}
	forms := []string{uuid, secret, url.PathEscape(secret), url.QueryEscape(secret), "RET+tok", "RET%2Btok", "en%41", "en%2541"}
	for _, s := range spans {
		text := telSpanText(s)
		for _, v := range forms {
			if strings.Contains(strings.ToLower(text), strings.ToLower(v)) {
				t.Errorf("span %q holds the path value form %q:\n%s", s.Name, v, text)
			}
		}
	}
}
