package rest

import (
	"net/http"
	"slices"
	"time"

	"github.com/opentact-facade/opentact-facade/internal/openapi"
)

// apiDescription is the route of the REST API's description, served
// beside the gateway; the REST edge knows it, to answer another method
// 405.
var apiDescription = openapi.Route{Path: "/openapi.json", Methods: []string{http.MethodGet, http.MethodHead}}

// Handler is the public REST port: GET /openapi.json, the REST API's
// description, and every other request through admit (the facade's bound
// of calls in flight) to the edge's checks and the gateway. The probes
// and /metrics are not here: they are on the admin listener. No
// http.ServeMux: it would answer a path that is not clean ("//v1/auth",
// "/v1/./auth") with an HTML redirect, where the gateway answers a JSON
// 404.
func (e *Edge) Handler(admit func(http.Handler) http.Handler) http.Handler {
	gateway := admit(e.check(e.mux))
	description := openapi.Handler()
	return NoStore(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == apiDescription.Path && slices.Contains(apiDescription.Methods, r.Method) {
			description.ServeHTTP(w, r)
			return
		}
		if e.streamPaths[r.URL.Path] {
			// A stream lasts until its caller or the facade ends it.
			_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
		}
		gateway.ServeHTTP(w, r)
	}))
}

// NoStore marks every answer as one that no cache may keep and no browser
// may read as another type than it says: answers hold JWTs and profiles.
func NoStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}
