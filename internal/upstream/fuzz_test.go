package upstream_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"

	"github.com/opentact-facade/opentact-facade/internal/sandbox"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// fuzzMaxCredentialLen is the documented bound on one credential value
// (README: "longer than 8 KiB ... fails").
const fuzzMaxCredentialLen = 8 << 10

// FuzzParseCredentials builds a metadata lookup from an Authorization
// value, an X-Auth-Token value and a value for one other X-Auth-* kind
// (chosen by otherKind), with one of the three sent dupCount times
// (chosen by dupWhich; 0 chooses none), and checks ParseCredentials:
//
//   - it never panics, and it accepts exactly when the documented rules
//     allow: no header sent more than once, and every value at most 8 KiB of
//     printable ASCII (0x20-0x7e); an empty value counts as absent;
//   - what it accepts is what was sent, kind by kind, and every accepted
//     value is printable ASCII within the limit;
//   - String, every fmt verb, LogValue and slog's text and JSON handlers
//     never show a secret: a value, an Authorization token without its
//     scheme, or a Basic user:password or password;
//   - a rejection wraps ErrInvalidCredential, names a header that was sent,
//     and its message shows no secret either.
//
// Secrets shorter than 4 bytes are not looked for. A secret is a leak only
// where it would not appear anyway: each output is compared with the same
// output for the same headers holding placeholder values of the same shape
// (same length, same validity, same rejection), so a value such as
// "x-auth-token" or "invalid credential header" that happens to be in the
// fixed text is not reported, while a value that shows up because it was
// sent is. Beyond whole secrets, each output must equal its placeholders'
// output: it may depend on which headers were sent, how often, and on a
// value's length and non-printable bytes (what a rejection may describe),
// but on nothing a secret is made of.
func FuzzParseCredentials(f *testing.F) {
	demoBasic := "Basic " + base64.StdEncoding.EncodeToString([]byte(sandbox.DemoEmail+":"+sandbox.DemoPassword))
	const jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1dWlkIjoiMDExNmY2ZDEifQ.c2lnbmF0dXJl"
	long := strings.Repeat("a", 9<<10)
	seeds := []struct {
		authz, token, other string
		otherKind, dupWhich uint8
		dupCount            uint8
	}{
		{demoBasic, "", "", 0, 0, 0},
		{demoBasic, jwt, "", 0, 0, 0},
		{"Bearer " + sandbox.DemoAPIToken, "", sandbox.DemoGoogleToken, 0, 0, 0},
		{"", "", sandbox.DemoFacebookToken, 1, 0, 0},
		{"", "", sandbox.DemoHA1B, 2, 0, 0},
		{demoBasic, jwt, sandbox.DemoHA1B, 2, 0, 0},
		{"basic " + base64.StdEncoding.EncodeToString([]byte("opentact@callify.io:pa ss:word")), "", "", 0, 0, 0},
		// Sent twice, three times, and "sent" zero times.
		{demoBasic, "", "", 0, 1, 2},
		{"", jwt, "", 0, 2, 3},
		{"", "", sandbox.DemoGoogleToken, 0, 3, 2},
		{demoBasic, jwt, sandbox.DemoGoogleToken, 0, 1, 0},
		{"", "", "", 0, 1, 2}, // an empty value sent twice
		// Control, non-ASCII and overlong values.
		{demoBasic + "\r\nX-Injected: 1", "", "", 0, 0, 0},
		{"Basic\x00" + sandbox.DemoPassword, "", "", 0, 0, 0},
		{"", "tok\ten-with-tab", "", 0, 0, 0},
		{"", "", "del\x7fdelete", 1, 0, 0},
		{"", "", "токен-google", 0, 0, 0},
		{"Bearer Zoë-token", "", "", 0, 0, 0},
		{"", "\xff\xfe\xfd\xfc", "", 0, 0, 0},
		{long, "", "", 0, 0, 0},
		{"", strings.Repeat("b", fuzzMaxCredentialLen), "", 0, 0, 0},
		{"", strings.Repeat("b", fuzzMaxCredentialLen+1), "", 0, 0, 0},
		{demoBasic, jwt, long + "\x00", 2, 0, 0},
		// Values that are also fixed text of the outputs or errors.
		{"authorization", "x-auth-token", "Credentials[", 0, 0, 0},
		{"invalid credential header", "holds a control or non-ASCII character\x01", "", 0, 0, 0},
		{"x-auth-token", "", "", 0, 1, 2},
		{"authorization,x-auth-token", "sent 2 times", "is longer than 8192 bytes", 1, 0, 0},
		{"    ", " ", "%v %s %x", 2, 0, 0},
	}
	for _, s := range seeds {
		f.Add(s.authz, s.token, s.other, s.otherKind, s.dupWhich, s.dupCount)
	}

	f.Fuzz(func(t *testing.T, authz, token, other string, otherKind, dupWhich, dupCount uint8) {
		in := fuzzCredInput{
			kinds:  [3]upstream.Kind{upstream.Authorization, upstream.XAuthToken, upstream.XAuthGoogleToken + upstream.Kind(otherKind%3)},
			values: [3]string{authz, token, other},
			counts: [3]int{1, 1, 1},
		}
		if w := dupWhich % 4; w > 0 {
			in.counts[w-1] = int(dupCount % 4) // 0 to 3 copies
		}

		c, err := upstream.ParseCredentials(in.lookup(t))
		ref := in.placeholders()
		refC, refErr := upstream.ParseCredentials(ref.lookup(t))
		wantOK := in.valid()
		if (err == nil) != wantOK {
			t.Fatalf("ParseCredentials(%s) error = %v, want accepted = %v", in, err, wantOK)
		}
		if (refErr == nil) != wantOK {
			t.Fatalf("placeholders of the same shape %s: error = %v, want accepted = %v", ref, refErr, wantOK)
		}
		secrets := in.secrets()

		if err != nil {
			if !errors.Is(err, upstream.ErrInvalidCredential) {
				t.Errorf("error %v does not wrap ErrInvalidCredential", err)
			}
			if c != (upstream.Credentials{}) {
				t.Errorf("a rejection returned non-empty Credentials %v", c)
			}
			named := false
			for i, k := range in.kinds {
				named = named || in.counts[i] > 0 && strings.Contains(err.Error(), k.MetadataKey())
			}
			if !named {
				t.Errorf("error %q names no header that was sent", err)
			}
			fuzzCheckNoLeak(t, "the error message", err.Error(), refErr.Error(), secrets)
			return
		}

		// Accepted: what was sent, kind by kind.
		for _, k := range upstream.Kinds() {
			want := in.sent(k)
			if c.Has(k) != (want != "") || c.Value(k) != want {
				t.Errorf("%v: Has = %v, Value = %q; sent %q", k, c.Has(k), c.Value(k), want)
			}
			if v := c.Value(k); len(v) > fuzzMaxCredentialLen || !fuzzPrintableASCII(v) {
				t.Errorf("%v: accepted %d bytes %q, not printable ASCII within %d bytes", k, len(v), v, fuzzMaxCredentialLen)
			}
		}
		if c.Empty() != (in.sent(upstream.Authorization)+in.sent(upstream.XAuthToken)+in.sent(in.kinds[2]) == "") {
			t.Errorf("Empty() = %v for %s", c.Empty(), in)
		}

		got, want := fuzzRenderings(c), fuzzRenderings(refC)
		for name, out := range got {
			ref := want[name]
			if strings.HasPrefix(name, "unexported") {
				// Where fmt cannot call Format it prints an address:
				// c's and its placeholders' differ.
				out, ref = fuzzAddress.ReplaceAllString(out, "ADDR"), fuzzAddress.ReplaceAllString(ref, "ADDR")
			}
			fuzzCheckNoLeak(t, name, out, ref, secrets)
		}
	})
}

// fuzzCredInput is one fuzz case: three credential headers, each sent
// counts[i] times.
type fuzzCredInput struct {
	kinds  [3]upstream.Kind
	values [3]string
	counts [3]int
}

func (in fuzzCredInput) String() string {
	var b strings.Builder
	for i, k := range in.kinds {
		fmt.Fprintf(&b, "%v×%d=%.80q ", k, in.counts[i], in.values[i])
	}
	return b.String()
}

// lookup is a metadata.MD.Get over the case: exact lower-case keys.
func (in fuzzCredInput) lookup(t *testing.T) func(string) []string {
	return func(key string) []string {
		if key != strings.ToLower(key) {
			t.Errorf("looked up %q, not a lower-case metadata key", key)
		}
		for i, k := range in.kinds {
			if k.MetadataKey() == key {
				var vs []string
				for range in.counts[i] {
					vs = append(vs, in.values[i])
				}
				return vs
			}
		}
		return nil
	}
}

// valid is the documented rule, written independently of checkValue.
func (in fuzzCredInput) valid() bool {
	for i, v := range in.values {
		switch {
		case in.counts[i] > 1:
			return false
		case in.counts[i] == 1 && (len(v) > fuzzMaxCredentialLen || !fuzzPrintableASCII(v)):
			return false
		}
	}
	return true
}

// sent is the value of kind k that should be accepted, or "".
func (in fuzzCredInput) sent(k upstream.Kind) string {
	for i, kk := range in.kinds {
		if kk == k && in.counts[i] == 1 {
			return in.values[i]
		}
	}
	return ""
}

// placeholders returns the same headers, sent as often, with values of the
// same shape: every printable ASCII byte replaced by one that is in none of
// the real values, every other byte kept. Length, validity and the reason
// for a rejection stay the same; what a secret is made of (printable
// bytes; accepted values are nothing else) is gone, so no secret of the
// case can be a substring of a placeholder.
func (in fuzzCredInput) placeholders() fuzzCredInput {
	fill := byte('~')
	for b := byte('!'); b <= '~'; b++ {
		if !strings.ContainsRune(in.values[0]+in.values[1]+in.values[2], rune(b)) {
			fill = b
			break
		}
	}
	out := in
	for i, v := range in.values {
		p := []byte(v)
		for j, b := range p {
			if b >= 0x20 && b <= 0x7e {
				p[j] = fill
			}
		}
		out.values[i] = string(p)
	}
	return out
}

// secrets are the strings that must never be shown, at least 4 bytes long:
// each value, and for Authorization its token without the scheme and, for
// Basic, the decoded user:password and the password.
func (in fuzzCredInput) secrets() []string {
	var out []string
	add := func(s string) {
		if len(s) >= 4 {
			out = append(out, s)
		}
	}
	for i, v := range in.values {
		add(v)
		if in.kinds[i] != upstream.Authorization {
			continue
		}
		scheme, tok, ok := strings.Cut(v, " ")
		if !ok {
			continue
		}
		tok = strings.TrimSpace(tok)
		add(tok)
		if !strings.EqualFold(scheme, "Basic") {
			continue
		}
		if raw, err := base64.StdEncoding.DecodeString(tok); err == nil {
			add(string(raw))
			if _, pw, ok := strings.Cut(string(raw), ":"); ok {
				add(pw)
			}
		}
	}
	return out
}

// fuzzCheckNoLeak reports each secret in out that is not also in ref, the
// same output for placeholder values. It then checks that out does not
// depend on the values' printable bytes at all (out == ref), which also
// catches a leak of part of a value (a prefix, a password's first bytes)
// that no whole secret would match.
func fuzzCheckNoLeak(t *testing.T, what, out, ref string, secrets []string) {
	t.Helper()
	leaked := false
	for _, s := range secrets {
		if strings.Contains(out, s) && !strings.Contains(ref, s) {
			t.Errorf("%s shows the secret %.80q: %.300q", what, s, out)
			leaked = true
		}
	}
	if !leaked && out != ref {
		t.Errorf("%s depends on the credential values, not only on which headers were sent:\n got %.300q\n for placeholders of the same shape %.300q", what, out, ref)
	}
}

// fuzzAddress is a pointer as fmt prints it: hex, with or without 0x, or
// decimal (%d).
var fuzzAddress = regexp.MustCompile(`(0x)?[0-9a-fA-F]{6,}`)

// fuzzRenderings is every way the facade, or code using it, might print
// Credentials: String, fmt verbs on the value, a pointer, a slice, an
// exported and an unexported struct field, LogValue, and slog's two handlers.
func fuzzRenderings(c upstream.Credentials) map[string]string {
	out := map[string]string{
		"String()":    c.String(),
		"LogValue()":  c.LogValue().String(),
		"LogValue.Re": c.LogValue().Resolve().String(),
		"Sprint":      fmt.Sprint(c),
		"Sprintln":    fmt.Sprintln(c),
		"Errorf %w":   fmt.Errorf("call with %v failed: %w", c, errors.New("x")).Error(),
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %v", "%10.3v", "%-#+ v"} {
		out[verb] = fmt.Sprintf(verb, c)
		out["&"+verb] = fmt.Sprintf(verb, &c)
		out["[]"+verb] = fmt.Sprintf(verb, []upstream.Credentials{c, c})
		out["struct"+verb] = fmt.Sprintf(verb, struct{ Creds upstream.Credentials }{c})
		// In an unexported field fmt cannot call Format: it prints the
		// fields by reflection.
		out["unexported"+verb] = fmt.Sprintf(verb, struct{ creds upstream.Credentials }{c})
		out["unexported&"+verb] = fmt.Sprintf(verb, struct{ creds *upstream.Credentials }{&c})
		out["map"+verb] = fmt.Sprintf(verb, map[string]any{"creds": c})
	}
	// No time attribute: it would differ between c and its placeholders.
	noTime := &slog.HandlerOptions{ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}
	for name, h := range map[string]func(*bytes.Buffer) slog.Handler{
		"slog text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, noTime) },
		"slog json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, noTime) },
	} {
		var b bytes.Buffer
		log := slog.New(h(&b))
		log.Info("call", slog.Any("credentials", c), slog.Any("ptr", &c))
		log.Info("call", "credentials", c, slog.Group("g", slog.Any("c", c)))
		log.With("credentials", c).Info("with")
		out[name] = b.String()
	}
	return out
}

func fuzzPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
