package legacy

import (
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Opentact's answers are decoded with encoding/json's v2 design
// (github.com/go-json-experiment/json), whose streaming decoder hands each
// lenient field its value once, already checked, instead of scanning it
// again as encoding/json does for every Unmarshaler. Names match exactly,
// as Opentact spells them; as with encoding/json, a repeated name is
// applied again and invalid UTF-8 is no error.
var decodeOptions = json.JoinOptions(
	jsontext.AllowDuplicateNames(true),
	jsontext.AllowInvalidUTF8(true),
)

func decodeJSON(b []byte, out any) error { return json.Unmarshal(b, out, decodeOptions) }

// readValue reads the next value of dec, for a lenient field's decoding.
func readValue(dec *jsontext.Decoder, set func([]byte) error) error {
	v, err := dec.ReadValue()
	if err != nil {
		return err
	}
	return set(v)
}

// UnmarshalJSONFrom implements json.UnmarshalerFrom.
func (s *String) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	return readValue(dec, s.UnmarshalJSON)
}

// UnmarshalJSONFrom implements json.UnmarshalerFrom.
func (v *Bool) UnmarshalJSONFrom(dec *jsontext.Decoder) error { return readValue(dec, v.UnmarshalJSON) }

// UnmarshalJSONFrom implements json.UnmarshalerFrom.
func (t *Time) UnmarshalJSONFrom(dec *jsontext.Decoder) error { return readValue(dec, t.UnmarshalJSON) }

// UnmarshalJSONFrom implements json.UnmarshalerFrom.
func (d *Decimal) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	return readValue(dec, d.UnmarshalJSON)
}

// UnmarshalJSONFrom implements json.UnmarshalerFrom.
func (v *Integer[T]) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	return readValue(dec, v.UnmarshalJSON)
}
