package server_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/metadata"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/codec"
)

// fullPasswordHash is the password field of testdata/opentact/auth-full.json.
const fullPasswordHash = "$2b$10$Q9m0c1bYh3d4e5f6g7h8i.jklmnopqrstuvwxyzABCDEFGHIJKLMN"

// readNumbers parses a carried value as the README tells Go callers to:
// encoding/json with UseNumber, so that no digit is lost.
func readNumbers(t *testing.T, text string) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("carried value %q is not JSON: %v", text, err)
	}
	return v
}

// TestOtherFieldsReachCallers: an answer with every documented field and
// members no message models reaches a gRPC and a REST caller whole, every
// digit kept, nesting as sent, modelled names only in their fields; the
// password it carries reaches neither, nor the logs.
func TestOtherFieldsReachCallers(t *testing.T) {
	t.Parallel()
	full, err := os.ReadFile(filepath.Join("..", "..", "testdata", "opentact", "auth-full.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(full), fullPasswordHash) {
		t.Fatal("the fixture no longer carries the password this test looks for")
	}
	tokenWithExtras := `{"uuid":"bac27d93","name":"ci","ttl":3600,"token":"7VLyaDSQ8W48IETeNBfxbBqwgwzWLTvFojSnLgiXP5X8NSoE",
		"scopes":["sms:send",{"calls":12345678901234567890}],"user":{"uuid":"u1","email":"ops@example.kz","password":"hunter2hunter2"}}`
	up := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/rest/token/list" {
			answer(200, `{"success":true,"payload":[`+tokenWithExtras+`]}`)(w, r)
			return
		}
		answer(200, string(full))(w, r)
	})
	f := startFacade(t, up.URL)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-auth-token", "t")

	resp, err := f.client.GetAuth(ctx, &authv1.GetAuthRequest{})
	if err != nil {
		t.Fatalf("GetAuth: %v", err)
	}
	u, a := resp.GetUser(), resp.GetUser().GetAccount()
	if got := readNumbers(t, u.GetOtherFields()["preferences"]); !cmp.Equal(got, map[string]any{"locale": "kk-KZ", "quota": json.Number("12345678901234567890")}) {
		t.Errorf("user.other_fields[preferences] = %v, want every digit of quota", got)
	}
	if got := u.GetOtherFields()["last_login_ip"]; got != `"203.0.113.7"` {
		t.Errorf("user.other_fields[last_login_ip] = %s", got)
	}
	if _, ok := u.GetOtherFields()["password"]; ok {
		t.Error("the password is carried in user.other_fields")
	}
	if a.GetClass4Id() != 48213 || a.GetPhone() != "87015260731" || a.GetCity() != "Алматы" || a.GetLevel() != "Level3" ||
		a.GetBalance() != "1520.0000000000000001" || a.GetWssOnline() != true || a.Address2 != nil || a.DisabledOn != nil {
		t.Errorf("account's modelled fields: %v", a)
	}
	if a.GetAdmin().GetRole() != "Admin" || len(a.GetUsers()) != 2 || a.GetUsers()[1].GetEmail() != "sales@example.kz" {
		t.Errorf("account admin %v and users %v", a.GetAdmin(), a.GetUsers())
	}
	wantCarried := []string{"addresses", "messaging_profile_default", "messaging_profiles", "time_zone"}
	if diff := cmp.Diff(wantCarried, slices.Sorted(maps.Keys(a.GetOtherFields()))); diff != "" {
		t.Errorf("account.other_fields names (-want +got):\n%s", diff)
	}
	mp := readNumbers(t, a.GetOtherFields()["messaging_profile_default"]).(map[string]any)
	if mp["long_code_weight"] != json.Number("0.1000000000000000055511151231257827") {
		t.Errorf("long_code_weight = %v, want all 34 digits", mp["long_code_weight"])
	}
	addresses := readNumbers(t, a.GetOtherFields()["addresses"]).([]any)
	if c := addresses[0].(map[string]any)["country"]; !cmp.Equal(c, map[string]any{"a2": "KZ", "n": json.Number("398")}) {
		t.Errorf("addresses[0].country = %v, want the nested object as sent", c)
	}

	// REST: the same message, as protojson.
	hresp, body := f.rest(t, http.MethodGet, "/v1/auth", http.Header{"X-Auth-Token": {"t"}})
	if hresp.StatusCode != http.StatusOK {
		t.Fatalf("REST status %d: %s", hresp.StatusCode, body)
	}
	var rest struct {
		User struct {
			OtherFields map[string]string `json:"other_fields"`
			Account     struct {
				Class4ID    string            `json:"class4_id"`
				OtherFields map[string]string `json:"other_fields"`
			} `json:"account"`
		} `json:"user"`
	}
	if err := json.Unmarshal(body, &rest); err != nil {
		t.Fatal(err)
	}
	if rest.User.OtherFields["preferences"] != u.GetOtherFields()["preferences"] ||
		rest.User.Account.OtherFields["time_zone"] != a.GetOtherFields()["time_zone"] || rest.User.Account.Class4ID != "48213" {
		t.Errorf("REST user differs from gRPC's: %s", body)
	}
	if strings.Contains(string(body), "hunter2") || strings.Contains(string(body), fullPasswordHash) || strings.Contains(string(body), `password`) {
		t.Errorf("the REST answer carries a password: %s", body)
	}

	// A token carries its own extras, and its owner is a User.
	list, err := f.tokens.ListTokens(ctx, &authv1.ListTokensRequest{})
	if err != nil {
		t.Fatalf("ListTokens: %v", err)
	}
	tok := list.GetTokens()[0]
	if got := readNumbers(t, tok.GetOtherFields()["scopes"]); !cmp.Equal(got, []any{"sms:send", map[string]any{"calls": json.Number("12345678901234567890")}}) {
		t.Errorf("token.other_fields[scopes] = %v", got)
	}
	if tok.GetUser().GetEmail() != "ops@example.kz" || len(tok.GetUser().GetOtherFields()) != 0 {
		t.Errorf("token.user = %v, want the owner without its password", tok.GetUser())
	}

	for _, secret := range []string{fullPasswordHash, "hunter2hunter2"} {
		if strings.Contains(f.logs.String(), secret) {
			t.Errorf("the logs hold the password %q", secret)
		}
	}
}

// TestDroppedNamesAreInTheREADME: the README lists exactly the names the
// facade drops.
func TestDroppedNamesAreInTheREADME(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var line string
	for l := range strings.Lines(string(readme)) {
		if strings.Contains(l, "never carried") {
			line = l
			break
		}
	}
	if line == "" {
		t.Fatal(`README.md has no line saying which names are "never carried"`)
	}
	for _, name := range codec.DroppedNames {
		if !strings.Contains(line, "`"+name+"`") {
			t.Errorf("README's dropped names (%q) lack `%s`", strings.TrimSpace(line), name)
		}
	}
	if n := strings.Count(line, "`") / 2; n != len(codec.DroppedNames) {
		t.Errorf("README names %d code spans on its dropped-names line, upstream drops %d: %q", n, len(codec.DroppedNames), line)
	}
}
