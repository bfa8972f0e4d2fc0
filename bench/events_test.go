package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHistBuckets: buckets are contiguous and each holds its values
// within 1/16.
func TestHistBuckets(t *testing.T) {
	prev := -1
	for _, ns := range []int64{-5, 0, 1, 15, 16, 17, 31, 32, 33, 1000, 123_456, 50_000_000, 1 << 40, 1<<62 + 12345} {
		i := bucketOf(ns)
		if i < prev || i >= histBuckets {
			t.Fatalf("bucketOf(%d) = %d after %d", ns, i, prev)
		}
		prev = i
		if ns < 0 {
			continue
		}
		if mid := bucketMid(i); float64(mid-ns) > float64(ns)/16+1 || float64(ns-mid) > float64(ns)/16+1 {
			t.Errorf("bucketOf(%d)'s middle is %d, more than 1/16 off", ns, mid)
		}
	}
	for i := 16; i < 200; i++ { // no gaps, no overlaps
		if bucketOf(bucketMid(i)) != i {
			t.Errorf("bucket %d's middle %d falls in bucket %d", i, bucketMid(i), bucketOf(bucketMid(i)))
		}
	}
}

func TestHistPercentiles(t *testing.T) {
	var h hist
	if p := h.snap().percentile(0.99); p != 0 {
		t.Errorf("empty p99 = %v", p)
	}
	for range 5 {
		h.record(int64(time.Second)) // before the window
	}
	before := h.snap()
	for i := 1; i <= 1000; i++ {
		h.record(int64(i) * int64(time.Millisecond) / 10) // 0.1 ms .. 100 ms
	}
	d := h.snap().sub(before)
	if n := d.total(); n != 1000 {
		t.Fatalf("total %d, want 1000", n)
	}
	near := func(got, want time.Duration) bool { return got >= want-want/16 && got <= want+want/16 }
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}} {
		if got := d.percentile(tc.p); !near(got, tc.want) {
			t.Errorf("p%v = %v, want %v within 1/16", tc.p*100, got, tc.want)
		}
	}
}

// TestEventFrame: the frame is JSON the facade reads as an sms event,
// with the send time in its message.
func TestEventFrame(t *testing.T) {
	b := eventFrame([]byte("junk"), 1708358760123456789, 42)[4:]
	var f struct {
		Message, Type string
		Payload       struct{ Type, UUID string }
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if n, err := strconv.ParseInt(f.Message, 10, 64); err != nil || n != 1708358760123456789 || f.Type != "sms" || f.Payload.Type != "smso" || f.Payload.UUID != "s42" {
		t.Errorf("frame %s", b)
	}
}

func TestEventsRows(t *testing.T) {
	e := &eventsReport{streams: 1000, conns: 16, baseStreams: 16,
		rssBase: 40 << 20, rssOpen: 40<<20 + 984*20<<10, heapBase: 10 << 20, heapOpen: 10<<20 + 984*10<<10, stackBase: 1 << 20, stackOpen: 1<<20 + 984*8<<10,
		steps: []*eventsStep{
			{rate: 50, sent: 150, deliveries: 150_000, window: 3 * time.Second, p50: 2 * time.Millisecond, p99: 30 * time.Millisecond, cpuFacade: 1.5},
			{rate: 100, sent: 300, deliveries: 240_000, window: 3 * time.Second, p99: 80 * time.Millisecond, ended: 3, cpuOther: 1.5},
		}}
	var b strings.Builder
	e.eventsRows(&b)
	for _, want := range []string{
		"| 1000 | 50 / 50 | 50000 | 2.000 | 30.000 | 0.000 | 0 | 20.0 KiB | 10.0 KiB | 8.0 KiB | 10.0 | 0.50 / 0.00 / 0.00 |",
		"| 1000 | 100 / 100 | 80000 |",
		"| 0.00 / 0.00 / 0.50 ⚠ |",
		"| 50000 deliveries/s, no stream ended, p99 ≤ 50 ms | 50000/s (upstream 50 events/s, p99 30.000 ms, none ended) | met |",
		"| p99 ≤ 50 ms at the target rate (50 events/s × 1000 streams) | 30.000 ms, 50000 deliveries/s, 0 ended | met |",
		"| ≤ 32 KiB RSS per open stream | 20.0 KiB (heap 10.0 KiB, stacks 8.0 KiB) | met |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in:\n%s", want, b.String())
		}
	}
	e.steps[0].p99 = 60 * time.Millisecond
	e.rssOpen = 40<<20 + 984*40<<10
	b.Reset()
	e.eventsRows(&b)
	for _, want := range []string{
		"no step ended no stream with p99 within the target | missed",
		"| 60.000 ms, 50000 deliveries/s, 0 ended | missed |",
		"| 40.0 KiB (heap 10.0 KiB, stacks 8.0 KiB) | missed |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("no %q in:\n%s", want, b.String())
		}
	}
}
