package main

import (
	"strings"
	"testing"
)

func TestMappingRows(t *testing.T) {
	micro := `BenchmarkMapping/documented/before/map-2         	  974202	      1000 ns/op	    1218 B/op	      27 allocs/op
BenchmarkMapping/documented/after/map-2          	 2528104	       500.0 ns/op	     736 B/op	       7 allocs/op
BenchmarkMapping/full/before/decode+map-2        	   61538	     20000 ns/op	    5032 B/op	      51 allocs/op
BenchmarkMapping/full/after/decode+map-2         	   33636	     30000 ns/op	   11180 B/op	     125 allocs/op
BenchmarkErrorStatus/404-2                         	  379318	      3029 ns/op	    1160 B/op	      27 allocs/op
`
	var b strings.Builder
	mappingRows(&b, micro)
	for _, want := range []string{
		"| documented | map | 1000 | 500 | 0.50 | 27 → 7 |",
		"| full | decode+map | 20000 | 30000 | 1.50 | 51 → 125 |",
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
