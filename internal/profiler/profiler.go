// Package profiler serves Go's profiler (net/http/pprof) on a listener of
// its own, so that it is never reachable through a service's ports.
package profiler

import (
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// Serve serves the profiler's handlers on ln until stop is called; stop
// returns once the server is done. The handlers show code paths and
// sizes, never request data; ln should still be loopback or otherwise
// private.
func Serve(ln net.Listener) (stop func()) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	return func() {
		_ = srv.Close()
		<-done
	}
}
