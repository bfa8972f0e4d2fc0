package sandbox

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

const (
	// DefaultAPITokenTTL is the lifetime of a token created without a ttl.
	// Opentact documents none; 24 h is the lifetime of its documented JWTs.
	DefaultAPITokenTTL = 24 * time.Hour
	// MaxAPITokens bounds the tokens one account holds (expired ones are
	// dropped first), so that a client in a loop cannot fill the memory.
	MaxAPITokens = 100
	// MaxBodySize caps a request body; larger ones get 413.
	MaxBodySize = 64 << 10
)

const (
	minTTL      = 60
	maxTTL      = math.MaxInt32 // the sandbox's own cap: Opentact documents none
	maxNameLen  = 255           // runes; likewise the sandbox's own
	secretLen   = 48
	secretChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	timeLayout  = "2006-01-02T15:04:05.000Z" // of a UTC time
)

// apiToken is a token made by POST /rest/token. An expired one counts as
// gone everywhere (auth, list, patch, delete) and is dropped lazily.
type apiToken struct {
	owner    *user
	uuid     string
	name     string
	secret   string
	ttl      int64 // seconds
	created  time.Time
	modified time.Time
}

// expires is created_on + ttl, also after a PATCH of the ttl: that keeps
// the invariant Opentact's documented example shows.
func (t *apiToken) expires() time.Time {
	return t.created.Add(time.Duration(t.ttl) * time.Second)
}

func (t *apiToken) live(now time.Time) bool { return now.Before(t.expires()) }

// tokenJSON is a Token as Opentact sends it, in its documented key order.
type tokenJSON struct {
	Name       string `json:"name"`
	TTL        int64  `json:"ttl"`
	Token      string `json:"token"`
	ExpiredOn  string `json:"expired_on"`
	UUID       string `json:"uuid"`
	CreatedOn  string `json:"created_on"`
	ModifiedOn string `json:"modified_on"`
}

// view is taken under the store's lock, so that encoding races no update.
func (t *apiToken) view() tokenJSON {
	return tokenJSON{
		Name:       t.name,
		TTL:        t.ttl,
		Token:      t.secret,
		ExpiredOn:  t.expires().Format(timeLayout),
		UUID:       t.uuid,
		CreatedOn:  t.created.Format(timeLayout),
		ModifiedOn: t.modified.Format(timeLayout),
	}
}

// tokenStore holds the created tokens of every account. Tokens belong to
// a user, and each sandbox Account is one user.
type tokenStore struct {
	mu       sync.Mutex
	bySecret map[string]*apiToken
	byOwner  map[*user][]*apiToken // in creation order, for the list
}

func newTokenStore() *tokenStore {
	return &tokenStore{bySecret: map[string]*apiToken{}, byOwner: map[*user][]*apiToken{}}
}

var errTooManyTokens = errors.New("too many tokens")

// owner returns the user a live token belongs to, or nil.
func (ts *tokenStore) owner(secret string, now time.Time) *user {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if t := ts.bySecret[secret]; t != nil && t.live(now) {
		return t.owner
	}
	return nil
}

// create makes a token for u; taken reports secrets already in use
// elsewhere (the accounts' static api_tokens).
func (ts *tokenStore) create(u *user, name string, ttl int64, now time.Time, taken func(string) bool) (tokenJSON, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.prune(u, now)
	if len(ts.byOwner[u]) >= MaxAPITokens {
		return tokenJSON{}, errTooManyTokens
	}
	secret := newSecret()
	for ts.bySecret[secret] != nil || taken(secret) {
		secret = newSecret()
	}
	now = now.UTC().Truncate(time.Millisecond)
	t := &apiToken{owner: u, uuid: newUUID(), name: name, secret: secret, ttl: ttl, created: now, modified: now}
	ts.bySecret[secret] = t
	ts.byOwner[u] = append(ts.byOwner[u], t)
	return t.view(), nil
}

func (ts *tokenStore) list(u *user, now time.Time) []tokenJSON {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.prune(u, now)
	out := make([]tokenJSON, 0, len(ts.byOwner[u]))
	for _, t := range ts.byOwner[u] {
		out = append(out, t.view())
	}
	return out
}

// update sets the fields that are not nil on u's token id.
func (ts *tokenStore) update(u *user, id string, name *string, ttl *int64, now time.Time) (tokenJSON, bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.prune(u, now)
	for _, t := range ts.byOwner[u] {
		if t.uuid != id {
			continue
		}
		if name != nil {
			t.name = *name
		}
		if ttl != nil {
			t.ttl = *ttl
		}
		t.modified = now.UTC().Truncate(time.Millisecond)
		return t.view(), true
	}
	return tokenJSON{}, false
}

// revoke deletes u's token by its secret; another user's is not found.
func (ts *tokenStore) revoke(u *user, secret string, now time.Time) (tokenJSON, bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.prune(u, now)
	t := ts.bySecret[secret]
	if t == nil || t.owner != u {
		return tokenJSON{}, false
	}
	ts.drop(u, func(o *apiToken) bool { return o == t })
	return t.view(), true
}

func (ts *tokenStore) revokeAll(u *user) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.drop(u, func(*apiToken) bool { return true })
}

// prune drops u's expired tokens; create prunes before it counts.
func (ts *tokenStore) prune(u *user, now time.Time) {
	ts.drop(u, func(t *apiToken) bool { return !t.live(now) })
}

func (ts *tokenStore) drop(u *user, gone func(*apiToken) bool) {
	kept := ts.byOwner[u][:0]
	for _, t := range ts.byOwner[u] {
		if gone(t) {
			delete(ts.bySecret, t.secret)
		} else {
			kept = append(kept, t)
		}
	}
	clear(ts.byOwner[u][len(kept):]) // no stale pointers past the end
	ts.byOwner[u] = kept
}

// newSecret is 48 alphanumeric characters like Opentact's example, drawn
// without modulo bias.
func newSecret() string {
	out := make([]byte, 0, secretLen)
	buf := make([]byte, 64)
	for len(out) < secretLen {
		_, _ = rand.Read(buf)
		for _, b := range buf {
			if int(b) < 256/len(secretChars)*len(secretChars) && len(out) < secretLen {
				out = append(out, secretChars[int(b)%len(secretChars)])
			}
		}
	}
	return string(out)
}

// newUUID is a random (version 4) UUID in lower case.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// fieldError is one entry of the "fields" of Opentact's validation error.
type fieldError struct {
	Message string          `json:"message"`
	Value   json.RawMessage `json:"value,omitempty"`
}

// tokenFields are the body fields of POST and PATCH; nil is absent, and
// so is an explicit null.
type tokenFields struct {
	name *string
	ttl  *int64
}

// readTokenFields reads and checks a JSON object body. On failure it has
// written the error and returns its status.
func readTokenFields(w http.ResponseWriter, r *http.Request, needName bool) (tokenFields, int) {
	obj, status := readObject(w, r, false)
	if status != 0 {
		return tokenFields{}, status
	}
	var (
		f    tokenFields
		errs = map[string]fieldError{}
	)
	if raw := obj["name"]; present(raw) {
		var name string
		switch {
		case json.Unmarshal(raw, &name) != nil:
			errs["name"] = fieldError{"must be a string", raw}
		case strings.TrimSpace(name) == "":
			errs["name"] = fieldError{"must not be empty", raw}
		case utf8.RuneCountInString(name) > maxNameLen:
			errs["name"] = fieldError{fmt.Sprintf("must be at most %d characters", maxNameLen), raw}
		default:
			f.name = &name
		}
	}
	if raw := obj["ttl"]; present(raw) {
		var ttl float64 // JSON has no integers; 6e1 is one
		switch {
		case json.Unmarshal(raw, &ttl) != nil || ttl != math.Trunc(ttl):
			errs["ttl"] = fieldError{"must be an integer", raw}
		case ttl < minTTL:
			errs["ttl"] = fieldError{fmt.Sprintf("must be at least %d", minTTL), raw}
		case ttl > maxTTL:
			errs["ttl"] = fieldError{fmt.Sprintf("must be at most %d", maxTTL), raw}
		default:
			n := int64(ttl)
			f.ttl = &n
		}
	}
	if _, bad := errs["name"]; needName && f.name == nil && !bad {
		errs["name"] = fieldError{Message: "is required"}
	}
	if len(errs) > 0 {
		return tokenFields{}, writeValidationError(w, errs)
	}
	return f, 0
}

// readObject reads a JSON object body; an empty one is {} when
// emptyIsObject. On failure it has written the error and returns its
// status.
func readObject(w http.ResponseWriter, r *http.Request, emptyIsObject bool) (map[string]json.RawMessage, int) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodySize))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, writeError(w, http.StatusRequestEntityTooLarge, "Request body too large")
	case err != nil:
		return nil, writeError(w, http.StatusBadRequest, "Could not read the request body")
	case emptyIsObject && len(bytes.TrimSpace(b)) == 0:
		return map[string]json.RawMessage{}, 0
	case !json.Valid(b):
		return nil, writeError(w, http.StatusBadRequest, "Malformed JSON body")
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(b, &obj) != nil || obj == nil {
		return nil, writeError(w, http.StatusBadRequest, "The body must be a JSON object")
	}
	return obj, 0
}

func present(raw json.RawMessage) bool { return raw != nil && string(raw) != "null" }

func (s *Sandbox) serveCreate(w http.ResponseWriter, r *http.Request, u *user, _ string) int {
	f, status := readTokenFields(w, r, true)
	if status != 0 {
		return status
	}
	ttl := int64(DefaultAPITokenTTL / time.Second)
	if f.ttl != nil {
		ttl = *f.ttl
	}
	t, err := s.tokens.create(u, *f.name, ttl, s.now(), func(secret string) bool { return s.byAPIToken[secret] != nil })
	if err != nil {
		return writeError(w, http.StatusBadRequest, fmt.Sprintf("Too many tokens: an account holds at most %d; delete some first", MaxAPITokens))
	}
	// 201 as a NestJS @Post answers by default; the docs show 200 and 201.
	return writeSuccess(w, http.StatusCreated, t)
}

// serveList leaves expired tokens out: they no longer exist for any call.
func (s *Sandbox) serveList(w http.ResponseWriter, _ *http.Request, u *user, _ string) int {
	return writeSuccess(w, http.StatusOK, s.tokens.list(u, s.now()))
}

func (s *Sandbox) serveUpdate(w http.ResponseWriter, r *http.Request, u *user, id string) int {
	f, status := readTokenFields(w, r, false)
	if status != 0 {
		return status
	}
	t, ok := s.tokens.update(u, id, f.name, f.ttl, s.now())
	if !ok {
		return writeError(w, http.StatusNotFound, "Not found")
	}
	return writeSuccess(w, http.StatusOK, t)
}

// serveDelete revokes only created tokens: the api_tokens of the accounts
// file are not Opentact's to forget, so they are not found.
func (s *Sandbox) serveDelete(w http.ResponseWriter, _ *http.Request, u *user, secret string) int {
	t, ok := s.tokens.revoke(u, secret, s.now())
	if !ok {
		return writeError(w, http.StatusNotFound, "Token not found")
	}
	return writeSuccess(w, http.StatusOK, t)
}

// serveDeleteAll revokes the caller's created tokens; the static
// api_tokens of the accounts file keep working.
func (s *Sandbox) serveDeleteAll(w http.ResponseWriter, _ *http.Request, u *user, _ string) int {
	s.tokens.revokeAll(u)
	return writeSuccess(w, http.StatusOK, struct{}{})
}
