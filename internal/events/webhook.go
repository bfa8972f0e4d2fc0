package events

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	eventsv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/events/v1"
	"github.com/opentact-facade/opentact-facade/internal/logs"
)

// WebhookPath is the prefix of the webhook route; the key follows it.
const WebhookPath = "/v1/webhooks/opentact/"

// DefaultWebhookMaxBytes bounds a webhook body: an SMS or a call is a
// few KiB.
const DefaultWebhookMaxBytes = 64 << 10

var webhookOutcomes = []string{"accepted", "off", "bad_key", "forbidden_address", "method", "too_large", "bad_body", "no_account"}

// WebhookOptions configures the webhook route.
type WebhookOptions struct {
	// Key is the secret the route's last segment must equal; empty turns
	// the route off (every call is 404).
	Key string
	// Allow, if not empty, admits only callers from these networks (the
	// TCP peer's address: put the facade where Opentact reaches it
	// directly, or allow the proxy's network).
	Allow []netip.Prefix
	// MaxBytes bounds a body; DefaultWebhookMaxBytes if 0.
	MaxBytes int64
	// WriteError answers a refused call as the REST API answers errors
	// (rest.Edge.WriteError); plain text if nil.
	WriteError func(w http.ResponseWriter, r *http.Request, httpStatus int, err error)
	// Sampler rate limits the refusals' log lines, which a client can
	// cause in floods; every refusal is logged if nil.
	Sampler *logs.Sampler
}

// Webhook serves POST WebhookPath{key}: Opentact's webhook calls (SMS
// callbacks, call control app webhooks), each delivered as an event to
// the streams of the account it names. The key is compared in constant
// time and never logged or counted by value.
func (h *Hub) Webhook(o WebhookOptions) http.Handler {
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultWebhookMaxBytes
	}
	want := sha256.Sum256([]byte(o.Key))
	m := h.o.Metrics
	if o.Sampler == nil {
		o.Sampler = logs.NewSampler(math.Inf(1), 1)
	}
	if o.WriteError == nil {
		o.WriteError = func(w http.ResponseWriter, _ *http.Request, code int, err error) {
			http.Error(w, status.Convert(err).Message(), code)
		}
	}
	refuse := func(w http.ResponseWriter, r *http.Request, httpStatus int, outcome string, code codes.Code, msg string) {
		m.webhooks.WithLabelValues(outcome).Inc()
		o.Sampler.Log(r.Context(), h.o.Log, slog.LevelInfo, "webhook call refused",
			slog.String("route", WebhookPath+"{key}"), slog.String("outcome", outcome), slog.String("peer.address", r.RemoteAddr))
		o.WriteError(w, r, httpStatus, status.Error(code, msg))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := strings.TrimPrefix(r.URL.Path, WebhookPath)
		if o.Key == "" {
			refuse(w, r, http.StatusNotFound, "off", codes.NotFound, "Not Found")
			return
		}
		got := sha256.Sum256([]byte(key))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			refuse(w, r, http.StatusNotFound, "bad_key", codes.NotFound, "Not Found")
			return
		}
		if len(o.Allow) > 0 && !allowed(r.RemoteAddr, o.Allow) {
			refuse(w, r, http.StatusForbidden, "forbidden_address", codes.PermissionDenied, "webhook calls are not accepted from this address")
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			refuse(w, r, http.StatusMethodNotAllowed, "method", codes.Unimplemented, "webhook calls are POST")
			return
		}
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, o.MaxBytes))
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				refuse(w, r, http.StatusRequestEntityTooLarge, "too_large", codes.ResourceExhausted, "the body is larger than the facade accepts")
				return
			}
			refuse(w, r, http.StatusBadRequest, "bad_body", codes.InvalidArgument, "the body could not be read")
			return
		}
		ev, account, err := webhookEvent(b)
		if err != nil {
			refuse(w, r, http.StatusBadRequest, "bad_body", codes.InvalidArgument, "the body is not one JSON object")
			return
		}
		if account == "" {
			refuse(w, r, http.StatusBadRequest, "no_account", codes.InvalidArgument, "the body names no account")
			return
		}
		m.webhooks.WithLabelValues("accepted").Inc()
		m.received.WithLabelValues(typeLabel(ev.Type)).Inc()
		h.Publish(account, ev)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
	})
}

func allowed(remote string, allow []netip.Prefix) bool {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap()
	for _, p := range allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// webhookEvent reads a webhook body as an event and the account it
// names. Opentact's bodies are undocumented but for their kind: an event
// envelope (type and payload) is read as the socket's are; a call entity
// (a call control app's webhook) as a call_state event; anything else as
// an SMS (a messaging profile's callback).
func webhookEvent(b []byte) (ev *eventsv1.Event, account string, err error) {
	var top map[string]json.RawMessage
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&top); err != nil || top == nil || d.More() {
		return nil, "", errors.New("not one JSON object")
	}
	body := b
	switch {
	case top["type"] != nil && top["payload"] != nil:
	case top["direction"] != nil || top["sip_control_app"] != nil:
		body = wrap(TypeCallState, b)
	default:
		body = wrap(TypeSMS, b)
	}
	ev, err = Decode(body)
	if err != nil {
		return nil, "", err
	}
	return ev, accountOf(top), nil
}

func wrap(typ string, payload []byte) []byte {
	out := make([]byte, 0, len(payload)+40)
	out = append(out, `{"type":"`...)
	out = append(out, typ...)
	out = append(out, `","payload":`...)
	out = append(out, payload...)
	return append(out, '}')
}

// accountOf finds the account uuid in a body: its "account" (an object
// with a uuid, or the uuid itself), or that of its payload or call.
func accountOf(top map[string]json.RawMessage) string {
	if a := accountField(top["account"]); a != "" {
		return a
	}
	for _, k := range []string{"payload", "call"} {
		var inner map[string]json.RawMessage
		if json.Unmarshal(top[k], &inner) == nil {
			if a := accountField(inner["account"]); a != "" {
				return a
			}
		}
	}
	return ""
}

func accountField(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var obj struct {
		UUID string `json:"uuid"`
	}
	if json.Unmarshal(raw, &obj) == nil {
		return obj.UUID
	}
	return ""
}
