package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	apiv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/api/v1"
	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/engine"
	"github.com/opentact-facade/opentact-facade/internal/netguard"
	"github.com/opentact-facade/opentact-facade/internal/server"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// This file is the abuse suite: what an attacker or an unlucky operator
// can do to the facade, each at a size a unit test can afford, and the
// bound that holds against it. Every test runs the facade on real
// listeners; the attacks that HTTP/2 clients would refuse to make are made
// with a raw HTTP/2 client (h2Client).

// ---------------------------------------------------------------------------
// A raw HTTP/2 client

// h2Client speaks HTTP/2 on one connection to the gRPC port, writing
// whatever frames a test asks for, and reports how each stream ended.
type h2Client struct {
	t      testing.TB
	addr   string
	conn   net.Conn
	mu     sync.Mutex // guards bw, fr's writes, enc and window
	sendOK *sync.Cond // signalled when window grows
	window int64      // the connection's send window (flow control)
	bw     *bufio.Writer
	fr     *http2.Framer
	enc    *hpack.Encoder
	block  bytes.Buffer
	next   uint32
	ends   chan h2End
	goAway chan http2.ErrCode
	closed chan error // the read side's end
}

// h2End is how a stream ended: trailers (status, and the details of a
// google.rpc.Status when sent) or RST_STREAM.
type h2End struct {
	stream  uint32
	status  string
	message string
	details []byte
	rst     *http2.ErrCode
}

func dialH2(t testing.TB, addr string) *h2Client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := &h2Client{t: t, addr: addr, conn: conn, next: 1, window: 65535,
		ends: make(chan h2End, 1<<12), goAway: make(chan http2.ErrCode, 1), closed: make(chan error, 1)}
	c.sendOK = sync.NewCond(&c.mu)
	c.bw = bufio.NewWriterSize(conn, 64<<10)
	c.fr = http2.NewFramer(c.bw, conn)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(64<<10, nil)
	c.fr.MaxHeaderListSize = 64 << 10
	c.enc = hpack.NewEncoder(&c.block)
	if _, err := c.bw.WriteString(http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := c.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	if err := c.bw.Flush(); err != nil {
		t.Fatal(err)
	}
	go c.read()
	t.Cleanup(func() { _ = conn.Close() })
	return c
}

func (c *h2Client) read() {
	ended := map[uint32]bool{} // a stream ends once: trailers, then maybe RST_STREAM
	end := func(e h2End) {
		if !ended[e.stream] {
			ended[e.stream] = true
			c.ends <- e
		}
	}
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			c.mu.Lock()
			c.window = 1 << 62 // nothing more to wait for
			c.sendOK.Broadcast()
			c.mu.Unlock()
			c.closed <- err
			return
		}
		switch f := f.(type) {
		case *http2.WindowUpdateFrame:
			if f.StreamID == 0 {
				c.mu.Lock()
				c.window += int64(f.Increment)
				c.sendOK.Broadcast()
				c.mu.Unlock()
			}
		// Acks are written off the reading goroutine: it must never wait
		// for a writer that may itself wait for the server to read.
		case *http2.SettingsFrame:
			if !f.IsAck() {
				go c.write(func() error { return c.fr.WriteSettingsAck() })
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				data := f.Data
				go c.write(func() error { return c.fr.WritePing(true, data) })
			}
		case *http2.GoAwayFrame:
			select {
			case c.goAway <- f.ErrCode:
			default:
			}
		case *http2.RSTStreamFrame:
			code := f.ErrCode
			end(h2End{stream: f.StreamID, rst: &code})
		case *http2.MetaHeadersFrame:
			e := h2End{stream: f.StreamID}
			for _, hf := range f.Fields {
				switch hf.Name {
				case "grpc-status":
					e.status = hf.Value
				case "grpc-message":
					e.message = hf.Value
				case "grpc-status-details-bin":
					e.details = []byte(hf.Value)
				}
			}
			if f.StreamEnded() {
				end(e)
			}
		}
	}
}

// write runs w under the write lock and flushes; errors end nothing here
// (the read side reports the connection's end).
func (c *h2Client) write(w func() error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := w(); err != nil {
		return err
	}
	return c.bw.Flush()
}

// headers encodes a GetAuth call's header block, with extra fields.
func (c *h2Client) headers(extra ...hpack.HeaderField) []byte {
	return c.headersFor(getAuthPath, extra...)
}

// headersFor encodes the header block of a gRPC call to path.
func (c *h2Client) headersFor(path string, extra ...hpack.HeaderField) []byte {
	c.block.Reset()
	for _, hf := range append([]hpack.HeaderField{
		{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"},
		{Name: ":path", Value: path}, {Name: ":authority", Value: c.addr},
		{Name: "content-type", Value: "application/grpc"}, {Name: "te", Value: "trailers"},
	}, extra...) {
		_ = c.enc.WriteField(hf)
	}
	return bytes.Clone(c.block.Bytes())
}

// emptyRequest is an empty GetAuthRequest on the wire: uncompressed, length 0.
var emptyRequest = make([]byte, 5)

// stream opens the next stream with a GetAuth header block; with body,
// it also sends it and ends the stream; with reset, it then resets it.
// It does not flush: flush does.
func (c *h2Client) stream(block, body []byte, reset bool) (uint32, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := c.next
	c.next += 2
	if err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndHeaders: true}); err != nil {
		return id, err
	}
	if body != nil {
		for c.window < int64(len(body)) {
			if err := c.bw.Flush(); err != nil {
				return id, err
			}
			c.sendOK.Wait()
		}
		c.window -= int64(len(body))
		if err := c.fr.WriteData(id, !reset, body); err != nil {
			return id, err
		}
	}
	if reset {
		if err := c.fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
			return id, err
		}
	}
	return id, nil
}

// barrier returns once the server has read every frame sent before it:
// a call to an unknown method, answered at once, on the same connection.
func (c *h2Client) barrier() {
	c.t.Helper()
	id, err := c.stream(c.headersFor("/no.such.Service/Barrier"), emptyRequest, false)
	if err == nil {
		err = c.flush()
	}
	if err != nil {
		c.t.Fatal(err)
	}
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	for {
		select {
		case e := <-c.ends:
			if e.stream == id {
				return
			}
		case err := <-c.closed:
			c.t.Fatalf("the connection ended before the barrier: %v", err)
		case <-timer.C:
			c.t.Fatal("the barrier did not end within 10s")
		}
	}
}

// data sends a DATA frame within the connection's flow-control window,
// waiting for the server to open it (a flood of data past it would be a
// protocol error, not the attack measured).
func (c *h2Client) data(id uint32, p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.window < int64(len(p)) {
		if err := c.bw.Flush(); err != nil {
			return err
		}
		c.sendOK.Wait()
	}
	c.window -= int64(len(p))
	return c.fr.WriteData(id, false, p)
}

func (c *h2Client) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bw.Flush()
}

// awaitEnds collects the ends of n streams, failing after within.
func (c *h2Client) awaitEnds(n int, within time.Duration) []h2End {
	c.t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	var out []h2End
	for len(out) < n {
		select {
		case e := <-c.ends:
			out = append(out, e)
		case err := <-c.closed:
			c.t.Fatalf("the connection ended after %d of %d streams: %v", len(out), n, err)
		case <-timer.C:
			c.t.Fatalf("only %d of %d streams ended within %v", len(out), n, within)
		}
	}
	return out
}

// reasonOf is the ErrorInfo reason in a grpc-status-details-bin value.
func reasonOf(t testing.TB, details []byte) (reason string, retryAfter time.Duration) {
	t.Helper()
	if len(details) == 0 {
		return "", 0
	}
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(string(details), "="))
	if err != nil {
		t.Fatalf("grpc-status-details-bin: %v", err)
	}
	var s spb.Status
	if err := proto.Unmarshal(raw, &s); err != nil {
		t.Fatalf("grpc-status-details-bin: %v", err)
	}
	for _, d := range status.FromProto(&s).Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			reason = d.GetReason()
		case *errdetails.RetryInfo:
			retryAfter = d.GetRetryDelay().AsDuration()
		}
	}
	return reason, retryAfter
}

// metric is one sample of /metrics, 0 when absent.
func metric(t *testing.T, f *facade, name string, labels ...string) float64 {
	t.Helper()
	v, _ := shSample(shMetrics(t, f), name, labels...)
	return v
}

// ---------------------------------------------------------------------------
// Calls in flight

// TestInFlightBoundAcrossDoors: the bound on calls in flight counts gRPC
// and REST together. Past it a call is refused at once, without reaching
// Opentact: gRPC with Unavailable, FACADE_BUSY and RetryInfo; REST with
// 503 and Retry-After. The probes still answer, and once a call ends the
// next is let in.
func TestInFlightBoundAcrossDoors(t *testing.T) {
	t.Parallel()
	up, arrived, release := holdingUpstream(t)
	f := startFacade(t, up.URL, func(o *server.Options) { o.MaxInFlight = 3 })

	held := make(chan error, 3)
	for range 2 {
		ctx := authCtx(t, 10*time.Second)
		go func() {
			_, err := f.client.GetAuth(ctx, &authv1.GetAuthRequest{})
			held <- err
		}()
	}
	go func() {
		resp, body, err := getAuth(f.http, f.restURL+"/v1/auth")
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %d: %s", resp.StatusCode, body)
		}
		held <- err
	}()
	waitArrivals(t, arrived, 3)

	// Opentact holds the three admitted calls until the test ends: a call
	// that waited for one of them would end at its deadline (gRPC) or the
	// client's timeout (REST), not with FACADE_BUSY.
	_, err := f.client.GetAuth(authCtx(t, 10*time.Second), &authv1.GetAuthRequest{})
	st := status.Convert(err)
	if st.Code() != codes.Unavailable || errorInfo(st).GetReason() != apiv1.ErrorReason_FACADE_BUSY.String() || retryInfo(st) != time.Second {
		t.Errorf("a 4th call over gRPC: %v (reason %q, RetryInfo %v), want Unavailable, %s, 1s", err, errorInfo(st).GetReason(), retryInfo(st), apiv1.ErrorReason_FACADE_BUSY.String())
	}
	resp, body := f.rest(t, http.MethodGet, "/v1/auth", http.Header{"X-Auth-Token": {"tok-rest"}})
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" ||
		errorInfo(restStatus(t, body)).GetReason() != apiv1.ErrorReason_FACADE_BUSY.String() {
		t.Errorf("a 4th call over REST: %d, Retry-After %q, %s; want 503, 1, %s", resp.StatusCode, resp.Header.Get("Retry-After"), body, apiv1.ErrorReason_FACADE_BUSY.String())
	}
	if n := up.calls.Load(); n != 3 {
		t.Errorf("the upstream saw %d requests, want the 3 admitted", n)
	}
	if resp, _ := f.admin(t, "/readyz"); resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz at the bound: %d, want 200 (probes are not calls)", resp.StatusCode)
	}
	if got := metric(t, f, "opentact_facade_shed_total", `reason="in_flight"`); got != 2 {
		t.Errorf("shed_total{reason=in_flight} = %v, want 2", got)
	}
	if got := metric(t, f, "opentact_facade_calls_in_flight"); got != 3 {
		t.Errorf("calls_in_flight = %v, want 3", got)
	}

	release()
	for range 3 {
		if err := <-held; err != nil {
			t.Errorf("a held call: %v", err)
		}
	}
	if _, err := f.client.GetAuth(authCtx(t, 5*time.Second), &authv1.GetAuthRequest{}); err != nil {
		t.Errorf("after the held calls ended: %v", err)
	}
	waitFor(t, "calls in flight back to 0", func() bool { return metric(t, f, "opentact_facade_calls_in_flight") == 0 })
}

// TestRefusedBeforeAHandlerExists: a stream past the bound is refused in
// grpc-go's transport, before a handler goroutine exists for it: 400
// streams refused cost no goroutine, where 400 streams waiting for their
// request in a handler would hold 400.
func TestRefusedBeforeAHandlerExists(t *testing.T) {
	up := newRecorder(t, answer(200, okBody))
	f := startFacade(t, up.URL, func(o *server.Options) {
		o.MaxInFlight = 8
		o.RequestTimeout = time.Minute
	})
	c := dialH2(t, grpcHostPort(f))
	block := c.headers(hpack.HeaderField{Name: "x-auth-token", Value: "tok"})
	for range 8 { // admitted, and waiting for a request message that never comes
		if _, err := c.stream(block, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.flush(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "8 calls in flight", func() bool { return metric(t, f, "opentact_facade_calls_in_flight") == 8 })

	before := goroutines()
	const flood = 400
	for range flood {
		if _, err := c.stream(block, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.flush(); err != nil {
		t.Fatal(err)
	}
	ends := c.awaitEnds(flood, 10*time.Second)
	if d := goroutines() - before; d > 40 {
		t.Errorf("%d more goroutines after %d refused streams, want none per stream", d, flood)
	}
	for _, e := range ends[:5] {
		reason, retry := reasonOf(t, e.details)
		if e.status != "14" || reason != apiv1.ErrorReason_FACADE_BUSY.String() || retry != time.Second {
			t.Errorf("stream %d: grpc-status %q, reason %q, RetryInfo %v; want 14 (Unavailable), %s, 1s", e.stream, e.status, reason, retry, apiv1.ErrorReason_FACADE_BUSY.String())
		}
	}
	if n := up.calls.Load(); n != 0 {
		t.Errorf("the upstream saw %d requests, want none", n)
	}
}

// goroutines is runtime.NumGoroutine once it has settled.
func goroutines() int {
	prev := -1
	for range 50 {
		n := numGoroutine()
		if n == prev {
			return n
		}
		prev = n
		time.Sleep(20 * time.Millisecond)
	}
	return prev
}

// TestStreamWithoutItsRequestIsEnded: a stream whose request message does
// not come within RequestTimeout is ended, and gives its place back; so is
// a streaming call's (health Watch) first message.
func TestStreamWithoutItsRequestIsEnded(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, answer(200, okBody))
	f := startFacade(t, up.URL, func(o *server.Options) {
		o.MaxInFlight = 3
		o.RequestTimeout = 200 * time.Millisecond
	})
	c := dialH2(t, grpcHostPort(f))
	block := c.headers(hpack.HeaderField{Name: "x-auth-token", Value: "tok"})
	for range 2 {
		if _, err := c.stream(block, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	// A health Watch that never sends its request.
	if _, err := c.stream(c.headersFor("/grpc.health.v1.Health/Watch"), nil, false); err != nil {
		t.Fatal(err)
	}
	if err := c.flush(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for _, e := range c.awaitEnds(3, guard) {
		if e.status == "0" {
			t.Errorf("stream %d without a request message succeeded", e.stream)
		}
	}
	t.Logf("the three streams ended after %v", time.Since(start))
	if n := up.calls.Load(); n != 0 {
		t.Errorf("the upstream saw %d requests, want none", n)
	}
	waitFor(t, "calls in flight back to 0", func() bool { return metric(t, f, "opentact_facade_calls_in_flight") == 0 })
	if got := metric(t, f, "opentact_facade_shed_total", `reason="request_timeout"`); got != 3 {
		t.Errorf("shed_total{reason=request_timeout} = %v, want 3", got)
	}
	// The places are free again: a real call goes through.
	if _, err := f.client.GetAuth(authCtx(t, 5*time.Second), &authv1.GetAuthRequest{}); err != nil {
		t.Errorf("a call after the two ended: %v", err)
	}
}

// ---------------------------------------------------------------------------
// Overload

// capacityUpstream answers okBody taking `took` each (setTook changes it),
// at most `workers` at once: a real Opentact of bounded capacity, queueing
// the rest in order. It counts the requests it started work on and those
// it answered. hold makes the requests started after it wait on past
// `took` until release.
type capacityUpstream struct {
	*recorder
	started, answered atomic.Int64
	took              atomic.Int64 // a time.Duration

	mu   sync.Mutex
	held chan struct{} // nil unless held
}

func (u *capacityUpstream) setTook(d time.Duration) { u.took.Store(int64(d)) }

func (u *capacityUpstream) hold() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.held = make(chan struct{})
}

func (u *capacityUpstream) release() {
	u.mu.Lock()
	defer u.mu.Unlock()
	close(u.held)
	u.held = nil
}

func newCapacityUpstream(t testing.TB, workers int, took time.Duration) *capacityUpstream {
	sem := make(chan struct{}, workers)
	u := &capacityUpstream{}
	u.setTook(took)
	u.recorder = newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case sem <- struct{}{}:
		case <-r.Context().Done():
			return
		}
		defer func() { <-sem }()
		u.started.Add(1)
		u.mu.Lock()
		held := u.held
		u.mu.Unlock()
		timer := time.NewTimer(time.Duration(u.took.Load()))
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-r.Context().Done():
			return
		}
		if held != nil {
			select {
			case <-held:
			case <-r.Context().Done():
				return
			}
		}
		answer(200, okBody)(w, r)
		u.answered.Add(1)
	})
	return u
}

// overloadCall makes call n of an overload test through door ("grpc" or
// "rest") with deadline d, each with a token of its own so that no two
// share a request. A REST transport failure is an outcome without status.
func overloadCall(f *facade, rc *http.Client, door string, n int, d time.Duration) (outcome, error) {
	h := http.Header{"X-Auth-Token": {fmt.Sprintf("tok-overload-%s-%d", door, n)}}
	if door == "grpc" {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		return grpcCall(ctx, f, h), nil
	}
	h.Set("Grpc-Timeout", grpcTimeout(d))
	return restCall(context.Background(), rc, f, h)
}

// shedEarly reports whether st is a call the facade refused before
// sending anything, for a reason a client may retry on.
func shedEarly(st *status.Status) bool {
	switch errorInfo(st).GetReason() {
	case apiv1.ErrorReason_UPSTREAM_OVERLOADED.String(), apiv1.ErrorReason_DEADLINE_TOO_SHORT.String(), apiv1.ErrorReason_FACADE_BUSY.String():
		return true
	}
	return false
}

// TestOverloadShedsInsteadOfCollapsing: with every request slot to
// Opentact busy, a call that the line could not serve within its deadline
// is refused at once, with a reason to retry on, instead of waiting until
// it times out; the calls the line can serve in time wait and are served;
// no request goes beyond the slots, and none is sent for a call that then
// fails. The test holds Opentact's answers itself, so that what it counts
// does not depend on the machine's speed, only on the gate's estimate of
// Opentact's answer time being at least the warm-up request's time.
// BenchmarkOverload measures goodput and waste under a steady overload.
func TestOverloadShedsInsteadOfCollapsing(t *testing.T) {
	t.Parallel()
	const (
		slots    = 4
		warm     = time.Second      // the warm-up request's time, so the estimate's least
		deadline = 10 * time.Second // each overload call's
		calls    = 60
		// A call gets in line only if the estimated wait for a slot plus
		// the estimate fit in its time left: est*(place/slots+1) <= deadline.
		maxInLine = slots * int(deadline/warm-1)
		long      = time.Minute // the deadline of calls that must not be refused
	)
	for _, door := range []string{"grpc", "rest"} {
		t.Run(door, func(t *testing.T) {
			t.Parallel()
			up := newCapacityUpstream(t, slots, warm)
			f := startFacade(t, up.URL, func(o *server.Options) { o.UpstreamMaxInFlight = slots })
			rc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: calls + slots}, Timeout: 2 * long}
			defer rc.CloseIdleConnections()

			// The estimate of Opentact's answer time: at least warm.
			if o, err := overloadCall(f, rc, door, -1, long); err != nil || o.st.Code() != codes.OK {
				t.Fatalf("the warm-up call: %v %v", o.st, err)
			}

			// Opentact now answers at once, but only when released; the
			// slots fill up with calls that have time to wait.
			up.setTook(0)
			up.hold()
			type result struct {
				o   outcome
				err error
			}
			occupiers := make(chan result, slots)
			for i := range slots {
				go func() {
					o, err := overloadCall(f, rc, door, 1000+i, long)
					occupiers <- result{o, err}
				}()
			}
			waitFor(t, "every slot busy", func() bool { return up.started.Load() == 1+slots })

			results := make(chan result, calls)
			var ended atomic.Int64
			for i := range calls {
				go func() {
					o, err := overloadCall(f, rc, door, i, deadline)
					results <- result{o, err}
					ended.Add(1)
				}()
			}
			// Every call has been judged: refused, or waiting in line.
			var inLine int
			waitFor(t, "every call judged", func() bool {
				inLine = int(metric(t, f, "opentact_upstream_queue_length"))
				return int(ended.Load())+inLine == calls
			})
			refused := int(ended.Load())
			if inLine > maxInLine || refused < calls-maxInLine {
				t.Errorf("%d calls refused and %d in line, want at most %d in line: the estimate is at least %v", refused, inLine, maxInLine, warm)
			}
			if n := up.started.Load(); n != 1+slots {
				t.Errorf("Opentact started %d requests while its slots were busy, want %d: none beyond the slots", n, 1+slots)
			}
			for range refused {
				r := <-results
				if r.err != nil || !shedEarly(r.o.st) || r.o.st.Code() == codes.Unavailable && retryInfo(r.o.st) <= 0 {
					t.Errorf("a call refused while every slot was busy: %v %v (reason %q, RetryInfo %v), want refused early, with RetryInfo when Unavailable",
						r.o.st, r.err, errorInfo(r.o.st).GetReason(), retryInfo(r.o.st))
				}
			}

			// Opentact answers again: the occupiers and the line are served.
			up.release()
			var served, shed int
			collect := func(ch <-chan result, n int, mustSucceed bool) {
				want := "served"
				if !mustSucceed {
					want = "served or refused early"
				}
				for range n {
					var r result
					select {
					case r = <-ch:
					case <-time.After(2 * long):
						t.Fatal("calls still unanswered long after Opentact answered again")
					}
					switch {
					case r.err == nil && r.o.st.Code() == codes.OK:
						served++
					case r.err == nil && shedEarly(r.o.st) && !mustSucceed:
						shed++
					default:
						t.Errorf("a call ended with %v %v (reason %q), want it %s", r.o.st, r.err, errorInfo(r.o.st).GetReason(), want)
					}
				}
			}
			collect(occupiers, slots, true)
			collect(results, inLine, false)
			t.Logf("%d calls: %d refused at once, %d in line of which %d served and %d refused when their turn came", calls, refused, inLine, served-slots, shed)
			if inLine > 0 && served == slots {
				t.Errorf("none of the %d calls in line was served", inLine)
			}
			// Every request Opentact started was answered to a caller that
			// still wanted it.
			if sent, answered := up.started.Load(), up.answered.Load(); sent != answered || sent != int64(1+served) {
				t.Errorf("Opentact started %d requests and answered %d, for %d calls served: want one request per call served, no other", sent, answered, 1+served)
			}
			if got := metric(t, f, "opentact_facade_shed_total", `reason="upstream_queue"`); got == 0 {
				t.Error("shed_total{reason=upstream_queue} = 0, want the refusals counted")
			}
		})
	}
}

// BenchmarkOverload is the overload of TestOverloadShedsInsteadOfCollapsing
// at a steady rate: Opentact serves 4 requests at a time, 200ms each
// (20 calls/s), and calls arrive 30 times as fast, each with a 1s
// deadline, for 3s. It reports the calls answered per second as a share of
// Opentact's capacity (goodput-%), the requests sent whose answers no
// caller could use (wasted-%), the calls refused early (shed-%) and the
// median time of a call answered (p50-ms). `make bench` runs it; without
// the gate's judgement, goodput would be a third of the capacity and
// almost every request wasted.
func BenchmarkOverload(b *testing.B) {
	const (
		workers  = 4
		took     = 200 * time.Millisecond
		capacity = float64(workers) / 0.2 // calls/s
		overload = 30
		deadline = time.Second
		run      = 3 * time.Second
	)
	for _, door := range []string{"grpc", "rest"} {
		b.Run(door, func(b *testing.B) {
			var goodputs, wastes, sheds, p50s []float64
			for b.Loop() {
				up := newCapacityUpstream(b, workers, took)
				f, stop := startStoppableFacade(b, up.URL, func(o *server.Options) { o.UpstreamMaxInFlight = workers })
				rc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 5 * time.Second}
				var (
					wg                    sync.WaitGroup
					ok, shed, other, sent atomic.Int64
					mu                    sync.Mutex
					latencies             []time.Duration
					tick                  = time.NewTicker(time.Second / time.Duration(capacity*overload))
					stopAt                = time.After(run)
					start                 = time.Now()
				)
			loop:
				for n := 0; ; n++ {
					select {
					case <-stopAt:
						break loop
					case <-tick.C:
					}
					sent.Add(1)
					wg.Go(func() {
						o, err := overloadCall(f, rc, door, n, deadline)
						switch {
						case err == nil && o.st.Code() == codes.OK:
							ok.Add(1)
							mu.Lock()
							latencies = append(latencies, o.elapsed)
							mu.Unlock()
						case err == nil && shedEarly(o.st):
							shed.Add(1)
						default:
							other.Add(1)
						}
					})
				}
				tick.Stop()
				wg.Wait()
				elapsed := time.Since(start) // the last calls' answers included
				rc.CloseIdleConnections()
				if err := stop(); err != nil {
					b.Fatal(err)
				}
				requests := up.started.Load()
				goodputs = append(goodputs, 100*float64(ok.Load())/elapsed.Seconds()/capacity)
				if requests > 0 {
					wastes = append(wastes, 100*float64(requests-ok.Load())/float64(requests))
				}
				sheds = append(sheds, 100*float64(shed.Load())/float64(sent.Load()))
				slices.Sort(latencies)
				if len(latencies) > 0 {
					p50s = append(p50s, float64(latencies[len(latencies)/2])/float64(time.Millisecond))
				}
				if other.Load() > 0 {
					b.Logf("%d of %d calls ended otherwise than answered or refused early", other.Load(), sent.Load())
				}
			}
			b.ReportMetric(mean(goodputs), "goodput-%")
			b.ReportMetric(mean(wastes), "wasted-%")
			b.ReportMetric(mean(sheds), "shed-%")
			b.ReportMetric(mean(p50s), "p50-ms")
		})
	}
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	var sum float64
	for _, x := range v {
		sum += x
	}
	return sum / float64(len(v))
}

// TestNoRequestForACallThatCannotUseIt: with Opentact answering in about
// 800ms and a request under way, a call with 300ms left is refused at
// once (DEADLINE_TOO_SHORT), and a call whose caller goes while it waits
// for a slot never reaches Opentact.
func TestNoRequestForACallThatCannotUseIt(t *testing.T) {
	t.Parallel()
	up := newCapacityUpstream(t, 1, 800*time.Millisecond)
	f := startFacade(t, up.URL, func(o *server.Options) { o.UpstreamMaxInFlight = 1 })
	// Two calls, so the estimate has a sample.
	for range 2 {
		if _, err := f.client.GetAuth(authCtx(t, 5*time.Second), &authv1.GetAuthRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	// The call under way is held until the end, so that the checks below
	// do not race its answer on a slow machine.
	up.hold()
	busy := make(chan error, 1)
	go func() {
		_, err := f.client.GetAuth(authCtx(t, 10*time.Second), &authv1.GetAuthRequest{})
		busy <- err
	}()
	waitFor(t, "a request under way", func() bool { return up.started.Load() == 3 })

	start := time.Now()
	_, err := f.client.GetAuth(authCtx(t, 300*time.Millisecond), &authv1.GetAuthRequest{})
	st := status.Convert(err)
	if st.Code() != codes.DeadlineExceeded || errorInfo(st).GetReason() != apiv1.ErrorReason_DEADLINE_TOO_SHORT.String() {
		t.Errorf("a call with 300ms left: %v (reason %q), want DeadlineExceeded %s", err, errorInfo(st).GetReason(), apiv1.ErrorReason_DEADLINE_TOO_SHORT.String())
	}
	if d := time.Since(start); d > 80*time.Millisecond {
		t.Logf("the refusal took %v", d)
	}

	// A caller that goes while waiting in line.
	ctx, cancel := context.WithCancel(authCtx(t, 5*time.Second))
	gone := make(chan error, 1)
	go func() {
		_, err := f.client.GetAuth(ctx, &authv1.GetAuthRequest{})
		gone <- err
	}()
	waitFor(t, "a call in line", func() bool { return metric(t, f, "opentact_upstream_queue_length") == 1 })
	cancel()
	if err := <-gone; status.Code(err) != codes.Canceled {
		t.Errorf("the caller that went: %v, want Canceled", err)
	}
	// The client knows at once; the facade once the stream's reset
	// reaches it, which on a loaded machine may be after the release.
	waitFor(t, "the facade to see the caller go", func() bool {
		return metric(t, f, "opentact_facade_shed_total", `reason="caller_gone"`) == 1
	})
	up.release()
	if err := <-busy; err != nil {
		t.Errorf("the call under way: %v", err)
	}
	// The request slot is free, and no request was made for the two.
	if _, err := f.client.GetAuth(authCtx(t, 5*time.Second), &authv1.GetAuthRequest{}); err != nil {
		t.Errorf("a call afterwards: %v", err)
	}
	if n := up.started.Load(); n != 4 {
		t.Errorf("Opentact started %d requests, want 4: none for the call too short or the caller gone", n)
	}
	if got := metric(t, f, "opentact_facade_shed_total", `reason="caller_gone"`); got != 1 {
		t.Errorf("shed_total{reason=caller_gone} = %v, want 1", got)
	}
}

// TestOneDeadlinePerCall: the wait for a request slot and the request
// share the call's one deadline, over REST too; the REST client always
// gets a status, never a cut connection.
func TestOneDeadlinePerCall(t *testing.T) {
	t.Parallel()
	up, arrived, _ := holdingUpstream(t)
	f := startFacade(t, up.URL, func(o *server.Options) {
		o.UpstreamMaxInFlight = 1
		o.UpstreamTimeout = 600 * time.Millisecond // the bound of a call without a deadline
	})
	go func() { _, _ = f.client.GetAuth(authCtx(t, 10*time.Second), &authv1.GetAuthRequest{}) }()
	waitArrivals(t, arrived, 1)

	for _, tc := range []struct {
		name, grpcTimeout string
		bound             time.Duration
	}{
		{"a 400ms deadline", "400m", 400 * time.Millisecond},
		{"no deadline", "", 600 * time.Millisecond},
	} {
		h := http.Header{"X-Auth-Token": {"tok-" + tc.name}}
		if tc.grpcTimeout != "" {
			h.Set("Grpc-Timeout", tc.grpcTimeout)
		}
		o, err := restCall(context.Background(), f.http, f, h)
		if err != nil {
			t.Fatalf("%s: %v, want a status", tc.name, err)
		}
		if o.httpCode != http.StatusGatewayTimeout {
			t.Errorf("%s: HTTP %d %v, want 504", tc.name, o.httpCode, o.st)
		}
		// The slot never frees, and f.http gives up after 10s: a 504 is
		// the deadline's, and must not come before it.
		if o.elapsed < tc.bound {
			t.Errorf("%s: took %v, want its %v: the wait and the call share one deadline", tc.name, o.elapsed, tc.bound)
		}
	}
	if n := up.calls.Load(); n != 1 {
		t.Errorf("the upstream saw %d requests, want 1", n)
	}
}

// ---------------------------------------------------------------------------
// Abusive HTTP/2 peers, connections

// TestRapidResetEndsInGoAway: a client that opens and resets streams as
// fast as it can (HEADERS, DATA, RST_STREAM), with a slow Opentact, gets
// GOAWAY (ENHANCE_YOUR_CALM) soon; it started almost no upstream work,
// and the log lines about its streams are rate limited.
func TestRapidResetEndsInGoAway(t *testing.T) {
	t.Parallel()
	up := newCapacityUpstream(t, 1000, 2*time.Second)
	f := startFacade(t, up.URL)
	c := dialH2(t, grpcHostPort(f))
	block := c.headers(hpack.HeaderField{Name: "x-auth-token", Value: "tok-flood"})
	start := time.Now()

	const limit = 5000
	sent := 0
	var code *http2.ErrCode
flood:
	for sent < limit {
		for range 50 {
			if _, err := c.stream(block, emptyRequest, true); err != nil {
				break flood
			}
			sent++
		}
		if err := c.flush(); err != nil {
			break
		}
		select {
		case got := <-c.goAway:
			code = &got
			break flood
		default:
		}
	}
	if code == nil {
		select {
		case got := <-c.goAway:
			code = &got
		case <-time.After(guard):
		}
	}
	if code == nil || *code != http2.ErrCodeEnhanceYourCalm {
		t.Fatalf("after %d reset streams: GOAWAY %v, want ENHANCE_YOUR_CALM", sent, code)
	}
	select {
	case <-c.closed:
	case <-time.After(guard):
		t.Error("the connection was not closed after the GOAWAY")
	}
	t.Logf("GOAWAY after %d streams sent; Opentact started %d requests", sent, up.started.Load())
	if n := up.started.Load(); n > 10 {
		t.Errorf("Opentact started %d requests for streams reset at once, want almost none", n)
	}
	if got := metric(t, f, "opentact_facade_connections_cut_total", `reason="rapid_reset"`); got != 1 {
		t.Errorf("connections_cut_total{reason=rapid_reset} = %v, want 1", got)
	}
	waitFor(t, "the reset calls to end", func() bool { return metric(t, f, "opentact_facade_calls_in_flight") == 0 })
	if lines, most := len(f.logs.lines("finished call")), sampledLines(time.Since(start)); lines > most {
		t.Errorf("%d access lines for %d reset streams in %v, want them rate limited (at most %d)", lines, sent, time.Since(start), most)
	}
	// Others are still served.
	if _, err := f.client.GetAuth(authCtx(t, 5*time.Second), &authv1.GetAuthRequest{}); err != nil {
		t.Errorf("another client after the flood: %v", err)
	}
}

// sampledLines is the most log lines the facade's sampler lets through in
// d: a burst of 100, then 20 a second. A bound that grows with the time a
// flood took holds on a slow machine too.
func sampledLines(d time.Duration) int { return 100 + int(20*d.Seconds()) + 20 }

// TestFloodLogsAreRateLimited: with the rapid-reset judgement relaxed so
// that the connection is never cut, 2,000 reset streams and 400 refused
// ones write at most a burst of log lines, with a count of those dropped,
// and start almost no upstream work.
func TestFloodLogsAreRateLimited(t *testing.T) {
	t.Parallel()
	up := newCapacityUpstream(t, 1000, 2*time.Second)
	f := startFacade(t, up.URL, func(o *server.Options) {
		o.ResetPolicy = &netguard.ResetPolicy{MinStreams: 1 << 30}
		o.MaxInFlight = 50
	})
	c := dialH2(t, grpcHostPort(f))
	block := c.headers(hpack.HeaderField{Name: "x-auth-token", Value: "tok-flood"})
	start := time.Now()
	const resets, refused = 2000, 400
	for i := range resets {
		if _, err := c.stream(block, emptyRequest, true); err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			if err := c.flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	c.barrier()
	waitFor(t, "the reset calls to end", func() bool { return metric(t, f, "opentact_facade_calls_in_flight") == 0 })
	// Streams left waiting for a request hold every place; the rest are refused.
	for range 50 + refused {
		if _, err := c.stream(block, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.flush(); err != nil {
		t.Fatal(err)
	}
	c.barrier()

	lines := strings.Count(f.logs.String(), "\n")
	t.Logf("%d log lines for %d reset and %d refused streams; Opentact started %d requests", lines, resets, refused, up.started.Load())
	// Besides the sampled lines, a few of the start-up's.
	if most := sampledLines(time.Since(start)) + 20; lines > most {
		t.Errorf("%d log lines in %v, want them rate limited (a burst of 100, then 20 a second: at most %d)", lines, time.Since(start), most)
	}
	if !strings.Contains(f.logs.String(), `"suppressed":`) {
		t.Error("no line says how many were suppressed")
	}
	if n := up.started.Load(); n > resets/20 {
		t.Errorf("Opentact started %d requests for %d streams reset at once, want almost none", n, resets)
	}
}

// TestConnectionsBounded: past MaxConnections on a listener, a connection
// is closed as soon as it is accepted, and counted; once one closes, a
// new one is served.
func TestConnectionsBounded(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, answer(200, okBody))
	f := startFacade(t, up.URL, func(o *server.Options) { o.MaxConnections = 2 })
	for _, tc := range []struct{ listener, addr string }{{"grpc", grpcHostPort(f)}, {"rest", restHostPort(f)}} {
		open := make([]net.Conn, 0, 2)
		for len(open) < 2 {
			conn, err := net.Dial("tcp", tc.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			open = append(open, conn)
		}
		waitFor(t, tc.listener+": 2 connections open", func() bool {
			v, _ := shSample(shMetrics(t, f), "opentact_facade_connections_open", `listener="`+tc.listener+`"`)
			return v >= 2
		})
		extra, err := net.Dial("tcp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = extra.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := extra.Read(make([]byte, 1)); err == nil || errors.Is(err, errDeadline) {
			t.Errorf("%s: a third connection: read %v, want it closed at once", tc.listener, err)
		}
		extra.Close()
		for _, c := range open {
			c.Close()
		}
	}
	for _, l := range []string{"grpc", "rest"} {
		if got := metric(t, f, "opentact_facade_connections_refused_total", `listener="`+l+`"`, `reason="max_connections"`); got < 1 {
			t.Errorf("connections_refused_total{listener=%s,reason=max_connections} = %v, want at least 1", l, got)
		}
	}
	if _, err := f.client.GetAuth(authCtx(t, 5*time.Second), &authv1.GetAuthRequest{}); err != nil {
		t.Errorf("a call once the connections closed: %v", err)
	}
}

// TestIdleAndSilentConnectionsAreClosed: a gRPC connection without calls
// gets GOAWAY after IdleTimeout, a REST keep-alive connection is closed;
// a connection that never sends the HTTP/2 preface is cut after
// ReadHeaderTimeout, as REST cuts one that never sends its headers.
func TestIdleAndSilentConnectionsAreClosed(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, answer(200, okBody))
	f := startFacade(t, up.URL, func(o *server.Options) {
		o.IdleTimeout = 300 * time.Millisecond
		o.ReadHeaderTimeout = 300 * time.Millisecond
	})
	c := dialH2(t, grpcHostPort(f))
	select {
	case code := <-c.goAway:
		t.Logf("idle gRPC connection: GOAWAY %v", code)
	case <-time.After(guard):
		t.Errorf("an idle gRPC connection got no GOAWAY within %v; IdleTimeout is 300ms", guard)
	}

	silent, err := net.Dial("tcp", grpcHostPort(f))
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	start := time.Now()
	_ = silent.SetReadDeadline(time.Now().Add(guard))
	_, err = io.Copy(io.Discard, silent)
	if errors.Is(err, errDeadline) {
		t.Errorf("a gRPC connection without a preface was held over %v, want it cut after 300ms", guard)
	} else {
		t.Logf("a gRPC connection without a preface was cut after %v", time.Since(start).Round(time.Millisecond))
	}

	keep, err := net.Dial("tcp", restHostPort(f))
	if err != nil {
		t.Fatal(err)
	}
	defer keep.Close()
	if _, err := io.WriteString(keep, "GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(keep)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	_ = keep.SetReadDeadline(time.Now().Add(guard))
	if _, err := br.ReadByte(); errors.Is(err, errDeadline) {
		t.Errorf("an idle REST connection was held over %v, want it closed after 300ms", guard)
	}
}

// ---------------------------------------------------------------------------
// Answers: what they hold, how they are marked

// TestRESTAnswersAreNoStore: every REST answer, success or error, tells
// caches not to keep it and browsers not to sniff it.
func TestRESTAnswersAreNoStore(t *testing.T) {
	t.Parallel()
	f := startFacade(t, newRecorder(t, answer(200, okBody)).URL)
	for _, tc := range []struct {
		path   string
		header http.Header
		code   int
	}{
		{"/v1/auth", http.Header{"X-Auth-Token": {"tok"}}, http.StatusOK},
		{"/v1/auth", nil, http.StatusUnauthorized},
		{"/v1/nothing", nil, http.StatusNotFound},
	} {
		resp, _ := f.rest(t, http.MethodGet, tc.path, tc.header)
		if resp.StatusCode != tc.code {
			t.Errorf("GET %s: %d, want %d", tc.path, resp.StatusCode, tc.code)
		}
		if got := resp.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("GET %s (%d): Cache-Control %q, want no-store", tc.path, resp.StatusCode, got)
		}
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s (%d): X-Content-Type-Options %q, want nosniff", tc.path, resp.StatusCode, got)
		}
	}
}

// TestOthersSecretsAreScrubbed: an Opentact error message that quotes
// another user's password, Basic value or token reaches neither the caller
// nor the logs.
func TestOthersSecretsAreScrubbed(t *testing.T) {
	t.Parallel()
	const (
		basicValue = "YW5uYUBleGFtcGxlLmNvbTpTM2NyM3QtUGE1NQ=="
		apiToken   = "7VLyaDSQ8W48IETeNBfxbBqwgwzWLTvFojSnLgiXP5X8NSoE"
		password   = "hunter2-Quokka"
	)
	msg := fmt.Sprintf("user anna: Basic %s refused, token %s revoked, password=%s", basicValue, apiToken, password)
	up := newRecorder(t, answer(400, `{"success":false,"status":400,"message":"`+msg+`"}`))
	f := startFacade(t, up.URL)
	_, err := f.client.GetAuth(authCtx(t, 5*time.Second), &authv1.GetAuthRequest{})
	resp, body := f.rest(t, http.MethodGet, "/v1/auth", http.Header{"X-Auth-Token": {"tok"}})
	if status.Code(err) != codes.InvalidArgument || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("gRPC %v, REST %d; want InvalidArgument, 400", err, resp.StatusCode)
	}
	for _, secret := range []string{basicValue, apiToken, password} {
		for where, text := range map[string]string{"the gRPC message": status.Convert(err).Message(), "the REST body": string(body), "the logs": f.logs.String()} {
			if strings.Contains(text, secret) {
				t.Errorf("%s holds %q", where, secret)
			}
		}
	}
	if !strings.Contains(status.Convert(err).Message(), "revoked") {
		t.Errorf("the message %q lost Opentact's words", status.Convert(err).Message())
	}
}

// bigAnswer is an answer of about n bytes, unique to tag.
func bigAnswer(tag string, n int) string {
	return `{"success":true,"payload":{"uuid":"` + tag + `","email":"` + tag + `@example.com","first_name":"` + strings.Repeat("x", n) + `"}}`
}

// TestAnswersAreNotKeptAfterTheirCall: 40 REST calls of distinct users,
// each answered with about 900 KB, cache off: once they are over, the
// facade keeps none of it. The facade runs in this process, so the heap
// is its heap; the test is not parallel.
func TestAnswersAreNotKeptAfterTheirCall(t *testing.T) {
	up := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		answer(200, bigAnswer(r.Header.Get("X-Auth-Token"), 900<<10))(w, r)
	})
	f := startFacade(t, up.URL)
	call := func(i int) {
		resp, body := f.rest(t, http.MethodGet, "/v1/auth", http.Header{"X-Auth-Token": {fmt.Sprintf("user-%d", i)}})
		if resp.StatusCode != http.StatusOK || len(body) < 900<<10 {
			t.Fatalf("call %d: %d, %d bytes", i, resp.StatusCode, len(body))
		}
	}
	call(-1) // warm up: connections, pools
	before := heapAfterGC()
	for i := range 40 {
		call(i)
	}
	grown := heapAfterGC() - before
	t.Logf("heap after 40 answers of 900 KB: %+d KiB", grown>>10)
	if grown > 8<<20 {
		t.Errorf("the heap grew by %d MiB after the calls ended, want the answers gone (under 8 MiB)", grown>>20)
	}
}

// TestCacheIsBoundedInBytes: with the cache on, answers of 900 KB stay
// within --cache-max-bytes, the least recently used going first.
func TestCacheIsBoundedInBytes(t *testing.T) {
	up := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		answer(200, bigAnswer(r.Header.Get("X-Auth-Token"), 900<<10))(w, r)
	})
	f := startFacade(t, up.URL, func(o *server.Options) {
		o.CacheTTL = time.Minute
		o.CacheMaxBytes = 4 << 20
	})
	before := heapAfterGC()
	for i := range 20 {
		ctx := metadataCtx(t, "x-auth-token", fmt.Sprintf("user-%d", i))
		if _, err := f.client.GetAuth(ctx, &authv1.GetAuthRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	grown := heapAfterGC() - before
	entries := metric(t, f, "opentact_facade_cache_entries")
	size := metric(t, f, "opentact_facade_cache_bytes")
	t.Logf("20 answers of 900 KB into a 4 MiB cache: %v entries, %v bytes, heap %+d KiB", entries, size, grown>>10)
	if size > 4<<20 || entries > 4 || entries < 1 {
		t.Errorf("the cache holds %v entries, %v bytes; want at most 4 MiB", entries, size)
	}
	if grown > 12<<20 {
		t.Errorf("the heap grew by %d MiB, want the cache's 4 MiB and little more", grown>>20)
	}
	// The most recent answer is the one kept.
	if _, err := f.client.GetAuth(metadataCtx(t, "x-auth-token", "user-19"), &authv1.GetAuthRequest{}); err != nil {
		t.Fatal(err)
	}
	if n := up.calls.Load(); n != 20 {
		t.Errorf("the upstream saw %d requests, want 20: the last answer is cached", n)
	}
}

// ---------------------------------------------------------------------------
// Helpers

var errDeadline = os.ErrDeadlineExceeded

func numGoroutine() int { return runtime.NumGoroutine() }

// heapAfterGC is the live heap once the garbage collector has run.
func heapAfterGC() int64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// metadataCtx is a 5s context carrying the metadata kv.
func metadataCtx(t *testing.T, kv ...string) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), kv...), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// ---------------------------------------------------------------------------
// The memory the bounds allow

// The worst case docs/reliability.md states, per call in flight and per open
// connection (TestWorstCaseMemory holds the facade to them), per request
// to Opentact (a pooled connection and answer headers at their 64 KiB
// cap), and for the runtime, the binary's data and an idle facade.
const (
	worstPerCall            = 64 << 10
	worstPerConn            = 64 << 10
	worstPerUpstreamRequest = 128 << 10
	worstBaseline           = 32 << 20 // idle RSS is about 14 MiB
)

// TestDeploymentFitsTheWorstCase: the shipped Deployment's GOMEMLIMIT
// holds the worst case the default bounds allow, the cache on, and its
// memory limit leaves room above GOMEMLIMIT for what the Go runtime does
// not count (the binary's text, the kernel's buffers).
func TestDeploymentFitsTheWorstCase(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "kubernetes", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	mib := func(re string) int64 {
		m := regexp.MustCompile(re).FindSubmatch(b)
		if m == nil {
			t.Fatalf("deployment.yaml: no match for %s", re)
		}
		n, _ := strconv.ParseInt(string(m[1]), 10, 64)
		return n << 20
	}
	goMemLimit := mib(`name: GOMEMLIMIT\s+value: "?(\d+)MiB`)
	limit := mib(`limits:\s+cpu: \S+\s+memory: (\d+)Mi`)
	parts := []struct {
		what  string
		bytes int64
	}{
		{"calls in flight", server.DefaultMaxInFlight * worstPerCall},
		{"connections, both listeners", 2 * server.DefaultMaxConnections * worstPerConn},
		{"requests to Opentact", upstream.DefaultMaxInFlight * worstPerUpstreamRequest},
		{"answers held: read, decoded, encoded", 3 * server.DefaultMaxAnswerBytes},
		{"the cache", engine.DefaultCacheMaxBytes},
		{"the request_id store", engine.DefaultIdempotencyMaxBytes},
		{"runtime and idle facade", worstBaseline},
	}
	var worst int64
	for _, p := range parts {
		t.Logf("%-32s %4d MiB", p.what, p.bytes>>20)
		worst += p.bytes
	}
	t.Logf("%-32s %4d MiB; GOMEMLIMIT %d MiB, limit %d MiB", "worst case", worst>>20, goMemLimit>>20, limit>>20)
	if worst > goMemLimit {
		t.Errorf("the worst case, %d MiB, is over GOMEMLIMIT, %d MiB", worst>>20, goMemLimit>>20)
	}
	if goMemLimit+64<<20 > limit {
		t.Errorf("GOMEMLIMIT %d MiB leaves under 64 MiB below the container's %d MiB", goMemLimit>>20, limit>>20)
	}
}

// TestWorstCaseMemory: calls in flight made as large as the caps allow
// (16 KiB of headers, all distinct so that HPACK shares nothing, and a
// 16 KiB request) while Opentact holds them, and idle gRPC connections,
// each cost no more than docs/reliability.md states. (Data past a unary request is
// no way to hold more: grpc-go reads it at once and fails the call.) The facade runs in this process, so the
// heap and stacks measured are its own; the test is not parallel.
func TestWorstCaseMemory(t *testing.T) {
	up, arrived, release := holdingUpstream(t)
	const calls, conns = 300, 200
	// Most calls wait in line for one of the 8 request slots, as they would
	// behind the 128 of a slow Opentact: each holds what it was sent.
	f := startFacade(t, up.URL, func(o *server.Options) { o.MaxInFlight, o.UpstreamMaxInFlight = calls, 8 })
	before := memInUse()

	c := dialH2(t, grpcHostPort(f))
	msg := make([]byte, 16<<10-64)
	msg = protowire.AppendBytes(protowire.AppendTag(nil, 1000, protowire.BytesType), msg)
	frame := append([]byte{0, byte(len(msg) >> 24), byte(len(msg) >> 16), byte(len(msg) >> 8), byte(len(msg))}, msg...)
	for i := range calls {
		extra := []hpack.HeaderField{{Name: "x-auth-token", Value: fmt.Sprintf("tok-%d", i)}}
		for j := range 7 {
			extra = append(extra, hpack.HeaderField{Name: fmt.Sprintf("x-pad-%d", j), Value: fmt.Sprintf("%d-%d-%s", i, j, strings.Repeat("p", 2<<10-16)), Sensitive: true})
		}
		if _, err := c.stream(c.headers(extra...), frame, false); err != nil {
			t.Fatal(err)
		}
		if err := c.flush(); err != nil {
			t.Fatal(err)
		}
	}
	waitArrivals(t, arrived, 8)
	waitFor(t, "every call in flight", func() bool {
		text := shMetrics(t, f)
		inFlight, _ := shSample(text, "opentact_facade_calls_in_flight")
		waiting, _ := shSample(text, "opentact_upstream_queue_length")
		return inFlight == calls && waiting == calls-8
	})
	perCall := (memInUse() - before) / calls

	// Connections as cheap for the client as can be (its side is in this
	// process too): the preface, an empty SETTINGS, an ack, then nothing.
	hello := []byte(http2.ClientPreface)
	hello = append(hello, 0, 0, 0, byte(http2.FrameSettings), 0, 0, 0, 0, 0)
	hello = append(hello, 0, 0, 0, byte(http2.FrameSettings), byte(http2.FlagSettingsAck), 0, 0, 0, 0)
	open := func() {
		conn, err := net.Dial("tcp", grpcHostPort(f))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		if _, err := conn.Write(hello); err != nil {
			t.Fatal(err)
		}
		// The server's SETTINGS come once its transport for the
		// connection is built, buffers and all: only then is the
		// connection's whole cost held.
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		fr, err := http2.NewFramer(io.Discard, conn).ReadFrame()
		if err != nil {
			t.Fatalf("no SETTINGS from the server: %v", err)
		}
		if _, ok := fr.(*http2.SettingsFrame); !ok {
			t.Fatalf("the server's first frame is %v, want SETTINGS", fr.Header().Type)
		}
	}
	// Two batches, the lower cost taken: the runtime's own housekeeping
	// (a few MiB that the collector keeps or returns at its pace) can land
	// in one batch's difference, and is no connection's cost.
	perConn := int64(math.MaxInt64)
	for range 2 {
		mid := memInUse()
		for range conns / 2 {
			open()
		}
		perConn = min(perConn, (memInUse()-mid)/(conns/2))
	}
	t.Logf("per call in flight, at the caps: %d KiB (stated: %d KiB); per idle gRPC connection: %d KiB (stated: %d KiB)",
		perCall>>10, worstPerCall>>10, perConn>>10, worstPerConn>>10)
	if perCall > worstPerCall {
		t.Errorf("a call at the caps costs %d KiB, over the %d KiB docs/reliability.md states", perCall>>10, worstPerCall>>10)
	}
	if perConn > worstPerConn {
		t.Errorf("an idle gRPC connection costs %d KiB, over the %d KiB docs/reliability.md states", perConn>>10, worstPerConn>>10)
	}
	release()
}

// memInUse is the heap and the goroutine stacks in use, after a GC.
func memInUse() int64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc + ms.StackInuse)
}

// TestOneClientConnCarriesHundredsOfCalls: the bounds leave a backend's
// single ClientConn room for several hundred concurrent calls.
func TestOneClientConnCarriesHundredsOfCalls(t *testing.T) {
	t.Parallel()
	up, arrived, release := holdingUpstream(t)
	const calls = 500
	// Calls without a deadline of their own get the facade's default; a
	// loaded machine may take longer than that to start 500 requests.
	f := startFacade(t, up.URL, func(o *server.Options) {
		o.UpstreamMaxInFlight = calls
		o.UpstreamTimeout, o.MaxCallTimeout = 2*guard, 2*guard
	})
	errs := make(chan error, calls)
	for i := range calls {
		ctx := metadataCtx(t, "x-auth-token", fmt.Sprintf("tok-%d", i))
		go func() {
			_, err := f.client.GetAuth(ctx, &authv1.GetAuthRequest{})
			errs <- err
		}()
	}
	waitArrivals(t, arrived, calls)
	release()
	for range calls {
		if err := <-errs; err != nil {
			t.Errorf("a call: %v", err)
		}
	}
}
