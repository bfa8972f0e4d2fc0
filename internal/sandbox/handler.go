package sandbox

import (
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// route is one call of the API. Its pattern is matched against the end of
// the request path, so that any base path prefix works; a {param}
// segment matches one non-empty path segment, path-unescaped.
type route struct {
	method  string
	pattern string
	segs    []string
	// coll is the collection a hand-written route owns, so that no
	// declared call is served generically from beside it.
	coll  string
	serve func(s *Sandbox, w http.ResponseWriter, r *http.Request, u *user, params []string) int
}

func newRoute(method, pattern string, serve func(*Sandbox, http.ResponseWriter, *http.Request, *user, []string) int) route {
	return route{method: method, pattern: pattern, segs: strings.Split(strings.TrimPrefix(pattern, "/"), "/"), serve: serve}
}

// byParam adapts a handler of a route with at most one {param}.
func byParam(f func(*Sandbox, http.ResponseWriter, *http.Request, *user, string) int) func(*Sandbox, http.ResponseWriter, *http.Request, *user, []string) int {
	return func(s *Sandbox, w http.ResponseWriter, r *http.Request, u *user, params []string) int {
		var p string
		if len(params) > 0 {
			p = params[len(params)-1]
		}
		return f(s, w, r, u, p)
	}
}

// handWritten are the routes of Opentact's own behaviour, matched before
// the declared calls served generically, each group with the collection
// it owns. They list literal paths before {param} ones: the first route
// that matches both path and method wins, so /rest/token/all is not a
// secret.
var handWritten = slices.Concat(
	owns("/rest/auth",
		newRoute(http.MethodGet, "/rest/auth", byParam((*Sandbox).serveAuth))),
	owns("/rest/token",
		newRoute(http.MethodPost, "/rest/token", byParam((*Sandbox).serveCreate)),
		newRoute(http.MethodGet, "/rest/token/list", byParam((*Sandbox).serveList)),
		newRoute(http.MethodDelete, "/rest/token/all", byParam((*Sandbox).serveDeleteAll)),
		newRoute(http.MethodPatch, "/rest/token/{uuid}", byParam((*Sandbox).serveUpdate)),
		newRoute(http.MethodDelete, "/rest/token/{token}", byParam((*Sandbox).serveDelete))),
	owns("/rest/tn",
		newRoute(http.MethodPost, "/rest/tn/search", byParam((*Sandbox).serveNumberSearch))),
	owns("/rest/order",
		newRoute(http.MethodPost, "/rest/order", byParam((*Sandbox).serveOrder)),
		newRoute(http.MethodPost, "/rest/order/search", byParam((*Sandbox).serveOrderSearch)),
		newRoute(http.MethodGet, "/rest/order/{uuid}", byParam((*Sandbox).serveOrderGet))),
	owns("/rest/lease/tn",
		newRoute(http.MethodPost, "/rest/lease/tn/search", byParam((*Sandbox).serveLeaseSearch)),
		newRoute(http.MethodGet, "/rest/lease/tn/{tn}/tn", byParam((*Sandbox).serveLeaseByNumber)),
		newRoute(http.MethodPost, "/rest/lease/tn/{tn_lease}/subscription/sms", byParam((*Sandbox).serveEnableSMS)),
		newRoute(http.MethodDelete, "/rest/lease/tn/{tn_lease}/subscription/sms", byParam((*Sandbox).serveDisableSMS)),
		newRoute(http.MethodGet, "/rest/lease/tn/{uuid}", byParam((*Sandbox).serveLeaseGet)),
		newRoute(http.MethodPatch, "/rest/lease/tn/{uuid}", byParam((*Sandbox).serveLeaseUpdate)),
		newRoute(http.MethodDelete, "/rest/lease/tn/{uuid}", byParam((*Sandbox).serveRelease))),
	owns("/rest/sms",
		newRoute(http.MethodPost, "/rest/sms", byParam((*Sandbox).serveSendSMS)),
		newRoute(http.MethodPost, "/rest/sms/search", byParam((*Sandbox).serveSMSSearch)),
		newRoute(http.MethodPost, "/rest/sms/search/outbound", byParam((*Sandbox).serveOutboundSearch)),
		newRoute(http.MethodPost, "/rest/sms/search/inbound", byParam((*Sandbox).serveInboundSearch)),
		newRoute(http.MethodGet, "/rest/sms/outbound/{uuid}", byParam((*Sandbox).serveSMSGet)),
		newRoute(http.MethodGet, "/rest/sms/inbound/{uuid}", byParam((*Sandbox).serveInboundGet))),
	owns("/rest/profile/messaging/{}/tnleases",
		newRoute(http.MethodGet, "/rest/profile/messaging/{uuid}/tnleases", byParam(messagingProfiles.serveLeases))),
	owns("/rest/sip/connection/{}/tnlease",
		newRoute(http.MethodGet, "/rest/sip/connection/{uuid}/tnlease", byParam(sipConnections.serveLeases)),
		newRoute(http.MethodPost, "/rest/sip/connection/{uuid}/tnlease", byParam(sipConnections.serveAssign))),
	owns("/rest/sip/domain/{}/user",
		newRoute(http.MethodGet, "/rest/sip/domain/{domain}/user", (*Sandbox).serveSIPUsers),
		newRoute(http.MethodPost, "/rest/sip/domain/{domain}/user", (*Sandbox).serveSIPUserCreate),
		newRoute(http.MethodGet, "/rest/sip/domain/{domain}/user/{uuid}", (*Sandbox).serveSIPUserGet),
		newRoute(http.MethodPatch, "/rest/sip/domain/{domain}/user/{uuid}", (*Sandbox).serveSIPUserUpdate),
		newRoute(http.MethodDelete, "/rest/sip/domain/{domain}/user/{uuid}", (*Sandbox).serveSIPUserDelete)),
	owns("/rest/sip/app/call",
		newRoute(http.MethodGet, "/rest/sip/app/call/online", byParam((*Sandbox).serveOnlineCalls)),
		newRoute(http.MethodPost, "/rest/sip/app/call/search", byParam((*Sandbox).serveCallSearch)),
		newRoute(http.MethodGet, "/rest/sip/app/call/flow/{uuid}", byParam((*Sandbox).serveFlowGet)),
		newRoute(http.MethodPost, "/rest/sip/app/call/flow/{uuid}", byParam((*Sandbox).serveFlowSave)),
		newRoute(http.MethodDelete, "/rest/sip/app/call/flow/{uuid}", byParam((*Sandbox).serveFlowDelete)),
		newRoute(http.MethodGet, "/rest/sip/app/call/{uuid}", byParam((*Sandbox).serveCallGet)),
		newRoute(http.MethodPost, "/rest/sip/app/call/{uuid}", byParam((*Sandbox).serveCallExecute))),
	owns("/rest/sip/app/{}/tnlease",
		newRoute(http.MethodGet, "/rest/sip/app/{uuid}/tnlease", byParam(controlApps.serveLeases)),
		newRoute(http.MethodPost, "/rest/sip/app/{uuid}/tnlease", byParam(controlApps.serveAssign))),
	owns("/rest/sip/app/{}/logs",
		newRoute(http.MethodPost, "/rest/sip/app/{uuid}/logs", byParam((*Sandbox).serveFlowLogs))),
	owns("/rest/event/subscription",
		newRoute(http.MethodGet, "/rest/event/subscription", byParam((*Sandbox).serveEventSubscriptions)),
		newRoute(http.MethodPost, "/rest/event/subscription", byParam((*Sandbox).serveEventSubscribe)),
		newRoute(http.MethodDelete, "/rest/event/subscription/{uuid}", byParam((*Sandbox).serveEventUnsubscribe))),
	// The sandbox's own control calls, which make things happen to the
	// caller's account as if from the outside.
	owns("/sandbox",
		newRoute(http.MethodPost, "/sandbox/inbound-sms", byParam((*Sandbox).serveInboundSMS)),
		newRoute(http.MethodPost, "/sandbox/inbound-call", byParam((*Sandbox).serveInboundCall))),
)

// owns marks the routes as the hand-written ones of collection coll (a
// path, each parameter as {}), which no declared call is served
// generically from beside.
func owns(coll string, rs ...route) []route {
	for i := range rs {
		rs[i].coll = coll
	}
	return rs
}

// match reports whether the path segments end with rt's pattern, and the
// values of its {param} segments in order. segs[0] is the empty string
// before the path's leading slash.
func (rt *route) match(segs []string) ([]string, bool) {
	if len(segs) <= len(rt.segs) {
		return nil, false
	}
	var params []string
	for i, want := range rt.segs {
		got := segs[len(segs)-len(rt.segs)+i]
		switch {
		case strings.HasPrefix(want, "{"):
			if got == "" {
				return nil, false
			}
			params = append(params, got)
		case got != want:
			return nil, false
		}
	}
	return params, true
}

// ServeHTTP answers Opentact's auth and token calls and every declared
// call (under any path prefix) as Opentact does, a WebSocket upgrade of /
// (or /ws) with the events socket, and every other request with its
// error body.
func (s *Sandbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Opentact's events socket is at its root, wss://api.opentact.org.
	if (r.URL.Path == "/" || r.URL.Path == "/ws") && isUpgrade(r) {
		status := s.serveEvents(w, r)
		s.log.Info("events socket", slog.Int("status", status))
		return
	}
	status, name, kinds := s.serve(w, r)
	// The route, never the raw path: DELETE /rest/token/{token} carries a
	// secret in its path.
	s.log.Info("request", slog.String("method", r.Method), slog.String("route", name),
		slog.Int("status", status), slog.String("credentials", kinds))
}

// serve returns the status, the route's name for the log, and the
// credential kinds the request carried.
func (s *Sandbox) serve(w http.ResponseWriter, r *http.Request) (int, string, string) {
	segs := strings.Split(r.URL.EscapedPath(), "/")
	for i, seg := range segs {
		var err error
		if segs[i], err = url.PathUnescape(seg); err != nil {
			return writeError(w, http.StatusNotFound, "Not found"), "", ""
		}
	}
	var (
		allow []string
		name  string // of the first route whose path matches
	)
	for i := range s.routes {
		rt := &s.routes[i]
		params, ok := rt.match(segs)
		if !ok {
			continue
		}
		if rt.method != r.Method {
			if !slices.Contains(allow, rt.method) {
				allow = append(allow, rt.method)
			}
			if name == "" {
				name = rt.pattern
			}
			continue
		}
		u, kinds, ok := s.authenticate(r)
		name = rt.method + " " + rt.pattern
		switch {
		case kinds == "":
			return writeError(w, http.StatusUnauthorized, "Authentication required"), name, kinds
		case !ok:
			return writeError(w, http.StatusUnauthorized, "Invalid credentials"), name, kinds
		}
		return rt.serve(s, w, r, u, params), name, kinds
	}
	if allow == nil {
		return writeError(w, http.StatusNotFound, "Not found"), "", ""
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	return writeError(w, http.StatusMethodNotAllowed, "Method not allowed"), name, ""
}

// serveAuth answers GET /rest/auth: the user's profile with a fresh JWT.
func (s *Sandbox) serveAuth(w http.ResponseWriter, _ *http.Request, u *user, _ string) int {
	token, err := s.issueToken(u.uuid)
	if err != nil {
		return writeError(w, http.StatusInternalServerError, "Internal server error")
	}
	profile := u.profileJSON()
	body := make([]byte, 0, len(profile)+len(token)+48)
	body = append(body, `{"success":true,"payload":`...)
	body = append(body, profile...)
	if len(profile) > 1 {
		body = append(body, ',')
	}
	body = append(body, `"token":`...)
	body = strconv.AppendQuote(body, token)
	body = append(body, "}}"...)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(body)
	return http.StatusOK
}

// authenticate resolves every credential the request carries. It succeeds
// only when there is at least one and all of them name the same user; it
// also returns the kinds present, for the log.
func (s *Sandbox) authenticate(r *http.Request) (*user, string, bool) {
	var (
		found *user
		kinds []string
		ok    = true
	)
	check := func(kind string, u *user) {
		kinds = append(kinds, kind)
		if u == nil || (found != nil && found != u) {
			ok = false
			return
		}
		found = u
	}
	if v := r.Header.Get("Authorization"); v != "" {
		check("authorization", s.fromAuthorization(r, v))
	}
	if v := r.Header.Get("X-Auth-Token"); v != "" {
		check("x-auth-token", s.fromJWT(v))
	}
	for _, c := range []struct {
		header string
		index  map[string]*user
	}{
		{"X-Auth-Google-Token", s.byGoogle},
		{"X-Auth-Facebook-Token", s.byFacebook},
		{"X-Auth-HA1B-Token", s.byHA1B},
	} {
		if v := r.Header.Get(c.header); v != "" {
			check(strings.ToLower(c.header), c.index[v])
		}
	}
	return found, strings.Join(kinds, ","), ok && found != nil
}

func (s *Sandbox) fromAuthorization(r *http.Request, v string) *user {
	if email, password, isBasic := r.BasicAuth(); isBasic {
		u := s.byEmail[strings.ToLower(email)]
		if u == nil || u.password == "" || subtle.ConstantTimeCompare([]byte(u.password), []byte(password)) != 1 {
			return nil
		}
		return u
	}
	token := v
	if scheme, rest, found := strings.Cut(v, " "); found && strings.EqualFold(scheme, "Bearer") {
		token = strings.TrimSpace(rest)
	}
	if u := s.byAPIToken[token]; u != nil {
		return u
	}
	return s.tokens.owner(token, s.now())
}

// tokenClaims are those of Opentact's JWTs: the user's uuid, iat and exp.
type tokenClaims struct {
	UUID string `json:"uuid"`
	jwt.RegisteredClaims
}

func (s *Sandbox) issueToken(uuid string) (string, error) {
	now := s.now()
	return jwt.NewWithClaims(jwt.SigningMethodHS256, tokenClaims{
		UUID: uuid,
		RegisteredClaims: jwt.RegisteredClaims{
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(s.ttl)),
		},
	}).SignedString(s.secret)
}

// fromJWT accepts a token this sandbox signed that has not expired.
func (s *Sandbox) fromJWT(token string) *user {
	var claims tokenClaims
	_, err := jwt.ParseWithClaims(token, &claims,
		func(*jwt.Token) (any, error) { return s.secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(s.now),
	)
	if err != nil {
		return nil
	}
	return s.byUUID[claims.UUID]
}

// writeError writes Opentact's error body.
func writeError(w http.ResponseWriter, status int, message string) int {
	return writeBody(w, status, errorBody{Message: message, Status: status})
}

// writeValidationError writes Opentact's error body with the fields that
// failed, keyed by name.
func writeValidationError(w http.ResponseWriter, fields map[string]fieldError) int {
	return writeBody(w, http.StatusBadRequest, errorBody{Message: "Validation failed", Status: http.StatusBadRequest, Fields: fields})
}

type errorBody struct {
	Success bool                  `json:"success"`
	Message string                `json:"message"`
	Status  int                   `json:"status"`
	Fields  map[string]fieldError `json:"fields,omitempty"`
}

// writeSuccess writes Opentact's success envelope around payload.
func writeSuccess(w http.ResponseWriter, status int, payload any) int {
	return writeBody(w, status, struct {
		Success bool `json:"success"`
		Payload any  `json:"payload"`
	}{true, payload})
}

func writeBody(w http.ResponseWriter, status int, v any) int {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"success":false,"message":"Internal server error","status":500}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return status
}
