package logs

import (
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
