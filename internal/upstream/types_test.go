package upstream

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// decodeField decodes raw as the field "f" of an object, as Opentact's
// payload carries it, and fails the test if decoding the object fails.
func decodeField[T any](t *testing.T, raw string) T {
	t.Helper()
	var v struct {
		F T `json:"f"`
	}
	if err := decodeJSON([]byte(`{"f":`+raw+`}`), &v); err != nil {
		t.Fatalf("decoding {\"f\":%s}: %v", raw, err)
	}
	return v.F
}

func TestString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw  string
		want String
	}{
		{`"+1234567890"`, String{"+1234567890", true}},
		{`""`, String{"", true}},
		{`"Иван \u00e9\n"`, String{"Иван é\n", true}},
		{`87015260731`, String{"87015260731", true}},
		{`-12.5e3`, String{"-12.5e3", true}},
		{`0`, String{"0", true}},
		{`true`, String{}},
		{`false`, String{}},
		{`{"a":"b"}`, String{}},
		{`["a"]`, String{}},
		{`null`, String{}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, decodeField[String](t, tt.raw)); diff != "" {
			t.Errorf("String from %s (-want +got):\n%s", tt.raw, diff)
		}
	}
}

func TestBool(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw  string
		want Bool
	}{
		{`true`, Bool{true, true}},
		{`false`, Bool{false, true}},
		{`"true"`, Bool{}},
		{`1`, Bool{}},
		{`0`, Bool{}},
		{`null`, Bool{}},
		{`{}`, Bool{}},
		{`[]`, Bool{}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, decodeField[Bool](t, tt.raw)); diff != "" {
			t.Errorf("Bool from %s (-want +got):\n%s", tt.raw, diff)
		}
	}
}

func TestTime(t *testing.T) {
	t.Parallel()
	ok := func(v time.Time) Time { return Time{v, true} }
	tests := []struct {
		raw  string
		want Time
	}{
		{`"2024-01-16T14:15:48.540Z"`, ok(time.Date(2024, 1, 16, 14, 15, 48, 540e6, time.UTC))},
		{`"2024-01-16T14:15:15Z"`, ok(time.Date(2024, 1, 16, 14, 15, 15, 0, time.UTC))},
		{`"2020-10-26T08:44:15.621Z"`, ok(time.Date(2020, 10, 26, 8, 44, 15, 621e6, time.UTC))},
		{`"2024-01-16T17:15:48.540+03:00"`, ok(time.Date(2024, 1, 16, 14, 15, 48, 540e6, time.UTC))},
		{`"2024-01-16T09:15:48-05:00"`, ok(time.Date(2024, 1, 16, 14, 15, 48, 0, time.UTC))},
		{`"1990-05-01"`, ok(time.Date(1990, 5, 1, 0, 0, 0, 0, time.UTC))},
		{`"not a date"`, Time{}},
		{`""`, Time{}},
		{`"2024-13-01"`, Time{}},
		{`"2024-01-16 14:15:48"`, Time{}},
		{`"2024-01-16T14:15:48"`, Time{}},
		{`"16/01/2024"`, Time{}},
		{`1705414548`, Time{}},
		{`true`, Time{}},
		{`{}`, Time{}},
		{`null`, Time{}},
	}
	for _, tt := range tests {
		got := decodeField[Time](t, tt.raw)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Time from %s (-want +got):\n%s", tt.raw, diff)
		}
		if got.Valid && got.Value.Nanosecond() != tt.want.Value.Nanosecond() {
			t.Errorf("Time from %s lost its fraction: %v", tt.raw, got.Value)
		}
	}
	// A bare date is midnight UTC, not midnight where the facade runs.
	if got := decodeField[Time](t, `"1990-05-01"`); got.Value.Location() != time.UTC {
		t.Errorf("bare date in %v, want UTC", got.Value.Location())
	}
}

func TestDecimal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw  string
		want Decimal
	}{
		{`99.87895`, Decimal{"99.87895", true}},
		{`12345678901234.56789`, Decimal{"12345678901234.56789", true}},
		{`0.1000000000000000055511151231257827`, Decimal{"0.1000000000000000055511151231257827", true}},
		{`-0.5`, Decimal{"-0.5", true}},
		{`0`, Decimal{"0", true}},
		{`1e3`, Decimal{"1e3", true}},
		{`-1.25E-2`, Decimal{"-1.25E-2", true}},
		{`"12.30"`, Decimal{"12.30", true}},
		{`"-7"`, Decimal{"-7", true}},
		{`"abc"`, Decimal{}},
		{`"1."`, Decimal{}},
		{`".5"`, Decimal{}},
		{`"01"`, Decimal{}},
		{`"+1"`, Decimal{}},
		{`"0x10"`, Decimal{}},
		{`"1_000"`, Decimal{}},
		{`"1,5"`, Decimal{}},
		{`" 1"`, Decimal{}},
		{`""`, Decimal{}},
		{`"NaN"`, Decimal{}},
		{`"Infinity"`, Decimal{}},
		{`true`, Decimal{}},
		{`null`, Decimal{}},
		{`{"amount":1}`, Decimal{}},
		{`[1]`, Decimal{}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, decodeField[Decimal](t, tt.raw)); diff != "" {
			t.Errorf("Decimal from %s (-want +got):\n%s", tt.raw, diff)
		}
	}
}

func TestAccount(t *testing.T) {
	t.Parallel()
	obj := func(a Account) Object[Account] { return Object[Account]{Value: &a} }
	tests := []struct {
		name string
		raw  string
		want Object[Account]
	}{
		{"object", `{"uuid":"f2cb","name":"DENOVOLAB","level":"Level0","balance":99.87895,"created_on":"2024-01-16T14:15:48.540Z","deleted_on":null}`,
			obj(Account{UUID: String{"f2cb", true}, Name: String{"DENOVOLAB", true}, Level: String{"Level0", true},
				Balance: Decimal{"99.87895", true}, CreatedOn: Time{time.Date(2024, 1, 16, 14, 15, 48, 540e6, time.UTC), true}})},
		{"empty object", `{}`, obj(Account{})},
		{"object with space", ` { "name" : "A" } `, obj(Account{Name: String{"A", true}})},
		{"fields of the wrong type", `{"uuid":"f2cb","name":{"first":"x"},"email":["a@b.c"],"level":true,"balance":"abc","created_on":17,"modified_on":"yesterday","class4_id":1.5,"admin":"a","users":{}}`,
			obj(Account{UUID: String{"f2cb", true}})},
		{"newer fields", `{"uuid":"f2cb","phone":87015260731,"address1":null,"address2":"Suite 5","zip_code":"050000","city":"Алматы","class4_id":42,"disabled_on":"2025-02-03T04:05:06Z","wss_online":false}`,
			obj(Account{UUID: String{"f2cb", true}, Phone: String{"87015260731", true}, Address2: String{"Suite 5", true},
				ZipCode: String{"050000", true}, City: String{"Алматы", true}, Class4ID: Int64{42, true},
				DisabledOn: Time{time.Date(2025, 2, 3, 4, 5, 6, 0, time.UTC), true}, WSSOnline: Bool{false, true}})},
		{"admin and users", `{"admin":{"uuid":"a","account":null},"users":[{"uuid":"u1"},null,"u2",{"uuid":"u3","password":"hunter2"}]}`,
			obj(Account{Admin: Object[User]{&User{UUID: String{"a", true}}},
				Users: List[User]{Valid: true, Values: []User{
					{UUID: String{"u1", true}},
					{UUID: String{"u3", true}, Carried: Carried{Other: map[string]Raw{"password": ""}}},
				}}})},
		{"empty users", `{"users":[]}`, obj(Account{Users: List[User]{Valid: true}})},
		{"string", `"f2cb79fb-6bf8-4484-8034-debf95aac73b"`, Object[Account]{}},
		{"array", `[{"uuid":"f2cb"}]`, Object[Account]{}},
		{"number", `42`, Object[Account]{}},
		{"bool", `true`, Object[Account]{}},
		{"null", `null`, Object[Account]{}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, decodeField[Object[Account]](t, tt.raw)); diff != "" {
			t.Errorf("Account from %s (-want +got):\n%s", tt.name, diff)
		}
	}
	var missing struct {
		A Object[Account] `json:"a"`
	}
	if err := decodeJSON([]byte(`{}`), &missing); err != nil || missing.A.Value != nil {
		t.Errorf("absent account: %+v, %v; want nil", missing.A, err)
	}
}

// TestUserLenient: nothing in an object payload fails the decoding; only
// broken JSON or a payload that is not an object does.
func TestUserLenient(t *testing.T) {
	t.Parallel()
	raw := `{"uuid":["x"],"email":"a@b.c","wss_online":"yes","role":{"name":"User"},"created_on":1705414548,
		"token":null,"first_name":42,"gender":false,"account":"none","brand_new":{"deep":[1,{"x":null}]}}`
	var u User
	if err := decodeJSON([]byte(raw), &u); err != nil {
		t.Fatalf("decoding: %v", err)
	}
	want := User{Email: String{"a@b.c", true}, FirstName: String{"42", true},
		Carried: Carried{Other: map[string]Raw{"brand_new": `{"deep":[1,{"x":null}]}`}}}
	if diff := cmp.Diff(want, u); diff != "" {
		t.Errorf("user (-want +got):\n%s", diff)
	}
	for _, bad := range []string{`[]`, `"user"`, `{"uuid":"x"`, `{"uuid":}`, `{"x":[1,}`} {
		var u User
		if err := decodeJSON([]byte(bad), &u); err == nil {
			t.Errorf("decoding %s succeeded, want an error", bad)
		}
	}
}

// TestCarried: every member no field models is kept with its exact JSON
// text, at any depth; a modelled name is never among them; a dropped name
// is removed wherever it occurs and its value is not kept.
func TestCarried(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, raw string
		want      map[string]Raw
	}{
		{"numbers keep every digit", `{"big":12345678901234567890,"frac":0.1000000000000000055511151231257827,"exp":-1.5E+400,"neg":-0}`,
			map[string]Raw{"big": "12345678901234567890", "frac": "0.1000000000000000055511151231257827", "exp": "-1.5E+400", "neg": "-0"}},
		{"text, null, bools", `{"s":"Алматы \"A\"","n":null,"t":true,"f":false,"e":""}`,
			map[string]Raw{"s": `"Алматы \"A\""`, "n": "null", "t": "true", "f": "false", "e": `""`}},
		{"nesting as sent, space dropped", `{"time_zone" : { "name" : "Asia/Almaty", "utc_offset" : 5, "dst" : [ 1.50, { } , [ ] ] } }`,
			map[string]Raw{"time_zone": `{"name":"Asia/Almaty","utc_offset":5,"dst":[1.50,{},[]]}`}},
		{"a brand new key", `{"uuid":"u","brand_new_2027":{"k":[{"deep":{"deeper":12345678901234567890}}]}}`,
			map[string]Raw{"brand_new_2027": `{"k":[{"deep":{"deeper":12345678901234567890}}]}`}},
		{"modelled names are not carried", `{"uuid":"u","email":7,"account":"none","wss_online":"yes","x":1}`,
			map[string]Raw{"x": "1"}},
		{"dropped names at the top are kept empty", `{"password":"hunter2","Ha1":"d41d8cd9","HA1B":{"x":1}}`,
			map[string]Raw{"password": "", "Ha1": "", "HA1B": ""}},
		{"dropped names deeper are removed", `{"admin2":{"email":"a@b.c","password":"hunter2","sip":[{"login":"l","ha1":"x","ha1b":"y","n":1}],"pass\u0077ord":"p"}}`,
			map[string]Raw{"admin2": `{"email":"a@b.c","sip":[{"login":"l","n":1}]}`}},
		{"a dropped name as a value is kept", `{"hint":["password","ha1"]}`,
			map[string]Raw{"hint": `["password","ha1"]`}},
		{"a repeated name: the last wins", `{"x":1,"x":{"y":2}}`, map[string]Raw{"x": `{"y":2}`}},
		{"invalid UTF-8 becomes U+FFFD", "{\"x\":\"a\xffb\",\"y\xfe\":[\"\xff\"]}", map[string]Raw{"x": "\"a\ufffdb\"", "y\ufffd": "[\"\ufffd\"]"}},
	}
	for _, tt := range tests {
		var u User
		if err := decodeJSON([]byte(tt.raw), &u); err != nil {
			t.Fatalf("%s: decoding: %v", tt.name, err)
		}
		if diff := cmp.Diff(tt.want, u.Other); diff != "" {
			t.Errorf("%s: carried (-want +got):\n%s", tt.name, diff)
		}
	}
	var none User
	if err := decodeJSON([]byte(`{"uuid":"u","email":"a@b.c"}`), &none); err != nil || none.Other != nil {
		t.Errorf("a payload with nothing unmodelled carries %v (%v); want a nil map", none.Other, err)
	}
}

// TestCarriedStopsWhenModelled: the same answer, decoded by a type that
// models a field and one that does not, carries that field only in the
// second. This is what happens to callers when a field becomes modelled.
func TestCarriedStopsWhenModelled(t *testing.T) {
	t.Parallel()
	raw := []byte(`{"uuid":"a","class4_id":42,"city":"Kyiv"}`)
	var before struct {
		Carried
		UUID String `json:"uuid"`
	}
	var after Account
	if err := decodeJSON(raw, &before); err != nil {
		t.Fatal(err)
	}
	if err := decodeJSON(raw, &after); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]Raw{"class4_id": "42", "city": `"Kyiv"`}, before.Other); diff != "" {
		t.Errorf("unmodelled: carried (-want +got):\n%s", diff)
	}
	if after.Other != nil || after.Class4ID != (Int64{42, true}) || after.City != (String{"Kyiv", true}) {
		t.Errorf("modelled: class4_id %+v, city %+v, carried %v; want both modelled and nothing carried", after.Class4ID, after.City, after.Other)
	}
}

func TestInt64(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw  string
		want Int64
	}{
		{`42`, Int64{42, true}},
		{`-9223372036854775808`, Int64{-9223372036854775808, true}},
		{`"9223372036854775807"`, Int64{9223372036854775807, true}},
		{`9223372036854775808`, Int64{}},
		{`4.2`, Int64{}},
		{`4e2`, Int64{}},
		{`null`, Int64{}},
		{`true`, Int64{}},
		{`[1]`, Int64{}},
	}
	for _, tt := range tests {
		if got := decodeField[Int64](t, tt.raw); got != tt.want {
			t.Errorf("Int64 from %s = %+v, want %+v", tt.raw, got, tt.want)
		}
	}
}

func TestIsNumber(t *testing.T) {
	t.Parallel()
	valid := []string{"0", "-0", "1", "-1", "10", "1234567890", "0.5", "-0.5", "1.0", "12.30",
		"1e3", "1E3", "1e+3", "1e-3", "1.5e10", "-1.25E-2", "0e0", "0.0e-0", "12345678901234.56789"}
	invalid := []string{"", "-", "+1", "01", "-01", "00", "1.", ".5", "-.5", "1.e3", "1e", "1e+", "1E-",
		"e3", "0x10", "1_000", "1,5", " 1", "1 ", "1\n", "NaN", "Infinity", "-Infinity", "--1", "1-", "1.2.3",
		"1e3e3", "1e3.5", "١٢", "１", `"1"`, "true", "null"}
	for _, s := range valid {
		if !isNumber([]byte(s)) {
			t.Errorf("isNumber(%q) = false, want true", s)
		}
		var f float64
		if err := json.Unmarshal([]byte(s), &f); err != nil {
			t.Errorf("test data: %q is not a JSON number: %v", s, err)
		}
	}
	for _, s := range invalid {
		if isNumber([]byte(s)) {
			t.Errorf("isNumber(%q) = true, want false", s)
		}
	}
}
