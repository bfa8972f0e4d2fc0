package sandbox

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// CallStateInterval is how far apart, on the sandbox's clock, an inbound
// call's states come: init at once, then ringing, live, hangup and
// destroyed.
const CallStateInterval = time.Second

// callStates are an inbound call's states, in order.
var callStates = []string{"init", "ringing", "live", "hangup", "destroyed"}

// inboundSender is the number the periodic inbound SMS come from.
const inboundSender = 12025550100

// controlRequest reads a control call's body: to, one of the account's
// numbers, from, digits, and the message when withMessage. On failure
// it has written the error and returns its status.
func (s *Sandbox) controlRequest(w http.ResponseWriter, r *http.Request, withMessage bool) (to, from int64, message string, status int) {
	obj, status := readObject(w, r, false)
	if status != 0 {
		return 0, 0, "", status
	}
	errs := map[string]fieldError{}
	for _, f := range []struct {
		key string
		n   *int64
	}{{"to", &to}, {"from", &from}} {
		raw := obj[f.key]
		var ok bool
		switch *f.n, ok = readDigits(raw); {
		case !present(raw):
			errs[f.key] = fieldError{Message: "is required", Value: json.RawMessage("null")}
		case !ok || *f.n < 100:
			errs[f.key] = fieldError{Message: "must be a phone number's digits", Value: raw}
		}
	}
	if withMessage {
		message = readMessage(obj, errs)
	}
	if len(errs) > 0 {
		return 0, 0, "", writeValidationError(w, errs)
	}
	return to, from, message, 0
}

// leasedBy is the number tn when a leases it, under telco.mu.
func (s *Sandbox) leasedBy(a *acct, tn int64) *number {
	if n := s.telco.byTN[tn]; n != nil && n.lease != nil && n.lease.acct == a {
		return n
	}
	return nil
}

const notLeased = "to is not a number the account leases"

// serveInboundSMS answers POST /sandbox/inbound-sms {to, from, message}:
// the account's number to receives an SMS, kept for the inbound search
// and sent as an sms event (type smsi). 202 with the message's uuid.
func (s *Sandbox) serveInboundSMS(w http.ResponseWriter, r *http.Request, u *user, _ string) int {
	to, from, message, status := s.controlRequest(w, r, true)
	if status != 0 {
		return status
	}
	s.telco.mu.Lock()
	defer s.telco.mu.Unlock()
	n := s.leasedBy(u.acct, to)
	if n == nil {
		return writeError(w, http.StatusBadRequest, notLeased)
	}
	m := s.receive(u.acct, n, from, message, s.now().UTC())
	return writeSuccess(w, http.StatusAccepted, map[string]string{"uuid": m.uuid})
}

// receive keeps an SMS to n and emits its event, under telco.mu.
func (s *Sandbox) receive(a *acct, n *number, from int64, message string, now time.Time) *sms {
	m := &sms{uuid: newUUID(), inbound: true, from: from, to: n.tn, message: message,
		thread: thread(a, from, n.tn), tn: n.brief(), created: now}
	a.keep(m)
	s.publish(a, smsEvent(m, "success", now))
	return m
}

// inboundEvery has every account that leases a number receive an SMS on
// its oldest lease every d, on the scheduler, until Close.
func (s *Sandbox) inboundEvery(d time.Duration) {
	var tick func(at time.Time)
	tick = func(at time.Time) {
		s.telco.mu.Lock()
		for _, a := range s.accts {
			if len(a.leases) > 0 {
				s.receive(a, a.leases[0].num, inboundSender, "Hello from the sandbox, every "+d.String(), at)
			}
		}
		s.telco.mu.Unlock()
		next := at.Add(d)
		s.sched.at(next, func() { tick(next) })
	}
	first := s.now().UTC().Add(d)
	s.sched.at(first, func() { tick(first) })
}

// inboundCall is a call to one of the account's numbers, as the sandbox
// plays it out.
type inboundCall struct {
	uuid     string
	from, to string
	tn       int64
	acct     *acct
	start    time.Time
	// sca is the call as its call control app's, when the number is
	// assigned to one; nil otherwise.
	sca *scaCall
}

// serveInboundCall answers POST /sandbox/inbound-call {to, from}: a call
// to the account's number to, played out as call_state events init,
// ringing, live, hangup and destroyed, CallStateInterval apart. 202 with
// the call's uuid.
func (s *Sandbox) serveInboundCall(w http.ResponseWriter, r *http.Request, u *user, _ string) int {
	to, from, _, status := s.controlRequest(w, r, false)
	if status != 0 {
		return status
	}
	s.telco.mu.Lock()
	n := s.leasedBy(u.acct, to)
	var l *lease
	if n != nil {
		l = n.lease
	}
	s.telco.mu.Unlock()
	if n == nil {
		return writeError(w, http.StatusBadRequest, notLeased)
	}
	if !s.sched.room(len(callStates) - 1) {
		return writeError(w, http.StatusServiceUnavailable, "Too many events waiting; try again later")
	}
	c := &inboundCall{uuid: newUUID(), from: strconv.FormatInt(from, 10), to: strconv.FormatInt(to, 10),
		tn: to, acct: u.acct, start: s.now().UTC()}
	app := s.appOf(u, l)
	if app != "" {
		// A call to an app's number is the app's: online until torn down,
		// running the app's saved flow once answered, then in the log.
		c.sca = &scaCall{uuid: c.uuid, from: c.from, to: c.to, tn: c.tn, app: app, online: true, created: c.start, modified: c.start}
		s.telco.mu.Lock()
		c.acct.startCall(c.sca)
		s.telco.mu.Unlock()
	}
	s.publish(c.acct, c.event(0))
	for i := 1; i < len(callStates); i++ {
		s.sched.at(c.at(i), func() {
			if c.sca != nil {
				s.advance(c, i)
			}
			s.publish(c.acct, c.event(i))
		})
	}
	return writeSuccess(w, http.StatusAccepted, map[string]string{"uuid": c.uuid})
}

// advance moves an app's call to its i-th state: once live it runs the
// app's saved flow (Opentact would fetch call_flow_url when none is
// saved, which the sandbox cannot); once destroyed it is offline.
func (s *Sandbox) advance(c *inboundCall, i int) {
	s.telco.mu.Lock()
	defer s.telco.mu.Unlock()
	now := c.at(i)
	switch callStates[i] {
	case "live":
		if flow, ok := c.acct.flows[c.sca.app]; ok {
			s.run(c.acct, c.sca, flow, now)
		} else {
			s.log.Info("sandbox: no call flow saved for the app; Opentact would fetch its call_flow_url",
				slog.String("call", c.uuid), slog.String("app", c.sca.app))
		}
	case "destroyed":
		c.sca.online = false
	}
	c.sca.modified = now
}

// at is when the call reaches its i-th state.
func (c *inboundCall) at(i int) time.Time { return c.start.Add(time.Duration(i) * CallStateInterval) }

// event is the call's i-th call_state event, in the 2024 envelope.
func (c *inboundCall) event(i int) []byte {
	state, now := callStates[i], c.at(i)
	duration := int64(now.Sub(c.start) / time.Second)
	when := func(j int) any {
		if i < j {
			return nil
		}
		return stamp(c.at(j))
	}
	var cause, causeText any
	if i >= 3 {
		cause, causeText = 16, "NORMAL_CLEARING"
	}
	account := reference(c.acct.uuid)
	if account == nil {
		account = json.RawMessage("null")
	}
	call := map[string]any{
		"uuid": c.uuid, "direction": "in", "from": c.from, "to": c.to, "state": state, "duration": duration,
		"type": "CallSCA", "created_on": stamp(c.start), "modified_on": stamp(now),
		"init_on": when(0), "ring_on": when(1), "answer_on": when(2), "hangup_on": when(3), "destroy_on": when(4),
		"q850_cause": cause, "q850_cause_string": causeText,
		"tn": map[string]int64{"tn": c.tn}, "account": account,
	}
	if c.sca != nil {
		call["sip_control_app"] = reference(c.sca.app)
	}
	b, _ := json.Marshal(map[string]any{
		"uuid": newUUID(), "created_on": stamp(now), "modified_on": stamp(now), "type": "call_state",
		"message": "CallSCA in " + c.from + " > " + c.to + " - " + state,
		"payload": map[string]any{"state": state, "duration": duration},
		"call":    call, "account": account, "delivery_report": []any{},
	})
	return b
}
