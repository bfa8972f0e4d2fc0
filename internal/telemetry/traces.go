package telemetry

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/opentact-facade/opentact-facade/internal/version"
)

// Propagator is W3C Trace Context (traceparent, tracestate) and Baggage.
func Propagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// TracingConfigured reports whether the standard OTEL_* variables ask for
// traces: an OTLP endpoint is set, or OTEL_TRACES_EXPORTER names otlp.
// Tracing is off otherwise, and always with OTEL_SDK_DISABLED=true or
// OTEL_TRACES_EXPORTER=none.
func TracingConfigured(lookupEnv func(string) (string, bool)) bool {
	get := func(k string) string { v, _ := lookupEnv(k); return strings.TrimSpace(v) }
	if strings.EqualFold(get("OTEL_SDK_DISABLED"), "true") {
		return false
	}
	switch exp := strings.ToLower(get("OTEL_TRACES_EXPORTER")); exp {
	case "none":
		return false
	case "otlp":
		return true
	}
	return get("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// NewTracerProvider returns a tracer provider exporting over OTLP as the
// OTEL_* variables say (endpoint, headers, protocol: http/protobuf by
// default, or grpc), or nil when TracingConfigured is false. Shut it
// down on exit to flush the last spans.
func NewTracerProvider(ctx context.Context, lookupEnv func(string) (string, bool)) (*sdktrace.TracerProvider, error) {
	if !TracingConfigured(lookupEnv) {
		return nil, nil
	}
	protocolVar := "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	protocol, ok := lookupEnv(protocolVar)
	if !ok {
		protocolVar = "OTEL_EXPORTER_OTLP_PROTOCOL"
		protocol, _ = lookupEnv(protocolVar)
	}
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch strings.TrimSpace(protocol) {
	case "", "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("%s %q: want http/protobuf or grpc", protocolVar, protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	// Our name and version over the SDK's defaults; OTEL_SERVICE_NAME and
	// OTEL_RESOURCE_ATTRIBUTES over both.
	res, err := resource.Merge(resource.Default(),
		resource.NewSchemaless(semconv.ServiceName("opentact-facade"), semconv.ServiceVersion(version.Current())))
	if err == nil {
		res, err = resource.Merge(res, resource.Environment())
	}
	if err != nil {
		return nil, err
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}
