// Command opentact-sandbox is an offline stand-in for Opentact's auth and
// token API (GET /rest/auth and /rest/token...), for local runs, tests and
// benchmarks. It knows the documented demo account
// (opentact@callify.io / 12345678) and any accounts given in a JSON file;
// tokens created through it live in memory until it stops.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/opentact-facade/opentact-facade/internal/logs"
	"github.com/opentact-facade/opentact-facade/internal/sandbox"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "listen address")
	accountsFile := flag.String("accounts", "", "JSON file with more accounts (an array of {password, api_tokens, google_token, facebook_token, ha1b, profile})")
	ttl := flag.Duration("token-ttl", 0, "lifetime of issued JWTs (default 24h)")
	flag.Parse()

	if err := run(*addr, *accountsFile, *ttl); err != nil {
		fmt.Fprintln(os.Stderr, "opentact-sandbox:", err)
		os.Exit(1)
	}
}

func run(addr, accountsFile string, ttl time.Duration) error {
	log := logs.New(os.Stderr, slog.LevelInfo)
	opts := sandbox.Options{TokenTTL: ttl, Logger: log}
	if accountsFile != "" {
		accounts, err := sandbox.LoadAccounts(accountsFile)
		if err != nil {
			return err
		}
		opts.Accounts = accounts
	}
	sb, err := sandbox.New(opts)
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("sandbox serving", slog.String("api", "auth and token (/rest/auth, /rest/token)"),
		slog.String("addr", lis.Addr().String()), slog.String("demo_email", sandbox.DemoEmail))
	return sandbox.Serve(ctx, lis, sb)
}
