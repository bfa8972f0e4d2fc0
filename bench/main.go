// Command bench is `make bench`: it starts opentact-sandbox and
// opentact-facade on loopback, drives the same GetAuth work through three
// doors (straight HTTP to the sandbox, the facade over gRPC, the facade over
// REST) at the same concurrency, measures StreamEvents' fan-out against a
// scripted Opentact of its own (-events, -only events), and writes what it
// measured, with the machine it ran on, to docs/benchmarks.md.
//
//	go run ./bench -facade bin/opentact-facade -sandbox bin/opentact-sandbox -out docs/benchmarks.md
//
// Every process it starts is killed when it returns, fails or is
// interrupted (and, through Pdeathsig, when it is killed itself).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// options are bench's flags.
type options struct {
	facade, sandbox string
	floor           string // bench/floor's binary; empty for no floor rows
	out             string
	goCmd           string

	duration, warmup time.Duration
	users            int
	sweep            []int
	targetCallers    int
	workersPerConn   int
	cacheTTL         string
	cacheFill        []int
	cacheMaxEntries  int
	reruns           int
	rounds           int
	micro            bool
	profile          bool
	profileDir       string
	microTime        string

	distant         bool
	delay           time.Duration
	distantCallers  []int
	hotCallers      int
	overloadCallers int

	events       bool
	eventStreams int
	eventConns   int
	eventRate    int    // upstream events/s of the first step; 0: the target's
	only         string // "events": that phase alone
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&o.facade, "facade", "bin/opentact-facade", "path of the built opentact-facade")
	fs.StringVar(&o.sandbox, "sandbox", "bin/opentact-sandbox", "path of the built opentact-sandbox")
	fs.StringVar(&o.floor, "floor", "", "path of the built bench/floor, for the floor rows; empty to skip them")
	fs.StringVar(&o.out, "out", "docs/benchmarks.md", "Markdown report to write; empty for none")
	fs.StringVar(&o.goCmd, "go", "go", "go command, for the micro-benchmarks")
	fs.DurationVar(&o.duration, "duration", 3*time.Second, "measured time of each load phase, over all its rounds")
	fs.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "unmeasured time before each load phase in its first round (at most 200ms in the later ones)")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds a group of phases is interleaved in: each phase runs -duration/-rounds per round")
	fs.IntVar(&o.users, "users", 5000, "distinct users the distinct-credentials shape rotates over")
	sweep := fs.String("sweep", "1,16,128,512", "concurrency sweep (callers)")
	fs.IntVar(&o.targetCallers, "target-callers", 16, "callers of the target rows")
	fs.IntVar(&o.workersPerConn, "workers-per-conn", 32, "gRPC callers sharing one ClientConn")
	fs.StringVar(&o.cacheTTL, "cache-ttl", "30s", "--cache-ttl of the facade in the cache rows")
	fill := fs.String("cache-fill", "2500,5000,10000,20000", "distinct users filled into the cache, cumulative steps, for the cache memory table")
	fs.IntVar(&o.cacheMaxEntries, "cache-max-entries", 10000, "--cache-max-entries of the facade in the cache memory table")
	fs.IntVar(&o.reruns, "reruns", 8, "groups of phases run again, in all, because other processes took CPU meanwhile")
	fs.BoolVar(&o.micro, "micro", true, "run the Go micro-benchmarks: the payload decoding, the error mapping, the JSON codecs and the overload")
	fs.StringVar(&o.profileDir, "profile-dir", "", "keep the CPU profiles (see -profile) in this directory, for go tool pprof")
	fs.BoolVar(&o.profile, "profile", true, "profile the facade (--debug-addr), and bench/floor's forward mode with -floor, in one more phase per door each, distinct credentials, at -target-callers")
	fs.StringVar(&o.microTime, "micro-benchtime", "1s", "-benchtime of the micro-benchmarks")
	fs.BoolVar(&o.distant, "distant", true, "measure against a distant upstream too: the sandbox over TLS (HTTP/2 offered), answering -delay after each request")
	fs.DurationVar(&o.delay, "delay", 40*time.Millisecond, "the distant sandbox's delay per answer")
	distantCallers := fs.String("distant-callers", "1,256,2048", "callers of the distant phases with distinct credentials")
	fs.IntVar(&o.hotCallers, "hot-callers", 512, "callers of the distant phases on one hot account (cache off and on)")
	fs.IntVar(&o.overloadCallers, "overload-callers", 20000, "callers of the distant overload phase (facade gRPC alone); 0 to skip it")
	fs.BoolVar(&o.events, "events", true, "measure StreamEvents: one upstream socket fanned out to -event-streams streams of one user")
	fs.IntVar(&o.eventStreams, "event-streams", 1000, "streams of the events phase")
	fs.IntVar(&o.eventConns, "event-conns", 16, "gRPC ClientConns the event streams are spread over")
	fs.IntVar(&o.eventRate, "event-rate", 0, "upstream events/s of the events phase's first step, doubled each step; 0 for the target's (50,000 deliveries/s over -event-streams)")
	fs.StringVar(&o.only, "only", "", "run one phase alone: \"events\" (the report then has that section only)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if o.sweep, err = intList(*sweep); err != nil {
		return o, fmt.Errorf("-sweep: %w", err)
	}
	if o.cacheFill, err = intList(*fill); err != nil {
		return o, fmt.Errorf("-cache-fill: %w", err)
	}
	if o.distantCallers, err = intList(*distantCallers); err != nil {
		return o, fmt.Errorf("-distant-callers: %w", err)
	}
	switch {
	case o.duration <= 0 || o.warmup < 0:
		return o, errors.New("-duration must be positive and -warmup not negative")
	case o.users < 1 || o.targetCallers < 1 || o.workersPerConn < 1 || o.rounds < 1:
		return o, errors.New("-users, -target-callers, -workers-per-conn and -rounds must be positive")
	case o.eventStreams < 1 || o.eventConns < 1 || o.eventRate < 0:
		return o, errors.New("-event-streams and -event-conns must be positive, -event-rate not negative")
	case o.only != "" && o.only != "events":
		return o, fmt.Errorf("-only %q: the one phase that runs alone is events", o.only)
	case o.only == "events" && !o.events:
		return o, errors.New("-only events with -events=false runs nothing")
	}
	return o, nil
}

func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	procs := &registry{}
	err = run(ctx, o, procs)
	procs.killAll()
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, procs *registry) error {
	started := time.Now()
	for _, p := range []*string{&o.facade, &o.sandbox, &o.floor} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("%w (run `make build` first)", err)
		}
		*p = abs
	}
	tmp, err := os.MkdirTemp("", "opentact-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	rep := &report{started: started, opts: o, machine: describeMachine(o.facade)}
	fmt.Printf("machine: %s, %d CPUs, GOMAXPROCS %d, %s, %s\nfacade: %s\n\n",
		rep.machine.cpu, rep.machine.nproc, rep.machine.gomaxprocs, rep.machine.goVersion, rep.machine.kernel, rep.machine.facadeVersion)
	if o.only == "events" {
		if rep.events, err = runEvents(ctx, o, procs, o.profileDir); err != nil {
			return err
		}
		return rep.finish(started)
	}

	nAccounts := o.users
	for _, n := range o.cacheFill {
		nAccounts = max(nAccounts, n)
	}
	users, accountsFile, err := writeAccounts(tmp, nAccounts)
	if err != nil {
		return err
	}
	sb, err := startSandbox(ctx, procs, o.sandbox, accountsFile, users[0])
	if err != nil {
		return err
	}
	rep.accounts = nAccounts
	rep.answerBytes = answerSize(sb.addr, users[0])
	env := &bench{opts: o, users: users, sandbox: sb, upstream: "http://" + sb.addr, reruns: o.reruns}

	cacheOK, cacheNote := facadeHasFlags(o.facade, "cache-ttl", "cache-max-entries")
	rep.cacheNote = cacheNote

	// Phase 1: the sweep. The phases of one group (a number of callers and
	// a shape) are measured together, interleaved (bench.interleave), so
	// that the ratios between them hold up on a machine whose speed
	// drifts: the three doors with the cache off; at the target callers
	// and at one, bench/floor's doors too (forward with distinct credentials, echo
	// with the same); with the same credentials, at the target callers and
	// at one, the doors of a facade with its cache on.
	fac, err := startFacade(ctx, procs, o.facade, env.upstream)
	if err != nil {
		return err
	}
	if err := env.prime(ctx, fac); err != nil {
		return err
	}
	rep.idleRSS = fac.rss()
	rep.peakRSSAll = fac.hwmSinceStart()
	procs.stop(fac.proc)
	fmt.Printf("facade idle RSS: %s\n\n", mib(rep.idleRSS))
	printHeader()
	measureGroup := func(sh shape, c int) error {
		// Each facade lane runs in a facade of its own, started for the
		// group: Go gives memory back to the system only slowly, so a
		// facade that had just served a heavier phase would carry its
		// resident set into the next phase's peak.
		start, stop := env.groupFacades(ctx, procs)
		defer stop()
		lanes := []lane{{door: doorDirect}}
		for _, d := range []doorKind{doorGRPC, doorREST} {
			f, err := start(o.facade)
			if err != nil {
				return err
			}
			lanes = append(lanes, lane{door: d, fac: f})
		}
		if o.floor != "" && (c == o.targetCallers || c == 1) {
			mode := "forward"
			if sh == shapeSame {
				mode = "echo"
			}
			f, err := start(o.floor, "--mode", mode)
			if err != nil {
				return fmt.Errorf("bench/floor: %w", err)
			}
			f.floor = mode
			lanes = append(lanes, lane{door: doorGRPC, fac: f}, lane{door: doorREST, fac: f})
		}
		if cacheOK && sh == shapeSame && (c == o.targetCallers || c == 1) {
			for _, d := range []doorKind{doorGRPC, doorREST} {
				f, err := start(o.facade, "--cache-ttl="+o.cacheTTL)
				if err != nil {
					return err
				}
				lanes = append(lanes, lane{door: d, fac: f, cache: true})
			}
		}
		rs, err := env.measure(ctx, sh, c, lanes...)
		if err != nil {
			return err
		}
		for i, r := range rs {
			rep.add(r)
			if l := lanes[i]; l.door != doorDirect && !l.cache && l.fac.floor == "" {
				rep.peakRSSAll = max(rep.peakRSSAll, l.fac.hwmSinceStart())
			}
		}
		return nil
	}
	callers := o.sweep
	if !slices.Contains(callers, o.targetCallers) {
		callers = append(slices.Clone(callers), o.targetCallers)
	}
	for _, c := range callers {
		for _, sh := range []shape{shapeDistinct, shapeSame} {
			if err := measureGroup(sh, c); err != nil {
				return err
			}
		}
	}
	if !cacheOK {
		fmt.Printf("\ncache rows skipped: %s\n", cacheNote)
	}

	// Where the facade's CPU goes, in a phase of its own per door (the
	// profiler's own cost stays out of the rows above), and the floor's
	// beside it: the difference is what the facade adds.
	if o.profile {
		dir := tmp
		if o.profileDir != "" {
			if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
				return err
			}
			dir = o.profileDir
		}
		for _, d := range []doorKind{doorGRPC, doorREST} {
			for _, floor := range []bool{false, true} {
				if floor && o.floor == "" {
					continue
				}
				p, err := env.profilePhase(ctx, procs, dir, d, shapeDistinct, o.targetCallers, floor)
				if err != nil {
					return err
				}
				rep.profiles = append(rep.profiles, p)
				fmt.Printf("profiled %s, %s credentials, %d callers: %.0f µs of CPU per call\n", p.label(), shapeDistinct, o.targetCallers, p.usPerCall)
			}
		}
	}

	// Phase 2: a distant upstream.
	if o.distant {
		if err := runDistant(ctx, o, procs, rep, tmp, users, accountsFile, cacheOK); err != nil {
			return err
		}
	}

	// Phase 3: what the cache costs in memory.
	if cacheOK && len(o.cacheFill) > 0 {
		mfac, err := startFacade(ctx, procs, o.facade, env.upstream, "--cache-ttl=10m", fmt.Sprintf("--cache-max-entries=%d", o.cacheMaxEntries))
		if err != nil {
			return err
		}
		if rep.cacheMem, err = env.cacheMemory(ctx, mfac); err != nil {
			return err
		}
		procs.stop(mfac.proc)
	}
	procs.stop(sb.proc)

	// Phase 4: event streams, against an upstream of their own.
	if o.events {
		if rep.events, err = runEvents(ctx, o, procs, o.profileDir); err != nil {
			return err
		}
	}

	if o.micro {
		fmt.Println("\nmicro-benchmarks: Mapping (./internal/codec), the error mapping (./internal/apierr), RESTAnswer (./internal/rest), Overload (./internal/server)")
		out, err := runMicro(ctx, o.goCmd, o.microTime)
		if err != nil {
			return err
		}
		rep.micro = out
		fmt.Print(out)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return rep.finish(started)
}

// finish prints the summary and writes the report.
func (rep *report) finish(started time.Time) error {
	o := rep.opts
	rep.elapsed = time.Since(started)
	rep.printSummary(os.Stdout)
	if o.out != "" {
		if err := rep.write(o.out); err != nil {
			return err
		}
		fmt.Printf("\nwrote %s\n", o.out)
	}
	fmt.Printf("total time %s\n", rep.elapsed.Round(time.Second))
	return nil
}

// mib formats a byte count in MiB.
func mib(b int64) string {
	if b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}
