package callflow

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf8"

	"google.golang.org/protobuf/reflect/protoreflect"

	callv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/call/v1"
)

// Header is the first line of every flow Render writes.
const Header = `<?xml version="1.0" encoding="UTF-8"?>`

// ErrTooLarge is (wrapped in) Render's error for a flow whose XML would be
// over MaxBytes.
var ErrTooLarge = errors.New("over the size limit")

// Render writes f as Opentact's call-flow XML: Header, then the <Response>
// root, each element on a line of its own, indented by two spaces a level.
// An element's attributes are its message's fields in the order they are
// declared, then other_attributes sorted by name; an element with neither
// text nor children is written empty (<Hangup/>). Text is escaped, and
// line breaks and tabs are written as character references. Apostrophes
// are written as they are.
//
// A flow that cannot be written is an error naming the field: a Verb with
// no verb set, a character XML cannot carry (U+0000, invalid UTF-8), an
// other_attributes name that is not [A-Za-z_][A-Za-z0-9_.-]*, is xmlns,
// or is an attribute the message models, or a flow beyond MaxDepth,
// MaxElements or MaxBytes (ErrTooLarge). Render does not apply the
// protovalidate rules.
func Render(f *callv1.CallFlow) ([]byte, error) {
	if f == nil {
		return nil, errors.New("callflow: no flow")
	}
	r := &renderer{}
	r.buf.WriteString(Header + "\n")
	if err := r.element(rootName, tables().root, f.ProtoReflect(), 1, ""); err != nil {
		return nil, err
	}
	if r.buf.Len() > MaxBytes {
		return nil, fmt.Errorf("callflow: the XML is %d bytes: %w of %d", r.buf.Len(), ErrTooLarge, MaxBytes)
	}
	return r.buf.Bytes(), nil
}

type renderer struct {
	buf   bytes.Buffer
	count int
}

func fail(path, format string, args ...any) error {
	if path == "" {
		path = "flow"
	}
	return fmt.Errorf("callflow: %s: %s", path, fmt.Sprintf(format, args...))
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// element writes m as the element name, at depth (the root is 1).
func (r *renderer) element(name string, sh *shape, m protoreflect.Message, depth int, path string) error {
	if depth > MaxDepth {
		return fail(path, "<%s> would be nested %d deep, over the limit of %d", name, depth, MaxDepth)
	}
	if r.count++; r.count > MaxElements {
		return fail(path, "more than %d elements", MaxElements)
	}
	if r.buf.Len() > MaxBytes {
		return fail(path, "%v of %d bytes", ErrTooLarge, MaxBytes)
	}
	indent := bytes.Repeat([]byte("  "), depth-1)
	r.buf.Write(indent)
	r.buf.WriteString("<" + name)
	for _, a := range sh.attrs {
		if !m.Has(a.fd) {
			continue
		}
		if err := r.attribute(a.name, scalarText(a.fd, m.Get(a.fd))); err != nil {
			return fail(join(path, string(a.fd.Name())), "%v", err)
		}
	}
	if sh.other != nil {
		other := m.Get(sh.other).Map()
		keys := make([]string, 0, other.Len())
		other.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
			keys = append(keys, k.String())
			return true
		})
		slices.Sort(keys)
		for _, k := range keys {
			where := join(path, fmt.Sprintf("%s[%q]", otherName, k))
			switch _, modelled := sh.byAttr[k]; {
			case !otherAttr.MatchString(k):
				return fail(where, "not an attribute name of the form [A-Za-z_][A-Za-z0-9_.-]*")
			case k == "xmlns":
				return fail(where, "XML namespaces are not allowed")
			case modelled:
				return fail(where, "<%s>'s %s is a field of its own", name, k)
			}
			if err := r.attribute(k, other.Get(protoreflect.ValueOfString(k).MapKey()).String()); err != nil {
				return fail(where, "%v", err)
			}
		}
	}
	if sh.text != nil {
		text := m.Get(sh.text).String()
		if text == "" {
			r.buf.WriteString("/>\n")
			return nil
		}
		r.buf.WriteString(">")
		if err := escape(&r.buf, text, false); err != nil {
			return fail(join(path, string(sh.text.Name())), "%v", err)
		}
		r.buf.WriteString("</" + name + ">\n")
		return nil
	}
	if !hasChildren(sh, m) {
		r.buf.WriteString("/>\n")
		return nil
	}
	r.buf.WriteString(">\n")
	for _, fd := range sh.slots {
		if fd.IsList() {
			list := m.Get(fd).List()
			for i := 0; i < list.Len(); i++ {
				if err := r.child(fd, list.Get(i).Message(), depth+1, join(path, fmt.Sprintf("%s[%d]", fd.Name(), i))); err != nil {
					return err
				}
			}
		} else if m.Has(fd) {
			if err := r.child(fd, m.Get(fd).Message(), depth+1, join(path, string(fd.Name()))); err != nil {
				return err
			}
		}
	}
	r.buf.Write(indent)
	r.buf.WriteString("</" + name + ">\n")
	return nil
}

// child writes the element m, the value of fd, stands for.
func (r *renderer) child(fd protoreflect.FieldDescriptor, m protoreflect.Message, depth int, path string) error {
	name := elementName(fd)
	if o := choice(fd.Message()); o != nil {
		member := m.WhichOneof(o)
		if member == nil {
			return fail(path, "no %s set", o.Name())
		}
		name, m, path = elementName(member), m.Get(member).Message(), join(path, string(member.Name()))
	}
	return r.element(name, tables().shapes[m.Descriptor().FullName()], m, depth, path)
}

func hasChildren(sh *shape, m protoreflect.Message) bool {
	for _, fd := range sh.slots {
		if fd.IsList() && m.Get(fd).List().Len() > 0 || !fd.IsList() && m.Has(fd) {
			return true
		}
	}
	return false
}

func (r *renderer) attribute(name, value string) error {
	r.buf.WriteString(" " + name + `="`)
	if err := escape(&r.buf, value, true); err != nil {
		return err
	}
	r.buf.WriteString(`"`)
	return nil
}

func scalarText(fd protoreflect.FieldDescriptor, v protoreflect.Value) string {
	switch fd.Kind() {
	case protoreflect.Uint32Kind:
		return strconv.FormatUint(v.Uint(), 10)
	case protoreflect.BoolKind:
		return strconv.FormatBool(v.Bool())
	default:
		return v.String()
	}
}

// escape writes s as XML text or (attr) a double-quoted attribute value:
// &, <, >, in a value ", and line breaks and tabs (which an attribute value
// would otherwise lose, and which would break the one-element-a-line
// layout) as references. A character XML cannot carry is an error, not a
// U+FFFD.
func escape(w *bytes.Buffer, s string, attr bool) error {
	for i, c := range s {
		switch c {
		case '&':
			w.WriteString("&amp;")
		case '<':
			w.WriteString("&lt;")
		case '>':
			w.WriteString("&gt;")
		case '"':
			if !attr {
				w.WriteRune(c)
				continue
			}
			w.WriteString("&quot;")
		case '\t':
			w.WriteString("&#x9;")
		case '\n':
			w.WriteString("&#xA;")
		case '\r':
			w.WriteString("&#xD;")
		default:
			if c == utf8.RuneError {
				if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
					return fmt.Errorf("invalid UTF-8 at byte %d", i)
				}
			}
			if !xmlChar(c) {
				return fmt.Errorf("%U cannot be written in XML", c)
			}
			w.WriteRune(c)
		}
	}
	return nil
}

// xmlChar is XML 1.0's Char production.
func xmlChar(c rune) bool {
	return c == 0x09 || c == 0x0A || c == 0x0D ||
		c >= 0x20 && c <= 0xD7FF ||
		c >= 0xE000 && c <= 0xFFFD ||
		c >= 0x10000 && c <= 0x10FFFF
}
