package callflow

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"regexp"
	"strconv"

	"google.golang.org/protobuf/reflect/protoreflect"

	callv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/call/v1"
)

// Parse reads call-flow XML into a typed flow. It takes only what Check
// takes, and beyond that refuses, with an *Error naming the line, what the
// messages cannot hold exactly: a documented verb with no message (<Tone>,
// <Meta>, the older engine's <Switch>), a verb where its message has no
// place for it (a <Dial> directly inside <Gather>), a second <Error> or
// <Default> in one verb, text in an element that has none, an attribute
// value its field cannot hold (timeout="soon"), attributes on <Response>,
// and an unmodelled attribute whose name is not plain ASCII
// ([A-Za-z_][A-Za-z0-9_.-]*). Unmodelled attributes go to
// other_attributes.
func Parse(xml []byte) (*callv1.CallFlow, error) {
	p := &parser{}
	if err := walk(xml, p); err != nil {
		return nil, err
	}
	return p.flow, nil
}

type parser struct {
	flow  *callv1.CallFlow
	stack []*frame
}

type frame struct {
	name string
	m    protoreflect.Message
	sh   *shape
	text []byte
}

// otherAttr is the attribute names other_attributes holds, the pattern
// callflow.proto's rules give its keys.
var otherAttr = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)

func (p *parser) start(name string, attrs []xml.Attr, line int) *Error {
	t := tables()
	if len(p.stack) == 0 {
		if len(attrs) > 0 {
			return &Error{Line: line, Msg: fmt.Sprintf("<%s> has attributes; a typed flow has none", rootName)}
		}
		p.flow = &callv1.CallFlow{}
		p.stack = append(p.stack, &frame{name: name, m: p.flow.ProtoReflect(), sh: t.root})
		return nil
	}
	parent := p.stack[len(p.stack)-1]
	c, ok := parent.sh.children[name]
	switch {
	case ok:
	case !t.typed[name]:
		return &Error{Line: line, Msg: fmt.Sprintf("<%s> has no typed form", name)}
	default:
		return &Error{Line: line, Msg: fmt.Sprintf("<%s> is not allowed in <%s>", name, parent.name)}
	}
	var m protoreflect.Message
	switch {
	case c.fd.IsList():
		list := parent.m.Mutable(c.fd).List()
		v := list.NewElement()
		list.Append(v)
		m = v.Message()
	case parent.m.Has(c.fd):
		return &Error{Line: line, Msg: fmt.Sprintf("a second <%s> in <%s>", name, parent.name)}
	default:
		m = parent.m.Mutable(c.fd).Message()
	}
	if c.member != nil {
		m = m.Mutable(c.member).Message()
	}
	f := &frame{name: name, m: m, sh: t.shapes[m.Descriptor().FullName()]}
	for _, a := range attrs {
		if e := f.attribute(a.Name.Local, a.Value, line); e != nil {
			return e
		}
	}
	p.stack = append(p.stack, f)
	return nil
}

func (f *frame) attribute(name, value string, line int) *Error {
	if fd, ok := f.sh.byAttr[name]; ok {
		v, why := scalar(fd, value)
		if why != "" {
			return &Error{Line: line, Msg: fmt.Sprintf("<%s %s=%q>: %s", f.name, name, quoteShort(value), why)}
		}
		f.m.Set(fd, v)
		return nil
	}
	if !otherAttr.MatchString(name) || f.sh.other == nil {
		return &Error{Line: line, Msg: fmt.Sprintf("<%s>: the attribute %s has no typed form", f.name, quoteShort(name))}
	}
	f.m.Mutable(f.sh.other).Map().Set(protoreflect.ValueOfString(name).MapKey(), protoreflect.ValueOfString(value))
	return nil
}

// scalar reads an attribute's value as its field's kind, or says why not.
func scalar(fd protoreflect.FieldDescriptor, s string) (protoreflect.Value, string) {
	switch fd.Kind() {
	case protoreflect.Uint32Kind:
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return protoreflect.Value{}, "not a whole number from 0 to 4294967295"
		}
		return protoreflect.ValueOfUint32(uint32(n)), ""
	case protoreflect.BoolKind:
		switch s {
		case "true":
			return protoreflect.ValueOfBool(true), ""
		case "false":
			return protoreflect.ValueOfBool(false), ""
		}
		return protoreflect.Value{}, "not true or false"
	default:
		return protoreflect.ValueOfString(s), ""
	}
}

func (p *parser) end(int) *Error {
	f := p.stack[len(p.stack)-1]
	p.stack = p.stack[:len(p.stack)-1]
	if f.sh.text != nil && len(f.text) > 0 {
		f.m.Set(f.sh.text, protoreflect.ValueOfString(string(f.text)))
	}
	return nil
}

func (p *parser) text(data []byte, line int) *Error {
	f := p.stack[len(p.stack)-1]
	if f.sh.text != nil {
		f.text = append(f.text, data...)
		return nil
	}
	if isSpace(data) {
		return nil
	}
	lead := data[:len(data)-len(trimLeft(data))]
	line += bytes.Count(lead, []byte("\n"))
	return &Error{Line: line, Msg: fmt.Sprintf("<%s> takes no text, but has %q", f.name, quoteShort(string(trimSpace(data))))}
}

func trimLeft(b []byte) []byte {
	for len(b) > 0 && isSpace(b[:1]) {
		b = b[1:]
	}
	return b
}

func trimSpace(b []byte) []byte {
	b = trimLeft(b)
	for len(b) > 0 && isSpace(b[len(b)-1:]) {
		b = b[:len(b)-1]
	}
	return b
}
