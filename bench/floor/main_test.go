package main

import (
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
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
func startFloor(t *testing.T, up, mode string) (authv1.AuthServiceClient, string) {
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
	go func() { done <- serve(ctx, gl, hl, up, mode) }()
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
			client, restURL := startFloor(t, up.URL, tc.mode)
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
	if err := serve(context.Background(), gl, hl, "", "both"); err == nil || !strings.Contains(err.Error(), "--mode") {
		t.Errorf("serve with --mode both: %v, want an error naming --mode", err)
	}
}
