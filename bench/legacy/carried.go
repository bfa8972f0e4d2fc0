package legacy

import (
	"bytes"
	"strings"
	"sync"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// DroppedNames are the member names that are never carried, at any depth
// and in any letter case: Opentact's user schema lists a password, and its
// SIP users carry HA1 digests.
var DroppedNames = []string{"password", "ha1", "ha1b"}

func dropped(name string) bool {
	for _, d := range DroppedNames {
		if strings.EqualFold(name, d) {
			return true
		}
	}
	return false
}

// Carried holds the members of an Opentact object that its Go type does not
// model, so that a new field reaches callers without a facade release.
// Embedded in a payload type, it takes every member no other field names.
type Carried struct {
	Other map[string]Raw `json:",embed"`
}

// Raw is a carried value as JSON text: numbers keep every digit sent,
// objects and arrays their nesting. A value under a dropped name is
// skipped, never copied out of the answer, and leaves Raw empty; a dropped
// name deeper in an object is removed from it. Strings are re-encoded, so
// invalid UTF-8 becomes U+FFFD and escapes may change, the text being the
// same.
type Raw string

// UnmarshalJSONFrom implements json.UnmarshalerFrom.
func (r *Raw) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	if dropped(dec.StackPointer().LastToken()) {
		*r = ""
		return dec.SkipValue()
	}
	b := encoders.Get().(*rawEncoder)
	defer encoders.Put(b)
	b.buf.Reset()
	b.enc.Reset(&b.buf, decodeOptions)
	if err := copyValue(dec, &b.enc); err != nil {
		return err
	}
	*r = Raw(bytes.TrimSuffix(b.buf.Bytes(), []byte("\n")))
	return nil
}

type rawEncoder struct {
	buf bytes.Buffer
	enc jsontext.Encoder
}

var encoders = sync.Pool{New: func() any { return new(rawEncoder) }}

// copyValue copies the next value of dec to enc, leaving out any object
// member under a dropped name. Scalars are copied as read, so a number
// keeps its literal digits.
func copyValue(dec *jsontext.Decoder, enc *jsontext.Encoder) error {
	switch dec.PeekKind() {
	case '{', '[':
	default:
		v, err := dec.ReadValue()
		if err != nil {
			return err
		}
		return enc.WriteValue(v)
	}
	depth := dec.StackDepth()
	for {
		switch dec.PeekKind() {
		case '{', '[', '}', ']':
			tok, err := dec.ReadToken()
			if err != nil {
				return err
			}
			if err := enc.WriteToken(tok); err != nil {
				return err
			}
			if dec.StackDepth() == depth {
				return nil
			}
			continue
		}
		v, err := dec.ReadValue()
		if err != nil {
			return err
		}
		if kind, n := dec.StackIndex(dec.StackDepth()); kind == '{' && n%2 == 1 {
			// v is a member name.
			if name, _ := unquote(v); dropped(name) {
				if err := dec.SkipValue(); err != nil {
					return err
				}
				continue
			}
		}
		if err := enc.WriteValue(v); err != nil {
			return err
		}
	}
}

// Object is an optional nested object: a JSON object decodes into Value,
// anything else (null included) leaves it nil.
type Object[T any] struct {
	Value *T
}

// UnmarshalJSONFrom implements json.UnmarshalerFrom.
func (o *Object[T]) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	if dec.PeekKind() != '{' {
		return dec.SkipValue()
	}
	v := new(T)
	if err := json.UnmarshalDecode(dec, v); err != nil {
		return err
	}
	o.Value = v
	return nil
}

// List is an optional array of objects. A JSON array sets it, keeping its
// object elements in order and leaving out any other element; anything
// else leaves it unset.
type List[T any] struct {
	Values []T
	Valid  bool
}

// UnmarshalJSONFrom implements json.UnmarshalerFrom.
func (l *List[T]) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	if dec.PeekKind() != '[' {
		return dec.SkipValue()
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	l.Values, l.Valid = nil, true
	for dec.PeekKind() != ']' {
		if dec.PeekKind() != '{' {
			if err := dec.SkipValue(); err != nil {
				return err
			}
			continue
		}
		var v T
		if err := json.UnmarshalDecode(dec, &v); err != nil {
			return err
		}
		l.Values = append(l.Values, v)
	}
	_, err := dec.ReadToken()
	return err
}
