package sandbox

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestSlowSocketDropped: a socket that does not read is dropped (1013)
// once its queue is full, while its account's other socket gets every
// event and publishing never waits.
func TestSlowSocketDropped(t *testing.T) {
	t.Parallel()
	s, err := New(Options{EventQueue: 4})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	defer s.Close()
	u := s.byEmail[DemoEmail]
	// The slow client's kernel buffers little, so its socket fills soon.
	small := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var err error
			_ = rc.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
			return err
		}}
		return d.DialContext(ctx, network, addr)
	}}}
	defer small.CloseIdleConnections()
	open := func(hc *http.Client) *websocket.Conn {
		c, _, err := websocket.Dial(t.Context(), "ws"+strings.TrimPrefix(srv.URL, "http"), &websocket.DialOptions{HTTPClient: hc})
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadLimit(1 << 20)
		token, _ := s.issueToken(u.uuid)
		if err := c.Write(t.Context(), websocket.MessageText, []byte(`{"type":"auth","payload":"`+token+`"}`)); err != nil {
			t.Fatal(err)
		}
		if _, b, err := c.Read(t.Context()); err != nil || !strings.Contains(string(b), "success auth") {
			t.Fatalf("auth: %s, %v", b, err)
		}
		return c
	}
	slow, fast := open(small), open(nil)
	defer slow.CloseNow()
	defer fast.CloseNow()
	sockets := func() int {
		s.events.mu.Lock()
		defer s.events.mu.Unlock()
		return len(s.events.byAcct[u.acct])
	}

	pad := strings.Repeat("x", 60<<10)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	sent := 0
	for ; sockets() == 2 && sent < 10_000; sent++ {
		s.publish(u.acct, fmt.Appendf(nil, `{"type":"test","n":%d,"pad":%q}`, sent, pad))
		if _, b, err := fast.Read(ctx); err != nil || !strings.Contains(string(b[:30]), fmt.Sprintf(`"n":%d,`, sent)) {
			t.Fatalf("fast socket, frame %d: %.40s, %v", sent, b, err)
		}
	}
	t.Logf("dropped after %d frames", sent)
	if sockets() != 1 {
		t.Fatalf("the slow socket is still there after %d frames", sent)
	}
	// The slow one gets what was queued, then 1013.
	for {
		if _, _, err := slow.Read(ctx); err != nil {
			if code := websocket.CloseStatus(err); code != websocket.StatusTryAgainLater {
				t.Errorf("slow socket closed with %v (%v), want 1013", code, err)
			}
			break
		}
	}
	s.publish(u.acct, []byte(`{"type":"after"}`))
	if _, b, err := fast.Read(ctx); err != nil || string(b) != `{"type":"after"}` {
		t.Errorf("fast socket after the drop: %s, %v", b, err)
	}
}
