package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
)

// user is one account of the generated accounts file, with what the load
// generator sends and expects, computed once.
type user struct {
	email  string
	basic  string          // "Basic base64(email:password)"
	quoted []byte          // `"email"`, looked for in HTTP answers
	md     context.Context // outgoing gRPC metadata with the Basic credential
}

// writeAccounts writes n sandbox accounts, each with a password and an API
// token and a profile of the documented 2024 shape, and returns them.
func writeAccounts(dir string, n int) ([]*user, string, error) {
	type account struct {
		Password  string         `json:"password"`
		APITokens []string       `json:"api_tokens"`
		Profile   map[string]any `json:"profile"`
	}
	accounts := make([]account, n)
	users := make([]*user, n)
	for i := range n {
		email := fmt.Sprintf("bench-user-%05d@bench.example", i)
		password := fmt.Sprintf("pw-%05d-%x", i, i*7919)
		accounts[i] = account{
			Password:  password,
			APITokens: []string{fmt.Sprintf("bench-token-%05d", i)},
			Profile: map[string]any{
				"uuid":         fmt.Sprintf("%08x-1280-44b2-9134-da48509ec575", i),
				"email":        email,
				"wss_online":   i%2 == 0,
				"role":         "User",
				"created_on":   "2024-01-16T14:15:48.540Z",
				"modified_on":  "2024-01-16T14:15:48.540Z",
				"deleted_on":   nil,
				"phone_number": fmt.Sprintf("+1555%07d", i),
				"dob":          "1990-01-16T00:00:00.000Z",
				"avatar":       "https://example.com/avatars/" + fmt.Sprint(i) + ".png",
				"first_name":   "First",
				"last_name":    fmt.Sprintf("User %d", i),
				"gender":       "Female",
				"account": map[string]any{
					"created_on":  "2024-01-16T14:15:48.540Z",
					"modified_on": "2024-01-16T14:15:48.540Z",
					"uuid":        fmt.Sprintf("%08x-6bf8-4484-8034-debf95aac73b", i),
					"email":       fmt.Sprintf("billing-%05d@bench.example", i),
					"name":        fmt.Sprintf("ACCOUNT %d", i),
					"level":       "Level0",
					"deleted_on":  nil,
					"balance":     99.87895 + float64(i),
				},
			},
		}
		basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(email+":"+password))
		users[i] = &user{
			email:  email,
			basic:  basic,
			quoted: []byte(`"` + email + `"`),
			md:     metadata.NewOutgoingContext(context.Background(), metadata.Pairs("authorization", basic)),
		}
	}
	b, err := json.Marshal(accounts)
	if err != nil {
		return nil, "", err
	}
	path := filepath.Join(dir, "accounts.json")
	return users, path, os.WriteFile(path, b, 0o600)
}

type doorKind int

const (
	doorDirect doorKind = iota // HTTP straight to the sandbox
	doorGRPC                   // the facade over gRPC
	doorREST                   // the facade over REST
)

func (d doorKind) String() string {
	return [...]string{"direct HTTP", "facade gRPC", "facade REST"}[d]
}

type shape int

const (
	shapeDistinct shape = iota // every call its own user, rotating over -users
	shapeSame                  // every call the same user
)

func (s shape) String() string { return [...]string{"distinct", "same"}[s] }

// result is one load phase.
type result struct {
	door    doorKind
	shape   shape
	callers int
	cache   bool   // the facade had its cache on
	floor   string // "echo" or "forward" when the "facade" was bench/floor

	calls, errs int64 // completed within the measured window
	firstErr    string
	window      time.Duration
	p50, p99    time.Duration
	maxLat      time.Duration

	// CPU time used during the window, in seconds, by the load generator
	// (bench), the facade and the sandbox.
	cpuGen, cpuFacade, cpuSandbox float64
	// cpuOther is what every other process on the machine used meanwhile
	// (busy time from /proc/stat minus the three above): someone else's
	// load, which the numbers of this phase suffered from.
	cpuOther  float64
	noisy     bool  // cpuOther was over noisyCores, reruns or not
	peakRSS   int64 // facade's peak RSS during the phase; 0 for direct
	peakReset bool  // whether the peak was reset before the phase

	// With a distant upstream: connections the door opened to it and the
	// most open at once (exact for direct; sampled from the facade's
	// gauge), and the requests it sent (facade; direct sends one per
	// call).
	distant          bool
	upOpened, upOpen float64
	upRequests       float64
	// The facade's goroutine stacks and heap in use at the end of a slice,
	// calls in flight (the largest over the slices).
	stackInuse, heapInuse float64
}

// upPer1000 is upstream requests per 1,000 calls.
func (r *result) upPer1000() float64 {
	if r.door == doorDirect {
		return 1000
	}
	if r.calls == 0 {
		return 0
	}
	return r.upRequests * 1000 / float64(r.calls)
}

// label is the door, or for bench/floor its mode and door.
func (r *result) label() string {
	if r.floor != "" {
		return "floor " + r.floor + " " + strings.TrimPrefix(r.door.String(), "facade ")
	}
	return r.door.String()
}

func (r *result) throughput() float64 { return float64(r.calls) / r.window.Seconds() }

func (r *result) errRate() float64 {
	if r.calls+r.errs == 0 {
		return 1
	}
	return float64(r.errs) / float64(r.calls+r.errs)
}

// flagged: more than 0.1% of the calls failed, or none succeeded.
func (r *result) flagged() bool { return r.calls == 0 || r.errRate() > 0.001 }

// bench is what the load phases share.
type bench struct {
	opts     options
	users    []*user
	sandbox  *sandboxProc
	upstream string
	reruns   int // what is left of -reruns

	// For a distant upstream (TLS, HTTP/2, a delay per answer): the CA
	// the direct door trusts, and its connections.
	roots       *x509.CertPool
	directConns *connCounter
}

// caller makes one call as user u, from worker w. It returns an error for
// anything but the right user's profile.
type caller func(w int, u *user) error

// door opens a door for c callers; close releases it.
func (b *bench) door(d doorKind, c int, fac *facadeProc) (caller, func(), error) {
	switch d {
	case doorDirect:
		if b.roots != nil {
			return h2Door(b.upstream+"/rest/auth", c, b.roots, b.directConns)
		}
		return httpDoor(b.upstream+"/rest/auth", c)
	case doorREST:
		return httpDoor("http://"+fac.httpAddr+"/v1/auth", c)
	}
	return grpcDoor(fac.grpcAddr, c, b.opts.workersPerConn)
}

// httpDoor is GET target with the user's Basic credential, over HTTP/1.1
// keep-alive connections, one per caller.
func httpDoor(target string, c int) (caller, func(), error) {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        c + 16,
		MaxIdleConnsPerHost: c + 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	call, _, err := httpCaller(target, &http.Client{Transport: tr}, c)
	return call, tr.CloseIdleConnections, err
}

// httpCaller is GET target with the user's Basic credential through
// client, for c callers.
func httpCaller(target string, client *http.Client, c int) (caller, func(), error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, nil, err
	}
	bufs := make([]bytes.Buffer, c)
	call := func(w int, us *user) error {
		req := &http.Request{
			Method: http.MethodGet, URL: u, Host: u.Host,
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{"Authorization": {us.basic}},
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		buf := &bufs[w]
		buf.Reset()
		_, err = buf.ReadFrom(resp.Body)
		resp.Body.Close()
		switch {
		case err != nil:
			return err
		case resp.StatusCode != http.StatusOK:
			return fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, buf.Bytes())
		case !bytes.Contains(buf.Bytes(), us.quoted):
			return fmt.Errorf("answer is not %s's profile: %.200s", us.email, buf.Bytes())
		}
		return nil
	}
	return call, func() {}, nil
}

// grpcDoor is GetAuth with the user's Basic credential as metadata, over
// one ClientConn per perConn callers, worker w on connection w mod n.
func grpcDoor(addr string, c, perConn int) (caller, func(), error) {
	n := (c + perConn - 1) / perConn
	conns := make([]*grpc.ClientConn, n)
	clients := make([]authv1.AuthServiceClient, n)
	closeAll := func() {
		for _, cc := range conns {
			if cc != nil {
				cc.Close()
			}
		}
	}
	for i := range conns {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		cc.Connect()
		conns[i], clients[i] = cc, authv1.NewAuthServiceClient(cc)
	}
	call := func(w int, us *user) error {
		resp, err := clients[w%n].GetAuth(us.md, &authv1.GetAuthRequest{})
		if err != nil {
			return err
		}
		if got := resp.GetUser().GetEmail(); got != us.email {
			return fmt.Errorf("answer is %q's profile, not %s's", got, us.email)
		}
		return nil
	}
	return call, closeAll, nil
}

// groupFacades starts the facades (or floors) of one group of phases
// against b's upstream, each primed; stop stops every one started.
func (b *bench) groupFacades(ctx context.Context, procs *registry) (start func(path string, args ...string) (*facadeProc, error), stop func()) {
	var started []*facadeProc
	start = func(path string, args ...string) (*facadeProc, error) {
		f, err := startFacade(ctx, procs, path, b.upstream, args...)
		if err != nil {
			return nil, err
		}
		started = append(started, f)
		return f, b.prime(ctx, f)
	}
	stop = func() {
		for _, f := range started {
			procs.stop(f.proc)
		}
	}
	return start, stop
}

// prime checks that every door of fac answers right before anything is
// measured, and makes the first connections.
func (b *bench) prime(ctx context.Context, fac *facadeProc) error {
	for _, d := range []doorKind{doorDirect, doorGRPC, doorREST} {
		call, closeDoor, err := b.door(d, 1, fac)
		if err != nil {
			return err
		}
		err = call(0, b.users[0])
		closeDoor()
		if err != nil {
			return fmt.Errorf("%s does not answer right: %w", d, err)
		}
	}
	return ctx.Err()
}

// noisyCores is how much CPU other processes may take during a lane's
// measured time before its group is run again (within the -reruns budget).
const noisyCores = 0.15

// lane is one door through one process: the sandbox straight (direct), or a
// facade, or bench/floor, over gRPC or REST.
type lane struct {
	door  doorKind
	fac   *facadeProc // nil for direct
	cache bool        // the facade has its cache on
}

// measure measures lanes, all with c callers and shape sh, together (see
// interleave). While the -reruns budget lasts it runs the group again when
// other processes took more than noisyCores during any lane's time, and
// keeps the quietest run.
func (b *bench) measure(ctx context.Context, sh shape, c int, lanes ...lane) ([]*result, error) {
	noise := func(rs []*result) float64 {
		n := 0.0
		for _, r := range rs {
			n = max(n, r.cpuOther/r.window.Seconds())
		}
		return n
	}
	best, err := b.interleave(ctx, sh, c, lanes)
	for err == nil && noise(best) > noisyCores && b.reruns > 0 {
		b.reruns--
		fmt.Printf("        other processes took %.2f cores: running the group again (%d reruns left)\n", noise(best), b.reruns)
		var rs []*result
		if rs, err = b.interleave(ctx, sh, c, lanes); err == nil && noise(rs) < noise(best) {
			best = rs
		}
	}
	if err != nil {
		return nil, err
	}
	for _, r := range best {
		r.noisy = r.cpuOther/r.window.Seconds() > noisyCores
		printResult(r)
	}
	return best, nil
}

// phase measures one lane alone, in one stretch: warm-up, then -duration.
func (b *bench) phase(ctx context.Context, d doorKind, sh shape, c int, fac *facadeProc, cache bool) (*result, error) {
	rs, err := b.interleave(ctx, sh, c, []lane{{door: d, fac: fac, cache: cache}})
	if err != nil {
		return nil, err
	}
	printResult(rs[0])
	return rs[0], nil
}

// laneRun is a lane being measured: its open door, its result so far, and
// where each caller is in its rotation over the users.
type laneRun struct {
	lane
	call  caller
	close func()
	r     *result
	lat   []time.Duration
	next  []int
}

// interleave measures lanes with c closed-loop callers each, one lane at a
// time, in -rounds rounds: in each round every lane runs for its share of
// -duration (after a warm-up, the whole -warmup in the first round and at
// most laterWarmup after), each round starting one lane further on. The
// machine's speed drifts, on a shared VM by a third from one minute to the
// next; interleaved, the drift falls on every lane alike instead of on
// whichever ran in the slow minute, so ratios between lanes hold up from
// run to run. A lane's result sums its slices. One lane is measured in one
// stretch.
func (b *bench) interleave(ctx context.Context, sh shape, c int, lanes []lane) ([]*result, error) {
	rounds := b.opts.rounds
	if len(lanes) == 1 || rounds < 1 {
		rounds = 1
	}
	runs := make([]*laneRun, len(lanes))
	defer func() {
		for _, lr := range runs {
			if lr != nil {
				lr.close()
			}
		}
	}()
	nu := len(b.users)
	if sh == shapeDistinct {
		nu = min(nu, b.opts.users)
	}
	stride := max(1, nu/c) // worker i starts stride users after worker i-1: no two callers share a user at once
	for i, l := range lanes {
		call, closeDoor, err := b.door(l.door, c, l.fac)
		if err != nil {
			return nil, err
		}
		lr := &laneRun{lane: l, call: call, close: closeDoor, next: make([]int, c),
			r: &result{door: l.door, shape: sh, callers: c, cache: l.cache, distant: b.roots != nil}}
		for w := range c {
			lr.next[w] = w * stride
		}
		if l.door != doorDirect {
			lr.r.floor = l.fac.floor
			lr.r.peakReset = l.fac.resetPeak()
		}
		runs[i] = lr
	}
	slice := b.opts.duration / time.Duration(rounds)
	for round := range rounds {
		warm := b.opts.warmup
		if round > 0 {
			warm = min(warm, laterWarmup)
		}
		for k := range runs {
			if err := b.slice(ctx, runs[(round+k)%len(runs)], sh, nu, warm, slice); err != nil {
				return nil, err
			}
		}
	}
	out := make([]*result, len(runs))
	for i, lr := range runs {
		r := lr.r
		if lr.door != doorDirect {
			r.peakRSS = lr.fac.peak()
		}
		r.calls = int64(len(lr.lat))
		if len(lr.lat) > 0 {
			slices.Sort(lr.lat)
			r.p50, r.p99, r.maxLat = percentile(lr.lat, 0.50), percentile(lr.lat, 0.99), lr.lat[len(lr.lat)-1]
		}
		out[i] = r
	}
	return out, nil
}

// laterWarmup is the warm-up of a lane's slices after its first: its
// connections are open and its processes warm, the callers only restart.
const laterWarmup = 200 * time.Millisecond

// slice runs lr's callers for warm plus d, and adds what completed within d
// to lr: calls, errors, latencies, and every process's CPU time.
func (b *bench) slice(ctx context.Context, lr *laneRun, sh shape, nu int, warm, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c, r := len(lr.next), lr.r
	start := time.Now()
	measStart := start.Add(warm)
	measEnd := measStart.Add(d)
	var (
		stop     atomic.Bool
		wg       sync.WaitGroup
		samples  = make([][]time.Duration, c)
		errCount = make([]int64, c)
		firstErr = make([]error, c)
	)
	expect := int(d.Seconds() * 50000 / float64(c)) // generous: 50k calls/s in all
	for w := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, min(expect, 1<<16))
			for !stop.Load() {
				u := b.users[0]
				if sh == shapeDistinct {
					u = b.users[lr.next[w]%nu]
					lr.next[w]++
				}
				t0 := time.Now()
				err := lr.call(w, u)
				t1 := time.Now()
				if t1.Before(measStart) || t1.After(measEnd) {
					continue
				}
				if err != nil {
					errCount[w]++
					if firstErr[w] == nil {
						firstErr[w] = err
					}
					continue
				}
				lat = append(lat, t1.Sub(t0))
			}
			samples[w] = lat
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	abort := func(err error) error {
		stop.Store(true)
		return err
	}
	sleepUntil := func(t time.Time) error {
		select {
		case <-time.After(time.Until(t)):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-done:
			return errors.New("callers stopped early")
		}
	}
	if err := sleepUntil(measStart); err != nil {
		return abort(err)
	}
	facCPU := func() float64 {
		if lr.door == doorDirect {
			return 0
		}
		return cpuSeconds(lr.fac.pid())
	}
	var (
		up0       upstreamSide
		dial0     int64
		stopWatch chan struct{}
		mostOpen  <-chan float64
	)
	watch := r.distant && (lr.door == doorDirect || lr.fac.floor == "") // bench/floor has no /metrics
	if watch {
		if lr.door == doorDirect {
			b.directConns.resetMost()
			dial0 = b.directConns.opened.Load()
		} else {
			up0 = readUpstreamSide(lr.fac)
			stopWatch = make(chan struct{})
			// Each scrape costs the facade a few ms of CPU: sample often
			// enough to see a phase's peak, not so often that the scrapes
			// are a share of a slow phase's CPU per call. One caller
			// needs one connection: the first and last readings do.
			every := 250 * time.Millisecond
			if c == 1 {
				every = time.Hour
			}
			mostOpen = watchOpen(lr.fac, every, stopWatch)
		}
	}
	all0, gen0, fac0, sb0 := machineBusySeconds(), selfCPUSeconds(), facCPU(), cpuSeconds(b.sandbox.cmd.Process.Pid)
	t0 := time.Now()
	if err := sleepUntil(measEnd); err != nil {
		if stopWatch != nil {
			close(stopWatch)
		}
		return abort(err)
	}
	all1, gen1, fac1, sb1 := machineBusySeconds(), selfCPUSeconds(), facCPU(), cpuSeconds(b.sandbox.cmd.Process.Pid)
	if watch {
		if lr.door == doorDirect {
			r.upOpened += float64(b.directConns.opened.Load() - dial0)
			r.upOpen = max(r.upOpen, float64(b.directConns.most.Load()))
		} else {
			close(stopWatch)
			up1 := readUpstreamSide(lr.fac)
			r.upOpened += up1.opened - up0.opened
			r.upRequests += up1.requests - up0.requests
			r.upOpen = max(r.upOpen, <-mostOpen, up1.open)
			r.stackInuse, r.heapInuse = max(r.stackInuse, up1.stack), max(r.heapInuse, up1.heap)
		}
	}
	// Normalise to the slice, in case the sampling was late.
	scale := d.Seconds() / time.Since(t0).Seconds()
	gen, fac, sb := (gen1-gen0)*scale, (fac1-fac0)*scale, (sb1-sb0)*scale
	r.cpuGen, r.cpuFacade, r.cpuSandbox = r.cpuGen+gen, r.cpuFacade+fac, r.cpuSandbox+sb
	r.cpuOther += max(0, (all1-all0)*scale-gen-fac-sb)
	r.window += d
	stop.Store(true)
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(15 * time.Second):
		return fmt.Errorf("%s, %d callers: calls still in flight 15s after the end", lr.door, c)
	}
	for w := range c {
		lr.lat = append(lr.lat, samples[w]...)
		r.errs += errCount[w]
		if r.firstErr == "" && firstErr[w] != nil {
			r.firstErr = firstErr[w].Error()
		}
	}
	return nil
}

// percentile is the nearest-rank percentile of sorted samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// memStep is the facade's memory after len(users) distinct users went
// through its cache.
type memStep struct {
	users        int
	rss          int64
	heapInuse    int64
	cacheMetrics []string
}

// cacheMemory fills the cache of fac (started with a long --cache-ttl) with
// more and more distinct users, one call each, and reads the facade's RSS
// after each step.
func (b *bench) cacheMemory(ctx context.Context, fac *facadeProc) ([]memStep, error) {
	const workers = 64
	call, closeDoor, err := grpcDoor(fac.grpcAddr, workers, b.opts.workersPerConn)
	if err != nil {
		return nil, err
	}
	defer closeDoor()
	// run calls as users [from, to) once each (or user 0 for warm-up,
	// until warmUntil).
	run := func(from, to int, warmUntil time.Time) error {
		var (
			next     atomic.Int64
			wg       sync.WaitGroup
			firstErr atomic.Pointer[error]
		)
		next.Store(int64(from))
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					u := b.users[0]
					if warmUntil.IsZero() {
						i := int(next.Add(1) - 1)
						if i >= to {
							return
						}
						u = b.users[i]
					} else if time.Now().After(warmUntil) {
						return
					}
					if err := call(w, u); err != nil {
						firstErr.CompareAndSwap(nil, &err)
					}
				}
			}()
		}
		wg.Wait()
		if p := firstErr.Load(); p != nil {
			return fmt.Errorf("filling the cache: %w", *p)
		}
		return ctx.Err()
	}
	settle := func() memStep {
		time.Sleep(500 * time.Millisecond)
		m := fac.metrics()
		return memStep{rss: fac.rss(), heapInuse: int64(metricValue(m, "go_memstats_heap_inuse_bytes")), cacheMetrics: cacheMetrics(m)}
	}

	fmt.Printf("\ncache memory (--cache-ttl=10m --cache-max-entries=%d), gRPC, %d callers, each user once:\n", b.opts.cacheMaxEntries, workers)
	// Warm the runtime (goroutines, buffers, connections) with one user.
	if err := run(0, 0, time.Now().Add(time.Second)); err != nil {
		return nil, err
	}
	steps := []memStep{settle()}
	steps[0].users = 1
	printMemStep(steps[0])
	prev := 1
	for _, n := range b.opts.cacheFill {
		if n <= prev {
			continue
		}
		if err := run(prev, n, time.Time{}); err != nil {
			return nil, err
		}
		s := settle()
		s.users = n
		steps = append(steps, s)
		printMemStep(s)
		prev = n
	}
	return steps, nil
}
