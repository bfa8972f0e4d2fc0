package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/opentact-facade/opentact-facade/internal/netguard"
	"github.com/opentact-facade/opentact-facade/internal/rest"
)

// Bounds of the admin listener. Its clients are few (the kubelet's probes,
// a Prometheus scraper, an operator's curl), and none of them is a client
// of the public ports, so it has bounds of its own that no flood of the
// public ports touches.
const (
	adminMaxConnections = 32
	// adminMaxPerClient leaves room for the kubelet and Prometheus when
	// something else on the pod network holds connections open.
	adminMaxPerClient = 8
	adminHeaderBytes  = 8 << 10
	adminReadTimeout  = 5 * time.Second
	adminWriteTimeout = 30 * time.Second // a scrape of every metric
	adminIdleTimeout  = time.Minute
	adminShutdownWait = time.Second // for a probe or scrape under way when the rest is over
)

// adminHandler serves the probes and the metrics: GET /healthz (200 while
// the process runs), GET /readyz (200 while it takes new calls, 503 once
// shutdown has begun) and GET /metrics for Prometheus.
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		probeAnswer(w, http.StatusOK, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.Ready() {
			probeAnswer(w, http.StatusServiceUnavailable, "shutting down\n")
			return
		}
		probeAnswer(w, http.StatusOK, "ready\n")
	})
	mux.Handle("GET /metrics", s.metrics.Handler())
	return rest.NoStore(mux)
}

func probeAnswer(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}

// listenAdmin opens the admin listener on addr: plain HTTP whatever the
// public ports serve, so that the kubelet and Prometheus need no client
// certificate (it serves nothing secret; keep it off public networks).
func (s *Server) listenAdmin(addr string, readHeaderTimeout time.Duration) error {
	tcp, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	s.adminConns = netguard.LimitListener(tcp, netguard.Limits{Max: adminMaxConnections, PerClient: adminMaxPerClient},
		func(reason string, remote net.Addr) { s.connectionRefused("admin", reason, remote) })
	s.admin = &http.Server{
		Handler:           s.adminHandler(),
		ReadHeaderTimeout: min(readHeaderTimeout, adminReadTimeout),
		ReadTimeout:       adminReadTimeout,
		WriteTimeout:      adminWriteTimeout,
		IdleTimeout:       adminIdleTimeout,
		MaxHeaderBytes:    adminHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	return nil
}

// stopAdmin ends the admin listener, the last of the three, once the
// public ports have drained: until then /readyz answers 503 and /healthz
// 200.
func (s *Server) stopAdmin() {
	if s.admin == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminShutdownWait)
	defer cancel()
	if s.admin.Shutdown(ctx) != nil {
		_ = s.admin.Close()
	}
}
