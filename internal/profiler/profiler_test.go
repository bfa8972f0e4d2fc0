package profiler_test

import (
	"io"
	"net"
	"net/http"
	"testing"

	"go.uber.org/goleak"

	"github.com/opentact-facade/opentact-facade/internal/profiler"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestServeAnswersUntilStopped: a CPU profile that go tool pprof reads
// (gzipped protobuf), as make bench fetches it from the facade and the
// floor, and nothing answers, or runs, after stop.
func TestServeAnswersUntilStopped(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := profiler.Serve(ln)
	client := &http.Client{Transport: &http.Transport{}}
	resp, err := client.Get("http://" + ln.Addr().String() + "/debug/pprof/profile?seconds=1")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || len(body) < 2 || body[0] != 0x1f || body[1] != 0x8b {
		t.Errorf("GET /debug/pprof/profile: %d, %d bytes (%v), want 200 and a gzipped profile", resp.StatusCode, len(body), err)
	}
	client.CloseIdleConnections()
	stop()
	if _, err := client.Get("http://" + ln.Addr().String() + "/debug/pprof/"); err == nil {
		t.Error("the profiler still answers after stop")
	}
}
