package sandbox

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"time"
)

// MaxEventSubscriptions bounds the event subscriptions of one account.
const MaxEventSubscriptions = 100

var eventTypePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// eventSubJSON is an event subscription as Opentact lists it. The
// sandbox keeps them, but sends every event whatever they say.
type eventSubJSON struct {
	UUID       string  `json:"uuid"`
	CreatedOn  string  `json:"created_on"`
	ModifiedOn string  `json:"modified_on"`
	Channel    string  `json:"channel"`
	Type       string  `json:"type"`
	IsActive   bool    `json:"is_active"`
	ExpiredOn  *string `json:"expired_on"`
}

// The three calls are hand-written, not served by a generic collection:
// a generic create would store only what the body says, where Opentact
// answers with a channel, is_active and expired_on always.

// serveEventSubscriptions answers GET /rest/event/subscription: the
// account's subscriptions, oldest first.
func (s *Sandbox) serveEventSubscriptions(w http.ResponseWriter, _ *http.Request, u *user, _ string) int {
	s.telco.mu.Lock()
	defer s.telco.mu.Unlock()
	return writeSuccess(w, http.StatusOK, append([]eventSubJSON{}, u.acct.eventSubs...))
}

// serveEventSubscribe answers POST /rest/event/subscription {type,
// channel "wss" (the default), is_active (true by default), expired_on
// (an RFC 3339 time, none by default)}.
func (s *Sandbox) serveEventSubscribe(w http.ResponseWriter, r *http.Request, u *user, _ string) int {
	obj, status := readObject(w, r, false)
	if status != 0 {
		return status
	}
	now := stamp(s.now())
	sub := eventSubJSON{UUID: newUUID(), CreatedOn: now, ModifiedOn: now, Channel: "wss", IsActive: true}
	errs := map[string]fieldError{}
	switch raw := obj["type"]; {
	case !present(raw):
		errs["type"] = fieldError{Message: "is required", Value: json.RawMessage("null")}
	case json.Unmarshal(raw, &sub.Type) != nil || !eventTypePattern.MatchString(sub.Type):
		errs["type"] = fieldError{Message: "must be an event type: 1 to 64 letters, digits, _, . or -", Value: raw}
	}
	if raw := obj["channel"]; present(raw) && (json.Unmarshal(raw, &sub.Channel) != nil || sub.Channel != "wss") {
		errs["channel"] = fieldError{Message: `must be "wss"`, Value: raw}
	}
	if raw := obj["is_active"]; present(raw) && json.Unmarshal(raw, &sub.IsActive) != nil {
		errs["is_active"] = fieldError{Message: "must be a boolean", Value: raw}
	}
	if raw := obj["expired_on"]; present(raw) {
		var text string
		t, err := time.Time{}, json.Unmarshal(raw, &text)
		if err == nil {
			t, err = time.Parse(time.RFC3339Nano, text)
		}
		if err != nil {
			errs["expired_on"] = fieldError{Message: "must be an RFC 3339 time", Value: raw}
		} else {
			at := stamp(t)
			sub.ExpiredOn = &at
		}
	}
	if len(errs) > 0 {
		return writeValidationError(w, errs)
	}
	s.telco.mu.Lock()
	defer s.telco.mu.Unlock()
	a := u.acct
	if len(a.eventSubs) >= MaxEventSubscriptions {
		return writeError(w, http.StatusBadRequest, fmt.Sprintf("Too many subscriptions: an account holds at most %d; delete some first", MaxEventSubscriptions))
	}
	a.eventSubs = append(a.eventSubs, sub)
	// 201 as a NestJS @Post answers by default, as for tokens.
	return writeSuccess(w, http.StatusCreated, sub)
}

// serveEventUnsubscribe answers DELETE /rest/event/subscription/{uuid}:
// the subscription deleted; 404 when it is not the account's.
func (s *Sandbox) serveEventUnsubscribe(w http.ResponseWriter, _ *http.Request, u *user, id string) int {
	s.telco.mu.Lock()
	defer s.telco.mu.Unlock()
	a := u.acct
	i := slices.IndexFunc(a.eventSubs, func(e eventSubJSON) bool { return e.UUID == id })
	if i < 0 {
		return writeError(w, http.StatusNotFound, "Not found")
	}
	sub := a.eventSubs[i]
	a.eventSubs = slices.Delete(a.eventSubs, i, i+1)
	return writeSuccess(w, http.StatusOK, sub)
}
