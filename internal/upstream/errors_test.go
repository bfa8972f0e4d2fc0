package upstream

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func creds(t *testing.T, values map[Kind]string) Credentials {
	t.Helper()
	c, err := NewCredentials(values)
	if err != nil {
		t.Fatalf("NewCredentials: %v", err)
	}
	return c
}

func TestScrub(t *testing.T) {
	t.Parallel()
	const (
		password = "Pw-Quokka-7731"
		xToken   = "xat-Wombat-0042"
		google   = "goog-Platypus-5517"
		facebook = "fb-Echidna-8823"
		ha1b     = "9f86d081884c7d659a2feaa0c55ad015"
		bearer   = "tok-Bilby-3306"
		jwt      = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
	)
	b64 := base64.StdEncoding.EncodeToString([]byte("opentact@callify.io:" + password))
	all := creds(t, map[Kind]string{
		Authorization:      "Basic " + b64,
		XAuthToken:         xToken,
		XAuthGoogleToken:   google,
		XAuthFacebookToken: facebook,
		XAuthHA1BToken:     ha1b,
	})
	tests := []struct {
		name  string
		creds Credentials
		msg   string
		want  string
	}{
		{"plain text kept", all, "Invalid credentials", "Invalid credentials"},
		{"Basic header", all, "header Basic " + b64 + " refused", "header [REDACTED] refused"},
		{"basic scheme in lower case", all, "header basic " + b64, "header [REDACTED]"}, // the value, in any case
		{"base64 part", all, "cannot decode " + b64, "cannot decode [REDACTED]"},
		{"user:password", all, "no user opentact@callify.io:" + password, "no user [REDACTED]"},
		{"password", all, "password " + password + " is wrong", "password [REDACTED] is wrong"},
		{"password twice", all, password + password, "[REDACTED]"}, // secrets that touch are one run
		{"x-auth-token", all, "token " + xToken + " expired", "token [REDACTED] expired"},
		{"google token", all, "google " + google, "google [REDACTED]"},
		{"facebook token", all, "facebook " + facebook, "facebook [REDACTED]"},
		{"ha1b", all, "digest " + ha1b + " mismatch", "digest [REDACTED] mismatch"},
		{"bearer header", creds(t, map[Kind]string{Authorization: "Bearer " + bearer}), "Bearer " + bearer + " revoked", "[REDACTED] revoked"},
		{"bearer token", creds(t, map[Kind]string{Authorization: "Bearer " + bearer}), "token " + bearer + " revoked", "token [REDACTED] revoked"},
		{"JWT not among the credentials", Credentials{}, "jwt " + jwt + " expired", "jwt [REDACTED] expired"},
		{"JWT header only", Credentials{}, "jwt eyJhbGciOiJIUzI1NiJ9", "jwt [REDACTED]"},
		{"JWT header and payload", Credentials{}, "jwt=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.", "jwt=[REDACTED]"},
		{"no credentials", Credentials{}, "password " + password, "password " + password},
		{"control characters become spaces", Credentials{}, "a\nb\tc\x00d\x7fe\u0085f", "a b c d e f"},
		{"surrounding space trimmed", Credentials{}, "\n  message \r\n", "message"},
		{"invalid UTF-8 dropped", Credentials{}, "bad \xff\xfebyte", "bad byte"},
		{"Unicode kept", Credentials{}, "Неверный пароль — ошибка ✓", "Неверный пароль — ошибка ✓"},
		{"empty", all, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := scrub(tt.msg, tt.creds); got != tt.want {
				t.Errorf("scrub(%q) = %q, want %q", tt.msg, got, tt.want)
			}
		})
	}
}

// TestScrubSecretForms: a caller's secret goes whole however Opentact
// quotes it: percent-encoded as a query value or as the path segment the
// client sent, base64-encoded (the password, the Basic value's
// user:password, in either alphabet, padded or not), or in another letter
// case; the words around it stay.
func TestScrubSecretForms(t *testing.T) {
	t.Parallel()
	const (
		email    = "anna@example.com"
		password = "p@ss w/rd+Quokka%77"
		cyrillic = "пароль-Квокка-9"
		token    = "Tok/en+Sec ret"
	)
	basicOf := func(pw string) Credentials {
		return creds(t, map[Kind]string{Authorization: "Basic " + base64.StdEncoding.EncodeToString([]byte(email+":"+pw))})
	}
	pw, cy := basicOf(password), basicOf(cyrillic)
	userPass := []byte(email + ":" + password)
	for _, tt := range []struct {
		name  string
		creds Credentials
		more  []string
		form  string
	}{
		{"as it is", pw, nil, password},
		{"upper case", pw, nil, strings.ToUpper(password)},
		{"lower case", pw, nil, strings.ToLower(password)},
		{"query-escaped", pw, nil, url.QueryEscape(password)},
		{"query-escaped, hex in lower case", pw, nil, strings.ToLower(url.QueryEscape(password))},
		{"path-escaped", pw, nil, url.PathEscape(password)},
		{"base64", pw, nil, base64.StdEncoding.EncodeToString([]byte(password))},
		{"base64url", pw, nil, base64.URLEncoding.EncodeToString([]byte(password))},
		{"base64 unpadded", pw, nil, base64.RawStdEncoding.EncodeToString([]byte(password))},
		{"upper case, then base64", pw, nil, base64.StdEncoding.EncodeToString([]byte(strings.ToUpper(password)))},
		{"user:password base64url", pw, nil, base64.URLEncoding.EncodeToString(userPass)},
		{"user:password base64 unpadded", pw, nil, base64.RawStdEncoding.EncodeToString(userPass)},
		{"user:password query-escaped", pw, nil, url.QueryEscape(email + ":" + password)},
		{"Cyrillic upper case", cy, nil, strings.ToUpper(cyrillic)},
		{"Cyrillic query-escaped", cy, nil, url.QueryEscape(cyrillic)},
		{"Cyrillic query-escaped upper case", cy, nil, url.QueryEscape(strings.ToUpper(cyrillic))},
		{"path value as sent", Credentials{}, []string{token}, "Tok%2Fen+Sec%20ret"},
		{"path value query-escaped", Credentials{}, []string{token}, "Tok%2Fen%2BSec+ret"},
		{"path value in lower case", Credentials{}, []string{token}, "tok%2fen+sec%20ret"},
		{"dot path value as sent", Credentials{}, []string{"...."}, "%2E%2E%2E%2E"},
	} {
		msg := "value (" + tt.form + ") is not accepted"
		got := scrub(msg, tt.creds, tt.more...)
		if got != "value ([REDACTED]) is not accepted" {
			t.Errorf("%s: scrub(%q) = %q", tt.name, msg, got)
		}
	}
}

// TestScrubKeepsWords: a caller's secret is searched for only from
// minSecretLen characters, and goes only where it stands whole, never out
// of a longer word or token.
func TestScrubKeepsWords(t *testing.T) {
	t.Parallel()
	basicOf := func(pw string) Credentials {
		return creds(t, map[Kind]string{Authorization: "Basic " + base64.StdEncoding.EncodeToString([]byte("a@b.c:"+pw))})
	}
	for _, tt := range []struct{ password, msg, want string }{
		// Too short to be told from a word: not searched for.
		{"a", "Invalid credentials", "Invalid credentials"},
		{"x", "Token already exists", "Token already exists"},
		{"in", "Invalid credentials", "Invalid credentials"},
		{"ex", "Token already exists", "Token already exists"},
		{"ist", "Token already exists", "Token already exists"},
		{"al", "Validation failed: the value is invalid", "Validation failed: the value is invalid"},
		{"abc", "password abc is wrong", "password abc is wrong"},
		// Long enough: only whole.
		{"vali", "Invalid credentials; validation failed", "Invalid credentials; validation failed"},
		{"vali", "vali is wrong", "[REDACTED] is wrong"},
		{"VALI", "password vali, wrong", "password [REDACTED], wrong"},
		{"abcd", "(abcd)", "([REDACTED])"},
		{"abcd", "abcd1 abcde xabcd", "abcd1 abcde xabcd"},
		{"account", "Not enough accounts", "Not enough accounts"},
		{"account", "Not enough account balance", "Not enough [REDACTED] balance"}, // cannot be told from the secret
		{"пароль", "Непароль, пароль1", "Непароль, пароль1"},
		{"пароль", "«ПАРОЛЬ»", "«[REDACTED]»"},
		// Non-alphanumeric ends bound themselves.
		{"-Quokka-", "x-Quokka-y", "x[REDACTED]y"},
	} {
		if got := scrub(tt.msg, basicOf(tt.password)); got != tt.want {
			t.Errorf("password %q: scrub(%q) = %q, want %q", tt.password, tt.msg, got, tt.want)
		}
	}
}

// TestScrubOverlappingSecrets: one credential can hold another (a short
// password inside a token); the longer one must still vanish whole.
// TestScrubOthersSecrets: Opentact's message may quote credentials that
// are not the caller's (another user's, a server's); anything shaped like
// one goes, while the words and ids a caller needs stay.
func TestScrubOthersSecrets(t *testing.T) {
	t.Parallel()
	other := base64.StdEncoding.EncodeToString([]byte("anna@example.com:S3cr3t-Pa55"))
	for _, tt := range []struct{ msg, want string }{
		{"user Basic " + other + " is locked", "user Basic [REDACTED] is locked"},
		{"Authorization: Bearer 7VLyaDSQ8W48IETeNBfxbBqwgwzWLTvFojSnLgiXP5X8NSoE refused", "Authorization: Bearer [REDACTED] refused"},
		{"token 7VLyaDSQ8W48IETeNBfxbBqwgwzWLTvFojSnLgiXP5X8NSoE expired", "token [REDACTED] expired"},
		{"login failed: password=hunter2 for anna", "login failed: password=[REDACTED] for anna"},
		{`bad body {"email":"a@b.c","password":"hunter2"}`, `bad body {"email":"a@b.c","password":"[REDACTED]"}`},
		{"api_key: k-9f2 rejected", "api_key: [REDACTED] rejected"},
		{"ha1b 9f86d081884c7d659a2feaa0c55ad015 mismatch", "ha1b [REDACTED] mismatch"},
		{"jwt eyJhbGciOiJIUzI1NiJ9.eyJ1dWlkIjoiMSJ9.c2ln of another user", "jwt [REDACTED] of another user"},
		// What must stay readable.
		{"Token not found", "Token not found"},
		{"Basic authentication required", "Basic authentication required"},
		{"Bearer token expired", "Bearer token expired"},
		{"Token bac27d93-df33-4e47-b4a1-edfcae0d3654 not found", "Token bac27d93-df33-4e47-b4a1-edfcae0d3654 not found"},
		{"params.to: invalid integer number 12017771234", "params.to: invalid integer number 12017771234"},
		{"internationalization-and-localization is not a token", "internationalization-and-localization is not a token"},
		{"Not enough account balance", "Not enough account balance"},
	} {
		if got := scrub(tt.msg, Credentials{}); got != tt.want {
			t.Errorf("scrub(%q)\n got %q\nwant %q", tt.msg, got, tt.want)
		}
	}
}

func TestScrubOverlappingSecrets(t *testing.T) {
	t.Parallel()
	const password = "hunter2"
	const token = "fb-hunter2-Echidna-8823"
	c := creds(t, map[Kind]string{
		Authorization:      "Basic " + base64.StdEncoding.EncodeToString([]byte("a@b.c:"+password)),
		XAuthFacebookToken: token,
	})
	got := scrub("token "+token+" refused", c)
	for _, part := range []string{"Echidna", "8823", password} {
		if strings.Contains(got, part) {
			t.Errorf("scrub = %q, still holds %q of the token", got, part)
		}
	}
}

func TestScrubTruncates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		msg     string
		wantCut bool
	}{
		{"512 bytes kept", strings.Repeat("a", 512), false},
		{"513 bytes cut", strings.Repeat("a", 513), true},
		{"10 KiB Cyrillic", strings.Repeat("Ж", 5<<10), true},
		{"10 KiB Cyrillic off by one byte", "x" + strings.Repeat("Ж", 5<<10), true},
		{"four-byte runes", "xy" + strings.Repeat("😀", 1<<10), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := scrub(tt.msg, Credentials{})
			if !utf8.ValidString(got) {
				t.Errorf("scrub = %q, not valid UTF-8", got)
			}
			if !tt.wantCut {
				if got != tt.msg {
					t.Errorf("scrub cut a %d-byte message to %d", len(tt.msg), len(got))
				}
				return
			}
			kept, ok := strings.CutSuffix(got, "...")
			if !ok || !strings.HasPrefix(tt.msg, kept) {
				t.Errorf("scrub = %q, want a prefix of the message and ...", got)
			}
			if len(kept) > 512 || len(kept) < 512-utf8.UTFMax {
				t.Errorf("kept %d bytes, want as close to 512 as rune boundaries allow", len(kept))
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 1, 16, 14, 15, 48, 0, time.UTC)
	tests := []struct {
		v    string
		want time.Duration
	}{
		{"", 0},
		{"7", 7 * time.Second},
		{"120", 2 * time.Minute},
		{"0", 0},
		{"-5", 0},
		{"+5", 0}, // delay-seconds is digits only
		{"1.5", 0},
		{"7s", 0},
		{" 7", 0},
		{"soon", 0},
		{"3600", time.Hour},
		{"3601", time.Hour},
		{"86400000", time.Hour},
		{"9223372036854775807", time.Hour},
		{"99999999999999999999999", time.Hour},
		{"-99999999999999999999999", 0},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second},
		{"Tue, 16 Jan 2024 14:16:18 GMT", 30 * time.Second},
		{"Tuesday, 16-Jan-24 14:16:18 GMT", 30 * time.Second}, // RFC 850
		{"Tue Jan 16 14:16:18 2024", 30 * time.Second},        // ANSI C asctime
		{now.Format(http.TimeFormat), 0},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{now.Add(48 * time.Hour).Format(http.TimeFormat), time.Hour},
		{"Tue, 16 Jan 2024 14:16:18 XYZ", 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.v, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.v, got, tt.want)
		}
	}
}

func TestErrorText(t *testing.T) {
	t.Parallel()
	cause := errors.New("connection refused")
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{Failure: FailStatus, StatusCode: 503}, "opentact: HTTP 503"},
		{&Error{Failure: FailStatus, StatusCode: 401, Message: "Invalid credentials"}, "opentact: HTTP 401: Invalid credentials"},
		{&Error{Failure: FailStatus, StatusCode: 302}, "opentact: HTTP 302"},
		{&Error{Failure: FailRejected, StatusCode: 200, Message: "Account suspended"}, "opentact: HTTP 200 with success false: Account suspended"},
		{&Error{Failure: FailMalformed, StatusCode: 200, cause: errors.New("unexpected end of JSON input")}, "opentact: HTTP 200 answer is not the documented JSON: unexpected end of JSON input"},
		{&Error{Failure: FailTooLarge, StatusCode: 200}, "opentact: HTTP 200 answer is too large"},
		{&Error{Failure: FailTransport, cause: cause}, "opentact: no complete answer: connection refused"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	wrapped := fmt.Errorf("get auth: %w", &Error{Failure: FailTransport, cause: io.ErrUnexpectedEOF})
	if !errors.Is(wrapped, io.ErrUnexpectedEOF) {
		t.Errorf("%v does not unwrap to its cause", wrapped)
	}
	if errors.Is(&Error{Failure: FailStatus, StatusCode: 504}, context.DeadlineExceeded) {
		t.Error("an HTTP 504 from Opentact reads as the caller's own deadline")
	}
}

// FuzzScrub: whatever Opentact's message and the caller's password, scrub
// never panics and returns valid UTF-8 of bounded length; and a message
// that is only a form of the password (of minSecretLen characters or
// more), in whatever letter case, is redacted whole.
func FuzzScrub(f *testing.F) {
	f.Add("Invalid credentials", "a", 0)
	f.Add("Token already exists", "Pw/Quokka+77 31%x", 3)
	f.Add("value (p%40ss+w%2Frd) refused", "p@ss w/rd", 1)
	f.Add("«ПАРОЛЬ»", "пароль", 5)
	f.Fuzz(func(t *testing.T, msg, password string, form int) {
		c, err := NewCredentials(map[Kind]string{Authorization: "Basic " + base64.StdEncoding.EncodeToString([]byte("a@b.c:"+password))})
		if err != nil {
			return
		}
		got := scrub(msg, c)
		if !utf8.ValidString(got) || len(got) > maxMessageLen+len("...") {
			t.Fatalf("scrub(%q) = %q: invalid UTF-8 or too long", msg, got)
		}
		if utf8.RuneCountInString(password) < minSecretLen {
			return
		}
		b := []byte(password)
		forms := []string{password, strings.ToUpper(password), strings.ToLower(password),
			url.QueryEscape(password), url.PathEscape(password), escapeSegment(password),
			base64.StdEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b)}
		whole := forms[uint(form)%uint(len(forms))]
		if got := scrub(whole, c); got != redacted {
			t.Errorf("scrub(%q), a form of password %q, = %q, want %s", whole, password, got, redacted)
		}
	})
}

// TestScrubPrivateTextAndPhones: a request's private text goes as a
// secret does, and its phone numbers are shown by their last four digits,
// quoted with or without a leading +, and only where no digit touches
// them.
func TestScrubPrivateTextAndPhones(t *testing.T) {
	t.Parallel()
	const text = `Meet me at "Joe's" <5pm> & call`
	h := hidden{secrets: []string{text}, phones: []string{"+12029822917", "12025550123"}}
	for _, tt := range []struct{ msg, want string }{
		{"message " + text + " rejected", "message [REDACTED] rejected"},
		{`body {"message":"Meet me at \"Joe's\" <5pm> & call"}`, `body {"message":"[REDACTED]"}`},
		{"message " + url.QueryEscape(text), "message [REDACTED]"},
		{"TNLease 12029822917 not found", "TNLease ***2917 not found"},
		{"from +12029822917 to 12025550123", "from ***2917 to ***0123"},
		{"from=%2B12029822917", "from=***2917"},
		{"tn12029822917 is not yours", "tn***2917 is not yours"},
		{"order 912029822917 is another number", "order 912029822917 is another number"},
		{"text " + text + " to 12025550123", "text [REDACTED] to ***0123"},
		{"text Call 12025550123 now", "text Call ***0123 now"},
	} {
		if got := h.scrubber().scrub(tt.msg); got != tt.want {
			t.Errorf("scrub(%q)\n got %q\nwant %q", tt.msg, got, tt.want)
		}
	}
	// A phone number inside the private text goes with the text.
	h = hidden{secrets: []string{"Call 12025550123 now"}, phones: []string{"12025550123"}}
	if got := h.scrubber().scrub("text Call 12025550123 now!"); got != "text [REDACTED]!" {
		t.Errorf("a phone inside the text: %q, want the text redacted whole", got)
	}
}
