package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	eventsv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/events/v1"
)

// hardReadLimit bounds a frame the socket reads through at all; frames
// over MaxEventBytes are read through and dropped, so that one large
// event does not cost the socket.
const hardReadLimit = 16 << 20

// userSocket is one user's WebSocket to Opentact and its streams.
type userSocket struct {
	hub           *Hub
	user, account string
	ctx           context.Context
	cancel        context.CancelFunc

	mu     sync.Mutex
	subs   map[*Subscriber]struct{}
	id     Identity    // the freshest token seen
	creds  metadata.MD // the latest stream's credentials, to renew the token
	linger *time.Timer
}

func newUserSocket(h *Hub, id Identity) *userSocket {
	ctx, cancel := context.WithCancel(context.Background())
	return &userSocket{hub: h, user: id.User, account: id.Account, ctx: ctx, cancel: cancel, subs: map[*Subscriber]struct{}{}, id: id}
}

// join adds s; the hub's lock is held.
func (u *userSocket) join(s *Subscriber, id Identity, md metadata.MD) {
	u.mu.Lock()
	defer u.mu.Unlock()
	s.user = u
	u.subs[s] = struct{}{}
	u.creds = md
	if id.Expires.After(u.id.Expires) || u.id.Expires.IsZero() {
		u.id = id
	}
	if u.linger != nil {
		u.linger.Stop()
		u.linger = nil
	}
}

// leave removes s, reporting whether it was there; the hub's lock is
// held. The socket closes Linger after its last stream.
func (u *userSocket) leave(s *Subscriber) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.subs[s]; !ok {
		return false
	}
	delete(u.subs, s)
	if len(u.subs) == 0 && u.ctx.Err() == nil {
		h := u.hub
		u.linger = time.AfterFunc(h.o.Linger, func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			u.mu.Lock()
			idle := len(u.subs) == 0
			u.mu.Unlock()
			if idle && h.users[u.user] == u {
				delete(h.users, u.user)
				u.cancel()
			}
		})
	}
	return true
}

// close ends every stream with err and the socket; the hub's lock is
// held.
func (u *userSocket) close(err error) {
	u.cancel() // first, so that the streams' leaving starts no linger
	u.mu.Lock()
	for s := range u.subs {
		s.end(err)
	}
	if u.linger != nil {
		u.linger.Stop()
	}
	u.mu.Unlock()
}

// deliver hands ev to each stream that wants it, never waiting: a stream
// whose buffer is full is ended, and the others and the socket go on.
func (u *userSocket) deliver(ev *eventsv1.Event) int {
	m := u.hub.o.Metrics
	n := 0
	u.mu.Lock()
	for s := range u.subs {
		if !s.wants(ev.Type) {
			continue
		}
		select {
		case <-s.done:
			continue
		default:
		}
		select {
		case s.events <- ev:
			n++
		default:
			m.slow.Inc()
			s.end(status.Errorf(codes.ResourceExhausted, "the stream fell %d events behind and was ended; read events as they come, and open it again (events meanwhile may be lost)", cap(s.events)))
			// Its handler may stay blocked on a stalled client until the
			// connection goes; let the events it will never send go now.
			for len(s.events) > 0 {
				select {
				case <-s.events:
				default:
				}
			}
		}
	}
	u.mu.Unlock()
	if n > 0 {
		m.delivered.WithLabelValues(typeLabel(ev.Type)).Add(float64(n))
	}
	return n
}

// token is the JWT to open the socket with.
func (u *userSocket) token() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.id.Token
}

// run keeps the socket open while it has streams, or lingers.
func (u *userSocket) run() {
	h := u.hub
	defer h.wg.Done()
	var renew sync.WaitGroup
	renew.Go(u.renewLoop)
	defer renew.Wait()
	var down time.Time // when the socket went down; zero while up or before the first open
	reason := ""
	for attempt := 0; ; {
		opened, err := u.session(down, reason)
		if u.ctx.Err() != nil {
			return
		}
		// A socket that never opened has no gap to tell: its streams wait
		// for the first open.
		// The gap's reason is the drop's, not a failed reopen's.
		why := describe(err)
		if opened {
			attempt = 0
			down, reason = h.o.Now(), why
			h.o.Metrics.reconnects.Inc()
		}
		h.o.Log.Warn("events socket to Opentact closed or refused; reopening", slog.String("reason", why), slog.Int("attempt", attempt+1))
		if errors.Is(err, errAuthRefused) && u.refreshNow() {
			return
		}
		attempt++
		t := time.NewTimer(backoff(attempt, h.o.MinBackoff, h.o.MaxBackoff))
		select {
		case <-u.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// describe is a socket's end in words, without anything of the frames.
func describe(err error) string {
	switch {
	case errors.Is(err, errAuthRefused):
		return "authentication refused"
	case errors.Is(err, errPingTimeout):
		return "no answer to ping"
	case websocket.CloseStatus(err) != -1:
		return fmt.Sprintf("closed by Opentact (%d)", websocket.CloseStatus(err))
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	}
	return "connection lost"
}

var errPingTimeout = errors.New("no answer to ping")

// session opens the socket, authenticates, tells the streams of the gap
// since down (if any), and reads events until the socket fails. opened
// reports whether it got as far as reading.
func (u *userSocket) session(down time.Time, reason string) (opened bool, err error) {
	h := u.hub
	actx, cancel := context.WithTimeout(u.ctx, DefaultAuthTimeout)
	defer cancel()
	c, _, err := websocket.Dial(actx, h.o.URL, nil)
	if err != nil {
		return false, err
	}
	defer c.CloseNow()
	c.SetReadLimit(hardReadLimit)
	frame, _ := json.Marshal(map[string]string{"type": "auth", "payload": u.token()})
	if err := c.Write(actx, websocket.MessageText, frame); err != nil {
		return false, err
	}
	_, b, err := c.Read(actx)
	if err != nil {
		if websocket.CloseStatus(err) == websocket.StatusPolicyViolation {
			return false, errAuthRefused
		}
		return false, err
	}
	var ans struct {
		Type    string `json:"type"`
		Payload struct {
			User struct {
				UUID string `json:"uuid"`
			} `json:"user"`
		} `json:"payload"`
	}
	// The socket must be the user's own: any other answer is a refusal.
	if json.Unmarshal(b, &ans) != nil || ans.Type != TypeAuth || ans.Payload.User.UUID != u.user {
		return false, errAuthRefused
	}
	cancel()
	h.o.Metrics.sockets.Inc()
	defer h.o.Metrics.sockets.Dec()
	h.o.Log.Info("events socket to Opentact open")
	if !down.IsZero() {
		h.o.Metrics.gaps.Inc()
		u.deliver(gapEvent(down, h.o.Now(), reason))
	}

	var pingFailed atomic.Bool
	sctx, stop := context.WithCancel(u.ctx)
	var pinger sync.WaitGroup
	pinger.Go(func() {
		t := time.NewTicker(h.o.PingEvery)
		defer t.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-t.C:
			}
			pctx, cancel := context.WithTimeout(sctx, h.o.PingTimeout)
			err := c.Ping(pctx)
			cancel()
			if err != nil && sctx.Err() == nil {
				pingFailed.Store(true)
				c.CloseNow()
				return
			}
		}
	})
	defer pinger.Wait()
	defer stop()
	for {
		err := u.readOne(c)
		if err != nil {
			if pingFailed.Load() {
				err = errPingTimeout
			}
			return true, err
		}
	}
}

// readOne reads one frame and delivers its event.
func (u *userSocket) readOne(c *websocket.Conn) error {
	h := u.hub
	m := h.o.Metrics
	typ, r, err := c.Reader(u.ctx)
	if err != nil {
		return err
	}
	b, err := io.ReadAll(io.LimitReader(r, int64(h.o.MaxEventBytes)+1))
	if err != nil {
		return err
	}
	if len(b) > h.o.MaxEventBytes {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return err
		}
		m.refused.WithLabelValues("too_large").Inc()
		return nil
	}
	if typ != websocket.MessageText {
		m.refused.WithLabelValues("binary").Inc()
		return nil
	}
	ev, err := Decode(b)
	if err != nil {
		m.refused.WithLabelValues("malformed").Inc()
		return nil
	}
	if ev.Type == TypeAuth {
		return nil
	}
	m.received.WithLabelValues(typeLabel(ev.Type)).Inc()
	u.deliver(ev)
	return nil
}

// renewLoop renews the socket's JWT before it expires, so that a reopen
// always has a valid one.
func (u *userSocket) renewLoop() {
	h := u.hub
	for {
		u.mu.Lock()
		exp := u.id.Expires
		u.mu.Unlock()
		wait := time.Hour // a token that does not say when it expires: look again later
		if !exp.IsZero() {
			left := exp.Sub(h.o.Now())
			wait = max(left-h.o.RenewBefore, left/2, time.Second)
		}
		t := time.NewTimer(wait)
		select {
		case <-u.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if !exp.IsZero() {
			u.refresh()
		}
	}
}

// refresh gets a new token with the latest stream's credentials; it
// returns the error of a failed attempt.
func (u *userSocket) refresh() error {
	u.mu.Lock()
	md := u.creds
	u.mu.Unlock()
	ctx, cancel := context.WithTimeout(metadata.NewIncomingContext(u.ctx, md), DefaultAuthTimeout)
	defer cancel()
	id, err := u.hub.o.Identify(ctx)
	if err != nil {
		u.hub.o.Log.Warn("events socket: renewing its token failed", slog.String("code", status.Code(err).String()))
		return err
	}
	if id.User != u.user {
		return errAuthRefused
	}
	u.mu.Lock()
	u.id = id
	u.mu.Unlock()
	u.hub.o.Metrics.renewals.Inc()
	return nil
}

// refreshNow renews the token after Opentact refused the socket. It
// reports whether the credentials are refused too, in which case the
// streams are ended with that status and the socket is given up.
func (u *userSocket) refreshNow() bool {
	err := u.refresh()
	if status.Code(err) != codes.Unauthenticated {
		return false
	}
	h := u.hub
	h.mu.Lock()
	if h.users[u.user] == u {
		delete(h.users, u.user)
	}
	u.close(err)
	h.mu.Unlock()
	return true
}

// typeLabel bounds the metric label to the types the facade knows.
func typeLabel(t string) string {
	switch t {
	case TypeCallState, TypeSMS, TypeBalance, TypeOrder, TypeGap, "call_record":
		return t
	}
	return "other"
}
