package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/opentact-facade/opentact-facade/internal/sandbox"
	"github.com/opentact-facade/opentact-facade/internal/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startStack runs the sandbox behind a plaintext facade until the test
// ends; it returns the facade's gRPC address and the sandbox's request
// count.
func startStack(t *testing.T) (string, *atomic.Int64) {
	t.Helper()
	var requests atomic.Int64
	sb, err := sandbox.New(sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		sb.ServeHTTP(w, r)
	}))
	t.Cleanup(up.Close)
	s, err := server.New(server.Options{
		GRPCAddr:      "127.0.0.1:0",
		HTTPAddr:      "127.0.0.1:0",
		Upstream:      up.URL,
		ShutdownGrace: 5 * time.Second,
		Logger:        slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s.GRPCAddr().String(), &requests
}

func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

var demoEnv = env(map[string]string{"OPENTACT_EMAIL": sandbox.DemoEmail, "OPENTACT_PASSWORD": sandbox.DemoPassword})

func TestSignsInOverPlaintext(t *testing.T) {
	t.Parallel()
	addr, requests := startStack(t)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-addr", addr, "-plaintext"}, demoEnv, &out); err != nil {
		t.Fatalf("run: %v", err)
	}
	const want = "signed in as opentact@callify.io (0116f6d1-1280-44b2-9134-da48509ec575), account f2cb79fb-6bf8-4484-8034-debf95aac73b\n"
	if out.String() != want {
		t.Errorf("run printed %q, want %q", out.String(), want)
	}
	if strings.Contains(out.String(), sandbox.DemoPassword) {
		t.Errorf("run printed the password: %q", out.String())
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("the sandbox saw %d requests, want 1", n)
	}
}

// TestNeedsPlaintextFlag: without -plaintext the example speaks TLS, so it
// cannot reach a plaintext facade, and the password never leaves.
func TestNeedsPlaintextFlag(t *testing.T) {
	t.Parallel()
	addr, requests := startStack(t)
	var out bytes.Buffer
	err := run(context.Background(), []string{"-addr", addr}, demoEnv, &out)
	if err == nil {
		t.Fatalf("run without -plaintext against a plaintext facade: no error; printed %q", out.String())
	}
	if code := status.Code(err); code != codes.Unavailable {
		t.Errorf("run: %v, want Unavailable", err)
	}
	if strings.Contains(err.Error(), sandbox.DemoPassword) {
		t.Errorf("the error holds the password: %v", err)
	}
	if out.Len() != 0 {
		t.Errorf("run printed %q", out.String())
	}
	if n := requests.Load(); n != 0 {
		t.Errorf("the sandbox saw %d requests, want 0", n)
	}
}

func TestFailures(t *testing.T) {
	t.Parallel()
	addr, requests := startStack(t)
	for _, tc := range []struct {
		name     string
		args     []string
		getenv   func(string) string
		want     codes.Code
		upstream bool // whether the call reaches the sandbox
	}{
		{"wrong password", []string{"-addr", addr, "-plaintext"}, env(map[string]string{"OPENTACT_EMAIL": sandbox.DemoEmail, "OPENTACT_PASSWORD": "wrong-Password-1"}), codes.Unauthenticated, true},
		{"no credentials in the environment", []string{"-addr", addr, "-plaintext"}, env(nil), codes.Unauthenticated, false},
		{"no password", []string{"-addr", addr, "-plaintext"}, env(map[string]string{"OPENTACT_EMAIL": sandbox.DemoEmail}), codes.Unauthenticated, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := requests.Load()
			var out bytes.Buffer
			err := run(context.Background(), tc.args, tc.getenv, &out)
			if status.Code(err) != tc.want {
				t.Errorf("run: %v, want %v", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "wrong-Password-1") {
				t.Errorf("the error holds the password: %v", err)
			}
			if reached := requests.Load() > before; reached != tc.upstream {
				t.Errorf("the sandbox was reached: %v, want %v", reached, tc.upstream)
			}
		})
	}
	t.Run("bad flag", func(t *testing.T) {
		if err := run(context.Background(), []string{"-bogus"}, demoEnv, &bytes.Buffer{}); err == nil {
			t.Error("run -bogus: no error")
		}
	})
}
