package sandbox

import (
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// ServeHTTP answers GET /rest/auth (under any path prefix) as Opentact
// does, and every other request with Opentact's error body.
func (s *Sandbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	status, kinds := s.serve(w, r)
	s.log.Info("request", slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Int("status", status), slog.String("credentials", kinds))
}

func (s *Sandbox) serve(w http.ResponseWriter, r *http.Request) (int, string) {
	if !strings.HasSuffix(r.URL.Path, "/rest/auth") {
		return writeError(w, http.StatusNotFound, "Not found"), ""
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		return writeError(w, http.StatusMethodNotAllowed, "Method not allowed"), ""
	}
	u, kinds, ok := s.authenticate(r)
	switch {
	case kinds == "":
		return writeError(w, http.StatusUnauthorized, "Authentication required"), kinds
	case !ok:
		return writeError(w, http.StatusUnauthorized, "Invalid credentials"), kinds
	}
	token, err := s.issueToken(u.uuid)
	if err != nil {
		return writeError(w, http.StatusInternalServerError, "Internal server error"), kinds
	}
	body := make([]byte, 0, len(u.profile)+len(token)+48)
	body = append(body, `{"success":true,"payload":`...)
	body = append(body, u.profile...)
	if len(u.profile) > 1 {
		body = append(body, ',')
	}
	body = append(body, `"token":`...)
	body = strconv.AppendQuote(body, token)
	body = append(body, "}}"...)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(body)
	return http.StatusOK, kinds
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
	return s.byAPIToken[token]
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
	body, _ := json.Marshal(struct {
		Success bool   `json:"success"`
		Message string `json:"message"`
		Status  int    `json:"status"`
	}{false, message, status})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
	return status
}
