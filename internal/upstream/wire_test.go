package upstream_test

import (
	"bufio"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestRequestOnTheWire: the GET Opentact receives has no body, no
// Content-Length and no Transfer-Encoding, though the client gives it an
// empty body to keep Go's transport from replaying it.
func TestRequestOnTheWire(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	head := make(chan string, 1)
	go func() {
		conn, err := lis.Accept()
		if err != nil {
			head <- ""
			return
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		var b strings.Builder
		for {
			line, err := r.ReadString('\n')
			b.WriteString(line)
			if err != nil || line == "\r\n" {
				break
			}
		}
		head <- b.String()
		body := `{"success":true,"payload":{"uuid":"u","email":"e@example.com"}}`
		_, _ = conn.Write([]byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\nConnection: close\r\n\r\n" + body))
	}()
	if _, err := auth(newClient(t, "http://"+lis.Addr().String()), t.Context(), basicCreds(t)); err != nil {
		t.Fatalf("Auth: %v", err)
	}
	got := <-head
	if !strings.HasPrefix(got, "GET /rest/auth HTTP/1.1\r\n") {
		t.Errorf("request line: %q", got)
	}
	for _, h := range []string{"content-length:", "transfer-encoding:"} {
		if strings.Contains(strings.ToLower(got), h) {
			t.Errorf("the GET carries %s:\n%s", h, got)
		}
	}
	if _, err := http.ReadRequest(bufio.NewReader(strings.NewReader(got))); err != nil {
		t.Errorf("not a valid request: %v", err)
	}
}
