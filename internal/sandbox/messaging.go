package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

const (
	// SMSDeliveryDelay is how long after it is sent, on the sandbox's
	// clock, a message is "sent" and delivered; until then it is
	// "created". Its state is worked out when it is read.
	SMSDeliveryDelay = 2 * time.Second
	// MaxSMS bounds the messages an account's history keeps: past it the
	// oldest is forgotten.
	MaxSMS = 1000
	// maxSMSLength is the longest message, in characters, as Opentact
	// documents it.
	maxSMSLength = 918
)

// sms is a message sent, or received when inbound.
type sms struct {
	uuid     string
	inbound  bool
	from, to int64
	message  string
	callback *string
	thread   string
	tn       briefNumberJSON // the account's number, as it was
	created  time.Time
}

// state is the message's state at now: created, then sent and delivered
// once SMSDeliveryDelay has passed. One received is at once "success"
// (Opentact's ISMSI state) and delivered.
func (m *sms) state(now time.Time) (state string, delivered bool, modified time.Time) {
	if m.inbound {
		return "success", true, m.created
	}
	if sent := m.created.Add(SMSDeliveryDelay); !now.Before(sent) {
		return "sent", true, sent
	}
	return "created", false, m.created
}

// smsJSON is a message sent as Opentact answers it (its docs' payload,
// with the schema's members).
type smsJSON struct {
	UUID              string          `json:"uuid"`
	Type              string          `json:"type"`
	State             string          `json:"state"`
	From              int64           `json:"from"`
	To                int64           `json:"to"`
	Message           string          `json:"message"`
	Thread            string          `json:"thread"`
	Delivered         bool            `json:"delivered"`
	Automated         bool            `json:"automated"`
	Reason            *string         `json:"reason"`
	ReferenceID       *string         `json:"reference_id"`
	CustomCallbackURL *string         `json:"custom_callback_url"`
	TN                briefNumberJSON `json:"tn"`
	CreatedOn         string          `json:"created_on"`
	ModifiedOn        string          `json:"modified_on"`
}

func (m *sms) view(now time.Time) smsJSON {
	state, delivered, modified := m.state(now)
	typ := "smso"
	if m.inbound {
		typ = "smsi"
	}
	return smsJSON{
		UUID: m.uuid, Type: typ, State: state, From: m.from, To: m.to, Message: m.message, Thread: m.thread,
		Delivered: delivered, CustomCallbackURL: m.callback, TN: m.tn, CreatedOn: stamp(m.created), ModifiedOn: stamp(modified),
	}
}

// smsRecordJSON is a message as the search of both directions answers
// it; Opentact's schema writes its numbers as strings there.
type smsRecordJSON struct {
	UUID        string `json:"uuid"`
	Type        string `json:"type"`
	State       string `json:"state"`
	From        string `json:"from"`
	To          string `json:"to"`
	Message     string `json:"message"`
	Thread      string `json:"thread"`
	Delivered   bool   `json:"delivered"`
	Readed      bool   `json:"readed"`
	Automated   bool   `json:"automated"`
	AccountUUID string `json:"account_uuid,omitempty"`
	CreatedOn   string `json:"created_on"`
	ModifiedOn  string `json:"modified_on"`
}

func (m *sms) record(now time.Time, account string) smsRecordJSON {
	state, delivered, modified := m.state(now)
	typ := "sms"
	if m.inbound {
		typ = "smsi"
	}
	return smsRecordJSON{
		UUID: m.uuid, Type: typ, State: state, From: strconv.FormatInt(m.from, 10), To: strconv.FormatInt(m.to, 10),
		Message: m.message, Thread: m.thread, Delivered: delivered, AccountUUID: account,
		CreatedOn: stamp(m.created), ModifiedOn: stamp(modified),
	}
}

// thread names the conversation of two numbers, the same for every
// message between them.
func thread(a *acct, from, to int64) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s %d %d", a.key, min(from, to), max(from, to)))
	sum[6] = sum[6]&0x0f | 0x50
	sum[8] = sum[8]&0x3f | 0x80
	h := hex.EncodeToString(sum[:16])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// serveSendSMS answers POST /rest/sms: a message from one of the
// account's numbers with SMS on (404 "TNLease not found" otherwise),
// charged at the number's profile's price per message (402 when the
// balance is short). from may come as the schema's tn.
func (s *Sandbox) serveSendSMS(w http.ResponseWriter, r *http.Request, u *user, _ string) int {
	obj, status := readObject(w, r, false)
	if status != 0 {
		return status
	}
	errs := map[string]fieldError{}
	fromKey := "from"
	if !present(obj["from"]) && present(obj["tn"]) {
		fromKey = "tn"
	}
	number := func(key string) int64 {
		raw := obj[key]
		n, ok := readDigits(raw)
		switch {
		case !present(raw):
			errs[key] = fieldError{Message: "is required", Value: json.RawMessage("null")}
		case !ok || n < 100:
			errs[key] = fieldError{Message: "must be a phone number's digits", Value: raw}
		}
		return n
	}
	from, to := number(fromKey), number("to")
	message := readMessage(obj, errs)
	var callback *string
	if raw := obj["custom_callback_url"]; present(raw) {
		if json.Unmarshal(raw, &callback) != nil || len(*callback) < 10 || len(*callback) > 255 {
			errs["custom_callback_url"] = fieldError{Message: "must be a URL of 10 to 255 characters", Value: raw}
		}
	}
	if len(errs) > 0 {
		return writeValidationError(w, errs)
	}
	s.telco.mu.Lock()
	defer s.telco.mu.Unlock()
	a := u.acct
	n := s.telco.byTN[from]
	if n == nil || n.lease == nil || n.lease.acct != a || !s.smsOn(u, n.lease) {
		return writeError(w, http.StatusNotFound, "TNLease not found")
	}
	if !a.charge(n.profile.smsPrice) {
		return writeError(w, http.StatusPaymentRequired, "Not enough account balance")
	}
	now := s.now().UTC()
	m := &sms{uuid: newUUID(), from: from, to: to, message: message, callback: callback,
		thread: thread(a, from, to), tn: n.brief(), created: now}
	a.keep(m)
	s.smsEvents(a, m)
	if n.profile.smsPrice.Sign() > 0 {
		s.balanceEvent(a, "sms_charge", now)
	}
	return writeSuccess(w, http.StatusOK, m.view(now))
}

// keep adds m to the account's history, forgetting the oldest past
// MaxSMS; under telco.mu.
func (a *acct) keep(m *sms) {
	a.sms = append(a.sms, m)
	a.smsByID[m.uuid] = m
	if len(a.sms) > MaxSMS {
		delete(a.smsByID, a.sms[0].uuid)
		a.sms = slices.Delete(a.sms, 0, 1)
	}
}

// smsEvent is Opentact's sms event for m as it is at at, in state.
func smsEvent(m *sms, state string, at time.Time) []byte {
	v := m.view(at)
	v.State = state
	return event("sms", "SMS: type: "+v.Type+", state: "+state, at, v)
}

// smsEvents emits a sent message's events: created now, then, once
// SMSDeliveryDelay has passed, success and success delivered. Events
// speak of "success" where the REST answers say "sent", as Opentact's
// examples do.
func (s *Sandbox) smsEvents(a *acct, m *sms) {
	if !s.listening(a) {
		return
	}
	s.publish(a, smsEvent(m, "created", m.created))
	at := m.created.Add(SMSDeliveryDelay)
	s.sched.at(at, func() {
		success := m.view(at)
		success.State, success.Delivered = "success", false
		s.publish(a, event("sms", "SMS: type: smso, state: success", at, success))
		s.publish(a, smsEvent(m, "success", at))
	})
}

// serveSMSGet answers GET /rest/sms/outbound/{uuid}: the message in its
// state now.
func (s *Sandbox) serveSMSGet(w http.ResponseWriter, _ *http.Request, u *user, id string) int {
	return s.serveMessage(w, u, id, false)
}

func (s *Sandbox) serveMessage(w http.ResponseWriter, u *user, id string, inbound bool) int {
	s.telco.mu.Lock()
	m := u.acct.smsByID[id]
	s.telco.mu.Unlock()
	if m == nil || m.inbound != inbound {
		return writeError(w, http.StatusNotFound, "Not found")
	}
	return writeSuccess(w, http.StatusOK, m.view(s.now().UTC()))
}

// smsMasks are the members whose search filters take masks.
var smsMasks = []string{"from", "to", "message"}

// newestFirst lists the elements of list that keep says (all when nil),
// newest (last) first as searches answer them by default (Opentact's
// created_on DESC), each as item makes it. list is read under telco.mu,
// where an account's messages, calls and flow logs change.
func newestFirst[T any](s *Sandbox, list func() []T, keep func(T) bool, item func(T) searchItem) []searchItem {
	s.telco.mu.Lock()
	defer s.telco.mu.Unlock()
	all := list()
	items := make([]searchItem, 0, len(all))
	for i := len(all) - 1; i >= 0; i-- {
		if keep == nil || keep(all[i]) {
			items = append(items, item(all[i]))
		}
	}
	return items
}

// messages lists a's messages, for newestFirst.
func messages(a *acct) func() []*sms { return func() []*sms { return a.sms } }

func outbound(m *sms) bool { return !m.inbound }
func inbound(m *sms) bool  { return m.inbound }

// searchView is v's members, for a search's filters.
func searchView(v any) (json.RawMessage, map[string]json.RawMessage) {
	out, _ := json.Marshal(v)
	var view map[string]json.RawMessage
	_ = json.Unmarshal(out, &view)
	return out, view
}

// serveOutboundSearch answers POST /rest/sms/search/outbound: a page of
// the messages sent, newest first; tn is the sending number.
func (s *Sandbox) serveOutboundSearch(w http.ResponseWriter, r *http.Request, u *user, _ string) int {
	sr, status := readSearch(w, r, nil, smsMasks)
	if status != 0 {
		return status
	}
	now := s.now().UTC()
	return sr.answer(w, newestFirst(s, messages(u.acct), outbound, func(m *sms) searchItem {
		out, view := searchView(m.view(now))
		view["tn"] = json.RawMessage(strconv.FormatInt(m.from, 10))
		return searchItem{view: view, out: out}
	}))
}

// serveSMSSearch answers POST /rest/sms/search: a page of the messages of
// both directions, newest first.
func (s *Sandbox) serveSMSSearch(w http.ResponseWriter, r *http.Request, u *user, _ string) int {
	sr, status := readSearch(w, r, nil, smsMasks)
	if status != 0 {
		return status
	}
	now := s.now().UTC()
	return sr.answer(w, newestFirst(s, messages(u.acct), nil, func(m *sms) searchItem {
		out, view := searchView(m.record(now, u.acct.uuid))
		return searchItem{view: view, out: out}
	}))
}

// serveInboundSearch answers POST /rest/sms/search/inbound: a page of
// the messages received (POST /sandbox/inbound-sms), newest first; tn is
// the receiving number.
func (s *Sandbox) serveInboundSearch(w http.ResponseWriter, r *http.Request, u *user, _ string) int {
	sr, status := readSearch(w, r, nil, smsMasks)
	if status != 0 {
		return status
	}
	now := s.now().UTC()
	return sr.answer(w, newestFirst(s, messages(u.acct), inbound, func(m *sms) searchItem {
		out, view := searchView(m.view(now))
		view["tn"] = json.RawMessage(strconv.FormatInt(m.to, 10))
		return searchItem{view: view, out: out}
	}))
}

// serveInboundGet answers GET /rest/sms/inbound/{uuid}.
func (s *Sandbox) serveInboundGet(w http.ResponseWriter, _ *http.Request, u *user, id string) int {
	return s.serveMessage(w, u, id, true)
}

// serveEnableSMS answers POST /rest/lease/tn/{tn_lease}/subscription/sms:
// turns SMS on for a lease (named by its uuid or its number) through an
// existing messaging profile and a 10DLC campaign, which the sandbox
// takes on trust.
func (s *Sandbox) serveEnableSMS(w http.ResponseWriter, r *http.Request, u *user, key string) int {
	obj, status := readObject(w, r, false)
	if status != 0 {
		return status
	}
	errs := map[string]fieldError{}
	ids := map[string]string{}
	for _, k := range []string{"messaging_profile", "sms_campaign"} {
		raw := obj[k]
		var id string
		switch {
		case !present(raw):
			errs[k] = fieldError{Message: "is required", Value: json.RawMessage("null")}
		case json.Unmarshal(raw, &id) != nil || id == "":
			errs[k] = fieldError{Message: "must be a uuid", Value: raw}
		}
		ids[k] = id
	}
	if len(errs) > 0 {
		return writeValidationError(w, errs)
	}
	s.telco.mu.Lock()
	defer s.telco.mu.Unlock()
	l := s.findLease(u.acct, key)
	if l == nil {
		return writeError(w, http.StatusNotFound, "Not found")
	}
	if _, ok := s.messagingProfile(u, ids["messaging_profile"]); !ok {
		return writeError(w, http.StatusNotFound, "Messaging profile not found")
	}
	now := s.now().UTC()
	sub := l.subscription
	if sub == nil {
		sub = &subscription{uuid: newUUID(), created: now}
		l.subscription = sub
	}
	sub.profile, sub.campaign, sub.modified = ids["messaging_profile"], ids["sms_campaign"], now
	l.sms, l.profile, l.modified = true, sub.profile, now
	// 200 "Subscription created", as Opentact's docs answer.
	return writeSuccess(w, http.StatusOK, s.subscriptionView(u, sub))
}

// serveDisableSMS answers DELETE /rest/lease/tn/{tn_lease}/subscription/sms:
// SMS off, and the subscription as it ended; 404 when SMS was not on.
func (s *Sandbox) serveDisableSMS(w http.ResponseWriter, _ *http.Request, u *user, key string) int {
	s.telco.mu.Lock()
	defer s.telco.mu.Unlock()
	l := s.findLease(u.acct, key)
	if l == nil || l.subscription == nil {
		return writeError(w, http.StatusNotFound, "Not found")
	}
	now := s.now().UTC()
	sub := l.subscription
	sub.modified = now
	l.subscription, l.sms, l.modified = nil, false, now
	return writeSuccess(w, http.StatusOK, s.subscriptionView(u, sub))
}

// readMessage reads an SMS's text from obj's "message", adding its field
// error to errs. The value is left out of the error: it is a person's
// words.
func readMessage(obj map[string]json.RawMessage, errs map[string]fieldError) string {
	var message string
	switch raw := obj["message"]; {
	case !present(raw):
		errs["message"] = fieldError{Message: "is required", Value: json.RawMessage("null")}
	case json.Unmarshal(raw, &message) != nil:
		errs["message"] = fieldError{Message: "must be a string"}
	case message == "" || utf8.RuneCountInString(message) > maxSMSLength:
		errs["message"] = fieldError{Message: fmt.Sprintf("must be 1 to %d characters", maxSMSLength)}
	}
	return message
}
