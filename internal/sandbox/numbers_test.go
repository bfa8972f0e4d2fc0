package sandbox_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opentact-facade/opentact-facade/internal/sandbox"
)

// The inventory's size: 13 areas of 22 numbers, and 20 toll-free ones.
const inventorySize = 13*22 + 20

const docsTN = "12029822917" // the number of Opentact's documented order

// payload checks Opentact's success envelope with the given status and
// returns its payload, numbers as json.Number.
func payload(t *testing.T, r response, status int) any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body: %s", r.status, status, r.body)
	}
	wantJSONContentType(t, r)
	env := decode(t, r.body)
	if len(env) != 2 || env["success"] != true {
		t.Fatalf("envelope = %s, want {\"success\":true,\"payload\":...}", r.body)
	}
	return env["payload"]
}

func object(t *testing.T, r response, status int) map[string]any {
	t.Helper()
	m, ok := payload(t, r, status).(map[string]any)
	if !ok {
		t.Fatalf("payload is not an object: %s", r.body)
	}
	return m
}

// numberPage is a search's page, its records as decoded with UseNumber.
type numberPage struct {
	take, skip, total int
	data              []map[string]any
}

func searchPage(t *testing.T, r response) numberPage {
	t.Helper()
	m := object(t, r, http.StatusOK)
	num := func(k string) int {
		n, ok := m[k].(json.Number)
		if !ok {
			t.Fatalf("%s = %v, want a number: %s", k, m[k], r.body)
		}
		i, _ := n.Int64()
		return int(i)
	}
	p := numberPage{take: num("take"), skip: num("skip"), total: num("total")}
	data, ok := m["data"].([]any)
	if !ok {
		t.Fatalf("data is not an array: %s", r.body)
	}
	for _, d := range data {
		p.data = append(p.data, d.(map[string]any))
	}
	return p
}

// tns are the tn members of records, or of their tn objects.
func tns(recs []map[string]any) []string {
	var out []string
	for _, r := range recs {
		v := r["tn"]
		if m, ok := v.(map[string]any); ok {
			v = m["tn"]
		}
		out = append(out, fmt.Sprint(v))
	}
	return out
}

func searchNumbers(t *testing.T, srv *httptest.Server, h http.Header, query, body string) numberPage {
	t.Helper()
	return searchPage(t, send(t, srv, http.MethodPost, "/rest/tn/search"+query, h, body))
}

// balance is the caller's account balance as its profile says it.
func balance(t *testing.T, srv *httptest.Server, h http.Header) string {
	t.Helper()
	p, _ := wantSuccess(t, call(t, srv, http.MethodGet, "/rest/auth", h))
	account, _ := p["account"].(map[string]any)
	return fmt.Sprint(account["balance"])
}

// wantOpentactError checks an error body exactly.
func wantOpentactError(t *testing.T, r response, status int, message string) {
	t.Helper()
	want := fmt.Sprintf(`{"success":false,"message":%q,"status":%d}`, message, status)
	if r.status != status || string(r.body) != want {
		t.Errorf("answer = %d %s, want %d %s", r.status, r.body, status, want)
	}
}

// poorAccount has a balance of 1.012: one US number (1.00) and three SMS
// (0.004 each).
func poorAccount() sandbox.Account {
	return sandbox.Account{
		Password: "poor-password",
		Profile: json.RawMessage(`{"uuid":"7a1e2b3c-0000-4000-8000-000000000004","email":"poor@example.com",
			"account":{"uuid":"7a1e2b3c-0000-4000-8000-0000000000a4","name":"Poor","balance":1.012}}`),
	}
}

var poorBasic = basic("poor@example.com", "poor-password")

func startNumbers(t *testing.T, clk *clock) *httptest.Server {
	t.Helper()
	opts := sandbox.Options{Accounts: []sandbox.Account{otherAccount(), colleague(), poorAccount()}}
	if clk != nil {
		opts.Now = clk.Now
	}
	return start(t, opts)
}

func TestNumberSearch(t *testing.T) {
	t.Parallel()
	srv := startNumbers(t, nil)
	all := searchNumbers(t, srv, demoBasic, "?size=100", `{}`)
	if all.total != inventorySize || all.take != 100 || all.skip != 0 || len(all.data) != 100 {
		t.Fatalf("search of everything = take %d skip %d total %d (%d records), want take 100 skip 0 total %d",
			all.take, all.skip, all.total, len(all.data), inventorySize)
	}
	if got := tns(all.data); !slices.IsSorted(got) {
		t.Errorf("numbers not in ascending order: %v", got)
	}
	// The same inventory every time, for every sandbox.
	again := searchNumbers(t, startNumbers(t, nil), otherBasic, "?size=100", `{}`)
	if !slices.Equal(tns(all.data), tns(again.data)) {
		t.Errorf("two sandboxes' inventories differ")
	}

	for _, tc := range []struct {
		name, query, body string
		total             int
		check             func(n map[string]any) bool // of every record answered
	}{
		{"pattern, national", "", `{"pattern":"202*"}`, 22, func(n map[string]any) bool { return n["rateCenter"] == "WSHNGTNZN1" }},
		{"pattern, with country code", "", `{"pattern":"1202*"}`, 22, func(n map[string]any) bool { return n["province"] == "DC" }},
		{"pattern, % one digit", "", `{"pattern":"2029822%17"}`, 1, func(n map[string]any) bool { return fmt.Sprint(n["tn"]) == docsTN }},
		{"pattern, * inside", "", `{"pattern":"202*2917"}`, 1, func(n map[string]any) bool { return fmt.Sprint(n["tn"]) == docsTN }},
		{"pattern, eleven %", "", `{"pattern":"%%%%%%%%%%%"}`, inventorySize, nil},
		{"pattern, too few %", "", `{"pattern":"%%%%%%%%%"}`, 0, nil},
		{"province", "", `{"province":"TX"}`, 44, func(n map[string]any) bool { return n["province"] == "TX" }},
		{"province, any case", "", `{"province":"tx"}`, 44, nil},
		{"city", "", `{"city":"Austin"}`, 22, func(n map[string]any) bool { return n["city"] == "Austin" }},
		{"rate center", "", `{"rateCenter":"TORONTO"}`, 22, func(n map[string]any) bool { return n["city"] == "Toronto" }},
		{"postal code", "", `{"postalCode":"20001","pattern":"202*"}`, -1, func(n map[string]any) bool { return n["postalCode"] == "20001" }},
		{"profile", "", `{"profile":"CA"}`, 66, func(n map[string]any) bool { return n["profile"].(map[string]any)["name"] == "CA" }},
		{"toll-free", "", `{"profile":"US Toll-Free"}`, 20, func(n map[string]any) bool { return n["type"] == "toll_free" && n["rateCenter"] == nil }},
		{"two filters", "", `{"province":"NY","city":"Buffalo"}`, 22, func(n map[string]any) bool { return n["rateCenter"] == "BUFFALO" }},
		{"filters that exclude each other", "", `{"province":"NY","city":"Austin"}`, 0, nil},
		{"vanity", "", `{"pattern":"*WAY*","abcSearch":true}`, -1, func(n map[string]any) bool { return strings.Contains(fmt.Sprint(n["tn"]), "929") }},
		{"unknown members ignored", "", `{"features":["sms"]}`, inventorySize, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := searchNumbers(t, srv, demoBasic, "?size=100"+tc.query, tc.body)
			if tc.total >= 0 && p.total != tc.total {
				t.Errorf("total = %d, want %d", p.total, tc.total)
			}
			if tc.total < 0 && p.total == 0 {
				t.Errorf("total = 0, want some")
			}
			if len(p.data) != min(p.total, 100) {
				t.Errorf("%d records for total %d", len(p.data), p.total)
			}
			for _, n := range p.data {
				if tc.check != nil && !tc.check(n) {
					t.Errorf("record does not match: %v", n)
				}
			}
		})
	}

	t.Run("paging", func(t *testing.T) {
		t.Parallel()
		first := searchNumbers(t, srv, demoBasic, "", `{}`)
		if first.take != 10 || first.skip != 0 || len(first.data) != 10 {
			t.Errorf("default page = take %d skip %d (%d records), want 10, 0", first.take, first.skip, len(first.data))
		}
		for _, tc := range []struct{ query, body string }{{"?page=3&size=7", ``}, {"", `{"page":3,"size":7}`}} {
			p := searchNumbers(t, srv, demoBasic, tc.query, tc.body)
			if p.take != 7 || p.skip != 14 || p.total != inventorySize || !slices.Equal(tns(p.data), tns(all.data[14:21])) {
				t.Errorf("%s%s = take %d skip %d total %d %v, want the 15th to 21st numbers", tc.query, tc.body, p.take, p.skip, p.total, tns(p.data))
			}
		}
		last := searchNumbers(t, srv, demoBasic, "?page=4&size=100", `{}`)
		if len(last.data) != inventorySize-300 {
			t.Errorf("last page has %d records, want %d", len(last.data), inventorySize-300)
		}
		if p := searchNumbers(t, srv, demoBasic, "?page=9&size=100", `{}`); len(p.data) != 0 || p.total != inventorySize {
			t.Errorf("past the end = %d records, total %d", len(p.data), p.total)
		}
	})

	t.Run("a number as answered", func(t *testing.T) {
		t.Parallel()
		r := send(t, srv, http.MethodPost, "/rest/tn/search", demoBasic, `{"pattern":"`+docsTN+`"}`)
		if !bytes.Contains(r.body, []byte(`"tn":`+docsTN+`,`)) {
			t.Errorf("tn is not the JSON number %s: %s", docsTN, r.body)
		}
		n := searchPage(t, r).data[0]
		profile := n["profile"].(map[string]any)
		for k, want := range map[string]any{"type": "long_code", "registered": false, "sms": true, "rateCenter": "WSHNGTNZN1",
			"city": "Washington", "province": "DC", "postalCode": "20001", "deleted_on": nil} {
			if n[k] != want {
				t.Errorf("%s = %v, want %v", k, n[k], want)
			}
		}
		if profile["name"] != "US" || profile["nrc"] != json.Number("1.00") || profile["sms_per_send_cost"] != json.Number("0.004") ||
			profile["country"].(map[string]any)["a2"] != "US" {
			t.Errorf("profile = %v, want US at 1.00 a number and 0.004 an SMS", profile)
		}
	})

	for _, tc := range []struct{ query, body, field string }{
		{"", `{"pattern":"202-982"}`, "pattern"},
		{"", `{"pattern":"*CALL*"}`, "pattern"},
		{"", `{"pattern":""}`, "pattern"},
		{"", `{"pattern":"1234567890123456"}`, "pattern"},
		{"", `{"pattern":12}`, "pattern"},
		{"", `{"city":true}`, "city"},
		{"", `{"abcSearch":"yes"}`, "abcSearch"},
		{"?size=101", ``, "size"},
		{"?size=0", ``, "size"},
		{"?page=0", ``, "page"},
		{"", `{"page":1.5}`, "page"},
	} {
		t.Run("refused "+tc.query+tc.body, func(t *testing.T) {
			t.Parallel()
			fields := wantFields(t, send(t, srv, http.MethodPost, "/rest/tn/search"+tc.query, demoBasic, tc.body))
			if _, ok := fields[tc.field]; !ok || len(fields) != 1 {
				t.Errorf("fields = %v, want %s alone", fields, tc.field)
			}
		})
	}
	t.Run("unknown profile", func(t *testing.T) {
		t.Parallel()
		wantOpentactError(t, send(t, srv, http.MethodPost, "/rest/tn/search", demoBasic, `{"profile":"XX"}`), http.StatusNotFound, "Profile not found")
	})
}

// order orders tns (with the given features) for h and returns the
// order.
func order(t *testing.T, srv *httptest.Server, h http.Header, features string, tns ...string) map[string]any {
	t.Helper()
	var items []string
	for _, tn := range tns {
		items = append(items, fmt.Sprintf(`{"tn":%s,"features":%s,"autorenew":true}`, tn, features))
	}
	return object(t, send(t, srv, http.MethodPost, "/rest/order", h, `{"items":[`+strings.Join(items, ",")+`]}`), http.StatusCreated)
}

func TestOrderAndRelease(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC)
	clk := newClock(at)
	srv := startNumbers(t, clk)
	dc := searchNumbers(t, srv, demoBasic, "", `{"pattern":"202*","size":3}`)
	second := tns(dc.data)[1]

	o := order(t, srv, demoBasic, `["voice","sms"]`, docsTN, second)
	for k, want := range map[string]any{"state": "success", "total": json.Number("2"), "success": json.Number("2"),
		"processing": json.Number("0"), "failed": json.Number("0"), "created_on": opentactTime(at)} {
		if o[k] != want {
			t.Errorf("order %s = %v, want %v", k, o[k], want)
		}
	}
	orderTNs := tns(asRecords(o["tns"]))
	leases := asRecords(o["tnleases"])
	if !slices.Equal(orderTNs, []string{docsTN, second}) || len(leases) != 2 {
		t.Fatalf("order tns = %v with %d leases, want %s and %s", orderTNs, len(leases), docsTN, second)
	}
	lease := leases[0]
	if lease["autorenew"] != true || lease["sms"] != true || lease["voice"] != true || lease["fax"] != false ||
		lease["expired_on"] != opentactTime(at.Add(30*24*time.Hour)) {
		t.Errorf("lease = %v, want voice and sms, autorenew, for 30 days", lease)
	}
	// Charged exactly: two US numbers at 1.00 from 99.87895.
	if got := balance(t, srv, demoBasic); got != "97.87895" {
		t.Errorf("balance = %s, want 97.87895", got)
	}
	// The account's colleague shares it.
	if got := balance(t, srv, colleagueBasic); got != "97.87895" {
		t.Errorf("colleague's balance = %s, want 97.87895", got)
	}
	if acct := object(t, call(t, srv, http.MethodGet, "/rest/account", demoBasic), http.StatusOK); fmt.Sprint(acct["balance"]) != "97.87895" {
		t.Errorf("GET /rest/account balance = %v, want 97.87895", acct["balance"])
	}

	// Out of the inventory for everyone.
	for _, h := range []http.Header{demoBasic, otherBasic} {
		if p := searchNumbers(t, srv, h, "", `{"pattern":"`+docsTN+`"}`); p.total != 0 {
			t.Errorf("the ordered number is still found: %v", tns(p.data))
		}
	}
	if p := searchNumbers(t, srv, demoBasic, "", `{"pattern":"202*"}`); p.total != 20 {
		t.Errorf("Washington numbers left = %d, want 20", p.total)
	}

	// The account's leases.
	id := fmt.Sprint(lease["uuid"])
	got := object(t, call(t, srv, http.MethodGet, "/rest/lease/tn/"+id, demoBasic), http.StatusOK)
	if tns([]map[string]any{got})[0] != docsTN || got["tn"].(map[string]any)["registered"] != true {
		t.Errorf("GET lease = %v", got)
	}
	if tnorder, _ := got["tnorder"].(map[string]any); tnorder["uuid"] != o["uuid"] || tnorder["state"] != "success" {
		t.Errorf("lease tnorder = %v, want the order", got["tnorder"])
	}
	byNumber := object(t, call(t, srv, http.MethodGet, "/rest/lease/tn/"+docsTN+"/tn", demoBasic), http.StatusOK)
	if byNumber["uuid"] != id {
		t.Errorf("GET lease by number = %v, want lease %s", byNumber["uuid"], id)
	}
	p := searchPage(t, send(t, srv, http.MethodPost, "/rest/lease/tn/search", colleagueBasic, `{"order":{"tn":"DESC"}}`))
	if p.total != 2 || !slices.Equal(tns(p.data), []string{max(docsTN, second), min(docsTN, second)}) {
		t.Errorf("lease search = %d %v, want the two numbers, descending", p.total, tns(p.data))
	}
	if p := searchPage(t, send(t, srv, http.MethodPost, "/rest/lease/tn/search", demoBasic, `{"tn":"*2917"}`)); !slices.Equal(tns(p.data), []string{docsTN}) {
		t.Errorf("lease search by mask = %v, want %s", tns(p.data), docsTN)
	}

	// Orders are kept and searchable.
	orders := searchPage(t, send(t, srv, http.MethodPost, "/rest/order/search?take=10&skip=0", demoBasic, `{"state":"success","order":{"created_on":"DESC"}}`))
	if orders.total != 1 || orders.data[0]["uuid"] != o["uuid"] {
		t.Errorf("order search = %v", orders)
	}
	if got := object(t, call(t, srv, http.MethodGet, "/rest/order/"+fmt.Sprint(o["uuid"]), demoBasic), http.StatusOK); got["uuid"] != o["uuid"] || got["success"] != json.Number("2") {
		t.Errorf("GET order = %v", got)
	}

	// Another account sees none of it, and cannot buy the number.
	wantNotFound(t, call(t, srv, http.MethodGet, "/rest/lease/tn/"+id, otherBasic))
	wantNotFound(t, call(t, srv, http.MethodGet, "/rest/lease/tn/"+docsTN+"/tn", otherBasic))
	wantNotFound(t, call(t, srv, http.MethodGet, "/rest/order/"+fmt.Sprint(o["uuid"]), otherBasic))
	wantNotFound(t, call(t, srv, http.MethodDelete, "/rest/lease/tn/"+id, otherBasic))
	if p := searchPage(t, send(t, srv, http.MethodPost, "/rest/lease/tn/search", otherBasic, ``)); p.total != 0 {
		t.Errorf("other account's leases = %v", tns(p.data))
	}
	taken := object(t, send(t, srv, http.MethodPost, "/rest/order", otherBasic, `{"items":[{"tn":"+`+docsTN+`"},{"tn":19999999999}]}`), http.StatusCreated)
	errs := asRecords(taken["errors"])
	if taken["state"] != "failed" || taken["failed"] != json.Number("2") || len(errs) != 2 ||
		errs[0]["reason"] != "not_available" || errs[1]["reason"] != "not_found" {
		t.Errorf("order of a taken and an unknown number = %v", taken)
	}

	// Release, by lease uuid and by number: they go back.
	clk.Set(at.Add(time.Hour))
	released := object(t, call(t, srv, http.MethodDelete, "/rest/lease/tn/"+id, demoBasic), http.StatusOK)
	if released["uuid"] != id || released["modified_on"] != opentactTime(at.Add(time.Hour)) || released["created_on"] != opentactTime(at) {
		t.Errorf("released lease = %v", released)
	}
	object(t, call(t, srv, http.MethodDelete, "/rest/lease/tn/"+second, demoBasic), http.StatusOK)
	wantNotFound(t, call(t, srv, http.MethodGet, "/rest/lease/tn/"+id, demoBasic))
	wantNotFound(t, call(t, srv, http.MethodDelete, "/rest/lease/tn/"+id, demoBasic))
	if p := searchNumbers(t, srv, otherBasic, "", `{"pattern":"202*"}`); p.total != 22 {
		t.Errorf("Washington numbers after the release = %d, want 22", p.total)
	}
	if got := balance(t, srv, demoBasic); got != "97.87895" {
		t.Errorf("balance after the release = %s, want 97.87895 (no refund)", got)
	}
	// Now another account can have it.
	if o := order(t, srv, poorBasic, `["voice"]`, docsTN); o["state"] != "success" {
		t.Errorf("order after release = %v", o)
	}
}

func asRecords(v any) []map[string]any {
	list, _ := v.([]any)
	out := make([]map[string]any, 0, len(list))
	for _, x := range list {
		m, _ := x.(map[string]any)
		out = append(out, m)
	}
	return out
}

func TestOrderChargesExactly(t *testing.T) {
	t.Parallel()
	srv := startNumbers(t, nil)
	us := tns(searchNumbers(t, srv, poorBasic, "", `{"profile":"US","size":2}`).data)
	ca := tns(searchNumbers(t, srv, poorBasic, "", `{"profile":"CA","size":1}`).data)

	// 2.00 from 1.012: 402, and nothing taken.
	r := send(t, srv, http.MethodPost, "/rest/order", poorBasic, fmt.Sprintf(`{"items":[{"tn":%s},{"tn":%s}]}`, us[0], us[1]))
	wantOpentactError(t, r, http.StatusPaymentRequired, "Not enough account balance")
	if p := searchNumbers(t, srv, demoBasic, "", `{"profile":"US","size":2}`); !slices.Equal(tns(p.data), us) {
		t.Errorf("after a 402 the numbers are gone: %v", tns(p.data))
	}
	if p := searchPage(t, send(t, srv, http.MethodPost, "/rest/order/search", poorBasic, ``)); p.total != 0 {
		t.Errorf("a refused order was kept: %v", p.data)
	}
	if got := balance(t, srv, poorBasic); got != "1.012" {
		t.Errorf("balance after a 402 = %s, want 1.012", got)
	}
	// 1.25 for a Canadian number is too much too.
	wantOpentactError(t, send(t, srv, http.MethodPost, "/rest/order", poorBasic, `{"items":[{"tn":`+ca[0]+`}]}`),
		http.StatusPaymentRequired, "Not enough account balance")

	order(t, srv, poorBasic, `["sms"]`, us[0])
	if got := balance(t, srv, poorBasic); got != "0.012" {
		t.Errorf("balance = %s, want 0.012", got)
	}
	// The demo account's balance is its own.
	if got := balance(t, srv, demoBasic); got != "99.87895" {
		t.Errorf("demo balance = %s, want 99.87895", got)
	}
}

func TestOrderValidation(t *testing.T) {
	t.Parallel()
	srv := startNumbers(t, nil)
	many := strings.Repeat(`{"tn":12029822917},`, 101)
	for _, tc := range []struct{ body, field string }{
		{`{}`, "items"},
		{`{"items":[]}`, "items"},
		{`{"items":{"tn":1}}`, "items"},
		{`{"items":[` + many[:len(many)-1] + `]}`, "items"},
		{`{"items":[1]}`, "items[0]"},
		{`{"items":[{"features":["sms"]}]}`, "items[0].tn"},
		{`{"items":[{"tn":"12o2"}]}`, "items[0].tn"},
		{`{"items":[{"tn":1.5}]}`, "items[0].tn"},
		{`{"items":[{"tn":12029822917},{"tn":"12029822917"}]}`, "items[1].tn"},
		{`{"items":[{"tn":12029822917,"features":["telepathy"]}]}`, "items[0].features"},
		{`{"items":[{"tn":12029822917,"autorenew":"yes"}]}`, "items[0].autorenew"},
	} {
		t.Run(tc.body[:min(len(tc.body), 60)], func(t *testing.T) {
			t.Parallel()
			fields := wantFields(t, send(t, srv, http.MethodPost, "/rest/order", demoBasic, tc.body))
			if _, ok := fields[tc.field]; !ok || len(fields) != 1 {
				t.Errorf("fields = %v, want %s alone", fields, tc.field)
			}
		})
	}
	wantError(t, send(t, srv, http.MethodPost, "/rest/order", demoBasic, ``), http.StatusBadRequest)
	if got := balance(t, srv, demoBasic); got != "99.87895" {
		t.Errorf("balance after refused orders = %s", got)
	}
}

func TestLeaseUpdate(t *testing.T) {
	t.Parallel()
	srv := startNumbers(t, nil)
	lease := asRecords(order(t, srv, demoBasic, `["voice"]`, docsTN)["tnleases"])[0]
	id := fmt.Sprint(lease["uuid"])
	conn := "0e5f3a9c-0000-4000-8000-0000000000c1"
	got := object(t, send(t, srv, http.MethodPatch, "/rest/lease/tn/"+id, demoBasic, `{"fax":true,"autorenew":false,"sip_connection":"`+conn+`"}`), http.StatusOK)
	if got["fax"] != true || got["voice"] != true || got["autorenew"] != false || got["sip_connection"].(map[string]any)["uuid"] != conn {
		t.Errorf("updated lease = %v", got)
	}
	if p := searchPage(t, send(t, srv, http.MethodPost, "/rest/lease/tn/search", demoBasic, `{"sip_connection":"`+conn+`","autorenew":false}`)); p.total != 1 {
		t.Errorf("search by sip_connection = %d leases, want 1", p.total)
	}
	got = object(t, send(t, srv, http.MethodPatch, "/rest/lease/tn/"+id, demoBasic, `{"sip_connection":null}`), http.StatusOK)
	if got["sip_connection"] != nil {
		t.Errorf("sip_connection = %v, want null", got["sip_connection"])
	}
	wantOpentactError(t, send(t, srv, http.MethodPatch, "/rest/lease/tn/"+id, demoBasic, `{"messaging_profile":"0e5f3a9c-0000-4000-8000-0000000000c2"}`),
		http.StatusNotFound, "Messaging profile not found")
	for _, body := range []string{`{"sms":"on"}`, `{"color":"red"}`, `{"sip_control_app":""}`} {
		wantFields(t, send(t, srv, http.MethodPatch, "/rest/lease/tn/"+id, demoBasic, body))
	}
	wantNotFound(t, send(t, srv, http.MethodPatch, "/rest/lease/tn/"+id, otherBasic, `{"fax":false}`))
}

func TestLeaseBound(t *testing.T) {
	t.Parallel()
	rich := sandbox.Account{Password: "rich-password", Profile: json.RawMessage(
		`{"uuid":"7a1e2b3c-0000-4000-8000-000000000005","email":"rich@example.com","account":{"uuid":"7a1e2b3c-0000-4000-8000-0000000000a5","balance":1e6}}`)}
	srv := start(t, sandbox.Options{Accounts: []sandbox.Account{rich}})
	richBasic := basic("rich@example.com", "rich-password")
	var numbers []string
	for page := 1; len(numbers) < sandbox.MaxLeases+1; page++ {
		numbers = append(numbers, tns(searchNumbers(t, srv, richBasic, fmt.Sprintf("?page=%d&size=100", page), `{"profile":"US"}`).data)...)
	}
	order(t, srv, richBasic, `["voice"]`, numbers[:sandbox.MaxLeases]...)
	r := send(t, srv, http.MethodPost, "/rest/order", richBasic, `{"items":[{"tn":`+numbers[sandbox.MaxLeases]+`}]}`)
	wantOpentactError(t, r, http.StatusBadRequest, fmt.Sprintf("Too many numbers: an account holds at most %d; release some first", sandbox.MaxLeases))
	object(t, call(t, srv, http.MethodDelete, "/rest/lease/tn/"+numbers[0], richBasic), http.StatusOK)
	order(t, srv, richBasic, `["voice"]`, numbers[sandbox.MaxLeases])
	if got := balance(t, srv, richBasic); got != "999899" {
		t.Errorf("balance = %s, want 999899", got)
	}
}
