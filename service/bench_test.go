package service

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// BenchmarkMapping measures GET /rest/auth's answer from Opentact's
// bytes to the API's message, on two profiles: "documented", Opentact's
// documented 2024 answer (testdata/opentact/auth-2024.json), which
// nothing in it goes unmodelled, and "full" (auth-full.json), with every
// documented field and members carried in other_fields. "before" is the
// decoding and mapping as they were before other_fields
// (baseline_test.go), "after" today's. "map" is the mapping alone, on an
// answer decoded once; "decode+map" adds the decoding of the whole answer.
// make bench reports after / before.
func BenchmarkMapping(b *testing.B) {
	for _, profile := range []struct{ name, file string }{
		{"documented", "auth-2024.json"},
		{"full", "auth-full.json"},
	} {
		answer, err := os.ReadFile(filepath.Join("..", "testdata", "opentact", profile.file))
		if err != nil {
			b.Fatal(err)
		}
		before, err := baseDecode(answer)
		if err != nil {
			b.Fatal(err)
		}
		after, err := upstream.DecodeAnswer(upstream.AuthEndpoint, answer)
		if err != nil {
			b.Fatal(err)
		}
		if baseAuthResponse(before).GetUser().GetEmail() == "" || authResponse(after).GetUser().GetEmail() == "" {
			b.Fatal("the answer maps to no e-mail")
		}
		b.Run(profile.name+"/before/map", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = baseAuthResponse(before)
			}
		})
		b.Run(profile.name+"/after/map", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = authResponse(after)
			}
		})
		b.Run(profile.name+"/before/decode+map", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				u, err := baseDecode(answer)
				if err != nil {
					b.Fatal(err)
				}
				_ = baseAuthResponse(u)
			}
		})
		b.Run(profile.name+"/after/decode+map", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				u, err := upstream.DecodeAnswer(upstream.AuthEndpoint, answer)
				if err != nil {
					b.Fatal(err)
				}
				_ = authResponse(u)
			}
		})
	}
}

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
