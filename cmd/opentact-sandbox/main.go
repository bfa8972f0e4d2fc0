// Command opentact-sandbox is an offline stand-in for Opentact, for local
// runs, tests and benchmarks: auth and tokens (GET /rest/auth and
// /rest/token...), numbers, orders and SMS as Opentact behaves, and every
// other call the facade declares, served from the declarations (see
// package sandbox). It knows the documented demo account
// (opentact@callify.io / 12345678) and any accounts given in a JSON file;
// tokens, records, orders and messages made through it live in memory
// until it stops. With --tls-cert and --tls-key it serves HTTPS (HTTP/2 and
// HTTP/1.1), and with --delay it answers as late as a distant host would.
// A WebSocket to / (or /ws) gets Opentact's events after its auth frame;
// POST /sandbox/inbound-sms and /sandbox/inbound-call make an SMS or a
// call arrive, and --inbound-sms-every makes SMS arrive on a timer.
package main

import (
	"context"
	"crypto/tls"
	"errors"
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
	cert := flag.String("tls-cert", "", "PEM certificate chain: serve HTTPS, offering HTTP/2")
	key := flag.String("tls-key", "", "PEM private key of --tls-cert")
	delay := flag.Duration("delay", 0, "answer each request this long after it arrives, as a distant Opentact would (e.g. 40ms)")
	inboundEvery := flag.Duration("inbound-sms-every", 0, "send an inbound SMS to each account's oldest leased number at this interval (0: never)")
	flag.Parse()

	if err := run(*addr, *accountsFile, *ttl, *cert, *key, *delay, *inboundEvery); err != nil {
		fmt.Fprintln(os.Stderr, "opentact-sandbox:", err)
		os.Exit(1)
	}
}

func run(addr, accountsFile string, ttl time.Duration, cert, key string, delay, inboundEvery time.Duration) error {
	log := logs.New(os.Stderr, slog.LevelInfo)
	if inboundEvery < 0 {
		return errors.New("--inbound-sms-every must not be negative")
	}
	opts := sandbox.Options{TokenTTL: ttl, Logger: log, InboundSMSEvery: inboundEvery}
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
	defer sb.Close() // after Serve: sockets are hijacked, Shutdown leaves them
	var tlsConfig *tls.Config
	switch {
	case (cert == "") != (key == ""):
		return errors.New("--tls-cert and --tls-key go together")
	case cert != "":
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return fmt.Errorf("TLS certificate: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	}
	if delay < 0 {
		return errors.New("--delay must not be negative")
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("sandbox serving", slog.String("api", "auth, tokens and every declared call"),
		slog.String("addr", lis.Addr().String()), slog.Bool("tls", tlsConfig != nil),
		slog.Duration("delay", delay), slog.String("demo_email", sandbox.DemoEmail))
	return sandbox.Serve(ctx, lis, sandbox.Delayed(sb, delay), tlsConfig)
}
