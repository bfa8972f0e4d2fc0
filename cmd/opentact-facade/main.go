// Command opentact-facade serves Opentact's auth API over gRPC and, through
// grpc-gateway, over REST. Run it with -h for its flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/opentact-facade/opentact-facade/internal/config"
	"github.com/opentact-facade/opentact-facade/internal/logs"
	"github.com/opentact-facade/opentact-facade/internal/profiler"
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
	log := logs.New(os.Stderr, cfg.LogLevel)
	cfg.Server.Logger = log
	ctx := stopOnSignal(log)
	if err := run(ctx, cfg); err != nil {
		log.Error("opentact-facade stopped", "error", err)
		os.Exit(1)
	}
}

// stopOnSignal returns a context that ends on the first SIGINT or SIGTERM,
// which starts a graceful shutdown; a second one during it exits at once.
func stopOnSignal(log *slog.Logger) context.Context {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-sigs
		cancel()
		sig := <-sigs
		log.Warn("second signal during the shutdown: exiting without waiting for calls in flight", slog.String("signal", sig.String()))
		os.Exit(1)
	}()
	return ctx
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
	if cfg.DebugAddr != "" {
		stopDebug, err := serveDebug(cfg.DebugAddr, cfg.Server.Logger)
		if err != nil {
			return err
		}
		defer stopDebug()
	}
	return server.Run(ctx, cfg.Server)
}

// serveDebug serves Go's profiler on addr, on a listener of its own (see
// profiler.Serve).
func serveDebug(addr string, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("debug listener: %w", err)
	}
	stop = profiler.Serve(ln)
	log.Info("profiler serving", slog.String("debug_addr", ln.Addr().String()))
	return stop, nil
}
