package declare_test

import (
	"net/http"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	apiv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/api/v1"
	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/declare"
)

// method builds a service of one method, Do(Req) returns (Resp), whose
// request has a string "uuid", an int32 "take", and a message "item"; the
// response has a message "item" and a list "data". up is its upstream
// option (nil for none).
func method(t *testing.T, up *apiv1.Upstream, level descriptorpb.MethodOptions_IdempotencyLevel) protoreflect.MethodDescriptor {
	t.Helper()
	return build(t, up, level, nil, nil)
}

// build is method with more request and response fields.
func build(t *testing.T, up *apiv1.Upstream, level descriptorpb.MethodOptions_IdempotencyLevel, req, resp []*descriptorpb.FieldDescriptorProto) protoreflect.MethodDescriptor {
	t.Helper()
	opts := &descriptorpb.MethodOptions{}
	if level != descriptorpb.MethodOptions_IDEMPOTENCY_UNKNOWN {
		opts.IdempotencyLevel = level.Enum()
	}
	if up != nil {
		proto.SetExtension(opts, apiv1.E_Upstream, up)
	}
	field := func(name string, n int32, typ descriptorpb.FieldDescriptorProto_Type, label descriptorpb.FieldDescriptorProto_Label, msg string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(n), Type: typ.Enum(), Label: label.Enum()}
		if msg != "" {
			f.TypeName = proto.String(msg)
		}
		return f
	}
	opt, rep := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL, descriptorpb.FieldDescriptorProto_LABEL_REPEATED
	str, i32, msg := descriptorpb.FieldDescriptorProto_TYPE_STRING, descriptorpb.FieldDescriptorProto_TYPE_INT32, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE
	fdp := &descriptorpb.FileDescriptorProto{
		Name:       proto.String("test/" + strings.ReplaceAll(t.Name(), "/", "_") + ".proto"),
		Package:    proto.String("test"),
		Syntax:     proto.String("proto3"),
		Dependency: []string{"opentact/api/v1/upstream.proto"},
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("Item"), Field: []*descriptorpb.FieldDescriptorProto{field("name", 1, str, opt, "")}},
			{Name: proto.String("Req"), Field: append([]*descriptorpb.FieldDescriptorProto{
				field("uuid", 1, str, opt, ""), field("take", 2, i32, opt, ""), field("item", 3, msg, opt, ".test.Item"),
			}, req...)},
			{Name: proto.String("Resp"), Field: append([]*descriptorpb.FieldDescriptorProto{
				field("item", 1, msg, opt, ".test.Item"), field("data", 2, msg, rep, ".test.Item"),
			}, resp...)},
		},
		Service: []*descriptorpb.ServiceDescriptorProto{{
			Name: proto.String("Svc"),
			Method: []*descriptorpb.MethodDescriptorProto{{
				Name: proto.String("Do"), InputType: proto.String(".test.Req"), OutputType: proto.String(".test.Resp"), Options: opts,
			}},
		}},
	}
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatal(err)
	}
	return fd.Services().Get(0).Methods().Get(0)
}

func TestMethodReadsADeclaration(t *testing.T) {
	t.Parallel()
	md := method(t, &apiv1.Upstream{
		Pattern: &apiv1.Upstream_Post{Post: "/rest/x/{uuid}/search"},
		Query:   []string{"take"},
		Body:    "*",
		Payload: "data",
		Name:    "x.search",
		Cache:   true,
	}, descriptorpb.MethodOptions_NO_SIDE_EFFECTS)
	c, err := declare.Method(md)
	if err != nil {
		t.Fatal(err)
	}
	if c.FullMethod != "/test.Svc/Do" || c.Name != "x.search" || c.Kind != declare.Read || !c.Cache ||
		c.HTTPMethod != http.MethodPost || c.Path != "/rest/x/{uuid}/search" {
		t.Errorf("declaration %+v", c)
	}
	if len(c.PathFields) != 1 || c.PathFields[0].Name() != "uuid" || len(c.Query) != 1 || c.Query[0].Name() != "take" {
		t.Errorf("path %v, query %v", c.PathFields, c.Query)
	}
	if c.Body != declare.BodyRest || len(c.BodyFields) != 1 || c.BodyFields[0].Name() != "item" {
		t.Errorf("body %v %v, want the rest: item", c.Body, c.BodyFields)
	}
	if c.Payload == nil || c.Payload.Name() != "data" {
		t.Errorf("payload %v, want data", c.Payload)
	}
}

func TestKindsFollowIdempotencyLevel(t *testing.T) {
	t.Parallel()
	for level, want := range map[descriptorpb.MethodOptions_IdempotencyLevel]declare.Kind{
		descriptorpb.MethodOptions_IDEMPOTENCY_UNKNOWN: declare.Write,
		descriptorpb.MethodOptions_IDEMPOTENT:          declare.Idempotent,
		descriptorpb.MethodOptions_NO_SIDE_EFFECTS:     declare.Read,
	} {
		t.Run(level.String(), func(t *testing.T) {
			md := method(t, &apiv1.Upstream{Pattern: &apiv1.Upstream_Delete{Delete: "/rest/x/{uuid}"}, Query: []string{"take"}, Body: "", Name: "x.delete"}, level)
			_, err := declare.Method(md)
			if err == nil || !strings.Contains(err.Error(), "item") {
				t.Fatalf("a request field sent nowhere: %v", err)
			}
			md = method(t, &apiv1.Upstream{Pattern: &apiv1.Upstream_Patch{Patch: "/rest/x/{uuid}"}, Query: []string{"take"}, Body: "item", Name: "x.update"}, level)
			c, err := declare.Method(md)
			if err != nil {
				t.Fatal(err)
			}
			if c.Kind != want {
				t.Errorf("kind %v, want %v", c.Kind, want)
			}
		})
	}
}

// TestDeclarationsThatLackAPieceFail: each declaration the engine could
// not serve is refused, naming what is wrong.
func TestDeclarationsThatLackAPieceFail(t *testing.T) {
	t.Parallel()
	post := func(path string) *apiv1.Upstream_Post { return &apiv1.Upstream_Post{Post: path} }
	for _, tc := range []struct {
		name  string
		up    *apiv1.Upstream
		level descriptorpb.MethodOptions_IdempotencyLevel
		want  string
	}{
		{"no option", nil, 0, "no (opentact.api.v1.upstream) option"},
		{"no path", &apiv1.Upstream{Name: "x.y", Body: "*"}, 0, "no HTTP method"},
		{"no name", &apiv1.Upstream{Pattern: post("/rest/x"), Body: "*"}, 0, "name"},
		{"a name in capitals", &apiv1.Upstream{Pattern: post("/rest/x"), Body: "*", Name: "X.Create"}, 0, "name"},
		{"a relative path", &apiv1.Upstream{Pattern: post("rest/x"), Body: "*", Name: "x.y"}, 0, "must start with /"},
		{"a query in the path", &apiv1.Upstream{Pattern: post("/rest/x?a=1"), Body: "*", Name: "x.y"}, 0, "query"},
		{"a dot segment", &apiv1.Upstream{Pattern: post("/rest/../x"), Body: "*", Name: "x.y"}, 0, "segment"},
		{"a parameter inside a segment", &apiv1.Upstream{Pattern: post("/rest/x-{uuid}"), Body: "*", Name: "x.y"}, 0, "whole segment"},
		{"an unknown path parameter", &apiv1.Upstream{Pattern: post("/rest/{id}"), Body: "*", Name: "x.y"}, 0, "{id}"},
		{"a message in the path", &apiv1.Upstream{Pattern: post("/rest/{item}"), Body: "*", Name: "x.y"}, 0, "scalar"},
		{"an unknown query field", &apiv1.Upstream{Pattern: post("/rest/x"), Query: []string{"skip"}, Body: "*", Name: "x.y"}, 0, `"skip"`},
		{"a field in the path and the query", &apiv1.Upstream{Pattern: post("/rest/{uuid}"), Query: []string{"uuid"}, Body: "*", Name: "x.y"}, 0, "both"},
		{"a body field that is not a message", &apiv1.Upstream{Pattern: post("/rest/x"), Body: "take", Name: "x.y"}, 0, "message field"},
		{"a GET with a body", &apiv1.Upstream{Pattern: &apiv1.Upstream_Get{Get: "/rest/x"}, Body: "*", Name: "x.y"}, descriptorpb.MethodOptions_NO_SIDE_EFFECTS, "no body"},
		{"a field sent nowhere", &apiv1.Upstream{Pattern: post("/rest/{uuid}"), Query: []string{"take"}, Name: "x.y"}, 0, "item"},
		{"an unknown payload", &apiv1.Upstream{Pattern: post("/rest/x"), Body: "*", Payload: "nope", Name: "x.y"}, 0, `"nope"`},
		{"a cached write", &apiv1.Upstream{Pattern: post("/rest/x"), Body: "*", Name: "x.y", Cache: true}, 0, "only reads"},
		{"a secret that is not in the path", &apiv1.Upstream{Pattern: post("/rest/x"), Body: "*", Name: "x.y", SecretPath: []string{"uuid"}}, 0, "secret_path"},
		{"multipart without a body", &apiv1.Upstream{Pattern: post("/rest/{uuid}"), Query: []string{"take"}, Name: "x.y", Multipart: true}, 0, "multipart"},
		{"a good declaration", &apiv1.Upstream{Pattern: post("/rest/{uuid}"), Query: []string{"take"}, Body: "item", Name: "x.y", Multipart: true}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := declare.Method(method(t, tc.up, tc.level))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("a good declaration was refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

// TestTheFacadesDeclarations: every method of the auth protos is declared,
// with the paths and kinds Opentact's calls have.
func TestTheFacadesDeclarations(t *testing.T) {
	t.Parallel()
	var got []string
	for _, sd := range []protoreflect.ServiceDescriptor{
		authv1.File_opentact_auth_v1_auth_proto.Services().Get(0),
		authv1.File_opentact_auth_v1_token_proto.Services().Get(0),
	} {
		calls, err := declare.Methods(sd)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range calls {
			got = append(got, c.Name+" "+c.Kind.String()+" "+c.HTTPMethod+" "+c.Path+" "+c.REST.Method+" "+c.REST.Pattern)
		}
	}
	want := []string{
		"auth read GET /rest/auth GET /v1/auth",
		"token.create write POST /rest/token POST /v1/tokens",
		"token.list read GET /rest/token/list GET /v1/tokens",
		"token.update idempotent PATCH /rest/token/{uuid} PATCH /v1/tokens/{uuid}",
		"token.delete idempotent DELETE /rest/token/{token} POST /v1/tokens:delete",
		"token.delete_all idempotent DELETE /rest/token/all DELETE /v1/tokens",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("declarations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestPagedSearchesShareOneShape: a request with take and skip (or page
// and size) must answer take, skip, total and data.
func TestPagedSearchesShareOneShape(t *testing.T) {
	t.Parallel()
	i32 := func(name string, n int32) *descriptorpb.FieldDescriptorProto {
		return &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(n),
			Type: descriptorpb.FieldDescriptorProto_TYPE_INT32.Enum(), Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()}
	}
	up := &apiv1.Upstream{Pattern: &apiv1.Upstream_Post{Post: "/rest/x/search"}, Query: []string{"take", "skip"}, Body: "*", Name: "x.search"}
	read := descriptorpb.MethodOptions_NO_SIDE_EFFECTS
	if _, err := declare.Method(build(t, up, read, []*descriptorpb.FieldDescriptorProto{i32("skip", 4)}, nil)); err == nil || !strings.Contains(err.Error(), "paged search") {
		t.Errorf("a search answering no take, skip and total: %v, want refused", err)
	}
	paged := []*descriptorpb.FieldDescriptorProto{i32("take", 3), i32("skip", 4), i32("total", 5)}
	if _, err := declare.Method(build(t, up, read, []*descriptorpb.FieldDescriptorProto{i32("skip", 4)}, paged)); err != nil {
		t.Errorf("a search answering the paged shape: %v", err)
	}
	up = &apiv1.Upstream{Pattern: &apiv1.Upstream_Post{Post: "/rest/x/search"}, Query: []string{"page", "size"}, Body: "*", Name: "x.search"}
	if _, err := declare.Method(build(t, up, read, []*descriptorpb.FieldDescriptorProto{i32("page", 4), i32("size", 5)}, nil)); err == nil {
		t.Error("a search by page and size answering no take, skip and total was taken")
	}
}
