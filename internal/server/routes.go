package server

import (
	"net/http"

	"github.com/opentact-facade/opentact-facade/internal/openapi"
)

// routes serves, next to the REST gateway (behind admission), GET
// /openapi.json, the REST API's description. The probes and /metrics are
// not here: they are on the admin listener (see adminHandler).
func (s *Server) routes(gateway http.Handler) http.Handler {
	mux := http.NewServeMux()
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
