package main

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/opentact-facade/opentact-facade/service"
)

// servedMethods is every method of service.Services, as its descriptor
// says: "package.Service/Method  kind  REST route", sorted.
func servedMethods(t *testing.T) []string {
	t.Helper()
	var lines []string
	for _, s := range service.Services {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(s.Name)
		if err != nil {
			t.Fatal(err)
		}
		methods := d.(protoreflect.ServiceDescriptor).Methods()
		for i := range methods.Len() {
			md := methods.Get(i)
			opts := md.Options().(*descriptorpb.MethodOptions)
			kind := map[descriptorpb.MethodOptions_IdempotencyLevel]string{
				descriptorpb.MethodOptions_NO_SIDE_EFFECTS: "read",
				descriptorpb.MethodOptions_IDEMPOTENT:      "idempotent",
			}[opts.GetIdempotencyLevel()]
			if kind == "" {
				kind = "write"
			}
			route := "-"
			if rule, ok := proto.GetExtension(opts, annotations.E_Http).(*annotations.HttpRule); ok && rule != nil {
				for verb, path := range map[string]string{"GET": rule.GetGet(), "POST": rule.GetPost(), "PUT": rule.GetPut(), "PATCH": rule.GetPatch(), "DELETE": rule.GetDelete()} {
					if path != "" {
						route = verb + " " + path
					}
				}
			}
			lines = append(lines, string(s.Name)+"/"+string(md.Name())+" "+kind+" "+route)
		}
	}
	slices.Sort(lines)
	return lines
}

// TestMethodsListsEveryServedMethod: methods prints one line per method
// of service.Services, from the descriptors, so a new service is listed
// with no change here.
func TestMethodsListsEveryServedMethod(t *testing.T) {
	t.Parallel()
	want := servedMethods(t)
	if len(want) < 6 {
		t.Fatalf("the descriptors give %d methods: %q", len(want), want)
	}
	r := cli(t, nil, "", "methods")
	r.wantCode(t, exitOK)
	if r.stderr != "" {
		t.Errorf("stderr: %s", r.stderr)
	}
	var got []string
	for line := range strings.Lines(r.stdout) {
		got = append(got, strings.Join(strings.Fields(line), " "))
	}
	if !slices.Equal(got, want) {
		t.Errorf("methods printed\n%s\nwant (spacing aside)\n%s", r.stdout, strings.Join(want, "\n"))
	}
	if !regexp.MustCompile(`(?m)^opentact\.auth\.v1\.TokenService/CreateToken  +write  +POST /v1/tokens$`).MatchString(r.stdout) {
		t.Errorf("no CreateToken line in the documented form:\n%s", r.stdout)
	}

	r = cli(t, nil, "", "methods", "--json")
	r.wantCode(t, exitOK)
	var entries []methodEntry
	if err := json.Unmarshal([]byte(r.stdout), &entries); err != nil {
		t.Fatalf("methods --json: %v\n%s", err, r.stdout)
	}
	got = got[:0]
	for _, e := range entries {
		route := "-"
		if e.REST != nil {
			route = e.REST.Method + " " + e.REST.Path
		}
		got = append(got, e.Method+" "+e.Kind+" "+route)
		if !strings.HasSuffix(e.Request, "Request") || !strings.HasSuffix(e.Response, "Response") {
			t.Errorf("%s: request %q, response %q", e.Method, e.Request, e.Response)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("methods --json printed %s", r.stdout)
	}

	for _, args := range [][]string{{"methods", "extra"}, {"methods", "--bogus"}} {
		if r := cli(t, nil, "", args...); r.code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, r.code, exitUsage)
		}
	}
}
