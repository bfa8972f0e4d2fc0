package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/server"
)

// BenchmarkGetAuth drives GetAuth through the in-process facade against a
// cheap upstream: each call with its own token (distinct: nothing to
// share), all with one token (same), and all with one token and the cache
// on (cached). The facade logs at warn, as in production. For profiling:
//
//	go test -run '^$' -bench GetAuth -cpuprofile cpu.out ./internal/server
func BenchmarkGetAuth(b *testing.B) {
	up := newRecorder(b, answer(200, okBody))
	quiet := func(o *server.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&syncBuffer{}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	withCache := func(o *server.Options) { o.CacheTTL = time.Minute }
	plain := startFacade(b, up.URL, quiet)
	cached := startFacade(b, up.URL, quiet, withCache)
	var n atomic.Int64
	token := map[string]func() string{
		"distinct": func() string { return fmt.Sprintf("tok-%d", n.Add(1)) },
		"same":     func() string { return "tok-hot" },
	}
	for _, tc := range []struct {
		name  string
		f     *facade
		token func() string
	}{
		{"distinct", plain, token["distinct"]},
		{"same", plain, token["same"]},
		{"cached", cached, token["same"]},
	} {
		b.Run("grpc/"+tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					ctx := metadata.AppendToOutgoingContext(context.Background(), "x-auth-token", tc.token())
					if _, err := tc.f.client.GetAuth(ctx, &authv1.GetAuthRequest{}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		for _, door := range []struct {
			name string
			f    *facade
		}{{"rest", tc.f}} {
			b.Run(door.name+"/"+tc.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetParallelism(8)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						req, _ := http.NewRequest(http.MethodGet, door.f.restURL+"/v1/auth", nil)
						req.Header.Set("X-Auth-Token", tc.token())
						resp, err := door.f.http.Do(req)
						if err != nil {
							b.Error(err)
							return
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						_ = resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							b.Errorf("REST GetAuth: %s", resp.Status)
							return
						}
					}
				})
			})
		}
	}
}
