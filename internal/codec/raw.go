package codec

import (
	"bytes"

	"github.com/go-json-experiment/json/jsontext"
)

// rawEncoder writes other_fields' values.
type rawEncoder struct {
	buf bytes.Buffer
	enc jsontext.Encoder
}

// rawText reads the next value as other_fields keeps it: as JSON text,
// numbers digit for digit, nesting as sent, strings re-encoded (invalid
// UTF-8 becomes U+FFFD), members under a dropped name left out at any
// depth. The text is valid until the next rawText.
func (d *decoder) rawText() ([]byte, error) {
	d.raw.buf.Reset()
	d.raw.enc.Reset(&d.raw.buf, decodeOptions...)
	if err := d.copyValue(); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(d.raw.buf.Bytes(), []byte("\n")), nil
}

// copyValue copies the next value to d.raw.enc, leaving out any object
// member under a dropped name. Scalars are copied as read, so a number
// keeps its literal digits.
func (d *decoder) copyValue() error {
	dec, enc := &d.dec, &d.raw.enc
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
		if kind, n := dec.StackIndex(dec.StackDepth()); kind == '{' && n%2 == 1 && dropped(d.unquote(v)) {
			// v is a dropped member name.
			if err := dec.SkipValue(); err != nil {
				return err
			}
			continue
		}
		if err := enc.WriteValue(v); err != nil {
			return err
		}
	}
}
