// Package config turns opentact-facade's command line and environment into
// server options. The flag and variable names are an interface users and
// tools rely on; change them only with care.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/opentact-facade/opentact-facade/internal/defaults"
	"github.com/opentact-facade/opentact-facade/internal/server"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// Config is the facade's configuration.
type Config struct {
	Server      server.Options
	LogLevel    slog.Level
	ShowVersion bool
	// DebugAddr, when set, is where Go's profiler (net/http/pprof) is
	// served, on a listener of its own.
	DebugAddr string
}

// Parse reads flags from args, each falling back to an environment
// variable (looked up with lookupEnv) and then to its default. Usage and
// flag errors go to out. It returns flag.ErrHelp for -h/--help.
func Parse(args []string, lookupEnv func(string) (string, bool), out io.Writer) (Config, error) {
	var (
		c Config
		// envErrs holds unreadable environment values by flag name; each
		// is an error only if its flag is not given on the command line.
		envErrs = map[string]error{}
		// envOf is the environment variable behind each flag.
		envOf = map[string]string{}
	)
	fs := flag.NewFlagSet("opentact-facade", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: opentact-facade [flags]\n\nServes Opentact's auth API over gRPC and REST.\n\nFlags (each may also be set by the environment variable shown):\n")
		fs.PrintDefaults()
	}
	env := func(name, def string) string {
		if v, ok := lookupEnv(name); ok {
			return v
		}
		return def
	}
	str := func(p *string, flagName, envName, def, usage string) {
		envOf[flagName] = envName
		fs.StringVar(p, flagName, env(envName, def), usage+" (env "+envName+")")
	}
	dur := func(p *time.Duration, flagName, envName string, def time.Duration, usage string) {
		envOf[flagName] = envName
		v := def
		if s, ok := lookupEnv(envName); ok {
			d, err := time.ParseDuration(s)
			if err != nil {
				envErrs[flagName] = fmt.Errorf("%s: %w", envName, err)
			}
			v = d
		}
		fs.DurationVar(p, flagName, v, usage+" (env "+envName+")")
	}
	integer := func(p *int64, flagName, envName string, def int64, usage string) {
		envOf[flagName] = envName
		v := def
		if s, ok := lookupEnv(envName); ok {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				envErrs[flagName] = fmt.Errorf("%s: %w", envName, err)
			}
			v = n
		}
		fs.Int64Var(p, flagName, v, usage+" (env "+envName+")")
	}
	boolean := func(p *bool, flagName, envName, usage string) {
		envOf[flagName] = envName
		v := false
		if s, ok := lookupEnv(envName); ok {
			b, err := strconv.ParseBool(s)
			if err != nil {
				envErrs[flagName] = fmt.Errorf("%s: %w", envName, err)
			}
			v = b
		}
		fs.BoolVar(p, flagName, v, usage+" (env "+envName+")")
	}

	str(&c.Server.GRPCAddr, "grpc-addr", "OPENTACT_FACADE_GRPC_ADDR", defaults.GRPCAddr, "gRPC listen address")
	str(&c.Server.HTTPAddr, "http-addr", "OPENTACT_FACADE_HTTP_ADDR", defaults.HTTPAddr, "REST gateway listen address")
	str(&c.Server.AdminAddr, "admin-addr", "OPENTACT_FACADE_ADMIN_ADDR", defaults.AdminAddr, "listen address of the probes (/healthz, /readyz) and /metrics, plain HTTP; loopback by default, \":9091\" in a pod; off when empty")
	str(&c.Server.Upstream, "upstream", "OPENTACT_BASE_URL", defaults.Upstream, "Opentact API base URL")
	str(&c.Server.EventsURL, "events-url", "OPENTACT_EVENTS_URL", defaults.EventsURL, "Opentact's events WebSocket (ws:// only on loopback)")
	str(&c.Server.WebhookKey, "webhook-key", "OPENTACT_FACADE_WEBHOOK_KEY", "", "serve Opentact's webhook calls on POST /v1/webhooks/opentact/<key> for this secret (at least 16 characters; prefer the environment variable, which ps does not show); off when empty")
	var webhookAllow string
	str(&webhookAllow, "webhook-allow-cidr", "OPENTACT_FACADE_WEBHOOK_ALLOW_CIDR", "", "comma-separated networks webhook calls are accepted from, by the TCP peer's address (Opentact's documented source is 72.21.26.35/32); any when empty")
	dur(&c.Server.UpstreamTimeout, "upstream-timeout", "OPENTACT_UPSTREAM_TIMEOUT", defaults.UpstreamTimeout, "bound on a call whose caller sets no deadline, retries included")
	dur(&c.Server.MaxCallTimeout, "max-call-timeout", "OPENTACT_FACADE_MAX_CALL_TIMEOUT", defaults.MaxCallTimeout, "cap on a caller's deadline; at least --upstream-timeout")
	var attempts, maxBody int64
	integer(&attempts, "upstream-max-attempts", "OPENTACT_UPSTREAM_MAX_ATTEMPTS", defaults.MaxAttempts, fmt.Sprintf("attempts per call to Opentact, the first included; 1 to %d", upstream.MaxAttemptsLimit))
	integer(&maxBody, "upstream-max-body", "OPENTACT_UPSTREAM_MAX_BODY", defaults.UpstreamMaxBody, "cap on an answer from Opentact, in bytes")
	dur(&c.Server.ShutdownGrace, "shutdown-grace", "OPENTACT_FACADE_SHUTDOWN_GRACE", defaults.ShutdownGrace, "how long calls in flight may finish after SIGTERM before they are cut")
	dur(&c.Server.ShutdownDelay, "shutdown-delay", "OPENTACT_FACADE_SHUTDOWN_DELAY", 0, "how long to keep serving, reporting not ready, after SIGTERM and before draining")
	dur(&c.Server.CacheTTL, "cache-ttl", "OPENTACT_FACADE_CACHE_TTL", 0, "keep each successful answer this long, by credentials (0: no cache); see docs/caching.md before turning it on")
	var cacheMax int64
	integer(&cacheMax, "cache-max-entries", "OPENTACT_FACADE_CACHE_MAX_ENTRIES", defaults.CacheMaxEntries, "bound on cached answers, least recently used out first")
	integer(&c.Server.CacheMaxBytes, "cache-max-bytes", "OPENTACT_FACADE_CACHE_MAX_BYTES", defaults.CacheMaxBytes, "bound on the size of the cached answers, in bytes, least recently used out first")
	var idemMax int64
	integer(&idemMax, "idempotency-max-entries", "OPENTACT_FACADE_IDEMPOTENCY_MAX_ENTRIES", defaults.IdempotencyMaxEntries, "bound on the answers kept 24 hours for repeats of calls with a request_id, least recently used out first")
	integer(&c.Server.IdempotencyMaxBytes, "idempotency-max-bytes", "OPENTACT_FACADE_IDEMPOTENCY_MAX_BYTES", defaults.IdempotencyMaxBytes, "bound on the size of the answers kept for repeats of calls with a request_id, in bytes, least recently used out first")
	var maxInFlight, maxConns, maxPerClient, upstreamInFlight, upstreamConns int64
	integer(&maxInFlight, "max-in-flight", "OPENTACT_FACADE_MAX_IN_FLIGHT", defaults.MaxInFlight, "bound on the calls in flight, gRPC and REST together; past it a call is refused at once (FACADE_BUSY)")
	integer(&maxConns, "max-connections", "OPENTACT_FACADE_MAX_CONNECTIONS", defaults.MaxConnections, "bound on the connections open on each listener; past it a new one is closed at once")
	integer(&maxPerClient, "max-connections-per-client", "OPENTACT_FACADE_MAX_CONNECTIONS_PER_CLIENT", defaults.MaxConnectionsPerClient, "bound on the connections open from one IP address on each public listener, a quarter of --max-connections unless set; raise it when clients come through one NAT or proxy")
	integer(&c.Server.MaxAnswerBytes, "max-answer-bytes", "OPENTACT_FACADE_MAX_ANSWER_BYTES", defaults.MaxAnswerBytes, "bound on the bytes of Opentact's answers held by calls in flight; at least --upstream-max-body")
	integer(&upstreamInFlight, "upstream-max-in-flight", "OPENTACT_UPSTREAM_MAX_IN_FLIGHT", defaults.UpstreamMaxInFlight, "bound on the requests to Opentact under way at once; a call that cannot get one in time is refused (UPSTREAM_OVERLOADED)")
	integer(&upstreamConns, "upstream-max-connections", "OPENTACT_UPSTREAM_MAX_CONNECTIONS", defaults.UpstreamMaxConns, "bound on the HTTP/2 connections open to Opentact, each carrying many requests (over HTTP/1.1 each request in flight has a connection, up to --upstream-max-in-flight)")
	str(&c.Server.UpstreamCA, "upstream-ca", "OPENTACT_UPSTREAM_CA", "", "PEM CA bundle that Opentact's certificate must be signed by, instead of the system's")
	str(&c.Server.TLS.Cert, "tls-cert", "OPENTACT_FACADE_TLS_CERT", "", "PEM certificate chain: serve TLS on both listeners")
	str(&c.Server.TLS.Key, "tls-key", "OPENTACT_FACADE_TLS_KEY", "", "PEM private key of --tls-cert")
	str(&c.Server.TLS.ClientCA, "tls-client-ca", "OPENTACT_FACADE_TLS_CLIENT_CA", "", "PEM CA bundle: require client certificates signed by it (mTLS)")
	str(&c.DebugAddr, "debug-addr", "OPENTACT_FACADE_DEBUG_ADDR", "", "serve Go's profiler (/debug/pprof/) on this address, e.g. 127.0.0.1:6060; off when empty; keep it off public interfaces")
	boolean(&c.Server.InsecureUpstream, "insecure-upstream", "OPENTACT_INSECURE_UPSTREAM", "allow a plain-http upstream on a host that is not loopback (credentials then travel in clear text)")
	level := slog.LevelInfo
	if s, ok := lookupEnv("OPENTACT_FACADE_LOG_LEVEL"); ok {
		if err := level.UnmarshalText([]byte(s)); err != nil {
			envErrs["log-level"] = fmt.Errorf("OPENTACT_FACADE_LOG_LEVEL: %w", err)
		}
	}
	fs.TextVar(&c.LogLevel, "log-level", &level, "log level: debug, info, warn or error (env OPENTACT_FACADE_LOG_LEVEL)")
	fs.BoolVar(&c.ShowVersion, "version", false, "print the version and exit")

	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if err := envErrs[f.Name]; err != nil && !given[f.Name] {
			errs = append(errs, err)
		}
	})
	source := func(flagName string) string {
		if given[flagName] {
			return "--" + flagName
		}
		return envOf[flagName]
	}
	if c.Server.UpstreamTimeout <= 0 {
		errs = append(errs, fmt.Errorf("%s must be positive", source("upstream-timeout")))
	}
	if _, inEnv := lookupEnv(envOf["max-call-timeout"]); !given["max-call-timeout"] && !inEnv {
		// Not chosen: it follows a longer --upstream-timeout.
		_, c.Server.MaxCallTimeout = defaults.CallTimeouts(c.Server.UpstreamTimeout, 0)
	}
	switch {
	case c.Server.MaxCallTimeout <= 0:
		errs = append(errs, fmt.Errorf("%s must be positive", source("max-call-timeout")))
	case c.Server.UpstreamTimeout > 0 && c.Server.MaxCallTimeout < c.Server.UpstreamTimeout:
		errs = append(errs, fmt.Errorf("%s (%v) must not be shorter than %s (%v)", source("max-call-timeout"), c.Server.MaxCallTimeout, source("upstream-timeout"), c.Server.UpstreamTimeout))
	}
	if attempts < 1 || attempts > upstream.MaxAttemptsLimit {
		errs = append(errs, fmt.Errorf("%s must be between 1 and %d", source("upstream-max-attempts"), upstream.MaxAttemptsLimit))
	}
	c.Server.UpstreamMaxAttempts = int(attempts)
	if maxBody < 1 {
		errs = append(errs, fmt.Errorf("%s must be positive", source("upstream-max-body")))
	}
	c.Server.UpstreamMaxBody = maxBody
	if k := c.Server.WebhookKey; k != "" && len(k) < 16 {
		errs = append(errs, fmt.Errorf("%s must be at least 16 characters", source("webhook-key")))
	}
	for _, p := range strings.Split(webhookAllow, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not a network such as 72.21.26.35/32", source("webhook-allow-cidr"), p))
			continue
		}
		c.Server.WebhookAllow = append(c.Server.WebhookAllow, prefix.Masked())
	}
	if c.Server.CacheTTL < 0 {
		errs = append(errs, fmt.Errorf("%s must not be negative", source("cache-ttl")))
	}
	if cacheMax < 1 || cacheMax > 10_000_000 {
		errs = append(errs, fmt.Errorf("%s must be between 1 and 10000000", source("cache-max-entries")))
	}
	c.Server.CacheMaxEntries = int(cacheMax)
	if c.Server.CacheMaxBytes < 1 {
		errs = append(errs, fmt.Errorf("%s must be positive", source("cache-max-bytes")))
	}
	if idemMax < 1 || idemMax > 10_000_000 {
		errs = append(errs, fmt.Errorf("%s must be between 1 and 10000000", source("idempotency-max-entries")))
	}
	c.Server.IdempotencyMaxEntries = int(idemMax)
	if c.Server.IdempotencyMaxBytes < 1 {
		errs = append(errs, fmt.Errorf("%s must be positive", source("idempotency-max-bytes")))
	}
	if maxInFlight < 1 || maxInFlight > 1_000_000 {
		errs = append(errs, fmt.Errorf("%s must be between 1 and 1000000", source("max-in-flight")))
	}
	c.Server.MaxInFlight = int(maxInFlight)
	if maxConns < 1 || maxConns > 1_000_000 {
		errs = append(errs, fmt.Errorf("%s must be between 1 and 1000000", source("max-connections")))
	}
	c.Server.MaxConnections = int(maxConns)
	if _, inEnv := lookupEnv(envOf["max-connections-per-client"]); !given["max-connections-per-client"] && !inEnv {
		// Not chosen: it follows --max-connections.
		maxPerClient = max(1, maxConns/4)
	}
	if maxPerClient < 1 || maxPerClient > 1_000_000 {
		errs = append(errs, fmt.Errorf("%s must be between 1 and 1000000", source("max-connections-per-client")))
	}
	c.Server.MaxConnectionsPerClient = int(maxPerClient)
	if upstreamInFlight < 1 || upstreamInFlight > 100_000 {
		errs = append(errs, fmt.Errorf("%s must be between 1 and 100000", source("upstream-max-in-flight")))
	}
	c.Server.UpstreamMaxInFlight = int(upstreamInFlight)
	if upstreamConns < 1 || upstreamConns > 10_000 {
		errs = append(errs, fmt.Errorf("%s must be between 1 and 10000", source("upstream-max-connections")))
	}
	c.Server.UpstreamMaxConnections = int(upstreamConns)
	if c.Server.MaxAnswerBytes < maxBody {
		errs = append(errs, fmt.Errorf("%s (%d) must be at least %s (%d)", source("max-answer-bytes"), c.Server.MaxAnswerBytes, source("upstream-max-body"), maxBody))
	}
	if c.Server.ShutdownGrace <= 0 {
		errs = append(errs, fmt.Errorf("%s must be positive", source("shutdown-grace")))
	}
	if c.Server.ShutdownDelay < 0 {
		errs = append(errs, fmt.Errorf("%s must not be negative", source("shutdown-delay")))
	}
	if (c.Server.TLS.Cert == "") != (c.Server.TLS.Key == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key go together"))
	} else if c.Server.TLS.ClientCA != "" && c.Server.TLS.Cert == "" {
		errs = append(errs, errors.New("--tls-client-ca needs --tls-cert and --tls-key"))
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}
