package codec

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Names match exactly, as Opentact spells them; a repeated name is applied
// again and invalid UTF-8 is no error, as encoding/json has it.
var decodeOptions = []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}

// Decode reads Opentact's JSON object b into m, replacing what m held,
// leniently: only b that is not one JSON object (broken JSON, another
// type, trailing data) is an error.
func Decode(b []byte, m protoreflect.Message) error {
	p := planOf(m.Descriptor())
	if p.err != nil {
		return p.err
	}
	d := getDecoder(b)
	defer putDecoder(d)
	if k := d.dec.PeekKind(); k != '{' {
		return d.notA(k, "an object")
	}
	var err error
	if d.wire, err = d.object(p, d.wire[:0]); err != nil {
		return err
	}
	if err := d.end(); err != nil {
		return err
	}
	proto.Reset(m.Interface())
	return d.unmarshal(m)
}

// DecodeField reads the JSON value b into field fd of m, replacing what
// fd held: a message or map field takes an object and a repeated field an
// array, and any other JSON type is an error; a scalar field takes b
// leniently, as in an object.
//
// A repeated message field is read as Opentact's lists have been: a null
// element is an empty message, and an element of another type fails the
// whole value.
func DecodeField(b []byte, m protoreflect.Message, fd protoreflect.FieldDescriptor) error {
	p := planOf(m.Descriptor())
	if p.err != nil {
		return p.err
	}
	f := p.fieldOf(fd)
	if f == nil {
		return fmt.Errorf("codec: %s has no field %s", m.Descriptor().FullName(), fd.FullName())
	}
	d := getDecoder(b)
	defer putDecoder(d)
	var err error
	out := d.wire[:0]
	switch k := d.dec.PeekKind(); {
	case f.list && k != '[':
		err = d.notA(k, "an array")
	case f.list && f.kind == kMessage:
		out, err = d.strictList(f, out)
	case (f.isMap || f.kind == kMessage) && k != '{':
		err = d.notA(k, "an object")
	default:
		out, _, err = d.member(f, out)
	}
	d.wire = out
	if err != nil {
		return err
	}
	if err := d.end(); err != nil {
		return err
	}
	m.Clear(fd)
	return d.unmarshal(m)
}

// fieldOf is fd's entry in p, also for a field whose key is dropped.
func (p *plan) fieldOf(fd protoreflect.FieldDescriptor) *field {
	for _, f := range p.fields {
		if f.fd == fd || f.fd.Number() == fd.Number() && f.fd.FullName() == fd.FullName() {
			return f
		}
	}
	return nil
}

// decoder is a pooled jsontext.Decoder reading straight from the input,
// with scratch space for unquoting and for other_fields' text.
//
// What it reads it writes as protobuf's wire encoding, into wire, which
// proto.Unmarshal then sets into the message: protobuf's fast path, for
// generated and dynamic messages alike, costs far less than setting each
// field through protoreflect.
type decoder struct {
	in      bytes.Buffer
	dec     jsontext.Decoder
	scratch []byte
	raw     rawEncoder
	wire    []byte
}

var decoders = sync.Pool{New: func() any { return new(decoder) }}

func getDecoder(b []byte) *decoder {
	d := decoders.Get().(*decoder)
	d.in = *bytes.NewBuffer(b) // the decoder reads a bytes.Buffer in place
	d.dec.Reset(&d.in, decodeOptions...)
	return d
}

func putDecoder(d *decoder) {
	d.in = bytes.Buffer{} // do not pin the input
	d.dec.Reset(&d.in)
	if cap(d.scratch) > 64<<10 {
		d.scratch = nil
	}
	if cap(d.wire) > 64<<10 {
		d.wire = nil
	}
	if d.raw.buf.Cap() > 64<<10 {
		d.raw.buf = bytes.Buffer{}
	}
	decoders.Put(d)
}

// notA is the error for a value of kind k where want was needed, or the
// syntax error that made PeekKind give up.
func (d *decoder) notA(k jsontext.Kind, want string) error {
	if k == 0 {
		if _, err := d.dec.ReadValue(); err != nil {
			return err
		}
	}
	return fmt.Errorf("codec: the JSON value is %s, not %s", kindName(k), want)
}

func kindName(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 't', 'f':
		return "a boolean"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "not JSON"
}

// end checks that the value read was all of the input.
func (d *decoder) end() error {
	if _, err := d.dec.ReadToken(); err != io.EOF {
		if err == nil {
			err = errors.New("codec: data after the JSON value")
		}
		return err
	}
	return nil
}

// unmarshal sets what was read into m.
func (d *decoder) unmarshal(m protoreflect.Message) error {
	// Partial and deep messages are what the answer held: as lenient as
	// the rest, and as deep as the JSON decoder allows.
	opts := proto.UnmarshalOptions{Merge: true, AllowPartial: true, RecursionLimit: math.MaxInt32}
	if err := opts.Unmarshal(d.wire, m.Interface()); err != nil {
		return fmt.Errorf("codec: %s: %w", m.Descriptor().FullName(), err)
	}
	return nil
}

// span is where, in the wire encoding of an object, a message, list or
// map member was written: the whole of it is replaced by a later member
// of the same name, where protobuf would merge the two.
type span struct {
	f          *field
	start, end int
}

// object reads a JSON object, which the decoder is at, as a message of
// plan p, appending its wire encoding to out.
func (d *decoder) object(p *plan, out []byte) ([]byte, error) {
	if _, err := d.dec.ReadToken(); err != nil {
		return out, err
	}
	spans := make([]span, 0, 4)
	for {
		if d.dec.PeekKind() == '}' {
			_, err := d.dec.ReadToken()
			return out, err
		}
		quoted, err := d.dec.ReadValue()
		if err != nil {
			return out, err
		}
		name := d.unquote(quoted)
		if f := p.byKey[string(name)]; f != nil {
			start := len(out)
			var ok bool
			if out, ok, err = d.member(f, out); err != nil {
				return out, err
			}
			if ok && (f.list || f.isMap || f.kind == kMessage) {
				out, spans = replace(out, spans, span{f, start, len(out)})
			}
			continue
		}
		if p.other == nil || dropped(name) {
			if err := d.dec.SkipValue(); err != nil {
				return out, err
			}
			continue
		}
		// An other_fields entry: the name, then the value as JSON text.
		out = protowire.AppendTag(out, OtherFieldsNumber, protowire.BytesType)
		at := len(out)
		out = protowire.AppendTag(out, 1, protowire.BytesType)
		out = protowire.AppendBytes(out, name)
		text, err := d.rawText()
		if err != nil {
			return out, err
		}
		out = protowire.AppendTag(out, 2, protowire.BytesType)
		out = protowire.AppendBytes(out, text)
		out = insertLen(out, at)
	}
}

// replace records s, first cutting out the earlier member of s's field,
// if any.
func replace(out []byte, spans []span, s span) ([]byte, []span) {
	for i, e := range spans {
		if e.f != s.f {
			continue
		}
		n := e.end - e.start
		out = append(out[:e.start], out[e.end:]...)
		for j := range spans {
			if spans[j].start >= e.end {
				spans[j].start -= n
				spans[j].end -= n
			}
		}
		s.start, s.end = s.start-n, s.end-n
		spans[i] = s
		return out, spans
	}
	return out, append(spans, s)
}

// insertLen puts the length of out[at:] before it, as a length-delimited
// value on the wire.
func insertLen(out []byte, at int) []byte {
	n := len(out) - at
	size := protowire.SizeVarint(uint64(n))
	out = append(out, make([]byte, size)...)
	copy(out[at+size:], out[at:at+n])
	protowire.AppendVarint(out[:at], uint64(n))
	return out
}

// member reads the next value as field f, appending its wire encoding to
// out; ok is false, and nothing is appended, when f cannot hold the
// value, which leaves whatever f had.
func (d *decoder) member(f *field, out []byte) (_ []byte, ok bool, err error) {
	switch {
	case f.list:
		if d.dec.PeekKind() != '[' {
			return out, false, d.dec.SkipValue()
		}
		out, err = d.list(f, out)
		return out, true, err
	case f.isMap:
		if d.dec.PeekKind() != '{' {
			return out, false, d.dec.SkipValue()
		}
		out, err = d.mapValue(f, out)
		return out, true, err
	}
	return d.value(f, f.tag, out)
}

// value reads the next value as one of kind f.kind (a field's, a list
// element's or a map value's), appending it to out after tag.
func (d *decoder) value(f *field, tag, out []byte) (_ []byte, ok bool, err error) {
	k := d.dec.PeekKind()
	switch {
	case f.kind == kMessage && k == '{':
		return d.nested(f, tag, out)
	case f.kind == kMessage && f.reference && f.msg.ref(k) != nil:
		return d.reference(f, k, tag, out)
	case f.kind == kTimestamp && k == '"':
		raw, err := d.dec.ReadValue()
		if err != nil {
			return out, false, err
		}
		t, ok := parseTime(d.unquote(raw))
		if !ok {
			return out, false, nil
		}
		// Both fields, zero or not, so that a later timestamp replaces an
		// earlier one whole.
		out = append(out, tag...)
		at := len(out)
		out = protowire.AppendTag(out, 1, protowire.VarintType)
		out = protowire.AppendVarint(out, uint64(t.Unix()))
		out = protowire.AppendTag(out, 2, protowire.VarintType)
		out = protowire.AppendVarint(out, uint64(t.Nanosecond()))
		return insertLen(out, at), true, nil
	case f.kind != kMessage && f.kind != kTimestamp && (k == '"' || k == '0' || k == 't' || k == 'f'):
		raw, err := d.dec.ReadValue()
		if err != nil {
			return out, false, err
		}
		out, ok := d.scalar(f, tag, raw, out)
		return out, ok, nil
	}
	return out, false, d.dec.SkipValue()
}

// nested reads a JSON object, which the decoder is at, as a message of
// f's, appending it to out after tag.
func (d *decoder) nested(f *field, tag, out []byte) ([]byte, bool, error) {
	out = append(out, tag...)
	at := len(out)
	out, err := d.object(f.msg, out)
	if f.pkind == protoreflect.GroupKind {
		return protowire.AppendTag(out, f.fd.Number(), protowire.EndGroupType), true, err
	}
	return insertLen(out, at), true, err
}

// reference reads a JSON string or number, which the decoder is at, as a
// message of f's holding only that id, for a field declared
// (opentact.api.v1.field).reference: Opentact answers those objects either
// whole or by their id alone (a lease assignment's answer is a list of
// lease uuids in its docs, of leases in its schema; a product is its
// number). A value the id field cannot hold leaves f unset.
func (d *decoder) reference(f *field, k jsontext.Kind, tag, out []byte) ([]byte, bool, error) {
	raw, err := d.dec.ReadValue()
	if err != nil {
		return out, false, err
	}
	ref := f.msg.ref(k)
	start := len(out)
	out = append(out, tag...)
	at := len(out)
	out, ok := d.scalar(ref, ref.tag, raw, out)
	if !ok {
		return out[:start], false, nil
	}
	return insertLen(out, at), true, nil
}

// ref is the field by which Opentact refers to an object of p's with a
// JSON value of kind k, or nil: its "uuid" (a single string) for a
// string, its "id" (a single integer) for a number.
func (p *plan) ref(k jsontext.Kind) *field {
	switch k {
	case '"':
		if f := p.byKey["uuid"]; f != nil && f.kind == kString && !f.list && !f.isMap {
			return f
		}
	case '0':
		if f := p.byKey["id"]; f != nil && !f.list && !f.isMap && (f.kind == kInt32 || f.kind == kInt64 || f.kind == kUint32 || f.kind == kUint64) {
			return f
		}
	}
	return nil
}

// emptyMessage appends an empty message as a value of f's.
func emptyMessage(f *field, out []byte) []byte {
	out = append(out, f.tag...)
	if f.pkind == protoreflect.GroupKind {
		return protowire.AppendTag(out, f.fd.Number(), protowire.EndGroupType)
	}
	return protowire.AppendVarint(out, 0)
}

// scalar reads the JSON string, number or boolean raw as a value of kind
// f.kind, appending it to out after tag.
func (d *decoder) scalar(f *field, tag, raw, out []byte) ([]byte, bool) {
	switch raw[0] {
	case 't', 'f':
		if f.kind != kBool {
			return out, false
		}
		var v uint64
		if raw[0] == 't' {
			v = 1
		}
		return protowire.AppendVarint(append(out, tag...), v), true
	case '"':
		text := d.unquote(raw)
		switch f.kind {
		case kString:
			return protowire.AppendBytes(append(out, tag...), text), true
		case kDecimal:
			if !isNumber(text) {
				return out, false
			}
			return protowire.AppendBytes(append(out, tag...), text), true
		case kEnum:
			n, ok := f.enum.byName[string(text)]
			return appendVarint(out, tag, ok, uint64(n)), ok
		case kBytes:
			return appendBase64(out, tag, text)
		}
		return appendNumber(out, tag, f.pkind, text)
	}
	switch f.kind {
	case kString, kDecimal:
		return protowire.AppendBytes(append(out, tag...), raw), true
	}
	return appendNumber(out, tag, f.pkind, raw)
}

// appendVarint appends tag and v to out when ok.
func appendVarint(out, tag []byte, ok bool, v uint64) []byte {
	if !ok {
		return out
	}
	return protowire.AppendVarint(append(out, tag...), v)
}

// appendNumber appends the JSON number text to out after tag, as a value
// of kind k, when k is a number kind that holds it.
func appendNumber(out, tag []byte, k protoreflect.Kind, text []byte) ([]byte, bool) {
	switch k {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		if !isInteger(text) {
			return out, false
		}
		bits := 64
		if k == protoreflect.Int32Kind || k == protoreflect.Sint32Kind || k == protoreflect.Sfixed32Kind {
			bits = 32
		}
		n, err := strconv.ParseInt(string(text), 10, bits)
		if err != nil {
			return out, false
		}
		out = append(out, tag...)
		switch k {
		case protoreflect.Sint32Kind, protoreflect.Sint64Kind:
			return protowire.AppendVarint(out, protowire.EncodeZigZag(n)), true
		case protoreflect.Sfixed32Kind:
			return protowire.AppendFixed32(out, uint32(n)), true
		case protoreflect.Sfixed64Kind:
			return protowire.AppendFixed64(out, uint64(n)), true
		}
		return protowire.AppendVarint(out, uint64(n)), true
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		if !isInteger(text) {
			return out, false
		}
		if string(text) == "-0" {
			text = text[1:]
		}
		bits := 64
		if k == protoreflect.Uint32Kind || k == protoreflect.Fixed32Kind {
			bits = 32
		}
		n, err := strconv.ParseUint(string(text), 10, bits)
		if err != nil {
			return out, false
		}
		out = append(out, tag...)
		switch k {
		case protoreflect.Fixed32Kind:
			return protowire.AppendFixed32(out, uint32(n)), true
		case protoreflect.Fixed64Kind:
			return protowire.AppendFixed64(out, n), true
		}
		return protowire.AppendVarint(out, n), true
	case protoreflect.FloatKind:
		if !isNumber(text) {
			return out, false
		}
		x, err := strconv.ParseFloat(string(text), 32)
		if err != nil {
			return out, false
		}
		return protowire.AppendFixed32(append(out, tag...), math.Float32bits(float32(x))), true
	case protoreflect.DoubleKind:
		if !isNumber(text) {
			return out, false
		}
		x, err := strconv.ParseFloat(string(text), 64)
		if err != nil {
			return out, false
		}
		return protowire.AppendFixed64(append(out, tag...), math.Float64bits(x)), true
	}
	return out, false
}

// list reads a JSON array, which the decoder is at, as list field f,
// appending the elements f can hold, in order.
func (d *decoder) list(f *field, out []byte) ([]byte, error) {
	if _, err := d.dec.ReadToken(); err != nil {
		return out, err
	}
	for d.dec.PeekKind() != ']' {
		var err error
		if out, _, err = d.value(f, f.tag, out); err != nil {
			return out, err
		}
	}
	_, err := d.dec.ReadToken()
	return out, err
}

// strictList reads a JSON array, which the decoder is at, into repeated
// message field f as Opentact's top-level lists have been read: a null
// element is an empty message, a string or number one the object of that
// id where f is declared a reference, and an element of another type is
// an error.
func (d *decoder) strictList(f *field, out []byte) ([]byte, error) {
	if _, err := d.dec.ReadToken(); err != nil {
		return out, err
	}
	for {
		var err error
		switch k := d.dec.PeekKind(); k {
		case ']':
			_, err := d.dec.ReadToken()
			return out, err
		case 'n':
			err = d.dec.SkipValue()
			out = emptyMessage(f, out)
		case '{':
			out, _, err = d.nested(f, f.tag, out)
		case '"', '0':
			if !f.reference || f.msg.ref(k) == nil {
				return out, d.notA(k, "an object")
			}
			var ok bool
			if out, ok, err = d.reference(f, k, f.tag, out); err == nil && !ok {
				return out, d.notA(k, "an id")
			}
		default:
			return out, d.notA(k, "an object")
		}
		if err != nil {
			return out, err
		}
	}
}

// mapValue reads a JSON object, which the decoder is at, as map field f,
// appending the members whose name is a key of f's type and whose value
// f's values can hold.
func (d *decoder) mapValue(f *field, out []byte) ([]byte, error) {
	if _, err := d.dec.ReadToken(); err != nil {
		return out, err
	}
	keyTag := protowire.AppendTag(nil, 1, wireType(f.mapKey))
	valTag := protowire.AppendTag(nil, 2, wireType(f.pkind))
	for d.dec.PeekKind() != '}' {
		quoted, err := d.dec.ReadValue()
		if err != nil {
			return out, err
		}
		name := d.unquote(quoted)
		if dropped(name) {
			if err := d.dec.SkipValue(); err != nil {
				return out, err
			}
			continue
		}
		start := len(out)
		out = append(out, f.tag...)
		at := len(out)
		var okKey, ok bool
		out, okKey = appendKey(out, keyTag, f.mapKey, name)
		if out, ok, err = d.value(f, valTag, out); err != nil {
			return out, err
		}
		if !ok || !okKey {
			out = out[:start]
			continue
		}
		out = insertLen(out, at)
	}
	_, err := d.dec.ReadToken()
	return out, err
}

// appendKey appends the member name as a map key of kind k.
func appendKey(out, tag []byte, k protoreflect.Kind, name []byte) ([]byte, bool) {
	switch k {
	case protoreflect.StringKind:
		return protowire.AppendBytes(append(out, tag...), name), true
	case protoreflect.BoolKind:
		switch string(name) {
		case "true":
			return appendVarint(out, tag, true, 1), true
		case "false":
			return appendVarint(out, tag, true, 0), true
		}
		return out, false
	}
	return appendNumber(out, tag, k, name)
}

// The range of a google.protobuf.Timestamp: 0001-01-01 to 9999-12-31 UTC.
const (
	minTimestamp = -62135596800
	maxTimestamp = 253402300799
)

// parseTime reads RFC 3339 text with or without a fraction, or a bare
// date as midnight UTC, within what a Timestamp holds.
func parseTime(s []byte) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, time.DateOnly} {
		if t, err := time.Parse(layout, string(s)); err == nil {
			u := t.Unix()
			return t, u >= minTimestamp && u <= maxTimestamp
		}
	}
	return time.Time{}, false
}

func appendBase64(out, tag, text []byte) ([]byte, bool) {
	start := len(out)
	out = append(out, tag...)
	at := len(out)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.AppendDecode(out, text); err == nil {
			return insertLen(b, at), true
		}
	}
	return out[:start], false
}

// unquote is the text of the JSON string quoted, in the decoder's scratch
// space when it needs unescaping: valid until the next unquote. Invalid
// UTF-8 becomes U+FFFD.
func (d *decoder) unquote(quoted []byte) []byte {
	inner := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return inner
	}
	d.scratch, _ = jsontext.AppendUnquote(d.scratch[:0], quoted) // only invalid UTF-8 is an error here
	return d.scratch
}

// isInteger reports whether b is one JSON integer: no fraction or exponent.
func isInteger(b []byte) bool {
	return isNumber(b) && bytes.IndexAny(b, ".eE") < 0
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
