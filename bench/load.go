package main

import (
	"bytes"
	"context"
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
}

// caller makes one call as user u, from worker w. It returns an error for
// anything but the right user's profile.
type caller func(w int, u *user) error

// door opens a door for c callers; close releases it.
func (b *bench) door(d doorKind, c int, fac *facadeProc) (caller, func(), error) {
	switch d {
	case doorDirect:
		return httpDoor(b.upstream+"/rest/auth", c)
	case doorREST:
		return httpDoor("http://"+fac.httpAddr+"/v1/auth", c)
	}
	return grpcDoor(fac.grpcAddr, c, b.opts.workersPerConn)
}

// httpDoor is GET target with the user's Basic credential, over HTTP/1.1
// keep-alive connections, one per caller.
func httpDoor(target string, c int) (caller, func(), error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, nil, err
	}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        c + 16,
		MaxIdleConnsPerHost: c + 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	client := &http.Client{Transport: tr}
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
	return call, tr.CloseIdleConnections, nil
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

// noisyCores is how much CPU other processes may take during a phase
// before it is run again (within the -reruns budget).
const noisyCores = 0.15

// measure runs a phase and, while the -reruns budget lasts, runs it again
// when other processes took more than noisyCores meanwhile; it keeps the
// quietest run.
func (b *bench) measure(ctx context.Context, d doorKind, sh shape, c int, fac *facadeProc, cache bool) (*result, error) {
	best, err := b.phase(ctx, d, sh, c, fac, cache)
	for err == nil && best.cpuOther/best.window.Seconds() > noisyCores && b.reruns > 0 {
		b.reruns--
		fmt.Printf("        other processes took %.2f cores: running it again (%d reruns left)\n", best.cpuOther/best.window.Seconds(), b.reruns)
		var r *result
		if r, err = b.phase(ctx, d, sh, c, fac, cache); err == nil && r.cpuOther < best.cpuOther {
			best = r
		}
	}
	if err == nil && best.cpuOther/best.window.Seconds() > noisyCores {
		best.noisy = true
	}
	return best, err
}

// phase runs c closed-loop callers through door d for warm-up plus
// duration, and measures the calls that complete within the duration.
func (b *bench) phase(ctx context.Context, d doorKind, sh shape, c int, fac *facadeProc, cache bool) (*result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	call, closeDoor, err := b.door(d, c, fac)
	if err != nil {
		return nil, err
	}
	defer closeDoor()
	r := &result{door: d, shape: sh, callers: c, cache: cache, window: b.opts.duration}
	if d != doorDirect {
		r.peakReset = fac.resetPeak()
		r.floor = fac.floor
	}

	nu := len(b.users)
	if sh == shapeDistinct {
		nu = min(nu, b.opts.users)
	}
	stride := max(1, nu/c) // worker i starts stride users after worker i-1: no two callers share a user at once

	start := time.Now()
	measStart := start.Add(b.opts.warmup)
	measEnd := measStart.Add(b.opts.duration)
	var (
		stop     atomic.Bool
		wg       sync.WaitGroup
		samples  = make([][]time.Duration, c)
		errCount = make([]int64, c)
		errOnce  sync.Once
	)
	expect := int(b.opts.duration.Seconds() * 50000 / float64(c)) // generous: 50k calls/s in all
	for w := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, min(expect, 1<<16))
			next := w * stride
			for !stop.Load() {
				u := b.users[0]
				if sh == shapeDistinct {
					u = b.users[next%nu]
					next++
				}
				t0 := time.Now()
				err := call(w, u)
				t1 := time.Now()
				if t1.Before(measStart) || t1.After(measEnd) {
					continue
				}
				if err != nil {
					errCount[w]++
					errOnce.Do(func() { r.firstErr = err.Error() })
					continue
				}
				lat = append(lat, t1.Sub(t0))
			}
			samples[w] = lat
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	abort := func(err error) (*result, error) {
		stop.Store(true)
		return nil, err
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
	all0, gen0, fac0, sb0 := machineBusySeconds(), selfCPUSeconds(), 0.0, cpuSeconds(b.sandbox.cmd.Process.Pid)
	if d != doorDirect {
		fac0 = cpuSeconds(fac.pid())
	}
	t0 := time.Now()
	if err := sleepUntil(measEnd); err != nil {
		return abort(err)
	}
	all1, gen1, fac1, sb1 := machineBusySeconds(), selfCPUSeconds(), 0.0, cpuSeconds(b.sandbox.cmd.Process.Pid)
	if d != doorDirect {
		fac1 = cpuSeconds(fac.pid())
	}
	// Normalise to the window, in case the sampling was late.
	scale := b.opts.duration.Seconds() / time.Since(t0).Seconds()
	r.cpuGen, r.cpuFacade, r.cpuSandbox = (gen1-gen0)*scale, (fac1-fac0)*scale, (sb1-sb0)*scale
	r.cpuOther = max(0, (all1-all0)*scale-r.cpuGen-r.cpuFacade-r.cpuSandbox)
	stop.Store(true)
	select {
	case <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(15 * time.Second):
		return nil, fmt.Errorf("%s, %d callers: calls still in flight 15s after the end", d, c)
	}
	if d != doorDirect {
		r.peakRSS = fac.peak()
	}

	var lat []time.Duration
	for w := range c {
		lat = append(lat, samples[w]...)
		r.errs += errCount[w]
	}
	r.calls = int64(len(lat))
	if len(lat) > 0 {
		slices.Sort(lat)
		r.p50, r.p99, r.maxLat = percentile(lat, 0.50), percentile(lat, 0.99), lat[len(lat)-1]
	}
	printResult(r)
	return r, nil
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
