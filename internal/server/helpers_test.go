package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/server"
)

// facade is a running server.Server on loopback, with a gRPC client built
// from the generated stub and a REST client.
type facade struct {
	client   authv1.AuthServiceClient
	tokens   authv1.TokenServiceClient
	conn     *grpc.ClientConn
	restURL  string
	adminURL string // the probes and /metrics
	http     *http.Client
	logs     *syncBuffer
}

// startFacade runs a facade against upstreamURL until the test ends.
func startFacade(t testing.TB, upstreamURL string, mods ...func(*server.Options)) *facade {
	t.Helper()
	f, stop := startStoppableFacade(t, upstreamURL, mods...)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return f
}

// startStoppableFacade runs a facade until stop is called; stop returns
// what Serve returned. Calling stop more than once is fine.
func startStoppableFacade(t testing.TB, upstreamURL string, mods ...func(*server.Options)) (*facade, func() error) {
	t.Helper()
	logs := &syncBuffer{}
	opts := server.Options{
		GRPCAddr:  "127.0.0.1:0",
		HTTPAddr:  "127.0.0.1:0",
		AdminAddr: "127.0.0.1:0",
		// Every test client is 127.0.0.1: a test of the bound per
		// client sets it.
		MaxConnectionsPerClient: server.DefaultMaxConnections,
		Upstream:                upstreamURL,
		ShutdownGrace:           5 * time.Second,
		Logger:                  slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
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
		t.Fatal(err)
	}
	tr := &http.Transport{}
	f := &facade{
		client:  authv1.NewAuthServiceClient(conn),
		tokens:  authv1.NewTokenServiceClient(conn),
		conn:    conn,
		restURL: "http://" + s.HTTPAddr().String(),
		http:    &http.Client{Transport: tr, Timeout: 10 * time.Second},
		logs:    logs,
	}
	if a := s.AdminAddr(); a != nil {
		f.adminURL = "http://" + a.String()
	}
	stop := sync.OnceValue(func() error {
		cancel()
		err := <-done
		_ = conn.Close()
		tr.CloseIdleConnections()
		return err
	})
	t.Cleanup(func() { _ = stop() })
	return f, stop
}

// rest calls method path on the gateway with the given headers.
func (f *facade) rest(t *testing.T, method, path string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	return f.restBody(t, method, path, header, "")
}

// restBody is rest with a request body (none when empty).
func (f *facade) restBody(t *testing.T, method, path string, header http.Header, body string) (*http.Response, []byte) {
	t.Helper()
	return f.do(t, f.restURL, method, path, header, body)
}

// admin GETs path on the admin listener.
func (f *facade) admin(t testing.TB, path string) (*http.Response, []byte) {
	t.Helper()
	return f.do(t, f.adminURL, http.MethodGet, path, nil, "")
}

// do calls method path under base with the headers and body given, a
// body as application/json unless header says otherwise.
func (f *facade) do(t testing.TB, base, method, path string, header http.Header, body string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if _, set := header["Content-Type"]; body != "" && !set {
		req.Header.Set("Content-Type", "application/json") // as the API asks; a test of it sets its own, or nil for none
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := f.http.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, out
}

// restStatus decodes a gateway error body, a JSON google.rpc.Status.
func restStatus(t *testing.T, body []byte) *status.Status {
	t.Helper()
	var s spb.Status
	if err := protojson.Unmarshal(body, &s); err != nil {
		t.Fatalf("error body %q is not a google.rpc.Status: %v", body, err)
	}
	return status.FromProto(&s)
}

func errorInfo(st *status.Status) *errdetails.ErrorInfo {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

// recorder is an httptest upstream that records the requests it sees.
type recorder struct {
	*httptest.Server
	calls   atomic.Int64
	mu      sync.Mutex
	headers []http.Header
}

func newRecorder(t testing.TB, h http.HandlerFunc) *recorder {
	t.Helper()
	r := &recorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.calls.Add(1)
		r.mu.Lock()
		r.headers = append(r.headers, req.Header.Clone())
		r.mu.Unlock()
		h(w, req)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) lastHeader(t *testing.T) http.Header {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.headers) == 0 {
		t.Fatal("the upstream saw no request")
	}
	return r.headers[len(r.headers)-1]
}

// answer writes a JSON body with a status.
func answer(code int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

const okBody = `{"success":true,"payload":{"uuid":"u-1","email":"someone@example.com","token":"eyJhbGciOiJIUzI1NiJ9.eyJ1dWlkIjoidS0xIn0.c2lnbmF0dXJl"}}`

// closedAddr is a loopback address on which nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines decodes the JSON log lines whose msg is msg.
func (b *syncBuffer) lines(msg string) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(b.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}
