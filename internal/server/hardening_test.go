package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	apiv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/api/v1"
	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/server"
	"github.com/opentact-facade/opentact-facade/internal/testpki"
)

// This file checks the facade's hardening against hostile or careless
// callers: TLS and mTLS on both listeners, slowloris, size and concurrency
// bounds, control characters below the HTTP libraries' own checks, the cap
// on a caller's deadline, and readiness and the grace during shutdown.

// ---------------------------------------------------------------------------
// Helpers

const getAuthPath = "/opentact.auth.v1.AuthService/GetAuth"

// authCtx is a context carrying an x-auth-token credential, ending after d
// or when the test ends.
func authCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	// A token of its own per call: identical calls in flight together
	// would share one upstream request.
	tok := fmt.Sprintf("tok-%d", tokens.Add(1))
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "x-auth-token", tok), d)
	t.Cleanup(cancel)
	return ctx
}

var tokens atomic.Int64

// restHostPort is the gateway's host:port.
func restHostPort(f *facade) string { return strings.TrimPrefix(f.restURL, "http://") }

// grpcHostPort is the gRPC listener's host:port.
func grpcHostPort(f *facade) string { return f.conn.Target() }

// dialAuth dials addr with creds; the connection closes when the test ends.
func dialAuth(t *testing.T, addr string, creds credentials.TransportCredentials) authv1.AuthServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return authv1.NewAuthServiceClient(conn)
}

// transportClient wraps tr; its idle connections close when the test ends.
func transportClient(t *testing.T, tr *http.Transport) *http.Client {
	t.Helper()
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// getAuth sends GET url with an x-auth-token and reads the whole answer.
func getAuth(c *http.Client, url string) (*http.Response, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("X-Auth-Token", "tok")
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// rawHTTP1 writes req on a fresh TCP connection to addr and reads one
// answer, all within 5s.
func rawHTTP1(t *testing.T, addr, req string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// holdingUpstream answers okBody once release is closed, reporting each
// request it holds on arrived.
func holdingUpstream(t *testing.T) (up *recorder, arrived chan struct{}, release func()) {
	t.Helper()
	ch := make(chan struct{})
	arrived = make(chan struct{}, 1024)
	up = newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-ch:
			answer(200, okBody)(w, r)
		case <-r.Context().Done():
		}
	})
	release = sync.OnceFunc(func() { close(ch) })
	t.Cleanup(release) // before the upstream closes: cleanups run last-in first-out
	return up, arrived, release
}

func waitArrivals(t *testing.T, arrived <-chan struct{}, n int) {
	t.Helper()
	for i := range n {
		select {
		case <-arrived:
		case <-time.After(guard):
			t.Fatalf("only %d of %d calls reached the upstream", i, n)
		}
	}
}

// ---------------------------------------------------------------------------
// 1. TLS

// TestTLSOnBothListeners: with a certificate and key, both listeners speak
// TLS only. gRPC and REST (HTTP/2 and HTTP/1.1, by ALPN) work for a client
// that trusts the CA; a plaintext client and a client that does not trust
// the CA get nothing through.
func TestTLSOnBothListeners(t *testing.T) {
	t.Parallel()
	p := testpki.New(t)
	up := newRecorder(t, answer(200, okBody))
	// f's own clients are plaintext: they play the plaintext callers.
	f := startFacade(t, up.URL, func(o *server.Options) {
		o.TLS = server.TLSFiles{Cert: p.ServerCert, Key: p.ServerKey}
	})
	httpsURL := "https://" + restHostPort(f) + "/v1/auth"
	trusting := &tls.Config{RootCAs: p.Roots}

	t.Run("gRPC over TLS", func(t *testing.T) {
		client := dialAuth(t, grpcHostPort(f), credentials.NewTLS(trusting.Clone()))
		var pr peer.Peer
		resp, err := client.GetAuth(authCtx(t, 5*time.Second), &authv1.GetAuthRequest{}, grpc.Peer(&pr))
		if err != nil {
			t.Fatalf("GetAuth over TLS: %v", err)
		}
		if resp.GetUser().GetUuid() != "u-1" {
			t.Errorf("user %v, want u-1", resp.GetUser())
		}
		info, ok := pr.AuthInfo.(credentials.TLSInfo)
		if !ok {
			t.Fatalf("peer auth info %T, want credentials.TLSInfo", pr.AuthInfo)
		}
		if st := info.State; !st.HandshakeComplete || st.NegotiatedProtocol != "h2" || st.Version < tls.VersionTLS12 {
			t.Errorf("TLS state: handshake complete %v, ALPN %q, version %x; want complete, h2, TLS 1.2+", st.HandshakeComplete, st.NegotiatedProtocol, st.Version)
		}
	})

	t.Run("REST over HTTPS, HTTP/2", func(t *testing.T) {
		c := transportClient(t, &http.Transport{TLSClientConfig: trusting.Clone(), ForceAttemptHTTP2: true})
		resp, body, err := getAuth(c, httpsURL)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"uuid":"u-1"`)) {
			t.Errorf("status %d: %s", resp.StatusCode, body)
		}
		if resp.TLS == nil || resp.ProtoMajor != 2 || resp.TLS.NegotiatedProtocol != "h2" {
			t.Errorf("proto %s, TLS %v: want HTTP/2 over TLS (ALPN h2)", resp.Proto, resp.TLS != nil)
		}
	})

	t.Run("REST over HTTPS, HTTP/1.1", func(t *testing.T) {
		cfg := trusting.Clone()
		cfg.NextProtos = []string{"http/1.1"}
		c := transportClient(t, &http.Transport{TLSClientConfig: cfg})
		resp, body, err := getAuth(c, httpsURL)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"uuid":"u-1"`)) {
			t.Errorf("status %d: %s", resp.StatusCode, body)
		}
		if resp.TLS == nil || resp.ProtoMajor != 1 || resp.ProtoMinor != 1 || resp.TLS.NegotiatedProtocol != "http/1.1" {
			t.Errorf("proto %s, TLS %v: want HTTP/1.1 over TLS (ALPN http/1.1)", resp.Proto, resp.TLS != nil)
		}
	})

	before := up.calls.Load()
	t.Run("plaintext gRPC is refused", func(t *testing.T) {
		_, err := f.client.GetAuth(authCtx(t, 5*time.Second), &authv1.GetAuthRequest{})
		if status.Code(err) != codes.Unavailable {
			t.Errorf("plaintext gRPC against the TLS port: %v, want Unavailable", err)
		}
	})

	t.Run("plaintext HTTP is refused", func(t *testing.T) {
		// Go's server answers a plaintext HTTP request on a TLS port with a
		// canned 400 before any handler runs; a closed connection is as good.
		resp, body, err := getAuth(f.http, f.restURL+"/v1/auth")
		if err == nil && (resp.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte("HTTPS"))) {
			t.Errorf("plaintext HTTP against the TLS port: status %d: %s; want an error or the 400 for HTTP on an HTTPS port", resp.StatusCode, body)
		} else if err == nil {
			t.Logf("plaintext HTTP against the TLS port: status %d: %q", resp.StatusCode, body)
		}
	})

	t.Run("a client that does not trust the CA fails the handshake", func(t *testing.T) {
		untrusting := &tls.Config{RootCAs: x509.NewCertPool()}
		client := dialAuth(t, grpcHostPort(f), credentials.NewTLS(untrusting.Clone()))
		_, err := client.GetAuth(authCtx(t, 5*time.Second), &authv1.GetAuthRequest{})
		if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
			t.Errorf("gRPC: %v, want Unavailable for an unknown authority", err)
		}
		c := transportClient(t, &http.Transport{TLSClientConfig: untrusting.Clone(), ForceAttemptHTTP2: true})
		_, _, err = getAuth(c, httpsURL)
		var verr *tls.CertificateVerificationError
		if !errors.As(err, &verr) {
			t.Errorf("HTTPS: %v, want a certificate verification error", err)
		}
	})

	t.Run("TLS 1.1 is refused", func(t *testing.T) {
		old := &tls.Config{RootCAs: p.Roots, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
		c := transportClient(t, &http.Transport{TLSClientConfig: old})
		if _, _, err := getAuth(c, httpsURL); err == nil || !strings.Contains(err.Error(), "protocol version") {
			t.Errorf("HTTPS with TLS 1.1: %v, want a protocol version error", err)
		}
	})

	if n := up.calls.Load() - before; n != 0 {
		t.Errorf("refused clients caused %d upstream requests, want 0", n)
	}
}

// TestMutualTLS: with a client CA, a caller must present a certificate
// signed by it, on both listeners.
func TestMutualTLS(t *testing.T) {
	t.Parallel()
	p := testpki.New(t)
	up := newRecorder(t, answer(200, okBody))
	f := startFacade(t, up.URL, func(o *server.Options) {
		o.TLS = server.TLSFiles{Cert: p.ServerCert, Key: p.ServerKey, ClientCA: p.ClientCA}
	})
	httpsURL := "https://" + restHostPort(f) + "/v1/auth"

	for _, tc := range []struct {
		name  string
		certs []tls.Certificate
		ok    bool
	}{
		{"no client certificate", nil, false},
		{"a certificate from an unknown CA", []tls.Certificate{p.Rogue}, false},
		{"a certificate from the client CA", []tls.Certificate{p.Client}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := up.calls.Load()
			cfg := &tls.Config{RootCAs: p.Roots, Certificates: tc.certs}

			client := dialAuth(t, grpcHostPort(f), credentials.NewTLS(cfg.Clone()))
			_, err := client.GetAuth(authCtx(t, 5*time.Second), &authv1.GetAuthRequest{})
			switch {
			case tc.ok && err != nil:
				t.Errorf("gRPC: %v", err)
			case !tc.ok && status.Code(err) != codes.Unavailable:
				t.Errorf("gRPC: %v, want Unavailable", err)
			case !tc.ok:
				t.Logf("gRPC refused: %v", err)
			}

			for _, h2 := range []bool{true, false} {
				c := transportClient(t, &http.Transport{TLSClientConfig: cfg.Clone(), ForceAttemptHTTP2: h2})
				resp, body, err := getAuth(c, httpsURL)
				switch {
				case tc.ok && err != nil:
					t.Errorf("HTTPS (h2 %v): %v", h2, err)
				case tc.ok && resp.StatusCode != http.StatusOK:
					t.Errorf("HTTPS (h2 %v): status %d: %s", h2, resp.StatusCode, body)
				case !tc.ok && err == nil:
					t.Errorf("HTTPS (h2 %v): status %d, want the handshake refused", h2, resp.StatusCode)
				case !tc.ok && errors.Is(err, syscall.ECONNREFUSED):
					t.Errorf("HTTPS (h2 %v): %v: nothing listens", h2, err)
				case !tc.ok:
					// The server's alert ("tls: certificate required", "tls:
					// bad certificate"), or a broken pipe when the client's
					// first write races the server closing.
					t.Logf("HTTPS (h2 %v) refused: %v", h2, err)
				}
			}

			want := int64(0)
			if tc.ok {
				want = 3
			}
			if n := up.calls.Load() - before; n != want {
				t.Errorf("upstream saw %d requests, want %d", n, want)
			}
		})
	}
}

// TestBadTLSOptions: server.New refuses incomplete or unreadable TLS
// settings with an error that says what is wrong.
func TestBadTLSOptions(t *testing.T) {
	t.Parallel()
	p := testpki.New(t)
	notPEM := p.Write(t, "not-pem.txt", []byte("this is not a certificate\n"))
	_, otherKey := testpki.NewCA(t, "other").Issue(t, "other", true)
	otherKeyFile := p.Write(t, "other-key.pem", otherKey)
	missing := filepath.Join(p.Dir, "missing-key.pem")

	for _, tc := range []struct {
		name  string
		files server.TLSFiles
		want  []string
	}{
		{"missing key file", server.TLSFiles{Cert: p.ServerCert, Key: missing}, []string{"TLS certificate", "missing-key.pem", "no such file"}},
		{"certificate without key", server.TLSFiles{Cert: p.ServerCert}, []string{"both a certificate and a key"}},
		{"key without certificate", server.TLSFiles{Key: p.ServerKey}, []string{"both a certificate and a key"}},
		{"client CA alone", server.TLSFiles{ClientCA: p.ClientCA}, []string{"both a certificate and a key"}},
		{"key of another certificate", server.TLSFiles{Cert: p.ServerCert, Key: otherKeyFile}, []string{"TLS certificate", "does not match"}},
		{"certificate file without PEM", server.TLSFiles{Cert: notPEM, Key: p.ServerKey}, []string{"TLS certificate", "PEM"}},
		{"client CA file without PEM", server.TLSFiles{Cert: p.ServerCert, Key: p.ServerKey, ClientCA: notPEM}, []string{"TLS client CA", "not-pem.txt", "no PEM certificate"}},
		{"missing client CA file", server.TLSFiles{Cert: p.ServerCert, Key: p.ServerKey, ClientCA: missing}, []string{"TLS client CA", "missing-key.pem"}},
	} {
		s, err := server.New(server.Options{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Upstream: "http://127.0.0.1:1", TLS: tc.files})
		if s != nil {
			t.Errorf("%s: server.New succeeded", tc.name)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_ = s.Serve(ctx)
			continue
		}
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %v, want it to mention %q", tc.name, err, w)
			}
		}
	}
}

// ---------------------------------------------------------------------------
// 2. Slowloris

// TestSlowlorisIsCut: a REST client that trickles its headers a byte at a
// time, never finishing them, is cut after ReadHeaderTimeout although it
// keeps sending; others are served meanwhile.
func TestSlowlorisIsCut(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, answer(200, okBody))
	f := startFacade(t, up.URL, func(o *server.Options) { o.ReadHeaderTimeout = 300 * time.Millisecond })

	conn, err := net.DialTimeout("tcp", restHostPort(f), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, "GET /v1/auth HTTP/1.1\r\nHost: x\r\nX-Auth-Token: tok\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	var dripped atomic.Int64
	stopDrip := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopDrip:
				return
			case <-tick.C:
				if _, err := conn.Write([]byte("a")); err != nil {
					return
				}
				dripped.Add(1)
			}
		}
	}()
	defer func() {
		close(stopDrip)
		wg.Wait()
	}()

	resp, body := f.rest(t, http.MethodGet, "/v1/auth", http.Header{"X-Auth-Token": {"tok"}})
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a normal call during the slowloris: status %d: %s", resp.StatusCode, body)
	}

	// The wrong behaviour is a connection held open for ever; the deadline
	// keeps the test from hanging.
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(conn)
	elapsed := time.Since(start)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the server still held the connection after %v (%d bytes dripped)", elapsed, dripped.Load())
	}
	if bytes.Contains(got, []byte("200 OK")) {
		t.Errorf("the slow request was served: %q", got)
	}
	t.Logf("cut after %v, %d bytes dripped, read error %v, answer %q", elapsed, dripped.Load(), err, got)
}

// ---------------------------------------------------------------------------
// 3. Bounds

// TestGRPCMessageSizeBound: GetAuthRequest is empty, but a client may send
// any bytes as unknown fields; over 16 KiB (the API's requests are a few
// hundred bytes) the call is refused before the service runs.
func TestGRPCMessageSizeBound(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, answer(200, okBody))
	f := startFacade(t, up.URL)

	padded := func(n int) *authv1.GetAuthRequest {
		req := &authv1.GetAuthRequest{}
		b := protowire.AppendTag(nil, 1000, protowire.BytesType)
		b = protowire.AppendBytes(b, bytes.Repeat([]byte{'p'}, n))
		req.ProtoReflect().SetUnknown(b)
		return req
	}

	huge := padded(32 << 10)
	if n := proto.Size(huge); n <= 16<<10 {
		t.Fatalf("the padded request is %d bytes, want over 16 KiB", n)
	}
	_, err := f.client.GetAuth(authCtx(t, 5*time.Second), huge)
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("a %d-byte request: %v, want ResourceExhausted", proto.Size(huge), err)
	}
	if n := up.calls.Load(); n != 0 {
		t.Errorf("upstream saw %d requests, want 0", n)
	}

	// Just under the bound is served (unknown fields are ignored), so the
	// refusal above is the size, not the padding.
	if _, err := f.client.GetAuth(authCtx(t, 5*time.Second), padded(16<<10-64)); err != nil {
		t.Errorf("a request just under 16 KiB: %v", err)
	}
	if n := up.calls.Load(); n != 1 {
		t.Errorf("upstream saw %d requests, want 1", n)
	}
}

// TestGRPCMetadataBound: gRPC metadata over 16 KiB never reaches the
// service. grpc-go's client honours the limit the server advertises and
// refuses to send it; a raw HTTP/2 client that ignores the limit has its
// stream reset by the server. Either way the server goes on serving.
func TestGRPCMetadataBound(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, answer(200, okBody))
	f := startFacade(t, up.URL)

	ctx := metadata.AppendToOutgoingContext(authCtx(t, 5*time.Second), "x-padding", strings.Repeat("p", 32<<10))
	_, err := f.client.GetAuth(ctx, &authv1.GetAuthRequest{})
	switch status.Code(err) {
	case codes.Internal, codes.ResourceExhausted, codes.Unavailable:
		t.Logf("grpc-go client, 32 KiB of metadata: %v", err)
	default:
		t.Errorf("32 KiB of metadata: %v, want the call refused", err)
	}
	if n := up.calls.Load(); n != 0 {
		t.Errorf("upstream saw %d requests, want 0", n)
	}

	// 24 KiB in twelve headers, from a client that ignores the advertised limit.
	extra := []hpack.HeaderField{{Name: "x-auth-token", Value: "tok"}}
	for i := range 12 {
		extra = append(extra, hpack.HeaderField{Name: fmt.Sprintf("x-padding-%d", i), Value: strings.Repeat("p", 2<<10)})
	}
	res := rawGRPCCall(t, grpcHostPort(f), extra)
	if res.status == "0" {
		t.Errorf("raw HTTP/2, 24 KiB of headers: the call succeeded")
	}
	t.Logf("raw HTTP/2 client, 24 KiB of headers: %s", res)
	if n := up.calls.Load(); n != 0 {
		t.Errorf("upstream saw %d requests, want 0", n)
	}

	// Well under the bound is fine, and the connection of the refused
	// call still serves.
	ctx = metadata.AppendToOutgoingContext(authCtx(t, 5*time.Second), "x-padding", strings.Repeat("p", 8<<10))
	if _, err := f.client.GetAuth(ctx, &authv1.GetAuthRequest{}); err != nil {
		t.Errorf("8 KiB of metadata after the refused calls: %v", err)
	}
	if res := rawGRPCCall(t, grpcHostPort(f), extra[:2]); res.status != "0" {
		t.Errorf("raw HTTP/2, 2 KiB of headers: %s, want grpc-status 0", res)
	}
	if n := up.calls.Load(); n != 2 {
		t.Errorf("upstream saw %d requests, want 2", n)
	}
}

// TestRESTHeaderBound: REST headers over 16 KiB (net/http allows 4 KiB
// more) are 431, before any handler runs.
func TestRESTHeaderBound(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, answer(200, okBody))
	f := startFacade(t, up.URL)

	resp, _ := f.rest(t, http.MethodGet, "/v1/auth", http.Header{"X-Auth-Token": {"tok"}, "X-Padding": {strings.Repeat("p", 24<<10)}})
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("24 KiB of headers: status %d, want 431", resp.StatusCode)
	}
	if n := up.calls.Load(); n != 0 {
		t.Errorf("upstream saw %d requests, want 0", n)
	}
	resp, body := f.rest(t, http.MethodGet, "/v1/auth", http.Header{"X-Auth-Token": {"tok"}, "X-Padding": {strings.Repeat("p", 12<<10)}})
	if resp.StatusCode != http.StatusOK {
		t.Errorf("12 KiB of headers after the refused call: status %d: %s", resp.StatusCode, body)
	}
}

// TestRESTBodyBound: GET /v1/auth takes no body; the facade reads at most
// 16 KiB of one. A client that announces 10 MiB and sends 128 KiB of it is
// refused at once with 413, without a request to Opentact, and the
// connection is closed after it, rather than the server waiting for the
// rest of the body.
func TestRESTBodyBound(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, answer(200, okBody))
	f := startFacade(t, up.URL)

	conn, err := net.DialTimeout("tcp", restHostPort(f), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	// Uncapped, the server would wait for the other 9.9 MiB until its 15s
	// ReadTimeout; 10s tells the two apart.
	_ = conn.SetDeadline(start.Add(10 * time.Second))
	head := fmt.Sprintf("GET /v1/auth HTTP/1.1\r\nHost: x\r\nX-Auth-Token: tok\r\nContent-Length: %d\r\n\r\n", 10<<20)
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(bytes.Repeat([]byte{'b'}, 128<<10)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer after %v with 128 KiB of a 10 MiB body sent: %v (the server kept reading the body?)", time.Since(start), err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "larger than 16384 bytes") {
		t.Errorf("status %d: %s, want 413 and the bound", resp.StatusCode, body)
	}
	if n := up.calls.Load(); n != 0 {
		t.Errorf("upstream saw %d requests for a refused body, want 0", n)
	}
	if !resp.Close {
		t.Errorf("the answer does not close the connection, so the server would read the rest of the body next")
	}
	if n, err := br.Read(make([]byte, 1)); n != 0 || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("after the answer: read %d bytes, %v; want the connection closed", n, err)
	}

	resp, body = f.rest(t, http.MethodGet, "/v1/auth", http.Header{"X-Auth-Token": {"tok"}})
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the next call: status %d: %s", resp.StatusCode, body)
	}
}

// TestMaxConcurrentStreams: with two streams per connection, a third call
// on the same connection waits (and here times out) without reaching the
// service; once the two end, calls go through again.
func TestMaxConcurrentStreams(t *testing.T) {
	t.Parallel()
	up, arrived, release := holdingUpstream(t)
	f := startFacade(t, up.URL, func(o *server.Options) { o.MaxConcurrentStreams = 2 })

	errs := make(chan error, 2)
	for range 2 {
		ctx := authCtx(t, 10*time.Second)
		go func() {
			_, err := f.client.GetAuth(ctx, &authv1.GetAuthRequest{})
			errs <- err
		}()
	}
	waitArrivals(t, arrived, 2)

	_, err := f.client.GetAuth(authCtx(t, 300*time.Millisecond), &authv1.GetAuthRequest{})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("a third call on the connection: %v, want DeadlineExceeded", err)
	}
	if n := up.calls.Load(); n != 2 {
		t.Errorf("upstream saw %d requests, want 2", n)
	}

	release()
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("a call in flight: %v", err)
		}
	}
	if _, err := f.client.GetAuth(authCtx(t, 5*time.Second), &authv1.GetAuthRequest{}); err != nil {
		t.Errorf("after the two ended: %v", err)
	}
}

// ---------------------------------------------------------------------------
// 4. Control characters

// TestControlCharactersInCredentials: a credential value holding a control
// character never reaches Opentact and is not echoed, whichever layer
// refuses it: the facade's own check for what the HTTP libraries let
// through (a tab), the HTTP/1.1 server or the HTTP/2 framer for the rest.
func TestControlCharactersInCredentials(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, answer(200, okBody))
	f := startFacade(t, up.URL)

	t.Run("REST, a tab", func(t *testing.T) {
		resp, body := f.rest(t, http.MethodGet, "/v1/auth", http.Header{"X-Auth-Token": {"tok\tsecret"}})
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d: %s, want 400", resp.StatusCode, body)
		}
		st := restStatus(t, body)
		if st.Code() != codes.InvalidArgument || errorInfo(st).GetReason() != apiv1.ErrorReason_CREDENTIALS_MALFORMED.String() {
			t.Errorf("%v, want InvalidArgument with reason %s", st.Err(), apiv1.ErrorReason_CREDENTIALS_MALFORMED.String())
		}
		if bytes.Contains(body, []byte("secret")) {
			t.Errorf("the answer %s echoes the value", body)
		}
	})

	for _, c := range []string{"\x01", "\x7f"} {
		t.Run(fmt.Sprintf("raw HTTP/1.1, %q", c), func(t *testing.T) {
			resp, body := rawHTTP1(t, restHostPort(f), "GET /v1/auth HTTP/1.1\r\nHost: x\r\nX-Auth-Token: tok"+c+"secret\r\nConnection: close\r\n\r\n")
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("status %d: %s, want 400", resp.StatusCode, body)
			}
			if bytes.Contains(body, []byte("secret")) || bytes.Contains(body, []byte(c)) {
				t.Errorf("the answer %q echoes the value", body)
			}
		})
	}

	// grpc-go's client will not send such metadata; a raw HTTP/2 client
	// will. The framer below grpc-go rejects a value with \x01 or \x7f
	// (RST_STREAM, PROTOCOL_ERROR) before any handler; a tab passes it and
	// the facade refuses it itself.
	for _, c := range []string{"\x01", "\x7f", "\t"} {
		t.Run(fmt.Sprintf("raw HTTP/2 gRPC, %q", c), func(t *testing.T) {
			res := rawGRPCCall(t, grpcHostPort(f), []hpack.HeaderField{{Name: "x-auth-token", Value: "tok" + c + "secret"}})
			t.Logf("%q: %s", c, res)
			switch {
			case res.status == "3":
			case res.status == "" && (res.rst != nil || res.goAway != nil || res.closed != nil):
			default:
				t.Errorf("%s, want grpc-status 3 or the stream refused", res)
			}
			if c == "\t" && res.status != "3" {
				t.Errorf("a tab: %s, want grpc-status 3 from the facade's check", res)
			}
			if strings.Contains(res.message, "secret") || strings.Contains(res.message, c) {
				t.Errorf("grpc-message %q echoes the value", res.message)
			}
		})
	}

	if n := up.calls.Load(); n != 0 {
		t.Errorf("upstream saw %d requests, want 0", n)
	}
	// The raw client itself works: a clean value goes through.
	if res := rawGRPCCall(t, grpcHostPort(f), []hpack.HeaderField{{Name: "x-auth-token", Value: "tok"}}); res.status != "0" {
		t.Errorf("raw HTTP/2 with a clean credential: %s, want grpc-status 0", res)
	}
	if n := up.calls.Load(); n != 1 {
		t.Errorf("upstream saw %d requests, want 1", n)
	}
}

// h2Result is how a raw HTTP/2 gRPC call ended.
type h2Result struct {
	status  string // grpc-status of the stream; "" if none came
	message string // grpc-message
	rst     *http2.ErrCode
	goAway  *http2.ErrCode
	closed  error // the connection ended before the stream did
}

func (r h2Result) String() string {
	var parts []string
	if r.status != "" {
		parts = append(parts, fmt.Sprintf("grpc-status %s (%q)", r.status, r.message))
	}
	if r.rst != nil {
		parts = append(parts, "RST_STREAM "+r.rst.String())
	}
	if r.goAway != nil {
		parts = append(parts, "GOAWAY "+r.goAway.String())
	}
	if r.closed != nil {
		parts = append(parts, "connection ended: "+r.closed.Error())
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

// rawGRPCCall calls GetAuth with an empty message on a fresh plaintext
// HTTP/2 connection, with the headers a gRPC client sends plus extra,
// written as given, and reads until the stream ends. It bypasses every
// check grpc-go's client makes on what it sends.
func rawGRPCCall(t *testing.T, addr string, extra []hpack.HeaderField) h2Result {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	bw := bufio.NewWriter(conn)
	fr := http2.NewFramer(bw, conn)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)

	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	fields := []hpack.HeaderField{
		{Name: ":method", Value: "POST"},
		{Name: ":scheme", Value: "http"},
		{Name: ":path", Value: getAuthPath},
		{Name: ":authority", Value: addr},
		{Name: "content-type", Value: "application/grpc"},
		{Name: "te", Value: "trailers"},
	}
	for _, hf := range append(fields, extra...) {
		if err := enc.WriteField(hf); err != nil {
			t.Fatal(err)
		}
	}
	const stream = 1
	if err := writeGRPCRequest(bw, fr, stream, block.Bytes()); err != nil {
		return h2Result{closed: err}
	}

	var res h2Result
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("raw HTTP/2 call: no end of stream within 5s (%s so far)", res)
			}
			res.closed = err
			return res
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				err = fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				err = fr.WritePing(true, f.Data)
			}
		case *http2.GoAwayFrame:
			code := f.ErrCode
			res.goAway = &code
		case *http2.RSTStreamFrame:
			if f.StreamID == stream {
				code := f.ErrCode
				res.rst = &code
				return res
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID != stream {
				continue
			}
			for _, hf := range f.Fields {
				switch hf.Name {
				case "grpc-status":
					res.status = hf.Value
				case "grpc-message":
					res.message = hf.Value
				}
			}
			if f.StreamEnded() {
				return res
			}
		}
		if err == nil {
			err = bw.Flush()
		}
		if err != nil {
			res.closed = err
			return res
		}
	}
}

// writeGRPCRequest writes the client preface, SETTINGS, the header block
// (as HEADERS and CONTINUATION frames when it is over the default frame
// size) and an empty gRPC message ending the stream.
func writeGRPCRequest(bw *bufio.Writer, fr *http2.Framer, stream uint32, block []byte) error {
	if _, err := bw.WriteString(http2.ClientPreface); err != nil {
		return err
	}
	if err := fr.WriteSettings(); err != nil {
		return err
	}
	const maxFrame = 16 << 10
	chunk := block[:min(len(block), maxFrame)]
	rest := block[len(chunk):]
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: stream, BlockFragment: chunk, EndHeaders: len(rest) == 0}); err != nil {
		return err
	}
	for len(rest) > 0 {
		chunk = rest[:min(len(rest), maxFrame)]
		rest = rest[len(chunk):]
		if err := fr.WriteContinuation(stream, len(rest) == 0, chunk); err != nil {
			return err
		}
	}
	// An empty GetAuthRequest: not compressed, length 0.
	if err := fr.WriteData(stream, true, make([]byte, 5)); err != nil {
		return err
	}
	return bw.Flush()
}

// ---------------------------------------------------------------------------
// 5. The cap on a caller's deadline

// TestCallerDeadlineIsCapped: a caller's far deadline is cut to
// MaxCallTimeout; the call ends as an upstream timeout.
func TestCallerDeadlineIsCapped(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, hang)
	f := startFacade(t, up.URL, func(o *server.Options) {
		o.MaxCallTimeout = 300 * time.Millisecond
		o.UpstreamTimeout = 200 * time.Millisecond
	})

	ctx, cancel := context.WithCancel(authCtx(t, time.Hour))
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := f.client.GetAuth(ctx, &authv1.GetAuthRequest{})
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(guard):
		cancel()
		<-done
		t.Fatalf("a call with a 1-hour deadline was still running after %v; MaxCallTimeout is 300ms", guard)
	}
	st := status.Convert(err)
	if st.Code() != codes.DeadlineExceeded || errorInfo(st).GetReason() != apiv1.ErrorReason_UPSTREAM_TIMEOUT.String() {
		t.Errorf("gRPC: %v, want DeadlineExceeded with reason %s", err, apiv1.ErrorReason_UPSTREAM_TIMEOUT.String())
	}

	// Uncapped, f.http would give up after 10s, failing the test.
	resp, body := f.rest(t, http.MethodGet, "/v1/auth", http.Header{"X-Auth-Token": {"tok"}, "Grpc-Timeout": {"1H"}})
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("REST: status %d, want 504", resp.StatusCode)
	}
	if st := restStatus(t, body); st.Code() != codes.DeadlineExceeded || errorInfo(st).GetReason() != apiv1.ErrorReason_UPSTREAM_TIMEOUT.String() {
		t.Errorf("REST: %v, want DeadlineExceeded with reason %s", st.Err(), apiv1.ErrorReason_UPSTREAM_TIMEOUT.String())
	}
}

// ---------------------------------------------------------------------------
// 6. Shutdown

// TestReadinessDuringShutdown: once shutdown begins the facade reports not
// ready (/readyz and gRPC health) but keeps accepting connections for the
// delay; then both public listeners close, the admin one still answering
// the probes while the call in flight finishes; then Serve returns nil and
// the admin listener is closed too.
func TestReadinessDuringShutdown(t *testing.T) {
	t.Parallel()
	// 1s rather than less: the checks during the delay open fresh
	// connections and must land inside it even on a loaded machine.
	const delay = time.Second
	up, arrived, release := holdingUpstream(t)
	f, stop := startStoppableFacade(t, up.URL, func(o *server.Options) { o.ShutdownDelay = delay })

	// Fresh connections for every probe: they show the listeners still
	// accept during the delay.
	probes := transportClient(t, &http.Transport{DisableKeepAlives: true})
	get := func(url string) int {
		t.Helper()
		resp, err := probes.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	probe := func(path string) int { return get(f.adminURL + path) }
	health := func(svc string) healthpb.HealthCheckResponse_ServingStatus {
		t.Helper()
		conn, err := grpc.NewClient(grpcHostPort(f), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil {
			t.Fatalf("health check %q: %v", svc, err)
		}
		return resp.GetStatus()
	}
	services := []string{"", authv1.AuthService_ServiceDesc.ServiceName}

	if c := probe("/healthz"); c != http.StatusOK {
		t.Errorf("before shutdown: /healthz %d", c)
	}
	if c := probe("/readyz"); c != http.StatusOK {
		t.Errorf("before shutdown: /readyz %d", c)
	}
	for _, svc := range services {
		if st := health(svc); st != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("before shutdown: health %q %v", svc, st)
		}
	}

	slow := make(chan error, 1)
	slowCtx := authCtx(t, 10*time.Second)
	go func() {
		_, err := f.client.GetAuth(slowCtx, &authv1.GetAuthRequest{})
		slow <- err
	}()
	waitArrivals(t, arrived, 1)

	begun := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()

	for c := probe("/readyz"); c != http.StatusServiceUnavailable; c = probe("/readyz") {
		if time.Since(begun) > delay {
			t.Fatalf("/readyz still %d after the shutdown delay", c)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Each of these opens a new connection, so each also shows that the
	// listeners still accept: after the delay the public ones refuse.
	if c := probe("/healthz"); c != http.StatusOK {
		t.Errorf("during the delay: /healthz %d, want 200", c)
	}
	if c := get(f.restURL + "/openapi.json"); c != http.StatusOK {
		t.Errorf("during the delay: REST /openapi.json %d, want 200", c)
	}
	for _, svc := range services {
		if st := health(svc); st != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("during the delay: health %q %v, want NOT_SERVING", svc, st)
		}
	}

	for name, addr := range map[string]string{"gRPC": grpcHostPort(f), "REST": restHostPort(f)} {
		refused := false
		for !refused && time.Since(begun) < delay+5*time.Second {
			conn, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				_ = conn.Close()
				time.Sleep(10 * time.Millisecond)
				continue
			}
			// A connect racing the listener's close can also be reset or
			// time out; only a refusal says the listener is gone.
			refused = errors.Is(err, syscall.ECONNREFUSED)
		}
		if !refused {
			t.Errorf("%s: new connections still accepted %v after shutdown began", name, time.Since(begun))
		} else if d := time.Since(begun); d < delay {
			t.Errorf("%s: connections refused %v after shutdown began, before the %v delay", name, d, delay)
		}
	}

	select {
	case err := <-stopped:
		t.Fatalf("Serve returned (%v) with a call in flight", err)
	default:
	}
	// Draining: the probes still answer, on the admin listener.
	if c := probe("/readyz"); c != http.StatusServiceUnavailable {
		t.Errorf("while draining: /readyz %d, want 503", c)
	}
	if c := probe("/healthz"); c != http.StatusOK {
		t.Errorf("while draining: /healthz %d, want 200", c)
	}
	release()
	if err := <-slow; err != nil {
		t.Errorf("the call in flight during shutdown: %v", err)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(guard):
		t.Fatal("Serve did not return after the last call ended")
	}
	if conn, err := net.Dial("tcp", strings.TrimPrefix(f.adminURL, "http://")); err == nil {
		conn.Close()
		t.Error("the admin listener still accepts connections after Serve returned")
	}
}

// TestShutdownGraceCutsCallsThatNeverEnd: a gRPC and a REST call on an
// upstream that never answers are ended at the end of the grace, each with
// a status (Unavailable, FACADE_SHUTTING_DOWN; REST 503), not a cut
// connection, and Serve returns.
func TestShutdownGraceCutsCallsThatNeverEnd(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 2)
	up := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		hang(w, r)
	})
	f, stop := startStoppableFacade(t, up.URL, func(o *server.Options) { o.ShutdownGrace = 300 * time.Millisecond })

	grpcErr := make(chan error, 1)
	ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(context.Background(), "x-auth-token", "tok-grpc"))
	defer cancel()
	go func() {
		_, err := f.client.GetAuth(ctx, &authv1.GetAuthRequest{})
		grpcErr <- err
	}()
	type restResult struct {
		code int
		body []byte
		err  error
	}
	restDone := make(chan restResult, 1)
	go func() {
		resp, body, err := getAuth(f.http, f.restURL+"/v1/auth")
		if err != nil {
			restDone <- restResult{err: err}
			return
		}
		restDone <- restResult{code: resp.StatusCode, body: body}
	}()
	waitArrivals(t, arrived, 2)

	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(guard):
		t.Fatalf("Serve did not return %v after shutdown began; the grace is 300ms", guard)
	}

	select {
	case err := <-grpcErr:
		st := status.Convert(err)
		if st.Code() != codes.Unavailable || errorInfo(st).GetReason() != apiv1.ErrorReason_FACADE_SHUTTING_DOWN.String() {
			t.Errorf("gRPC call ended by the grace: %v, want Unavailable %s", err, apiv1.ErrorReason_FACADE_SHUTTING_DOWN.String())
		}
	case <-time.After(guard):
		t.Error("the gRPC call did not end after Serve returned")
	}
	select {
	case r := <-restDone:
		if r.err != nil || r.code != http.StatusServiceUnavailable {
			t.Fatalf("REST call ended by the grace: status %d, error %v; want 503", r.code, r.err)
		}
		if reason := errorInfo(restStatus(t, r.body)).GetReason(); reason != apiv1.ErrorReason_FACADE_SHUTTING_DOWN.String() {
			t.Errorf("REST call ended by the grace: reason %q, want %s", reason, apiv1.ErrorReason_FACADE_SHUTTING_DOWN.String())
		}
	case <-time.After(guard):
		t.Error("the REST call did not end after Serve returned")
	}
}
