package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	eventsv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/events/v1"
)

// The events targets.
const (
	targetDeliveries     = 50_000
	targetEventsP99      = 50 * time.Millisecond
	targetBytesPerStream = 32 << 10
	eventsRampSteps      = 4 // the target rate, then twice, 4 and 8 times it
)

// hist counts latencies (ns) in log-linear buckets, histSub per power of
// two (within 1/histSub), without allocating; safe for concurrent use.
type hist struct{ b [histBuckets]atomic.Uint64 }

type histSnap [histBuckets]uint64

const (
	histSub     = 16
	histBuckets = 64 * histSub
)

func bucketOf(ns int64) int {
	if ns < histSub {
		return int(max(ns, 0))
	}
	e := bits.Len64(uint64(ns)) - 5 // ns>>e is in [16, 32)
	return (e+1)*histSub + int(ns>>e) - histSub
}

// bucketMid is the middle of bucket i's range, in ns.
func bucketMid(i int) int64 {
	if i < histSub {
		return int64(i)
	}
	e := i/histSub - 1
	lo := int64(i%histSub+histSub) << e
	return lo + (int64(1)<<e)/2
}

func (h *hist) record(ns int64) { h.b[bucketOf(ns)].Add(1) }

func (h *hist) snap() (s histSnap) {
	for i := range h.b {
		s[i] = h.b[i].Load()
	}
	return s
}

// sub is what was counted between before and s.
func (s histSnap) sub(before histSnap) (d histSnap) {
	for i := range s {
		d[i] = s[i] - before[i]
	}
	return d
}

func (s histSnap) total() (n uint64) {
	for _, c := range s {
		n += c
	}
	return n
}

// percentile is the nearest-rank percentile, as its bucket's middle.
func (s histSnap) percentile(p float64) time.Duration {
	n := s.total()
	if n == 0 {
		return 0
	}
	rank := max(1, uint64(float64(n)*p+0.999999))
	var seen uint64
	for i, c := range s {
		if seen += c; seen >= rank {
			return time.Duration(bucketMid(i))
		}
	}
	return 0
}

// eventFrame appends an Opentact sms event frame to b, sent at sent
// (UnixNano, in the event's message), the seq'th.
func eventFrame(b []byte, sent, seq int64) []byte {
	b = append(b, `{"timestamp":"2024-02-19T16:06:00Z","message":"`...)
	b = strconv.AppendInt(b, sent, 10)
	b = append(b, `","type":"sms","payload":{"type":"smso","uuid":"s`...)
	b = strconv.AppendInt(b, seq, 10)
	return append(b, `","from":"18382050008","to":"14155550100","message":"hello","state":"success"}}`...)
}

// eventsUpstream is a scripted Opentact for one user: GET /rest/auth and
// the events WebSocket at /, which checks the auth frame and then sends
// frames at the rate set with setRate.
type eventsUpstream struct {
	srv         *http.Server
	addr        string
	basic       string // the user's Authorization
	user, token string
	open        chan struct{} // closed once a socket is authenticated
	openOnce    sync.Once
	rate        atomic.Int64 // frames per second; 0 pauses
	sent        atomic.Int64
	sockets     atomic.Int64 // authenticated, in all
	done        chan struct{}
}

func startEventsUpstream() (*eventsUpstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	enc := base64.RawURLEncoding.EncodeToString
	claims := fmt.Sprintf(`{"uuid":"e0000000-0000-4000-8000-000000000001","exp":%d}`, time.Now().Add(24*time.Hour).Unix())
	up := &eventsUpstream{
		addr:  ln.Addr().String(),
		basic: "Basic " + base64.StdEncoding.EncodeToString([]byte("events@bench.example:pw")),
		user:  "e0000000-0000-4000-8000-000000000001",
		token: enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc([]byte(claims)) + ".c2ln",
		open:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	up.srv = &http.Server{Handler: http.HandlerFunc(up.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = up.srv.Serve(ln) }()
	return up, nil
}

func (up *eventsUpstream) close() {
	close(up.done)
	_ = up.srv.Close()
}

func (up *eventsUpstream) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/rest/auth" {
		if r.Header.Get("Authorization") != up.basic {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"success":false,"message":"Unauthorized"}`))
			return
		}
		fmt.Fprintf(w, `{"success":true,"payload":{"uuid":%q,"email":"events@bench.example","token":%q,"account":{"uuid":"acc00000-0000-4000-8000-00000000000e"}}}`, up.user, up.token)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := r.Context()
	_, b, err := c.Read(ctx)
	if err != nil {
		return
	}
	var frame struct{ Type, Payload string }
	if json.Unmarshal(b, &frame) != nil || frame.Type != "auth" || frame.Payload != up.token {
		_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"auth","success":false,"message":"Unauthorized"}`))
		c.Close(websocket.StatusPolicyViolation, "unauthorized")
		return
	}
	ans := fmt.Sprintf(`{"uuid":"f0000000-0000-4000-8000-000000000000","created_on":"2024-02-19T16:06:00Z","type":"auth","message":"WSS connection - success auth","payload":{"uuid":"c","ip":"127.0.0.1","user":{"uuid":%q}},"account":{},"delivery_report":[]}`, up.user)
	if err := c.Write(ctx, websocket.MessageText, []byte(ans)); err != nil {
		return
	}
	up.sockets.Add(1)
	up.openOnce.Do(func() { close(up.open) })
	ctx = c.CloseRead(ctx) // answers the facade's pings
	up.pace(ctx, c)
}

// pace writes frames at the rate set, each stamped with its send time,
// until ctx ends or the upstream closes.
func (up *eventsUpstream) pace(ctx context.Context, c *websocket.Conn) {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	var (
		buf      []byte
		rate     int64
		from     time.Time
		sentHere int64 // since from, at rate
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-up.done:
			return
		case <-t.C:
		}
		if r := up.rate.Load(); r != rate {
			rate, from, sentHere = r, time.Now(), 0
		}
		if rate == 0 {
			continue
		}
		due := int64(time.Since(from).Seconds()*float64(rate)) - sentHere
		for range due {
			seq := up.sent.Add(1)
			buf = eventFrame(buf[:0], time.Now().UnixNano(), seq)
			if err := c.Write(ctx, websocket.MessageText, buf); err != nil {
				return
			}
			sentHere++
		}
	}
}

// eventsStep is one rate of the events phase.
type eventsStep struct {
	rate              int64 // offered, frames per second from the upstream
	sent              int64 // frames sent in the window
	deliveries        int64 // events received by the streams in the window
	window            time.Duration
	p50, p99, maxLat  time.Duration
	ended, endedOther int64 // streams ended in the step: RESOURCE_EXHAUSTED, anything else
	cpuFacade, cpuGen float64
	cpuOther          float64
	firstErr          string
	profiled          bool
	noStamp           int64 // events without a send time (gap events)
}

func (s *eventsStep) perSecond() float64 { return float64(s.deliveries) / s.window.Seconds() }

// usPerDelivery is the facade's CPU per delivery, in µs.
func (s *eventsStep) usPerDelivery() float64 {
	if s.deliveries == 0 {
		return 0
	}
	return s.cpuFacade * 1e6 / float64(s.deliveries)
}

// eventsReport is the events phase.
type eventsReport struct {
	streams, conns       int
	baseStreams          int // open at the baseline (one per conn)
	rssBase, rssOpen     int64
	heapBase, heapOpen   int64
	stackBase, stackOpen int64
	steps                []*eventsStep
	top                  string // go tool pprof -top at the target rate
	upstreamSockets      int64
	idleRSS              int64
	facadeCPUIdleCores   float64
	facadeGoroutines     float64
}

func perStream(open, base int64, n int) float64 {
	if n <= 0 || open <= 0 || base <= 0 {
		return 0
	}
	return float64(open-base) / float64(n)
}

func (e *eventsReport) rssPerStream() float64 {
	return perStream(e.rssOpen, e.rssBase, e.streams-e.baseStreams)
}
func (e *eventsReport) heapPerStream() float64 {
	return perStream(e.heapOpen, e.heapBase, e.streams-e.baseStreams)
}
func (e *eventsReport) stackPerStream() float64 {
	return perStream(e.stackOpen, e.stackBase, e.streams-e.baseStreams)
}

// sustained is the step with the most deliveries per second that ended
// no stream and kept p99 within the target; nil if none did.
func (e *eventsReport) sustained() *eventsStep {
	var best *eventsStep
	for _, s := range e.steps {
		if s.profiled || s.ended+s.endedOther > 0 || s.p99 > targetEventsP99 {
			continue
		}
		if best == nil || s.perSecond() > best.perSecond() {
			best = s
		}
	}
	return best
}

// eventsRun is the streams' side: their histogram and counts.
type eventsRun struct {
	h          hist
	noStamp    atomic.Int64
	ended      atomic.Int64 // RESOURCE_EXHAUSTED
	endedOther atomic.Int64
	firstErr   atomic.Pointer[string]
	wg         sync.WaitGroup
}

// stream opens one stream and reads it until it ends; opened gets the
// error of opening it (nil once its headers came: it is subscribed).
func (er *eventsRun) stream(ctx context.Context, client eventsv1.EventServiceClient, opened chan<- error) {
	defer er.wg.Done()
	s, err := client.StreamEvents(ctx, &eventsv1.StreamEventsRequest{})
	if err == nil {
		_, err = s.Header()
	}
	opened <- err
	if err != nil {
		return
	}
	ev := new(eventsv1.Event)
	for {
		if err := s.RecvMsg(ev); err != nil {
			if ctx.Err() != nil {
				return
			}
			if status.Code(err) == codes.ResourceExhausted {
				er.ended.Add(1)
			} else {
				er.endedOther.Add(1)
			}
			msg := err.Error()
			er.firstErr.CompareAndSwap(nil, &msg)
			return
		}
		sent, perr := strconv.ParseInt(ev.GetMessage(), 10, 64)
		if perr != nil {
			er.noStamp.Add(1)
			continue
		}
		er.h.record(time.Now().UnixNano() - sent)
	}
}

// forceGC has the facade collect its garbage (the profiler's heap
// endpoint with gc=1), then lets it settle.
func forceGC(debugAddr string) {
	if resp, err := probeClient.Get("http://" + debugAddr + "/debug/pprof/heap?gc=1"); err == nil {
		resp.Body.Close()
	}
	time.Sleep(500 * time.Millisecond)
}

// runEvents is the events phase: a facade with one upstream socket
// fanned out to o.eventStreams streams of one user.
func runEvents(ctx context.Context, o options, procs *registry, profileDir string) (*eventsReport, error) {
	up, err := startEventsUpstream()
	if err != nil {
		return nil, err
	}
	defer up.close()
	debugAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	fac, err := startFacade(ctx, procs, o.facade, "http://"+up.addr, "--events-url", "ws://"+up.addr+"/", "--debug-addr", debugAddr)
	if err != nil {
		return nil, err
	}
	defer procs.stop(fac.proc)
	e := &eventsReport{streams: o.eventStreams, conns: min(o.eventConns, o.eventStreams)}
	e.idleRSS = fac.rss()

	conns := make([]*grpc.ClientConn, e.conns)
	defer func() {
		for _, cc := range conns {
			if cc != nil {
				cc.Close()
			}
		}
	}()
	clients := make([]eventsv1.EventServiceClient, e.conns)
	for i := range conns {
		if conns[i], err = grpc.NewClient(fac.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
			return nil, err
		}
		clients[i] = eventsv1.NewEventServiceClient(conns[i])
	}
	sctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(ctx, "authorization", up.basic))
	er := &eventsRun{}
	defer func() { cancel(); er.wg.Wait() }()
	open := func(from, to int) error {
		opened := make(chan error, to-from)
		for i := from; i < to; i++ {
			er.wg.Add(1)
			go er.stream(sctx, clients[i%e.conns], opened)
		}
		for range to - from {
			if err := <-opened; err != nil {
				return fmt.Errorf("opening an event stream: %w", err)
			}
		}
		return nil
	}
	// One stream per conn first: the conns, the socket and the code paths
	// are then in place, and the baseline is taken.
	if err := open(0, e.conns); err != nil {
		return nil, err
	}
	select {
	case <-up.open:
	case <-time.After(15 * time.Second):
		return nil, errors.New("the facade opened no events socket within 15s")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	e.baseStreams = e.conns
	readMem := func() (rss, heap, stack int64) {
		forceGC(debugAddr)
		m := fac.metrics()
		return fac.rss(), int64(metricValue(m, "go_memstats_heap_inuse_bytes")), int64(metricValue(m, "go_memstats_stack_inuse_bytes"))
	}
	e.rssBase, e.heapBase, e.stackBase = readMem()
	if err := open(e.conns, e.streams); err != nil {
		return nil, err
	}
	e.rssOpen, e.heapOpen, e.stackOpen = readMem()
	c0, t0 := cpuSeconds(fac.pid()), time.Now()
	time.Sleep(time.Second)
	e.facadeCPUIdleCores = (cpuSeconds(fac.pid()) - c0) / time.Since(t0).Seconds()
	m := fac.metrics()
	e.facadeGoroutines = metricValue(m, "go_goroutines")
	fmt.Printf("\nevents: %d streams of one user over %d conns; facade RSS %s → %s (%.1f KiB per stream), heap %s → %s (%.1f KiB), stacks %s → %s (%.1f KiB); %.0f goroutines; idle CPU %.3f cores\n",
		e.streams, e.conns, mib(e.rssBase), mib(e.rssOpen), e.rssPerStream()/1024, mib(e.heapBase), mib(e.heapOpen), e.heapPerStream()/1024,
		mib(e.stackBase), mib(e.stackOpen), e.stackPerStream()/1024, e.facadeGoroutines, e.facadeCPUIdleCores)
	if v := metricValue(m, "opentact_facade_event_streams"); v != float64(e.streams) {
		return nil, fmt.Errorf("the facade counts %.0f event streams, not %d", v, e.streams)
	}

	// Deliveries wait in the streams' buffers and the sockets: between
	// steps, wait until no more arrive.
	quiesce := func() {
		up.rate.Store(0)
		last := er.h.snap().total()
		for range 50 {
			time.Sleep(100 * time.Millisecond)
			now := er.h.snap().total()
			if now == last {
				return
			}
			last = now
		}
	}
	step := func(rate int64, profileFile string) (*eventsStep, error) {
		s := &eventsStep{rate: rate, window: o.duration}
		ended0, other0 := er.ended.Load(), er.endedOther.Load()
		up.rate.Store(rate)
		select {
		case <-time.After(max(o.warmup, 500*time.Millisecond)):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		got := make(chan error, 1)
		if profileFile != "" {
			s.profiled = true
			go func() {
				secs := max(1, int(o.duration.Round(time.Second)/time.Second))
				got <- fetchProfile(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", debugAddr, secs), profileFile)
			}()
		}
		h0, sent0, noStamp0 := er.h.snap(), up.sent.Load(), er.noStamp.Load()
		fc0, gc0, busy0 := cpuSeconds(fac.pid()), selfCPUSeconds(), machineBusySeconds()
		t0 := time.Now()
		select {
		case <-time.After(o.duration):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		d := er.h.snap().sub(h0)
		s.sent = up.sent.Load() - sent0
		s.cpuFacade, s.cpuGen = cpuSeconds(fac.pid())-fc0, selfCPUSeconds()-gc0
		s.cpuOther = max(0, machineBusySeconds()-busy0-s.cpuFacade-s.cpuGen)
		s.window = time.Since(t0)
		s.deliveries = int64(d.total())
		s.noStamp = er.noStamp.Load() - noStamp0
		s.p50, s.p99, s.maxLat = d.percentile(0.5), d.percentile(0.99), d.percentile(1)
		if profileFile != "" {
			if err := <-got; err != nil {
				return nil, fmt.Errorf("profiling the events phase: %w", err)
			}
		}
		quiesce()
		s.ended, s.endedOther = er.ended.Load()-ended0, er.endedOther.Load()-other0
		if p := er.firstErr.Load(); p != nil {
			s.firstErr = *p
		}
		return s, nil
	}

	fmt.Printf("%8s %8s %12s %9s %9s %9s %6s %14s %13s\n", "events/s", "sent/s", "deliveries/s", "p50 ms", "p99 ms", "max ms", "ended", "facade µs/del", "cores fac/gen/oth")
	rate := int64((targetDeliveries + e.streams - 1) / e.streams)
	if o.eventRate > 0 {
		rate = int64(o.eventRate)
	}
	for i := range eventsRampSteps {
		s, err := step(rate<<i, "")
		if err != nil {
			return nil, err
		}
		e.steps = append(e.steps, s)
		printEventsStep(s)
		if s.noStamp > 0 {
			fmt.Printf("  %d events without a send time (gaps)\n", s.noStamp)
		}
		if s.ended+s.endedOther > 0 {
			fmt.Printf("  streams ended: %s\n", s.firstErr)
			break
		}
		// The profile at the target rate, while every stream is open.
		if i == 0 && o.profile {
			if err := e.profileStep(ctx, o, profileDir, func(file string) (*eventsStep, error) { return step(rate, file) }); err != nil {
				return nil, err
			}
		}
		if s.perSecond() < 0.9*float64(s.rate*int64(e.streams)) {
			break // past what the streams take
		}
	}
	e.upstreamSockets = up.sockets.Load()
	return e, nil
}

// profileStep runs step once more with the facade's CPU profile taken
// over its window, and keeps pprof -top.
func (e *eventsReport) profileStep(ctx context.Context, o options, dir string, step func(file string) (*eventsStep, error)) error {
	keep := dir != ""
	if !keep {
		dir = os.TempDir()
	}
	file := filepath.Join(dir, "cpu-events.pprof")
	s, err := step(file)
	if err != nil {
		return err
	}
	e.steps = append(e.steps, s)
	fmt.Print("profiled: ")
	printEventsStep(s)
	top, err := pprofOutput(ctx, o.goCmd, "-top", "-nodecount=30", o.facade, file)
	if err != nil {
		return err
	}
	if i := strings.Index(top, "      flat"); i >= 0 {
		top = top[i:]
	}
	e.top = top
	if !keep {
		_ = os.Remove(file)
	}
	return nil
}

func printEventsStep(s *eventsStep) {
	w := s.window.Seconds()
	fmt.Printf("%8d %8.0f %12.0f %9s %9s %9s %6d %14.1f %5.2f/%.2f/%.2f\n", s.rate, float64(s.sent)/w, s.perSecond(),
		ms(s.p50), ms(s.p99), ms(s.maxLat), s.ended+s.endedOther, s.usPerDelivery(), s.cpuFacade/w, s.cpuGen/w, s.cpuOther/w)
}

// kib formats bytes per stream in KiB.
func kib(b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f KiB", b/1024)
}

// eventsRows is the events table and the targets, in Markdown.
func (e *eventsReport) eventsRows(w io.Writer) {
	fmt.Fprintln(w, "| streams | upstream events/s (offered / sent) | deliveries/s | p50 ms | p99 ms | max ms | ended streams | RSS per stream | heap per stream | stack per stream | facade CPU µs per delivery | CPU cores facade / bench / others |")
	fmt.Fprintln(w, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
	for _, s := range e.steps {
		wnd := s.window.Seconds()
		rate := fmt.Sprint(s.rate)
		if s.profiled {
			rate += " (profiled)"
		}
		noisy := ""
		if s.cpuOther/wnd > noisyCores {
			noisy = " ⚠"
		}
		fmt.Fprintf(w, "| %d | %s / %.0f | %.0f | %s | %s | %s | %d | %s | %s | %s | %.1f | %.2f / %.2f / %.2f%s |\n",
			e.streams, rate, float64(s.sent)/wnd, s.perSecond(), ms(s.p50), ms(s.p99), ms(s.maxLat), s.ended+s.endedOther,
			kib(e.rssPerStream()), kib(e.heapPerStream()), kib(e.stackPerStream()), s.usPerDelivery(), s.cpuFacade/wnd, s.cpuGen/wnd, s.cpuOther/wnd, noisy)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | measured | |")
	fmt.Fprintln(w, "| --- | --- | --- |")
	best := e.sustained()
	got, verdict := "no step ended no stream with p99 within the target", "missed"
	if best != nil {
		got = fmt.Sprintf("%.0f/s (upstream %d events/s, p99 %s ms, none ended)", best.perSecond(), best.rate, ms(best.p99))
		// The window's edges cut a delivery or two: 1% of slack.
		if best.perSecond() >= 0.99*targetDeliveries {
			verdict = "met"
		} else {
			verdict = "missed"
		}
	}
	fmt.Fprintf(w, "| %d deliveries/s, no stream ended, p99 ≤ %d ms | %s | %s |\n", targetDeliveries, targetEventsP99/time.Millisecond, got, verdict)
	if len(e.steps) > 0 {
		s := e.steps[0]
		v := "met"
		if s.p99 > targetEventsP99 || s.ended+s.endedOther > 0 {
			v = "missed"
		}
		fmt.Fprintf(w, "| p99 ≤ %d ms at the target rate (%d events/s × %d streams) | %s ms, %.0f deliveries/s, %d ended | %s |\n",
			targetEventsP99/time.Millisecond, s.rate, e.streams, ms(s.p99), s.perSecond(), s.ended+s.endedOther, v)
	}
	v := "met"
	if e.rssPerStream() > targetBytesPerStream || e.rssPerStream() == 0 {
		v = "missed"
	}
	fmt.Fprintf(w, "| ≤ %d KiB RSS per open stream | %s (heap %s, stacks %s) | %s |\n", targetBytesPerStream>>10, kib(e.rssPerStream()), kib(e.heapPerStream()), kib(e.stackPerStream()), v)
}
