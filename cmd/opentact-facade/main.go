// Command opentact-facade serves Opentact's auth API over gRPC and, through
// grpc-gateway, over REST. Run it with -h for its flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/opentact-facade/opentact-facade/internal/config"
	"github.com/opentact-facade/opentact-facade/internal/logs"
	"github.com/opentact-facade/opentact-facade/internal/server"
	"github.com/opentact-facade/opentact-facade/internal/telemetry"
	"github.com/opentact-facade/opentact-facade/internal/version"
)

func main() {
	cfg, err := config.Parse(os.Args[1:], os.LookupEnv, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return
	case err != nil:
		fmt.Fprintln(os.Stderr, "opentact-facade:", err)
		os.Exit(2)
	case cfg.ShowVersion:
		fmt.Println("opentact-facade", version.String(), version.GoVersion())
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := logs.New(os.Stderr, cfg.LogLevel)
	cfg.Server.Logger = log
	if err := run(ctx, cfg); err != nil {
		log.Error("opentact-facade stopped", "error", err)
		os.Exit(1)
	}
}

// run serves until ctx ends, with traces exported as the OTEL_* variables
// say (none when they say nothing).
func run(ctx context.Context, cfg config.Config) error {
	tp, err := telemetry.NewTracerProvider(ctx, os.LookupEnv)
	if err != nil {
		return err
	}
	if tp != nil {
		// The SDK's own errors (an unreachable collector) go to our log.
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			cfg.Server.Logger.Warn("opentelemetry", "error", err)
		}))
		cfg.Server.TracerProvider = tp
		defer func() {
			flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := tp.Shutdown(flushCtx); err != nil {
				cfg.Server.Logger.Warn("flushing traces", "error", err)
			}
		}()
	}
	return server.Run(ctx, cfg.Server)
}
