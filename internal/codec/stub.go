// Package codec: TEMPORARY STUB until the real codec lands (not committed).
package codec

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

func Decode(b []byte, m protoreflect.Message) error {
	return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(b, m.Interface())
}

func DecodeField(b []byte, m protoreflect.Message, fd protoreflect.FieldDescriptor) error {
	return Decode([]byte(`{"`+string(fd.Name())+`":`+string(b)+`}`), m)
}

func Encode(dst []byte, m protoreflect.Message, skip func(protoreflect.FieldDescriptor) bool) ([]byte, error) {
	c := proto.Clone(m.Interface())
	cm := c.ProtoReflect()
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if skip != nil && skip(fd) {
			cm.Clear(fd)
		}
		return true
	})
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(c)
	return append(dst, b...), err
}

func Text(m protoreflect.Message, fd protoreflect.FieldDescriptor) (string, bool) {
	if !m.Has(fd) {
		return "", false
	}
	return fmt.Sprint(m.Get(fd).Interface()), true
}

func Multipart(m protoreflect.Message, skip func(protoreflect.FieldDescriptor) bool) ([]byte, string, error) {
	return nil, "", errors.New("stub")
}

func Key(fd protoreflect.FieldDescriptor) string { return string(fd.Name()) }
var DroppedNames = []string{"password", "ha1", "ha1b"}
