package upstream

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Opentact's envelope is read with encoding/json's v2 design
// (github.com/go-json-experiment/json), whose decoder hands the payload
// over as one value, already checked, to be decoded once by the caller.
// Names match exactly, as Opentact spells them; as with encoding/json, a
// repeated name is applied again and invalid UTF-8 is no error.
var decodeOptions = jsonv2.JoinOptions(
	jsontext.AllowDuplicateNames(true),
	jsontext.AllowInvalidUTF8(true),
)

func decodeJSON(b []byte, out any) error { return jsonv2.Unmarshal(b, out, decodeOptions) }

// envelope is Opentact's answer: {"success": true, "payload": ...}.
type envelope struct {
	Success flag           `json:"success"` // not *bool: "success":"true" would decode as false
	Message text           `json:"message"`
	Payload jsontext.Value `json:"payload"`
}

// text is an optional text member: a JSON string sets it, and so does a
// JSON number, as its literal digits; anything else leaves it unset.
type text struct {
	Value string
	Valid bool
}

// UnmarshalJSON implements json.Unmarshaler; it never fails.
func (s *text) UnmarshalJSON(b []byte) error {
	if v, ok := unquote(b); ok {
		*s = text{Value: v, Valid: true}
		return nil
	}
	var n json.Number
	if len(b) > 0 && (b[0] == '-' || b[0] >= '0' && b[0] <= '9') && json.Unmarshal(b, &n) == nil {
		*s = text{Value: string(b), Valid: true}
	}
	return nil
}

// flag is an optional boolean member; anything but true or false leaves
// it unset.
type flag struct {
	Value bool
	Valid bool
}

// UnmarshalJSON implements json.Unmarshaler; it never fails.
func (v *flag) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "true":
		*v = flag{Value: true, Valid: true}
	case "false":
		*v = flag{Value: false, Valid: true}
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
	if inner := b[1 : len(b)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner), true
	}
	var s string
	if json.Unmarshal(b, &s) != nil {
		return "", false
	}
	return s, true
}
