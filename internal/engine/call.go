package engine

import (
	"bytes"
	"context"
	"errors"
	"net/url"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	apiv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/api/v1"
	"github.com/opentact-facade/opentact-facade/internal/codec"
	"github.com/opentact-facade/opentact-facade/internal/declare"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// otherFieldsNumber is the field number of a message's other_fields, the
// members of Opentact's object that no field models.
const otherFieldsNumber = 100

// wire is how a method's request becomes Opentact's: which fields fill
// the path, the query and the body.
type wire struct {
	path      []protoreflect.FieldDescriptor
	query     []protoreflect.FieldDescriptor
	body      declare.BodyKind
	inBody    map[protoreflect.FieldNumber]bool // BodyRest's fields
	bodyField protoreflect.FieldDescriptor      // BodyField's field
	multipart bool
	hide      hiding
}

func newWire(c *declare.Call) wire {
	w := wire{path: c.PathFields, query: c.Query, body: c.Body, multipart: c.Multipart, hide: newHiding(c.Method.Input())}
	switch c.Body {
	case declare.BodyRest:
		w.inBody = map[protoreflect.FieldNumber]bool{}
		for _, fd := range c.BodyFields {
			w.inBody[fd.Number()] = true
		}
	case declare.BodyField:
		w.bodyField = c.BodyFields[0]
	}
	return w
}

// request builds Opentact's request from m. Its error is InvalidArgument:
// a path value missing, or a field Opentact cannot be sent.
func (w *wire) request(m protoreflect.Message) (upstream.Request, error) {
	var r upstream.Request
	w.hide.collect(m, &r)
	if len(w.path) > 0 {
		r.Path = make([]string, 0, len(w.path))
		var missing []*errdetails.BadRequest_FieldViolation
		for _, fd := range w.path {
			v, ok := codec.Text(m, fd)
			if !ok || v == "" {
				missing = append(missing, &errdetails.BadRequest_FieldViolation{
					Field:       string(fd.Name()),
					Description: "is required: it names what the call acts on",
					Reason:      "required",
				})
				continue
			}
			r.Path = append(r.Path, v)
		}
		if len(missing) > 0 {
			return r, invalid(missing...)
		}
	}
	if len(w.query) > 0 {
		q := url.Values{}
		for _, fd := range w.query {
			if v, ok := codec.Text(m, fd); ok {
				q.Set(codec.Key(fd), v)
			}
		}
		r.Query = q.Encode()
	}
	var err error
	switch w.body {
	case declare.BodyRest:
		skip := func(fd protoreflect.FieldDescriptor) bool { return !w.inBody[fd.Number()] }
		if w.multipart {
			r.Body, r.ContentType, err = codec.Multipart(m, skip)
		} else {
			r.Body, err = codec.Encode(nil, m, skip)
		}
	case declare.BodyField:
		sub := m.Get(w.bodyField).Message()
		if w.multipart {
			r.Body, r.ContentType, err = codec.Multipart(sub, nil)
		} else {
			r.Body, err = codec.Encode(nil, sub, nil)
		}
	}
	if err != nil {
		return r, invalid(&errdetails.BadRequest_FieldViolation{Field: "body", Description: err.Error(), Reason: "encoding"})
	}
	return r, nil
}

// hiding is what a method's requests hold that Opentact's messages must
// not show: the string fields declared (opentact.api.v1.field).phone or
// .private, at any depth, and the message types that hold one.
type hiding struct {
	fields map[protoreflect.FieldDescriptor]*apiv1.Field
	holds  map[protoreflect.FullName]bool
}

func newHiding(md protoreflect.MessageDescriptor) hiding {
	h := hiding{fields: map[protoreflect.FieldDescriptor]*apiv1.Field{}, holds: map[protoreflect.FullName]bool{}}
	// Every message type reachable, and the ones each holds directly.
	children := map[protoreflect.FullName][]protoreflect.FullName{}
	var visit func(md protoreflect.MessageDescriptor)
	visit = func(md protoreflect.MessageDescriptor) {
		if _, seen := h.holds[md.FullName()]; seen {
			return
		}
		h.holds[md.FullName()] = false
		fields := md.Fields()
		for i := range fields.Len() {
			fd := fields.Get(i)
			value := fd
			if fd.IsMap() {
				value = fd.MapValue()
			}
			if sub := value.Message(); sub != nil {
				children[md.FullName()] = append(children[md.FullName()], sub.FullName())
				visit(sub)
				continue
			}
			o, _ := proto.GetExtension(fd.Options(), apiv1.E_Field).(*apiv1.Field)
			if fd.Kind() == protoreflect.StringKind && (o.GetPhone() || o.GetPrivate()) {
				h.fields[fd] = o
				h.holds[md.FullName()] = true
			}
		}
	}
	visit(md)
	// A type holds what any type it holds holds: to a fixed point, which
	// recursive types need.
	for changed := true; changed; {
		changed = false
		for name, subs := range children {
			if h.holds[name] {
				continue
			}
			for _, sub := range subs {
				if h.holds[sub] {
					h.holds[name], changed = true, true
					break
				}
			}
		}
	}
	return h
}

// collect adds the values of m's phone and private fields to r.
func (h hiding) collect(m protoreflect.Message, r *upstream.Request) {
	if !h.holds[m.Descriptor().FullName()] {
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			if sub := fd.MapValue().Message(); sub != nil && h.holds[sub.FullName()] {
				v.Map().Range(func(_ protoreflect.MapKey, e protoreflect.Value) bool {
					h.collect(e.Message(), r)
					return true
				})
			}
		case fd.Message() != nil:
			if !h.holds[fd.Message().FullName()] {
				break
			}
			if fd.IsList() {
				for i := range v.List().Len() {
					h.collect(v.List().Get(i).Message(), r)
				}
			} else {
				h.collect(v.Message(), r)
			}
		default:
			if o := h.fields[fd]; o != nil {
				if fd.IsList() {
					for i := range v.List().Len() {
						h.add(o, v.List().Get(i).String(), r)
					}
				} else {
					h.add(o, v.String(), r)
				}
			}
		}
		return true
	})
}

func (hiding) add(o *apiv1.Field, v string, r *upstream.Request) {
	if v == "" {
		return
	}
	if o.GetPrivate() {
		r.Private = append(r.Private, v)
	} else {
		r.Phones = append(r.Phones, v)
	}
}

// errNoPayload: an answer without the payload its method needs.
var errNoPayload = errors.New(`no "payload"`)

// send makes the call's request to Opentact and decodes its payload into
// a new response.
func (m *method) send(ctx context.Context, creds upstream.Credentials, r upstream.Request) (proto.Message, error) {
	var resp proto.Message
	err := upstream.Do(ctx, m.e.client, m.endpoint, creds, r, func(payload []byte) error {
		msg := m.response.New()
		if err := m.decode(payload, msg); err != nil {
			return err
		}
		resp = msg.Interface()
		return nil
	})
	return resp, err
}

// decode reads Opentact's payload into resp, or into the response field
// the declaration names. An answer may come without a payload, or with one
// that is no object, only where the payload would carry nothing but
// other_fields.
func (m *method) decode(payload []byte, resp protoreflect.Message) error {
	fd := m.decl.Payload
	if payload == nil {
		target := resp.Descriptor()
		if fd != nil {
			if fd.IsList() || fd.Message() == nil {
				return errNoPayload
			}
			target = fd.Message()
		}
		if !onlyOtherFields(target) {
			return errNoPayload
		}
		return nil
	}
	if fd == nil {
		if t := bytes.TrimLeft(payload, " \t\r\n"); len(t) > 0 && t[0] != '{' && onlyOtherFields(resp.Descriptor()) {
			// IResponse's payload is "any" (true, a message): an answer
			// that models nothing takes it as the success it is.
			return nil
		}
		return codec.Decode(payload, resp)
	}
	return codec.DecodeField(payload, resp, fd)
}

// onlyOtherFields reports whether md has no field but other_fields.
func onlyOtherFields(md protoreflect.MessageDescriptor) bool {
	fields := md.Fields()
	for i := range fields.Len() {
		if fields.Get(i).Number() != otherFieldsNumber {
			return false
		}
	}
	return true
}
