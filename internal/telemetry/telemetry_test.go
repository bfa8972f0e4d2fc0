package telemetry_test

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/opentact-facade/opentact-facade/internal/telemetry"
)

// envOf is a lookupEnv over a map, so that table cases need not touch the
// process environment and can run in parallel.
func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestTelemetryTracingConfigured(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		want bool
	}{
		{"no variables", nil, false},
		{"unrelated variables", map[string]string{"OTEL_SERVICE_NAME": "x", "OTEL_EXPORTER_OTLP_HEADERS": "a=b"}, false},
		{"endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, true},
		{"traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, true},
		{"blank endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, false},
		{"exporter otlp", map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true},
		{"exporter OTLP, any case", map[string]string{"OTEL_TRACES_EXPORTER": "OTLP"}, true},
		{"exporter none with endpoint", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, false},
		{"sdk disabled", map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, false},
		{"sdk disabled beats exporter otlp", map[string]string{"OTEL_SDK_DISABLED": "TRUE", "OTEL_TRACES_EXPORTER": "otlp"}, false},
		{"sdk disabled false", map[string]string{"OTEL_SDK_DISABLED": "false", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := telemetry.TracingConfigured(envOf(tc.env)); got != tc.want {
				t.Errorf("TracingConfigured(%v) = %v, want %v", tc.env, got, tc.want)
			}
		})
	}
}

func TestTelemetryNoTracerProviderWhenNotConfigured(t *testing.T) {
	t.Parallel()
	for _, env := range []map[string]string{
		nil,
		{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"},
		{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"},
	} {
		tp, err := telemetry.NewTracerProvider(context.Background(), envOf(env))
		if tp != nil || err != nil {
			t.Errorf("NewTracerProvider(%v) = %v, %v; want nil, nil", env, tp, err)
		}
	}
}

func TestTelemetryUnknownProtocolIsAnError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env     map[string]string
		names   string // the variable the error must name
		notName string // and must not
	}{
		{
			env:   map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
			names: "OTEL_EXPORTER_OTLP_PROTOCOL",
		},
		{
			// The traces-specific variable wins over the general one, and
			// is the one to blame.
			env:     map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "carrier-pigeon", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
			names:   "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
			notName: "OTEL_EXPORTER_OTLP_PROTOCOL ",
		},
	} {
		tp, err := telemetry.NewTracerProvider(context.Background(), envOf(tc.env))
		if err == nil || tp != nil {
			t.Errorf("NewTracerProvider(%v) = %v, %v; want an error", tc.env, tp, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.names) || (tc.notName != "" && strings.Contains(err.Error(), tc.notName)) {
			t.Errorf("error %q does not name %s", err, tc.names)
		}
	}
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	_ = l.Close()
	return port
}

// TestTelemetryTracerProviderExportsLazily builds real OTLP providers
// (the exporters read the process environment, hence t.Setenv and no
// t.Parallel) aimed at a port nothing listens on: building one must not
// connect, and shutting it down with a span still to export must return
// within its context, error or not.
func TestTelemetryTracerProviderExportsLazily(t *testing.T) {
	for _, protocol := range []string{"", "http/protobuf", "grpc"} {
		t.Run("protocol="+protocol, func(t *testing.T) {
			// Whatever the machine running the tests has set must not
			// change the outcome.
			for _, k := range []string{
				"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
				"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL",
			} {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:"+closedPort(t))
			if protocol != "" {
				t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
			}

			start := time.Now()
			tp, err := telemetry.NewTracerProvider(context.Background(), os.LookupEnv)
			if err != nil {
				t.Fatalf("NewTracerProvider: %v", err)
			}
			if tp == nil {
				t.Fatal("NewTracerProvider returned no provider with OTEL_EXPORTER_OTLP_ENDPOINT set")
			}
			// Waiting for the collector would take the exporter's 10s
			// timeout, or for ever.
			if d := time.Since(start); d >= 8*time.Second {
				t.Errorf("NewTracerProvider took %v: it should not wait for the collector", d)
			}
			_, span := tp.Tracer("test").Start(context.Background(), "a span nobody will receive")
			if !span.SpanContext().IsSampled() {
				t.Error("the provider does not sample: spans would never be exported")
			}
			span.End()

			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			start = time.Now()
			err = tp.Shutdown(ctx)
			d := time.Since(start)
			t.Logf("Shutdown returned after %v: %v", d.Round(time.Millisecond), err)
			// Ignoring its context, Shutdown would take the exporter's
			// 10s timeout.
			if d >= 8*time.Second {
				t.Errorf("Shutdown took %v with a 500ms context", d)
			}
		})
	}
}
