package main

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startFloor serves the floor in mode on loopback until the test ends.
func startFloor(t *testing.T, cfg config) (authv1.AuthServiceClient, string) {
	t.Helper()
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, gl, hl, cfg) }()
	cc, err := grpc.NewClient(gl.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cc.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return authv1.NewAuthServiceClient(cc), "http://" + hl.Addr().String()
}

func basic(email string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(email+":pw"))
}

// TestFloorAnswersWithTheCallersEmail: both modes answer over gRPC and
// REST with the e-mail make bench checks for: echo the credential's,
// forward the upstream's (which saw the caller's credential).
func TestFloorAnswersWithTheCallersEmail(t *testing.T) {
	payload, err := os.ReadFile(filepath.Join("..", "..", "testdata", "opentact", "auth-2024.json"))
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		sawAuth []string
	)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sawAuth = append(sawAuth, r.Header.Get("Authorization"))
		mu.Unlock()
		if r.URL.Path != "/rest/auth" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(payload)
	}))
	t.Cleanup(up.Close)

	for _, tc := range []struct{ mode, caller, want string }{
		{"echo", "anna@example.com", "anna@example.com"},
		{"forward", "anna@example.com", "info@opentact.org"}, // the documented payload's user
	} {
		t.Run(tc.mode, func(t *testing.T) {
			client, restURL := startFloor(t, config{up: up.URL, mode: tc.mode})
			ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "authorization", basic(tc.caller)), 5*time.Second)
			defer cancel()
			resp, err := client.GetAuth(ctx, &authv1.GetAuthRequest{})
			if err != nil {
				t.Fatalf("gRPC: %v", err)
			}
			if got := resp.GetUser().GetEmail(); got != tc.want {
				t.Errorf("gRPC: e-mail %q, want %q", got, tc.want)
			}
			req, _ := http.NewRequest(http.MethodGet, restURL+"/v1/auth", nil)
			req.Header.Set("Authorization", basic(tc.caller))
			hr, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(hr.Body)
			hr.Body.Close()
			if hr.StatusCode != http.StatusOK || !strings.Contains(string(body), `"`+tc.want+`"`) {
				t.Errorf("REST: %d %s, want 200 with %q", hr.StatusCode, body, tc.want)
			}
			if _, err := client.GetAuth(context.Background(), &authv1.GetAuthRequest{}); status.Code(err) != codes.Unauthenticated {
				t.Errorf("no credential: %v, want Unauthenticated", err)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sawAuth) != 2 || sawAuth[0] != basic("anna@example.com") {
		t.Errorf("the upstream saw %q, want the caller's credential twice (forward, gRPC and REST)", sawAuth)
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestFloorRefusesAnUnknownMode(t *testing.T) {
	gl, _ := net.Listen("tcp", "127.0.0.1:0")
	hl, _ := net.Listen("tcp", "127.0.0.1:0")
	if err := serve(context.Background(), gl, hl, config{mode: "both"}); err == nil || !strings.Contains(err.Error(), "--mode") {
		t.Errorf("serve with --mode both: %v, want an error naming --mode", err)
	}
}

// TestFloorForwardsOverHTTPS: with --upstream-ca the forward mode trusts
// that CA alone, and speaks HTTP/2 to it, as the distant rows need.
func TestFloorForwardsOverHTTPS(t *testing.T) {
	payload, err := os.ReadFile(filepath.Join("..", "..", "testdata", "opentact", "auth-2024.json"))
	if err != nil {
		t.Fatal(err)
	}
	var proto atomic.Value
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto.Store(r.Proto)
		_, _ = w.Write(payload)
	}))
	up.EnableHTTP2 = true
	up.StartTLS()
	t.Cleanup(up.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: up.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", basic("anna@example.com"))

	// Without the CA the upstream's certificate is refused.
	client, _ := startFloor(t, config{up: up.URL, mode: "forward"})
	if _, err := client.GetAuth(ctx, &authv1.GetAuthRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("without --upstream-ca: %v, want Unavailable", err)
	}
	cfg, err := load(up.URL, "forward", ca, 0)
	if err != nil {
		t.Fatal(err)
	}
	client, _ = startFloor(t, cfg)
	resp, err := client.GetAuth(ctx, &authv1.GetAuthRequest{})
	if err != nil {
		t.Fatalf("with --upstream-ca: %v", err)
	}
	if got := resp.GetUser().GetEmail(); got != "info@opentact.org" {
		t.Errorf("e-mail %q, want the upstream's", got)
	}
	if got := proto.Load(); got != "HTTP/2.0" {
		t.Errorf("the upstream saw %v, want HTTP/2.0", got)
	}
	if _, err := load(up.URL, "forward", filepath.Join(t.TempDir(), "none.pem"), 0); err == nil {
		t.Error("a missing --upstream-ca file: no error")
	}
}

// TestFloorEchoDelay: with --delay, echo answers that long after the call
// arrives, and at once when the caller gives up.
func TestFloorEchoDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &floor{delay: 40 * time.Millisecond}
		ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", basic("anna@example.com")))
		start := time.Now()
		resp, err := f.GetAuth(ctx, &authv1.GetAuthRequest{})
		if err != nil || resp.GetUser().GetEmail() != "anna@example.com" {
			t.Fatalf("GetAuth: %v, %v", resp, err)
		}
		if got := time.Since(start); got != 40*time.Millisecond {
			t.Errorf("answered after %v, want 40ms", got)
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		defer cancel()
		start = time.Now()
		if _, err := f.GetAuth(cctx, &authv1.GetAuthRequest{}); status.Code(err) != codes.DeadlineExceeded || time.Since(start) != 10*time.Millisecond {
			t.Errorf("caller gone after 10ms: %v after %v, want DeadlineExceeded at 10ms", err, time.Since(start))
		}
	})
}
