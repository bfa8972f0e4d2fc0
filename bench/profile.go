package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// A profiled phase: the CPU profile of a facade, or of bench/floor in
// forward mode, from --debug-addr over the measured window of one more
// phase, broken down by what the time was spent on.
type profiled struct {
	door      doorKind
	shape     shape
	callers   int
	floor     string  // bench/floor's --mode; empty for the facade
	usPerCall float64 // the profiled process's CPU per call in that phase
	total     time.Duration
	areas     []areaShare
	top       string // go tool pprof -top
}

type areaShare struct {
	area  string
	share float64 // of the profile's samples
}

// label is the door, or for bench/floor its mode and door, as a result's.
func (p *profiled) label() string {
	return (&result{door: p.door, floor: p.floor}).label()
}

// share is the area's share of the samples, 0 if the profile has none
// of it.
func (p *profiled) share(area string) float64 {
	for _, a := range p.areas {
		if a.area == area {
			return a.share
		}
	}
	return 0
}

// us is the area's µs per call.
func (p *profiled) us(area string) float64 { return p.share(area) * p.usPerCall }

// profileStretch is how many times -duration a profiled phase runs.
const profileStretch = 3

// profilePhase runs one more phase, unreported, against a process of its
// own started with --debug-addr (the facade, or bench/floor's forward mode
// with floor set), and takes its CPU profile over the measured window.
func (b *bench) profilePhase(ctx context.Context, procs *registry, tmp string, d doorKind, sh shape, c int, floor bool) (*profiled, error) {
	debugAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	bin, args, mode := b.opts.facade, []string{"--debug-addr", debugAddr}, ""
	if floor {
		bin, mode = b.opts.floor, "forward"
		args = append(args, "--mode="+mode)
	}
	fac, err := startFacade(ctx, procs, bin, b.upstream, args...)
	if err != nil {
		return nil, err
	}
	fac.floor = mode
	defer procs.stop(fac.proc)
	if err := b.prime(ctx, fac); err != nil {
		return nil, err
	}
	p := &profiled{door: d, shape: sh, callers: c, floor: mode}
	file := filepath.Join(tmp, fmt.Sprintf("cpu-%s-%s-%d.pprof", strings.ReplaceAll(p.label(), " ", "-"), sh, c))
	// Go samples 100 times a second: a longer phase than the others, for
	// areas of a few µs per call to rise above the sampling noise.
	defer func(d time.Duration) { b.opts.duration = d }(b.opts.duration)
	b.opts.duration *= profileStretch
	secs := max(1, int(b.opts.duration.Round(time.Second)/time.Second))
	got := make(chan error, 1)
	go func() {
		// The phase warms up first; the profile covers the measured part.
		select {
		case <-time.After(b.opts.warmup):
		case <-ctx.Done():
			got <- ctx.Err()
			return
		}
		got <- fetchProfile(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", debugAddr, secs), file)
	}()
	r, err := b.phase(ctx, d, sh, c, fac, false)
	if perr := <-got; err == nil && perr != nil {
		err = fmt.Errorf("profiling %s: %w", p.label(), perr)
	}
	if err != nil {
		return nil, err
	}
	if r.calls > 0 {
		p.usPerCall = r.cpuFacade / float64(r.calls) * 1e6
	}
	traces, err := pprofOutput(ctx, b.opts.goCmd, "-traces", bin, file)
	if err != nil {
		return nil, err
	}
	p.areas, p.total = breakDown(traces)
	if p.top, err = pprofOutput(ctx, b.opts.goCmd, "-top", "-nodecount=25", bin, file); err != nil {
		return nil, err
	}
	// Keep the table, not pprof's header (file name, build id, time).
	if i := strings.Index(p.top, "      flat"); i >= 0 {
		p.top = p.top[i:]
	}
	return p, nil
}

func fetchProfile(ctx context.Context, url, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func pprofOutput(ctx context.Context, goCmd string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, goCmd, append([]string{"tool", "pprof"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go tool pprof %s: %w", strings.Join(args, " "), err)
	}
	return string(out), nil
}

// areas name what a stack was doing, by the first frame from the leaf
// up that belongs to one of them; stacks with none go to the scheduler or
// "other". The garbage collector's own goroutines and assists come first.
var areas = []struct {
	name     string
	patterns []string
}{
	{"decoding Opentact's JSON (internal/codec, go-json-experiment/json, encoding/json)", []string{
		"encoding/json.", "go-json-experiment/json", "internal/codec.", "internal/upstream.decode",
		"internal/upstream.(*text)", "internal/upstream.(*flag)", "internal/upstream.unquote",
	}},
	{"bounds (admission, overload gate, rapid-reset guard)", []string{
		"internal/admission.", "internal/netguard.", "internal/upstream.(*gate)", "internal/server.(*admitter)",
	}},
	{"upstream HTTP client (net/http Transport, retries, breaker)", []string{
		"net/http.(*persistConn)", "net/http.persistConnWriter", "net/http.(*Transport)", "net/http.(*transferWriter)",
		"net/http.ReadResponse", "net/http.(*Request).write", "net/http.(*body)", "net/http.(*bodyEOFSignal)",
		"internal/upstream.", "otelhttp", "gobreaker",
		// bench/floor's handler makes its request with net/http's Client
		// and builds its answer: the work the facade's upstream client does.
		"net/http.(*Client)", "net/http.send", "net/http.NewRequest", "main.(*floor).GetAuth",
	}},
	{"engine (credentials, validation, sharing, cache, the request's encoding)", []string{"internal/engine.", "internal/apierr.", "opentact-facade/service."}},
	{"access log interceptor", []string{"internal/server.(*Server).logCall", "internal/server.(*Server).unaryInterceptors", "internal/server.restClient", "log/slog."}},
	{"metrics (Prometheus)", []string{"prometheus"}},
	{"protobuf encoding (binary; JSON for REST)", []string{
		"google.golang.org/protobuf/",
	}},
	{"REST server (net/http server, grpc-gateway)", []string{
		"net/http.(*conn)", "net/http.(*response)", "net/http.(*chunkWriter)", "net/http.(*connReader)",
		"net/http.readRequest", "net/http.serverHandler", "net/http.(*expectContinueReader)", "net/http.HandlerFunc",
		"grpc-gateway", "internal/server.checkRequest", "internal/server.(*localAuth)", "internal/server.newGateway",
		"internal/server.(*Server).routes",
	}},
	{"gRPC server (grpc-go, HTTP/2)", []string{"google.golang.org/grpc", "golang.org/x/net/http2"}},
}

const (
	areaGC    = "garbage collector (marking, sweeping, assists)"
	areaSched = "Go scheduler (idle processors spinning, wake-ups)"
	areaOther = "other (runtime, system calls outside the above)"
)

// breakDown sums the samples of `go tool pprof -traces` output by area.
func breakDown(traces string) ([]areaShare, time.Duration) {
	sums := map[string]time.Duration{}
	var total time.Duration
	var value time.Duration
	var stack []string
	flush := func() {
		if len(stack) > 0 && value > 0 {
			sums[classify(stack)] += value
			total += value
		}
		stack, value = nil, 0
	}
	sc := bufio.NewScanner(strings.NewReader(traces))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "-----------+"):
			flush()
		case strings.HasPrefix(line, "      ") || strings.HasPrefix(line, "     "):
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			if len(stack) == 0 && value == 0 {
				if v, err := time.ParseDuration(f[0]); err == nil {
					value = v
					if len(f) > 1 {
						stack = append(stack, f[1])
					}
					continue
				}
			}
			stack = append(stack, f[0])
		}
	}
	flush()
	var out []areaShare
	for name, v := range sums {
		out = append(out, areaShare{area: name, share: float64(v) / float64(max(total, 1))})
	}
	slices.SortFunc(out, func(a, b areaShare) int {
		switch {
		case a.share > b.share:
			return -1
		case a.share < b.share:
			return 1
		}
		return strings.Compare(a.area, b.area)
	})
	return out, total
}

// Frames that put a whole stack down to the garbage collector (its own
// goroutines and assists) or, when no area claims it, to the scheduler.
var (
	gcFrames    = []string{"runtime.gcBgMarkWorker", "runtime.bgsweep", "runtime.bgscavenge", "runtime.gcAssistAlloc", "runtime.gcStart", "runtime.gcMarkDone"}
	schedFrames = []string{"runtime.schedule", "runtime.findRunnable", "runtime.mcall", "runtime.park_m", "runtime.goschedImpl", "runtime.wakep"}
)

// transparentFrames wrap a connection's reads and writes: the system
// call under them counts for whoever reads or writes (grpc-go, net/http),
// as it does in bench/floor, whose connections are not wrapped. What the
// wrappers do themselves is in frames of their own, which still count.
var transparentFrames = []string{
	"internal/netguard.(*guardConn).Read", "internal/netguard.(*guardConn).Write", "internal/netguard.(*guardConn).writeToBoundary",
}

// classify names the area of one stack, leaf first.
func classify(stack []string) string {
	if anyFrameHasPrefix(stack, gcFrames) {
		return areaGC
	}
	for _, f := range stack {
		if slices.ContainsFunc(transparentFrames, func(t string) bool { return strings.HasSuffix(f, t) }) {
			continue
		}
		for _, a := range areas {
			for _, p := range a.patterns {
				if strings.Contains(f, p) {
					return a.name
				}
			}
		}
	}
	if anyFrameHasPrefix(stack, schedFrames) {
		return areaSched
	}
	return areaOther
}

func anyFrameHasPrefix(stack, prefixes []string) bool {
	for _, f := range stack {
		for _, p := range prefixes {
			if strings.HasPrefix(f, p) {
				return true
			}
		}
	}
	return false
}
