package codec

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"fmt"
	"math"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Encode appends to dst the fields of m that are set, except those skip
// reports (skip may be nil), as one JSON object with Opentact's keys, in
// field number order. Set is Has: non-zero for a field without explicit
// presence, non-empty for a list or map, not the zero value for an enum.
//
// Numbers are JSON numbers, 64-bit integers included; a string field with
// (opentact.api.v1.field).number is a JSON number of its digits (a leading
// + of a phone number dropped), and one
// with decimal the JSON number it holds; an enum is Opentact's string for
// its value; a Timestamp is RFC 3339 text in UTC; bytes are standard
// base64; messages and maps are objects, lists arrays. other_fields'
// entries are members, each its JSON text. A value that cannot be sent so
// (a number field that is not digits, a float that is not finite, an enum
// value Opentact has no string for, other_fields text that is not JSON or
// names a field) is an error, and nothing is appended.
func Encode(dst []byte, m protoreflect.Message, skip func(protoreflect.FieldDescriptor) bool) ([]byte, error) {
	p := planOf(m.Descriptor())
	if p.err != nil {
		return dst, p.err
	}
	buf := bytes.NewBuffer(dst)
	enc := jsontext.NewEncoder(buf)
	if err := encodeObject(enc, p, m, skip); err != nil {
		return dst, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// isSet is whether f of m is sent.
func isSet(f *field, m protoreflect.Message) bool {
	if !m.Has(f.fd) {
		return false
	}
	return f.list || f.isMap || f.kind != kEnum || m.Get(f.fd).Enum() != 0
}

func encodeObject(enc *jsontext.Encoder, p *plan, m protoreflect.Message, skip func(protoreflect.FieldDescriptor) bool) error {
	if err := enc.WriteToken(jsontext.BeginObject); err != nil {
		return err
	}
	for _, f := range p.fields {
		if skip != nil && skip(f.fd) || !isSet(f, m) {
			continue
		}
		if err := enc.WriteToken(jsontext.String(f.key)); err != nil {
			return err
		}
		v := m.Get(f.fd)
		if f.clear && v.String() == "" {
			// Opentact takes a reference away when it is sent null.
			if err := enc.WriteToken(jsontext.Null); err != nil {
				return err
			}
			continue
		}
		if err := encodeField(enc, f, v); err != nil {
			return fmt.Errorf("%s: %w", f.fd.Name(), err)
		}
	}
	if p.other != nil && (skip == nil || !skip(p.other)) {
		if err := encodeOther(enc, p, m.Get(p.other).Map()); err != nil {
			return err
		}
	}
	return enc.WriteToken(jsontext.EndObject)
}

// encodeOther writes other_fields' entries as members, by name.
func encodeOther(enc *jsontext.Encoder, p *plan, other protoreflect.Map) error {
	names := make([]string, 0, other.Len())
	other.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
		names = append(names, k.String())
		return true
	})
	slices.Sort(names)
	for _, name := range names {
		if _, modelled := p.byKey[name]; modelled {
			return fmt.Errorf("other_fields: %q is the key of a field", name)
		}
		if err := enc.WriteToken(jsontext.String(name)); err != nil {
			return err
		}
		text := other.Get(protoreflect.ValueOfString(name).MapKey()).String()
		if err := enc.WriteValue(jsontext.Value(text)); err != nil {
			return fmt.Errorf("other_fields: %q: %w", name, err)
		}
	}
	return nil
}

func encodeField(enc *jsontext.Encoder, f *field, v protoreflect.Value) error {
	switch {
	case f.list:
		if err := enc.WriteToken(jsontext.BeginArray); err != nil {
			return err
		}
		l := v.List()
		for i := range l.Len() {
			if err := encodeValue(enc, f, l.Get(i)); err != nil {
				return err
			}
		}
		return enc.WriteToken(jsontext.EndArray)
	case f.isMap:
		if err := enc.WriteToken(jsontext.BeginObject); err != nil {
			return err
		}
		mv := v.Map()
		for _, k := range sortedKeys(mv) {
			if err := enc.WriteToken(jsontext.String(k.String())); err != nil {
				return err
			}
			if err := encodeValue(enc, f, mv.Get(k)); err != nil {
				return err
			}
		}
		return enc.WriteToken(jsontext.EndObject)
	}
	return encodeValue(enc, f, v)
}

// sortedKeys are a map's keys in order, so that the JSON is the same
// every time.
func sortedKeys(mv protoreflect.Map) []protoreflect.MapKey {
	keys := make([]protoreflect.MapKey, 0, mv.Len())
	mv.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
		keys = append(keys, k)
		return true
	})
	slices.SortFunc(keys, func(a, b protoreflect.MapKey) int {
		switch x := a.Interface().(type) {
		case string:
			return cmp.Compare(x, b.String())
		case bool:
			return cmp.Compare(a.String(), b.String())
		case int32, int64:
			return cmp.Compare(a.Int(), b.Int())
		}
		return cmp.Compare(a.Uint(), b.Uint())
	})
	return keys
}

// encodeValue writes one value of kind f.kind: a field's, a list
// element's or a map value's.
func encodeValue(enc *jsontext.Encoder, f *field, v protoreflect.Value) error {
	switch f.kind {
	case kMessage:
		return encodeObject(enc, f.msg, v.Message(), nil)
	case kTimestamp:
		t, err := timeOf(v.Message())
		if err != nil {
			return err
		}
		return enc.WriteToken(jsontext.String(t.Format(time.RFC3339Nano)))
	case kString:
		if f.number {
			digits := strings.TrimPrefix(v.String(), "+")
			if !isDigits(digits) {
				return fmt.Errorf("%q is not a number: only the digits 0-9, after an optional +, without leading zeros, can be sent", v.String())
			}
			return enc.WriteValue(jsontext.Value(digits))
		}
		return enc.WriteToken(jsontext.String(v.String()))
	case kDecimal:
		if !isNumber([]byte(v.String())) {
			return fmt.Errorf("%q is not a decimal number", v.String())
		}
		return enc.WriteValue(jsontext.Value(v.String()))
	case kBool:
		return enc.WriteToken(jsontext.Bool(v.Bool()))
	case kInt32, kInt64:
		return enc.WriteToken(jsontext.Int(v.Int()))
	case kUint32, kUint64:
		return enc.WriteToken(jsontext.Uint(v.Uint()))
	case kFloat, kDouble:
		b, err := appendFloat(nil, v.Float(), f.kind == kFloat)
		if err != nil {
			return err
		}
		return enc.WriteValue(jsontext.Value(b))
	case kEnum:
		name, ok := f.enum.byNumber[v.Enum()]
		if !ok {
			return fmt.Errorf("enum value %d has no Opentact name", v.Enum())
		}
		return enc.WriteToken(jsontext.String(name))
	case kBytes:
		return enc.WriteToken(jsontext.String(base64.StdEncoding.EncodeToString(v.Bytes())))
	}
	return fmt.Errorf("codec: kind %v", f.fd.Kind())
}

// timeOf is the time of a valid google.protobuf.Timestamp, in UTC.
func timeOf(ts protoreflect.Message) (time.Time, error) {
	fds := ts.Descriptor().Fields()
	secs, nanos := ts.Get(fds.ByNumber(1)).Int(), ts.Get(fds.ByNumber(2)).Int()
	if secs < minTimestamp || secs > maxTimestamp || nanos < 0 || nanos >= 1e9 {
		return time.Time{}, fmt.Errorf("timestamp (%d, %d) is outside 0001-01-01 to 9999-12-31", secs, nanos)
	}
	return time.Unix(secs, nanos).UTC(), nil
}

// isDigits reports whether s is a JSON number of digits alone: no sign,
// fraction, exponent or leading zero.
func isDigits(s string) bool {
	if s == "" || s[0] == '0' && len(s) > 1 {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// appendFloat writes a finite float as encoding/json does: the shortest
// digits that read back the same, plain unless very large or small.
func appendFloat(b []byte, x float64, single bool) ([]byte, error) {
	if math.IsInf(x, 0) || math.IsNaN(x) {
		return b, fmt.Errorf("%v cannot be sent: not a finite number", x)
	}
	bits := 64
	if single {
		bits = 32
	}
	format := byte('f')
	if abs := math.Abs(x); abs != 0 {
		if single && (float32(abs) < 1e-6 || float32(abs) >= 1e21) || !single && (abs < 1e-6 || abs >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, x, format, -1, bits)
	if n := len(b); format == 'e' && n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
		b[n-2] = b[n-1] // e-07 as e-7
		b = b[:n-1]
	}
	return b, nil
}

// Text is the text of scalar field fd of m, for a path segment, a query
// value or a form value; false when fd is unset (as Encode has it) or not
// a scalar. A Timestamp is RFC 3339 text in UTC.
func Text(m protoreflect.Message, fd protoreflect.FieldDescriptor) (string, bool) {
	p := planOf(m.Descriptor())
	f := p.fieldOf(fd)
	if f == nil || f.list || f.isMap || f.kind == kMessage || !isSet(f, m) {
		return "", false
	}
	return text(f, m.Get(fd))
}

// text is the text of one value of f's kind.
func text(f *field, v protoreflect.Value) (string, bool) {
	switch f.kind {
	case kString, kDecimal:
		if f.number {
			return strings.TrimPrefix(v.String(), "+"), true
		}
		return v.String(), true
	case kBool:
		return strconv.FormatBool(v.Bool()), true
	case kInt32, kInt64:
		return strconv.FormatInt(v.Int(), 10), true
	case kUint32, kUint64:
		return strconv.FormatUint(v.Uint(), 10), true
	case kFloat, kDouble:
		b, err := appendFloat(nil, v.Float(), f.kind == kFloat)
		return string(b), err == nil
	case kEnum:
		name, ok := f.enum.byNumber[v.Enum()]
		return name, ok
	case kBytes:
		return base64.StdEncoding.EncodeToString(v.Bytes()), true
	case kTimestamp:
		t, err := timeOf(v.Message())
		return t.Format(time.RFC3339Nano), err == nil
	}
	return "", false
}

// Multipart encodes the fields of m that are set, except those skip
// reports (skip may be nil), as multipart/form-data under Opentact's
// keys, in field number order: each bytes value, and each text declared
// (opentact.api.v1.field).file, a file part named by its key, with the
// content type its bytes show (http.DetectContentType); a
// scalar or Timestamp a form value of its Text; each element of a list a
// part of its own; a message or map a form value of its JSON (Encode);
// other_fields' entries form values of their JSON text, a string's
// unquoted.
func Multipart(m protoreflect.Message, skip func(protoreflect.FieldDescriptor) bool) (body []byte, contentType string, err error) {
	p := planOf(m.Descriptor())
	if p.err != nil {
		return nil, "", p.err
	}
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, f := range p.fields {
		if skip != nil && skip(f.fd) || !isSet(f, m) {
			continue
		}
		v := m.Get(f.fd)
		var err error
		switch {
		case f.list:
			l := v.List()
			for i := 0; i < l.Len() && err == nil; i++ {
				err = writePart(w, f, l.Get(i))
			}
		case f.isMap:
			var b []byte
			if b, err = encodeJSON(f, v); err == nil {
				err = w.WriteField(f.key, string(b))
			}
		default:
			err = writePart(w, f, v)
		}
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", f.fd.Name(), err)
		}
	}
	if p.other != nil && (skip == nil || !skip(p.other)) {
		other := m.Get(p.other).Map()
		for _, k := range sortedKeys(other) {
			if _, modelled := p.byKey[k.String()]; modelled {
				return nil, "", fmt.Errorf("other_fields: %q is the key of a field", k.String())
			}
			value := other.Get(k).String()
			if t, err := jsontext.AppendUnquote(nil, value); err == nil {
				value = string(t)
			} else if !jsontext.Value(value).IsValid() {
				return nil, "", fmt.Errorf("other_fields: %q is not JSON", k.String())
			}
			if err := w.WriteField(k.String(), value); err != nil {
				return nil, "", err
			}
		}
	}
	if err := w.Close(); err != nil {
		return nil, "", err
	}
	return buf.Bytes(), w.FormDataContentType(), nil
}

// writePart writes one value of f's as a part.
func writePart(w *multipart.Writer, f *field, v protoreflect.Value) error {
	switch {
	case f.kind == kBytes || f.file:
		var b []byte
		if f.file {
			b = []byte(v.String())
		} else {
			b = v.Bytes()
		}
		h := make(textproto.MIMEHeader)
		h.Set("Content-Disposition", multipart.FileContentDisposition(f.key, f.key))
		h.Set("Content-Type", http.DetectContentType(b))
		part, err := w.CreatePart(h)
		if err != nil {
			return err
		}
		_, err = part.Write(b)
		return err
	case f.kind == kMessage:
		b, err := encodeJSON(&field{fd: f.fd, kind: kMessage, msg: f.msg}, v)
		if err != nil {
			return err
		}
		return w.WriteField(f.key, string(b))
	}
	s, ok := text(f, v)
	if !ok {
		return fmt.Errorf("%v cannot be sent", v)
	}
	if f.number {
		if s = strings.TrimPrefix(s, "+"); !isDigits(s) {
			return fmt.Errorf("%q is not a number: only the digits 0-9, after an optional +, without leading zeros, can be sent", s)
		}
	}
	return w.WriteField(f.key, s)
}

// encodeJSON is the JSON of one value of f's, f's list or f's map.
func encodeJSON(f *field, v protoreflect.Value) ([]byte, error) {
	var buf bytes.Buffer
	enc := jsontext.NewEncoder(&buf)
	var err error
	if f.isMap {
		err = encodeField(enc, f, v)
	} else {
		err = encodeValue(enc, f, v)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), err
}
