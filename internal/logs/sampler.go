package logs

import (
	"context"
	"log/slog"
	"sync/atomic"

	"golang.org/x/time/rate"
)

// Sampler rate-limits log lines that a client can cause in floods (calls
// refused, streams reset), so that an attacker cannot fill the disk. The
// lines it drops are counted, and the next line it lets through says how
// many.
type Sampler struct {
	limit   *rate.Limiter
	dropped atomic.Int64
}

// NewSampler lets through perSecond lines a second on average, and bursts
// of up to burst lines.
func NewSampler(perSecond float64, burst int) *Sampler {
	return &Sampler{limit: rate.NewLimiter(rate.Limit(perSecond), burst)}
}

// Allow reports whether a line may be written now and, if so, how many
// were dropped since the last one that was.
func (s *Sampler) Allow() (ok bool, dropped int64) {
	if !s.limit.Allow() {
		s.dropped.Add(1)
		return false, 0
	}
	return true, s.dropped.Swap(0)
}

// Log writes msg with attrs to l at level, if that level is enabled and
// the rate allows, with the count of lines dropped since the last one
// ("suppressed").
func (s *Sampler) Log(ctx context.Context, l *slog.Logger, level slog.Level, msg string, attrs ...slog.Attr) {
	if !l.Enabled(ctx, level) {
		return
	}
	if ok, dropped := s.Allow(); ok {
		l.LogAttrs(ctx, level, msg, append(attrs, slog.Int64("suppressed", dropped))...)
	}
}
