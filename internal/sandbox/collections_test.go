package sandbox_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	_ "buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate" // the options the test descriptors carry
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	_ "github.com/opentact-facade/opentact-facade/gen/go/opentact/api/v1" // likewise
	"github.com/opentact-facade/opentact-facade/internal/declare"
	"github.com/opentact-facade/opentact-facade/internal/sandbox"
	"github.com/opentact-facade/opentact-facade/service"
)

// collectionsProto declares calls of kinds the facade's protos do not
// have, as a later issue would: SIP connections (keyed by uuid, with a
// search), SIP domains (keyed by domain) and their switches, messaging
// profiles (a body that is one field), a dictionary and the caller's
// account.
const collectionsProto = `
name: "sandboxtest/v1/collections.proto"
package: "sandboxtest.v1"
syntax: "proto3"
dependency: ["opentact/api/v1/upstream.proto", "buf/validate/validate.proto"]
message_type { name: "Record" field { name: "uuid" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL } }
message_type {
  name: "Page"
  field { name: "take" number: 1 type: TYPE_INT32 label: LABEL_OPTIONAL }
  field { name: "skip" number: 2 type: TYPE_INT32 label: LABEL_OPTIONAL }
  field { name: "total" number: 3 type: TYPE_INT32 label: LABEL_OPTIONAL }
  field { name: "data" number: 4 type: TYPE_MESSAGE type_name: ".sandboxtest.v1.Record" label: LABEL_REPEATED }
}
message_type { name: "One" field { name: "record" number: 1 type: TYPE_MESSAGE type_name: ".sandboxtest.v1.Record" label: LABEL_OPTIONAL } }
message_type { name: "Many" field { name: "records" number: 1 type: TYPE_MESSAGE type_name: ".sandboxtest.v1.Record" label: LABEL_REPEATED } }
message_type { name: "Empty" }
message_type { name: "ByUUID" field { name: "uuid" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL } }
message_type {
  name: "CreateConnection"
  field { name: "name" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL
    options { [buf.validate.field] { string { min_len: 1 } } } }
  field { name: "port" number: 2 type: TYPE_INT32 label: LABEL_OPTIONAL proto3_optional: true oneof_index: 0
    options { [buf.validate.field] { required: true } } }
  field { name: "host_name" number: 3 type: TYPE_STRING label: LABEL_OPTIONAL
    options { [opentact.api.v1.field] { key: "hostName" } [buf.validate.field] { string { min_len: 1 } } } }
  field { name: "ip" number: 4 type: TYPE_STRING label: LABEL_OPTIONAL proto3_optional: true oneof_index: 1
    options { [buf.validate.field] { string { min_len: 7 } } } }
  field { name: "is_active" number: 5 type: TYPE_BOOL label: LABEL_OPTIONAL }
  oneof_decl { name: "_port" }
  oneof_decl { name: "_ip" }
}
message_type {
  name: "UpdateConnection"
  field { name: "uuid" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL }
  field { name: "name" number: 2 type: TYPE_STRING label: LABEL_OPTIONAL }
  field { name: "port" number: 3 type: TYPE_INT32 label: LABEL_OPTIONAL }
}
message_type {
  name: "SearchConnections"
  field { name: "take" number: 1 type: TYPE_INT32 label: LABEL_OPTIONAL }
  field { name: "skip" number: 2 type: TYPE_INT32 label: LABEL_OPTIONAL }
  field { name: "name" number: 3 type: TYPE_STRING label: LABEL_OPTIONAL }
  field { name: "group" number: 4 type: TYPE_STRING label: LABEL_OPTIONAL }
}
message_type { name: "ListConnections" field { name: "active" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL
  options { [opentact.api.v1.field] { key: "is_active" } } } }
message_type { name: "CreateDomain" field { name: "domain" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL } }
message_type { name: "ByDomain" field { name: "domain" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL } }
message_type {
  name: "CreateSwitch"
  field { name: "domain" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL }
  field { name: "name" number: 2 type: TYPE_STRING label: LABEL_OPTIONAL
    options { [buf.validate.field] { string { min_len: 1 } } } }
}
message_type {
  name: "ByDomainUser"
  field { name: "domain" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL }
  field { name: "uuid" number: 2 type: TYPE_STRING label: LABEL_OPTIONAL }
}
message_type {
  name: "ProfileParams"
  field { name: "name" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL
    options { [buf.validate.field] { string { min_len: 1 } } } }
  field { name: "numbers" number: 2 type: TYPE_STRING label: LABEL_REPEATED
    options { [buf.validate.field] { repeated { min_items: 1 } } } }
  field { name: "callback_url" number: 3 type: TYPE_STRING label: LABEL_OPTIONAL
    options { [buf.validate.field] { ignore: IGNORE_IF_ZERO_VALUE string { min_len: 8 } } } }
}
message_type { name: "CreateProfile" field { name: "profile" number: 1 type: TYPE_MESSAGE type_name: ".sandboxtest.v1.ProfileParams" label: LABEL_OPTIONAL } }
message_type { name: "ByA2" field { name: "a2" number: 1 type: TYPE_STRING label: LABEL_OPTIONAL } }
service {
  name: "Collections"
  method { name: "CreateConnection" input_type: ".sandboxtest.v1.CreateConnection" output_type: ".sandboxtest.v1.One"
    options { [opentact.api.v1.upstream] { post: "/rest/sip/connection" body: "*" payload: "record" name: "sip_connection.create" } } }
  method { name: "GetConnection" input_type: ".sandboxtest.v1.ByUUID" output_type: ".sandboxtest.v1.One"
    options { idempotency_level: NO_SIDE_EFFECTS [opentact.api.v1.upstream] { get: "/rest/sip/connection/{uuid}" payload: "record" name: "sip_connection.get" } } }
  method { name: "ListConnections" input_type: ".sandboxtest.v1.ListConnections" output_type: ".sandboxtest.v1.Many"
    options { idempotency_level: NO_SIDE_EFFECTS [opentact.api.v1.upstream] { get: "/rest/sip/connection" query: ["active"] payload: "records" name: "sip_connection.list" } } }
  method { name: "UpdateConnection" input_type: ".sandboxtest.v1.UpdateConnection" output_type: ".sandboxtest.v1.One"
    options { idempotency_level: IDEMPOTENT [opentact.api.v1.upstream] { patch: "/rest/sip/connection/{uuid}" body: "*" payload: "record" name: "sip_connection.update" } } }
  method { name: "DeleteConnection" input_type: ".sandboxtest.v1.ByUUID" output_type: ".sandboxtest.v1.One"
    options { idempotency_level: IDEMPOTENT [opentact.api.v1.upstream] { delete: "/rest/sip/connection/{uuid}" payload: "record" name: "sip_connection.delete" } } }
  method { name: "SearchConnections" input_type: ".sandboxtest.v1.SearchConnections" output_type: ".sandboxtest.v1.Page"
    options { idempotency_level: NO_SIDE_EFFECTS [opentact.api.v1.upstream] { post: "/rest/sip/connection/search" query: ["take", "skip", "group"] body: "*" name: "sip_connection.search" } } }
  method { name: "CreateDomain" input_type: ".sandboxtest.v1.CreateDomain" output_type: ".sandboxtest.v1.One"
    options { [opentact.api.v1.upstream] { post: "/rest/sip/domain" body: "*" payload: "record" name: "sip_domain.create" } } }
  method { name: "GetDomain" input_type: ".sandboxtest.v1.ByDomain" output_type: ".sandboxtest.v1.One"
    options { idempotency_level: NO_SIDE_EFFECTS [opentact.api.v1.upstream] { get: "/rest/sip/domain/{domain}" payload: "record" name: "sip_domain.get" } } }
  method { name: "DeleteDomain" input_type: ".sandboxtest.v1.ByDomain" output_type: ".sandboxtest.v1.One"
    options { idempotency_level: IDEMPOTENT [opentact.api.v1.upstream] { delete: "/rest/sip/domain/{domain}" payload: "record" name: "sip_domain.delete" } } }
  method { name: "CreateSwitch" input_type: ".sandboxtest.v1.CreateSwitch" output_type: ".sandboxtest.v1.One"
    options { [opentact.api.v1.upstream] { post: "/rest/sip/domain/{domain}/switch" body: "*" payload: "record" name: "sip_switch.create" } } }
  method { name: "ListSwitches" input_type: ".sandboxtest.v1.ByDomain" output_type: ".sandboxtest.v1.Many"
    options { idempotency_level: NO_SIDE_EFFECTS [opentact.api.v1.upstream] { get: "/rest/sip/domain/{domain}/switch" payload: "records" name: "sip_switch.list" } } }
  method { name: "GetSwitch" input_type: ".sandboxtest.v1.ByDomainUser" output_type: ".sandboxtest.v1.One"
    options { idempotency_level: NO_SIDE_EFFECTS [opentact.api.v1.upstream] { get: "/rest/sip/domain/{domain}/switch/{uuid}" payload: "record" name: "sip_switch.get" } } }
  method { name: "CreateProfile" input_type: ".sandboxtest.v1.CreateProfile" output_type: ".sandboxtest.v1.One"
    options { [opentact.api.v1.upstream] { post: "/rest/profile/messaging" body: "profile" payload: "record" name: "messaging_profile.create" } } }
  method { name: "ListCountries" input_type: ".sandboxtest.v1.Empty" output_type: ".sandboxtest.v1.Many"
    options { idempotency_level: NO_SIDE_EFFECTS [opentact.api.v1.upstream] { get: "/rest/dict/country" payload: "records" name: "dict.country.list" } } }
  method { name: "GetCountry" input_type: ".sandboxtest.v1.ByA2" output_type: ".sandboxtest.v1.One"
    options { idempotency_level: NO_SIDE_EFFECTS [opentact.api.v1.upstream] { get: "/rest/dict/country/{a2}" payload: "record" name: "dict.country.get" } } }
  method { name: "GetAccount" input_type: ".sandboxtest.v1.Empty" output_type: ".sandboxtest.v1.One"
    options { idempotency_level: NO_SIDE_EFFECTS [opentact.api.v1.upstream] { get: "/rest/account" payload: "record" name: "account.get" } } }
}
`

// countries is the fixture of GET /rest/dict/country.
const countries = `[
  {"a2": "US", "a3": "USA", "n": 840, "name": "United States"},
  {"a2": "KZ", "a3": "KAZ", "n": 398, "name": "Kazakhstan"},
  {"a2": "ES", "a3": "ESP", "n": 724, "name": "Spain"}
]`

func testFixtures() fstest.MapFS {
	return fstest.MapFS{"rest/dict/country.json": {Data: []byte(countries)}}
}

// declared reads the calls of the services of a FileDescriptorProto
// written in prototext.
func declared(t *testing.T, text string) []*declare.Call {
	t.Helper()
	var fdp descriptorpb.FileDescriptorProto
	if err := prototext.Unmarshal([]byte(text), &fdp); err != nil {
		t.Fatalf("descriptor text: %v", err)
	}
	fd, err := protodesc.NewFile(&fdp, protoregistry.GlobalFiles)
	if err != nil {
		t.Fatalf("descriptor: %v", err)
	}
	var calls []*declare.Call
	for i := range fd.Services().Len() {
		cs, err := declare.Methods(fd.Services().Get(i))
		if err != nil {
			t.Fatalf("declare: %v", err)
		}
		calls = append(calls, cs...)
	}
	return calls
}

// colleague is a second user of the demo account, who sees its records.
func colleague() sandbox.Account {
	return sandbox.Account{
		Password: "colleague-password",
		Profile: json.RawMessage(`{"uuid":"5e0a7c1d-0000-4000-8000-000000000003","email":"colleague@example.com",
			"account":{"uuid":"f2cb79fb-6bf8-4484-8034-debf95aac73b","name":"DENOVOLAB"}}`),
	}
}

var colleagueBasic = basic("colleague@example.com", "colleague-password")

// startCollections serves the test's declared calls on a sandbox knowing
// the demo account, its colleague and the other account.
func startCollections(t *testing.T, clk *clock) *httptest.Server {
	t.Helper()
	opts := sandbox.Options{
		Calls:    declared(t, collectionsProto),
		Fixtures: testFixtures(),
		Accounts: []sandbox.Account{otherAccount(), colleague()},
	}
	if clk != nil {
		opts.Now = clk.Now
	}
	return start(t, opts)
}

// record is a payload object.
type record = map[string]any

// wantRecord checks Opentact's success envelope with the given status
// around one object, and returns the object.
func wantRecord(t *testing.T, r response, status int) record {
	t.Helper()
	var rec record
	wantPayload(t, r, status, &rec)
	if rec == nil {
		t.Fatalf("payload is not an object: %s", r.body)
	}
	return rec
}

// wantList checks Opentact's success envelope around an array.
func wantList(t *testing.T, r response) []record {
	t.Helper()
	var list []record
	wantPayload(t, r, http.StatusOK, &list)
	if list == nil {
		t.Fatalf("payload is not an array: %s", r.body)
	}
	return list
}

// wantNotFound checks Opentact's 404 body exactly.
func wantNotFound(t *testing.T, r response) {
	t.Helper()
	if r.status != http.StatusNotFound || string(r.body) != `{"success":false,"message":"Not found","status":404}` {
		t.Errorf("answer = %d %s, want 404 {\"success\":false,\"message\":\"Not found\",\"status\":404}", r.status, r.body)
	}
}

func TestCollectionCreateGetListUpdateDelete(t *testing.T) {
	t.Parallel()
	created := time.Date(2025, 3, 1, 9, 30, 0, 0, time.UTC)
	clk := newClock(created)
	srv := startCollections(t, clk)

	conn := wantRecord(t, send(t, srv, http.MethodPost, "/rest/sip/connection", demoBasic,
		`{"name":"office","port":5060,"hostName":"sip.example.com","is_active":true,"uuid":"mine","created_on":"1999-01-01T00:00:00.000Z"}`), http.StatusCreated)
	id, _ := conn["uuid"].(string)
	if !uuidRE.MatchString(id) {
		t.Fatalf("uuid = %q, want a random (v4) UUID", conn["uuid"])
	}
	want := record{"uuid": id, "name": "office", "port": 5060.0, "hostName": "sip.example.com", "is_active": true,
		"created_on": opentactTime(created), "modified_on": opentactTime(created)}
	if diff := cmp.Diff(want, conn); diff != "" {
		t.Errorf("created record mismatch (-want +got):\n%s", diff)
	}
	second := wantRecord(t, send(t, srv, http.MethodPost, "/prefix/rest/sip/connection", demoBasic,
		`{"name":"lab","port":5080,"hostName":"lab.example.com","is_active":false}`), http.StatusCreated)
	if second["uuid"] == id {
		t.Errorf("two records got the same uuid %s", id)
	}

	if diff := cmp.Diff(want, wantRecord(t, call(t, srv, http.MethodGet, "/rest/sip/connection/"+id, demoBasic), http.StatusOK)); diff != "" {
		t.Errorf("get mismatch (-want +got):\n%s", diff)
	}
	list := wantList(t, call(t, srv, http.MethodGet, "/rest/sip/connection", demoBasic))
	if len(list) != 2 || list[0]["uuid"] != id || list[1]["uuid"] != second["uuid"] {
		t.Errorf("list = %v, want both records in creation order", list)
	}
	// The declared query filters a list, under Opentact's key.
	if got := wantList(t, call(t, srv, http.MethodGet, "/rest/sip/connection?is_active=false", demoBasic)); len(got) != 1 || got[0]["uuid"] != second["uuid"] {
		t.Errorf("list ?is_active=false = %v, want the second record", got)
	}

	// An update changes only the members sent; the uuid, the key and the
	// times are the sandbox's.
	modified := created.Add(90 * time.Second)
	clk.Set(modified)
	updated := wantRecord(t, send(t, srv, http.MethodPatch, "/rest/sip/connection/"+id, demoBasic,
		`{"port":5061,"hostName":null,"extra":{"a":[1]},"uuid":"other","created_on":"1999-01-01T00:00:00.000Z","modified_on":"1999-01-01T00:00:00.000Z"}`), http.StatusOK)
	want["port"], want["hostName"], want["extra"] = 5061.0, nil, map[string]any{"a": []any{1.0}}
	want["modified_on"] = opentactTime(modified)
	if diff := cmp.Diff(want, updated); diff != "" {
		t.Errorf("updated record mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, wantRecord(t, call(t, srv, http.MethodGet, "/rest/sip/connection/"+id, demoBasic), http.StatusOK)); diff != "" {
		t.Errorf("get after update mismatch (-want +got):\n%s", diff)
	}
	// An empty body changes nothing but modified_on.
	wantRecord(t, send(t, srv, http.MethodPatch, "/rest/sip/connection/"+id, demoBasic, ``), http.StatusOK)

	deleted := wantRecord(t, call(t, srv, http.MethodDelete, "/rest/sip/connection/"+id, demoBasic), http.StatusOK)
	if diff := cmp.Diff(want, deleted); diff != "" {
		t.Errorf("delete answers (-want +got):\n%s", diff)
	}
	wantNotFound(t, call(t, srv, http.MethodGet, "/rest/sip/connection/"+id, demoBasic))
	wantNotFound(t, call(t, srv, http.MethodDelete, "/rest/sip/connection/"+id, demoBasic))
	wantNotFound(t, send(t, srv, http.MethodPatch, "/rest/sip/connection/"+id, demoBasic, `{"port":1}`))
	if got := wantList(t, call(t, srv, http.MethodGet, "/rest/sip/connection", demoBasic)); len(got) != 1 || got[0]["uuid"] != second["uuid"] {
		t.Errorf("list after delete = %v, want the second record alone", got)
	}

	// Escaped path values are unescaped, as for the hand-written routes.
	wantNotFound(t, call(t, srv, http.MethodGet, "/rest/sip/connection/a%2Fb", demoBasic))
	// Without credentials, nothing.
	wantError(t, call(t, srv, http.MethodGet, "/rest/sip/connection", nil), http.StatusUnauthorized)
	wantError(t, send(t, srv, http.MethodPost, "/rest/sip/connection", basic(sandbox.DemoEmail, "wrong"), `{}`), http.StatusUnauthorized)
	// A path of a collection answers the methods declared on it.
	r := call(t, srv, http.MethodPut, "/rest/sip/connection", demoBasic)
	wantError(t, r, http.StatusMethodNotAllowed)
	if got := r.header.Get("Allow"); got != "POST, GET" && got != "GET, POST" {
		t.Errorf("Allow = %q, want GET and POST", got)
	}
}

func TestCollectionValidation(t *testing.T) {
	t.Parallel()
	srv := startCollections(t, nil)
	for _, tc := range []struct {
		name, path, body string
		want             map[string]map[string]any
	}{
		{"nothing", "/rest/sip/connection", `{}`, map[string]map[string]any{
			"name":     {"message": "is required", "value": nil},
			"port":     {"message": "is required", "value": nil},
			"hostName": {"message": "is required", "value": nil},
		}},
		{"empty body", "/rest/sip/connection", ``, map[string]map[string]any{
			"name":     {"message": "is required", "value": nil},
			"port":     {"message": "is required", "value": nil},
			"hostName": {"message": "is required", "value": nil},
		}},
		{"null and empty", "/rest/sip/connection", `{"name":"","port":null,"hostName":"h"}`, map[string]map[string]any{
			"name": {"message": "must not be empty", "value": ""},
			"port": {"message": "is required", "value": nil},
		}},
		// The key option names the member; an optional field is not required.
		{"by proto name", "/rest/sip/connection", `{"name":"n","port":1,"host_name":"h"}`, map[string]map[string]any{
			"hostName": {"message": "is required", "value": nil},
		}},
		// A body that is one field: its message's rules.
		{"body field", "/rest/profile/messaging", `{"callback_url":""}`, map[string]map[string]any{
			"name":    {"message": "is required", "value": nil},
			"numbers": {"message": "is required", "value": nil},
		}},
		{"empty list", "/rest/profile/messaging", `{"name":"p","numbers":[]}`, map[string]map[string]any{
			"numbers": {"message": "must not be empty", "value": []any{}},
		}},
		// A collection keyed by another member needs it.
		{"key", "/rest/sip/domain", `{"domain":true}`, map[string]map[string]any{
			"domain": {"message": "is required: it names the record", "value": true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := send(t, srv, http.MethodPost, tc.path, demoBasic, tc.body)
			got := wantFields(t, r)
			for name, f := range got {
				if v, ok := f["value"]; !ok {
					t.Errorf("fields.%s has no value: %s", name, r.body)
				} else if n, isNum := v.(json.Number); isNum {
					f["value"] = n.String()
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("fields mismatch (-want +got):\n%s", diff)
			}
		})
	}
	if got := wantList(t, call(t, srv, http.MethodGet, "/rest/sip/connection", demoBasic)); len(got) != 0 {
		t.Errorf("refused creates stored %v", got)
	}
	// Exactly Opentact's shape.
	r := send(t, srv, http.MethodPost, "/rest/sip/domain", demoBasic, `{}`)
	if want := `{"success":false,"message":"Validation failed","status":400,"fields":{"domain":{"message":"is required: it names the record","value":null}}}`; string(r.body) != want {
		t.Errorf("body = %s, want %s", r.body, want)
	}
	for _, body := range []string{`{`, `[]`, `"x"`, `null`, `{"name":"n"} {}`} {
		wantError(t, send(t, srv, http.MethodPost, "/rest/sip/connection", demoBasic, body), http.StatusBadRequest)
		wantError(t, send(t, srv, http.MethodPost, "/rest/sip/connection/search", demoBasic, body), http.StatusBadRequest)
	}
	big := `{"name":"` + strings.Repeat("a", sandbox.MaxBodySize) + `"}`
	wantError(t, send(t, srv, http.MethodPost, "/rest/sip/connection", demoBasic, big), http.StatusRequestEntityTooLarge)
}

func TestCollectionPerAccount(t *testing.T) {
	t.Parallel()
	srv := startCollections(t, nil)
	conn := wantRecord(t, send(t, srv, http.MethodPost, "/rest/sip/connection", demoBasic,
		`{"name":"demo's","port":5060,"hostName":"h"}`), http.StatusCreated)
	path := "/rest/sip/connection/" + conn["uuid"].(string)

	// Another account sees none of it.
	if got := wantList(t, call(t, srv, http.MethodGet, "/rest/sip/connection", otherBasic)); len(got) != 0 {
		t.Errorf("other account lists %v", got)
	}
	wantNotFound(t, call(t, srv, http.MethodGet, path, otherBasic))
	wantNotFound(t, send(t, srv, http.MethodPatch, path, otherBasic, `{"name":"taken"}`))
	wantNotFound(t, call(t, srv, http.MethodDelete, path, otherBasic))
	page := wantSearch(t, send(t, srv, http.MethodPost, "/rest/sip/connection/search", otherBasic, `{}`))
	if page.Total != 0 {
		t.Errorf("other account's search = %+v, want nothing", page)
	}
	// A user of the same account sees it, whatever the credential.
	if got := wantRecord(t, call(t, srv, http.MethodGet, path, colleagueBasic), http.StatusOK); got["name"] != "demo's" {
		t.Errorf("colleague gets %v", got)
	}
	if got := wantRecord(t, call(t, srv, http.MethodGet, path, bearer(sandbox.DemoAPIToken)), http.StatusOK); got["name"] != "demo's" {
		t.Errorf("demo's API token gets %v", got)
	}
	// The other account's own records are its own, under the same key.
	wantRecord(t, send(t, srv, http.MethodPost, "/rest/sip/domain", otherBasic, `{"domain":"shared.example.com"}`), http.StatusCreated)
	wantRecord(t, send(t, srv, http.MethodPost, "/rest/sip/domain", demoBasic, `{"domain":"shared.example.com"}`), http.StatusCreated)
	wantRecord(t, call(t, srv, http.MethodDelete, "/rest/sip/domain/shared.example.com", otherBasic), http.StatusOK)
	wantRecord(t, call(t, srv, http.MethodGet, "/rest/sip/domain/shared.example.com", demoBasic), http.StatusOK)
}

// page is a search's payload.
type page struct {
	Take  int      `json:"take"`
	Skip  int      `json:"skip"`
	Mode  string   `json:"mode"`
	Order any      `json:"order"`
	Total int      `json:"total"`
	Data  []record `json:"data"`
}

func wantSearch(t *testing.T, r response) page {
	t.Helper()
	var p page
	wantPayload(t, r, http.StatusOK, &p)
	if p.Data == nil {
		t.Fatalf("data is not an array: %s", r.body)
	}
	return p
}

func names(recs []record) string {
	var out []string
	for _, r := range recs {
		out = append(out, fmt.Sprint(r["name"]))
	}
	return strings.Join(out, ",")
}

func TestCollectionSearch(t *testing.T) {
	t.Parallel()
	start := time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)
	clk := newClock(start)
	srv := startCollections(t, clk)
	for i := range 25 {
		clk.Set(start.Add(time.Duration(i) * time.Minute))
		group := []string{"red", "green", "blue"}[i%3]
		body := fmt.Sprintf(`{"name":"c%02d","port":%d,"hostName":"h","group":%q,"is_active":%t,"tn":12029822900}`, i, 5000+i%5, group, i%2 == 0)
		wantRecord(t, send(t, srv, http.MethodPost, "/rest/sip/connection", demoBasic, body), http.StatusCreated)
	}
	search := func(query, body string) page {
		t.Helper()
		return wantSearch(t, send(t, srv, http.MethodPost, "/rest/sip/connection/search"+query, demoBasic, body))
	}
	for _, tc := range []struct {
		name, query, body string
		take, skip, total int
		names             string
	}{
		{"default page", "", ``, 10, 0, 25, "c00,c01,c02,c03,c04,c05,c06,c07,c08,c09"},
		{"query paging", "?take=3&skip=4", `{}`, 3, 4, 25, "c04,c05,c06"},
		{"body paging", "", `{"take":2,"skip":23}`, 2, 23, 25, "c23,c24"},
		{"query over body", "?take=1", `{"take":5}`, 1, 0, 25, "c00"},
		{"past the end", "", `{"take":5,"skip":30}`, 5, 30, 25, ""},
		{"take 0 counts", "", `{"take":0}`, 0, 0, 25, ""},
		{"page and size", "?page=3&size=4", ``, 4, 8, 25, "c08,c09,c10,c11"},
		{"size alone", "", `{"size":2}`, 2, 0, 25, "c00,c01"},
		{"equality", "", `{"group":"red","take":100}`, 100, 0, 9, "c00,c03,c06,c09,c12,c15,c18,c21,c24"},
		{"two filters", "", `{"group":"red","is_active":true}`, 10, 0, 5, "c00,c06,c12,c18,c24"},
		{"number", "", `{"port":5004}`, 10, 0, 5, "c04,c09,c14,c19,c24"},
		{"number in other notation", "", `{"port":5.004e3}`, 10, 0, 5, "c04,c09,c14,c19,c24"},
		{"digits as a string", "", `{"tn":"12029822900","name":"c07"}`, 10, 0, 1, "c07"},
		{"no match", "", `{"name":"nobody"}`, 10, 0, 0, ""},
		{"member no record has", "", `{"colour":"red"}`, 10, 0, 0, ""},
		{"null is no filter", "", `{"name":null,"take":1}`, 1, 0, 25, "c00"},
		{"declared query filter", "?group=blue", `{"take":3}`, 3, 0, 8, "c02,c05,c08"},
		{"mode OR", "", `{"mode":"OR","name":"c01","port":5000,"take":50}`, 50, 0, 6, "c00,c01,c05,c10,c15,c20"},
		{"order", "", `{"order":{"port":"DESC","name":"ASC"},"take":6}`, 6, 0, 25, "c04,c09,c14,c19,c24,c03"},
		{"window", "", `{"created_on_from":"2025-05-01T00:20:00Z","created_on_to":"2025-05-01T00:22:00.000Z"}`, 10, 0, 3, "c20,c21,c22"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := search(tc.query, tc.body)
			if p.Take != tc.take || p.Skip != tc.skip || p.Total != tc.total || names(p.Data) != tc.names {
				t.Errorf("search = take %d skip %d total %d [%s], want take %d skip %d total %d [%s]",
					p.Take, p.Skip, p.Total, names(p.Data), tc.take, tc.skip, tc.total, tc.names)
			}
		})
	}
	// Filters are bounded.
	var many []string
	for i := range 33 {
		many = append(many, fmt.Sprintf(`"f%d":1`, i))
	}
	wantMessage(t, send(t, srv, http.MethodPost, "/rest/sip/connection/search", demoBasic, "{"+strings.Join(many, ",")+"}"),
		http.StatusBadRequest, "Too many filters: a search takes at most 32")
	search("", "{"+strings.Join(many[:32], ",")+"}")

	// The records are whole, and mode and order are echoed.
	p := search("", `{"mode":"AND","order":{"name":"DESC"},"take":1}`)
	if len(p.Data) != 1 || p.Data[0]["name"] != "c24" || p.Data[0]["hostName"] != "h" || !uuidRE.MatchString(fmt.Sprint(p.Data[0]["uuid"])) {
		t.Errorf("data = %v, want c24 whole", p.Data)
	}
	if p.Mode != "AND" || !cmp.Equal(p.Order, map[string]any{"name": "DESC"}) {
		t.Errorf("mode, order = %v, %v; want them echoed", p.Mode, p.Order)
	}

	for _, tc := range []struct{ query, body, field string }{
		{"?take=x", ``, "take"},
		{"?take=-1", ``, "take"},
		{"", `{"take":1.5}`, "take"},
		{"", `{"skip":"a"}`, "skip"},
		{"", `{"skip":-3}`, "skip"},
		{"?page=0", ``, "page"},
		{"", `{"size":101}`, "size"},
		{"", `{"size":0}`, "size"},
		{"", `{"take":1e300}`, "take"},
		{"", `{"mode":"XOR"}`, "mode"},
		{"", `{"order":{"name":"UP"}}`, "order"},
		{"", `{"order":["name"]}`, "order"},
		{"", `{"created_on_from":"yesterday"}`, "created_on_from"},
		{"", `{"order":{` + strings.Repeat(`"a":"ASC",`, 32) + `"b":"ASC"}}`, "order"},
	} {
		t.Run("refused "+tc.query+tc.body, func(t *testing.T) {
			fields := wantFields(t, send(t, srv, http.MethodPost, "/rest/sip/connection/search"+tc.query, demoBasic, tc.body))
			if _, ok := fields[tc.field]; !ok || len(fields) != 1 {
				t.Errorf("fields = %v, want %s alone", fields, tc.field)
			}
		})
	}
}

func TestCollectionNested(t *testing.T) {
	t.Parallel()
	srv := startCollections(t, nil)
	domain := wantRecord(t, send(t, srv, http.MethodPost, "/rest/sip/domain", demoBasic, `{"domain":"a.example.com"}`), http.StatusCreated)
	if domain["domain"] != "a.example.com" || !uuidRE.MatchString(fmt.Sprint(domain["uuid"])) {
		t.Errorf("domain = %v", domain)
	}
	r := send(t, srv, http.MethodPost, "/rest/sip/domain", demoBasic, `{"domain":"a.example.com"}`)
	wantError(t, r, http.StatusConflict)
	wantRecord(t, call(t, srv, http.MethodGet, "/rest/sip/domain/a.example.com", demoBasic), http.StatusOK)

	// Switches live under their domain, which must exist.
	wantNotFound(t, send(t, srv, http.MethodPost, "/rest/sip/domain/b.example.com/switch", demoBasic, `{"name":"ann"}`))
	wantNotFound(t, call(t, srv, http.MethodGet, "/rest/sip/domain/b.example.com/switch", demoBasic))
	ann := wantRecord(t, send(t, srv, http.MethodPost, "/rest/sip/domain/a.example.com/switch", demoBasic, `{"name":"ann"}`), http.StatusCreated)
	wantRecord(t, send(t, srv, http.MethodPost, "/rest/sip/domain/a.example.com/switch", demoBasic, `{"name":"bob"}`), http.StatusCreated)
	wantRecord(t, send(t, srv, http.MethodPost, "/rest/sip/domain", demoBasic, `{"domain":"b.example.com"}`), http.StatusCreated)
	wantRecord(t, send(t, srv, http.MethodPost, "/rest/sip/domain/b.example.com/switch", demoBasic, `{"name":"cy"}`), http.StatusCreated)

	if got := wantList(t, call(t, srv, http.MethodGet, "/rest/sip/domain/a.example.com/switch", demoBasic)); len(got) != 2 || got[0]["name"] != "ann" || got[1]["name"] != "bob" {
		t.Errorf("a's switches = %v, want ann and bob", got)
	}
	switchPath := "/rest/sip/domain/a.example.com/switch/" + ann["uuid"].(string)
	if got := wantRecord(t, call(t, srv, http.MethodGet, switchPath, demoBasic), http.StatusOK); got["name"] != "ann" {
		t.Errorf("get ann = %v", got)
	}
	// Under another domain it is not there.
	wantNotFound(t, call(t, srv, http.MethodGet, "/rest/sip/domain/b.example.com/switch/"+ann["uuid"].(string), demoBasic))

	// A deleted domain takes its switches with it.
	wantRecord(t, call(t, srv, http.MethodDelete, "/rest/sip/domain/a.example.com", demoBasic), http.StatusOK)
	wantNotFound(t, call(t, srv, http.MethodGet, switchPath, demoBasic))
	wantNotFound(t, call(t, srv, http.MethodGet, "/rest/sip/domain/a.example.com/switch", demoBasic))
	wantRecord(t, send(t, srv, http.MethodPost, "/rest/sip/domain", demoBasic, `{"domain":"a.example.com"}`), http.StatusCreated)
	if got := wantList(t, call(t, srv, http.MethodGet, "/rest/sip/domain/a.example.com/switch", demoBasic)); len(got) != 0 {
		t.Errorf("a new domain of the same name has switches %v", got)
	}
	if got := wantList(t, call(t, srv, http.MethodGet, "/rest/sip/domain/b.example.com/switch", demoBasic)); len(got) != 1 {
		t.Errorf("b's switches = %v, want cy", got)
	}
}

func TestCollectionSingleton(t *testing.T) {
	t.Parallel()
	srv := startCollections(t, nil)
	want := demoPayload()["account"]
	for _, h := range []http.Header{demoBasic, bearer(sandbox.DemoAPIToken)} {
		r := call(t, srv, http.MethodGet, "/rest/account", h)
		if r.status != http.StatusOK {
			t.Fatalf("status = %d: %s", r.status, r.body)
		}
		if diff := cmp.Diff(want, decode(t, r.body)["payload"]); diff != "" {
			t.Errorf("account mismatch (-want +got):\n%s", diff)
		}
	}
	colleagues := wantRecord(t, call(t, srv, http.MethodGet, "/rest/account", colleagueBasic), http.StatusOK)
	if diff := cmp.Diff(record{"uuid": "f2cb79fb-6bf8-4484-8034-debf95aac73b", "name": "DENOVOLAB"}, colleagues); diff != "" {
		t.Errorf("colleague's account mismatch (-want +got):\n%s", diff)
	}
	// A profile without an account has none to read.
	wantNotFound(t, call(t, srv, http.MethodGet, "/rest/account", otherBasic))
}

func TestCollectionFixture(t *testing.T) {
	t.Parallel()
	srv := startCollections(t, nil)
	var want []record
	if err := json.Unmarshal([]byte(countries), &want); err != nil {
		t.Fatal(err)
	}
	// The same for every account.
	for _, h := range []http.Header{demoBasic, otherBasic} {
		if diff := cmp.Diff(want, wantList(t, call(t, srv, http.MethodGet, "/rest/dict/country", h))); diff != "" {
			t.Errorf("list mismatch (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(want[1], wantRecord(t, call(t, srv, http.MethodGet, "/rest/dict/country/KZ", h), http.StatusOK)); diff != "" {
			t.Errorf("get mismatch (-want +got):\n%s", diff)
		}
	}
	wantNotFound(t, call(t, srv, http.MethodGet, "/rest/dict/country/kz", demoBasic))
	// Read-only: nothing declares a write of it, so none is routed.
	wantError(t, send(t, srv, http.MethodPost, "/rest/dict/country", demoBasic, `{"a2":"FR"}`), http.StatusMethodNotAllowed)
}

func TestCollectionLimit(t *testing.T) {
	t.Parallel()
	srv := startCollections(t, nil)
	var first string
	for i := range sandbox.MaxRecords {
		rec := wantRecord(t, send(t, srv, http.MethodPost, "/rest/sip/domain", demoBasic, fmt.Sprintf(`{"domain":"d%d"}`, i)), http.StatusCreated)
		if i == 0 {
			first = rec["domain"].(string)
		}
	}
	full := send(t, srv, http.MethodPost, "/rest/sip/domain", demoBasic, `{"domain":"one too many"}`)
	wantError(t, full, http.StatusBadRequest)
	if msg, _ := decode(t, full.body)["message"].(string); !strings.Contains(msg, fmt.Sprint(sandbox.MaxRecords)) {
		t.Errorf("message = %q, want it to name the limit", msg)
	}
	// Per account, per collection.
	wantRecord(t, send(t, srv, http.MethodPost, "/rest/sip/domain", otherBasic, `{"domain":"d0"}`), http.StatusCreated)
	wantRecord(t, send(t, srv, http.MethodPost, "/rest/sip/connection", demoBasic, `{"name":"n","port":1,"hostName":"h"}`), http.StatusCreated)
	// A deleted record frees a place.
	wantRecord(t, call(t, srv, http.MethodDelete, "/rest/sip/domain/"+first, demoBasic), http.StatusOK)
	wantRecord(t, send(t, srv, http.MethodPost, "/rest/sip/domain", demoBasic, `{"domain":"in its place"}`), http.StatusCreated)
	wantError(t, send(t, srv, http.MethodPost, "/rest/sip/domain", demoBasic, `{"domain":"full again"}`), http.StatusBadRequest)
}

func TestCollectionConcurrentUse(t *testing.T) {
	t.Parallel()
	srv := startCollections(t, nil)
	const workers, rounds = 8, 10
	t.Run("workers", func(t *testing.T) {
		for w := range workers {
			t.Run(fmt.Sprint(w), func(t *testing.T) {
				t.Parallel()
				h := []http.Header{demoBasic, colleagueBasic, otherBasic}[w%3]
				for i := range rounds {
					rec := wantRecord(t, send(t, srv, http.MethodPost, "/rest/sip/connection", h,
						fmt.Sprintf(`{"name":"w%d-%d","port":1,"hostName":"h"}`, w, i)), http.StatusCreated)
					path := "/rest/sip/connection/" + rec["uuid"].(string)
					wantRecord(t, send(t, srv, http.MethodPatch, path, h, `{"port":2}`), http.StatusOK)
					wantSearch(t, send(t, srv, http.MethodPost, "/rest/sip/connection/search", h, `{"port":2}`))
					if i%2 == 0 {
						wantRecord(t, call(t, srv, http.MethodDelete, path, h), http.StatusOK)
					}
				}
			})
		}
	})
	// Demo and its colleague share an account; workers 0,1,3,4,6,7 are theirs.
	want := map[string]int{"demo": 6 * rounds / 2, "other": 2 * rounds / 2}
	if got := len(wantList(t, call(t, srv, http.MethodGet, "/rest/sip/connection", demoBasic))); got != want["demo"] {
		t.Errorf("demo's account has %d records, want %d", got, want["demo"])
	}
	if got := len(wantList(t, call(t, srv, http.MethodGet, "/rest/sip/connection", otherBasic))); got != want["other"] {
		t.Errorf("other account has %d records, want %d", got, want["other"])
	}
}

// uninferable declares calls the sandbox cannot serve without a handler.
func TestUnservableDeclarationsFailNew(t *testing.T) {
	t.Parallel()
	method := func(name, input, output, upstream string) string {
		return fmt.Sprintf(`method { name: %q input_type: ".sandboxtest.v1.%s" output_type: ".sandboxtest.v1.%s" options { [opentact.api.v1.upstream] { %s name: "x.y" } } }`,
			name, input, output, upstream)
	}
	file := func(methods ...string) string {
		i := strings.LastIndex(collectionsProto, "service {")
		return strings.Replace(collectionsProto[:i], `name: "sandboxtest/v1/collections.proto"`, `name: "sandboxtest/v1/bad.proto"`, 1) +
			`service { name: "Bad" ` + strings.Join(methods, "\n") + ` }`
	}
	for _, tc := range []struct {
		name, proto string
		fixtures    fstest.MapFS
		want        string
	}{
		{"a write answering a list", file(method("Block", "ByUUID", "Many", `post: "/rest/janus/session/{uuid}/blacklist" body: "*" payload: "records"`)),
			nil, "POST /rest/janus/session/{uuid}/blacklist (/sandboxtest.v1.Bad/Block) cannot be inferred"},
		{"post to a record", file(method("Register", "ByUUID", "One", `post: "/rest/app/invite/{uuid}" body: "*" payload: "record"`)),
			nil, "cannot be inferred: a POST to one record"},
		{"delete of a collection", file(method("Clear", "Empty", "Empty", `delete: "/rest/user/cart"`)),
			nil, "cannot be inferred: a DELETE of a whole collection"},
		{"get by key answering a list", file(method("Conns", "ByUUID", "Many", `get: "/rest/janus/conn/{uuid}" payload: "records"`)),
			nil, "a get of one record answers a list"},
		{"search answering a list", file(method("Find", "Empty", "Many", `post: "/rest/transaction/search" payload: "records"`)),
			nil, "a search answers {take, skip, total, data}, not a list"},
		{"search page off /search", file(method("Outbound", "Empty", "Page", `post: "/rest/transaction/search/report" body: "*"`)),
			nil, "its path does not end in /search"},
		{"multipart", file(method("Avatar", "CreateProfile", "One", `post: "/rest/app/avatar" body: "profile" payload: "record" multipart: true`)),
			nil, "a multipart body"},
		{"collection ending in a parameter", file(method("Next", "ByDomainUser", "One", `get: "/rest/janus/conn/{domain}/{uuid}" payload: "record"`)),
			nil, "its collection's path does not end in a name"},
		{"singleton without data", file(method("Settings", "Empty", "One", `get: "/rest/settings" payload: "record"`)),
			nil, "add internal/sandbox/fixtures/rest/settings.json"},
		{"singleton fixture that is a list", file(method("Settings", "Empty", "One", `get: "/rest/settings" payload: "record"`)),
			fstest.MapFS{"rest/settings.json": {Data: []byte(`[]`)}}, "fixture /rest/settings holds a list"},
		{"list fixture that is an object", file(method("Tz", "Empty", "Many", `get: "/rest/dict/tz" payload: "records"`)),
			fstest.MapFS{"rest/dict/tz.json": {Data: []byte(`{}`)}}, "holds one object"},
		{"bad fixture", file(method("Tz", "Empty", "Many", `get: "/rest/dict/tz" payload: "records"`)),
			fstest.MapFS{"rest/dict/tz.json": {Data: []byte(`[1]`)}}, "fixture /rest/dict/tz"},
		{"fixture with duplicate keys", file(method("Tz", "Empty", "Many", `get: "/rest/dict/tz" payload: "records"`)),
			fstest.MapFS{"rest/dict/tz.json": {Data: []byte(`[{"uuid":"a"},{"uuid":"a"}]`)}}, `two records have uuid "a"`},
		{"malformed fixture", file(method("Tz", "Empty", "Many", `get: "/rest/dict/tz" payload: "records"`)),
			fstest.MapFS{"rest/dict/tz.json": {Data: []byte(`[{`)}}, "want a JSON array or object"},
		{"write of a fixture collection", file(
			method("Tz", "Empty", "Many", `get: "/rest/dict/tz" payload: "records"`),
			method("AddTz", "CreateDomain", "One", `post: "/rest/dict/tz" body: "*" payload: "record"`)),
			fstest.MapFS{"rest/dict/tz.json": {Data: []byte(`[]`)}}, "read-only, but /sandboxtest.v1.Bad/AddTz writes it"},
		{"two keys for one collection", file(
			method("GetD", "ByDomain", "One", `get: "/rest/sip/domain/{domain}" payload: "record"`),
			method("DelD", "ByUUID", "One", `delete: "/rest/sip/domain/{uuid}" payload: "record"`)),
			nil, `names a record of /rest/sip/domain by "uuid", but /sandboxtest.v1.Bad/GetD names it by "domain"`},
		{"hand-written collection", file(method("FindTokens", "Empty", "Page", `post: "/rest/token/search" body: "*"`)),
			nil, "its collection /rest/token is served by hand-written code"},
		{"hand-written orders", file(method("ListOrders", "Empty", "Many", `get: "/rest/order" payload: "records"`)),
			nil, "its collection /rest/order is served by hand-written code"},
		{"one path two ways", file(
			method("ListA", "Empty", "Many", `get: "/rest/payment" payload: "records"`),
			method("GetA", "Empty", "One", `get: "/rest/payment" payload: "record"`)),
			nil, "is a singleton read, but /sandboxtest.v1.Bad/ListA on the same path is a list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fixtures := tc.fixtures
			if fixtures == nil {
				fixtures = fstest.MapFS{}
			}
			_, err := sandbox.New(sandbox.Options{Calls: declared(t, tc.proto), Fixtures: fixtures})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestEveryDeclaredCallIsServed sends each declared call of the served
// services, and of the test's declarations, to a sandbox, and checks
// from its log that a route of that call answered it: New refuses a
// declared call it cannot serve, and this checks that it routes the ones
// it accepts.
func TestEveryDeclaredCallIsServed(t *testing.T) {
	t.Parallel()
	real, err := declare.Declared(service.Services)
	if err != nil {
		t.Fatal(err)
	}
	if len(real) == 0 {
		t.Fatal("no declared calls")
	}
	for _, tc := range []struct {
		name  string
		calls []*declare.Call
		opts  sandbox.Options
	}{
		{"served services", real, sandbox.Options{}},
		{"test declarations", declared(t, collectionsProto), sandbox.Options{Calls: declared(t, collectionsProto), Fixtures: testFixtures()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var logs syncBuffer
			tc.opts.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
			sb, err := sandbox.New(tc.opts)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			srv := httptest.NewServer(sb)
			defer srv.Close()
			var want []string
			for _, c := range tc.calls {
				path := regexp.MustCompile(`\{[^}]*\}`).ReplaceAllString(c.Path, "x")
				body := ""
				if c.Body != declare.NoBody {
					body = `{}`
				}
				r := send(t, srv, c.HTTPMethod, "/rest-base"+path, demoBasic, body)
				if r.status == http.StatusMethodNotAllowed {
					t.Errorf("%s %s: 405", c.HTTPMethod, c.Path)
				}
				want = append(want, c.HTTPMethod+" "+normalizeTemplate(c.Path))
			}
			srv.Close()
			var got []string
			dec := json.NewDecoder(strings.NewReader(logs.String()))
			for dec.More() {
				var line struct{ Route string }
				if err := dec.Decode(&line); err != nil {
					t.Fatal(err)
				}
				method, pattern, _ := strings.Cut(line.Route, " ")
				got = append(got, method+" "+normalizeTemplate(pattern))
			}
			// A handler logs after it answers, so the lines may come in another order.
			slices.Sort(want)
			slices.Sort(got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("routes that answered the declared calls (-declared +routed):\n%s", diff)
			}
		})
	}
}

// normalizeTemplate writes every {param} as {}.
func normalizeTemplate(path string) string {
	return regexp.MustCompile(`\{[^}]*\}`).ReplaceAllString(path, "{}")
}
