package codec

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Names match exactly, as Opentact spells them; a repeated name is applied
// again and invalid UTF-8 is no error, as encoding/json has it.
var decodeOptions = []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}

// Decode reads Opentact's JSON object b into m, leniently: only b that is
// not one JSON object (broken JSON, another type, trailing data) is an
// error.
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
	if err := d.object(p, m); err != nil {
		return err
	}
	return d.end()
}

// DecodeField reads the JSON value b into field fd of m: a message or map
// field takes an object and a repeated field an array, and any other JSON
// type is an error; a scalar field takes b leniently, as in an object.
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
	switch k := d.dec.PeekKind(); {
	case f.list && k != '[':
		err = d.notA(k, "an array")
	case f.list && f.kind == kMessage:
		err = d.strictList(f, m)
	case (f.isMap || f.kind == kMessage) && k != '{':
		err = d.notA(k, "an object")
	default:
		err = d.member(f, m)
	}
	if err != nil {
		return err
	}
	return d.end()
}

// fieldOf is f's plan, also for a field whose key is dropped.
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
type decoder struct {
	in      bytes.Buffer
	dec     jsontext.Decoder
	scratch []byte
	raw     rawEncoder
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

// object reads a JSON object, which the decoder is at, into m.
func (d *decoder) object(p *plan, m protoreflect.Message) error {
	if _, err := d.dec.ReadToken(); err != nil {
		return err
	}
	var other protoreflect.Map
	for {
		if d.dec.PeekKind() == '}' {
			_, err := d.dec.ReadToken()
			return err
		}
		quoted, err := d.dec.ReadValue()
		if err != nil {
			return err
		}
		name := d.unquote(quoted)
		if f := p.byKey[string(name)]; f != nil {
			if err := d.member(f, m); err != nil {
				return err
			}
			continue
		}
		if p.other == nil || dropped(name) {
			if err := d.dec.SkipValue(); err != nil {
				return err
			}
			continue
		}
		key := string(name) // before the next read reuses the scratch space
		text, err := d.rawText()
		if err != nil {
			return err
		}
		if other == nil {
			other = m.Mutable(p.other).Map()
		}
		other.Set(protoreflect.ValueOfString(key).MapKey(), protoreflect.ValueOfString(text))
	}
}

// member reads the next value into field f of m. A value f cannot hold
// leaves whatever f had.
func (d *decoder) member(f *field, m protoreflect.Message) error {
	switch {
	case f.list:
		if d.dec.PeekKind() != '[' {
			return d.dec.SkipValue()
		}
		return d.list(f, m)
	case f.isMap:
		if d.dec.PeekKind() != '{' {
			return d.dec.SkipValue()
		}
		return d.mapValue(f, m)
	}
	v, ok, err := d.value(f, maker{m: m, fd: f.fd})
	if err != nil || !ok {
		return err
	}
	m.Set(f.fd, v)
	return nil
}

// maker makes the new message of a message field, list element or map
// value.
type maker struct {
	m  protoreflect.Message
	fd protoreflect.FieldDescriptor
	l  protoreflect.List
	mv protoreflect.Map
}

func (k maker) new() protoreflect.Message {
	switch {
	case k.l != nil:
		return k.l.NewElement().Message()
	case k.mv != nil:
		return k.mv.NewValue().Message()
	}
	return k.m.NewField(k.fd).Message()
}

// value reads the next value as one of kind f.kind (a field's, a list
// element's or a map value's); ok is false when the value cannot be one.
func (d *decoder) value(f *field, mk maker) (v protoreflect.Value, ok bool, err error) {
	k := d.dec.PeekKind()
	switch {
	case f.kind == kMessage && k == '{':
		sub := mk.new()
		if err := d.object(f.msg, sub); err != nil {
			return v, false, err
		}
		return protoreflect.ValueOfMessage(sub), true, nil
	case f.kind == kTimestamp && k == '"':
		raw, err := d.dec.ReadValue()
		if err != nil {
			return v, false, err
		}
		t, ok := parseTime(d.unquote(raw))
		if !ok {
			return v, false, nil
		}
		return protoreflect.ValueOfMessage(setTimestamp(mk.new(), t)), true, nil
	case f.kind != kMessage && f.kind != kTimestamp && (k == '"' || k == '0' || k == 't' || k == 'f'):
		raw, err := d.dec.ReadValue()
		if err != nil {
			return v, false, err
		}
		v, ok := d.scalar(f.kind, f.enum, raw)
		return v, ok, nil
	}
	return v, false, d.dec.SkipValue()
}

// scalar reads the JSON string, number or boolean raw as a value of kind
// k.
func (d *decoder) scalar(k kind, enum *enumNames, raw []byte) (protoreflect.Value, bool) {
	switch raw[0] {
	case 't', 'f':
		return protoreflect.ValueOfBool(raw[0] == 't'), k == kBool
	case '"':
		text := d.unquote(raw)
		switch k {
		case kString:
			return protoreflect.ValueOfString(string(text)), true
		case kDecimal:
			return protoreflect.ValueOfString(string(text)), isNumber(text)
		case kEnum:
			n, ok := enum.byName[string(text)]
			return protoreflect.ValueOfEnum(n), ok
		case kBytes:
			b, ok := decodeBase64(text)
			return protoreflect.ValueOfBytes(b), ok
		}
		return number(k, text)
	}
	switch k {
	case kString, kDecimal:
		return protoreflect.ValueOfString(string(raw)), true
	}
	return number(k, raw)
}

// number reads the JSON number text as a value of kind k, if k is a
// number kind that holds it.
func number(k kind, text []byte) (protoreflect.Value, bool) {
	switch k {
	case kInt32, kInt64:
		if !isInteger(text) {
			return protoreflect.Value{}, false
		}
		if k == kInt32 {
			n, err := strconv.ParseInt(string(text), 10, 32)
			return protoreflect.ValueOfInt32(int32(n)), err == nil
		}
		n, err := strconv.ParseInt(string(text), 10, 64)
		return protoreflect.ValueOfInt64(n), err == nil
	case kUint32, kUint64:
		if !isInteger(text) {
			return protoreflect.Value{}, false
		}
		if string(text) == "-0" {
			text = text[1:]
		}
		if k == kUint32 {
			n, err := strconv.ParseUint(string(text), 10, 32)
			return protoreflect.ValueOfUint32(uint32(n)), err == nil
		}
		n, err := strconv.ParseUint(string(text), 10, 64)
		return protoreflect.ValueOfUint64(n), err == nil
	case kFloat:
		if !isNumber(text) {
			return protoreflect.Value{}, false
		}
		x, err := strconv.ParseFloat(string(text), 32)
		return protoreflect.ValueOfFloat32(float32(x)), err == nil
	case kDouble:
		if !isNumber(text) {
			return protoreflect.Value{}, false
		}
		x, err := strconv.ParseFloat(string(text), 64)
		return protoreflect.ValueOfFloat64(x), err == nil
	}
	return protoreflect.Value{}, false
}

// mapKey reads a member name as a key of kind k.
func mapKey(k kind, name []byte) (protoreflect.MapKey, bool) {
	switch k {
	case kString:
		return protoreflect.ValueOfString(string(name)).MapKey(), true
	case kBool:
		switch string(name) {
		case "true":
			return protoreflect.ValueOfBool(true).MapKey(), true
		case "false":
			return protoreflect.ValueOfBool(false).MapKey(), true
		}
		return protoreflect.MapKey{}, false
	}
	if v, ok := number(k, name); ok {
		return v.MapKey(), true
	}
	return protoreflect.MapKey{}, false
}

// list reads a JSON array, which the decoder is at, into list field f of
// m, replacing what f had: the elements f can hold, in order. No such
// element leaves f empty.
func (d *decoder) list(f *field, m protoreflect.Message) error {
	if _, err := d.dec.ReadToken(); err != nil {
		return err
	}
	l := m.NewField(f.fd).List()
	for d.dec.PeekKind() != ']' {
		v, ok, err := d.value(f, maker{l: l})
		if err != nil {
			return err
		}
		if ok {
			l.Append(v)
		}
	}
	if _, err := d.dec.ReadToken(); err != nil {
		return err
	}
	if l.Len() == 0 {
		m.Clear(f.fd)
		return nil
	}
	m.Set(f.fd, protoreflect.ValueOfList(l))
	return nil
}

// strictList reads a JSON array into repeated message field f of m as
// Opentact's top-level lists have been read: a null element is an empty
// message and an element of another type is an error.
func (d *decoder) strictList(f *field, m protoreflect.Message) error {
	if _, err := d.dec.ReadToken(); err != nil {
		return err
	}
	l := m.NewField(f.fd).List()
	for {
		switch k := d.dec.PeekKind(); k {
		case ']':
			if _, err := d.dec.ReadToken(); err != nil {
				return err
			}
			if l.Len() > 0 {
				m.Set(f.fd, protoreflect.ValueOfList(l))
			}
			return nil
		case 'n':
			if err := d.dec.SkipValue(); err != nil {
				return err
			}
			l.Append(protoreflect.ValueOfMessage(l.NewElement().Message()))
		case '{':
			e := l.NewElement().Message()
			if err := d.object(f.msg, e); err != nil {
				return err
			}
			l.Append(protoreflect.ValueOfMessage(e))
		default:
			return d.notA(k, "an object")
		}
	}
}

// mapValue reads a JSON object, which the decoder is at, into map field
// f of m, replacing what f had: the members whose name is a key of f's
// type and whose value f's values can hold.
func (d *decoder) mapValue(f *field, m protoreflect.Message) error {
	if _, err := d.dec.ReadToken(); err != nil {
		return err
	}
	mv := m.NewField(f.fd).Map()
	for d.dec.PeekKind() != '}' {
		quoted, err := d.dec.ReadValue()
		if err != nil {
			return err
		}
		name := d.unquote(quoted)
		if dropped(name) {
			if err := d.dec.SkipValue(); err != nil {
				return err
			}
			continue
		}
		key, okKey := mapKey(f.mapKey, name)
		v, ok, err := d.value(f, maker{mv: mv})
		if err != nil {
			return err
		}
		if ok && okKey {
			mv.Set(key, v)
		}
	}
	if _, err := d.dec.ReadToken(); err != nil {
		return err
	}
	if mv.Len() == 0 {
		m.Clear(f.fd)
		return nil
	}
	m.Set(f.fd, protoreflect.ValueOfMap(mv))
	return nil
}

// setTimestamp sets the Timestamp message ts to t.
func setTimestamp(ts protoreflect.Message, t time.Time) protoreflect.Message {
	if g, ok := ts.Interface().(*timestamppb.Timestamp); ok {
		g.Seconds, g.Nanos = t.Unix(), int32(t.Nanosecond())
		return ts
	}
	fds := ts.Descriptor().Fields()
	ts.Set(fds.ByNumber(1), protoreflect.ValueOfInt64(t.Unix()))
	ts.Set(fds.ByNumber(2), protoreflect.ValueOfInt32(int32(t.Nanosecond())))
	return ts
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

func decodeBase64(s []byte) ([]byte, bool) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.AppendDecode(nil, s); err == nil {
			return b, true
		}
	}
	return nil, false
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
