package codec_test

import (
	"sync"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	_ "github.com/opentact-facade/opentact-facade/gen/go/opentact/api/v1" // the options in kindsProto
	_ "google.golang.org/protobuf/types/known/timestamppb"
)

// kindsProto has a field of every kind the codec reads and writes, with
// the options of opentact.api.v1, for kinds the API's messages do not
// have yet. It is built here, with dynamicpb, so that no test message
// ships in a binary. Edition 2023 gives each field explicit presence
// without proto3's synthetic oneofs; plain has implicit presence.
const kindsProto = `
name: "codectest/kinds.proto"
package: "codectest"
dependency: ["google/protobuf/timestamp.proto", "opentact/api/v1/upstream.proto"]
syntax: "editions"
edition: EDITION_2023
enum_type {
  name: "CallDirection"
  value { name: "CALL_DIRECTION_UNSPECIFIED" number: 0 }
  value { name: "CALL_DIRECTION_INBOUND" number: 1 }
  value { name: "CALL_DIRECTION_OUTBOUND" number: 2 options { [opentact.api.v1.value] { name: "out-bound" } } }
}
enum_type {
  name: "SIPTrunkType"
  value { name: "SIP_TRUNK_TYPE_UNSPECIFIED" number: 0 }
  value { name: "SIP_TRUNK_TYPE_BYOC" number: 1 }
  value { name: "ELASTIC_SIP" number: 2 }
}
message_type {
  name: "Kinds"
  field { name: "s" number: 1 type: TYPE_STRING }
  field { name: "plain" number: 2 type: TYPE_STRING options { features { field_presence: IMPLICIT } } }
  field { name: "b" number: 3 type: TYPE_BOOL }
  field { name: "i32" number: 4 type: TYPE_INT32 }
  field { name: "i64" number: 5 type: TYPE_INT64 }
  field { name: "u32" number: 6 type: TYPE_UINT32 }
  field { name: "u64" number: 7 type: TYPE_UINT64 }
  field { name: "s32" number: 8 type: TYPE_SINT32 }
  field { name: "s64" number: 9 type: TYPE_SINT64 }
  field { name: "sf32" number: 10 type: TYPE_SFIXED32 }
  field { name: "sf64" number: 11 type: TYPE_SFIXED64 }
  field { name: "f32" number: 12 type: TYPE_FIXED32 }
  field { name: "f64" number: 13 type: TYPE_FIXED64 }
  field { name: "fl" number: 14 type: TYPE_FLOAT }
  field { name: "db" number: 15 type: TYPE_DOUBLE }
  field { name: "dir" number: 16 type: TYPE_ENUM type_name: ".codectest.CallDirection" }
  field { name: "data" number: 17 type: TYPE_BYTES }
  field { name: "at" number: 18 type: TYPE_MESSAGE type_name: ".google.protobuf.Timestamp" }
  field { name: "money" number: 19 type: TYPE_STRING options { [opentact.api.v1.field] { decimal: true } } }
  field { name: "tn" number: 20 type: TYPE_STRING options { [opentact.api.v1.field] { number: true } } }
  field { name: "rate_center" number: 21 type: TYPE_STRING options { [opentact.api.v1.field] { key: "rateCenter" } } }
  field { name: "child" number: 22 type: TYPE_MESSAGE type_name: ".codectest.Kinds" }
  field { name: "children" number: 23 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: ".codectest.Kinds" }
  field { name: "tags" number: 24 label: LABEL_REPEATED type: TYPE_STRING }
  field { name: "ids" number: 25 label: LABEL_REPEATED type: TYPE_INT64 }
  field { name: "dirs" number: 26 label: LABEL_REPEATED type: TYPE_ENUM type_name: ".codectest.CallDirection" }
  field { name: "labels" number: 27 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: ".codectest.Kinds.LabelsEntry" }
  field { name: "named" number: 28 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: ".codectest.Kinds.NamedEntry" }
  field { name: "flags" number: 29 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: ".codectest.Kinds.FlagsEntry" }
  field { name: "times" number: 30 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: ".google.protobuf.Timestamp" }
  field { name: "password" number: 31 type: TYPE_STRING }
  field { name: "numbers" number: 32 label: LABEL_REPEATED type: TYPE_STRING options { [opentact.api.v1.field] { number: true } } }
  field { name: "trunk" number: 33 type: TYPE_ENUM type_name: ".codectest.SIPTrunkType" }
  field { name: "other_fields" number: 100 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: ".codectest.Kinds.OtherFieldsEntry" }
  nested_type {
    name: "LabelsEntry"
    field { name: "key" number: 1 type: TYPE_STRING }
    field { name: "value" number: 2 type: TYPE_STRING }
    options { map_entry: true }
  }
  nested_type {
    name: "NamedEntry"
    field { name: "key" number: 1 type: TYPE_STRING }
    field { name: "value" number: 2 type: TYPE_MESSAGE type_name: ".codectest.Kinds" }
    options { map_entry: true }
  }
  nested_type {
    name: "FlagsEntry"
    field { name: "key" number: 1 type: TYPE_INT32 }
    field { name: "value" number: 2 type: TYPE_BOOL }
    options { map_entry: true }
  }
  nested_type {
    name: "OtherFieldsEntry"
    field { name: "key" number: 1 type: TYPE_STRING }
    field { name: "value" number: 2 type: TYPE_STRING }
    options { map_entry: true }
  }
}
message_type {
  name: "Bare"
  field { name: "s" number: 1 type: TYPE_STRING }
}
message_type {
  name: "HoldsClash"
  field { name: "c" number: 1 type: TYPE_MESSAGE type_name: ".codectest.Clash" }
}
message_type {
  name: "Required"
  field { name: "r" number: 1 type: TYPE_STRING options { features { field_presence: LEGACY_REQUIRED } } }
  field { name: "s" number: 2 type: TYPE_STRING }
}
message_type {
  name: "Delimited"
  field { name: "g" number: 1 type: TYPE_MESSAGE type_name: ".codectest.Delimited" options { features { message_encoding: DELIMITED } } }
  field { name: "gs" number: 2 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: ".codectest.Delimited" options { features { message_encoding: DELIMITED } } }
  field { name: "s" number: 3 type: TYPE_STRING }
}
message_type {
  name: "Clearable"
  field { name: "ref" number: 1 type: TYPE_STRING options { [opentact.api.v1.field] { clear: true } } }
  field { name: "name" number: 2 type: TYPE_STRING }
}
message_type {
  name: "Upload"
  field { name: "id" number: 1 type: TYPE_STRING }
  field { name: "xml" number: 2 type: TYPE_STRING options { [opentact.api.v1.field] { key: "file" file: true } } }
}
message_type {
  name: "Ref"
  field { name: "uuid" number: 1 type: TYPE_STRING }
  field { name: "name" number: 2 type: TYPE_STRING }
}
message_type {
  name: "Product"
  field { name: "id" number: 1 type: TYPE_INT64 }
  field { name: "name" number: 2 type: TYPE_STRING }
}
message_type {
  name: "Refs"
  field { name: "product" number: 5 type: TYPE_MESSAGE type_name: ".codectest.Product" options { [opentact.api.v1.field] { reference: true } } }
  field { name: "products" number: 6 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: ".codectest.Product" options { [opentact.api.v1.field] { reference: true } } }
  field { name: "ref" number: 1 type: TYPE_MESSAGE type_name: ".codectest.Ref" options { [opentact.api.v1.field] { reference: true } } }
  field { name: "refs" number: 2 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: ".codectest.Ref" options { [opentact.api.v1.field] { reference: true } } }
  field { name: "plain" number: 3 type: TYPE_MESSAGE type_name: ".codectest.Ref" }
  field { name: "plains" number: 4 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: ".codectest.Ref" }
}
message_type {
  name: "Clash"
  field { name: "a" number: 1 type: TYPE_STRING options { [opentact.api.v1.field] { key: "b" } } }
  field { name: "b" number: 2 type: TYPE_STRING }
}
`

var kindsFile = sync.OnceValues(func() (protoreflect.FileDescriptor, error) {
	var fdp descriptorpb.FileDescriptorProto
	if err := prototext.Unmarshal([]byte(kindsProto), &fdp); err != nil {
		return nil, err
	}
	return protodesc.NewFile(&fdp, protoregistry.GlobalFiles)
})

// newTest is a new, empty dynamic message of kindsProto.
func newTest(t testing.TB, name protoreflect.Name) *dynamicpb.Message {
	t.Helper()
	fd, err := kindsFile()
	if err != nil {
		t.Fatalf("building %s: %v", "codectest/kinds.proto", err)
	}
	md := fd.Messages().ByName(name)
	if md == nil {
		t.Fatalf("no message %s", name)
	}
	return dynamicpb.NewMessage(md)
}

// parseTest is the message of kindsProto that text (prototext) says.
func parseTest(t testing.TB, name protoreflect.Name, text string) *dynamicpb.Message {
	t.Helper()
	m := newTest(t, name)
	if err := (prototext.UnmarshalOptions{AllowPartial: true}).Unmarshal([]byte(text), m); err != nil {
		t.Fatalf("test data %q: %v", text, err)
	}
	return m
}

// fieldOf is the field of m named name.
func fieldOf(t testing.TB, m proto.Message, name protoreflect.Name) protoreflect.FieldDescriptor {
	t.Helper()
	fd := m.ProtoReflect().Descriptor().Fields().ByName(name)
	if fd == nil {
		t.Fatalf("%s has no field %s", m.ProtoReflect().Descriptor().FullName(), name)
	}
	return fd
}

func protoName(s string) protoreflect.Name { return protoreflect.Name(s) }
