package server

import (
	"io"
	"net/http"

	"github.com/opentact-facade/opentact-facade/internal/openapi"
)

// routes serves, next to the REST gateway (behind admission), the probes: GET /healthz (200
// while the process runs) and GET /readyz (200 while it takes new calls,
// 503 once shutdown has begun); GET /metrics for Prometheus; and GET
// /openapi.json, the REST API's description.
func (s *Server) routes(gateway http.Handler) http.Handler {
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
	mux.Handle("GET /openapi.json", openapi.Handler())
	mux.Handle("/", gateway)
	return noStore(mux)
}

// noStore marks every answer as one that no cache may keep and no browser
// may read as another type than it says: answers hold JWTs and profiles.
func noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

func probeAnswer(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}
