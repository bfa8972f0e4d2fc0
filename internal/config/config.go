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
	"strconv"
	"time"

	"github.com/opentact-facade/opentact-facade/internal/server"
	"github.com/opentact-facade/opentact-facade/service"
)

// Config is the facade's configuration.
type Config struct {
	Server      server.Options
	LogLevel    slog.Level
	ShowVersion bool
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
		fs.StringVar(p, flagName, env(envName, def), usage+" (env "+envName+")")
	}
	dur := func(p *time.Duration, flagName, envName string, def time.Duration, usage string) {
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
	boolean := func(p *bool, flagName, envName, usage string) {
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

	str(&c.Server.GRPCAddr, "grpc-addr", "OPENTACT_FACADE_GRPC_ADDR", server.DefaultGRPCAddr, "gRPC listen address")
	str(&c.Server.HTTPAddr, "http-addr", "OPENTACT_FACADE_HTTP_ADDR", server.DefaultHTTPAddr, "REST gateway listen address")
	str(&c.Server.Upstream, "upstream", "OPENTACT_BASE_URL", server.DefaultUpstream, "Opentact API base URL")
	dur(&c.Server.UpstreamTimeout, "upstream-timeout", "OPENTACT_UPSTREAM_TIMEOUT", service.DefaultUpstreamTimeout, "bound on one call to Opentact")
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
	if c.Server.UpstreamTimeout <= 0 {
		source := "--upstream-timeout"
		if !given["upstream-timeout"] {
			source = "OPENTACT_UPSTREAM_TIMEOUT"
		}
		errs = append(errs, fmt.Errorf("%s must be positive", source))
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return c, nil
}
