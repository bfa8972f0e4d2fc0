// Package defaults states every default of the facade once: the flags
// show these values, and each package falls back on them for a setting
// left zero.
package defaults

import "time"

// Listeners and Opentact.
const (
	GRPCAddr = ":9090"
	HTTPAddr = ":8080"
	// AdminAddr is the probes' and /metrics' listener: loopback, so that
	// nothing outside the host reaches it unless asked for (a pod sets
	// ":9091" for the kubelet and Prometheus); the port next to gRPC's.
	AdminAddr = "127.0.0.1:9091"
	Upstream  = "https://api.opentact.org"
	// EventsURL is Opentact's events WebSocket.
	EventsURL = "wss://api.opentact.org"
)

// Time bounds.
const (
	// UpstreamTimeout bounds a call whose caller set no deadline, all its
	// attempts included.
	UpstreamTimeout = 10 * time.Second
	// MaxCallTimeout caps a caller's deadline; see CallTimeouts.
	MaxCallTimeout = 30 * time.Second
	// ShutdownGrace is how long calls in flight may finish after SIGTERM.
	ShutdownGrace = 15 * time.Second
	// ReadHeaderTimeout bounds a client's request headers (REST) or HTTP/2
	// preface (gRPC), TLS handshake included.
	ReadHeaderTimeout = 5 * time.Second
	// RequestTimeout bounds a gRPC request message, or a REST body, after
	// the headers.
	RequestTimeout = 5 * time.Second
	// IdleTimeout closes a connection without calls.
	IdleTimeout = 2 * time.Minute
	// DialTimeout and TLSHandshakeTimeout bound opening a connection to
	// Opentact.
	DialTimeout         = 5 * time.Second
	TLSHandshakeTimeout = 5 * time.Second
	// ResponseHeaderTimeout bounds the wait for an answer's headers once
	// the request is sent: shorter than UpstreamTimeout, so that an
	// Opentact that hangs fails as a transport timeout, which the circuit
	// breaker counts, rather than as the call's own deadline.
	ResponseHeaderTimeout = 5 * time.Second
)

// Bounds on what the facade holds.
const (
	MaxInFlight             = 4096               // calls in flight, gRPC and REST together
	MaxConnections          = 512                // connections open on each listener
	MaxConnectionsPerClient = MaxConnections / 4 // from one IP address, on each public listener: one client cannot take them all
	MaxConcurrentStreams    = 1024               // calls at once on one gRPC connection
	MaxAnswerBytes          = 32 << 20           // bytes of Opentact's answers held by calls in flight
	UpstreamMaxBody         = 1 << 20            // one answer from Opentact
	UpstreamMaxInFlight     = 512                // requests to Opentact under way at once (and HTTP/1.1 connections)
	UpstreamMaxConns        = 16                 // HTTP/2 connections open to Opentact
	CacheMaxEntries         = 10_000
	CacheMaxBytes           = 32 << 20
	IdempotencyMaxEntries   = 50_000   // answers kept for a repeat of a call with a request_id
	IdempotencyMaxBytes     = 64 << 20 // their size
)

// Retries and the circuit breaker.
const (
	MaxAttempts     = 3
	BaseBackoff     = 50 * time.Millisecond
	MaxBackoff      = time.Second
	MaxRetryAfter   = 2 * time.Second
	BreakerFailures = 5
	BreakerOpenFor  = 5 * time.Second
)

// CallTimeouts fills the time bounds of a call left zero: upstream takes
// UpstreamTimeout, and the cap on a caller's deadline takes
// MaxCallTimeout, or a longer upstream, so that the longest call follows a
// longer --upstream-timeout.
func CallTimeouts(upstream, maxCall time.Duration) (time.Duration, time.Duration) {
	if upstream <= 0 {
		upstream = UpstreamTimeout
	}
	if maxCall <= 0 {
		maxCall = max(MaxCallTimeout, upstream)
	}
	return upstream, max(maxCall, upstream)
}
