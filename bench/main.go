// Command bench is `make bench`: it starts opentact-sandbox and
// opentact-facade on loopback, drives the same GetAuth work through three
// doors (straight HTTP to the sandbox, the facade over gRPC, the facade over
// REST) at the same concurrency, and writes what it measured, with the
// machine it ran on, to docs/benchmarks.md.
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
	micro            bool
	profile          bool
	profileDir       string
	microTime        string
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&o.facade, "facade", "bin/opentact-facade", "path of the built opentact-facade")
	fs.StringVar(&o.sandbox, "sandbox", "bin/opentact-sandbox", "path of the built opentact-sandbox")
	fs.StringVar(&o.floor, "floor", "", "path of the built bench/floor, for the floor rows; empty to skip them")
	fs.StringVar(&o.out, "out", "docs/benchmarks.md", "Markdown report to write; empty for none")
	fs.StringVar(&o.goCmd, "go", "go", "go command, for the micro-benchmarks")
	fs.DurationVar(&o.duration, "duration", 3*time.Second, "measured time of each load phase")
	fs.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "unmeasured time before each load phase")
	fs.IntVar(&o.users, "users", 5000, "distinct users the distinct-credentials shape rotates over")
	sweep := fs.String("sweep", "1,16,128,512", "concurrency sweep (callers)")
	fs.IntVar(&o.targetCallers, "target-callers", 16, "callers of the target rows")
	fs.IntVar(&o.workersPerConn, "workers-per-conn", 32, "gRPC callers sharing one ClientConn")
	fs.StringVar(&o.cacheTTL, "cache-ttl", "30s", "--cache-ttl of the facade in the cache rows")
	fill := fs.String("cache-fill", "2500,5000,10000,20000", "distinct users filled into the cache, cumulative steps, for the cache memory table")
	fs.IntVar(&o.cacheMaxEntries, "cache-max-entries", 10000, "--cache-max-entries of the facade in the cache memory table")
	fs.IntVar(&o.reruns, "reruns", 8, "phases run again, in all, because other processes took CPU meanwhile")
	fs.BoolVar(&o.micro, "micro", true, "run the Go micro-benchmarks of ./service")
	fs.StringVar(&o.profileDir, "profile-dir", "", "keep the facade's CPU profiles (see -profile) in this directory, for go tool pprof")
	fs.BoolVar(&o.profile, "profile", true, "profile the facade (--debug-addr) in one more phase per facade door, distinct credentials, at -target-callers")
	fs.StringVar(&o.microTime, "micro-benchtime", "1s", "-benchtime of the micro-benchmarks")
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
	switch {
	case o.duration <= 0 || o.warmup < 0:
		return o, errors.New("-duration must be positive and -warmup not negative")
	case o.users < 1 || o.targetCallers < 1 || o.workersPerConn < 1:
		return o, errors.New("-users, -target-callers and -workers-per-conn must be positive")
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

	// Phase 1: the sweep, cache off, both shapes, all three doors.
	fac, err := startFacade(ctx, procs, o.facade, env.upstream)
	if err != nil {
		return err
	}
	if err := env.prime(ctx, fac); err != nil {
		return err
	}
	rep.idleRSS = fac.rss()
	fmt.Printf("facade idle RSS: %s\n\n", mib(rep.idleRSS))
	printHeader()
	// Each facade phase runs in a facade of its own, started for it: Go
	// gives memory back to the system only slowly, so a facade that had
	// just served a heavier phase would carry its resident set into the
	// next phase's peak.
	rep.peakRSSAll = fac.hwmSinceStart()
	measureFresh := func(d doorKind, sh shape, c int) error {
		f := fac
		if d != doorDirect {
			var err error
			if f, err = startFacade(ctx, procs, o.facade, env.upstream); err != nil {
				return err
			}
			defer procs.stop(f.proc)
			if err := env.prime(ctx, f); err != nil {
				return err
			}
		}
		r, err := env.measure(ctx, d, sh, c, f, false)
		if err != nil {
			return err
		}
		rep.add(r)
		rep.peakRSSAll = max(rep.peakRSSAll, f.hwmSinceStart())
		return nil
	}
	for _, c := range o.sweep {
		for _, sh := range []shape{shapeDistinct, shapeSame} {
			for _, d := range []doorKind{doorDirect, doorGRPC, doorREST} {
				if err := measureFresh(d, sh, c); err != nil {
					return err
				}
			}
		}
	}
	// The target rows at targetCallers, if the sweep did not have them.
	for _, sh := range []shape{shapeDistinct, shapeSame} {
		for _, d := range []doorKind{doorDirect, doorGRPC, doorREST} {
			if rep.find(d, sh, o.targetCallers, false) != nil {
				continue
			}
			if err := measureFresh(d, sh, o.targetCallers); err != nil {
				return err
			}
		}
	}
	procs.stop(fac.proc)

	// The floor: bench/floor, the least a facade on this stack can be,
	// through the same doors: forwarding with distinct credentials (the
	// first target row), answering at once with the same (the cache row).
	if o.floor != "" {
		for _, fl := range []struct {
			mode string
			sh   shape
		}{{"forward", shapeDistinct}, {"echo", shapeSame}} {
			f, err := startFacade(ctx, procs, o.floor, env.upstream, "--mode", fl.mode)
			if err != nil {
				return fmt.Errorf("bench/floor: %w", err)
			}
			f.floor = fl.mode
			if err := env.prime(ctx, f); err != nil {
				return fmt.Errorf("bench/floor: %w", err)
			}
			for _, d := range []doorKind{doorGRPC, doorREST} {
				r, err := env.measure(ctx, d, fl.sh, o.targetCallers, f, false)
				if err != nil {
					return err
				}
				rep.add(r)
			}
			procs.stop(f.proc)
		}
	}

	// Where the facade's CPU goes, in a phase of its own per door (the
	// profiler's own cost stays out of the rows above).
	if o.profile {
		dir := tmp
		if o.profileDir != "" {
			if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
				return err
			}
			dir = o.profileDir
		}
		for _, d := range []doorKind{doorGRPC, doorREST} {
			p, err := env.profilePhase(ctx, procs, dir, d, shapeDistinct, o.targetCallers)
			if err != nil {
				return err
			}
			rep.profiles = append(rep.profiles, p)
			fmt.Printf("profiled %s, %s credentials, %d callers: %.0f µs of facade CPU per call\n", d, shapeDistinct, o.targetCallers, p.usPerCall)
		}
	}

	// Phase 2: the same hot account through a facade with its cache on.
	if cacheOK {
		cfac, err := startFacade(ctx, procs, o.facade, env.upstream, "--cache-ttl="+o.cacheTTL)
		if err != nil {
			return err
		}
		if err := env.prime(ctx, cfac); err != nil {
			return err
		}
		for _, d := range []doorKind{doorGRPC, doorREST} {
			r, err := env.measure(ctx, d, shapeSame, o.targetCallers, cfac, true)
			if err != nil {
				return err
			}
			rep.add(r)
		}
		// One caller answered from the cache: the facade's hop with no
		// upstream call behind it, the floor of its added latency.
		if o.targetCallers != 1 {
			for _, d := range []doorKind{doorGRPC, doorREST} {
				r, err := env.measure(ctx, d, shapeSame, 1, cfac, true)
				if err != nil {
					return err
				}
				rep.add(r)
			}
		}
		procs.stop(cfac.proc)

		// Phase 3: what the cache costs in memory.
		if len(o.cacheFill) > 0 {
			mfac, err := startFacade(ctx, procs, o.facade, env.upstream, "--cache-ttl=10m", fmt.Sprintf("--cache-max-entries=%d", o.cacheMaxEntries))
			if err != nil {
				return err
			}
			if rep.cacheMem, err = env.cacheMemory(ctx, mfac); err != nil {
				return err
			}
			procs.stop(mfac.proc)
		}
	} else {
		fmt.Printf("\ncache rows skipped: %s\n", cacheNote)
	}
	procs.stop(sb.proc)

	if o.micro {
		fmt.Println("\nmicro-benchmarks: go test -run '^$' -bench . -benchmem ./service")
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
