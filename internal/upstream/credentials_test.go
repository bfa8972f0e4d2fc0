package upstream_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// lookup is a metadata.MD.Get over a plain map: the key is used as given.
func lookup(md map[string][]string) func(string) []string {
	return func(key string) []string { return md[key] }
}

// values reads every kind's value out of c.
func values(c upstream.Credentials) map[upstream.Kind]string {
	out := map[upstream.Kind]string{}
	for _, k := range upstream.Kinds() {
		if c.Has(k) {
			out[k] = c.Value(k)
		}
	}
	return out
}

func TestKinds(t *testing.T) {
	t.Parallel()
	type kind struct{ Header, MetadataKey, String string }
	var got []kind
	for _, k := range upstream.Kinds() {
		got = append(got, kind{k.Header(), k.MetadataKey(), k.String()})
	}
	want := []kind{
		{"Authorization", "authorization", "authorization"},
		{"X-Auth-Token", "x-auth-token", "x-auth-token"},
		{"X-Auth-Google-Token", "x-auth-google-token", "x-auth-google-token"},
		{"X-Auth-Facebook-Token", "x-auth-facebook-token", "x-auth-facebook-token"},
		{"X-Auth-HA1B-Token", "x-auth-ha1b-token", "x-auth-ha1b-token"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("kinds (-want +got):\n%s", diff)
	}
	if got := upstream.Kind(99).String(); got != "Kind(99)" {
		t.Errorf("Kind(99).String() = %q, want Kind(99)", got)
	}
}

func TestParseCredentials(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		md   map[string][]string
		want map[upstream.Kind]string
	}{
		{"none", map[string][]string{}, map[upstream.Kind]string{}},
		{"all five", map[string][]string{
			"authorization":         {secretBasic},
			"x-auth-token":          {secretJWT},
			"x-auth-google-token":   {secretGoogle},
			"x-auth-facebook-token": {secretFacebook},
			"x-auth-ha1b-token":     {secretHA1B},
		}, map[upstream.Kind]string{
			upstream.Authorization:      secretBasic,
			upstream.XAuthToken:         secretJWT,
			upstream.XAuthGoogleToken:   secretGoogle,
			upstream.XAuthFacebookToken: secretFacebook,
			upstream.XAuthHA1BToken:     secretHA1B,
		}},
		{"bearer", map[string][]string{"authorization": {"Bearer " + secretBearer}},
			map[upstream.Kind]string{upstream.Authorization: "Bearer " + secretBearer}},
		{"empty values are absent", map[string][]string{"authorization": {""}, "x-auth-token": {secretJWT}},
			map[upstream.Kind]string{upstream.XAuthToken: secretJWT}},
		{"only empty values", map[string][]string{"authorization": {""}, "x-auth-ha1b-token": {""}},
			map[upstream.Kind]string{}},
		{"empty list is absent", map[string][]string{"authorization": {}},
			map[upstream.Kind]string{}},
		{"non-lower-case keys are not read", map[string][]string{"Authorization": {secretBasic}, "X-Auth-Token": {secretJWT}},
			map[upstream.Kind]string{}},
		{"other metadata ignored", map[string][]string{"x-auth-other": {"a\x00b"}, "cookie": {"c", "d"}, "x-auth-token": {secretJWT}},
			map[upstream.Kind]string{upstream.XAuthToken: secretJWT}},
		{"exactly 8 KiB", map[string][]string{"x-auth-google-token": {strings.Repeat("g", 8<<10)}},
			map[upstream.Kind]string{upstream.XAuthGoogleToken: strings.Repeat("g", 8<<10)}},
		{"printable ASCII edges", map[string][]string{"x-auth-token": {" ~"}},
			map[upstream.Kind]string{upstream.XAuthToken: " ~"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var keys []string
			c, err := upstream.ParseCredentials(func(key string) []string {
				keys = append(keys, key)
				return tt.md[key]
			})
			if err != nil {
				t.Fatalf("ParseCredentials: %v", err)
			}
			if diff := cmp.Diff(tt.want, values(c)); diff != "" {
				t.Errorf("credentials (-want +got):\n%s", diff)
			}
			if c.Empty() != (len(tt.want) == 0) {
				t.Errorf("Empty() = %v with %d credentials", c.Empty(), len(tt.want))
			}
			for _, k := range keys {
				if k != strings.ToLower(k) {
					t.Errorf("looked up key %q, want lower-case metadata keys", k)
				}
			}
		})
	}
}

// invalidValues each make a credential invalid; every one holds the
// marker "Sekr1t" so that a leak into the error text is caught.
var invalidValues = []struct {
	name  string
	value string
}{
	{"NUL", "Sekr1t-\x00-value"},
	{"newline", "Sekr1t-value\nX-Injected: 1"},
	{"carriage return", "Sekr1t-value\r"},
	{"tab", "Sekr1t\tvalue"},
	{"DEL", "Sekr1t-\x7f-value"},
	{"non-ASCII", "Sekr1t-tøken"},
	{"invalid UTF-8", "Sekr1t-\xff"},
	{"8 KiB and one byte", "Sekr1t" + strings.Repeat("Z", 8<<10+1-len("Sekr1t"))},
	{"64 KiB", "Sekr1t" + strings.Repeat("Z", 64<<10)},
}

func TestParseCredentialsInvalid(t *testing.T) {
	t.Parallel()
	for _, k := range upstream.Kinds() {
		for _, v := range invalidValues {
			t.Run(k.String()+"/"+v.name, func(t *testing.T) {
				t.Parallel()
				md := map[string][]string{k.MetadataKey(): {v.value}}
				if k != upstream.XAuthToken {
					md["x-auth-token"] = []string{secretJWT} // a valid one alongside changes nothing
				}
				c, err := upstream.ParseCredentials(lookup(md))
				checkInvalid(t, err, k.MetadataKey(), v.value)
				if !c.Empty() {
					t.Errorf("ParseCredentials returned %v along with the error, want none", c)
				}
			})
		}
		t.Run(k.String()+"/sent twice", func(t *testing.T) {
			t.Parallel()
			md := map[string][]string{k.MetadataKey(): {"Sekr1t-one", "Sekr1t-two"}}
			c, err := upstream.ParseCredentials(lookup(md))
			checkInvalid(t, err, k.MetadataKey(), "Sekr1t")
			if !c.Empty() {
				t.Errorf("ParseCredentials returned %v along with the error, want none", c)
			}
		})
		t.Run(k.String()+"/sent twice, once empty", func(t *testing.T) {
			t.Parallel()
			_, err := upstream.ParseCredentials(lookup(map[string][]string{k.MetadataKey(): {"", "Sekr1t-two"}}))
			checkInvalid(t, err, k.MetadataKey(), "Sekr1t")
		})
	}
}

func TestNewCredentials(t *testing.T) {
	t.Parallel()
	in := map[upstream.Kind]string{
		upstream.Authorization:      secretBasic,
		upstream.XAuthToken:         secretJWT,
		upstream.XAuthGoogleToken:   "",
		upstream.XAuthFacebookToken: secretFacebook,
	}
	c, err := upstream.NewCredentials(in)
	if err != nil {
		t.Fatalf("NewCredentials: %v", err)
	}
	want := map[upstream.Kind]string{
		upstream.Authorization:      secretBasic,
		upstream.XAuthToken:         secretJWT,
		upstream.XAuthFacebookToken: secretFacebook,
	}
	if diff := cmp.Diff(want, values(c)); diff != "" {
		t.Errorf("credentials (-want +got):\n%s", diff)
	}
	if c.Has(upstream.XAuthGoogleToken) || c.Value(upstream.XAuthGoogleToken) != "" {
		t.Error("an empty value counts as present")
	}

	for _, m := range []map[upstream.Kind]string{nil, {}, {upstream.XAuthHA1BToken: ""}} {
		c, err := upstream.NewCredentials(m)
		if err != nil || !c.Empty() {
			t.Errorf("NewCredentials(%v) = %v, %v; want empty credentials", m, c, err)
		}
	}
}

func TestNewCredentialsInvalid(t *testing.T) {
	t.Parallel()
	for _, k := range upstream.Kinds() {
		for _, v := range invalidValues {
			t.Run(k.String()+"/"+v.name, func(t *testing.T) {
				t.Parallel()
				other := upstream.Kinds()[(int(k)+1)%len(upstream.Kinds())] // a valid one alongside changes nothing
				c, err := upstream.NewCredentials(map[upstream.Kind]string{k: v.value, other: secretJWT})
				checkInvalid(t, err, k.MetadataKey(), v.value)
				if !c.Empty() {
					t.Errorf("NewCredentials returned %v along with the error, want none", c)
				}
			})
		}
	}
	for _, k := range []upstream.Kind{-1, upstream.Kind(len(upstream.Kinds())), 99} {
		_, err := upstream.NewCredentials(map[upstream.Kind]string{k: "Sekr1t"})
		if !errors.Is(err, upstream.ErrInvalidCredential) {
			t.Errorf("NewCredentials with kind %d: err = %v, want ErrInvalidCredential", int(k), err)
		} else if strings.Contains(err.Error(), "Sekr1t") {
			t.Errorf("error %q holds the value", err)
		}
	}
}

// checkInvalid wants an error wrapping ErrInvalidCredential that names the
// header and holds no part of the value.
func checkInvalid(t *testing.T, err error, key, value string) {
	t.Helper()
	if !errors.Is(err, upstream.ErrInvalidCredential) {
		t.Fatalf("err = %v, want one wrapping ErrInvalidCredential", err)
	}
	text := err.Error()
	if !strings.Contains(text, key) {
		t.Errorf("error %q does not name the header %s", text, key)
	}
	for _, leak := range []string{"Sekr1t", "ZZZZ", "tøken", "X-Injected", value} {
		if strings.Contains(text, leak) {
			t.Errorf("error %q holds the value (%q)", text, leak)
		}
	}
}

// TestCredentialsNeverPrintValues prints credentials every way a log line
// or an error might: the kinds show, the values never do.
func TestCredentialsNeverPrintValues(t *testing.T) {
	t.Parallel()
	c := allCreds(t)
	bearer := mustCreds(t, map[upstream.Kind]string{upstream.Authorization: "Bearer " + secretBearer, upstream.XAuthToken: secretJWT})

	var outputs []string
	for _, creds := range []upstream.Credentials{c, bearer} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x", "%X", "%q", "%T %v", "%10.3v", "%-40s|"} {
			outputs = append(outputs,
				fmt.Sprintf(verb, creds),
				fmt.Sprintf(verb, &creds),
				fmt.Sprintf(verb, struct{ C upstream.Credentials }{creds}),
				fmt.Sprintf(verb, []upstream.Credentials{creds}),
				fmt.Sprintf(verb, map[string]any{"c": creds}),
				// In an unexported field fmt cannot call Format and
				// prints the fields by reflection.
				fmt.Sprintf(verb, struct{ c upstream.Credentials }{creds}),
				fmt.Sprintf(verb, struct{ c *upstream.Credentials }{&creds}),
				fmt.Sprintf(verb, []struct{ c upstream.Credentials }{{creds}}),
			)
		}
		outputs = append(outputs, fmt.Sprint(creds), fmt.Sprintln(creds), creds.String(), fmt.Errorf("auth with %v failed", creds).Error())

		var buf bytes.Buffer
		log := slog.New(slog.NewJSONHandler(&buf, nil))
		log.Info("call", slog.Any("c", creds), slog.Any("p", &creds), "kv", creds)
		log.Info("group", slog.Group("g", slog.Any("c", creds)))
		outputs = append(outputs, buf.String())
		var text bytes.Buffer
		slog.New(slog.NewTextHandler(&text, nil)).Info("call", "c", creds)
		outputs = append(outputs, text.String())
	}
	for _, out := range outputs {
		assertNoSecrets(t, "output", out)
		if strings.Contains(out, "Bearer") {
			t.Errorf("output %q holds a credential's scheme", out)
		}
	}

	// The kinds present are named, so that a log says what was sent.
	for _, out := range []string{fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), c.String()} {
		for _, k := range upstream.Kinds() {
			if !strings.Contains(out, k.MetadataKey()) {
				t.Errorf("%q does not name the kind %s", out, k)
			}
		}
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("call", slog.Any("c", bearer))
	if !strings.Contains(buf.String(), `"c":"authorization,x-auth-token"`) {
		t.Errorf("slog output %s does not name the kinds", buf.String())
	}
	if got := fmt.Sprint(upstream.Credentials{}); strings.Contains(got, "authorization") {
		t.Errorf("empty credentials print as %q, naming a kind", got)
	}
}
