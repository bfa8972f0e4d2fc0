package service

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// BenchmarkAuthResponse measures the payload mapping on Opentact's
// documented 2024 answer (testdata/opentact/auth-2024.json). "map" is
// authResponse alone, on a payload decoded once; "decode+map" adds the
// decoding of the whole answer, as the upstream client does it
// (upstream.DecodeAnswer), and "map+marshal" the proto encoding of the
// answer, for scale.
func BenchmarkAuthResponse(b *testing.B) {
	var u upstream.User
	if err := json.Unmarshal([]byte(payload2024), &u); err != nil {
		b.Fatal(err)
	}
	if authResponse(&u).GetUser().GetEmail() == "" {
		b.Fatal("the documented payload maps to no e-mail")
	}
	b.Run("map", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = authResponse(&u)
		}
	})
	b.Run("decode+map", func(b *testing.B) {
		answer, err := os.ReadFile(filepath.Join("..", "testdata", "opentact", "auth-2024.json"))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			u, err := upstream.DecodeAnswer(upstream.AuthEndpoint, answer)
			if err != nil {
				b.Fatal(err)
			}
			_ = authResponse(u)
		}
	})
	b.Run("map+marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := proto.Marshal(authResponse(&u)); err != nil {
				b.Fatal(err)
			}
		}
	})
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
