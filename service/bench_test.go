package service

import (
	"context"
	"testing"
	"time"

	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// BenchmarkErrorStatus measures the error mapping (errorStatus, through
// upstreamStatus, to the error GetAuth returns) for typical failures.
func BenchmarkErrorStatus(b *testing.B) {
	ctx := context.Background()
	cases := []struct {
		name string
		err  error
	}{
		{"401_bad_credentials", httpErr(401, "Invalid credentials")},
		{"404", httpErr(404, "Not found")},
		{"429_retry_after", &upstream.Error{Failure: upstream.FailStatus, StatusCode: 429, Message: "Too many requests", RetryAfter: 2 * time.Second}},
		{"503_retried", &upstream.Error{Failure: upstream.FailStatus, StatusCode: 503, Attempts: 3}},
		{"transport", &upstream.Error{Failure: upstream.FailTransport, Attempts: 3}},
		{"circuit_open", &upstream.Error{Failure: upstream.FailCircuitOpen, RetryAfter: 5 * time.Second}},
		{"deadline", context.DeadlineExceeded},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if errorStatus(ctx, c.err).Err() == nil {
					b.Fatal("no error")
				}
			}
		})
	}
}
