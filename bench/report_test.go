package main

import (
	"strings"
	"testing"
	"time"
)

func TestMappingRows(t *testing.T) {
	micro := `BenchmarkMapping/documented/before/decode+map-2  	  974202	      1000 ns/op	    1218 B/op	      27 allocs/op
BenchmarkMapping/documented/after/decode+map-2   	 2528104	       500.0 ns/op	     736 B/op	       7 allocs/op
BenchmarkMapping/full/before/decode+map-2        	   61538	     20000 ns/op	    5032 B/op	      51 allocs/op
BenchmarkMapping/full/after/decode+map-2         	   33636	     30000 ns/op	   11180 B/op	     125 allocs/op
BenchmarkErrorStatus/404-2                         	  379318	      3029 ns/op	    1160 B/op	      27 allocs/op
`
	var b strings.Builder
	mappingRows(&b, micro)
	for _, want := range []string{
		"| documented | 1000 | 500 | 0.50 | 27 → 7 |",
		"| full | 20000 | 30000 | 1.50 | 51 → 125 |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no row %q in:\n%s", want, b.String())
		}
	}
	b.Reset()
	mappingRows(&b, "BenchmarkErrorStatus/404-2 1 2 ns/op 3 B/op 4 allocs/op\n")
	if b.Len() != 0 {
		t.Errorf("a report without BenchmarkMapping has a mapping table: %q", b.String())
	}
}

// TestProfileRowsSetTheFloorBesideTheFacade: each area's µs per call in
// the facade and in the floor of the same door, their difference, and the
// areas only one of them has.
func TestProfileRowsSetTheFloorBesideTheFacade(t *testing.T) {
	rep := &report{profiles: []*profiled{
		{door: doorGRPC, shape: shapeDistinct, callers: 16, usPerCall: 100, areas: []areaShare{
			{area: "gRPC server", share: 0.5}, {area: "metrics", share: 0.5},
		}},
		{door: doorGRPC, shape: shapeDistinct, callers: 16, floor: "forward", usPerCall: 80, areas: []areaShare{
			{area: "gRPC server", share: 0.75}, {area: "other", share: 0.25},
		}},
	}}
	var b strings.Builder
	rep.profileRows(&b)
	for _, want := range []string{
		"floor forward gRPC: 80 µs",
		"| gRPC server | 50.0% | 50 | 60 | -10 |",
		"| metrics | 50.0% | 50 | 0 | +50 |",
		"| other | 0.0% | 0 | 20 | -20 |",
		"| **all** | 100% | 100 | 80 | +20 |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in:\n%s", want, b.String())
		}
	}
	if n := strings.Count(b.String(), "| area |"); n != 1 {
		t.Errorf("%d tables, want one for the facade's one door:\n%s", n, b.String())
	}
}

// TestClassifySeesThroughConnectionWrappers: a system call under the
// rapid-reset guard's Read or Write counts for grpc-go, which made it, as
// in bench/floor, whose connections are bare; the guard's own frame
// inspection still counts as bounds.
func TestClassifySeesThroughConnectionWrappers(t *testing.T) {
	const guard = "github.com/opentact-facade/opentact-facade/internal/netguard.(*guardConn)."
	for _, tc := range []struct {
		stack []string
		want  string
	}{
		{[]string{"internal/runtime/syscall/linux.Syscall6", "syscall.write", "net.(*conn).Write", guard + "writeToBoundary", guard + "Write",
			"bufio.(*Writer).Flush", "google.golang.org/grpc/internal/transport.(*loopyWriter).run"}, "gRPC server (grpc-go, HTTP/2)"},
		{[]string{guard + "inbound", guard + "inspect", guard + "Read", "google.golang.org/grpc/internal/transport.(*http2Server).HandleStreams"},
			"bounds (admission, overload gate, rapid-reset guard)"},
	} {
		if got := classify(tc.stack); got != tc.want {
			t.Errorf("classify(%s...): %q, want %q", tc.stack[0], got, tc.want)
		}
	}
}

// TestFloorBudgetRows: the loopback target as facade CPU per call, from
// the whole path's CPU per call through the floor and through the facade.
func TestFloorBudgetRows(t *testing.T) {
	rep := &report{opts: options{targetCallers: 16}}
	rep.add(&result{door: doorGRPC, shape: shapeDistinct, callers: 16, floor: "forward", calls: 1000, window: time.Second,
		cpuGen: 0.033, cpuSandbox: 0.045, cpuFacade: 0.083})
	rep.add(&result{door: doorGRPC, shape: shapeDistinct, callers: 16, calls: 800, window: time.Second,
		cpuGen: 0.038 * 0.8, cpuSandbox: 0.048 * 0.8, cpuFacade: 0.113 * 0.8})
	var b strings.Builder
	rep.floorBudgetRows(&b)
	// (33 + 45 + 83) / 0.9 = 178.9 for the facade path; the generator and
	// the sandbox take 86 of it.
	want := "| facade gRPC | 33 + 45 + 83 | 38 + 48 + 113 | 0.81 | 0.80 | 93 µs (measured: 113) | +10 µs | +5 µs |"
	if !strings.Contains(b.String(), want) {
		t.Errorf("no %q in:\n%s", want, b.String())
	}
	if strings.Contains(b.String(), "facade REST") {
		t.Errorf("a REST row without REST phases:\n%s", b.String())
	}
}
