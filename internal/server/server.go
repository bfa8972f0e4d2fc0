// Package server runs the facade: the gRPC server, the REST gateway in front
// of it, their listeners, interceptors and graceful shutdown.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/test/bufconn"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
	"github.com/opentact-facade/opentact-facade/service"
)

// Defaults for Options fields left zero.
const (
	DefaultGRPCAddr      = ":9090"
	DefaultHTTPAddr      = ":8080"
	DefaultUpstream      = "https://api.opentact.org"
	DefaultShutdownGrace = 15 * time.Second
)

// Limits on what a caller may send. GetAuth's request is empty and its
// credentials are a few KiB, so these are generous.
const (
	maxRecvMsgSize = 1 << 20  // one gRPC message
	maxHeaderBytes = 64 << 10 // gRPC metadata and REST headers
	maxRESTBody    = 64 << 10 // a REST request body
)

// Options configures a Server.
type Options struct {
	GRPCAddr         string        // gRPC listen address; DefaultGRPCAddr if empty
	HTTPAddr         string        // REST gateway listen address; DefaultHTTPAddr if empty
	Upstream         string        // Opentact's base URL; DefaultUpstream if empty
	UpstreamTimeout  time.Duration // bound on one Opentact call; service.DefaultUpstreamTimeout if 0
	InsecureUpstream bool          // allow a plain-http upstream that is not on loopback
	ShutdownGrace    time.Duration // how long in-flight calls may run on; DefaultShutdownGrace if 0
	Logger           *slog.Logger  // nil discards logs
}

// Server is a running facade: a gRPC server and a REST gateway that calls it
// through an in-memory connection, so REST calls pass the same
// interceptors as gRPC calls without a TCP hop.
type Server struct {
	log      *slog.Logger
	grace    time.Duration
	grpc     *grpc.Server
	http     *http.Server
	gwConn   *grpc.ClientConn
	grpcLis  net.Listener
	httpLis  net.Listener
	inMemLis *bufconn.Listener
}

// New builds a Server and opens its listeners; Serve starts it.
func New(opts Options) (*Server, error) {
	opts = withDefaults(opts)
	var uopts []upstream.Option
	if opts.InsecureUpstream {
		uopts = append(uopts, upstream.WithInsecure())
	}
	client, err := upstream.New(opts.Upstream, uopts...)
	if err != nil {
		return nil, err
	}

	s := &Server{log: opts.Logger, grace: opts.ShutdownGrace}
	s.grpc = grpc.NewServer(
		grpc.MaxRecvMsgSize(maxRecvMsgSize),
		grpc.MaxHeaderListSize(maxHeaderBytes),
		grpc.ChainUnaryInterceptor(unaryInterceptors(opts.Logger)...),
		grpc.ChainStreamInterceptor(streamInterceptors(opts.Logger)...),
	)
	authv1.RegisterAuthServiceServer(s.grpc, service.NewAuthServer(client, opts.UpstreamTimeout, opts.Logger))
	reflection.Register(s.grpc)

	s.inMemLis = bufconn.Listen(256 << 10)
	s.gwConn, err = grpc.NewClient("passthrough:///in-memory",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return s.inMemLis.DialContext(ctx)
		}),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
	)
	if err != nil {
		return nil, err
	}
	gateway, err := newGateway(s.gwConn)
	if err != nil {
		return nil, errors.Join(err, s.gwConn.Close())
	}
	s.http = &http.Server{
		Handler:           gateway,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		// A REST call lasts at most the upstream timeout; leave room to write.
		WriteTimeout:   opts.UpstreamTimeout + 5*time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: maxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
	}

	if s.grpcLis, err = net.Listen("tcp", opts.GRPCAddr); err != nil {
		return nil, errors.Join(fmt.Errorf("gRPC listener: %w", err), s.gwConn.Close())
	}
	if s.httpLis, err = net.Listen("tcp", opts.HTTPAddr); err != nil {
		return nil, errors.Join(fmt.Errorf("HTTP listener: %w", err), s.grpcLis.Close(), s.gwConn.Close())
	}
	return s, nil
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
	if o.UpstreamTimeout <= 0 {
		o.UpstreamTimeout = service.DefaultUpstreamTimeout
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = DefaultShutdownGrace
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

// Serve serves until ctx ends or a listener fails, then shuts down
// gracefully: REST calls in flight finish first, then gRPC calls, all
// within the shutdown grace, after which what is left is cut. It returns
// nil after a shutdown asked for through ctx.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 3)
	go func() { errc <- s.grpc.Serve(s.grpcLis) }()
	go func() { errc <- s.grpc.Serve(s.inMemLis) }()
	go func() { errc <- s.http.Serve(s.httpLis) }()
	s.log.Info("serving", slog.String("grpc_addr", s.GRPCAddr().String()), slog.String("http_addr", s.HTTPAddr().String()))

	var err error
	pending := cap(errc)
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("serving: %w", err)
		pending--
	}
	s.log.Info("shutting down", slog.Duration("grace", s.grace))
	s.shutdown()
	for range pending {
		<-errc // each Serve returns once its server is stopped
	}
	return err
}

func (s *Server) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), s.grace)
	defer cancel()
	if err := s.http.Shutdown(ctx); err != nil {
		s.log.Warn("REST calls cut at the end of the shutdown grace", slog.Any("error", err))
		_ = s.http.Close()
	}
	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-ctx.Done():
		s.log.Warn("gRPC calls cut at the end of the shutdown grace")
		s.grpc.Stop()
		<-stopped
	}
	_ = s.gwConn.Close()
}

// Run builds a Server from opts and serves until ctx ends.
func Run(ctx context.Context, opts Options) error {
	s, err := New(opts)
	if err != nil {
		return err
	}
	return s.Serve(ctx)
}
