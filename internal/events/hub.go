// Package events streams Opentact's real-time events to the facade's
// callers: one WebSocket to Opentact per user and replica, opened by the
// user's first stream, shared by all of them (fan-out) and closed shortly
// after the last; reopened with jittered exponential backoff when it
// drops, after which each stream is told of the gap. Webhook calls from
// Opentact join the same streams.
package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/events/v1"
)

// Identity is who a stream's caller is at Opentact, as GET /rest/auth
// answers with the caller's credentials, and the JWT that opens a socket
// as that user.
type Identity struct {
	User, Account string
	Token         string
	Expires       time.Time // the token's; zero if it does not say
}

// Identify learns the Identity of the credentials in ctx's incoming
// metadata, failing with the status a caller should see.
type Identify func(ctx context.Context) (Identity, error)

// Defaults for Options fields left zero.
const (
	DefaultBuffer        = 256
	DefaultMaxEventBytes = 64 << 10
	DefaultLinger        = 10 * time.Second
	DefaultPingEvery     = 10 * time.Second
	DefaultPingTimeout   = 20 * time.Second // with the interval: a silent socket is dead within 30 s
	DefaultRenewBefore   = 2 * time.Minute
	DefaultMinBackoff    = 500 * time.Millisecond
	DefaultMaxBackoff    = 30 * time.Second
	DefaultAuthTimeout   = 10 * time.Second
)

// Options configures a Hub.
type Options struct {
	// URL is Opentact's events WebSocket, such as wss://api.opentact.org.
	URL string
	// Identify authenticates a stream's caller.
	Identify Identify
	// Buffer is the events a stream may have waiting; one more ends it
	// with RESOURCE_EXHAUSTED.
	Buffer int
	// MaxEventBytes refuses a larger event frame (it is counted, and the
	// socket stays open).
	MaxEventBytes int
	// Linger keeps a user's socket open this long after its last stream
	// ends, for a client that reconnects.
	Linger time.Duration
	// PingEvery and PingTimeout find a silent socket.
	PingEvery, PingTimeout time.Duration
	// RenewBefore renews the socket's JWT this long before it expires
	// (or halfway through a shorter life), so that a reconnect has one.
	RenewBefore time.Duration
	// MinBackoff and MaxBackoff bound the jittered wait before a reopen.
	MinBackoff, MaxBackoff time.Duration
	// Metrics, if set, counts what happens.
	Metrics *Metrics
	// Log gets a line per socket opened, dropped and refused; nil
	// discards them. Events are never logged: they quote SMS text.
	Log *slog.Logger
	// Now is the clock of the gap events; time.Now if nil.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if o.Buffer <= 0 {
		o.Buffer = DefaultBuffer
	}
	if o.MaxEventBytes <= 0 {
		o.MaxEventBytes = DefaultMaxEventBytes
	}
	def(&o.Linger, DefaultLinger)
	def(&o.PingEvery, DefaultPingEvery)
	def(&o.PingTimeout, DefaultPingTimeout)
	def(&o.RenewBefore, DefaultRenewBefore)
	def(&o.MinBackoff, DefaultMinBackoff)
	def(&o.MaxBackoff, DefaultMaxBackoff)
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics()
	}
	return o
}

// Hub holds the users' sockets and their streams.
type Hub struct {
	o     Options
	mu    sync.Mutex
	users map[string]*userSocket // by Opentact user uuid
	ended error                  // set by Shutdown: every stream ends with it
	wg    sync.WaitGroup         // the sockets' goroutines
}

// New returns a Hub.
func New(o Options) *Hub {
	return &Hub{o: o.withDefaults(), users: map[string]*userSocket{}}
}

// Subscriber is one stream's place at its user's socket.
type Subscriber struct {
	user   *userSocket
	types  map[string]bool // nil: every type
	events chan *eventsv1.Event
	done   chan struct{} // closed when the hub ends the stream
	err    error         // why, once done is closed
	once   sync.Once
}

// Events delivers the stream's events.
func (s *Subscriber) Events() <-chan *eventsv1.Event { return s.events }

// Done is closed when the hub ends the stream; Err then says why.
func (s *Subscriber) Done() <-chan struct{} { return s.done }

// Err is why the hub ended the stream.
func (s *Subscriber) Err() error { return s.err }

func (s *Subscriber) end(err error) {
	s.once.Do(func() {
		s.err = err
		close(s.done)
	})
}

// wants reports whether the stream takes events of type t.
func (s *Subscriber) wants(t string) bool {
	return s.types == nil || s.types[t] || t == TypeGap
}

// Subscribe identifies the caller of ctx and joins their user's socket,
// opening it if it is not open. types filters the events; empty takes
// all. The caller must Unsubscribe.
func (h *Hub) Subscribe(ctx context.Context, types []string) (*Subscriber, error) {
	id, err := h.o.Identify(ctx)
	if err != nil {
		return nil, err
	}
	if id.User == "" || id.Token == "" {
		return nil, status.Error(codes.Unauthenticated, "Opentact did not say who the caller is; the events stream needs a user's credentials")
	}
	md, _ := metadata.FromIncomingContext(ctx)
	s := &Subscriber{events: make(chan *eventsv1.Event, h.o.Buffer), done: make(chan struct{})}
	if len(types) > 0 {
		s.types = make(map[string]bool, len(types))
		for _, t := range types {
			s.types[t] = true
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ended != nil {
		return nil, h.ended
	}
	u := h.users[id.User]
	if u == nil {
		u = newUserSocket(h, id)
		h.users[id.User] = u
		h.wg.Add(1)
		go u.run()
	}
	u.join(s, id, md)
	h.o.Metrics.streams.Inc()
	return s, nil
}

// Unsubscribe leaves the stream's socket; the socket closes Linger after
// its last stream leaves.
func (h *Hub) Unsubscribe(s *Subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.user.leave(s) {
		h.o.Metrics.streams.Dec()
	}
}

// Shutdown ends every stream with err (the server's UNAVAILABLE), closes
// the sockets and waits for their goroutines, or for ctx.
func (h *Hub) Shutdown(ctx context.Context, err error) error {
	h.mu.Lock()
	h.ended = err
	for _, u := range h.users {
		u.close(err)
	}
	h.mu.Unlock()
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Publish delivers an event to every stream whose user is of account:
// a webhook call's event.
func (h *Hub) Publish(account string, ev *eventsv1.Event) (streams int) {
	h.mu.Lock()
	var targets []*userSocket
	for _, u := range h.users {
		if u.account == account {
			targets = append(targets, u)
		}
	}
	h.mu.Unlock()
	for _, u := range targets {
		streams += u.deliver(ev)
	}
	return streams
}

// backoff is the wait before reopen attempt n (n ≥ 1): full jitter over
// an exponentially growing ceiling, so that replicas and users that lost
// Opentact at once do not come back at once.
func backoff(n int, lo, hi time.Duration) time.Duration {
	ceiling := lo
	for i := 1; i < n && ceiling < hi; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, hi)
	return lo/2 + rand.N(ceiling-lo/2+1)
}

// gapEvent tells a stream that events from..to may be lost.
func gapEvent(from, to time.Time, reason string) *eventsv1.Event {
	return &eventsv1.Event{
		Type:      TypeGap,
		CreatedOn: timestamppb.New(to),
		Message:   proto.String(fmt.Sprintf("the facade's socket to Opentact was down from %s to %s (%s); events of that time may be lost", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), reason)),
		Body: &eventsv1.Event_Gap{Gap: &eventsv1.GapEvent{
			From: timestamppb.New(from), To: timestamppb.New(to), Reason: reason,
		}},
	}
}

// errAuthRefused is a socket whose auth frame Opentact refused.
var errAuthRefused = errors.New("Opentact refused the socket's credentials")
