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
	if err := json.Unmarshal([]byte(`{"f":`+raw+`}`), &v); err != nil {
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
	tests := []struct {
		name string
		raw  string
		want Account
	}{
		{"object", `{"uuid":"f2cb","name":"DENOVOLAB","level":"Level0","balance":99.87895,"created_on":"2024-01-16T14:15:48.540Z","deleted_on":null}`,
			Account{Valid: true, UUID: String{"f2cb", true}, Name: String{"DENOVOLAB", true}, Level: String{"Level0", true},
				Balance: Decimal{"99.87895", true}, CreatedOn: Time{time.Date(2024, 1, 16, 14, 15, 48, 540e6, time.UTC), true}}},
		{"empty object", `{}`, Account{Valid: true}},
		{"object with space", ` { "name" : "A" } `, Account{Valid: true, Name: String{"A", true}}},
		{"fields of the wrong type", `{"uuid":"f2cb","name":{"first":"x"},"email":["a@b.c"],"level":true,"balance":"abc","created_on":17,"modified_on":"yesterday"}`,
			Account{Valid: true, UUID: String{"f2cb", true}}},
		{"phone as number and unknown fields", `{"uuid":"f2cb","phone":87015260731,"address1":null,"class4_id":42,"users":[{"uuid":"u"}],"admin":{"uuid":"a"},"messaging_profiles":[]}`,
			Account{Valid: true, UUID: String{"f2cb", true}}},
		{"string", `"f2cb79fb-6bf8-4484-8034-debf95aac73b"`, Account{}},
		{"array", `[{"uuid":"f2cb"}]`, Account{}},
		{"number", `42`, Account{}},
		{"bool", `true`, Account{}},
		{"null", `null`, Account{}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, decodeField[Account](t, tt.raw)); diff != "" {
			t.Errorf("Account from %s (-want +got):\n%s", tt.name, diff)
		}
	}
	var missing struct{ A Account }
	if err := json.Unmarshal([]byte(`{}`), &missing); err != nil || missing.A.Valid {
		t.Errorf("absent account: %+v, %v; want not Valid", missing.A, err)
	}
}

// TestUserLenient: nothing in an object payload fails the decoding; only
// broken JSON or a payload that is not an object does.
func TestUserLenient(t *testing.T) {
	t.Parallel()
	raw := `{"uuid":["x"],"email":"a@b.c","wss_online":"yes","role":{"name":"User"},"created_on":1705414548,
		"token":null,"first_name":42,"gender":false,"account":"none","brand_new":{"deep":[1,{"x":null}]}}`
	var u User
	if err := json.Unmarshal([]byte(raw), &u); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	want := User{Email: String{"a@b.c", true}, FirstName: String{"42", true}}
	if diff := cmp.Diff(want, u); diff != "" {
		t.Errorf("user (-want +got):\n%s", diff)
	}
	for _, bad := range []string{`[]`, `"user"`, `{"uuid":"x"`, `{"uuid":}`} {
		var u User
		if err := json.Unmarshal([]byte(bad), &u); err == nil {
			t.Errorf("Unmarshal(%s) succeeded, want an error", bad)
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
