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

	"github.com/opentact-facade/opentact-facade/internal/netguard"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
	"github.com/opentact-facade/opentact-facade/internal/version"
)

// Metrics is the facade's Prometheus registry and its collectors.
type Metrics struct {
	registry *prometheus.Registry
	// GRPC are go-grpc-middleware's server metrics:
	// grpc_server_started_total, grpc_server_handled_total,
	// grpc_server_handling_seconds and more, REST calls included (they
	// are run through the same interceptors in the process).
	GRPC *grpcprom.ServerMetrics
	// Upstream observes the Opentact client.
	Upstream *UpstreamMetrics

	shed        *prometheus.CounterVec
	refused     *prometheus.CounterVec
	cut         *prometheus.CounterVec
	restRefused *prometheus.CounterVec
}

// Why a call was refused, the reason label of opentact_facade_shed_total;
// the upstream client's own reasons (upstream.Shed*) are the others.
const (
	ShedInFlight       = "in_flight"       // the facade had as many calls in flight as it admits
	ShedRequestTimeout = "request_timeout" // a gRPC stream's request message did not come in time
	ShedShutdown       = "shutdown"        // still running at the end of the shutdown grace
)

var shedReasons = []string{ShedInFlight, upstream.ShedQueue, upstream.ShedDeadline, upstream.ShedCallerGone, ShedRequestTimeout, ShedShutdown}

// Why a REST request was refused before a handler, the reason label of
// opentact_facade_rest_refused_total.
const (
	RESTNotFound             = "not_found"              // no route for the path (404)
	RESTMethodNotAllowed     = "method_not_allowed"     // a route, not for this method (405)
	RESTBodyTooLarge         = "body_too_large"         // a body over the bound (413)
	RESTUnsupportedMediaType = "unsupported_media_type" // a body that is not application/json (415)
	RESTMalformedRequest     = "malformed_request"      // a body, path value or header the gateway cannot decode, or data after the JSON value (400)
	RESTMalformedCredentials = "malformed_credentials"  // a credential header the facade will not forward (400)
)

var restRefusedReasons = []string{RESTNotFound, RESTMethodNotAllowed, RESTBodyTooLarge, RESTUnsupportedMediaType, RESTMalformedRequest, RESTMalformedCredentials}

// Listeners are the values of the listener label: the two public ports
// and the admin port (probes and metrics).
var listeners = []string{"grpc", "rest", "admin"}

// Why a listener refused a connection, the reason label of
// opentact_facade_connections_refused_total: netguard's reasons.
var refusedReasons = []string{netguard.RefusedMax, netguard.RefusedPerClient}

// NewMetrics registers the gRPC server metrics, the upstream client
// metrics, the Go runtime and process collectors, and
// opentact_facade_build_info. breakerState reports the circuit breaker's
// state ("closed", "half-open" or "open") at scrape time.
func NewMetrics(breakerState func() string, endpoints []string) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		registry: reg,
		GRPC: grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
			grpcprom.WithHistogramBuckets([]float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}),
		)),
		shed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opentact_facade_shed_total",
			Help: "Calls refused without a request to Opentact, by reason: in_flight (the facade's bound of calls in flight), upstream_queue (no request slot free in time), deadline (less time left than Opentact takes), caller_gone, request_timeout (no gRPC request message in time), shutdown (cut at the end of the shutdown grace).",
		}, []string{"reason"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opentact_facade_connections_refused_total",
			Help: "Connections closed as soon as accepted, by listener and reason: max_connections (the listener had as many open as it allows), max_connections_per_client (the client's address had as many open as it allows).",
		}, []string{"listener", "reason"}),
		cut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opentact_facade_connections_cut_total",
			Help: "Connections the facade ended for abuse, by reason: rapid_reset (HTTP/2 streams reset by the client as fast as it opened them).",
		}, []string{"reason"}),
		restRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opentact_facade_rest_refused_total",
			Help: "REST requests refused before a handler, by reason: not_found, method_not_allowed, body_too_large, unsupported_media_type, malformed_request (a body, path value or header that cannot be decoded), malformed_credentials.",
		}, []string{"reason"}),
	}
	m.Upstream = newUpstreamMetrics(m.shed, endpoints)
	for _, r := range shedReasons {
		m.shed.WithLabelValues(r)
	}
	for _, l := range listeners {
		for _, r := range refusedReasons {
			m.refused.WithLabelValues(l, r)
		}
	}
	m.cut.WithLabelValues("rapid_reset")
	for _, r := range restRefusedReasons {
		m.restRefused.WithLabelValues(r)
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
		m.shed, m.refused, m.cut, m.restRefused,
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

// Shed counts a call refused for reason (one of the Shed* reasons).
func (m *Metrics) Shed(reason string) { m.shed.WithLabelValues(reason).Inc() }

// ConnectionRefused counts a connection the listener ("grpc", "rest" or
// "admin") closed because it was at a bound; reason is netguard's.
func (m *Metrics) ConnectionRefused(listener, reason string) {
	m.refused.WithLabelValues(listener, reason).Inc()
}

// RESTRefused counts a REST request refused before a handler, for reason
// (one of the REST* reasons).
func (m *Metrics) RESTRefused(reason string) { m.restRefused.WithLabelValues(reason).Inc() }

// ConnectionCut counts a connection ended for abuse.
func (m *Metrics) ConnectionCut(reason string) { m.cut.WithLabelValues(reason).Inc() }

// Load reads, at scrape time, what the facade holds now.
type Load struct {
	CallsInFlight func() int64 // calls admitted, over both doors
	AnswerBytes   func() int64 // bytes of Opentact's answers charged to calls in flight
	// Upstream is the calls waiting for a request slot to Opentact and the
	// estimate of Opentact's answer time.
	Upstream    func() (waiting int, estimate time.Duration)
	Connections func(listener string) int
	// UpstreamConns is the connections to Opentact open now and made
	// since start.
	UpstreamConns func() (open int64, opened uint64)
}

// Register adds collectors of another part of the facade.
func (m *Metrics) Register(cs ...prometheus.Collector) { m.registry.MustRegister(cs...) }

// RegisterLoad adds the gauges of what the facade holds now.
func (m *Metrics) RegisterLoad(l Load) {
	gauge := func(name, help string, v func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, v)
	}
	m.registry.MustRegister(
		gauge("opentact_facade_calls_in_flight", "Calls in flight, gRPC and REST together.", func() float64 { return float64(l.CallsInFlight()) }),
		gauge("opentact_facade_answer_bytes_held", "Bytes of Opentact's answers held by calls in flight.", func() float64 { return float64(l.AnswerBytes()) }),
		gauge("opentact_upstream_queue_length", "Calls waiting for a request slot to Opentact.", func() float64 {
			waiting, _ := l.Upstream()
			return float64(waiting)
		}),
		gauge("opentact_upstream_connections_open", "Connections open to Opentact.", func() float64 {
			open, _ := l.UpstreamConns()
			return float64(open)
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "opentact_upstream_connections_opened_total", Help: "Connections made to Opentact since start.",
		}, func() float64 {
			_, opened := l.UpstreamConns()
			return float64(opened)
		}),
		gauge("opentact_upstream_answer_time_estimate_seconds", "The estimate of Opentact's answer time (an EWMA) that calls are admitted by.", func() float64 {
			_, est := l.Upstream()
			return est.Seconds()
		}),
	)
	for _, name := range listeners {
		m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "opentact_facade_connections_open", Help: "Connections open, by listener.",
			ConstLabels: prometheus.Labels{"listener": name},
		}, func() float64 { return float64(l.Connections(name)) }))
	}
}

// ServiceCounters are the service's running totals, read at scrape time.
type ServiceCounters struct {
	CacheHits, CacheMisses, CacheEvictions uint64
	CacheEntries                           int
	CacheBytes                             int64
	Shared                                 uint64

	IdempotencyFirst, IdempotencyReplayed, IdempotencyUnknown, IdempotencyConflicts uint64
	IdempotencyEvictions                                                            uint64
	IdempotencyEntries                                                              int
	IdempotencyBytes                                                                int64
}

// RegisterService adds the service's counters: calls that shared another
// call's upstream request, the request_id store's lookups, evictions and
// size, and, when cacheOn, the response cache's hits, misses, evictions
// and size.
func (m *Metrics) RegisterService(counters func() ServiceCounters, cacheOn bool) {
	counter := func(name, help string, v func(ServiceCounters) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return v(counters()) })
	}
	m.registry.MustRegister(counter("opentact_facade_shared_calls_total",
		"Calls answered by an identical call's request to Opentact, already under way.",
		func(c ServiceCounters) float64 { return float64(c.Shared) }))
	idem := func(result string, v func(ServiceCounters) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "opentact_facade_idempotency_requests_total", Help: "Calls with a request_id, by result: first (sent to Opentact), replayed (the first call's answer), unknown (the first call's outcome is unknown), conflict (the request_id was used for another request).",
			ConstLabels: prometheus.Labels{"result": result},
		}, func() float64 { return float64(v(counters())) })
	}
	m.registry.MustRegister(
		idem("first", func(c ServiceCounters) uint64 { return c.IdempotencyFirst }),
		idem("replayed", func(c ServiceCounters) uint64 { return c.IdempotencyReplayed }),
		idem("unknown", func(c ServiceCounters) uint64 { return c.IdempotencyUnknown }),
		idem("conflict", func(c ServiceCounters) uint64 { return c.IdempotencyConflicts }),
		counter("opentact_facade_idempotency_evictions_total", "Outcomes of calls with a request_id dropped from the full store before their 24 hours, least recently used first.",
			func(c ServiceCounters) float64 { return float64(c.IdempotencyEvictions) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "opentact_facade_idempotency_entries", Help: "Outcomes of calls with a request_id in the store.",
		}, func() float64 { return float64(counters().IdempotencyEntries) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "opentact_facade_idempotency_bytes", Help: "The size of the outcomes in the request_id store, as --idempotency-max-bytes counts it.",
		}, func() float64 { return float64(counters().IdempotencyBytes) }),
	)
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
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "opentact_facade_cache_bytes", Help: "The size of the answers in the response cache, as --cache-max-bytes counts it.",
		}, func() float64 { return float64(counters().CacheBytes) }),
	)
}

// UpstreamMetrics implements upstream.Observer. Every series of a
// request has the endpoint label, one value per Opentact call (see
// upstream.NewEndpoint).
type UpstreamMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight *prometheus.GaugeVec
	retries  *prometheus.CounterVec
	rejected *prometheus.CounterVec
	shed     *prometheus.CounterVec

	// series are each endpoint's requests series, looked up once rather
	// than by their label values on every request. Read-only once made.
	series map[string]*endpointSeries
}

type endpointSeries struct {
	inFlight  prometheus.Gauge
	byOutcome map[string]outcomeSeries
}

// outcomeSeries are one endpoint's requests counter and duration
// histogram for one outcome.
type outcomeSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

var _ upstream.Observer = (*UpstreamMetrics)(nil)

// outcomes are every value of the "outcome" label, created up front so
// that each series exists from the start.
var outcomes = []string{"2xx", "3xx", "4xx", "5xx", "transport_error", "canceled"}

func newUpstreamMetrics(shed *prometheus.CounterVec, endpoints []string) *UpstreamMetrics {
	u := &UpstreamMetrics{
		shed: shed,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opentact_upstream_requests_total",
			Help: "Requests to Opentact (each attempt), by endpoint and outcome: HTTP status class, transport_error, or canceled by the caller.",
		}, []string{"endpoint", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "opentact_upstream_request_duration_seconds",
			Help:    "Time of one request to Opentact, until its whole answer was read, by endpoint and outcome.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"endpoint", "outcome"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "opentact_upstream_requests_in_flight",
			Help: "Requests to Opentact under way, by endpoint.",
		}, []string{"endpoint"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opentact_upstream_retries_total",
			Help: "Requests to Opentact that were retries of a transient failure, by endpoint.",
		}, []string{"endpoint"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "opentact_upstream_circuit_rejections_total",
			Help: "Calls answered Unavailable without a request because the circuit breaker was open, by endpoint.",
		}, []string{"endpoint"}),
	}
	u.series = make(map[string]*endpointSeries)
	for _, e := range endpoints {
		es := &endpointSeries{inFlight: u.inFlight.WithLabelValues(e), byOutcome: map[string]outcomeSeries{}}
		u.retries.WithLabelValues(e)
		u.rejected.WithLabelValues(e)
		for _, o := range outcomes {
			es.byOutcome[o] = outcomeSeries{requests: u.requests.WithLabelValues(e, o), duration: u.duration.WithLabelValues(e, o)}
		}
		u.series[e] = es
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
func (u *UpstreamMetrics) RequestStarted(endpoint string) {
	if es := u.series[endpoint]; es != nil {
		es.inFlight.Inc()
		return
	}
	u.inFlight.WithLabelValues(endpoint).Inc()
}

// RequestDone implements upstream.Observer.
func (u *UpstreamMetrics) RequestDone(endpoint, outcome string, d time.Duration) {
	if es := u.series[endpoint]; es != nil {
		if oc, ok := es.byOutcome[outcome]; ok {
			es.inFlight.Dec()
			oc.requests.Inc()
			oc.duration.Observe(d.Seconds())
			return
		}
	}
	u.inFlight.WithLabelValues(endpoint).Dec()
	u.requests.WithLabelValues(endpoint, outcome).Inc()
	u.duration.WithLabelValues(endpoint, outcome).Observe(d.Seconds())
}

// Retried implements upstream.Observer.
func (u *UpstreamMetrics) Retried(endpoint string) { u.retries.WithLabelValues(endpoint).Inc() }

// Rejected implements upstream.Observer.
func (u *UpstreamMetrics) Rejected(endpoint string) { u.rejected.WithLabelValues(endpoint).Inc() }

// Shed implements upstream.Observer. The shed counter is the facade's,
// by reason alone: most refusals happen before an endpoint is known.
func (u *UpstreamMetrics) Shed(_, reason string) { u.shed.WithLabelValues(reason).Inc() }
