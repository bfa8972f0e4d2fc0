package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRunWritesTheReport runs the whole harness, briefly, on freshly built
// binaries: every phase of every group must be measured without errors and
// land in the report, and every process it started must be gone after.
func TestRunWritesTheReport(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three binaries and runs the harness")
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/",
		"../cmd/opentact-facade", "../cmd/opentact-sandbox", "./floor")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	report := filepath.Join(t.TempDir(), "benchmarks.md")
	o, err := parseFlags([]string{
		"-facade", filepath.Join(bin, "opentact-facade"),
		"-sandbox", filepath.Join(bin, "opentact-sandbox"),
		"-floor", filepath.Join(bin, "floor"),
		"-out", report,
		"-sweep", "1,2", "-target-callers", "2", "-rounds", "2",
		"-duration", "300ms", "-warmup", "50ms",
		"-users", "40", "-cache-fill", "10,20",
		"-micro=false", "-profile=false", "-reruns", "0",
		"-delay", "5ms", "-distant-callers", "1,3", "-hot-callers", "4", "-overload-callers", "6",
		// A rate a loaded machine running tests with -race keeps up with.
		"-event-streams", "6", "-event-conns", "2", "-event-rate", "20",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	procs := &registry{}
	err = run(ctx, o, procs)
	procs.mu.Lock()
	for _, p := range procs.procs {
		select {
		case <-p.done:
		default:
			t.Errorf("%s (pid %d) still runs after run returned", p.name, p.cmd.Process.Pid)
		}
	}
	procs.mu.Unlock()
	procs.killAll()
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)

	// The sweep table: callers, credentials, cache, door, calls/s, ratio,
	// p50, p99, errors, ...
	type key struct{ callers, shape, cache, door string }
	rows := map[key][]string{}
	for _, line := range strings.Split(section(t, md, "## Concurrency sweep"), "\n") {
		cells := tableCells(line)
		if len(cells) < 9 || cells[0] == "callers" || strings.HasPrefix(cells[0], "-") {
			continue
		}
		cache := "off"
		if strings.HasPrefix(cells[2], "on") {
			cache = "on"
		}
		rows[key{cells[0], cells[1], cache, cells[3]}] = cells
	}
	want := []key{}
	for _, c := range []string{"1", "2"} {
		for _, sh := range []string{"distinct", "same"} {
			for _, d := range []string{"direct HTTP", "facade gRPC", "facade REST"} {
				want = append(want, key{c, sh, "off", d})
			}
		}
		for _, d := range []string{"facade gRPC", "facade REST"} {
			want = append(want, key{c, "same", "on", d})
		}
	}
	for _, k := range want {
		cells, ok := rows[k]
		if !ok {
			t.Errorf("the sweep has no row %v", k)
			continue
		}
		if n, err := strconv.ParseFloat(cells[4], 64); err != nil || n <= 0 {
			t.Errorf("%v: calls/s %q", k, cells[4])
		}
		if cells[8] != "0" {
			t.Errorf("%v: errors %q, want 0", k, cells[8])
		}
	}
	if len(rows) != len(want) {
		t.Errorf("the sweep has %d rows, want %d (bench/floor's belong in their own table)", len(rows), len(want))
	}

	// The targets and the floor, at the target callers, and the floor at
	// one caller: measured, with numbers.
	for _, label := range []string{"distinct credentials, cache off", "same credentials, cache off", "same credentials, `--cache-ttl=30s`"} {
		if cells := findRow(section(t, md, "## Loopback: ratios to direct"), label); cells == nil || cells[1] == "" || cells[2] == "" || cells[6] == "" {
			t.Errorf("targets: row %q missing or empty: %q", label, cells)
		}
	}
	for _, label := range []string{"**forward**", "**echo**, same"} {
		if cells := findRow(section(t, md, "### The floor of this stack"), label); cells == nil || cells[2] == "" || cells[6] == "" {
			t.Errorf("floor: row %q missing or empty: %q", label, cells)
		}
	}
	for _, label := range []string{"facade gRPC", "facade REST", "floor forward gRPC", "floor forward REST"} {
		if cells := findRow(section(t, md, "## One caller at a time"), label); cells == nil || cells[1] == "" {
			t.Errorf("one caller: row %q missing or empty: %q", label, cells)
		}
	}
	// The distant upstream: every phase measured, with the connections
	// and the upstream requests each door made, and the targets.
	distant := map[key][]string{}
	for _, line := range strings.Split(section(t, md, "## A distant Opentact"), "\n") {
		if cells := tableCells(line); len(cells) == 14 && cells[0] != "callers" && !strings.HasPrefix(cells[0], "-") {
			distant[key{cells[0], cells[1], cells[2], cells[3]}] = cells
		}
	}
	wantDistant := []key{}
	for _, g := range []struct{ callers, shape string }{{"1", "distinct"}, {"3", "distinct"}, {"4", "same"}} {
		for _, d := range []string{"direct HTTP", "facade gRPC", "facade REST"} {
			wantDistant = append(wantDistant, key{g.callers, g.shape, "off", d})
		}
	}
	wantDistant = append(wantDistant, key{"4", "same", "on", "facade gRPC"}, key{"4", "same", "on", "facade REST"}, key{"6", "distinct", "off", "facade gRPC"})
	// bench/floor beside them: forward with distinct credentials, hold at
	// the most distinct callers, echo beside the cache.
	wantFloor := []key{}
	for _, f := range []struct{ callers, shape, mode string }{{"1", "distinct", "forward"}, {"3", "distinct", "forward"}, {"3", "distinct", "hold"}, {"4", "same", "echo"}} {
		for _, d := range []string{"gRPC", "REST"} {
			wantFloor = append(wantFloor, key{f.callers, f.shape, "-", "floor " + f.mode + " " + d})
		}
	}
	if _, ok := distant[key{"1", "distinct", "-", "floor hold gRPC"}]; ok {
		t.Error("the distant table has a hold row at 1 caller, want it at the most distinct callers alone")
	}
	for _, k := range wantFloor {
		cells, ok := distant[k]
		switch {
		case !ok:
			t.Errorf("the distant table has no row %v", k)
		case cells[7] != "0" || cells[4] == "0" || cells[11] == "":
			t.Errorf("distant %v: errors %q, calls/s %q, peak RSS %q", k, cells[7], cells[4], cells[11])
		}
	}
	for _, k := range wantDistant {
		cells, ok := distant[k]
		switch {
		case !ok:
			t.Errorf("the distant table has no row %v", k)
		case cells[7] != "0":
			t.Errorf("distant %v: errors %q, want 0", k, cells[7])
		case cells[4] == "0" || cells[8] == "" || cells[9] == "0" && k.cache == "off" || cells[10] == "":
			t.Errorf("distant %v: calls/s %q, connections opened %q, most open %q, upstream requests per 1,000 calls %q", k, cells[4], cells[8], cells[9], cells[10])
		}
		// One request per call, give or take the calls of a phase's edges
		// that a starved machine spreads over a few dozen calls: shared or
		// cached calls would be far fewer.
		if k.shape == "distinct" && k.door != "direct HTTP" {
			if v, err := strconv.ParseFloat(cells[10], 64); err != nil || v < 500 {
				t.Errorf("distant %v: %q upstream requests per 1,000 calls, want about 1,000 (one per call)", k, cells[10])
			}
		}
	}
	for _, label := range []string{"3 distinct callers", "1 caller", "4 callers, one account, cache off", "loopback, 2 callers"} {
		if cells := findRow(section(t, md, "## Targets"), label); cells == nil || cells[2] == "" || cells[3] == "" {
			t.Errorf("targets: row %q missing or empty: %q", label, cells)
		}
	}
	// The floor's same measure, beside the targets it bounds.
	for _, label := range []string{"3 distinct callers", "1 caller", "4 callers, one account, `--cache-ttl"} {
		if cells := findRow(section(t, md, "## Targets"), label); len(cells) < 7 || !strings.Contains(cells[6], " / ") {
			t.Errorf("targets: row %q has no bench/floor measure: %q", label, cells)
		}
	}
	// The events phase: its first step at least, with deliveries.
	if cells := findRow(section(t, md, "## Events"), "6"); len(cells) < 12 || cells[2] == "0" || cells[8] == "-" {
		t.Errorf("events: no measured row: %q", cells)
	}
	if !strings.Contains(md, "in 2 rounds") {
		t.Error("the method does not say the groups were interleaved in 2 rounds")
	}
}

// section is md from the heading to the next heading of its level or above.
func section(t *testing.T, md, heading string) string {
	t.Helper()
	i := strings.Index(md, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("the report has no %q", heading)
	}
	s := md[i+len(heading)+2:]
	level := strings.Repeat("#", strings.Count(strings.Fields(heading)[0], "#"))
	for _, h := range []string{"\n# ", "\n## ", "\n### "} {
		if len(strings.TrimSpace(h)) > len(level) {
			continue
		}
		if j := strings.Index(s, h); j >= 0 {
			s = s[:j]
		}
	}
	return s
}

// tableCells splits a Markdown table row into trimmed cells, nil if line
// is not one.
func tableCells(line string) []string {
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "|") || !strings.HasSuffix(line, "|") {
		return nil
	}
	cells := strings.Split(line[1:len(line)-1], "|")
	for i := range cells {
		cells[i] = strings.TrimSpace(cells[i])
	}
	return cells
}

// findRow is the first row of the tables in s whose first cell starts
// with label.
func findRow(s, label string) []string {
	for _, line := range strings.Split(s, "\n") {
		if cells := tableCells(line); len(cells) > 1 && strings.HasPrefix(cells[0], label) {
			return cells
		}
	}
	return nil
}
