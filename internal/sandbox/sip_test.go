package sandbox_test

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// sipConnectionBody is a create of a SIP connection as the facade sends it.
const sipConnectionBody = `{"name":"office","ip":"203.0.113.7","port":5060,"product":1,
	"class4_ingress_trunk_settings":{"media_type":"Proxy Media"},"class4_egress_trunk_settings":{"media_type":"Bypass Media"}}`

func createSIPConnection(t *testing.T, srv *httptest.Server, h http.Header) string {
	t.Helper()
	c := object(t, send(t, srv, http.MethodPost, "/rest/sip/connection", h, sipConnectionBody), http.StatusCreated)
	return fmt.Sprint(c["uuid"])
}

func createSIPDomain(t *testing.T, srv *httptest.Server, h http.Header, body string) map[string]any {
	t.Helper()
	return object(t, send(t, srv, http.MethodPost, "/rest/sip/domain", h, body), http.StatusCreated)
}

// wantConflict checks Opentact's 409 with the message given.
func wantConflict(t *testing.T, r response, message string) {
	t.Helper()
	wantOpentactError(t, r, http.StatusConflict, message)
}

func TestSIPDomainIsKeyedByItsName(t *testing.T) {
	t.Parallel()
	srv := startNumbers(t, nil)
	d := createSIPDomain(t, srv, demoBasic, `{"domain":"abc.sip.example.com"}`)
	if d["domain"] != "abc.sip.example.com" {
		t.Errorf("domain = %v", d)
	}
	wantConflict(t, send(t, srv, http.MethodPost, "/rest/sip/domain", demoBasic, `{"domain":"abc.sip.example.com"}`),
		"Conflict: a record with this key already exists")
	conn := createSIPConnection(t, srv, demoBasic)
	got := object(t, send(t, srv, http.MethodPatch, "/rest/sip/domain/abc.sip.example.com", demoBasic, `{"sip_connection":"`+conn+`"}`), http.StatusOK)
	if got["sip_connection"] != conn || got["domain"] != "abc.sip.example.com" {
		t.Errorf("updated domain = %v", got)
	}
	if got := object(t, call(t, srv, http.MethodGet, "/rest/sip/domain/abc.sip.example.com", demoBasic), http.StatusOK); got["sip_connection"] != conn {
		t.Errorf("domain = %v", got)
	}
	wantNotFound(t, call(t, srv, http.MethodGet, "/rest/sip/domain/abc.sip.example.com", otherBasic))
	object(t, call(t, srv, http.MethodDelete, "/rest/sip/domain/abc.sip.example.com", demoBasic), http.StatusOK)
	wantNotFound(t, call(t, srv, http.MethodGet, "/rest/sip/domain/abc.sip.example.com", demoBasic))
}

func TestSIPUsers(t *testing.T) {
	t.Parallel()
	srv := startNumbers(t, nil)
	const (
		domain   = "a.sip.example.com"
		password = "correct horse battery"
	)
	users := "/rest/sip/domain/" + domain + "/user"
	// Users live under a domain of the account's.
	wantNotFound(t, send(t, srv, http.MethodPost, users, demoBasic, `{"login":"ann","password":"`+password+`"}`))
	wantNotFound(t, call(t, srv, http.MethodGet, users, demoBasic))
	createSIPDomain(t, srv, demoBasic, `{"domain":"`+domain+`"}`)
	createSIPDomain(t, srv, demoBasic, `{"domain":"b.sip.example.com"}`)

	r := send(t, srv, http.MethodPost, users, demoBasic,
		`{"login":"ann","password":"`+password+`","first_name":"Ann","gender":"Female","phone_number":12025550123,"same_domain_calls_only":true}`)
	ann := object(t, r, http.StatusCreated)
	if strings.Contains(string(r.body), password) || ann["password"] != nil {
		t.Errorf("the answer holds the password: %s", r.body)
	}
	want := map[string]any{
		"login": "ann", "first_name": "Ann", "gender": "Female", "same_domain_calls_only": true, "is_active": true, "state": "offline",
		"ha1":  md5Hex("ann:" + domain + ":" + password),
		"ha1b": md5Hex("ann@" + domain + ":" + domain + ":" + password),
	}
	for k, v := range want {
		if ann[k] != v {
			t.Errorf("user %s = %v, want %v", k, ann[k], v)
		}
	}
	if fmt.Sprint(ann["phone_number"]) != "12025550123" || ann["sip_domain"].(map[string]any)["domain"] != domain || ann["email"] != nil {
		t.Errorf("user = %v", ann)
	}
	id := fmt.Sprint(ann["uuid"])
	annPath := users + "/" + id

	// A login is unique in its domain, not beyond.
	wantConflict(t, send(t, srv, http.MethodPost, users, demoBasic, `{"login":"ann","password":"other"}`),
		"Conflict: a SIP user with this login already exists in the domain")
	object(t, send(t, srv, http.MethodPost, "/rest/sip/domain/b.sip.example.com/user", demoBasic, `{"login":"ann","password":"x"}`), http.StatusCreated)
	bob := object(t, send(t, srv, http.MethodPost, users, demoBasic, `{"login":"bob","password":"x"}`), http.StatusCreated)

	if list := asRecords(payload(t, call(t, srv, http.MethodGet, users, demoBasic), http.StatusOK)); len(list) != 2 || list[0]["uuid"] != id || list[1]["login"] != "bob" {
		t.Errorf("users = %v, want ann and bob", list)
	}
	if got := object(t, call(t, srv, http.MethodGet, annPath, colleagueBasic), http.StatusOK); got["ha1"] != want["ha1"] {
		t.Errorf("get = %v", got)
	}
	wantNotFound(t, call(t, srv, http.MethodGet, "/rest/sip/domain/b.sip.example.com/user/"+id, demoBasic))
	wantNotFound(t, call(t, srv, http.MethodGet, annPath, otherBasic))

	// The digests follow the login and the password.
	got := object(t, send(t, srv, http.MethodPatch, annPath, demoBasic, `{"password":"new secret","is_active":false,"email":"ann@example.com"}`), http.StatusOK)
	if got["ha1"] != md5Hex("ann:"+domain+":new secret") || got["is_active"] != false || got["email"] != "ann@example.com" || got["first_name"] != "Ann" {
		t.Errorf("after a new password: %v", got)
	}
	got = object(t, send(t, srv, http.MethodPatch, annPath, demoBasic, `{"login":"anna","email":null}`), http.StatusOK)
	if got["login"] != "anna" || got["ha1b"] != md5Hex("anna@"+domain+":"+domain+":new secret") || got["email"] != nil {
		t.Errorf("after a new login: %v", got)
	}
	wantConflict(t, send(t, srv, http.MethodPatch, annPath, demoBasic, `{"login":"bob"}`),
		"Conflict: a SIP user with this login already exists in the domain")
	wantOpentactError(t, send(t, srv, http.MethodPatch, annPath, demoBasic, `{"tn_lease":"0e5f3a9c-0000-4000-8000-0000000000c9"}`),
		http.StatusNotFound, "TNLease not found")
	lease := fmt.Sprint(asRecords(order(t, srv, demoBasic, `["voice"]`, docsTN)["tnleases"])[0]["uuid"])
	got = object(t, send(t, srv, http.MethodPatch, annPath, demoBasic, `{"tn_lease":"`+lease+`"}`), http.StatusOK)
	if ref, _ := got["tn_lease"].(map[string]any); ref["uuid"] != lease {
		t.Errorf("tn_lease = %v, want the lease", got["tn_lease"])
	}

	for _, tc := range []struct{ body, field string }{
		{`{"login":"cy"}`, "password"},
		{`{"password":"x"}`, "login"},
		{`{"login":"","password":"x"}`, "login"},
		{`{"login":"cy","password":"x","gender":"F"}`, "gender"},
		{`{"login":"cy","password":"x","is_active":"yes"}`, "is_active"},
		{`{"login":"cy","password":"x","ha1":"feed"}`, "ha1"},
		{`{"login":"cy","password":"x","first_name":"` + strings.Repeat("a", 1025) + `"}`, "first_name"},
		{`{"login":"cy","password":"x","phone_number":true}`, "phone_number"},
	} {
		if fields := wantFields(t, send(t, srv, http.MethodPost, users, demoBasic, tc.body)); fields[tc.field] == nil {
			t.Errorf("%s: fields %v, want %s", tc.body, fields, tc.field)
		}
	}
	for _, body := range []string{`{"password":null}`, `{"login":null}`, `{"login":""}`} {
		wantFields(t, send(t, srv, http.MethodPatch, annPath, demoBasic, body))
	}

	// A domain with users stays; without them it goes.
	wantConflict(t, call(t, srv, http.MethodDelete, "/rest/sip/domain/"+domain, demoBasic),
		"Conflict: the SIP domain still has SIP users; delete them first")
	deleted := object(t, call(t, srv, http.MethodDelete, annPath, demoBasic), http.StatusOK)
	if deleted["login"] != "anna" || deleted["password"] != nil {
		t.Errorf("deleted = %v", deleted)
	}
	wantNotFound(t, call(t, srv, http.MethodGet, annPath, demoBasic))
	object(t, call(t, srv, http.MethodDelete, users+"/"+fmt.Sprint(bob["uuid"]), demoBasic), http.StatusOK)
	object(t, call(t, srv, http.MethodDelete, "/rest/sip/domain/"+domain, demoBasic), http.StatusOK)
}

func TestAssignLeasesToASIPConnection(t *testing.T) {
	t.Parallel()
	srv := startNumbers(t, nil)
	numbers := tns(searchNumbers(t, srv, demoBasic, "", `{"pattern":"202*","size":3}`).data)
	ordered := asRecords(order(t, srv, demoBasic, `["voice"]`, numbers[0], numbers[1])["tnleases"])
	l1, l2 := fmt.Sprint(ordered[0]["uuid"]), fmt.Sprint(ordered[1]["uuid"])
	others := fmt.Sprint(asRecords(order(t, srv, poorBasic, `["voice"]`, numbers[2])["tnleases"])[0]["uuid"])
	conn := createSIPConnection(t, srv, demoBasic)
	path := "/rest/sip/connection/" + conn + "/tnlease"
	sipConnectionOf := func(lease string) any {
		t.Helper()
		ref := object(t, call(t, srv, http.MethodGet, "/rest/lease/tn/"+lease, demoBasic), http.StatusOK)["sip_connection"]
		if m, ok := ref.(map[string]any); ok {
			return m["uuid"]
		}
		return ref
	}

	wantNotFound(t, send(t, srv, http.MethodPost, "/rest/sip/connection/0e5f3a9c-0000-4000-8000-0000000000c1/tnlease", demoBasic, `{"add":["`+l1+`"]}`))
	wantNotFound(t, call(t, srv, http.MethodGet, "/rest/sip/connection/0e5f3a9c-0000-4000-8000-0000000000c1/tnlease", demoBasic))
	wantNotFound(t, send(t, srv, http.MethodPost, path, otherBasic, `{"add":["`+others+`"]}`))
	// Another account's lease, or none: nothing changes.
	for _, bad := range []string{others, "0e5f3a9c-0000-4000-8000-0000000000c2"} {
		wantOpentactError(t, send(t, srv, http.MethodPost, path, demoBasic, `{"add":["`+l1+`","`+bad+`"]}`), http.StatusNotFound, "TNLease not found")
		if got := sipConnectionOf(l1); got != nil {
			t.Errorf("after a refused assignment, the lease's sip_connection = %v", got)
		}
	}

	assigned := asRecords(payload(t, send(t, srv, http.MethodPost, path, demoBasic, `{"add":["`+l1+`","`+l2+`"]}`), http.StatusOK))
	if len(assigned) != 2 || assigned[0]["uuid"] != l1 || assigned[1]["uuid"] != l2 {
		t.Fatalf("assigned = %v, want the two leases", assigned)
	}
	for _, l := range assigned {
		if l["sip_connection"].(map[string]any)["uuid"] != conn || l["tn"] == nil {
			t.Errorf("assigned lease = %v, want it whole, on %s", l, conn)
		}
	}
	// Again: the same state, modified_on included.
	again := asRecords(payload(t, send(t, srv, http.MethodPost, path, demoBasic, `{"add":["`+l1+`","`+l2+`"]}`), http.StatusOK))
	if again[0]["modified_on"] != assigned[0]["modified_on"] || again[1]["sip_connection"].(map[string]any)["uuid"] != conn {
		t.Errorf("assigned again = %v, want as before: %v", again, assigned)
	}
	if got := sipConnectionOf(l2); got != conn {
		t.Errorf("lease's sip_connection = %v, want %s", got, conn)
	}
	if list := asRecords(payload(t, call(t, srv, http.MethodGet, path, colleagueBasic), http.StatusOK)); len(list) != 2 {
		t.Errorf("the connection's leases = %v, want 2", list)
	}

	// A connection carrying numbers, or named by a domain, stays.
	wantConflict(t, call(t, srv, http.MethodDelete, "/rest/sip/connection/"+conn, demoBasic),
		"Conflict: the SIP connection still carries the calls of a number (TN lease "+l1+")")
	removed := asRecords(payload(t, send(t, srv, http.MethodPost, path, demoBasic, `{"remove":["`+l1+`"]}`), http.StatusOK))
	if len(removed) != 1 || removed[0]["uuid"] != l1 || removed[0]["sip_connection"] != nil {
		t.Errorf("removed = %v, want l1 without a connection", removed)
	}
	if list := asRecords(payload(t, call(t, srv, http.MethodGet, path, demoBasic), http.StatusOK)); len(list) != 1 || list[0]["uuid"] != l2 {
		t.Errorf("the connection's leases = %v, want l2 alone", list)
	}
	// Removing a lease the connection does not carry changes nothing.
	other := createSIPConnection(t, srv, demoBasic)
	payload(t, send(t, srv, http.MethodPost, "/rest/sip/connection/"+other+"/tnlease", demoBasic, `{"remove":["`+l2+`"]}`), http.StatusOK)
	if got := sipConnectionOf(l2); got != conn {
		t.Errorf("lease's sip_connection = %v, want still %s", got, conn)
	}
	payload(t, send(t, srv, http.MethodPost, path, demoBasic, `{"remove":["`+l2+`"]}`), http.StatusOK)
	createSIPDomain(t, srv, demoBasic, `{"domain":"c.sip.example.com","sip_connection":"`+conn+`"}`)
	wantConflict(t, call(t, srv, http.MethodDelete, "/rest/sip/connection/"+conn, demoBasic),
		"Conflict: the SIP connection is used by SIP domain c.sip.example.com")
	object(t, call(t, srv, http.MethodDelete, "/rest/sip/domain/c.sip.example.com", demoBasic), http.StatusOK)
	object(t, call(t, srv, http.MethodDelete, "/rest/sip/connection/"+conn, demoBasic), http.StatusOK)
	wantNotFound(t, call(t, srv, http.MethodDelete, "/rest/sip/connection/"+conn, demoBasic))

	for _, body := range []string{`{"add":"` + l1 + `"}`, `{"add":[""]}`, `{"color":"red"}`, `{"add":["` + l1 + `"],"remove":["` + l1 + `"]}`} {
		wantFields(t, send(t, srv, http.MethodPost, path, demoBasic, body))
	}
}

func TestSIPProducts(t *testing.T) {
	t.Parallel()
	srv := startNumbers(t, nil)
	for _, h := range []http.Header{demoBasic, otherBasic} {
		products := asRecords(payload(t, call(t, srv, http.MethodGet, "/rest/sip/product", h), http.StatusOK))
		if len(products) < 2 {
			t.Fatalf("products = %v, want a few", products)
		}
		types := map[any]bool{}
		for _, p := range products {
			for _, k := range []string{"id", "name", "type", "tech_prefix", "rate_table_id", "route_plan_id"} {
				if p[k] == nil {
					t.Errorf("product %v has no %s", p, k)
				}
			}
			types[p["type"]] = true
		}
		if !types["public"] || !types["private"] {
			t.Errorf("product types %v, want public and private", types)
		}
	}
	wantError(t, send(t, srv, http.MethodPost, "/rest/sip/product", demoBasic, `{"name":"mine"}`), http.StatusMethodNotAllowed)
}
