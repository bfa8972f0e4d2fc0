package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

// The targets: throughput ratios facade/direct at targetCallers.
type target struct {
	label       string
	shape       shape
	cache       bool
	grpc, rest  float64
	description string
}

var targets = []target{
	{"distinct credentials, cache off", shapeDistinct, false, 0.5, 0.4, ""},
	{"same credentials, cache off", shapeSame, false, 1.2, 1.0, ""},
	{"same credentials, `--cache-ttl`", shapeSame, true, 2.5, 2.0, ""},
}

const (
	targetP50Delta = 100 * time.Microsecond // one caller: facade p50 - direct p50
	targetPeakRSS  = 48 << 20               // at 512 gRPC callers
)

type machine struct {
	date, cpu, kernel, goVersion, facadeVersion, commit string
	nproc, gomaxprocs                                   int
}

func describeMachine(facade string) machine {
	m := machine{
		date:       time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		cpu:        "unknown",
		nproc:      runtime.NumCPU(),
		gomaxprocs: runtime.GOMAXPROCS(0),
		goVersion:  runtime.Version(),
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		m.kernel = utsString(u.Sysname[:]) + " " + utsString(u.Release[:]) + " " + utsString(u.Machine[:])
	}
	if out, err := exec.Command(facade, "--version").Output(); err == nil {
		m.facadeVersion = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
		m.commit = strings.TrimSpace(string(out))
	}
	return m
}

func utsString(b []int8) string {
	var s []byte
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}

// report gathers every measurement for the summary and the Markdown file.
type report struct {
	started     time.Time
	elapsed     time.Duration
	opts        options
	machine     machine
	results     []*result
	idleRSS     int64
	peakRSSAll  int64
	cacheNote   string // why the cache rows were skipped, if they were
	cacheMem    []memStep
	micro       string
	profiles    []*profiled
	accounts    int           // in the sandbox's accounts file
	answerBytes int           // size of one sandbox answer for a generated user
	delay       time.Duration // the distant sandbox's; 0 if not measured
	events      *eventsReport // nil if not measured
}

func (rep *report) add(r *result) { rep.results = append(rep.results, r) }

func (rep *report) find(d doorKind, sh shape, c int, cache bool) *result {
	for _, r := range rep.results {
		if r.door == d && r.shape == sh && r.callers == c && r.cache == cache && r.floor == "" && !r.distant {
			return r
		}
	}
	return nil
}

// findFloor is bench/floor's row in mode through door d with c callers.
func (rep *report) findFloor(mode string, d doorKind, c int) *result {
	for _, r := range rep.results {
		if r.floor == mode && r.door == d && r.callers == c && !r.distant {
			return r
		}
	}
	return nil
}

// ms formats a duration in milliseconds.
func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond)) }

// usPerCall is CPU microseconds per measured call.
func usPerCall(cpu float64, r *result) string {
	if r.calls == 0 || cpu <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", cpu*1e6/float64(r.calls))
}

func printHeader() {
	fmt.Printf("%-7s %-8s %-6s %-12s %10s %9s %9s %8s %9s  %s\n",
		"callers", "shape", "cache", "door", "calls/s", "p50 ms", "p99 ms", "errors", "peak RSS", "CPU cores gen/facade/sandbox/others")
}

func printResult(r *result) {
	cache := "off"
	if r.cache {
		cache = "on"
	}
	errs := fmt.Sprint(r.errs)
	if r.flagged() {
		errs += "!"
	}
	rss := "-"
	if r.door != doorDirect {
		rss = mib(r.peakRSS)
	}
	fmt.Printf("%-7d %-8s %-6s %-12s %10.0f %9s %9s %8s %9s  %.2f/%.2f/%.2f/%.2f\n",
		r.callers, r.shape, cache, r.label(), r.throughput(), ms(r.p50), ms(r.p99), errs, rss,
		r.cpuGen/r.window.Seconds(), r.cpuFacade/r.window.Seconds(), r.cpuSandbox/r.window.Seconds(), r.cpuOther/r.window.Seconds())
	if r.flagged() && r.firstErr != "" {
		fmt.Printf("        first error: %s\n", r.firstErr)
	}
}

func printMemStep(s memStep) {
	fmt.Printf("  %6d users: RSS %s, heap in use %s", s.users, mib(s.rss), mib(s.heapInuse))
	if len(s.cacheMetrics) > 0 {
		fmt.Printf(", %s", strings.Join(s.cacheMetrics, "; "))
	}
	fmt.Println()
}

// ratio is facade throughput over direct throughput, or 0.
func ratio(facade, direct *result) float64 {
	if facade == nil || direct == nil || direct.calls == 0 {
		return 0
	}
	return facade.throughput() / direct.throughput()
}

func verdict(got, want float64, ok bool) string {
	switch {
	case !ok:
		return "n/a"
	case got >= want:
		return "PASS"
	default:
		return "MISS"
	}
}

// errNote flags a phase whose error rate is over 0.1%.
func errNote(rs ...*result) string {
	var notes []string
	for _, r := range rs {
		if r != nil && r.flagged() {
			notes = append(notes, fmt.Sprintf("%s: %.2f%% errors", r.door, 100*r.errRate()))
		}
	}
	if len(notes) == 0 {
		return ""
	}
	return " ⚠ " + strings.Join(notes, ", ")
}

// targetRows is the targets table, in Markdown.
func (rep *report) targetRows(w io.Writer) {
	c := rep.opts.targetCallers
	fmt.Fprintf(w, "| %d callers | direct HTTP calls/s | facade gRPC calls/s | gRPC / direct | retired target | | facade REST calls/s | REST / direct | retired target | |\n", c)
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |")
	for _, t := range targets {
		direct := rep.find(doorDirect, t.shape, c, false)
		g := rep.find(doorGRPC, t.shape, c, t.cache)
		r := rep.find(doorREST, t.shape, c, t.cache)
		label := t.label
		if t.cache {
			label = strings.Replace(label, "`--cache-ttl`", "`--cache-ttl="+rep.opts.cacheTTL+"`", 1)
		}
		if g == nil || r == nil || direct == nil {
			note := "not measured"
			if t.cache && rep.cacheNote != "" {
				note = "skipped: " + rep.cacheNote
			}
			fmt.Fprintf(w, "| %s | | | | ≥ %.1f | %s | | | ≥ %.1f | %s |\n", label, t.grpc, note, t.rest, note)
			continue
		}
		rg, rr := ratio(g, direct), ratio(r, direct)
		fmt.Fprintf(w, "| %s%s | %.0f | %.0f | %.2f | ≥ %.1f | %s | %.0f | %.2f | ≥ %.1f | %s |\n",
			label, errNote(direct, g, r), direct.throughput(), g.throughput(), rg, t.grpc, verdict(rg, t.grpc, !g.flagged()),
			r.throughput(), rr, t.rest, verdict(rr, t.rest, !r.flagged()))
	}
}

// perCall is CPU seconds per measured call.
func perCall(cpu float64, r *result) float64 {
	if r == nil || r.calls == 0 {
		return 0
	}
	return cpu / float64(r.calls)
}

// ceilingRows bounds what the targets table can show on this harness: the
// load generator and the sandbox share the CPUs with the facade, so even a
// facade that cost no CPU at all would reach at most
// (generator + sandbox CPU per direct call) / (generator + sandbox CPU per
// facade call), when the machine is CPU-bound.
func (rep *report) ceilingRows(w io.Writer) {
	c := rep.opts.targetCallers
	fmt.Fprintln(w, "| row | CPU µs per call, direct: generator + sandbox | gRPC: generator + sandbox (+ facade) | REST: generator + sandbox (+ facade) | gRPC / direct ceiling | REST / direct ceiling | facade CPU per call the gRPC target allows | the REST target allows |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, t := range targets {
		direct := rep.find(doorDirect, t.shape, c, false)
		g := rep.find(doorGRPC, t.shape, c, t.cache)
		r := rep.find(doorREST, t.shape, c, t.cache)
		if g == nil || r == nil || direct == nil {
			continue
		}
		us := func(v float64) float64 { return v * 1e6 }
		d := perCall(direct.cpuGen+direct.cpuSandbox, direct)
		gs, rs := perCall(g.cpuGen+g.cpuSandbox, g), perCall(r.cpuGen+r.cpuSandbox, r)
		ceil := func(x float64) string {
			if x <= 0 {
				return "-"
			}
			return fmt.Sprintf("%.2f", d/x)
		}
		// At ratio t, the whole path may cost d/t per call; what the
		// generator and the sandbox take of it leaves the facade the rest.
		budget := func(ratio, rest float64) string {
			b := d/ratio - rest
			if b <= 0 {
				return "none"
			}
			return fmt.Sprintf("%.0f µs", us(b))
		}
		fmt.Fprintf(w, "| %s | %.0f + %.0f | %.0f + %.0f (+ %.0f) | %.0f + %.0f (+ %.0f) | %s | %s | %s | %s |\n", t.label,
			us(perCall(direct.cpuGen, direct)), us(perCall(direct.cpuSandbox, direct)),
			us(perCall(g.cpuGen, g)), us(perCall(g.cpuSandbox, g)), us(perCall(g.cpuFacade, g)),
			us(perCall(r.cpuGen, r)), us(perCall(r.cpuSandbox, r)), us(perCall(r.cpuFacade, r)),
			ceil(gs), ceil(rs), budget(t.grpc, gs), budget(t.rest, rs))
	}
}

// floorTarget is the loopback target: the facade's throughput at least
// this much of bench/floor forward's, through each door.
const floorTarget = 0.9

// floorBudgetRows turns the loopback target into a budget of facade CPU
// per call, as ceilingRows does for the retired ones: when the machine is
// CPU-bound, throughput goes as the inverse of the whole path's CPU per
// call (generator + sandbox + the facade or the floor), so at the target
// the facade path may cost the floor path's over floorTarget.
func (rep *report) floorBudgetRows(w io.Writer) {
	c := rep.opts.targetCallers
	fmt.Fprintf(w, "| %d callers, distinct credentials | floor path, µs per call: generator + sandbox + floor | facade path: generator + sandbox + facade | CPU ratio, floor path ÷ facade path | measured throughput ratio | facade CPU per call the target allows | of it, beyond the floor's own CPU | the generator's extra on the facade path |\n", c)
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	us := func(v float64) float64 { return v * 1e6 }
	for _, d := range []doorKind{doorGRPC, doorREST} {
		f, x := rep.findFloor("forward", d, c), rep.find(d, shapeDistinct, c, false)
		if f == nil || x == nil || f.calls == 0 || x.calls == 0 {
			continue
		}
		floorOwn, facadeOwn := perCall(f.cpuFacade, f), perCall(x.cpuFacade, x)
		floorPath := perCall(f.cpuGen+f.cpuSandbox, f) + floorOwn
		rest := perCall(x.cpuGen+x.cpuSandbox, x)
		budget := floorPath/floorTarget - rest
		fmt.Fprintf(w, "| %s | %.0f + %.0f + %.0f | %.0f + %.0f + %.0f | %.2f | %.2f | %.0f µs (measured: %.0f) | %+.0f µs | %+.0f µs |\n", d,
			us(perCall(f.cpuGen, f)), us(perCall(f.cpuSandbox, f)), us(floorOwn),
			us(perCall(x.cpuGen, x)), us(perCall(x.cpuSandbox, x)), us(facadeOwn),
			floorPath/(rest+facadeOwn), x.throughput()/f.throughput(),
			us(budget), us(facadeOwn), us(budget-floorOwn),
			us(perCall(x.cpuGen, x)-perCall(f.cpuGen, f)))
	}
}

// floorRows sets bench/floor (the least a facade on this stack can be)
// beside the facade, against the targets its two modes stand for.
func (rep *report) floorRows(w io.Writer) {
	c := rep.opts.targetCallers
	fmt.Fprintf(w, "| %d callers | direct HTTP calls/s | floor gRPC calls/s | floor gRPC / direct | facade gRPC / direct | gRPC target | floor REST calls/s | floor REST / direct | facade REST / direct | REST target | floor CPU µs per call, gRPC / REST |\n", c)
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, row := range []struct {
		mode, label string
		t           target
	}{
		{"forward", "**forward**, distinct credentials: one upstream request per call (against: distinct credentials, cache off)", targets[0]},
		{"echo", "**echo**, same credentials: no upstream call (against: same credentials, cache off, as if every call shared another's request)", targets[1]},
		{"echo", "**echo**, the same phase (against: `--cache-ttl`)", targets[2]},
	} {
		direct := rep.find(doorDirect, row.t.shape, c, false)
		fg, fr := rep.findFloor(row.mode, doorGRPC, rep.opts.targetCallers), rep.findFloor(row.mode, doorREST, rep.opts.targetCallers)
		g, r := rep.find(doorGRPC, row.t.shape, c, row.t.cache), rep.find(doorREST, row.t.shape, c, row.t.cache)
		if direct == nil || fg == nil || fr == nil {
			continue
		}
		facade := func(x *result) string {
			if x == nil {
				return "-"
			}
			return fmt.Sprintf("%.2f", ratio(x, direct))
		}
		fmt.Fprintf(w, "| %s%s | %.0f | %.0f | %.2f | %s | ≥ %.1f | %.0f | %.2f | %s | ≥ %.1f | %s / %s |\n",
			row.label, errNote(fg, fr), direct.throughput(),
			fg.throughput(), ratio(fg, direct), facade(g), row.t.grpc,
			fr.throughput(), ratio(fr, direct), facade(r), row.t.rest,
			usPerCall(fg.cpuFacade, fg), usPerCall(fr.cpuFacade, fr))
	}
}

// p50Rows compares one caller's median latency through each door.
func (rep *report) p50Rows(w io.Writer) {
	direct := rep.find(doorDirect, shapeDistinct, 1, false)
	fmt.Fprintln(w, "| door (1 caller, distinct credentials, cache off) | p50 ms | p99 ms | p50 − direct p50, ms | target | |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | --- |")
	if direct == nil {
		fmt.Fprintln(w, "| not measured (the sweep has no 1) | | | | | |")
		return
	}
	fmt.Fprintf(w, "| direct HTTP%s | %s | %s | | | |\n", errNote(direct), ms(direct.p50), ms(direct.p99))
	for _, d := range []doorKind{doorGRPC, doorREST} {
		r := rep.find(d, shapeDistinct, 1, false)
		if r == nil {
			continue
		}
		delta := r.p50 - direct.p50
		v := "PASS"
		if delta > targetP50Delta {
			v = "MISS"
		}
		fmt.Fprintf(w, "| %s%s | %s | %s | %+.3f | ≤ %.1f | %s |\n", d, errNote(r), ms(r.p50), ms(r.p99), float64(delta)/1e6, float64(targetP50Delta)/1e6, v)
	}
	// bench/floor forwarding, one caller: the least this stack adds.
	for _, d := range []doorKind{doorGRPC, doorREST} {
		if r := rep.findFloor("forward", d, 1); r != nil {
			fmt.Fprintf(w, "| %s%s | %s | %s | %+.3f | | floor |\n", r.label(), errNote(r), ms(r.p50), ms(r.p99), float64(r.p50-direct.p50)/1e6)
		}
	}
	// The floor: one caller answered from the cache, no upstream call.
	var floor []string
	for _, d := range []doorKind{doorGRPC, doorREST} {
		if r := rep.find(d, shapeSame, 1, true); r != nil {
			floor = append(floor, fmt.Sprintf("%s %s ms (p99 %s ms)", d, ms(r.p50), ms(r.p99)))
		}
	}
	if len(floor) > 0 {
		fmt.Fprintf(w, "\nThe floor of that difference: one caller answered from the cache (`--cache-ttl`), so that no upstream call is made at all, has a p50 of %s. That is the facade's own hop (the caller's gRPC or HTTP round trip to the facade, and the facade's work), which every call through the facade pays on top of the upstream's round trip.\n", strings.Join(floor, ", "))
	}
	var echo []string
	for _, d := range []doorKind{doorGRPC, doorREST} {
		if r := rep.findFloor("echo", d, 1); r != nil {
			echo = append(echo, fmt.Sprintf("%s %s ms (p99 %s ms)", r.label(), ms(r.p50), ms(r.p99)))
		}
	}
	if len(echo) > 0 {
		fmt.Fprintf(w, "\nThe *floor forward* rows are `bench/floor` (see the floor of this stack, above) forwarding each call to the sandbox, measured with the rows above: the least a facade built on grpc-go, grpc-gateway and net/http adds here. Its echo, answering without calling the sandbox, one caller: %s.\n", strings.Join(echo, ", "))
	}
}

func (rep *report) sweepRows(w io.Writer) {
	fmt.Fprintln(w, "| callers | credentials | cache | door | calls/s | ratio to direct | p50 ms | p99 ms | errors | facade peak RSS | CPU µs per call: generator / facade / sandbox | CPU cores used: generator / facade / sandbox / other processes |")
	fmt.Fprintln(w, "| ---: | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, r := range rep.results {
		if r.floor != "" || r.distant {
			continue // in the floor table, or the distant one
		}
		cache := "off"
		if r.cache {
			cache = "on (" + rep.opts.cacheTTL + ")"
		}
		rat, rss := "", ""
		if r.door != doorDirect {
			rat = fmt.Sprintf("%.2f", ratio(r, rep.find(doorDirect, r.shape, r.callers, false)))
			rss = mib(r.peakRSS)
			if !r.peakReset {
				rss += " (since start)"
			}
		}
		errs := fmt.Sprint(r.errs)
		if r.flagged() {
			errs = fmt.Sprintf("**%d (%.2f%%)** ⚠", r.errs, 100*r.errRate())
		}
		other := fmt.Sprintf("%.2f", r.cpuOther/r.window.Seconds())
		if r.noisy {
			other = "**" + other + "** ⚠"
		}
		fmt.Fprintf(w, "| %d | %s | %s | %s | %.0f | %s | %s | %s | %s | %s | %s / %s / %s | %.2f / %.2f / %.2f / %s |\n",
			r.callers, r.shape, cache, r.door, r.throughput(), rat, ms(r.p50), ms(r.p99), errs, rss,
			usPerCall(r.cpuGen, r), usPerCall(r.cpuFacade, r), usPerCall(r.cpuSandbox, r),
			r.cpuGen/r.window.Seconds(), r.cpuFacade/r.window.Seconds(), r.cpuSandbox/r.window.Seconds(), other)
	}
}

// peak512 is the largest facade peak RSS over the gRPC phases at 512
// callers (or the largest sweep concurrency).
func (rep *report) peakRows(w io.Writer) {
	top := slicesMax(rep.opts.sweep)
	fmt.Fprintln(w, "| what | RSS | target | |")
	fmt.Fprintln(w, "| --- | ---: | ---: | --- |")
	fmt.Fprintf(w, "| facade idle, after one call per door | %s | | |\n", mib(rep.idleRSS))
	for _, sh := range []shape{shapeDistinct, shapeSame} {
		for _, d := range []doorKind{doorGRPC, doorREST} {
			r := rep.find(d, sh, top, false)
			if r == nil {
				continue
			}
			tgt, v := "", ""
			if d == doorGRPC && top == 512 {
				tgt, v = "≤ 48 MiB", "PASS"
				if r.peakRSS > targetPeakRSS {
					v = "MISS"
				}
			}
			fmt.Fprintf(w, "| peak during %d callers, %s credentials, %s | %s | %s | %s |\n", top, sh, d, mib(r.peakRSS), tgt, v)
		}
	}
	fmt.Fprintf(w, "| peak over the whole sweep (cache off) | %s | | |\n", mib(rep.peakRSSAll))
}

func (rep *report) cacheRows(w io.Writer) {
	if rep.cacheNote != "" {
		fmt.Fprintf(w, "Skipped: %s.\n", rep.cacheNote)
		return
	}
	if len(rep.cacheMem) == 0 {
		fmt.Fprintln(w, "Not measured.")
		return
	}
	base := rep.cacheMem[0]
	fmt.Fprintln(w, "| distinct users called | facade RSS | RSS − RSS with 1 user | heap in use | cache metrics |")
	fmt.Fprintln(w, "| ---: | ---: | ---: | ---: | --- |")
	for _, s := range rep.cacheMem {
		fmt.Fprintf(w, "| %d | %s | %s | %s | %s |\n", s.users, mib(s.rss), mibSigned(s.rss-base.rss), mib(s.heapInuse), "`"+strings.Join(s.cacheMetrics, "`, `")+"`")
	}
	// Per 1,000 entries: from the last step that does not exceed the cap.
	maxEntries := rep.opts.cacheMaxEntries
	var at *memStep
	for i := range rep.cacheMem[1:] {
		if s := &rep.cacheMem[i+1]; s.users <= maxEntries {
			at = s
		}
	}
	if at == nil {
		return
	}
	per1000 := float64(at.rss-base.rss) / float64(at.users-base.users) * 1000
	heap1000 := float64(at.heapInuse-base.heapInuse) / float64(at.users-base.users) * 1000
	worst := at
	for i := range rep.cacheMem {
		if s := &rep.cacheMem[i]; s.rss > worst.rss {
			worst = s
		}
	}
	fmt.Fprintf(w, "\nAnswers of %d bytes of JSON (the documented 2024 shape, JWT included). From 1 to %d users: **%s of RSS per 1,000 entries** (%s of heap in use), so %s for a full cache of %d entries (`--cache-max-entries`) over the facade with one entry. ",
		rep.answerBytes, at.users, mibSigned(int64(per1000)), mibSigned(int64(heap1000)), mibSigned(int64(per1000*float64(maxEntries)/1000)), maxEntries)
	last := rep.cacheMem[len(rep.cacheMem)-1]
	if last.users > maxEntries {
		fmt.Fprintf(w, "Churning %d distinct users through it (more than the cap, so entries are evicted) moves heap in use by %s and RSS by %s over the full-cache step. ",
			last.users, mibSigned(last.heapInuse-at.heapInuse), mibSigned(last.rss-at.rss))
	}
	fmt.Fprintf(w, "**Worst case measured: RSS %s, %s over the facade with one entry** (after %d users).\n", mib(worst.rss), mibSigned(worst.rss-base.rss), worst.users)
	fmt.Fprintln(w, "\nRSS counts what the Go heap holds in reserve too (with GOGC=100 the heap grows to about twice what is live before a collection), so it overstates the entries' own size; heap in use is read without forcing a collection, so it holds some garbage.")
}

func mibSigned(b int64) string {
	return fmt.Sprintf("%+.1f MiB", float64(b)/(1<<20))
}

func slicesMax(s []int) int {
	m := 0
	for _, v := range s {
		m = max(m, v)
	}
	return m
}

// otherLoad summarises the CPU other processes took during the phases.
func (rep *report) otherLoad() string {
	var sum, top float64
	for _, r := range rep.results {
		c := r.cpuOther / r.window.Seconds()
		sum += c
		top = max(top, c)
	}
	if len(rep.results) == 0 {
		return "n/a"
	}
	s := fmt.Sprintf("mean %.2f cores, at most %.2f", sum/float64(len(rep.results)), top)
	noisy := 0
	for _, r := range rep.results {
		if r.noisy {
			noisy++
		}
	}
	if noisy > 0 {
		s += fmt.Sprintf(" ⚠ the machine was not quiet: %d phases (⚠ in the sweep) kept more than %.2f cores of other load after %d reruns of their group, and had less CPU than the others", noisy, noisyCores, rep.opts.reruns)
	}
	return s
}

// printSummary prints the target tables to stdout (the phases were
// printed as they ran).
func (rep *report) printSummary(w io.Writer) {
	if rep.events != nil {
		fmt.Fprintln(w, "\nevents:")
		rep.events.eventsRows(w)
	}
	if rep.opts.only == "events" {
		return
	}
	fmt.Fprintln(w, "\nCPU used by other processes:", rep.otherLoad())
	if rep.delay > 0 {
		fmt.Fprintln(w, "\ntargets:")
		rep.distantTargets(w)
	}
	fmt.Fprintln(w, "\nloopback ratios:")
	rep.targetRows(w)
	fmt.Fprintln(w, "\nceilings (a facade that cost no CPU, on this harness):")
	rep.ceilingRows(w)
	if rep.opts.floor != "" {
		fmt.Fprintln(w, "\nthe floor (bench/floor):")
		rep.floorRows(w)
	}
	fmt.Fprintln(w, "\none caller:")
	rep.p50Rows(w)
	fmt.Fprintln(w, "\nmemory:")
	rep.peakRows(w)
	fmt.Fprintln(w)
	rep.cacheRows(w)
}

func (rep *report) write(path string) error {
	var b bytes.Buffer
	m := rep.machine
	o := rep.opts
	fmt.Fprintf(&b, "# Benchmarks\n\nGenerated by `make bench` on %s; do not edit. Rerun `make bench` to regenerate it.\n\n", m.date)
	fmt.Fprintln(&b, "## Machine")
	fmt.Fprintln(&b)
	fmt.Fprintf(&b, "| | |\n| --- | --- |\n")
	fmt.Fprintf(&b, "| CPU | %s |\n| CPUs (nproc) | %d |\n| GOMAXPROCS (load generator; the binaries default to the same) | %d |\n", m.cpu, m.nproc, m.gomaxprocs)
	fmt.Fprintf(&b, "| kernel | %s |\n| Go (load generator) | %s |\n| facade binary | `%s` |\n| commit | `%s` |\n", m.kernel, m.goVersion, m.facadeVersion, m.commit)
	fmt.Fprintf(&b, "| total run time | %s |\n", rep.elapsed.Round(time.Second))
	fmt.Fprintf(&b, "| CPU used by other processes during the measured windows | %s |\n\n", rep.otherLoad())
	if o.only == "events" {
		rep.eventsSection(&b)
		return writeFile(path, b.Bytes())
	}

	fmt.Fprintln(&b, "## Method")
	fmt.Fprintln(&b)
	fmt.Fprintf(&b, `- Everything runs on this one machine, on loopback: `+"`opentact-sandbox`"+` as the upstream (loaded with %d generated accounts whose profiles have the documented 2024 shape; it signs a fresh HS256 JWT for every answer and logs a line per request, to /dev/null), `+"`opentact-facade`"+` pointed at it with `+"`--log-level warn`"+`, and the load generator (this program, `+"`bench/`"+`) in its own process.
- Three doors, the same work through each: **direct HTTP** is `+"`GET /rest/auth`"+` straight to the sandbox; **facade gRPC** is `+"`GetAuth`"+` through the generated client, the credential as per-call metadata, one `+"`ClientConn`"+` per %d callers; **facade REST** is `+"`GET /v1/auth`"+` on the gateway. Both HTTP doors use the same client: Go's `+"`net/http`"+`, HTTP/1.1 keep-alive, one connection per caller. Every answer is checked: HTTP 200 (or gRPC OK) and the caller's own e-mail in the profile; anything else counts as an error.
- Credentials: `+"`Authorization: Basic base64(email:password)`"+`. **distinct**: caller i's call j is user (i·⌊U/N⌋ + j) mod U over U = %d users, so no two callers use one user at once and nothing can be shared; **same**: every call is one user (a hot account).
- Closed loop: N callers (goroutines), each calling back to back, %s measured per phase. Throughput is the calls completed within the measured time over its length; p50 and p99 are exact, from every latency in it, sorted.
- Interleaved: this VM's speed drifts, by a third from one minute to the next, so the phases compared with each other (a group: one number of callers and one shape, every door, and at %d callers and at 1 bench/floor and, with the same credentials, the cache rows too) are measured together, in %d rounds: each round gives every phase of the group %s after a warm-up (%s in the first round, %s after), the next round starting one phase further on. A phase's numbers sum its rounds, and the drift falls on every phase of the group alike.
- Cache rows: facades with `+"`--cache-ttl=%s`"+`, same credentials, measured with the same-credentials group of their number of callers; their ratios are against that group's direct row.
- Peak RSS is the facade's `+"`VmHWM`"+`, over the phase: each facade phase runs in a facade process of its own, started for its group and primed with a few calls (Go returns freed memory to the system only slowly, so a facade reused from a heavier phase would carry its resident set into the next peak), and only that phase's door reaches it. CPU is each process's user+system time over the measured time (`+"`/proc/<pid>/stat`"+`, getrusage for the generator).
- **The load generator shares the %d CPUs** with the facade and the sandbox, so the ratios are of whole-machine throughput (caller + facade + upstream), not of the facade alone, and the generator's cost differs by door (its gRPC client costs more CPU per call than its HTTP client); the CPU columns show how the time was split, and the ceilings below what that allows.
`, rep.accounts, o.workersPerConn, o.users, o.duration, o.targetCallers, o.rounds, o.duration/time.Duration(o.rounds), o.warmup, min(o.warmup, laterWarmup), o.cacheTTL, m.nproc)
	fmt.Fprintln(&b)

	if rep.delay > 0 {
		fmt.Fprintf(&b, "## Targets\n\nAgainst a distant upstream (the next section), and on loopback against `bench/floor`; one run, each ratio between phases measured together, interleaved. A row with more than 0.1%% errors in any of its phases is *not measured*. The last column is `bench/floor`'s same measure in the same group, where it ran: a target the floor misses is out of reach here for any facade on this stack.\n\n")
		rep.distantTargets(&b)
		fmt.Fprintf(&b, "\n## A distant Opentact\n\nThe sandbox serves TLS with a throwaway CA that the facade (`--upstream-ca`) and the direct door trust, offers HTTP/2 and HTTP/1.1, and answers each request %s after it arrives (`--delay`), as an Opentact tens of milliseconds away would. **direct** is Go's HTTP client as a backend would set it up to call Opentact: `http.DefaultTransport` (HTTP/2) trusting the CA. The facade doors are as on loopback; the facades run with their default bounds but `--max-connections=%d` (every REST caller holds a connection of its own). Connections opened and the most open at once are the direct door's own, counted at its dialer, and the facade's, from `opentact_upstream_connections_opened_total` and the gauge `opentact_upstream_connections_open` sampled every 100 ms. Upstream requests per 1,000 calls are from `opentact_upstream_requests_total` (direct sends one per call). The groups are: distinct credentials at %s callers, one hot account at %d callers with the cache off and on, and an overload of %d callers through facade gRPC alone, which must be refused or queued, not grow without bound. One caller makes only one call per answer, so its phases run %d× as long (%s each), for a steadier p50. Beside the facade, `bench/floor` (see the floor of this stack, below) runs in the same groups: *forward* with distinct credentials (one net/http request per call, Go's transport trusting the CA), *hold* at the most callers (echo after the same delay, with no upstream connection: the least memory holding that many calls costs), and *echo* beside the cache; it has no /metrics, so its connection and upstream columns are empty.\n\n",
			rep.delay, max(4096, o.overloadCallers+64), joinInts(o.distantCallers), o.hotCallers, o.overloadCallers, oneCallerStretch, o.duration*oneCallerStretch)
		rep.distantRows(&b)
		fmt.Fprintln(&b)
	}
	fmt.Fprintf(&b, "## Loopback: ratios to direct\n\n%d callers, throughput ratios facade / direct HTTP, against the sandbox on loopback, which answers in a fraction of a millisecond. The targets in this table were set before the floor below showed them out of reach here, and are retired: what they measure is the facade's efficiency, and the target that stays is the floor ratio above.\n\n", o.targetCallers)
	rep.targetRows(&b)
	fmt.Fprintf(&b, "\nWhat this harness lets those ratios reach. The load generator and the sandbox run on the same CPUs as the facade; when the machine is CPU-bound, even a facade that cost no CPU at all would reach at most the ceiling below: the direct path's CPU per call (generator + sandbox) over the facade path's CPU per call without the facade's own (generator + what reached the sandbox). A target above its ceiling cannot be met on this machine whatever the facade does; a faster upstream makes the ceiling lower, a slower (real) one higher. An estimate: CPU per call includes the Go scheduler's spinning while goroutines wait, which weighs more per call at low throughput, so the ceilings of slow rows come out low; the cache row (no upstream call, highest throughput) is the firmest. The last two columns turn each target into a budget: the facade CPU per call that would leave the whole path cheap enough for the target, to set against the facade's measured CPU per call (in brackets) and against what its parts cost (the next section: a gRPC or HTTP server for the caller, an HTTP client for the upstream).\n\n")
	rep.ceilingRows(&b)
	if o.floor != "" {
		fmt.Fprintf(&b, "\n### The floor of this stack\n\n`bench/floor` is the least a facade built on this stack can be: a grpc-go server and grpc-gateway in the process, with default settings, and nothing else. **forward** makes one plain `net/http` request per call to the sandbox, decodes the answer with the facade's own decoder and answers with the e-mail alone; **echo** answers with the e-mail of the caller's Basic credential, without calling the sandbox, as a cache hit would. Neither has interceptors, logs, metrics, traces, retries, a circuit breaker, bounds, sharing, or any mapping beyond the e-mail, so a real facade on these libraries does more per call than the floor does; a target the floor misses on this machine is out of reach here for any facade built on them. Echo also bounds the same-credentials row: a facade whose every call shared another's upstream request could at best answer at once; how many calls do share depends on how long the upstream takes, and the loopback sandbox answers in a fraction of a millisecond, so few calls arrive while one is under way (its CPU per call in the ceilings table shows how many reached it). Measured in the same run, interleaved with the facade and direct phases of the same group, through the same doors, against the same direct rows as the targets; *facade* is `opentact-facade`'s ratio in the targets table.\n\n")
		rep.floorRows(&b)
	}
	fmt.Fprintf(&b, "\n## One caller at a time\n\nThe facade's own hop: p50 through the facade minus p50 straight to the sandbox.\n\n")
	rep.p50Rows(&b)
	fmt.Fprintf(&b, "\n## Concurrency sweep\n\nEvery phase, group by group (sweep at %s callers, each number of callers with distinct then the same credentials; a group's phases were interleaved). ⚠ marks more than 0.1%% errors, or other processes taking more than %.2f cores (a group is run again when they do, up to %d reruns in all; the quietest run is kept).\n\n", joinInts(o.sweep), noisyCores, o.reruns)
	rep.sweepRows(&b)
	fmt.Fprintf(&b, "\n## Where the facade's time goes\n\n")
	if o.floor != "" {
		fmt.Fprintf(&b, "What the loopback target (%.1f of `bench/floor` forward's throughput) leaves the facade, from the %d-caller rows above. The machine is CPU-bound there, so throughput goes as the inverse of the whole path's CPU per call; at the target the facade path may cost the floor path's ÷ %.1f, and what the generator and the sandbox take of that leaves the facade the rest. The generator costs more on the facade path: it decodes the whole profile where the floor answers the e-mail alone.\n\n", floorTarget, o.targetCallers, floorTarget)
		rep.floorBudgetRows(&b)
		fmt.Fprintln(&b)
	}
	rep.profileRows(&b)
	fmt.Fprintf(&b, "\n## Memory\n\n")
	rep.peakRows(&b)
	fmt.Fprintf(&b, "\n### Cache\n\nA facade with `--cache-ttl=10m --cache-max-entries=%d`, called over gRPC by 64 callers, each distinct user once; RSS read 0.5s after each step.\n\n", o.cacheMaxEntries)
	rep.cacheRows(&b)
	rep.eventsSection(&b)
	fmt.Fprintf(&b, "\n## Micro-benchmarks\n\n`go test -run '^$' -benchmem -benchtime %s`: `-bench Mapping` in `./internal/codec` (Opentact's payload to its message, by the codec and by the typed structs it replaced), `-bench ErrorStatus` in `./internal/apierr` (the error mapping), `-bench RESTAnswer` in `./internal/rest` (the REST answer, by the gateway's marshaler) and `-bench Overload` in `./internal/server` (an overloaded facade: Opentact serving 4 requests at a time, 200 ms each, calls arriving at 30 times that rate with 1 s deadlines for 3 s, with the calls answered per second as a share of Opentact's capacity, `goodput-%%`, the requests whose answers no caller could use, `wasted-%%`, the calls refused early, `shed-%%`, and the median time of a call answered, `p50-ms`); run after the load phases, once the sandbox and the facades are stopped.\n\n", o.microTime)
	if rep.micro == "" {
		fmt.Fprintln(&b, "Not run (`-micro=false`).")
	} else {
		mappingRows(&b, rep.micro)
		fmt.Fprintf(&b, "```\n%s```\n", rep.micro)
	}
	return writeFile(path, b.Bytes())
}

func writeFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// eventsSection is "## Events", if the phase ran.
func (rep *report) eventsSection(b *bytes.Buffer) {
	e := rep.events
	if e == nil {
		return
	}
	o := rep.opts
	fmt.Fprintf(b, "\n## Events\n\n`StreamEvents` fanned out: a scripted Opentact in the load generator's process answers `GET /rest/auth` for one user and serves the events WebSocket (it checks the auth frame, answers it, then writes `sms` event frames of %d bytes at a set rate, each with its send time in the event's `message`); the facade (`--events-url` pointed at it) keeps one socket to it for that user (%d opened in all) and fans each frame out to %d streams of the user, opened over %d gRPC ClientConns, each read by a goroutine of its own. Deliveries per second are events received by the streams in the measured window (%s per step, after %s), p50/p99/max are from the upstream's write of the frame to the client's receipt of the event (one clock: both are in the load generator), in log-linear buckets (within 6%%). The upstream rate starts at the target (%d deliveries/s ÷ streams) and doubles each step, until a stream is ended or deliveries fall below 90%% of what was offered; a stream 256 events behind is ended with RESOURCE_EXHAUSTED. Memory: the facade's RSS (`/proc/<pid>/status`), Go heap in use and goroutine stacks (its /metrics) with one stream per ClientConn open (the socket up) and with all %d open and idle, each read after a forced GC (`/debug/pprof/heap?gc=1`) and 0.5 s; per stream is the difference over the %d streams opened in between. Facade CPU per delivery is its user+system time over the window over the deliveries; the load generator (upstream and clients) shares the %d CPUs. The facade idles at %.3f cores with the streams open. ⚠ marks a step in which other processes took more than %.2f cores: its latencies are the machine's, not the facade's.\n\n",
		len(eventFrame(nil, time.Now().UnixNano(), 1)), e.upstreamSockets, e.streams, e.conns, o.duration, max(o.warmup, 500*time.Millisecond), targetDeliveries, e.streams, e.streams-e.baseStreams, rep.machine.nproc, e.facadeCPUIdleCores, noisyCores)
	e.eventsRows(b)
	if e.top != "" {
		fmt.Fprintf(b, "\nThe facade's CPU profile over the profiled step (`go tool pprof -top`):\n\n```\n%s```\n", e.top)
	}
}

// mappingRows puts BenchmarkMapping's before and after side by side: the
// payload of GET /rest/auth's answer to its message, by the typed structs
// and mapping the codec replaced and by the codec.
func mappingRows(w io.Writer, micro string) {
	type result struct{ ns, allocs float64 }
	got := map[string]result{}
	var keys []string
	for _, line := range strings.Split(micro, "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || !strings.HasPrefix(f[0], "BenchmarkMapping/") || f[3] != "ns/op" || f[7] != "allocs/op" {
			continue
		}
		name := strings.TrimPrefix(f[0], "BenchmarkMapping/")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			name = name[:i] // the -GOMAXPROCS suffix
		}
		var r result
		if _, err := fmt.Sscan(f[2], &r.ns); err != nil {
			continue
		}
		if _, err := fmt.Sscan(f[6], &r.allocs); err != nil {
			continue
		}
		got[name] = r
		if strings.HasSuffix(name, "/before/decode+map") {
			keys = append(keys, name)
		}
	}
	if len(keys) == 0 {
		return
	}
	fmt.Fprintf(w, "### Decoding, before and after the codec\n\n`BenchmarkMapping` in `./internal/codec`: the payload of GET /rest/auth's answer to GetAuth's message. *documented* is Opentact's documented answer, which has nothing unmodelled; *full* has every documented field and members carried in `other_fields`. *before* is the typed structs and mapping the codec replaced (kept in `bench/legacy`), *after* the codec.\n\n")
	fmt.Fprintf(w, "| profile | before ns/op | after ns/op | after / before | allocs before → after |\n| --- | ---: | ---: | ---: | ---: |\n")
	for _, k := range keys {
		before, after := got[k], got[strings.Replace(k, "/before/", "/after/", 1)]
		if after.ns == 0 {
			continue
		}
		profile, _, _ := strings.Cut(k, "/before/")
		fmt.Fprintf(w, "| %s | %.0f | %.0f | %.2f | %.0f → %.0f |\n", profile, before.ns, after.ns, after.ns/before.ns, before.allocs, after.allocs)
	}
	fmt.Fprintln(w)
}

func joinInts(s []int) string {
	var parts []string
	for _, v := range s {
		parts = append(parts, fmt.Sprint(v))
	}
	return strings.Join(parts, ", ")
}

// runMicro runs the service package's benchmarks and returns their output.
func runMicro(ctx context.Context, goCmd, benchtime string) (string, error) {
	var all strings.Builder
	for _, m := range microBenchmarks {
		cmd := exec.CommandContext(ctx, goCmd, "test", "-run", "^$", "-bench", m.pattern, "-benchmem", "-benchtime", benchtime, m.pkg)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("micro-benchmarks of %s: %w\n%s", m.pkg, err, out)
		}
		all.Write(out)
	}
	return all.String(), nil
}

// microBenchmarks are the Go benchmarks the report runs: the payload's
// decoding and the error mapping, the REST answer's encoding, and the
// facade's goodput under overload, a figure that depends on the machine's
// speed and so is measured here rather than asserted by a test.
var microBenchmarks = []struct{ pkg, pattern string }{
	{"./internal/codec", "^BenchmarkMapping$"},
	{"./internal/apierr", "^BenchmarkErrorStatus$"},
	{"./internal/rest", "^BenchmarkRESTAnswer$"},
	{"./internal/server", "^BenchmarkOverload$"},
}

func (rep *report) profileRows(w io.Writer) {
	if len(rep.profiles) == 0 {
		fmt.Fprintln(w, "Not profiled (`-profile=false`).")
		return
	}
	fmt.Fprintf(w, "The CPU profile (`--debug-addr`, `/debug/pprof/profile`) of the facade, and of `bench/floor` in forward mode beside it, over the measured window of one more phase per door and process, unreported above, %d× as long as the others, with distinct credentials: every call goes to the sandbox. Each sample is put down to the first frame, from the leaf up, that belongs to an area (so a system call counts for the code that made it, and an allocation for the code that asked for it); `bench/profile.go` lists the frames of each area. µs per call is the area's share of the process's CPU per call in that phase; the last column is what the facade spends in the area beyond what the floor does. An area's figure moves by a few µs per call from one run to the next (the profiler samples 100 times a second), more than the total does.\n\n", profileStretch)
	for _, p := range rep.profiles {
		if p.floor != "" {
			continue
		}
		var fl *profiled
		for _, q := range rep.profiles {
			if q.floor != "" && q.door == p.door && q.shape == p.shape && q.callers == p.callers {
				fl = q
			}
		}
		fmt.Fprintf(w, "**%s, %s credentials, %d callers**: %.0f µs of facade CPU per call, %s of samples", p.door, p.shape, p.callers, p.usPerCall, p.total)
		if fl != nil {
			fmt.Fprintf(w, "; %s: %.0f µs, %s of samples", fl.label(), fl.usPerCall, fl.total)
		}
		fmt.Fprint(w, ".\n\n")
		if fl == nil {
			fmt.Fprintf(w, "| area | share | µs per call |\n| --- | ---: | ---: |\n")
			for _, a := range p.areas {
				fmt.Fprintf(w, "| %s | %.1f%% | %.0f |\n", a.area, a.share*100, a.share*p.usPerCall)
			}
		} else {
			fmt.Fprintf(w, "| area | facade share | facade µs per call | floor µs per call | facade − floor |\n| --- | ---: | ---: | ---: | ---: |\n")
			names := make([]string, 0, len(p.areas)+len(fl.areas))
			for _, a := range p.areas {
				names = append(names, a.area)
			}
			for _, a := range fl.areas {
				if !slices.Contains(names, a.area) {
					names = append(names, a.area)
				}
			}
			for _, n := range names {
				fmt.Fprintf(w, "| %s | %.1f%% | %.0f | %.0f | %+.0f |\n", n, p.share(n)*100, p.us(n), fl.us(n), p.us(n)-fl.us(n))
			}
			fmt.Fprintf(w, "| **all** | 100%% | %.0f | %.0f | %+.0f |\n", p.usPerCall, fl.usPerCall, p.usPerCall-fl.usPerCall)
		}
		fmt.Fprintf(w, "\n<details><summary><code>go tool pprof -top -nodecount=25</code>, the facade</summary>\n\n```\n%s```\n\n</details>\n\n", p.top)
		if fl != nil {
			fmt.Fprintf(w, "<details><summary><code>go tool pprof -top -nodecount=25</code>, %s</summary>\n\n```\n%s```\n\n</details>\n\n", fl.label(), fl.top)
		}
	}
}

// findDistant is the distant phase of door d, shape sh, c callers.
func (rep *report) findDistant(d doorKind, sh shape, c int, cache bool) *result {
	return rep.findDistantFloor("", d, sh, c, cache)
}

// findDistantFloor is the distant phase of bench/floor's mode (the facade's
// when mode is empty).
func (rep *report) findDistantFloor(mode string, d doorKind, sh shape, c int, cache bool) *result {
	for _, r := range rep.results {
		if r.distant && r.floor == mode && r.door == d && r.shape == sh && r.callers == c && r.cache == cache {
			return r
		}
	}
	return nil
}

// distantTargets is the targets table of a distant upstream, and the
// loopback floor ratio, in Markdown.
func (rep *report) distantTargets(w io.Writer) {
	o := rep.opts
	fmt.Fprintln(w, "| shape | measure | facade gRPC | facade REST | target | | `bench/floor`, gRPC / REST |")
	fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: | --- | ---: |")
	// floor, the last column, is the same measure of bench/floor where it
	// ran: what the least facade on this stack reached in the same group.
	row := func(shape, measure string, g, r float64, ok bool, format, target string, pass func(float64) bool, floor string) {
		if !ok {
			fmt.Fprintf(w, "| %s | %s | | | %s | not measured | %s |\n", shape, measure, target, floor)
			return
		}
		v := "PASS"
		if !pass(g) || !pass(r) {
			v = "MISS"
		}
		fmt.Fprintf(w, "| %s | %s | "+format+" | "+format+" | %s | %s | %s |\n", shape, measure, g, r, target, v, floor)
	}
	// floorOf formats f of bench/floor's mode, gRPC and REST, in group
	// (sh, c), or is empty.
	floorOf := func(mode string, sh shape, c int, format string, f func(g, r *result) (float64, float64)) string {
		g, r := rep.findDistantFloor(mode, doorGRPC, sh, c, false), rep.findDistantFloor(mode, doorREST, sh, c, false)
		if g == nil || r == nil || g.flagged() || r.flagged() {
			return ""
		}
		a, b := f(g, r)
		return fmt.Sprintf(mode+" "+format+" / "+format, a, b)
	}
	toDirect := func(d *result) func(g, r *result) (float64, float64) {
		return func(g, r *result) (float64, float64) { return ratio(g, d), ratio(r, d) }
	}
	rss := func(g, r *result) (float64, float64) {
		return float64(g.peakRSS) / (1 << 20), float64(r.peakRSS) / (1 << 20)
	}
	// when is s for a row whose facade phases were measured.
	when := func(ok bool, s string) string {
		if ok {
			return s
		}
		return ""
	}
	atLeast := func(t float64) func(float64) bool { return func(v float64) bool { return v >= t } }
	atMost := func(t float64) func(float64) bool { return func(v float64) bool { return v <= t } }
	doors := func(sh shape, c int, cache bool) (d, g, r *result, ok bool) {
		d, g, r = rep.findDistant(doorDirect, sh, c, false), rep.findDistant(doorGRPC, sh, c, cache), rep.findDistant(doorREST, sh, c, cache)
		return d, g, r, d != nil && g != nil && r != nil && !d.flagged() && !g.flagged() && !r.flagged()
	}
	for _, c := range o.distantCallers {
		d, g, r, ok := doors(shapeDistinct, c, false)
		if c == 1 {
			var dg, dr float64
			var floor string
			if ok {
				added := func(g, r *result) (float64, float64) {
					return float64(g.p50-d.p50) / float64(time.Millisecond), float64(r.p50-d.p50) / float64(time.Millisecond)
				}
				dg, dr = added(g, r)
				floor = floorOf("forward", shapeDistinct, c, "%+.3f", added)
			}
			row("1 caller, distinct credentials", "p50 added over direct, ms", dg, dr, ok, "%+.3f", "≤ 0.3", atMost(0.3), floor)
			continue
		}
		label := fmt.Sprintf("%d distinct callers", c)
		row(label, "throughput ÷ direct's", ratio(g, d), ratio(r, d), ok, "%.2f", "≥ 1", atLeast(1), when(ok, floorOf("forward", shapeDistinct, c, "%.2f", toDirect(d))))
		if c >= 2048 {
			row(label, "most connections open to the upstream at once", g.upOpen, r.upOpen, ok, "%.0f", "≤ 16", atMost(16), "")
			floor := when(ok, strings.Join(slices.DeleteFunc([]string{floorOf("hold", shapeDistinct, c, "%.1f", rss), floorOf("forward", shapeDistinct, c, "%.1f", rss)}, func(s string) bool { return s == "" }), "; "))
			gm, rm := rss(g, r)
			row(label, "facade peak RSS, MiB", gm, rm, ok, "%.1f", "≤ 64", atMost(64), floor)
		}
	}
	if h := o.hotCallers; h > 0 {
		label := fmt.Sprintf("%d callers, one account, cache off", h)
		d, g, r, ok := doors(shapeSame, h, false)
		row(label, "upstream requests per 1,000 calls", g.upPer1000(), r.upPer1000(), ok, "%.1f", "≤ 5", atMost(5), "")
		row(label, "throughput ÷ direct's", ratio(g, d), ratio(r, d), ok, "%.2f", "≥ 1", atLeast(1), "")
		d, g, r, ok = doors(shapeSame, h, true)
		row(fmt.Sprintf("%d callers, one account, `--cache-ttl=%s`", h, o.cacheTTL), "throughput ÷ direct's", ratio(g, d), ratio(r, d), ok, "%.2f", "≥ 4", atLeast(4),
			when(ok, floorOf("echo", shapeSame, h, "%.2f", toDirect(d))))
	}
	c := o.targetCallers
	fg, fr := rep.findFloor("forward", doorGRPC, c), rep.findFloor("forward", doorREST, c)
	g, r := rep.find(doorGRPC, shapeDistinct, c, false), rep.find(doorREST, shapeDistinct, c, false)
	ok := fg != nil && fr != nil && g != nil && r != nil && fg.calls > 0 && fr.calls > 0
	var rg, rr float64
	if ok {
		rg, rr = g.throughput()/fg.throughput(), r.throughput()/fr.throughput()
	}
	row(fmt.Sprintf("loopback, %d callers, distinct credentials", c), "throughput ÷ `bench/floor` forward's", rg, rr, ok, "%.2f", fmt.Sprintf("≥ %.1f", floorTarget), atLeast(floorTarget), "")
}

// distantRows is every distant phase, in Markdown.
func (rep *report) distantRows(w io.Writer) {
	fmt.Fprintln(w, "| callers | credentials | cache | door | calls/s | p50 ms | p99 ms | errors | connections opened to the upstream | most open at once | upstream requests per 1,000 calls | facade peak RSS | facade CPU µs per call | facade stacks / heap in use, calls in flight |")
	fmt.Fprintln(w, "| ---: | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, r := range rep.results {
		if !r.distant {
			continue
		}
		cache, rss, cpu, mem := "off", "", "", ""
		if r.cache {
			cache = "on"
		}
		upOpened, upOpen, up := fmt.Sprintf("%.0f", r.upOpened), fmt.Sprintf("%.0f", r.upOpen), fmt.Sprintf("%.1f", r.upPer1000())
		if r.door != doorDirect {
			rss, cpu = mib(r.peakRSS), usPerCall(r.cpuFacade, r)
			mem = mib(int64(r.stackInuse)) + " / " + mib(int64(r.heapInuse))
		}
		if r.floor != "" {
			cache, upOpened, upOpen, up, mem = "-", "", "", "", "" // bench/floor has no cache, no /metrics
		}
		errs := fmt.Sprint(r.errs)
		if r.flagged() {
			errs = fmt.Sprintf("%d ⚠ (%.1f%%: %.120s)", r.errs, 100*r.errRate(), r.firstErr)
		}
		fmt.Fprintf(w, "| %d | %s | %s | %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.callers, r.shape, cache, r.label(), r.throughput(), ms(r.p50), ms(r.p99), errs, upOpened, upOpen, up, rss, cpu, mem)
	}
}
