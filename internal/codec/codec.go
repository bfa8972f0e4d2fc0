// Package codec reads Opentact's JSON into proto messages and writes proto
// messages as Opentact's JSON, by the messages' descriptors: one set of
// rules per field kind serves every message, generated or dynamic.
//
// Answers are read leniently: a JSON null, an absent member, or a value
// of a type the field cannot hold leaves the field unset and never fails
// the answer; what no field models is kept, as JSON text, in the message's
// other_fields (field number 100, map<string, string>); a member named as
// in DroppedNames is never read, at any depth. Requests are written with
// only the fields set, numbers as JSON numbers.
//
// A field's JSON key is its proto name unless its
// (opentact.api.v1.field).key option says otherwise; an enum value is
// spelled as its (opentact.api.v1.value).name option says, or as its name
// less the enum's prefix, in lower case.
package codec

import (
	"fmt"
	"strings"
	"sync"
	"unicode"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	apiv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/api/v1"
)

// DroppedNames are the member names that are never read from an answer,
// at any depth and in any letter case: Opentact's user schema lists a
// password, and its SIP users carry HA1 digests.
var DroppedNames = []string{"password", "ha1", "ha1b"}

// dropped reports whether name is one of DroppedNames in any case.
func dropped(name []byte) bool {
	// Unicode folding lets "ſ" (2 bytes) stand for "s", so a dropped name
	// is 3 to 12 bytes long; most names are not and need no folding.
	if len(name) < 3 || len(name) > 12 {
		return false
	}
	for _, d := range DroppedNames {
		if strings.EqualFold(string(name), d) {
			return true
		}
	}
	return false
}

// OtherFieldsNumber is the field number of a message's other_fields: the
// members of Opentact's object that no field models, by name, as JSON text.
const OtherFieldsNumber = 100

// Key is Opentact's JSON key of fd: its (opentact.api.v1.field).key, else
// its proto name.
func Key(fd protoreflect.FieldDescriptor) string {
	if k := fieldOption(fd).GetKey(); k != "" {
		return k
	}
	return string(fd.Name())
}

func fieldOption(fd protoreflect.FieldDescriptor) *apiv1.Field {
	opts := fd.Options()
	if opts == nil || !proto.HasExtension(opts, apiv1.E_Field) {
		return nil
	}
	f, _ := proto.GetExtension(opts, apiv1.E_Field).(*apiv1.Field)
	return f
}

// isOtherFields reports whether fd is the other_fields convention.
func isOtherFields(fd protoreflect.FieldDescriptor) bool {
	return fd.Number() == OtherFieldsNumber && fd.Name() == "other_fields" && fd.IsMap() &&
		fd.MapKey().Kind() == protoreflect.StringKind && fd.MapValue().Kind() == protoreflect.StringKind
}

// kind is how one value travels: a field's, a list element's or a map
// value's.
type kind uint8

const (
	kString kind = iota
	kDecimal
	kBool
	kInt32
	kInt64
	kUint32
	kUint64
	kFloat
	kDouble
	kEnum
	kBytes
	kTimestamp
	kMessage
)

// field is what the codec needs to know of one field, worked out once.
type field struct {
	fd     protoreflect.FieldDescriptor
	key    string
	kind   kind              // of the value: a list's element, a map's value
	pkind  protoreflect.Kind // the same, as protobuf's wire has it
	list   bool
	isMap  bool
	mapKey protoreflect.Kind
	number bool // a string of digits sent as a JSON number
	// reference: a message Opentact may send as its uuid alone.
	reference bool
	// file: text sent as a file part of a multipart body.
	file bool
	// clear: a single text field whose empty value is sent as null.
	clear bool
	msg   *plan      // for kMessage
	enum  *enumNames // for kEnum
	tag   []byte     // the field's tag on the wire, with its value's wire type
}

// plan is a message's fields by key, worked out once per descriptor.
type plan struct {
	byKey  map[string]*field
	fields []*field // in field number order
	other  protoreflect.FieldDescriptor
	err    error // the message cannot be coded: two fields share a key
}

// plans caches a plan per message descriptor. Descriptors, not full
// names, are the keys: two dynamic descriptors may share a name.
var plans sync.Map // protoreflect.MessageDescriptor → *plan

func planOf(md protoreflect.MessageDescriptor) *plan {
	if p, ok := plans.Load(md); ok {
		return p.(*plan)
	}
	building := map[protoreflect.MessageDescriptor]*plan{}
	p := buildPlan(md, building)
	// A message cannot be coded when one it holds cannot.
	for changed := true; changed; {
		changed = false
		for _, q := range building {
			for _, f := range q.fields {
				if f.msg != nil && f.msg.err != nil && q.err == nil {
					q.err, changed = f.msg.err, true
				}
			}
		}
	}
	for d, q := range building {
		plans.LoadOrStore(d, q)
	}
	return p
}

func buildPlan(md protoreflect.MessageDescriptor, building map[protoreflect.MessageDescriptor]*plan) *plan {
	if p, ok := building[md]; ok {
		return p
	}
	if p, ok := plans.Load(md); ok {
		return p.(*plan)
	}
	p := &plan{byKey: map[string]*field{}}
	building[md] = p
	fds := md.Fields()
	for i := range fds.Len() {
		fd := fds.Get(i)
		if isOtherFields(fd) {
			p.other = fd
			continue
		}
		f := &field{fd: fd, key: Key(fd), list: fd.IsList(), isMap: fd.IsMap()}
		opt := fieldOption(fd)
		vd := fd
		if f.isMap {
			f.mapKey = fd.MapKey().Kind()
			vd = fd.MapValue()
		}
		f.kind, f.pkind = kindOf(vd, opt), vd.Kind()
		f.number = opt.GetNumber() && vd.Kind() == protoreflect.StringKind
		f.reference = opt.GetReference() && vd.Kind() == protoreflect.MessageKind
		f.file = opt.GetFile() && vd.Kind() == protoreflect.StringKind
		f.clear = opt.GetClear() && vd.Kind() == protoreflect.StringKind && !f.list && !f.isMap
		typ := wireType(vd.Kind())
		if f.isMap {
			typ = protowire.BytesType
		}
		f.tag = protowire.AppendTag(nil, fd.Number(), typ)
		switch f.kind {
		case kMessage:
			f.msg = buildPlan(vd.Message(), building)
		case kEnum:
			f.enum = enumOf(vd.Enum())
		}
		p.fields = append(p.fields, f)
		if dropped([]byte(f.key)) {
			continue // never read; still written when set
		}
		if g, dup := p.byKey[f.key]; dup && p.err == nil {
			p.err = fmt.Errorf("codec: %s: fields %s and %s share the key %q", md.FullName(), g.fd.Name(), fd.Name(), f.key)
		}
		p.byKey[f.key] = f
	}
	sortByNumber(p.fields)
	return p
}

func sortByNumber(fs []*field) {
	for i := 1; i < len(fs); i++ {
		for j := i; j > 0 && fs[j].fd.Number() < fs[j-1].fd.Number(); j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
}

func kindOf(fd protoreflect.FieldDescriptor, opt *apiv1.Field) kind {
	switch fd.Kind() {
	case protoreflect.StringKind:
		if opt.GetDecimal() {
			return kDecimal
		}
		return kString
	case protoreflect.BoolKind:
		return kBool
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return kInt32
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return kInt64
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return kUint32
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return kUint64
	case protoreflect.FloatKind:
		return kFloat
	case protoreflect.DoubleKind:
		return kDouble
	case protoreflect.EnumKind:
		return kEnum
	case protoreflect.BytesKind:
		return kBytes
	}
	if fd.Message().FullName() == "google.protobuf.Timestamp" {
		return kTimestamp
	}
	return kMessage
}

// wireType is how protobuf's wire holds a value of kind k.
func wireType(k protoreflect.Kind) protowire.Type {
	switch k {
	case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.MessageKind:
		return protowire.BytesType
	case protoreflect.GroupKind:
		return protowire.StartGroupType
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
		return protowire.Fixed32Type
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
		return protowire.Fixed64Type
	}
	return protowire.VarintType
}

// enumNames spells an enum's values as Opentact does. The zero value is
// "unset" both ways and has no spelling.
type enumNames struct {
	byName   map[string]protoreflect.EnumNumber
	byNumber map[protoreflect.EnumNumber]string
}

func enumOf(ed protoreflect.EnumDescriptor) *enumNames {
	e := &enumNames{byName: map[string]protoreflect.EnumNumber{}, byNumber: map[protoreflect.EnumNumber]string{}}
	prefix := upperSnake(string(ed.Name())) + "_"
	vals := ed.Values()
	for i := range vals.Len() {
		v := vals.Get(i)
		if v.Number() == 0 {
			continue
		}
		name := enumValueName(v, prefix)
		if _, seen := e.byNumber[v.Number()]; !seen { // an alias keeps the first spelling
			e.byNumber[v.Number()] = name
		}
		if _, seen := e.byName[name]; !seen {
			e.byName[name] = v.Number()
		}
	}
	return e
}

func enumValueName(v protoreflect.EnumValueDescriptor, prefix string) string {
	if opts := v.Options(); opts != nil && proto.HasExtension(opts, apiv1.E_Value) {
		if o, _ := proto.GetExtension(opts, apiv1.E_Value).(*apiv1.EnumValue); o.GetName() != "" {
			return o.GetName()
		}
	}
	return strings.ToLower(strings.TrimPrefix(string(v.Name()), prefix))
}

// upperSnake spells an enum's name as the prefix of its values, as buf's
// ENUM_VALUE_PREFIX rule does: "SIPTrunkType" is "SIP_TRUNK_TYPE".
func upperSnake(s string) string {
	r := []rune(s)
	var b strings.Builder
	for i, c := range r {
		if i > 0 && unicode.IsUpper(c) {
			prev := r[i-1]
			nextLower := i+1 < len(r) && unicode.IsLower(r[i+1])
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || unicode.IsUpper(prev) && nextLower {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToUpper(c))
	}
	return b.String()
}
