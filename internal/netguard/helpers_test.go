package netguard_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitLimit bounds every wait for an event in these tests.
const waitLimit = 5 * time.Second

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// serve runs handle on each connection accepted from ln until ln closes,
// and waits at cleanup for every handler to return.
func serve(t *testing.T, ln net.Listener, handle func(net.Conn)) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { handle(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
}

// serveH2 serves prior-knowledge plaintext HTTP/2 with golang.org/x/net/http2.
func serveH2(t *testing.T, ln net.Listener, h http.Handler) {
	t.Helper()
	srv := &http2.Server{}
	serve(t, ln, func(c net.Conn) {
		srv.ServeConn(c, &http2.ServeConnOpts{Handler: h})
	})
}

// serveGRPC serves grpc-go with the health service, which reports SERVING.
func serveGRPC(t *testing.T, ln net.Listener) {
	t.Helper()
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, health.NewServer())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Serve(ln)
	}()
	t.Cleanup(func() {
		s.Stop()
		<-done
	})
}

// fakeClock is a ResetPolicy.Now that moves only when told.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// goAwayInfo is what a client learnt from a GOAWAY frame.
type goAwayInfo struct {
	lastStreamID uint32
	code         http2.ErrCode
	debug        string
}

// frameEvent is one frame read from the server, or the read error that
// ended the connection.
type frameEvent struct {
	hdr    http2.FrameHeader
	ping   [8]byte
	goAway *goAwayInfo
	err    error
}

func (e frameEvent) endsStream(id uint32) bool {
	h := e.hdr
	return e.err == nil && h.StreamID == id &&
		(h.Type == http2.FrameHeaders || h.Type == http2.FrameData) &&
		h.Flags.Has(http2.FlagDataEndStream)
}

// h2Client is a raw HTTP/2 client: it writes exactly the frames a test asks
// for and reports every frame the server sends.
type h2Client struct {
	t      *testing.T
	conn   net.Conn
	out    bytes.Buffer
	fw     *http2.Framer
	hpBuf  bytes.Buffer
	enc    *hpack.Encoder
	events chan frameEvent
	quit   chan struct{}
	done   chan struct{}

	nextID       uint32 // next stream id to open
	settingsSent int
	acksSeen     int
}

func dialH2(t *testing.T, addr string) *h2Client {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(2 * waitLimit))
	c := &h2Client{
		t:      t,
		conn:   conn,
		events: make(chan frameEvent, 1024),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
		nextID: 1,
	}
	c.fw = http2.NewFramer(&c.out, nil)
	c.enc = hpack.NewEncoder(&c.hpBuf)
	go c.readLoop()
	t.Cleanup(c.close)
	c.out.WriteString(http2.ClientPreface)
	c.settings()
	if err := c.flush(); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *h2Client) close() {
	close(c.quit)
	c.conn.Close()
	<-c.done
}

func (c *h2Client) readLoop() {
	defer close(c.done)
	fr := http2.NewFramer(nil, c.conn)
	for {
		f, err := fr.ReadFrame()
		ev := frameEvent{err: err}
		if err == nil {
			ev.hdr = f.Header()
			switch f := f.(type) {
			case *http2.GoAwayFrame:
				ev.goAway = &goAwayInfo{f.LastStreamID, f.ErrCode, string(f.DebugData())}
			case *http2.PingFrame:
				ev.ping = f.Data
			}
		}
		select {
		case c.events <- ev:
		case <-c.quit:
			return
		}
		if err != nil {
			return
		}
	}
}

// flush sends the frames written so far.
func (c *h2Client) flush() error {
	_, err := c.conn.Write(c.out.Bytes())
	c.out.Reset()
	return err
}

func (c *h2Client) settings() {
	_ = c.fw.WriteSettings()
	c.settingsSent++
}

// open writes a HEADERS frame opening the next stream with the given header
// fields (name, value, ...) and returns its id.
func (c *h2Client) open(endStream bool, fields ...string) uint32 {
	c.hpBuf.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		_ = c.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	id := c.nextID
	c.nextID += 2
	_ = c.fw.WriteHeaders(http2.HeadersFrameParam{
		StreamID:      id,
		BlockFragment: c.hpBuf.Bytes(),
		EndStream:     endStream,
		EndHeaders:    true,
	})
	return id
}

// get writes a GET request for path on a new stream.
func (c *h2Client) get(path string) uint32 {
	return c.open(true, ":method", "GET", ":scheme", "http", ":authority", "test", ":path", path)
}

// grpcCall writes the start of a health check: its HEADERS and one message,
// without ending the stream.
func (c *h2Client) grpcCall() uint32 {
	id := c.open(false,
		":method", "POST", ":scheme", "http", ":authority", "test",
		":path", "/grpc.health.v1.Health/Check",
		"content-type", "application/grpc", "te", "trailers")
	_ = c.fw.WriteData(id, false, []byte{0, 0, 0, 0, 0})
	return id
}

func (c *h2Client) reset(id uint32) { _ = c.fw.WriteRSTStream(id, http2.ErrCodeCancel) }

// streams is the number of streams opened so far.
func (c *h2Client) streams() int { return int(c.nextID / 2) }

// next returns the next frame from the server, answering its SETTINGS and
// PINGs as a client must.
func (c *h2Client) next() frameEvent {
	c.t.Helper()
	select {
	case ev := <-c.events:
		h := ev.hdr
		switch {
		case ev.err != nil:
		case h.Type == http2.FrameSettings && h.Flags.Has(http2.FlagSettingsAck):
			c.acksSeen++
		case h.Type == http2.FrameSettings:
			_ = c.fw.WriteSettingsAck()
			_ = c.flush()
		case h.Type == http2.FramePing && !h.Flags.Has(http2.FlagPingAck):
			_ = c.fw.WritePing(true, ev.ping)
			_ = c.flush()
		}
		return ev
	case <-time.After(waitLimit):
		c.t.Fatal("no frame from the server in time")
		return frameEvent{}
	}
}

// sync sends what is pending and a SETTINGS frame, and waits until the
// server acknowledges it, which it does only after reading everything sent
// before. A GOAWAY or the connection's end, if one comes first, is returned
// instead.
func (c *h2Client) sync() frameEvent {
	c.t.Helper()
	c.settings()
	if err := c.flush(); err != nil {
		return frameEvent{err: err}
	}
	for {
		ev := c.next()
		if ev.err != nil || ev.goAway != nil || c.acksSeen == c.settingsSent {
			return ev
		}
	}
}

// mustSync is sync for a connection that must stay up.
func (c *h2Client) mustSync() {
	c.t.Helper()
	if ev := c.sync(); ev.err != nil || ev.goAway != nil {
		c.t.Fatalf("after %d streams: connection cut: GOAWAY %+v, error %v", c.streams(), ev.goAway, ev.err)
	}
}

// mustGoAway syncs and expects a rapid-reset GOAWAY, then the end of the
// connection with a clean EOF.
func (c *h2Client) mustGoAway() *goAwayInfo {
	c.t.Helper()
	ev := c.sync()
	if ev.goAway == nil {
		c.t.Fatalf("after %d streams: want a GOAWAY, got frame %v, error %v", c.streams(), ev.hdr, ev.err)
	}
	ga := ev.goAway
	if ga.code != http2.ErrCodeEnhanceYourCalm || ga.debug != "too many streams reset by the client" {
		c.t.Fatalf("GOAWAY %+v, want ENHANCE_YOUR_CALM for streams reset by the client", ga)
	}
	c.mustEnd()
	return ga
}

// mustEnd reads until the connection ends and expects a half-close (EOF)
// rather than a reset.
func (c *h2Client) mustEnd() {
	c.t.Helper()
	for {
		ev := c.next()
		if ev.err != nil {
			if !errors.Is(ev.err, io.EOF) {
				c.t.Fatalf("connection ended with %v, want EOF", ev.err)
			}
			return
		}
	}
}

// waitFor waits for a value on ch.
func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}
