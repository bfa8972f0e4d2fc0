package faultupstream

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
)

// credentialHeaders are Opentact's credential headers, in the order an
// identity is taken from them.
var credentialHeaders = [...]string{
	"Authorization",
	"X-Auth-Token",
	"X-Auth-Google-Token",
	"X-Auth-Facebook-Token",
	"X-Auth-HA1B-Token",
}

// identity is who a request's credentials say it is.
type identity struct {
	email string
	sum   [sha256.Size]byte
}

// identify derives the identity of request-style headers h (names in any
// case). An Authorization: Basic with a non-empty user names that e-mail,
// and sum is sha256 of it. Otherwise the first credential header present,
// in credentialHeaders' order, gives v (the whole header value, also for a
// non-Basic Authorization): sum is sha256(v) and the e-mail is
// <hex of sum[:8]>@token.test. It reports false when h has no credential.
func identify(h http.Header) (identity, bool) {
	if email, ok := basicUser(header(h, "Authorization")); ok {
		return identity{email: email, sum: sha256.Sum256([]byte(email))}, true
	}
	for _, name := range credentialHeaders {
		if v := header(h, name); v != "" {
			sum := sha256.Sum256([]byte(v))
			return identity{email: hex.EncodeToString(sum[:8]) + "@token.test", sum: sum}, true
		}
	}
	return identity{sum: sha256.Sum256(nil)}, false
}

// header returns h's first non-empty value of name, matching the name in
// any case: servers canonicalise X-Auth-HA1B-Token to X-Auth-Ha1b-Token,
// while callers may build h with Opentact's spelling or gRPC's lower case.
func header(h http.Header, name string) string {
	if v := h.Get(name); v != "" {
		return v
	}
	for k, vs := range h {
		if strings.EqualFold(k, name) {
			for _, v := range vs {
				if v != "" {
					return v
				}
			}
		}
	}
	return ""
}

// basicUser returns the user of an Authorization: Basic value, if it is
// one with a non-empty user.
func basicUser(v string) (string, bool) {
	scheme, token, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(token))
	if err != nil {
		return "", false
	}
	user, _, ok := strings.Cut(string(raw), ":")
	return user, ok && user != ""
}

// EmailFor is the e-mail of the payload the server answers to a request
// with headers h: for Authorization: Basic base64(email:password), that
// email; otherwise, for the first of Authorization (non-Basic, whole value),
// X-Auth-Token, X-Auth-Google-Token, X-Auth-Facebook-Token and
// X-Auth-HA1B-Token present with value v, <hex of sha256(v)[:8]>@token.test.
// Header names match in any case. It returns "" when h has no credential
// (the server then answers 401).
func EmailFor(h http.Header) string {
	id, _ := identify(h)
	return id.email
}

// UUIDFor is the user uuid of the payload answered to headers h, derived
// from the same hash as EmailFor's ("" without credentials).
func UUIDFor(h http.Header) string {
	id, ok := identify(h)
	if !ok {
		return ""
	}
	return formatUUID(id.sum[:16])
}

// TokenFor is the token (the JWT) of the payload answered to headers h:
// "jwt.<hex of the hash>" ("" without credentials).
func TokenFor(h http.Header) string {
	id, ok := identify(h)
	if !ok {
		return ""
	}
	return id.token()
}

func (id identity) token() string { return "jwt." + hex.EncodeToString(id.sum[:]) }

// formatUUID formats 16 bytes as a version 4 UUID.
func formatUUID(b []byte) string {
	var u [16]byte
	copy(u[:], b)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	x := hex.EncodeToString(u[:])
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// payload is the 2024 documented shape of GET /rest/auth's payload.
type payload struct {
	UUID        string  `json:"uuid"`
	Email       string  `json:"email"`
	WSSOnline   bool    `json:"wss_online"`
	Role        string  `json:"role"`
	CreatedOn   string  `json:"created_on"`
	ModifiedOn  string  `json:"modified_on"`
	DeletedOn   *string `json:"deleted_on"`
	Token       string  `json:"token"`
	PhoneNumber string  `json:"phone_number"`
	DOB         string  `json:"dob"`
	Avatar      string  `json:"avatar"`
	FirstName   string  `json:"first_name"`
	LastName    string  `json:"last_name"`
	Gender      string  `json:"gender"`
	Account     account `json:"account"`
}

type account struct {
	CreatedOn  string      `json:"created_on"`
	ModifiedOn string      `json:"modified_on"`
	UUID       string      `json:"uuid"`
	Email      string      `json:"email"`
	Name       string      `json:"name"`
	Level      string      `json:"level"`
	DeletedOn  *string     `json:"deleted_on"`
	Balance    json.Number `json:"balance"`
}

const fixedTime = "2024-01-16T14:15:48.540Z"

// okBody is the whole 200 answer for id.
func okBody(id identity) []byte {
	body, err := json.Marshal(struct {
		Success bool    `json:"success"`
		Payload payload `json:"payload"`
	}{true, payload{
		UUID:        formatUUID(id.sum[:16]),
		Email:       id.email,
		WSSOnline:   true,
		Role:        "User",
		CreatedOn:   fixedTime,
		ModifiedOn:  fixedTime,
		Token:       id.token(),
		PhoneNumber: "+1234567890",
		DOB:         fixedTime,
		Avatar:      "https://google/image.png",
		FirstName:   "First Name",
		LastName:    "Last Name",
		Gender:      "Female",
		Account: account{
			CreatedOn:  fixedTime,
			ModifiedOn: fixedTime,
			UUID:       formatUUID(id.sum[16:]),
			Email:      "account-" + hex.EncodeToString(id.sum[8:12]) + "@token.test",
			Name:       "DENOVOLAB",
			Level:      "Level0",
			Balance:    "99.87895",
		},
	}})
	if err != nil {
		panic("faultupstream: " + err.Error()) // cannot happen: plain strings and a valid number
	}
	return body
}
