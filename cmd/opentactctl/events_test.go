package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opentact-facade/opentact-facade/internal/sandbox"
	"github.com/opentact-facade/opentact-facade/internal/server"
)

// lockedBuffer is a bytes.Buffer the command writes while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestEventsCommand: opentactctl events prints each event as one JSON
// line as it comes, filtered by --types, and exits 0 on Ctrl-C.
func TestEventsCommand(t *testing.T) {
	t.Parallel()
	sb, err := sandbox.New(sandbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	up := httptest.NewServer(sb)
	t.Cleanup(func() {
		_ = sb.Close()
		up.Close()
	})
	s, err := server.New(server.Options{
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Upstream: up.URL,
		EventsURL: "ws" + strings.TrimPrefix(up.URL, "http") + "/", ShutdownGrace: 5 * time.Second,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(sctx) }()
	t.Cleanup(func() { stop(); <-served })

	post := func(path, body string) int {
		req, _ := http.NewRequest(http.MethodPost, up.URL+path, strings.NewReader(body))
		req.SetBasicAuth(sandbox.DemoEmail, sandbox.DemoPassword)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	docs := strconv.Itoa(sandbox.DocsNumber)
	if code := post("/rest/order", `{"items":[{"tn":`+docs+`,"features":["sms"]}]}`); code >= 300 {
		t.Fatalf("ordering the number: %d", code)
	}

	ctx, ctrlC := context.WithCancel(context.Background())
	var stdout, stderr lockedBuffer
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"events", "--plaintext", "--addr", s.GRPCAddr().String(), "--email", sandbox.DemoEmail, "--types", "sms"},
			func(k string) (string, bool) { v, ok := demoEnv[k]; return v, ok }, strings.NewReader(""), &stdout, &stderr)
	}()
	// Opentact keeps no event for a socket not yet open: send until one
	// arrives. The balance events of the sends are filtered out.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stdout.String(), "\n") {
		if time.Now().After(deadline) {
			t.Fatalf("no event printed; stderr: %s", stderr.String())
		}
		if code := post("/sandbox/inbound-sms", `{"to":"`+docs+`","from":"12025550123","message":"Hi there"}`); code != http.StatusAccepted {
			t.Fatalf("inbound-sms: %d", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ctrlC()
	if code := <-exited; code != exitOK {
		t.Fatalf("exit %d after Ctrl-C; stderr: %s", code, stderr.String())
	}
	for line := range strings.Lines(stdout.String()) {
		var ev struct {
			Type string
			Sms  struct{ Type, Message string }
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.Type != "sms" || ev.Sms.Type != "smsi" || ev.Sms.Message != "Hi there" {
			t.Fatalf("line %q: %v", line, err)
		}
		if strings.Count(line, "\n") != 1 {
			t.Fatalf("an event over more than one line: %q", line)
		}
	}
}
