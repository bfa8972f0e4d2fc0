package netguard_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/opentact-facade/opentact-facade/internal/netguard"
)

const testLinger = 200 * time.Millisecond

func TestGuardCutsRapidResetFloodOnGRPC(t *testing.T) {
	cuts := make(chan net.Addr, 4)
	ln := netguard.GuardHTTP2(listen(t), netguard.ResetPolicy{
		Linger: testLinger,
		OnCut:  func(a net.Addr) { cuts <- a },
	})
	serveGRPC(t, ln)
	c := dialH2(t, ln.Addr().String())

	// Batches paced by SETTINGS round trips bound what is in flight.
	const batch, minStreams = 10, 100
	var ev frameEvent
	for c.streams() < 10*minStreams && ev.goAway == nil {
		for range batch {
			c.reset(c.grpcCall())
		}
		ev = c.sync()
		if ev.err != nil {
			t.Fatalf("connection ended without a GOAWAY after %d streams: %v", c.streams(), ev.err)
		}
	}
	if ev.goAway == nil {
		t.Fatalf("no GOAWAY after %d rapid resets", c.streams())
	}
	t.Logf("GOAWAY after %d streams", c.streams())
	if n := c.streams(); n > minStreams+batch {
		t.Errorf("flooder opened %d streams before the GOAWAY, want at most %d", n, minStreams+batch)
	}
	ga := ev.goAway
	if ga.code != http2.ErrCodeEnhanceYourCalm || ga.debug != "too many streams reset by the client" {
		t.Fatalf("GOAWAY %+v, want ENHANCE_YOUR_CALM for streams reset by the client", ga)
	}
	if ga.lastStreamID < 2*minStreams-1 || ga.lastStreamID >= c.nextID {
		t.Errorf("GOAWAY last stream id %d, want the highest the client opened (<%d)", ga.lastStreamID, c.nextID)
	}
	c.mustEnd()

	remote := waitFor(t, cuts, "OnCut")
	if remote.String() != c.conn.LocalAddr().String() {
		t.Errorf("OnCut(%v), want the client's address %v", remote, c.conn.LocalAddr())
	}
	if len(cuts) != 0 {
		t.Errorf("OnCut called %d more times", len(cuts))
	}
}

func TestGuardSparesWellBehavedGRPCClient(t *testing.T) {
	var cuts atomic.Int32
	ln := netguard.GuardHTTP2(listen(t), netguard.ResetPolicy{
		Linger: testLinger,
		OnCut:  func(net.Addr) { cuts.Add(1) },
	})
	serveGRPC(t, ln)
	cc, err := grpc.NewClient("passthrough:///"+ln.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	hc := healthpb.NewHealthClient(cc)

	const calls, workers = 400, 8
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				if err := healthCall(hc, i); err != nil {
					t.Errorf("call %d: %v", i, err)
				}
			}
		})
	}
	for i := range calls {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if n := cuts.Load(); n != 0 {
		t.Fatalf("well-behaved client cut %d times", n)
	}
}

// healthCall makes call i of a well-behaved client: one in ten with an
// expired deadline, two in ten a Watch it cancels, the rest plain checks.
func healthCall(hc healthpb.HealthClient, i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	switch i % 10 {
	case 0:
		expired, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
		defer cancel()
		_, err := hc.Check(expired, &healthpb.HealthCheckRequest{})
		if status.Code(err) != codes.DeadlineExceeded {
			return errors.Join(errors.New("want DeadlineExceeded"), err)
		}
		return nil
	case 3, 7:
		watch, cancelWatch := context.WithCancel(ctx)
		defer cancelWatch()
		w, err := hc.Watch(watch, &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		if _, err := w.Recv(); err != nil {
			return err
		}
		cancelWatch()
		if _, err := w.Recv(); status.Code(err) != codes.Canceled {
			return errors.Join(errors.New("want Canceled"), err)
		}
		return nil
	}
	resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return err
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return errors.New("not SERVING")
	}
	return nil
}

func TestGuardIgnoresResetsAfterServerEndedStream(t *testing.T) {
	var cuts atomic.Int32
	ln := netguard.GuardHTTP2(listen(t), netguard.ResetPolicy{
		Linger: testLinger,
		OnCut:  func(net.Addr) { cuts.Add(1) },
	})
	serveH2(t, ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	c := dialH2(t, ln.Addr().String())

	// Young resets, all sent after the server's END_STREAM: none premature.
	for range 150 {
		id := c.get("/")
		if err := c.flush(); err != nil {
			t.Fatal(err)
		}
		for ev := c.next(); !ev.endsStream(id); ev = c.next() {
			if ev.err != nil || ev.goAway != nil {
				t.Fatalf("stream %d: connection cut: GOAWAY %+v, error %v", id, ev.goAway, ev.err)
			}
		}
		c.reset(id)
	}
	c.mustSync()
	if n := cuts.Load(); n != 0 {
		t.Fatalf("cut %d times", n)
	}
}

func TestGuardIgnoresResetsOfOldStreams(t *testing.T) {
	clock := &fakeClock{}
	cuts := make(chan net.Addr, 4)
	ln := netguard.GuardHTTP2(listen(t), netguard.ResetPolicy{
		Now:    clock.now,
		Linger: testLinger,
		OnCut:  func(a net.Addr) { cuts <- a },
	})
	serveH2(t, ln, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // keep the stream open until the client resets it
	}))
	c := dialH2(t, ln.Addr().String())

	var ids []uint32
	for range 100 {
		ids = append(ids, c.get("/"))
	}
	c.mustSync()
	clock.advance(2 * time.Second) // past the default PrematureAge
	for _, id := range ids {
		c.reset(id)
	}
	c.mustSync()
	if len(cuts) != 0 {
		t.Fatal("cut for resetting streams older than PrematureAge")
	}

	// Young resets still count: 200 opened, 100 premature is a cut.
	for range 120 {
		c.reset(c.get("/"))
	}
	c.mustGoAway()
	waitFor(t, cuts, "OnCut")
}

func TestGuardPassesHTTP1Through(t *testing.T) {
	ln := netguard.GuardHTTP2(listen(t), netguard.ResetPolicy{MinStreams: 1})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello "+r.URL.Path)
	})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	defer func() {
		srv.Close()
		<-done
	}()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: waitLimit}

	resp, err := client.Get("http://" + ln.Addr().String() + "/there")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || string(body) != "hello /there" {
		t.Fatalf("got %d %q, %v; want 200 \"hello /there\"", resp.StatusCode, body, err)
	}
}

func TestGuardPassesThroughConnectionWithoutPreface(t *testing.T) {
	var cuts atomic.Int32
	ln := netguard.GuardHTTP2(listen(t), netguard.ResetPolicy{
		MinStreams: 1,
		Linger:     testLinger,
		OnCut:      func(net.Addr) { cuts.Add(1) },
	})
	serve(t, ln, func(c net.Conn) {
		_, _ = io.Copy(c, c)
		c.Close()
	})

	// HTTP/2 frames that would be a flood, without the preface, readable as
	// frames from byte 0 and from byte 24 alike.
	var sent bytes.Buffer
	fr := http2.NewFramer(&sent, nil)
	_ = fr.WriteWindowUpdate(0, 1)           // 13 bytes
	_ = fr.WriteData(1, false, []byte{1, 2}) // 11 bytes
	for id := uint32(1); id < 40; id += 2 {
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: []byte{0x82}, EndHeaders: true})
		_ = fr.WriteRSTStream(id, http2.ErrCodeCancel)
	}

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(waitLimit))
	if _, err := c.Write(sent.Bytes()); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, sent.Bytes()) {
		t.Fatalf("echo through the guard: got %d bytes, want the %d sent, untouched", len(got), sent.Len())
	}
	if n := cuts.Load(); n != 0 {
		t.Fatalf("cut %d times", n)
	}
}
