package upstream

import (
	"bytes"
	"encoding/json"
	"reflect"
	"unicode"
	"unicode/utf8"
)

// The answer of GET /rest/auth is decoded by hand rather than by
// encoding/json's reflection: with a lenient Unmarshaler on every field,
// encoding/json re-scans and re-allocates for each of them, and decoding
// was the largest single cost of a call inside the facade (BenchmarkDecode
// in decode_test.go measures both). The result is the same as
// encoding/json's, to the detail: the input is first checked with
// json.Valid, keys match a field exactly or else case-insensitively by
// encoding/json's own folding, a repeated key is applied again (so a later
// value the field cannot hold leaves the earlier one), and strings with
// escapes or invalid UTF-8 are unquoted by encoding/json itself.
// FuzzDecodeMatchesEncodingJSON holds the two to that.
//
// The walking functions below assume valid JSON (they are reached only
// after json.Valid); on anything else they still stop, without panicking,
// at the end of the input.

// decodeEnvelope decodes Opentact's {"success", "message", "payload"}
// answer as json.Unmarshal would into envelope.
func decodeEnvelope(body []byte) (envelope, error) {
	var env envelope
	v, err := objectOf(body, reflect.TypeFor[envelope]())
	if v == nil {
		return env, err
	}
	eachMember(v, func(key, val []byte) {
		switch matchKey(key, "success", "message", "payload") {
		case 0:
			_ = env.Success.UnmarshalJSON(val)
		case 1:
			_ = env.Message.UnmarshalJSON(val)
		case 2:
			switch {
			case isNull(val):
				env.Payload = nil
			default:
				if env.Payload == nil {
					env.Payload = new(User) // encoding/json allocates before it looks at the value
				}
				if isObjectValue(val) {
					env.Payload.decodeObject(val)
				} else if err == nil {
					err = typeError(val, reflect.TypeFor[User]())
				}
			}
		}
	})
	return env, err
}

// UnmarshalJSON decodes a JSON object into u as json.Unmarshal would
// without this method; it is here so that decoding a User anywhere takes
// the fast path.
func (u *User) UnmarshalJSON(b []byte) error {
	v, err := objectOf(b, reflect.TypeFor[User]())
	if v != nil {
		u.decodeObject(v)
	}
	return err
}

// validValue checks b as json.Unmarshal does, and returns its value
// without the space around it, or the syntax error encoding/json gives.
func validValue(b []byte) ([]byte, error) {
	if !json.Valid(b) {
		return nil, json.Unmarshal(b, new(struct{})) // the syntax error, with its offset
	}
	return trimSpace(b), nil
}

// objectOf returns the JSON object b holds, to be decoded into a t as
// json.Unmarshal would: nil and no error for null (nothing to decode),
// nil and encoding/json's error for invalid JSON or another kind of
// value.
func objectOf(b []byte, t reflect.Type) ([]byte, error) {
	v, err := validValue(b)
	switch {
	case err != nil:
		return nil, err
	case isNull(v):
		return nil, nil
	case !isObjectValue(v):
		return nil, typeError(v, t)
	}
	return v, nil
}

var userKeys = []string{
	"uuid", "email", "wss_online", "role", "created_on", "modified_on", "deleted_on",
	"token", "phone_number", "dob", "avatar", "first_name", "last_name", "gender",
	"gmail_user_id", "facebook_user_id", "apple_user_id", "wechat_user_id", "account",
}

// decodeObject applies the members of the valid JSON object obj to u.
func (u *User) decodeObject(obj []byte) {
	eachMember(obj, func(key, val []byte) {
		var s *String
		switch matchKey(key, userKeys...) {
		case 0:
			s = &u.UUID
		case 1:
			s = &u.Email
		case 2:
			_ = u.WSSOnline.UnmarshalJSON(val)
		case 3:
			s = &u.Role
		case 4:
			_ = u.CreatedOn.UnmarshalJSON(val)
		case 5:
			_ = u.ModifiedOn.UnmarshalJSON(val)
		case 6:
			_ = u.DeletedOn.UnmarshalJSON(val)
		case 7:
			s = &u.Token
		case 8:
			s = &u.PhoneNumber
		case 9:
			_ = u.DOB.UnmarshalJSON(val)
		case 10:
			s = &u.Avatar
		case 11:
			s = &u.FirstName
		case 12:
			s = &u.LastName
		case 13:
			s = &u.Gender
		case 14:
			s = &u.GmailUserID
		case 15:
			s = &u.FacebookUserID
		case 16:
			s = &u.AppleUserID
		case 17:
			s = &u.WechatUserID
		case 18:
			u.Account.decode(val)
		}
		if s != nil {
			_ = s.UnmarshalJSON(val)
		}
	})
}

var accountKeys = []string{
	"uuid", "email", "name", "level", "balance", "created_on", "modified_on", "deleted_on",
}

// decode replaces a with the valid JSON value v if it is an object, and
// leaves it alone otherwise.
func (a *Account) decode(v []byte) {
	if !isObjectValue(v) {
		return
	}
	p := Account{Valid: true}
	eachMember(v, func(key, val []byte) {
		switch matchKey(key, accountKeys...) {
		case 0:
			_ = p.UUID.UnmarshalJSON(val)
		case 1:
			_ = p.Email.UnmarshalJSON(val)
		case 2:
			_ = p.Name.UnmarshalJSON(val)
		case 3:
			_ = p.Level.UnmarshalJSON(val)
		case 4:
			_ = p.Balance.UnmarshalJSON(val)
		case 5:
			_ = p.CreatedOn.UnmarshalJSON(val)
		case 6:
			_ = p.ModifiedOn.UnmarshalJSON(val)
		case 7:
			_ = p.DeletedOn.UnmarshalJSON(val)
		}
	})
	*a = p
}

// matchKey returns the index of the field name the JSON key (still quoted)
// selects, as encoding/json chooses it: an exact match first, else a
// case-insensitive one; -1 for none. names are lower-case ASCII.
func matchKey(quoted []byte, names ...string) int {
	key, ok := keyBytes(quoted)
	if !ok {
		return -1
	}
	for i, n := range names {
		if string(key) == n {
			return i
		}
	}
	var buf [64]byte
	folded := appendFolded(buf[:0], key)
	for i, n := range names {
		if upperEqual(folded, n) {
			return i
		}
	}
	return -1
}

// keyBytes returns the text of a quoted key, without copying it when it
// has no escapes and is valid UTF-8.
func keyBytes(quoted []byte) ([]byte, bool) {
	if inner, ok := plainText(quoted); ok {
		return inner, true
	}
	s, ok := unquote(quoted)
	return []byte(s), ok
}

// upperEqual reports whether folded equals the lower-case ASCII name n
// with its letters upper-cased.
func upperEqual(folded []byte, n string) bool {
	if len(folded) != len(n) {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if folded[i] != c {
			return false
		}
	}
	return true
}

// appendFolded is encoding/json's key folding (appendFoldedName in its
// fold.go): ASCII letters upper-cased, every other rune replaced by the
// smallest rune of its simple case-folding orbit.
func appendFolded(out, in []byte) []byte {
	for i := 0; i < len(in); {
		if c := in[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(in[i:])
		for {
			r2 := unicode.SimpleFold(r)
			if r2 <= r {
				r = r2
				break
			}
			r = r2
		}
		out = utf8.AppendRune(out, r)
		i += n
	}
	return out
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

// eachMember calls f with every key (quoted, as in the input) and value
// (raw, without surrounding space) of the JSON object obj, in order.
func eachMember(obj []byte, f func(key, val []byte)) {
	i := skipSpace(obj, 1)
	for i < len(obj) && obj[i] == '"' {
		end := skipString(obj, i)
		key := obj[i:end]
		i = skipSpace(obj, end)
		if i >= len(obj) || obj[i] != ':' {
			return
		}
		i = skipSpace(obj, i+1)
		end = skipValue(obj, i)
		f(key, obj[i:end])
		i = skipSpace(obj, end)
		if i >= len(obj) || obj[i] != ',' {
			return
		}
		i = skipSpace(obj, i+1)
	}
}

// skipValue returns the index just past the JSON value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return len(b)
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(b)
	default: // number, true, false, null
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return len(b)
	}
}

// skipString returns the index just past the JSON string starting at b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		q := bytes.IndexByte(b[i:], '"')
		if q < 0 {
			return len(b)
		}
		i += q
		// The quote ends the string unless an odd number of backslashes
		// escapes it.
		n := 0
		for j := i - 1; j >= 0 && b[j] == '\\'; j-- {
			n++
		}
		if n%2 == 0 {
			return i + 1
		}
	}
	return len(b)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func trimSpace(b []byte) []byte { return bytes.Trim(b, " \t\r\n") }

func isNull(v []byte) bool { return string(v) == "null" }

func isObjectValue(v []byte) bool { return len(v) > 0 && v[0] == '{' }

// typeError is the error encoding/json gives for a JSON value of the wrong
// kind for t.
func typeError(v []byte, t reflect.Type) error {
	kind := "number"
	switch {
	case len(v) == 0:
		kind = "value"
	case v[0] == '"':
		kind = "string"
	case v[0] == '[':
		kind = "array"
	case v[0] == '{':
		kind = "object"
	case v[0] == 't' || v[0] == 'f':
		kind = "bool"
	}
	return &json.UnmarshalTypeError{Value: kind, Type: t}
}
