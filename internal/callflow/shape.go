package callflow

import (
	"fmt"
	"sync"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	callv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/call/v1"
)

// A shape is how one message of callflow.proto is written as an element,
// read from its descriptor once (the convention is in callflow.proto's
// CallFlow comment). Parse and Render both run from shapes: a new verb is
// only a new message.
type shape struct {
	desc protoreflect.MessageDescriptor
	// The attributes, in declaration order: the order Render writes.
	attrs  []attribute
	byAttr map[string]protoreflect.FieldDescriptor
	// The element's text, or nil.
	text protoreflect.FieldDescriptor
	// other_attributes, or nil.
	other protoreflect.FieldDescriptor
	// The fields holding child elements, in declaration order.
	slots []protoreflect.FieldDescriptor
	// Where a child element goes, by its name (and the names also read).
	children map[string]child
}

type attribute struct {
	name string
	fd   protoreflect.FieldDescriptor
}

// A child is where a child element goes in its parent's message.
type child struct {
	// The parent's field.
	fd protoreflect.FieldDescriptor
	// For a field of a choice message (Verb, Filler), the choice's member
	// the element sets; nil otherwise.
	member protoreflect.FieldDescriptor
}

const (
	rootName  = "Response"
	otherName = "other_attributes"
)

// untyped are the documented elements that have no message: Check takes
// them, Parse refuses them. Tone and Meta have pages with no content;
// Reject, Redirect, Switch and Case are the older engine's (its call-flow
// log's element names), and Sip is the older docs' <Dial> target.
var untyped = []string{"Tone", "Meta", "Reject", "Redirect", "Switch", "Case", "Sip"}

var tables = sync.OnceValue(func() *table {
	t := &table{shapes: map[protoreflect.FullName]*shape{}, known: map[string]bool{}, typed: map[string]bool{}}
	t.root = t.build((&callv1.CallFlow{}).ProtoReflect().Descriptor())
	for _, n := range untyped {
		t.known[n] = true
	}
	return t
})

type table struct {
	root   *shape
	shapes map[protoreflect.FullName]*shape
	// Every element name a flow may hold below its root, typed or not.
	known map[string]bool
	// The element names some message is written as.
	typed map[string]bool
}

func xmlOptions(fd protoreflect.FieldDescriptor) *callv1.XmlField {
	opts, ok := fd.Options().(*descriptorpb.FieldOptions)
	if !ok || opts == nil {
		return &callv1.XmlField{}
	}
	return proto.GetExtension(opts, callv1.E_Xml).(*callv1.XmlField)
}

// elementName is the name the element a message field holds is written as.
func elementName(fd protoreflect.FieldDescriptor) string {
	if n := xmlOptions(fd).GetName(); n != "" {
		return n
	}
	return string(fd.Message().Name())
}

// choice is the oneof of a message that is nothing but one oneof (Verb,
// Filler): such a message is no element of its own, each member is one.
func choice(md protoreflect.MessageDescriptor) protoreflect.OneofDescriptor {
	if md.Oneofs().Len() != 1 || md.Fields().Len() == 0 {
		return nil
	}
	o := md.Oneofs().Get(0)
	if o.IsSynthetic() || o.Fields().Len() != md.Fields().Len() {
		return nil
	}
	return o
}

// build reads a message's shape, and its children's. A proto that breaks
// the convention panics: TestShapes reads every one.
func (t *table) build(md protoreflect.MessageDescriptor) *shape {
	if s, ok := t.shapes[md.FullName()]; ok {
		return s
	}
	s := &shape{desc: md, byAttr: map[string]protoreflect.FieldDescriptor{}, children: map[string]child{}}
	t.shapes[md.FullName()] = s
	bad := func(fd protoreflect.FieldDescriptor, why string) {
		panic(fmt.Sprintf("callflow: %s: %s", fd.FullName(), why))
	}
	add := func(fd protoreflect.FieldDescriptor, c child, names ...string) {
		for _, n := range names {
			if _, dup := s.children[n]; dup {
				bad(fd, "a second child element <"+n+">")
			}
			s.children[n] = c
			t.known[n] = true
			t.typed[n] = true
		}
	}
	for i := 0; i < md.Fields().Len(); i++ {
		fd := md.Fields().Get(i)
		opts := xmlOptions(fd)
		switch {
		case fd.IsMap():
			if fd.Name() != otherName || fd.MapKey().Kind() != protoreflect.StringKind || fd.MapValue().Kind() != protoreflect.StringKind {
				bad(fd, "the one map is map<string, string> other_attributes")
			}
			s.other = fd
		case fd.Kind() == protoreflect.MessageKind:
			s.slots = append(s.slots, fd)
			if o := choice(fd.Message()); o != nil {
				for j := 0; j < o.Fields().Len(); j++ {
					m := o.Fields().Get(j)
					add(fd, child{fd: fd, member: m}, append([]string{elementName(m)}, xmlOptions(m).GetAlso()...)...)
					t.build(m.Message())
				}
			} else {
				add(fd, child{fd: fd}, append([]string{elementName(fd)}, opts.GetAlso()...)...)
				t.build(fd.Message())
			}
		case opts.GetText():
			if fd.Kind() != protoreflect.StringKind || fd.IsList() || s.text != nil {
				bad(fd, "the element's text is one string")
			}
			s.text = fd
		default:
			switch fd.Kind() {
			case protoreflect.StringKind, protoreflect.Uint32Kind, protoreflect.BoolKind:
			default:
				bad(fd, "an attribute is a string, a uint32 or a bool")
			}
			if fd.IsList() {
				bad(fd, "an attribute is not repeated")
			}
			name := string(fd.Name())
			if n := opts.GetName(); n != "" {
				name = n
			}
			if _, dup := s.byAttr[name]; dup {
				bad(fd, "a second attribute "+name)
			}
			s.attrs = append(s.attrs, attribute{name: name, fd: fd})
			s.byAttr[name] = fd
		}
	}
	if s.text != nil && len(s.slots) > 0 {
		panic(fmt.Sprintf("callflow: %s: an element with text has no child elements", md.FullName()))
	}
	return s
}
