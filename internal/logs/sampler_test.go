package logs

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestSamplerLetsABurstThroughThenARate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewSampler(10, 5)
		allowed := 0
		for range 100 {
			if ok, _ := s.Allow(); ok {
				allowed++
			}
		}
		if allowed != 5 {
			t.Errorf("%d of 100 lines at once let through, want the burst of 5", allowed)
		}
		time.Sleep(time.Second)
		ok, dropped := s.Allow()
		if !ok || dropped != 95 {
			t.Errorf("a second later: ok %v, dropped %d; want true, 95", ok, dropped)
		}
		allowed = 1
		for range 100 {
			if ok, _ := s.Allow(); ok {
				allowed++
			}
		}
		if allowed > 10 {
			t.Errorf("%d lines let through in the second after, want at most the rate of 10", allowed)
		}
	})
}

func TestSamplerLogSaysWhatItDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out bytes.Buffer
		l := slog.New(slog.NewJSONHandler(&out, nil))
		s := NewSampler(1, 1)
		for range 4 {
			s.Log(context.Background(), l, slog.LevelWarn, "refused", slog.String("k", "v"))
		}
		time.Sleep(time.Second)
		s.Log(context.Background(), l, slog.LevelWarn, "refused")
		s.Log(context.Background(), l, slog.LevelDebug, "not enabled") // takes nothing from the rate
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != 2 || !strings.Contains(lines[0], `"k":"v","suppressed":0`) || !strings.Contains(lines[1], `"suppressed":3`) {
			t.Errorf("lines:\n%s\nwant the first with suppressed 0, the second with the 3 dropped", out.String())
		}
	})
}
