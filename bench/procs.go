package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a started binary.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when it has exited
	err  error         // its exit status, once done is closed
	log  *tailBuffer   // the end of its stderr (nil when discarded)
}

// registry holds every process bench started, to kill them all on the way
// out, whatever the way out is.
type registry struct {
	mu    sync.Mutex
	procs []*proc
}

func (r *registry) start(name, path string, args []string, keepLog bool) (*proc, error) {
	cmd := exec.Command(path, args...)
	// Die with bench, even when bench is killed with SIGKILL.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	if keepLog {
		p.log = &tailBuffer{max: 64 << 10}
		cmd.Stderr = p.log
		cmd.Stdout = p.log
	} // else /dev/null: the sandbox logs every request at info level
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	r.procs = append(r.procs, p)
	return p, nil
}

// stop asks p to end with SIGTERM and kills it if it has not after 3s.
func (r *registry) stop(p *proc) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (r *registry) killAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.procs {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// exited describes how p ended, with the end of its log.
func (p *proc) exited() error {
	msg := fmt.Sprintf("%s exited early (%v)", p.name, p.err)
	if p.log != nil {
		if tail := strings.TrimSpace(p.log.String()); tail != "" {
			msg += ":\n" + tail
		}
	}
	return fmt.Errorf("%s", msg)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// freeAddr returns a loopback address with a port free at the time of the
// call. The binaries are started on it rather than on :0 because the
// facade logs its addresses at info level only, and bench runs it at warn
// (info logs a line per call).
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitReady polls check until it succeeds, p exits, ctx ends or 15s pass.
func waitReady(ctx context.Context, p *proc, check func() bool) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		if check() {
			return nil
		}
		select {
		case <-p.done:
			return p.exited()
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 15s", p.name)
		}
	}
}

// probeClient is for readiness checks and /metrics only, never for load.
var probeClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func getOK(client *http.Client, url string, header http.Header) bool {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	req.Header = header
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

type sandboxProc struct {
	*proc
	addr string
}

func startSandbox(ctx context.Context, r *registry, path, accountsFile string, probe *user) (*sandboxProc, error) {
	h := http.Header{"Authorization": {probe.basic}}
	return startSandboxWith(ctx, r, path, []string{"--accounts", accountsFile}, func(addr string) bool {
		return getOK(probeClient, "http://"+addr+"/rest/auth", h)
	})
}

// startSandboxWith starts the sandbox with args on a free port and waits
// until ready says it answers.
func startSandboxWith(ctx context.Context, r *registry, path string, args []string, ready func(addr string) bool) (*sandboxProc, error) {
	var lastErr error
	for range 3 { // a free port can be taken by someone else before we use it
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		p, err := r.start("opentact-sandbox", path, append([]string{"--addr", addr}, args...), false)
		if err != nil {
			return nil, err
		}
		if lastErr = waitReady(ctx, p, func() bool { return ready(addr) }); lastErr == nil {
			return &sandboxProc{proc: p, addr: addr}, nil
		}
		r.stop(p)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return nil, fmt.Errorf("starting the sandbox: %w (its log is discarded; run %s %s by hand to see why)", lastErr, path, strings.Join(args, " "))
}

type facadeProc struct {
	*proc
	grpcAddr, httpAddr string
	adminAddr          string // the probes and /metrics
	args               []string
	maxHWM             int64  // the largest VmHWM read before a reset
	floor              string // bench/floor's --mode, when it is that
}

// startFacade starts the facade at log level warn (no line per call)
// against upstream.
func startFacade(ctx context.Context, r *registry, path, upstream string, extra ...string) (*facadeProc, error) {
	var lastErr error
	for range 3 {
		ga, err := freeAddr()
		if err != nil {
			return nil, err
		}
		ha, err := freeAddr()
		if err != nil {
			return nil, err
		}
		aa, err := freeAddr()
		if err != nil {
			return nil, err
		}
		// Every caller comes from 127.0.0.1: the bound per client would
		// be the bound in all.
		args := append([]string{"--grpc-addr", ga, "--http-addr", ha, "--admin-addr", aa, "--upstream", upstream, "--log-level", "warn",
			"--max-connections-per-client=1000000"}, extra...)
		p, err := r.start("opentact-facade", path, args, true)
		if err != nil {
			return nil, err
		}
		if lastErr = waitReady(ctx, p, func() bool { return getOK(probeClient, "http://"+aa+"/readyz", nil) }); lastErr == nil {
			return &facadeProc{proc: p, grpcAddr: ga, httpAddr: ha, adminAddr: aa, args: args}, nil
		}
		r.stop(p)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return nil, fmt.Errorf("starting the facade: %w", lastErr)
}

func (f *facadeProc) pid() int { return f.cmd.Process.Pid }

// rss is the facade's resident set now, in bytes.
func (f *facadeProc) rss() int64 { return statusField(f.pid(), "VmRSS") }

// resetPeak resets the facade's VmHWM (peak RSS) to its RSS now, by
// writing 5 to /proc/<pid>/clear_refs. It reports whether that worked.
func (f *facadeProc) resetPeak() bool {
	f.maxHWM = max(f.maxHWM, statusField(f.pid(), "VmHWM"))
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", f.pid()), []byte("5"), 0); err != nil {
		return false
	}
	// After a reset, the peak is the RSS of the moment (give or take
	// pages touched in between).
	return statusField(f.pid(), "VmHWM") <= statusField(f.pid(), "VmRSS")+(1<<20)
}

// peak is the facade's VmHWM: its peak RSS since start or the last reset.
func (f *facadeProc) peak() int64 { return statusField(f.pid(), "VmHWM") }

// hwmSinceStart is the largest peak RSS seen over the facade's life, across
// resets.
func (f *facadeProc) hwmSinceStart() int64 { return max(f.maxHWM, f.peak()) }

// metric reads one sample of a metric from the facade's /metrics.
func (f *facadeProc) metrics() string {
	req, err := http.NewRequest(http.MethodGet, "http://"+f.adminAddr+"/metrics", nil)
	if err != nil {
		return ""
	}
	// Plain text: a gzip encoder per scrape would be the bench's own cost
	// in the facade's CPU and heap.
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := probeClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return b.String()
}

// metricValue is the value of the first sample named name (without labels)
// in a Prometheus text exposition, or -1.
func metricValue(text, name string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

// cacheMetrics are the samples of every metric whose name mentions a cache.
func cacheMetrics(text string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		name, _, _ := strings.Cut(line, " ")
		name, _, _ = strings.Cut(name, "{")
		if strings.Contains(name, "cache") && !strings.HasPrefix(name, "go_") && !strings.HasSuffix(name, "_bucket") {
			out = append(out, line)
		}
	}
	return out
}

// statusField reads a "kB" field of /proc/<pid>/status, in bytes; 0 if it
// cannot.
func statusField(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// cpuSeconds is the user+system CPU time pid has used, from
// /proc/<pid>/stat (in USER_HZ ticks, 100 per second on Linux).
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; fields after it are
	// counted from its closing parenthesis.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100
}

// selfCPUSeconds is the CPU time bench itself (the load generator) has used.
func selfCPUSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// facadeHasFlags reports whether the facade binary knows every flag named,
// from its -h output, and if not, why.
func facadeHasFlags(path string, names ...string) (bool, string) {
	out, _ := exec.Command(path, "-h").CombinedOutput()
	var missing []string
	for _, n := range names {
		if !bytes.Contains(out, []byte("-"+n+" ")) && !bytes.Contains(out, []byte("-"+n+"\n")) {
			missing = append(missing, "--"+n)
		}
	}
	if len(missing) > 0 {
		return false, "this facade binary has no " + strings.Join(missing, " or ") + " flag"
	}
	return true, ""
}

// answerSize is the size of the sandbox's answer for u, in bytes.
func answerSize(addr string, u *user) int {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/rest/auth", nil)
	if err != nil {
		return 0
	}
	req.Header.Set("Authorization", u.basic)
	resp, err := probeClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return b.Len()
}

// machineBusySeconds is the CPU time all CPUs have spent not idle, from the
// first line of /proc/stat (USER_HZ ticks; guest time is already in user).
func machineBusySeconds() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var busy float64
	for i, s := range f[1:min(len(f), 9)] { // user nice system idle iowait irq softirq steal
		v, _ := strconv.ParseFloat(s, 64)
		if i != 3 && i != 4 { // not idle, not iowait
			busy += v
		}
	}
	return busy / 100
}
