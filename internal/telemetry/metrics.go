// Package telemetry wires the facade's metrics (Prometheus) and traces
// (OpenTelemetry). No metric label ever carries anything from a request:
// labels are gRPC method names and codes, HTTP status classes, and the
// build's version.
package telemetry

import (
	"net/http"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/opentact-facade/opentact-facade/internal/upstream"
	"github.com/opentact-facade/opentact-facade/internal/version"
)

// Metrics is the facade's Prometheus registry and its collectors.
type Metrics struct {
	registry *prometheus.Registry
	// GRPC are go-grpc-middleware's server metrics:
	// grpc_server_started_total, grpc_server_handled_total,
	// grpc_server_handling_seconds and more, REST calls included (they
	// are gRPC calls on the in-memory connection).
	GRPC *grpcprom.ServerMetrics
	// Upstream observes the Opentact client.
	Upstream *UpstreamMetrics
}

// NewMetrics registers the gRPC server metrics, the upstream client
// metrics, the Go runtime and process collectors, and
// opentact_facade_build_info. breakerState reports the circuit breaker's
// state ("closed", "half-open" or "open") at scrape time.
func NewMetrics(breakerState func() string) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		registry: reg,
		GRPC: grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets([]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}),
		)),
		Upstream: newUpstreamMetrics(),
	}
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "opentact_facade_build_info",
		Help:        "Always 1; the labels say which build is running.",
		ConstLabels: prometheus.Labels{"version": version.Current(), "commit": version.CommitOrUnknown(), "goversion": version.GoVersion()},
	})
	buildInfo.Set(1)
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo,
		m.GRPC,
	)
	m.Upstream.register(reg, breakerState)
	return m
}

// Handler serves the registry in the Prometheus text format (or
// OpenMetrics, when the scraper asks for it).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{
		EnableOpenMetrics: true,
		ErrorHandling:     promhttp.ContinueOnError,
	})
}

// ServiceCounters are the service's running totals, read at scrape time.
type ServiceCounters struct {
	CacheHits, CacheMisses, CacheEvictions uint64
	CacheEntries                           int
	Shared                                 uint64
}

// RegisterService adds the service's counters: calls that shared another
// call's upstream request, and, when cacheOn, the response cache's hits,
// misses, evictions and size.
func (m *Metrics) RegisterService(counters func() ServiceCounters, cacheOn bool) {
	counter := func(name, help string, v func(ServiceCounters) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return v(counters()) })
	}
	m.registry.MustRegister(counter("opentact_facade_shared_calls_total",
		"Calls answered by an identical call's request to Opentact, already under way.",
		func(c ServiceCounters) float64 { return float64(c.Shared) }))
	if !cacheOn {
		return
	}
	m.registry.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "opentact_facade_cache_requests_total", Help: "Response cache lookups, by result.",
			ConstLabels: prometheus.Labels{"result": "hit"},
		}, func() float64 { return float64(counters().CacheHits) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "opentact_facade_cache_requests_total", Help: "Response cache lookups, by result.",
			ConstLabels: prometheus.Labels{"result": "miss"},
		}, func() float64 { return float64(counters().CacheMisses) }),
		counter("opentact_facade_cache_evictions_total", "Answers dropped from the full response cache, least recently used first.",
			func(c ServiceCounters) float64 { return float64(c.CacheEvictions) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "opentact_facade_cache_entries", Help: "Answers in the response cache.",
		}, func() float64 { return float64(counters().CacheEntries) }),
	)
}

// UpstreamMetrics implements upstream.Observer.
type UpstreamMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
	retries  prometheus.Counter
	rejected prometheus.Counter
}

var _ upstream.Observer = (*UpstreamMetrics)(nil)

// outcomes are every value of the "outcome" label, created up front so
// that each series exists from the start.
var outcomes = []string{"2xx", "3xx", "4xx", "5xx", "transport_error", "canceled"}

func newUpstreamMetrics() *UpstreamMetrics {
	u := &UpstreamMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opentact_upstream_requests_total",
			Help: "Requests to Opentact (each attempt), by outcome: HTTP status class, transport_error, or canceled by the caller.",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "opentact_upstream_request_duration_seconds",
			Help:    "Time of one request to Opentact, until its whole answer was read, by outcome.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"outcome"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "opentact_upstream_requests_in_flight",
			Help: "Requests to Opentact under way.",
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "opentact_upstream_retries_total",
			Help: "Requests to Opentact that were retries of a transient failure.",
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "opentact_upstream_circuit_rejections_total",
			Help: "Calls answered Unavailable without a request because the circuit breaker was open.",
		}),
	}
	for _, o := range outcomes {
		u.requests.WithLabelValues(o)
		u.duration.WithLabelValues(o)
	}
	return u
}

func (u *UpstreamMetrics) register(reg prometheus.Registerer, breakerState func() string) {
	reg.MustRegister(u.requests, u.duration, u.inFlight, u.retries, u.rejected)
	for _, state := range []string{"closed", "half-open", "open"} {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "opentact_upstream_circuit_state",
			Help:        "1 for the circuit breaker's current state, 0 for the others.",
			ConstLabels: prometheus.Labels{"state": state},
		}, func() float64 {
			if breakerState != nil && breakerState() == state {
				return 1
			}
			return 0
		}))
	}
}

// RequestStarted implements upstream.Observer.
func (u *UpstreamMetrics) RequestStarted() { u.inFlight.Inc() }

// RequestDone implements upstream.Observer.
func (u *UpstreamMetrics) RequestDone(outcome string, d time.Duration) {
	u.inFlight.Dec()
	u.requests.WithLabelValues(outcome).Inc()
	u.duration.WithLabelValues(outcome).Observe(d.Seconds())
}

// Retried implements upstream.Observer.
func (u *UpstreamMetrics) Retried() { u.retries.Inc() }

// Rejected implements upstream.Observer.
func (u *UpstreamMetrics) Rejected() { u.rejected.Inc() }
