package sandbox

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

const (
	// MaxSocketsPerUser bounds the event sockets one user holds open.
	MaxSocketsPerUser = 16
	// MaxUnauthenticated bounds the sockets, of anyone, not yet
	// authenticated; past it an upgrade gets 503.
	MaxUnauthenticated = 256
	// DefaultEventQueue is how many frames a socket may have waiting to
	// be written before it is dropped as too slow.
	DefaultEventQueue = 256
	// AuthTimeout is how long, on the sandbox's clock, a socket has to
	// send its auth frame.
	AuthTimeout = 10 * time.Second
	// eventReadLimit caps a frame the client sends.
	eventReadLimit = 64 << 10
	// writeTimeout is how long, in real time, one frame may take to
	// write before the socket is given up.
	writeTimeout = 10 * time.Second
)

// authFailed is what a socket gets for a bad auth frame, before a close
// with 1008. Opentact documents no failure answer: this one mirrors the
// "type" of its success frame and the success/message of its REST errors.
var authFailed = []byte(`{"type":"auth","success":false,"message":"Unauthorized"}`)

// hub holds the event sockets, the authenticated ones by account. Events
// go to every socket of the account, whatever its subscriptions say:
// the sandbox does not filter by them.
type hub struct {
	ctx    context.Context // ends with Close, to end writes stuck on a slow peer
	cancel context.CancelFunc
	queue  int

	mu      sync.Mutex
	closed  bool
	pending int // sockets not yet authenticated
	all     map[*socket]struct{}
	byAcct  map[*acct]map[*socket]struct{}
	perUser map[*user]int
	wg      sync.WaitGroup // the sockets' goroutines
}

func newHub(queue int) *hub {
	if queue <= 0 {
		queue = DefaultEventQueue
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &hub{ctx: ctx, cancel: cancel, queue: queue, all: map[*socket]struct{}{},
		byAcct: map[*acct]map[*socket]struct{}{}, perUser: map[*user]int{}}
}

// socket is one client's events WebSocket. Frames go through out to its
// writer goroutine, so that publishing never waits on the network.
type socket struct {
	c     *websocket.Conn
	out   chan []byte
	state atomic.Int32 // authenticating, authenticated or failed

	once   sync.Once
	kill   chan struct{}
	code   websocket.StatusCode
	reason string
	flush  bool // write what is queued before closing
}

const (
	authenticating int32 = iota
	authenticated
	failed
)

// drop closes the socket with code, once; with flush, the frames already
// queued go first.
func (k *socket) drop(code websocket.StatusCode, reason string, flush bool) {
	k.once.Do(func() {
		k.code, k.reason, k.flush = code, reason, flush
		close(k.kill)
	})
}

// writer writes the socket's frames until it is dropped or a write fails.
func (k *socket) writer(ctx context.Context) {
	write := func(frame []byte) error {
		wctx, cancel := context.WithTimeout(ctx, writeTimeout)
		defer cancel()
		return k.c.Write(wctx, websocket.MessageText, frame)
	}
	for {
		select {
		case <-k.kill:
			for k.flush {
				select {
				case frame := <-k.out:
					if write(frame) != nil {
						_ = k.c.CloseNow()
						return
					}
				default:
					k.flush = false
				}
			}
			_ = k.c.Close(k.code, k.reason)
			return
		case frame := <-k.out:
			if write(frame) != nil {
				k.drop(websocket.StatusGoingAway, "", false)
				_ = k.c.CloseNow()
				return
			}
		}
	}
}

// isUpgrade reports whether r asks for a WebSocket.
func isUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade")
}

// serveEvents runs one events WebSocket: the auth frame, then the
// account's events until either side closes. Frames the client sends
// after its auth are read (so pings are answered) and ignored.
func (s *Sandbox) serveEvents(w http.ResponseWriter, r *http.Request) int {
	h := s.events
	h.mu.Lock()
	if h.closed || h.pending >= MaxUnauthenticated {
		h.mu.Unlock()
		return writeError(w, http.StatusServiceUnavailable, "Too many sockets waiting to authenticate")
	}
	h.pending++
	h.wg.Add(1)
	h.mu.Unlock()
	defer h.wg.Done()
	settled := sync.OnceFunc(func() { h.mu.Lock(); h.pending--; h.mu.Unlock() })
	defer settled()

	k := &socket{out: make(chan []byte, h.queue), kill: make(chan struct{})}
	fail := func(code websocket.StatusCode, reason string) {
		if k.state.CompareAndSwap(authenticating, failed) {
			k.out <- authFailed // the queue is empty before auth
			k.drop(code, reason, true)
		}
	}
	// Set before the upgrade is answered, so that a client (a test) that
	// moves the clock once connected finds it set.
	if !s.sched.at(s.now().Add(AuthTimeout), func() { fail(websocket.StatusPolicyViolation, "Unauthorized") }) {
		return writeError(w, http.StatusServiceUnavailable, "Too many events waiting; try again later")
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return http.StatusBadRequest // Accept has answered
	}
	c.SetReadLimit(eventReadLimit)
	k.c = c
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		_ = c.Close(websocket.StatusGoingAway, "sandbox closing")
		return http.StatusSwitchingProtocols
	}
	h.all[k] = struct{}{}
	h.mu.Unlock()
	writerDone := make(chan struct{})
	go func() { defer close(writerDone); k.writer(h.ctx) }()
	var u *user
	defer func() {
		k.drop(websocket.StatusNormalClosure, "", false)
		<-writerDone
		h.mu.Lock()
		delete(h.all, k)
		if u != nil && k.state.Load() == authenticated {
			delete(h.byAcct[u.acct], k)
			if len(h.byAcct[u.acct]) == 0 {
				delete(h.byAcct, u.acct)
			}
			if h.perUser[u]--; h.perUser[u] == 0 {
				delete(h.perUser, u)
			}
		}
		h.mu.Unlock()
	}()

	typ, data, err := c.Read(context.Background())
	if err != nil {
		return http.StatusSwitchingProtocols
	}
	if u = s.authFrame(typ, data); u == nil {
		fail(websocket.StatusPolicyViolation, "Unauthorized")
		<-writerDone
		return http.StatusSwitchingProtocols
	}
	ip := clientIP(r)
	h.mu.Lock()
	switch {
	case h.perUser[u] >= MaxSocketsPerUser:
		h.mu.Unlock()
		fail(websocket.StatusTryAgainLater, "too many sockets for this user")
		<-writerDone
		return http.StatusSwitchingProtocols
	case !k.state.CompareAndSwap(authenticating, authenticated):
		h.mu.Unlock() // the deadline came first
		<-writerDone
		return http.StatusSwitchingProtocols
	}
	// Queued under the lock, so that no event goes before it.
	k.out <- s.authFrameOK(u, ip)
	if h.byAcct[u.acct] == nil {
		h.byAcct[u.acct] = map[*socket]struct{}{}
	}
	h.byAcct[u.acct][k] = struct{}{}
	h.perUser[u]++
	h.mu.Unlock()
	settled()

	for {
		if _, _, err := c.Read(context.Background()); err != nil {
			return http.StatusSwitchingProtocols
		}
	}
}

// authFrame is the user a first frame {"type":"auth","payload":"<JWT>"}
// names with a JWT of the sandbox's, or nil. Once accepted, the JWT's
// expiry does not end the socket.
func (s *Sandbox) authFrame(typ websocket.MessageType, data []byte) *user {
	var f struct {
		Type    string `json:"type"`
		Payload string `json:"payload"`
	}
	if typ != websocket.MessageText || json.Unmarshal(data, &f) != nil || f.Type != "auth" || f.Payload == "" {
		return nil
	}
	return s.fromJWT(f.Payload)
}

// authFrameOK is Opentact's documented answer to a good auth frame.
func (s *Sandbox) authFrameOK(u *user, ip string) []byte {
	var email string
	_ = json.Unmarshal(u.fields["email"], &email)
	var fields map[string]json.RawMessage
	_ = json.Unmarshal(append(append([]byte(nil), u.profileJSON()...), '}'), &fields)
	delete(fields, "account") // it comes beside the user
	fields["wss_online"] = json.RawMessage("true")
	account := u.accountNow()
	if account == nil {
		account = json.RawMessage("null")
	}
	conn, now := newUUID(), stamp(s.now())
	b, _ := json.Marshal(struct {
		UUID           string            `json:"uuid"`
		CreatedOn      string            `json:"created_on"`
		ModifiedOn     string            `json:"modified_on"`
		Type           string            `json:"type"`
		Message        string            `json:"message"`
		Payload        any               `json:"payload"`
		Account        json.RawMessage   `json:"account"`
		DeliveryReport []json.RawMessage `json:"delivery_report"`
	}{
		UUID: newUUID(), CreatedOn: now, ModifiedOn: now, Type: "auth",
		Message: "WSS connection " + conn + "@" + ip + " - success auth " + email,
		Payload: struct {
			UUID    string                     `json:"uuid"`
			IP      string                     `json:"ip"`
			User    map[string]json.RawMessage `json:"user"`
			Account json.RawMessage            `json:"account"`
		}{conn, ip, fields, account},
		Account: account, DeliveryReport: []json.RawMessage{},
	})
	return b
}

// clientIP is the peer's address, as the sandbox sees it.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// publish sends a frame to every authenticated socket of the account,
// dropping (1013) any whose queue is full: it gets no more events, and
// is closed once its writer is through the frame it is on. It never
// blocks on a socket.
func (s *Sandbox) publish(a *acct, frame []byte) {
	h := s.events
	h.mu.Lock()
	defer h.mu.Unlock()
	for k := range h.byAcct[a] {
		select {
		case k.out <- frame:
		default:
			k.drop(websocket.StatusTryAgainLater, "too slow: events were dropped", false)
			delete(h.byAcct[a], k)
		}
	}
	if len(h.byAcct[a]) == 0 {
		delete(h.byAcct, a)
	}
}

// listening reports whether the account has a socket; events are made
// only then, as Opentact keeps none for later.
func (s *Sandbox) listening(a *acct) bool {
	h := s.events
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.byAcct[a]) > 0
}

// event is the older envelope, of SMS, balance and order events.
func event(typ, message string, at time.Time, payload any, extra ...string) []byte {
	m := map[string]any{"timestamp": stamp(at), "message": message, "type": typ, "payload": payload}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	b, _ := json.Marshal(m)
	return b
}

// balanceEvent is the account's balance after a charge, under telco.mu.
func (s *Sandbox) balanceEvent(a *acct, source string, at time.Time) {
	text := moneyText(a.balance)
	s.publish(a, event("balance", "New balance is "+text, at, json.RawMessage(text), "source_action", source))
}

// Close ends the sandbox's event sockets (1001) and its timers, and
// waits for their goroutines. Requests served afterwards get no events;
// an upgrade gets 503.
func (s *Sandbox) Close() error {
	h := s.events
	h.mu.Lock()
	h.closed = true
	for k := range h.all {
		k.drop(websocket.StatusGoingAway, "sandbox closing", false)
	}
	h.mu.Unlock()
	s.sched.close()
	h.cancel()
	h.wg.Wait()
	return nil
}

// ClockMoved tells the sandbox that its clock (Options.Now) has moved:
// the events due by then are emitted now. With the real clock there is
// no need; tests with their own clock call it after moving it.
func (s *Sandbox) ClockMoved() { s.sched.poke() }
