// Package server is the facade's composition root: it builds the upstream
// client, the engine (internal/engine) with the served services, the gRPC
// server and the REST edge (internal/rest) over them, the admin port, and
// runs their listeners, guards, interceptors and graceful shutdown.
package server

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	noopmetric "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/stats"
	"google.golang.org/protobuf/proto"

	"github.com/opentact-facade/opentact-facade/internal/admission"
	"github.com/opentact-facade/opentact-facade/internal/apierr"
	"github.com/opentact-facade/opentact-facade/internal/certs"
	"github.com/opentact-facade/opentact-facade/internal/declare"
	"github.com/opentact-facade/opentact-facade/internal/defaults"
	"github.com/opentact-facade/opentact-facade/internal/engine"
	"github.com/opentact-facade/opentact-facade/internal/events"
	"github.com/opentact-facade/opentact-facade/internal/logs"
	"github.com/opentact-facade/opentact-facade/internal/netguard"
	"github.com/opentact-facade/opentact-facade/internal/openapi"
	"github.com/opentact-facade/opentact-facade/internal/rest"
	"github.com/opentact-facade/opentact-facade/internal/telemetry"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
	"github.com/opentact-facade/opentact-facade/service"
)

// Defaults for Options fields left zero.
const (
	DefaultGRPCAddr      = defaults.GRPCAddr
	DefaultHTTPAddr      = defaults.HTTPAddr
	DefaultAdminAddr     = defaults.AdminAddr // the command's --admin-addr; Options.AdminAddr has no default
	DefaultUpstream      = defaults.Upstream
	DefaultEventsURL     = defaults.EventsURL
	DefaultShutdownGrace = defaults.ShutdownGrace

	DefaultMaxConcurrentStreams    = defaults.MaxConcurrentStreams
	DefaultReadHeaderTimeout       = defaults.ReadHeaderTimeout
	DefaultMaxInFlight             = defaults.MaxInFlight
	DefaultMaxConnections          = defaults.MaxConnections
	DefaultMaxConnectionsPerClient = defaults.MaxConnectionsPerClient
	DefaultMaxAnswerBytes          = defaults.MaxAnswerBytes
	DefaultRequestTimeout          = defaults.RequestTimeout
	DefaultIdleTimeout             = defaults.IdleTimeout
)

// Limits on what a caller may send. Requests of the API are a few
// hundred bytes, and credentials a few KiB; these caps, times the calls
// in flight, are the memory a flood of the largest requests can take.
const (
	maxRecvMsgSize = 16 << 10 // one gRPC request message
	maxSendMsgSize = 1 << 20  // one gRPC answer (a profile is a few KiB)
	maxHeaderBytes = 16 << 10 // gRPC metadata and REST headers
)

// cutWait is how long, once the shutdown grace is over and the calls
// still running were told to end, they get to send their status before
// their connections are closed.
const cutWait = time.Second

// Options configures a Server.
type Options struct {
	GRPCAddr            string        // gRPC listen address; DefaultGRPCAddr if empty
	HTTPAddr            string        // REST gateway listen address; DefaultHTTPAddr if empty
	Upstream            string        // Opentact's base URL; DefaultUpstream if empty
	UpstreamTimeout     time.Duration // bound on a call without a caller deadline, retries included; engine.DefaultUpstreamTimeout if 0
	MaxCallTimeout      time.Duration // cap on a caller's deadline; engine.DefaultMaxCallTimeout if 0
	UpstreamMaxAttempts int           // attempts per call, retries included, at most upstream.MaxAttemptsLimit; 3 if 0
	UpstreamMaxBody     int64         // cap on Opentact's answer in bytes; upstream.DefaultMaxBodySize if 0
	InsecureUpstream    bool          // allow a plain-http upstream that is not on loopback
	ShutdownGrace       time.Duration // how long in-flight calls may run on; DefaultShutdownGrace if 0
	ShutdownDelay       time.Duration // how long to keep serving, not ready, before draining
	TLS                 TLSFiles      // TLS on both listeners when Cert is set
	CacheTTL            time.Duration // keep successful answers this long; 0 turns the cache off
	CacheMaxEntries     int           // bound on cached answers; engine.DefaultCacheMaxEntries if 0
	Logger              *slog.Logger  // nil discards logs

	// AdminAddr is where the probes (/healthz, /readyz) and /metrics are
	// served, plain HTTP on a listener of their own that no client of the
	// public ports can starve; none when empty (the command's --admin-addr
	// defaults to DefaultAdminAddr).
	AdminAddr string
	// MaxInFlight bounds the calls in flight, gRPC and REST together; a
	// call past it is refused at once with FACADE_BUSY.
	// DefaultMaxInFlight if 0.
	MaxInFlight int
	// MaxAnswerBytes bounds the bytes of Opentact's answers held by calls
	// in flight (a call waits, within its time, for room to read its
	// answer); DefaultMaxAnswerBytes if 0, and never below
	// UpstreamMaxBody.
	MaxAnswerBytes int64
	// MaxConnections bounds the connections open on each public listener; one
	// past it is closed as soon as it is accepted.
	// DefaultMaxConnections if 0.
	MaxConnections int
	// MaxConnectionsPerClient bounds the connections open from one IP
	// address on each public listener, so that one client cannot take
	// all of MaxConnections; a quarter of MaxConnections (at least 1) if 0.
	MaxConnectionsPerClient int
	// UpstreamMaxInFlight bounds the requests to Opentact under way at
	// once (see upstream.WithMaxInFlight); upstream.DefaultMaxInFlight
	// if 0.
	UpstreamMaxInFlight int
	// UpstreamMaxConnections bounds the connections open to Opentact
	// (see upstream.WithMaxConnections); upstream.DefaultMaxConnections
	// if 0.
	UpstreamMaxConnections int
	// UpstreamCA, when set, is a PEM CA bundle: Opentact's certificate
	// must be signed by one of its CAs, instead of the system's.
	UpstreamCA string
	// MaxConcurrentStreams bounds the calls at once on one gRPC
	// connection; DefaultMaxConcurrentStreams if 0.
	MaxConcurrentStreams uint32
	// ReadHeaderTimeout bounds how long a client may take to send its
	// request headers (REST) or its HTTP/2 preface (gRPC), TLS handshake
	// included: a slowloris client is cut after it.
	// DefaultReadHeaderTimeout if 0.
	ReadHeaderTimeout time.Duration
	// RequestTimeout bounds how long, after its headers, a gRPC stream
	// may take to send its request message, and a REST call its body;
	// DefaultRequestTimeout if 0.
	RequestTimeout time.Duration
	// IdleTimeout closes a connection that has had no call for this long,
	// on both listeners; DefaultIdleTimeout if 0.
	IdleTimeout time.Duration
	// CacheMaxBytes bounds the cache by the size of its answers;
	// engine.DefaultCacheMaxBytes if 0.
	CacheMaxBytes int64
	// IdempotencyMaxEntries and IdempotencyMaxBytes bound the store of
	// the answers to calls with a request_id, kept 24 hours for a repeat
	// (least recently used out first);
	// engine.DefaultIdempotencyMaxEntries and
	// engine.DefaultIdempotencyMaxBytes if 0.
	IdempotencyMaxEntries int
	IdempotencyMaxBytes   int64
	// Now is the clock of that store's 24 hours; time.Now if nil.
	Now func() time.Time
	// EventsURL is Opentact's events WebSocket; DefaultEventsURL if
	// empty.
	EventsURL string
	// Events tunes the events hub (its bounds and timings); its URL,
	// Identify, Metrics and Log are the server's.
	Events events.Options
	// WebhookKey, when set, serves Opentact's webhook calls on
	// POST /v1/webhooks/opentact/{WebhookKey}; WebhookAllow, when not
	// empty, only from these networks.
	WebhookKey   string
	WebhookAllow []netip.Prefix
	// ResetPolicy, when not nil, replaces the default judgement of an
	// HTTP/2 rapid reset on the gRPC port.
	ResetPolicy *netguard.ResetPolicy

	// Retry and Breaker replace the upstream client's default policies
	// when not nil (UpstreamMaxAttempts still applies to Retry);
	// UpstreamTimeouts bounds the phases of one upstream request.
	//
	// TracerProvider, when not nil, traces every call (otelgrpc) and every
	// request to Opentact (otelhttp), and propagates W3C traceparent to
	// Opentact.
	Retry            *upstream.RetryPolicy
	Breaker          *upstream.BreakerPolicy
	UpstreamTimeouts upstream.TransportTimeouts
	TracerProvider   trace.TracerProvider
}

// Server is a running facade: a gRPC server and a REST gateway that calls
// the same service in the process, through the same interceptors.
type Server struct {
	log        *slog.Logger
	sampler    *logs.Sampler // for the lines a client can cause in floods
	grace      time.Duration
	delay      time.Duration
	grpc       *grpc.Server
	http       *http.Server
	tls        bool
	services   []string // the names of the facade's services, for health
	grpcLis    net.Listener
	httpLis    net.Listener
	grpcConns  *netguard.Limited
	httpConns  *netguard.Limited
	admin      *http.Server      // nil without an admin listener
	adminConns *netguard.Limited // nil without an admin listener
	health     *health.Server
	draining   chan struct{} // closed when the shutdown starts to drain
	ready      atomic.Bool
	upstream   *upstream.Client
	metrics    *telemetry.Metrics
	limiter    *admission.Limiter
	admit      *admitter
	events     *events.Hub
	endCalls   context.Context // ended, with errShuttingDown, when the grace runs out
	cancelEnd  context.CancelCauseFunc
}

// New builds a Server and opens its listeners; Serve starts it.
func New(opts Options) (*Server, error) {
	opts = withDefaults(opts)
	s := &Server{log: opts.Logger, grace: opts.ShutdownGrace, delay: opts.ShutdownDelay, sampler: logs.NewSampler(20, 100)}
	s.endCalls, s.cancelEnd = context.WithCancelCause(context.Background())
	endpoints, err := declare.Endpoints(service.Services)
	if err != nil {
		return nil, err
	}
	s.metrics = telemetry.NewMetrics(func() string { return s.upstream.BreakerState() }, endpoints)
	uopts, err := upstreamOptions(opts)
	if err != nil {
		return nil, err
	}
	client, err := upstream.New(opts.Upstream, append(uopts, upstream.WithObserver(s.metrics.Upstream))...)
	if err != nil {
		return nil, err
	}
	s.upstream = client
	tlsConfig, err := opts.TLS.config()
	if err != nil {
		return nil, err
	}
	s.tls = tlsConfig != nil
	s.limiter = admission.New(opts.MaxInFlight, opts.MaxAnswerBytes)
	s.admit = newAdmitter(s.limiter, opts.RequestTimeout, s.metrics, opts.Logger, s.sampler)

	// The events hub learns a stream's caller through GetAuth, run by the
	// engine as any call.
	var core *engine.Engine
	eo := opts.Events
	eo.URL = cmp.Or(opts.EventsURL, DefaultEventsURL)
	if err := upstream.CheckWebSocketURL(eo.URL, opts.InsecureUpstream); err != nil {
		return nil, err
	}
	eo.Identify = service.Identify(func(ctx context.Context, method string, req proto.Message) (proto.Message, error) {
		return core.Call(ctx, method, req)
	})
	eo.Metrics = events.NewMetrics()
	eo.Log = opts.Logger
	s.events = events.New(eo)
	s.metrics.Register(eo.Metrics.Collectors()...)
	core, err = engine.New(client, service.Services, service.Hooks, engine.Options{
		Streams:         service.Streams(s.events, func(m proto.Message) error { return core.Validate(m) }),
		Local:           service.Local,
		Timeouts:        engine.Timeouts{Default: opts.UpstreamTimeout, Max: opts.MaxCallTimeout},
		Log:             opts.Logger,
		CacheTTL:        opts.CacheTTL,
		CacheMaxEntries: opts.CacheMaxEntries,
		CacheMaxBytes:   opts.CacheMaxBytes,

		IdempotencyMaxEntries: opts.IdempotencyMaxEntries,
		IdempotencyMaxBytes:   opts.IdempotencyMaxBytes,
		Now:                   opts.Now,
	})
	if err != nil {
		return nil, err
	}
	// One chain of unary interceptors, for gRPC calls and the gateway's;
	// the engine's pipeline runs inside each method's handler.
	unary := s.unaryInterceptors()
	serverOpts := []grpc.ServerOption{
		grpc.InTapHandle(s.admit.tap),
		grpc.MaxRecvMsgSize(maxRecvMsgSize),
		grpc.MaxSendMsgSize(maxSendMsgSize),
		grpc.MaxHeaderListSize(maxHeaderBytes),
		grpc.MaxConcurrentStreams(opts.MaxConcurrentStreams),
		// The TLS handshake and the HTTP/2 preface, as REST's headers.
		grpc.ConnectionTimeout(opts.ReadHeaderTimeout),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		// Clients reconnect now and then, so that replicas added by an
		// autoscaler get their share of long-lived connections; idle
		// connections are closed sooner.
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle:     opts.IdleTimeout,
			MaxConnectionAge:      5 * time.Minute,
			MaxConnectionAgeGrace: 30 * time.Second,
		}),
		// A fixed pool of goroutines runs calls, so their stacks, once
		// grown, are mostly reused instead of grown again for every call
		// (the garbage collector still halves the stack of a worker idle
		// long enough). When every worker is busy grpc-go starts a
		// goroutine as before, so this never queues a call. Enough workers
		// for a few dozen callers at once: an idle one costs its stack
		// alone.
		grpc.NumStreamWorkers(uint32(max(64, 16*runtime.GOMAXPROCS(0)))),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(s.streamInterceptors()...),
	}
	var statsHandler stats.Handler
	if opts.TracerProvider != nil {
		statsHandler = otelgrpc.NewServerHandler(
			otelgrpc.WithTracerProvider(opts.TracerProvider),
			otelgrpc.WithPropagators(telemetry.Propagator()),
			otelgrpc.WithMeterProvider(noopmetric.NewMeterProvider()),
		)
		serverOpts = append(serverOpts, grpc.StatsHandler(statsHandler))
	}
	s.grpc = grpc.NewServer(serverOpts...)
	s.metrics.RegisterService(func() telemetry.ServiceCounters {
		c := core.Counters()
		return telemetry.ServiceCounters{
			CacheHits: c.CacheHits, CacheMisses: c.CacheMisses, CacheEvictions: c.CacheEvictions, CacheEntries: c.CacheEntries, CacheBytes: c.CacheBytes, Shared: c.Shared,
			IdempotencyFirst: c.IdempotencyFirst, IdempotencyReplayed: c.IdempotencyReplayed, IdempotencyUnknown: c.IdempotencyUnknown,
			IdempotencyConflicts: c.IdempotencyConflicts, IdempotencyEvictions: c.IdempotencyEvictions,
			IdempotencyEntries: c.IdempotencyEntries, IdempotencyBytes: c.IdempotencyBytes,
		}
	}, core.CacheEnabled())

	// Every service on the gRPC server, and on the REST edge through its
	// in-process connection: the same interceptors, the same pipeline.
	routes, err := openapi.Routes()
	if err != nil {
		return nil, err
	}
	edge := rest.New(rest.Options{Routes: routes, Interceptors: unary, StreamInterceptors: s.streamInterceptors(), Stats: statsHandler, Metrics: s.metrics, Log: opts.Logger, Sampler: s.sampler})
	for _, desc := range core.ServiceDescs() {
		s.services = append(s.services, desc.ServiceName)
		s.grpc.RegisterService(desc, core)
		edge.Register(desc, core)
	}
	for _, svc := range core.Services() {
		if err := svc.Gateway(context.Background(), edge.Mux(), edge.Conn()); err != nil {
			return nil, err
		}
	}
	reflection.Register(s.grpc)
	s.health = health.NewServer()
	s.draining = make(chan struct{})
	healthpb.RegisterHealthServer(s.grpc, healthServer{Server: s.health, draining: s.draining})
	s.metrics.GRPC.InitializeMetrics(s.grpc)
	s.setReady(true)

	api := edge.Handler(func(next http.Handler) http.Handler {
		return s.admit.restHandler(edge.Mux(), next)
	})
	// Opentact's webhook calls are not the REST API's: no JSON-only rule,
	// and their own key; they are admitted as any call.
	webhook := s.admit.restHandler(edge.Mux(), rest.NoStore(s.events.Webhook(events.WebhookOptions{
		Key: opts.WebhookKey, Allow: opts.WebhookAllow, WriteError: edge.WriteError, Sampler: s.sampler,
	})))
	s.http = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, events.WebhookPath) {
				webhook.ServeHTTP(w, r)
				return
			}
			api.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		ReadTimeout:       opts.ReadHeaderTimeout + opts.RequestTimeout,
		// A REST call lasts at most the longest call timeout; leave room
		// to write.
		WriteTimeout:   max(opts.UpstreamTimeout, opts.MaxCallTimeout) + 5*time.Second,
		IdleTimeout:    opts.IdleTimeout,
		MaxHeaderBytes: maxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
	}

	if err := s.listen(opts, tlsConfig); err != nil {
		return nil, err
	}
	s.metrics.RegisterLoad(telemetry.Load{
		CallsInFlight: s.limiter.InFlight,
		AnswerBytes:   s.limiter.BytesHeld,
		Upstream:      client.Load,
		UpstreamConns: client.Connections,
		Connections: func(listener string) int {
			switch listener {
			case "grpc":
				return s.grpcConns.Open()
			case "rest":
				return s.httpConns.Open()
			case "admin":
				if s.adminConns != nil {
					return s.adminConns.Open()
				}
			}
			return 0
		},
	})
	return s, nil
}

// listen opens the listeners: the two public ones each bounded in
// connections, in all and per client address, with TLS when configured,
// and the gRPC one guarded against HTTP/2 rapid resets (REST over HTTP/2
// is Go's own server, which guards itself); and the admin one, when
// asked for.
func (s *Server) listen(opts Options, tlsConfig *tls.Config) error {
	grpcTCP, err := net.Listen("tcp", opts.GRPCAddr)
	if err != nil {
		return fmt.Errorf("gRPC listener: %w", err)
	}
	httpTCP, err := net.Listen("tcp", opts.HTTPAddr)
	if err != nil {
		return errors.Join(fmt.Errorf("HTTP listener: %w", err), grpcTCP.Close())
	}
	if opts.AdminAddr != "" {
		if err := s.listenAdmin(opts.AdminAddr, opts.ReadHeaderTimeout); err != nil {
			return errors.Join(err, grpcTCP.Close(), httpTCP.Close())
		}
	}
	lim := netguard.Limits{Max: opts.MaxConnections, PerClient: opts.MaxConnectionsPerClient}
	s.grpcConns = netguard.LimitListener(grpcTCP, lim, func(reason string, remote net.Addr) { s.connectionRefused("grpc", reason, remote) })
	s.httpConns = netguard.LimitListener(httpTCP, lim, func(reason string, remote net.Addr) { s.connectionRefused("rest", reason, remote) })
	s.grpcLis, s.httpLis = s.grpcConns, s.httpConns
	if tlsConfig != nil {
		// One TLS config for both: ALPN offers h2 (gRPC, REST over HTTP/2)
		// and http/1.1 (REST).
		s.grpcLis = tls.NewListener(s.grpcLis, tlsConfig)
		s.httpLis = tls.NewListener(s.httpLis, tlsConfig)
	}
	policy := netguard.ResetPolicy{}
	if opts.ResetPolicy != nil {
		policy = *opts.ResetPolicy
	}
	policy.OnCut = func(remote net.Addr) {
		s.metrics.ConnectionCut("rapid_reset")
		s.sampler.Log(context.Background(), s.log, slog.LevelWarn, "connection cut: HTTP/2 rapid reset", slog.String("peer.address", remote.String()))
	}
	s.grpcLis = netguard.GuardHTTP2(s.grpcLis, policy)
	return nil
}

// connectionRefused counts and logs (rate limited) a connection refused
// by a listener at a bound.
func (s *Server) connectionRefused(listener, reason string, remote net.Addr) {
	s.metrics.ConnectionRefused(listener, reason)
	s.sampler.Log(context.Background(), s.log, slog.LevelWarn, "connection refused: too many open",
		slog.String("listener", listener), slog.String("reason", reason), slog.String("peer.address", remote.String()))
}

// upstreamOptions turns opts into the upstream client's options.
func upstreamOptions(opts Options) ([]upstream.Option, error) {
	retry := upstream.DefaultRetryPolicy()
	if opts.Retry != nil {
		retry = *opts.Retry
	}
	if opts.UpstreamMaxAttempts > 0 {
		retry.MaxAttempts = opts.UpstreamMaxAttempts
	}
	uopts := []upstream.Option{
		upstream.WithRetryPolicy(retry),
		upstream.WithMaxBodySize(opts.UpstreamMaxBody),
		upstream.WithTransportTimeouts(opts.UpstreamTimeouts),
		upstream.WithMaxInFlight(opts.UpstreamMaxInFlight),
		upstream.WithMaxConnections(opts.UpstreamMaxConnections),
	}
	if opts.UpstreamCA != "" {
		roots, err := certs.Pool("upstream CA", opts.UpstreamCA)
		if err != nil {
			return nil, err
		}
		uopts = append(uopts, upstream.WithRootCAs(roots))
	}
	if opts.Breaker != nil {
		uopts = append(uopts, upstream.WithBreakerPolicy(*opts.Breaker))
	}
	if opts.InsecureUpstream {
		uopts = append(uopts, upstream.WithInsecure())
	}
	if tp := opts.TracerProvider; tp != nil {
		// A client span per request to Opentact, and traceparent on it.
		// Trace context only: a caller's baggage is not Opentact's to see.
		// r.URL is the route template (see upstream.WithTransportWrapper).
		uopts = append(uopts, upstream.WithTransportWrapper(func(rt http.RoundTripper) http.RoundTripper {
			return otelhttp.NewTransport(rt,
				otelhttp.WithTracerProvider(tp),
				otelhttp.WithPropagators(propagation.TraceContext{}),
				otelhttp.WithMeterProvider(noopmetric.NewMeterProvider()),
				otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return "opentact " + r.Method + " " + r.URL.Path }),
			)
		}))
	}
	return uopts, nil
}

// setReady sets what readiness reports: /readyz and grpc.health.v1.
func (s *Server) setReady(ready bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ready {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.ready.Store(ready)
	s.health.SetServingStatus("", st)
	for _, name := range s.services {
		s.health.SetServingStatus(name, st)
	}
}

func withDefaults(o Options) Options {
	if o.GRPCAddr == "" {
		o.GRPCAddr = DefaultGRPCAddr
	}
	if o.HTTPAddr == "" {
		o.HTTPAddr = DefaultHTTPAddr
	}
	if o.Upstream == "" {
		o.Upstream = DefaultUpstream
	}
	o.UpstreamTimeout, o.MaxCallTimeout = defaults.CallTimeouts(o.UpstreamTimeout, o.MaxCallTimeout)
	if o.UpstreamMaxBody <= 0 {
		o.UpstreamMaxBody = upstream.DefaultMaxBodySize
	}
	if o.MaxConcurrentStreams == 0 {
		o.MaxConcurrentStreams = DefaultMaxConcurrentStreams
	}
	if o.ReadHeaderTimeout <= 0 {
		o.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = DefaultShutdownGrace
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.MaxAnswerBytes <= 0 {
		o.MaxAnswerBytes = DefaultMaxAnswerBytes
	}
	o.MaxAnswerBytes = max(o.MaxAnswerBytes, o.UpstreamMaxBody)
	if o.MaxConnections <= 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	if o.MaxConnectionsPerClient <= 0 {
		o.MaxConnectionsPerClient = max(1, o.MaxConnections/4)
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// GRPCAddr is the address the gRPC server listens on.
func (s *Server) GRPCAddr() net.Addr { return s.grpcLis.Addr() }

// HTTPAddr is the address the REST gateway listens on.
func (s *Server) HTTPAddr() net.Addr { return s.httpLis.Addr() }

// AdminAddr is the address the probes and /metrics are served on, nil
// without an admin listener.
func (s *Server) AdminAddr() net.Addr {
	if s.adminConns == nil {
		return nil
	}
	return s.adminConns.Addr()
}

// Serve serves until ctx ends or a listener fails, then shuts down
// gracefully: REST calls in flight finish first, then gRPC calls, all
// within the shutdown grace, after which what is left is cut. It returns
// nil after a shutdown asked for through ctx.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 3)
	pending := 0 // Serve loops running
	serve := func(f func() error) {
		pending++
		go func() { errc <- f() }()
	}
	serve(func() error { return s.grpc.Serve(s.grpcLis) })
	serve(func() error { return s.http.Serve(s.httpLis) }) // s.httpLis does TLS when configured
	attrs := []any{slog.String("grpc_addr", s.GRPCAddr().String()), slog.String("http_addr", s.HTTPAddr().String())}
	if s.admin != nil {
		serve(func() error { return s.admin.Serve(s.adminConns) })
		attrs = append(attrs, slog.String("admin_addr", s.AdminAddr().String()))
	}
	s.log.Info("serving", attrs...)

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("serving: %w", err)
		pending--
	}
	s.shutdown()
	for range pending {
		<-errc // each Serve returns once its server is stopped
	}
	return err
}

// shutdown reports not ready, keeps serving for the shutdown delay (so
// that load balancers stop sending new calls), then closes both public
// listeners and lets calls in flight finish within the grace. The calls
// still running then are ended with FACADE_SHUTTING_DOWN and get cutWait
// to send it; only then are the connections left closed. The admin
// listener closes last: the probes see the whole drain.
func (s *Server) shutdown() {
	defer s.stopAdmin()
	s.setReady(false)
	if s.delay > 0 {
		s.log.Info("not ready; draining soon", slog.Duration("delay", s.delay))
		time.Sleep(s.delay)
	}
	s.log.Info("shutting down", slog.Duration("grace", s.grace))
	// Event streams never end by themselves: end them now, so that their
	// clients open them again on another replica.
	streamsEnded, cancelStreams := context.WithTimeout(context.Background(), s.grace)
	if err := s.events.Shutdown(streamsEnded, apierr.StreamShuttingDown(busyRetryAfter)); err != nil {
		s.log.Warn("events sockets still closing at the end of the shutdown grace")
	}
	cancelStreams()
	// Health Watch streams, which would hold GracefulStop until the
	// grace ends, end once their watchers have heard NOT_SERVING.
	s.health.Shutdown()
	close(s.draining)
	grace, cancel := context.WithTimeout(context.Background(), s.grace)
	defer cancel()

	// Both at once, so that both listeners close now: http.Shutdown waits
	// for the REST calls in flight, GracefulStop for the gRPC calls.
	httpDone := make(chan struct{})
	go func() {
		defer close(httpDone)
		if s.http.Shutdown(grace) == nil {
			return
		}
		// The grace is over: the calls left answer 503 now, and have
		// cutWait to write it.
		s.cancelEnd(errShuttingDown)
		last, cancel := context.WithTimeout(context.Background(), cutWait)
		defer cancel()
		if err := s.http.Shutdown(last); err != nil {
			s.log.Warn("REST connections cut at the end of the shutdown grace", slog.Any("error", err))
			_ = s.http.Close()
		}
	}()
	grpcDone := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(grpcDone)
	}()
	select {
	case <-grpcDone:
	case <-grace.Done():
		s.log.Warn("calls still running at the end of the shutdown grace are ended")
		s.cancelEnd(errShuttingDown)
		select {
		case <-grpcDone:
		case <-time.After(cutWait):
			s.grpc.Stop()
			<-grpcDone
		}
	}
	<-httpDone
	s.cancelEnd(nil)
}

// Ready reports whether the server takes new calls: true from New until
// shutdown begins.
func (s *Server) Ready() bool { return s.ready.Load() }

// BreakerState is the upstream circuit breaker's state: "closed",
// "half-open" or "open".
func (s *Server) BreakerState() string { return s.upstream.BreakerState() }

// Run builds a Server from opts and serves until ctx ends.
func Run(ctx context.Context, opts Options) error {
	s, err := New(opts)
	if err != nil {
		return err
	}
	return s.Serve(ctx)
}
