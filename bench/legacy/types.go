// Package legacy is the facade's decoding of Opentact's answers and their
// mapping to proto messages as they were before internal/codec: typed,
// lenient Go structs per payload, decoded with
// github.com/go-json-experiment/json, then copied into the messages. It
// is kept, unchanged in behaviour, as the reference that internal/codec's
// differential fuzz test and BenchmarkMapping compare with; no binary
// imports it.
package legacy

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"
)

// User is the payload of GET /rest/auth: the caller's profile, its account
// and a JWT. Opentact has answered with two documented shapes (2020: social
// login ids, no account; 2024: account and wss_online) and sends more than
// either shows, so every field is optional and lenient: a JSON null, a
// missing field, or a value of a type the field cannot hold leaves it
// unset, and members no field models are carried in Other. Nothing in the
// payload but broken JSON or a non-object fails the decoding.
type User struct {
	Carried
	UUID           String          `json:"uuid"`
	Email          String          `json:"email"`
	WSSOnline      Bool            `json:"wss_online"`
	Role           String          `json:"role"`
	CreatedOn      Time            `json:"created_on"`
	ModifiedOn     Time            `json:"modified_on"`
	DeletedOn      Time            `json:"deleted_on"`
	Token          String          `json:"token"`
	PhoneNumber    String          `json:"phone_number"`
	DOB            Time            `json:"dob"`
	Avatar         String          `json:"avatar"`
	FirstName      String          `json:"first_name"`
	LastName       String          `json:"last_name"`
	Gender         String          `json:"gender"`
	GmailUserID    String          `json:"gmail_user_id"`
	FacebookUserID String          `json:"facebook_user_id"`
	AppleUserID    String          `json:"apple_user_id"`
	WechatUserID   String          `json:"wechat_user_id"`
	Account        Object[Account] `json:"account"`
}

// Account is the account (tenant) of a User, as lenient as User.
type Account struct {
	Carried
	UUID       String       `json:"uuid"`
	Email      String       `json:"email"`
	Name       String       `json:"name"`
	Level      String       `json:"level"`
	Balance    Decimal      `json:"balance"`
	CreatedOn  Time         `json:"created_on"`
	ModifiedOn Time         `json:"modified_on"`
	DeletedOn  Time         `json:"deleted_on"`
	Phone      String       `json:"phone"`
	Address1   String       `json:"address1"`
	Address2   String       `json:"address2"`
	ZipCode    String       `json:"zip_code"`
	City       String       `json:"city"`
	Class4ID   Int64        `json:"class4_id"`
	DisabledOn Time         `json:"disabled_on"`
	WSSOnline  Bool         `json:"wss_online"`
	Admin      Object[User] `json:"admin"`
	Users      List[User]   `json:"users"`
}

// String is an optional text field. A JSON number is kept as its literal
// digits (Opentact has sent a phone number as a number); booleans, objects
// and arrays leave it unset.
type String struct {
	Value string
	Valid bool
}

// UnmarshalJSON implements json.Unmarshaler; it never fails.
func (s *String) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) > 0 && b[0] == '"':
		if v, ok := unquote(b); ok {
			*s = String{Value: v, Valid: true}
		}
	case isNumber(b):
		*s = String{Value: string(b), Valid: true}
	}
	return nil
}

// Bool is an optional boolean field; anything but true or false leaves it
// unset.
type Bool struct {
	Value bool
	Valid bool
}

// UnmarshalJSON implements json.Unmarshaler; it never fails.
func (v *Bool) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "true":
		*v = Bool{Value: true, Valid: true}
	case "false":
		*v = Bool{Value: false, Valid: true}
	}
	return nil
}

// Time is an optional timestamp, sent by Opentact as RFC 3339 text with or
// without milliseconds ("2024-01-16T14:15:48.540Z", "2024-01-16T14:15:15Z").
// A bare date ("1990-05-01") is read as midnight UTC. Any other text or
// type leaves it unset: never a zero date.
type Time struct {
	Value time.Time
	Valid bool
}

// UnmarshalJSON implements json.Unmarshaler; it never fails.
func (t *Time) UnmarshalJSON(b []byte) error {
	s, ok := unquote(b)
	if !ok {
		return nil
	}
	for _, layout := range []string{time.RFC3339Nano, time.DateOnly} {
		if v, err := time.Parse(layout, s); err == nil {
			*t = Time{Value: v, Valid: true}
			return nil
		}
	}
	return nil
}

// Decimal is an optional decimal number kept as text, digit for digit as
// Opentact sent it: money must not pass through a float64. A JSON number
// is taken as is; a JSON string holding a number is accepted too.
type Decimal struct {
	Value string
	Valid bool
}

// UnmarshalJSON implements json.Unmarshaler; it never fails.
func (d *Decimal) UnmarshalJSON(b []byte) error {
	switch {
	case isNumber(b):
		*d = Decimal{Value: string(b), Valid: true}
	case len(b) > 0 && b[0] == '"':
		if s, ok := unquote(b); ok && isNumber([]byte(s)) {
			*d = Decimal{Value: s, Valid: true}
		}
	}
	return nil
}

// isNumber reports whether b is exactly one JSON number (RFC 8259, section 6).
func isNumber(b []byte) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = skipDigits(b, i)
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return false
		}
		i = j
	}
	return i == len(b)
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// Token is an Opentact API token, the payload of the token calls. Every
// field is optional and lenient, as User's are.
type Token struct {
	Carried
	UUID       String       `json:"uuid"`
	Name       String       `json:"name"`
	Token      String       `json:"token"`
	TTL        Int32        `json:"ttl"`
	ExpiredOn  Time         `json:"expired_on"`
	CreatedOn  Time         `json:"created_on"`
	ModifiedOn Time         `json:"modified_on"`
	User       Object[User] `json:"user"`
}

// Empty is the payload of a call whose answer carries nothing
// ({"payload": {}}, or no payload at all); anything it does carry is in
// Other.
type Empty struct {
	Carried
}

// Int32 and Int64 are optional integer fields.
type (
	Int32 = Integer[int32]
	Int64 = Integer[int64]
)

// Integer is an optional integer field. A JSON integer within T, or a
// JSON string holding one, is taken; anything else (a fraction, a number
// out of range, another type) leaves it unset.
type Integer[T int32 | int64] struct {
	Value T
	Valid bool
}

// UnmarshalJSON implements json.Unmarshaler; it never fails.
func (v *Integer[T]) UnmarshalJSON(b []byte) error {
	if s, ok := unquote(b); ok {
		b = []byte(s)
	}
	if !isNumber(b) || bytes.ContainsAny(b, ".eE") {
		return nil // not a JSON integer: strconv alone would take "+5" and "007"
	}
	if n, err := strconv.ParseInt(string(b), 10, int(unsafe.Sizeof(v.Value))*8); err == nil {
		*v = Integer[T]{Value: T(n), Valid: true}
	}
	return nil
}

// unquote returns the text of a JSON string as encoding/json unquotes it.
// A string without escapes, in valid UTF-8, is its own text; anything else
// goes through encoding/json.
func unquote(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", false
	}
	if inner, ok := plainText(b); ok {
		return string(inner), true
	}
	var s string
	if json.Unmarshal(b, &s) != nil {
		return "", false
	}
	return s, true
}

// plainText returns the text inside the JSON string b when it needs no
// unquoting: no escapes, valid UTF-8.
func plainText(b []byte) ([]byte, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return nil, false
	}
	inner := b[1 : len(b)-1]
	return inner, bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner)
}
