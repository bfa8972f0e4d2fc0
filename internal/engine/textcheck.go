package engine

import (
	"strconv"
	"sync"
	"unicode"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	apiv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/api/v1"
)

// maxTextBytes bounds every string of a request, whatever its method: a
// name, a uuid or a token is far shorter, and each ends up in Opentact's
// URLs, bodies and logs. A field whose proto sets a tighter max_len or
// max_bytes gets that bound too, from protovalidate.
const maxTextBytes = 4096

// The rule ids of textViolations, named as protovalidate names its rules.
const (
	ruleMaxBytes = "string.max_bytes"
	ruleUTF8     = "string.valid_utf8"
	ruleControl  = "string.no_control"
	ruleBidi     = "string.no_bidi"
)

// textViolations walks a request and names every string in it, in every
// field, nested message, list element, map key and map value, that is no
// text to send to Opentact:
//
//   - longer than maxTextBytes;
//   - not valid UTF-8 (grpc-gateway passes a %FF in a path as it is);
//   - holding a control character (Unicode Cc: NUL, ESC, CR, LF, tab, DEL
//     and the C1 controls) or a line or paragraph separator (U+2028,
//     U+2029): they split log lines and headers and hide text;
//   - holding a bidirectional formatting character (Unicode Bidi_Control:
//     U+061C, U+200E, U+200F, U+202A..U+202E, U+2066..U+2069), which
//     makes text display in another order than it is stored ("Trojan
//     Source").
//
// It applies to every method with no code of its own. A field declared
// multiline ((opentact.api.v1.field).multiline: an SMS's text) takes line
// feeds, carriage returns and tabs; one declaring max_bytes (call-flow
// XML) takes that many bytes. A violation names the field, as
// protovalidate's do ("name", "tokens[0].name", `other_fields["k"]`),
// never its value: the value may be a secret.
func textViolations(m protoreflect.Message) []*errdetails.BadRequest_FieldViolation {
	return walkText(m, "", nil)
}

// walkText checks m's fields and returns out with their violations. It
// goes by m's descriptor rather than m.Range, and takes and returns the
// slice rather than a pointer to it, so that a clean request allocates
// nothing (a request has no extensions).
func walkText(m protoreflect.Message, prefix string, out []*errdetails.BadRequest_FieldViolation) []*errdetails.BadRequest_FieldViolation {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if !m.Has(fd) {
			continue
		}
		v := m.Get(fd)
		at := place{prefix: prefix, field: fd.Name(), index: -1}
		switch {
		case fd.IsList():
			l := v.List()
			for i := range l.Len() {
				at.index = i
				out = checkValue(fd, l.Get(i), at, out)
			}
		case fd.IsMap():
			out = walkMap(fd, v.Map(), at, out)
		default:
			out = checkValue(fd, v, at, out)
		}
	}
	return out
}

// walkMap checks a map field's keys and values.
func walkMap(fd protoreflect.FieldDescriptor, m protoreflect.Map, at place, out []*errdetails.BadRequest_FieldViolation) []*errdetails.BadRequest_FieldViolation {
	m.Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
		if s, ok := k.Interface().(string); ok {
			if rule, desc := badText(s, textRule{maxBytes: maxTextBytes}); rule != "" {
				out = append(out, violation(at.String(), rule, "a key "+desc))
				return true
			}
		}
		kat := at
		kat.key = k.Interface()
		out = checkValue(fd.MapValue(), v, kat, out)
		return true
	})
	return out
}

// place is where a value is in a request; its path is made only when
// needed.
type place struct {
	prefix string            // the path of the message holding it, "" at the top
	field  protoreflect.Name // its field
	index  int               // its index in a list, -1 if none
	key    any               // its key in a map, nil if none
}

func (p place) String() string {
	path := string(p.field)
	if p.prefix != "" {
		path = p.prefix + "." + path
	}
	switch {
	case p.index >= 0:
		return path + "[" + strconv.Itoa(p.index) + "]"
	case p.key != nil:
		return mapPath(path, p.key)
	}
	return path
}

// checkValue checks one value of field fd, a string or a message.
func checkValue(fd protoreflect.FieldDescriptor, v protoreflect.Value, at place, out []*errdetails.BadRequest_FieldViolation) []*errdetails.BadRequest_FieldViolation {
	switch fd.Kind() {
	case protoreflect.StringKind:
		if rule, desc := badText(v.String(), ruleOf(fd)); rule != "" {
			out = append(out, violation(at.String(), rule, desc))
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		out = walkText(v.Message(), at.String(), out)
	}
	return out
}

// mapPath is the path of a map value by its key; a long key is left out
// rather than repeated in the error.
func mapPath(field string, key any) string {
	switch k := key.(type) {
	case string:
		if len(k) > 64 {
			return field + "[…]"
		}
		return field + "[" + strconv.Quote(k) + "]"
	case bool:
		return field + "[" + strconv.FormatBool(k) + "]"
	case int32, int64:
		return field + "[" + strconv.FormatInt(protoreflect.ValueOf(k).Int(), 10) + "]"
	case uint32, uint64:
		return field + "[" + strconv.FormatUint(protoreflect.ValueOf(k).Uint(), 10) + "]"
	}
	return field
}

func violation(field, rule, desc string) *errdetails.BadRequest_FieldViolation {
	return &errdetails.BadRequest_FieldViolation{Field: field, Description: desc, Reason: rule}
}

// textRules caches, by field, the text rule it declares.
var textRules sync.Map // protoreflect.FieldDescriptor → textRule

// textRule is what a field's options say of its text: whether it takes
// several lines ((opentact.api.v1.field).multiline: an SMS's text), and
// its bound in bytes ((opentact.api.v1.field).max_bytes: a document such
// as call-flow XML; maxTextBytes otherwise).
type textRule struct {
	lines    bool
	maxBytes int
}

func ruleOf(fd protoreflect.FieldDescriptor) textRule {
	if v, ok := textRules.Load(fd); ok {
		return v.(textRule)
	}
	o, _ := proto.GetExtension(fd.Options(), apiv1.E_Field).(*apiv1.Field)
	r := textRule{lines: o.GetMultiline(), maxBytes: maxTextBytes}
	if n := o.GetMaxBytes(); n > 0 {
		r.maxBytes = int(n)
	}
	textRules.Store(fd, r)
	return r
}

// badText returns the rule s breaks and its description, or "" when s is
// text to send by tr.
func badText(s string, tr textRule) (rule, desc string) {
	if len(s) > tr.maxBytes {
		return ruleMaxBytes, "is longer than " + strconv.Itoa(tr.maxBytes) + " bytes"
	}
	lines := tr.lines
	for i := 0; i < len(s); {
		if b := s[i]; b >= 0x20 && b < 0x7f { // printable ASCII, most of it
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			return ruleUTF8, "is not valid UTF-8"
		case lines && (r == '\n' || r == '\r' || r == '\t'):
		case unicode.Is(unicode.Cc, r) || r == '\u2028' || r == '\u2029':
			return ruleControl, "holds a control character or line break"
		case unicode.Is(unicode.Bidi_Control, r):
			return ruleBidi, "holds a bidirectional formatting character"
		}
		i += n
	}
	return "", ""
}
