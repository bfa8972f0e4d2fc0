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

	"github.com/opentact-facade/opentact-facade/internal/config"
	"github.com/opentact-facade/opentact-facade/internal/logs"
	"github.com/opentact-facade/opentact-facade/internal/server"
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
	cfg.Server.Logger = logs.New(os.Stderr, cfg.LogLevel)
	if err := server.Run(ctx, cfg.Server); err != nil {
		cfg.Server.Logger.Error("opentact-facade stopped", "error", err)
		os.Exit(1)
	}
}
