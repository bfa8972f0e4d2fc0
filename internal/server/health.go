package server

import (
	"context"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// watchEndWait bounds how long, once the server drains, a Watch stream
// that last heard SERVING is kept open for the NOT_SERVING the shutdown
// set to reach it.
const watchEndWait = time.Second

// healthServer is grpc-go's health service whose Watch streams end once
// the server starts to drain. A Watch stream lasts until its client goes,
// so grpc.Server.GracefulStop, which waits for every stream, would wait the
// whole shutdown grace for them and then cut the calls still in flight
// with them. Each watcher first hears NOT_SERVING (the shutdown reports it
// before it drains), then its stream ends with UNAVAILABLE.
type healthServer struct {
	*health.Server
	draining <-chan struct{} // closed when the server starts to drain
}

// watchStream is a Watch stream whose context the server can end, and
// which tells whether it last sent SERVING.
type watchStream struct {
	healthpb.Health_WatchServer
	ctx     context.Context
	serving atomic.Bool   // the last status sent was SERVING
	sent    chan struct{} // a status was sent (buffered: a hint)
}

func (w *watchStream) Context() context.Context { return w.ctx }

func (w *watchStream) Send(r *healthpb.HealthCheckResponse) error {
	err := w.Health_WatchServer.Send(r)
	if err == nil {
		w.serving.Store(r.GetStatus() == healthpb.HealthCheckResponse_SERVING)
		select {
		case w.sent <- struct{}{}:
		default:
		}
	}
	return err
}

func (h healthServer) Watch(in *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	ws := &watchStream{Health_WatchServer: stream, ctx: ctx, sent: make(chan struct{}, 1)}
	returned := make(chan struct{})
	defer close(returned)
	go func() {
		select {
		case <-h.draining:
		case <-returned:
			return
		}
		defer cancel()
		wait := time.NewTimer(watchEndWait)
		defer wait.Stop()
		for ws.serving.Load() {
			select {
			case <-ws.sent:
			case <-wait.C:
				return
			case <-returned:
				return
			}
		}
	}()
	err := h.Server.Watch(in, ws)
	if ctx.Err() != nil && stream.Context().Err() == nil {
		return status.Error(codes.Unavailable, "the facade is shutting down")
	}
	return err
}
