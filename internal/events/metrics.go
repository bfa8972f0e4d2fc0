package events

import "github.com/prometheus/client_golang/prometheus"

// Metrics count what the hub does.
type Metrics struct {
	streams, sockets       prometheus.Gauge
	received, delivered    *prometheus.CounterVec // by type
	refused                *prometheus.CounterVec // by reason
	reconnects, gaps, slow prometheus.Counter
	renewals               prometheus.Counter
	webhooks               *prometheus.CounterVec // by outcome
	collectors             []prometheus.Collector
}

// NewMetrics returns the hub's metrics, for Collectors to register.
func NewMetrics() *Metrics {
	m := &Metrics{
		streams: prometheus.NewGauge(prometheus.GaugeOpts{Name: "opentact_facade_event_streams",
			Help: "StreamEvents streams open."}),
		sockets: prometheus.NewGauge(prometheus.GaugeOpts{Name: "opentact_facade_event_sockets",
			Help: "WebSockets to Opentact open and authenticated, one per user with streams."}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "opentact_facade_events_received_total",
			Help: "Events received from Opentact's sockets, by type (\"other\" for types the facade does not model)."}, []string{"type"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "opentact_facade_events_delivered_total",
			Help: "Events handed to streams, one per stream, by type."}, []string{"type"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "opentact_facade_events_refused_total",
			Help: "Frames from Opentact's sockets dropped: too_large, binary or malformed."}, []string{"reason"}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: "opentact_facade_event_socket_reconnects_total",
			Help: "Sockets to Opentact that dropped after opening and are reopened."}),
		gaps: prometheus.NewCounter(prometheus.CounterOpts{Name: "opentact_facade_event_gaps_total",
			Help: "facade.gap events sent: a socket reopened after events may have been lost."}),
		slow: prometheus.NewCounter(prometheus.CounterOpts{Name: "opentact_facade_event_slow_consumers_total",
			Help: "Streams ended with RESOURCE_EXHAUSTED for falling behind."}),
		renewals: prometheus.NewCounter(prometheus.CounterOpts{Name: "opentact_facade_event_token_renewals_total",
			Help: "JWTs of sockets to Opentact renewed before they expired."}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "opentact_facade_webhook_events_total",
			Help: "Webhook calls from Opentact: accepted, or refused and why."}, []string{"outcome"}),
	}
	for _, t := range []string{TypeCallState, TypeSMS, TypeBalance, TypeOrder, "call_record", "other"} {
		m.received.WithLabelValues(t)
		m.delivered.WithLabelValues(t)
	}
	m.delivered.WithLabelValues(TypeGap)
	for _, r := range []string{"too_large", "binary", "malformed"} {
		m.refused.WithLabelValues(r)
	}
	for _, o := range webhookOutcomes {
		m.webhooks.WithLabelValues(o)
	}
	m.collectors = []prometheus.Collector{m.streams, m.sockets, m.received, m.delivered, m.refused, m.reconnects, m.gaps, m.slow, m.renewals, m.webhooks}
	return m
}

// Collectors are the metrics to register.
func (m *Metrics) Collectors() []prometheus.Collector { return m.collectors }
