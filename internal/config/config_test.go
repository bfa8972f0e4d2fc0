package config_test

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/opentact-facade/opentact-facade/internal/config"
	"github.com/opentact-facade/opentact-facade/internal/server"
)

// env is a lookupEnv backed by a map.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// defaults is the configuration with nothing set, written out literally:
// these values are what users of the binary rely on.
func defaults() config.Config {
	return config.Config{
		Server: server.Options{
			GRPCAddr:                ":9090",
			HTTPAddr:                ":8080",
			AdminAddr:               "127.0.0.1:9091",
			Upstream:                "https://api.opentact.org",
			UpstreamTimeout:         10 * time.Second,
			MaxCallTimeout:          30 * time.Second,
			UpstreamMaxAttempts:     3,
			UpstreamMaxBody:         1 << 20,
			InsecureUpstream:        false,
			ShutdownGrace:           15 * time.Second,
			ShutdownDelay:           0,
			CacheTTL:                0,
			CacheMaxEntries:         10_000,
			CacheMaxBytes:           32 << 20,
			IdempotencyMaxEntries:   50_000,
			IdempotencyMaxBytes:     64 << 20,
			EventsURL:               "wss://api.opentact.org",
			MaxInFlight:             4096,
			MaxConnections:          512,
			MaxConnectionsPerClient: 128,
			MaxAnswerBytes:          32 << 20,
			UpstreamMaxInFlight:     512,
			UpstreamMaxConnections:  16,
		},
		LogLevel:    slog.LevelInfo,
		ShowVersion: false,
	}
}

// ignoreUnexported leaves out server.Options' unexported fields, which
// no flag sets.
var ignoreUnexported = cmp.Options{cmpopts.IgnoreUnexported(server.Options{}), cmpopts.EquateComparable(netip.Prefix{})}

func TestDefaults(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	got, err := config.Parse(nil, env(nil), &out)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if diff := cmp.Diff(defaults(), got, ignoreUnexported); diff != "" {
		t.Errorf("config mismatch (-want +got):\n%s", diff)
	}
	if out.Len() != 0 {
		t.Errorf("Parse wrote %q, want nothing", out.String())
	}
}

func TestUnrelatedEnvIsIgnored(t *testing.T) {
	t.Parallel()
	got, err := config.Parse(nil, env(map[string]string{
		"GRPC_ADDR":            "nope",
		"OPENTACT_FACADE_PORT": "1",
		"opentact_base_url":    "http://lower.case",
	}), &bytes.Buffer{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if diff := cmp.Diff(defaults(), got, ignoreUnexported); diff != "" {
		t.Errorf("config mismatch (-want +got):\n%s", diff)
	}
}

func TestEnvAndFlags(t *testing.T) {
	t.Parallel()
	type setting struct {
		name     string
		envName  string
		envValue string
		envWant  func(*config.Config)
		flag     []string
		flagWant func(*config.Config)
		// with is what the setting needs alongside, given in every case.
		with []string
	}
	for _, s := range []setting{
		{
			name: "grpc-addr", envName: "OPENTACT_FACADE_GRPC_ADDR", envValue: "127.0.0.1:7000",
			envWant:  func(c *config.Config) { c.Server.GRPCAddr = "127.0.0.1:7000" },
			flag:     []string{"--grpc-addr", "[::1]:7001"},
			flagWant: func(c *config.Config) { c.Server.GRPCAddr = "[::1]:7001" },
		},
		{
			name: "http-addr", envName: "OPENTACT_FACADE_HTTP_ADDR", envValue: ":18080",
			envWant:  func(c *config.Config) { c.Server.HTTPAddr = ":18080" },
			flag:     []string{"-http-addr=localhost:28080"},
			flagWant: func(c *config.Config) { c.Server.HTTPAddr = "localhost:28080" },
		},
		{
			name: "upstream", envName: "OPENTACT_BASE_URL", envValue: "https://api.stage.opentact.org",
			envWant:  func(c *config.Config) { c.Server.Upstream = "https://api.stage.opentact.org" },
			flag:     []string{"--upstream=http://127.0.0.1:4010"},
			flagWant: func(c *config.Config) { c.Server.Upstream = "http://127.0.0.1:4010" },
		},
		{
			name: "upstream-timeout", envName: "OPENTACT_UPSTREAM_TIMEOUT", envValue: "2m30s",
			// The unset --max-call-timeout follows a longer upstream timeout.
			envWant: func(c *config.Config) {
				c.Server.UpstreamTimeout, c.Server.MaxCallTimeout = 150*time.Second, 150*time.Second
			},
			flag:     []string{"--upstream-timeout", "250ms"},
			flagWant: func(c *config.Config) { c.Server.UpstreamTimeout = 250 * time.Millisecond },
		},
		{
			name: "insecure-upstream", envName: "OPENTACT_INSECURE_UPSTREAM", envValue: "true",
			envWant:  func(c *config.Config) { c.Server.InsecureUpstream = true },
			flag:     []string{"--insecure-upstream=false"},
			flagWant: func(c *config.Config) { c.Server.InsecureUpstream = false },
		},
		{
			name: "insecure-upstream bare flag over false env", envName: "OPENTACT_INSECURE_UPSTREAM", envValue: "0",
			envWant:  func(c *config.Config) { c.Server.InsecureUpstream = false },
			flag:     []string{"--insecure-upstream"},
			flagWant: func(c *config.Config) { c.Server.InsecureUpstream = true },
		},
		{
			name: "max-call-timeout", envName: "OPENTACT_FACADE_MAX_CALL_TIMEOUT", envValue: "1m",
			envWant:  func(c *config.Config) { c.Server.MaxCallTimeout = time.Minute },
			flag:     []string{"--max-call-timeout=12s"},
			flagWant: func(c *config.Config) { c.Server.MaxCallTimeout = 12 * time.Second },
		},
		{
			name: "upstream-max-attempts", envName: "OPENTACT_UPSTREAM_MAX_ATTEMPTS", envValue: "5",
			envWant:  func(c *config.Config) { c.Server.UpstreamMaxAttempts = 5 },
			flag:     []string{"--upstream-max-attempts", "1"},
			flagWant: func(c *config.Config) { c.Server.UpstreamMaxAttempts = 1 },
		},
		{
			name: "upstream-max-body", envName: "OPENTACT_UPSTREAM_MAX_BODY", envValue: "65536",
			envWant:  func(c *config.Config) { c.Server.UpstreamMaxBody = 65536 },
			flag:     []string{"--upstream-max-body=4194304"},
			flagWant: func(c *config.Config) { c.Server.UpstreamMaxBody = 4 << 20 },
		},
		{
			name: "cache-ttl", envName: "OPENTACT_FACADE_CACHE_TTL", envValue: "30s",
			envWant:  func(c *config.Config) { c.Server.CacheTTL = 30 * time.Second },
			flag:     []string{"--cache-ttl=1m"},
			flagWant: func(c *config.Config) { c.Server.CacheTTL = time.Minute },
		},
		{
			name: "cache-max-entries", envName: "OPENTACT_FACADE_CACHE_MAX_ENTRIES", envValue: "500",
			envWant:  func(c *config.Config) { c.Server.CacheMaxEntries = 500 },
			flag:     []string{"--cache-max-entries", "20000"},
			flagWant: func(c *config.Config) { c.Server.CacheMaxEntries = 20000 },
		},
		{
			name: "cache-max-bytes", envName: "OPENTACT_FACADE_CACHE_MAX_BYTES", envValue: "1048576",
			envWant:  func(c *config.Config) { c.Server.CacheMaxBytes = 1 << 20 },
			flag:     []string{"--cache-max-bytes", "2097152"},
			flagWant: func(c *config.Config) { c.Server.CacheMaxBytes = 2 << 20 },
		},
		{
			name: "idempotency-max-entries", envName: "OPENTACT_FACADE_IDEMPOTENCY_MAX_ENTRIES", envValue: "500",
			envWant:  func(c *config.Config) { c.Server.IdempotencyMaxEntries = 500 },
			flag:     []string{"--idempotency-max-entries", "200000"},
			flagWant: func(c *config.Config) { c.Server.IdempotencyMaxEntries = 200000 },
		},
		{
			name: "idempotency-max-bytes", envName: "OPENTACT_FACADE_IDEMPOTENCY_MAX_BYTES", envValue: "1048576",
			envWant:  func(c *config.Config) { c.Server.IdempotencyMaxBytes = 1 << 20 },
			flag:     []string{"--idempotency-max-bytes", "268435456"},
			flagWant: func(c *config.Config) { c.Server.IdempotencyMaxBytes = 256 << 20 },
		},
		{
			name: "webhook-allow-cidr", envName: "OPENTACT_FACADE_WEBHOOK_ALLOW_CIDR", envValue: "72.21.26.35/32",
			envWant: func(c *config.Config) {
				c.Server.WebhookAllow = []netip.Prefix{netip.MustParsePrefix("72.21.26.35/32")}
			},
			flag: []string{"--webhook-allow-cidr", "10.0.0.9/8, ::1/128"},
			flagWant: func(c *config.Config) {
				c.Server.WebhookAllow = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
			},
		},
		{
			name: "max-in-flight", envName: "OPENTACT_FACADE_MAX_IN_FLIGHT", envValue: "8192",
			envWant:  func(c *config.Config) { c.Server.MaxInFlight = 8192 },
			flag:     []string{"--max-in-flight=100"},
			flagWant: func(c *config.Config) { c.Server.MaxInFlight = 100 },
		},
		{
			// The bound per client, not chosen, follows.
			name: "max-connections", envName: "OPENTACT_FACADE_MAX_CONNECTIONS", envValue: "64",
			envWant:  func(c *config.Config) { c.Server.MaxConnections, c.Server.MaxConnectionsPerClient = 64, 16 },
			flag:     []string{"--max-connections=2000"},
			flagWant: func(c *config.Config) { c.Server.MaxConnections, c.Server.MaxConnectionsPerClient = 2000, 500 },
		},
		{
			name: "max-connections-per-client", envName: "OPENTACT_FACADE_MAX_CONNECTIONS_PER_CLIENT", envValue: "8",
			envWant:  func(c *config.Config) { c.Server.MaxConnectionsPerClient = 8 },
			flag:     []string{"--max-connections-per-client=512"},
			flagWant: func(c *config.Config) { c.Server.MaxConnectionsPerClient = 512 },
		},
		{
			name: "admin-addr", envName: "OPENTACT_FACADE_ADMIN_ADDR", envValue: ":9091",
			envWant:  func(c *config.Config) { c.Server.AdminAddr = ":9091" },
			flag:     []string{"--admin-addr="},
			flagWant: func(c *config.Config) { c.Server.AdminAddr = "" },
		},
		{
			name: "max-answer-bytes", envName: "OPENTACT_FACADE_MAX_ANSWER_BYTES", envValue: "8388608",
			envWant:  func(c *config.Config) { c.Server.MaxAnswerBytes = 8 << 20 },
			flag:     []string{"--max-answer-bytes=67108864"},
			flagWant: func(c *config.Config) { c.Server.MaxAnswerBytes = 64 << 20 },
		},
		{
			name: "upstream-max-in-flight", envName: "OPENTACT_UPSTREAM_MAX_IN_FLIGHT", envValue: "16",
			envWant:  func(c *config.Config) { c.Server.UpstreamMaxInFlight = 16 },
			flag:     []string{"--upstream-max-in-flight=512"},
			flagWant: func(c *config.Config) { c.Server.UpstreamMaxInFlight = 512 },
		},
		{
			name: "debug-addr", envName: "OPENTACT_FACADE_DEBUG_ADDR", envValue: "127.0.0.1:6060",
			envWant:  func(c *config.Config) { c.DebugAddr = "127.0.0.1:6060" },
			flag:     []string{"--debug-addr", "127.0.0.1:6061"},
			flagWant: func(c *config.Config) { c.DebugAddr = "127.0.0.1:6061" },
		},
		{
			name: "shutdown-grace", envName: "OPENTACT_FACADE_SHUTDOWN_GRACE", envValue: "40s",
			envWant:  func(c *config.Config) { c.Server.ShutdownGrace = 40 * time.Second },
			flag:     []string{"--shutdown-grace=2s"},
			flagWant: func(c *config.Config) { c.Server.ShutdownGrace = 2 * time.Second },
		},
		{
			name: "shutdown-delay", envName: "OPENTACT_FACADE_SHUTDOWN_DELAY", envValue: "5s",
			envWant:  func(c *config.Config) { c.Server.ShutdownDelay = 5 * time.Second },
			flag:     []string{"--shutdown-delay=0s"},
			flagWant: func(c *config.Config) { c.Server.ShutdownDelay = 0 },
		},
		{
			name: "tls", envName: "OPENTACT_FACADE_TLS_CERT", envValue: "/env/cert.pem",
			// The key is given alongside in both cases: one without the
			// other is an error.
			envWant: func(c *config.Config) { c.Server.TLS.Cert, c.Server.TLS.Key = "/env/cert.pem", "/k.pem" },
			flag:    []string{"--tls-cert=/flag/cert.pem"},
			flagWant: func(c *config.Config) {
				c.Server.TLS.Cert, c.Server.TLS.Key = "/flag/cert.pem", "/k.pem"
			},
			with: []string{"--tls-key=/k.pem"},
		},
		{
			name: "tls-client-ca", envName: "OPENTACT_FACADE_TLS_CLIENT_CA", envValue: "/env/ca.pem",
			envWant: func(c *config.Config) {
				c.Server.TLS.Cert, c.Server.TLS.Key, c.Server.TLS.ClientCA = "/c.pem", "/k.pem", "/env/ca.pem"
			},
			flag: []string{"--tls-client-ca", "/flag/ca.pem"},
			flagWant: func(c *config.Config) {
				c.Server.TLS.Cert, c.Server.TLS.Key, c.Server.TLS.ClientCA = "/c.pem", "/k.pem", "/flag/ca.pem"
			},
			with: []string{"--tls-cert=/c.pem", "--tls-key=/k.pem"},
		},
		{
			name: "log-level", envName: "OPENTACT_FACADE_LOG_LEVEL", envValue: "debug",
			envWant:  func(c *config.Config) { c.LogLevel = slog.LevelDebug },
			flag:     []string{"--log-level=error"},
			flagWant: func(c *config.Config) { c.LogLevel = slog.LevelError },
		},
		{
			name: "log-level upper case", envName: "OPENTACT_FACADE_LOG_LEVEL", envValue: "WARN",
			envWant:  func(c *config.Config) { c.LogLevel = slog.LevelWarn },
			flag:     []string{"-log-level", "INFO"},
			flagWant: func(c *config.Config) { c.LogLevel = slog.LevelInfo },
		},
	} {
		for _, tc := range []struct {
			name string
			env  map[string]string
			args []string
			want []func(*config.Config)
		}{
			{"env only", map[string]string{s.envName: s.envValue}, nil, []func(*config.Config){s.envWant}},
			{"flag only", nil, s.flag, []func(*config.Config){s.flagWant}},
			{"flag wins over env", map[string]string{s.envName: s.envValue}, s.flag, []func(*config.Config){s.flagWant}},
		} {
			t.Run(s.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				want := defaults()
				for _, f := range tc.want {
					f(&want)
				}
				args := append(append([]string{}, s.with...), tc.args...)
				got, err := config.Parse(args, env(tc.env), &bytes.Buffer{})
				if err != nil {
					t.Fatalf("Parse(%q, %v): %v", args, tc.env, err)
				}
				if diff := cmp.Diff(want, got, ignoreUnexported); diff != "" {
					t.Errorf("Parse(%q, %v) mismatch (-want +got):\n%s", tc.args, tc.env, diff)
				}
			})
		}
	}
}

func TestEverythingFromEnv(t *testing.T) {
	t.Parallel()
	got, err := config.Parse(nil, env(map[string]string{
		"OPENTACT_FACADE_GRPC_ADDR":  ":1",
		"OPENTACT_FACADE_HTTP_ADDR":  ":2",
		"OPENTACT_FACADE_ADMIN_ADDR": ":5",
		"OPENTACT_BASE_URL":          "http://localhost:3",
		"OPENTACT_UPSTREAM_TIMEOUT":  "4s",
		"OPENTACT_INSECURE_UPSTREAM": "1",
		"OPENTACT_FACADE_LOG_LEVEL":  "warn",

		"OPENTACT_FACADE_MAX_CALL_TIMEOUT":           "8s",
		"OPENTACT_UPSTREAM_MAX_ATTEMPTS":             "2",
		"OPENTACT_UPSTREAM_MAX_BODY":                 "1000",
		"OPENTACT_FACADE_SHUTDOWN_GRACE":             "9s",
		"OPENTACT_FACADE_SHUTDOWN_DELAY":             "1s",
		"OPENTACT_FACADE_TLS_CERT":                   "c.pem",
		"OPENTACT_FACADE_TLS_KEY":                    "k.pem",
		"OPENTACT_FACADE_TLS_CLIENT_CA":              "ca.pem",
		"OPENTACT_UPSTREAM_CA":                       "upstream-ca.pem",
		"OPENTACT_UPSTREAM_MAX_CONNECTIONS":          "3",
		"OPENTACT_FACADE_MAX_CONNECTIONS_PER_CLIENT": "6",

		"OPENTACT_FACADE_CACHE_TTL":         "2s",
		"OPENTACT_FACADE_CACHE_MAX_ENTRIES": "7",
	}), &bytes.Buffer{})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := config.Config{
		Server: server.Options{
			GRPCAddr:                ":1",
			HTTPAddr:                ":2",
			AdminAddr:               ":5",
			Upstream:                "http://localhost:3",
			UpstreamTimeout:         4 * time.Second,
			InsecureUpstream:        true,
			MaxCallTimeout:          8 * time.Second,
			UpstreamMaxAttempts:     2,
			UpstreamMaxBody:         1000,
			ShutdownGrace:           9 * time.Second,
			ShutdownDelay:           time.Second,
			TLS:                     server.TLSFiles{Cert: "c.pem", Key: "k.pem", ClientCA: "ca.pem"},
			CacheTTL:                2 * time.Second,
			CacheMaxEntries:         7,
			CacheMaxBytes:           32 << 20,
			IdempotencyMaxEntries:   50_000,
			IdempotencyMaxBytes:     64 << 20,
			EventsURL:               "wss://api.opentact.org",
			MaxInFlight:             4096,
			MaxConnections:          512,
			MaxConnectionsPerClient: 6,
			MaxAnswerBytes:          32 << 20,
			UpstreamMaxInFlight:     512,
			UpstreamMaxConnections:  3,
			UpstreamCA:              "upstream-ca.pem",
		},
		LogLevel: slog.LevelWarn,
	}
	if diff := cmp.Diff(want, got, ignoreUnexported); diff != "" {
		t.Errorf("config mismatch (-want +got):\n%s", diff)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		mention string // the error must name what is wrong
	}{
		{"env duration unparsable", nil, map[string]string{"OPENTACT_UPSTREAM_TIMEOUT": "ten seconds"}, "OPENTACT_UPSTREAM_TIMEOUT"},
		{"env duration without unit", nil, map[string]string{"OPENTACT_UPSTREAM_TIMEOUT": "10"}, "OPENTACT_UPSTREAM_TIMEOUT"},
		{"env bool unparsable", nil, map[string]string{"OPENTACT_INSECURE_UPSTREAM": "maybe"}, "OPENTACT_INSECURE_UPSTREAM"},
		{"env bool empty", nil, map[string]string{"OPENTACT_INSECURE_UPSTREAM": ""}, "OPENTACT_INSECURE_UPSTREAM"},
		{"env level unparsable", nil, map[string]string{"OPENTACT_FACADE_LOG_LEVEL": "loud"}, "OPENTACT_FACADE_LOG_LEVEL"},
		{"env timeout zero", nil, map[string]string{"OPENTACT_UPSTREAM_TIMEOUT": "0s"}, "OPENTACT_UPSTREAM_TIMEOUT must be positive"},
		{"env timeout negative", nil, map[string]string{"OPENTACT_UPSTREAM_TIMEOUT": "-1s"}, "OPENTACT_UPSTREAM_TIMEOUT must be positive"},
		{"flag timeout zero", []string{"--upstream-timeout=0"}, nil, "--upstream-timeout must be positive"},
		{"flag timeout zero overriding a good env", []string{"--upstream-timeout=0"}, map[string]string{"OPENTACT_UPSTREAM_TIMEOUT": "5s"}, "--upstream-timeout must be positive"},
		{"flag timeout negative", []string{"--upstream-timeout", "-5s"}, nil, "upstream-timeout"},
		{"flag timeout unparsable", []string{"--upstream-timeout=soon"}, nil, "upstream-timeout"},
		{"flag level unparsable", []string{"--log-level=verbose"}, nil, "log-level"},
		{"flag bool unparsable", []string{"--insecure-upstream=maybe"}, nil, "insecure-upstream"},
		{"max call timeout shorter than upstream timeout", []string{"--upstream-timeout=20s", "--max-call-timeout=10s"}, nil, "--max-call-timeout (10s) must not be shorter than --upstream-timeout (20s)"},
		{"env max call timeout zero", nil, map[string]string{"OPENTACT_FACADE_MAX_CALL_TIMEOUT": "0s"}, "OPENTACT_FACADE_MAX_CALL_TIMEOUT must be positive"},
		{"max attempts zero", []string{"--upstream-max-attempts=0"}, nil, "--upstream-max-attempts must be between 1 and 5"},
		{"max attempts above five", []string{"--upstream-max-attempts=6"}, nil, "--upstream-max-attempts must be between 1 and 5"},
		{"env max attempts above five", nil, map[string]string{"OPENTACT_UPSTREAM_MAX_ATTEMPTS": "10"}, "OPENTACT_UPSTREAM_MAX_ATTEMPTS must be between 1 and 5"},
		{"env max attempts unparsable", nil, map[string]string{"OPENTACT_UPSTREAM_MAX_ATTEMPTS": "three"}, "OPENTACT_UPSTREAM_MAX_ATTEMPTS"},
		{"max body zero", []string{"--upstream-max-body=0"}, nil, "--upstream-max-body must be positive"},
		{"max body with unit", []string{"--upstream-max-body=1MiB"}, nil, "upstream-max-body"},
		{"cache ttl negative", []string{"--cache-ttl=-1s"}, nil, "--cache-ttl must not be negative"},
		{"cache max entries zero", []string{"--cache-max-entries=0"}, nil, "--cache-max-entries must be between 1 and 10000000"},
		{"cache max bytes zero", []string{"--cache-max-bytes=0"}, nil, "--cache-max-bytes must be positive"},
		{"idempotency max entries zero", []string{"--idempotency-max-entries=0"}, nil, "--idempotency-max-entries must be between 1 and 10000000"},
		{"env idempotency max bytes negative", nil, map[string]string{"OPENTACT_FACADE_IDEMPOTENCY_MAX_BYTES": "-1"}, "OPENTACT_FACADE_IDEMPOTENCY_MAX_BYTES must be positive"},
		{"max in flight zero", []string{"--max-in-flight=0"}, nil, "--max-in-flight must be between 1 and 1000000"},
		{"env max connections zero", nil, map[string]string{"OPENTACT_FACADE_MAX_CONNECTIONS": "0"}, "OPENTACT_FACADE_MAX_CONNECTIONS must be between 1 and 1000000"},
		{"upstream max in flight zero", []string{"--upstream-max-in-flight=0"}, nil, "--upstream-max-in-flight must be between 1 and 100000"},
		{"upstream max connections zero", []string{"--upstream-max-connections=0"}, nil, "--upstream-max-connections must be between 1 and 10000"},
		{"max connections per client zero", nil, map[string]string{"OPENTACT_FACADE_MAX_CONNECTIONS_PER_CLIENT": "0"}, "OPENTACT_FACADE_MAX_CONNECTIONS_PER_CLIENT must be between 1 and 1000000"},
		{"answer bytes below the body cap", []string{"--max-answer-bytes=1000", "--upstream-max-body=2000"}, nil, "--max-answer-bytes (1000) must be at least --upstream-max-body (2000)"},
		{"env cache max entries unparsable", nil, map[string]string{"OPENTACT_FACADE_CACHE_MAX_ENTRIES": "lots"}, "OPENTACT_FACADE_CACHE_MAX_ENTRIES"},
		{"shutdown grace zero", []string{"--shutdown-grace=0s"}, nil, "--shutdown-grace must be positive"},
		{"shutdown delay negative", []string{"--shutdown-delay=-1s"}, nil, "--shutdown-delay must not be negative"},
		{"tls cert without key", []string{"--tls-cert=c.pem"}, nil, "--tls-cert and --tls-key go together"},
		{"tls key without cert", nil, map[string]string{"OPENTACT_FACADE_TLS_KEY": "k.pem"}, "--tls-cert and --tls-key go together"},
		{"tls client ca alone", []string{"--tls-client-ca=ca.pem"}, nil, "--tls-client-ca needs --tls-cert and --tls-key"},
		{"positional argument", []string{"serve"}, nil, "serve"},
		{"webhook key too short", []string{"--webhook-key=short"}, nil, "--webhook-key must be at least 16 characters"},
		{"webhook network unparsable", nil, map[string]string{"OPENTACT_FACADE_WEBHOOK_ALLOW_CIDR": "72.21.26.35/32, opentact"}, `OPENTACT_FACADE_WEBHOOK_ALLOW_CIDR: "opentact" is not a network`},
		{"positional argument after flags", []string{"--grpc-addr=:1", "extra"}, nil, "extra"},
		{"unknown flag", []string{"--port=9090"}, nil, "port"},
		{"flag missing its value", []string{"--grpc-addr"}, nil, "grpc-addr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			got, err := config.Parse(tc.args, env(tc.env), &out)
			if err == nil {
				t.Fatalf("Parse(%q, %v) = %+v, want an error", tc.args, tc.env, got)
			}
			if errors.Is(err, flag.ErrHelp) {
				t.Errorf("Parse(%q, %v) error = %v, want one that is not flag.ErrHelp", tc.args, tc.env, err)
			}
			if !strings.Contains(err.Error()+out.String(), tc.mention) {
				t.Errorf("Parse(%q, %v): neither the error %q nor the output %q mentions %q",
					tc.args, tc.env, err, out.String(), tc.mention)
			}
		})
	}
}

// TestFlagOverridesABadEnvValue: an unreadable environment value does not
// matter when its flag is given, since the flag wins.
func TestFlagOverridesABadEnvValue(t *testing.T) {
	t.Parallel()
	bad := env(map[string]string{
		"OPENTACT_UPSTREAM_TIMEOUT":  "ten seconds",
		"OPENTACT_INSECURE_UPSTREAM": "maybe",
		"OPENTACT_FACADE_LOG_LEVEL":  "loud",
	})
	got, err := config.Parse([]string{"--upstream-timeout=3s", "--insecure-upstream=false", "--log-level=debug"}, bad, io.Discard)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got.Server.UpstreamTimeout != 3*time.Second || got.Server.InsecureUpstream || got.LogLevel != slog.LevelDebug {
		t.Errorf("Parse = %+v, want the flags' values", got)
	}
	if _, err := config.Parse([]string{"-h"}, bad, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h with bad env: %v, want flag.ErrHelp", err)
	}
}

func TestFlagErrorsGoToOut(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if _, err := config.Parse([]string{"--no-such-flag"}, env(nil), &out); err == nil {
		t.Fatal("Parse accepted an unknown flag")
	}
	if !strings.Contains(out.String(), "no-such-flag") || !strings.Contains(out.String(), "Usage") {
		t.Errorf("output for an unknown flag = %q, want the error and the usage", out.String())
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	// Each flag and the environment variable that also sets it.
	flags := map[string]string{
		"grpc-addr":         "OPENTACT_FACADE_GRPC_ADDR",
		"http-addr":         "OPENTACT_FACADE_HTTP_ADDR",
		"upstream":          "OPENTACT_BASE_URL",
		"upstream-timeout":  "OPENTACT_UPSTREAM_TIMEOUT",
		"insecure-upstream": "OPENTACT_INSECURE_UPSTREAM",
		"log-level":         "OPENTACT_FACADE_LOG_LEVEL",
		"version":           "",

		"max-call-timeout":      "OPENTACT_FACADE_MAX_CALL_TIMEOUT",
		"upstream-max-attempts": "OPENTACT_UPSTREAM_MAX_ATTEMPTS",
		"upstream-max-body":     "OPENTACT_UPSTREAM_MAX_BODY",
		"shutdown-grace":        "OPENTACT_FACADE_SHUTDOWN_GRACE",
		"shutdown-delay":        "OPENTACT_FACADE_SHUTDOWN_DELAY",
		"tls-cert":              "OPENTACT_FACADE_TLS_CERT",
		"tls-key":               "OPENTACT_FACADE_TLS_KEY",
		"tls-client-ca":         "OPENTACT_FACADE_TLS_CLIENT_CA",
		"cache-ttl":             "OPENTACT_FACADE_CACHE_TTL",
		"cache-max-entries":     "OPENTACT_FACADE_CACHE_MAX_ENTRIES",
		"debug-addr":            "OPENTACT_FACADE_DEBUG_ADDR",

		"cache-max-bytes":          "OPENTACT_FACADE_CACHE_MAX_BYTES",
		"max-in-flight":            "OPENTACT_FACADE_MAX_IN_FLIGHT",
		"max-connections":          "OPENTACT_FACADE_MAX_CONNECTIONS",
		"max-answer-bytes":         "OPENTACT_FACADE_MAX_ANSWER_BYTES",
		"upstream-max-in-flight":   "OPENTACT_UPSTREAM_MAX_IN_FLIGHT",
		"upstream-max-connections": "OPENTACT_UPSTREAM_MAX_CONNECTIONS",
		"upstream-ca":              "OPENTACT_UPSTREAM_CA",

		"idempotency-max-entries": "OPENTACT_FACADE_IDEMPOTENCY_MAX_ENTRIES",
		"idempotency-max-bytes":   "OPENTACT_FACADE_IDEMPOTENCY_MAX_BYTES",
		"events-url":              "OPENTACT_EVENTS_URL",
		"webhook-key":             "OPENTACT_FACADE_WEBHOOK_KEY",
		"webhook-allow-cidr":      "OPENTACT_FACADE_WEBHOOK_ALLOW_CIDR",

		"admin-addr":                 "OPENTACT_FACADE_ADMIN_ADDR",
		"max-connections-per-client": "OPENTACT_FACADE_MAX_CONNECTIONS_PER_CLIENT",
	}
	for _, arg := range []string{"-h", "--help", "-help"} {
		t.Run(arg, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			_, err := config.Parse([]string{arg}, env(nil), &out)
			if !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("Parse(%q) error = %v, want flag.ErrHelp", arg, err)
			}
			blocks := usageBlocks(out.String())
			var names []string
			for name := range blocks {
				names = append(names, name)
			}
			for name, envName := range flags {
				block, ok := blocks[name]
				if !ok {
					t.Errorf("usage does not describe -%s; it describes %q:\n%s", name, names, out.String())
					continue
				}
				if envName != "" && !strings.Contains(block, envName) {
					t.Errorf("usage of -%s does not name %s:\n%s", name, envName, block)
				}
			}
			if len(blocks) != len(flags) {
				t.Errorf("usage describes flags %q, want exactly %d", names, len(flags))
			}
		})
	}
}

// usageBlocks splits flag.PrintDefaults output into the text of each flag,
// by name.
func usageBlocks(usage string) map[string]string {
	blocks := map[string]string{}
	var current string
	for _, line := range strings.Split(usage, "\n") {
		if rest, ok := strings.CutPrefix(line, "  -"); ok {
			current, _, _ = strings.Cut(rest, " ")
			blocks[current] = line
			continue
		}
		if current != "" && strings.HasPrefix(line, "    \t") {
			blocks[current] += "\n" + line
		}
	}
	return blocks
}

func TestVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--version"}, {"-version"}, {"--version=true"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			got, err := config.Parse(args, env(nil), &bytes.Buffer{})
			if err != nil {
				t.Fatalf("Parse(%q): %v", args, err)
			}
			want := defaults()
			want.ShowVersion = true
			if diff := cmp.Diff(want, got, ignoreUnexported); diff != "" {
				t.Errorf("Parse(%q) mismatch (-want +got):\n%s", args, diff)
			}
		})
	}
}
