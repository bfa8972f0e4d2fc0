package upstream

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ErrNoCredentials is returned, before any request is made, for a call
// without credentials.
var ErrNoCredentials = errors.New("opentact: no credentials")

// Failure says how a call to Opentact failed.
type Failure int

// The ways a call can fail; see Error.
const (
	// FailStatus: Opentact answered with a status other than 2xx. 3xx
	// answers land here too: redirects are never followed.
	FailStatus Failure = iota + 1
	// FailRejected: a 2xx answer whose body says "success": false.
	FailRejected
	// FailMalformed: a 2xx answer whose body is not the documented
	// {"success", "payload"} JSON envelope.
	FailMalformed
	// FailTooLarge: the body is larger than the client's cap.
	FailTooLarge
	// FailTransport: no complete answer: connection refused or reset, a
	// body cut off before its end, a DNS or TLS failure, a timeout of the
	// transport.
	FailTransport
	// FailCircuitOpen: no request was sent, because the circuit breaker
	// is open after Opentact kept failing.
	FailCircuitOpen
	// FailShed: no request was sent, because the call could not have been
	// answered in time (ShedReason says why) or its caller was gone.
	FailShed
)

// Error is a failed call to Opentact. Its text never holds a credential:
// Message is scrubbed of the caller's credentials and of anything shaped
// like a JWT before the Error is built.
type Error struct {
	Failure Failure
	// StatusCode is the HTTP status of Opentact's answer; 0 when there was
	// none (FailTransport).
	StatusCode int
	// Message is Opentact's own "message", scrubbed; empty when the body
	// had none.
	Message string
	// RetryAfter is the answer's Retry-After, 0 when absent or unreadable;
	// for FailCircuitOpen, how long the breaker stays open.
	RetryAfter time.Duration
	// Attempts is how many requests the call made, retries included.
	Attempts int
	// ShedReason is, for FailShed, one of the Shed* reasons.
	ShedReason string
	// Estimate is, for FailShed, the estimate of Opentact's answer time
	// the call was judged by.
	Estimate time.Duration
	// Fields are Opentact's validation errors, one per failing parameter
	// ("fields" in a 400 answer), sorted by field.
	Fields []FieldError
	// cause is the underlying error for FailTransport and FailMalformed.
	cause error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("opentact: ")
	switch e.Failure {
	case FailStatus:
		fmt.Fprintf(&b, "HTTP %d", e.StatusCode)
	case FailRejected:
		fmt.Fprintf(&b, "HTTP %d with success false", e.StatusCode)
	case FailMalformed:
		fmt.Fprintf(&b, "HTTP %d answer is not the documented JSON", e.StatusCode)
	case FailTooLarge:
		fmt.Fprintf(&b, "HTTP %d answer is too large", e.StatusCode)
	case FailTransport:
		b.WriteString("no complete answer")
	case FailCircuitOpen:
		b.WriteString("circuit breaker open after repeated failures; not calling it for now")
	case FailShed:
		b.WriteString("not called: " + e.ShedReason)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.cause != nil {
		b.WriteString(": ")
		b.WriteString(e.cause.Error())
	}
	return b.String()
}

// FieldError is one entry of a validation error: the parameter's path as
// Opentact names it ("ttl", "params.to") and its message, scrubbed.
type FieldError struct {
	Field, Message string
}

// Unwrap returns the underlying transport or decoding error, if any.
func (e *Error) Unwrap() error { return e.cause }

// maxMessageLen bounds the upstream message copied into an Error.
const maxMessageLen = 512

// What a credential looks like, whoever's it is: Opentact's message may
// quote another user's.
var (
	// jwtLike matches a JWT or a fragment of one: base64url of `{"` and on.
	jwtLike = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{2,}(\.[A-Za-z0-9_-]*)*`)
	// schemeValue matches an Authorization value: a scheme and its token
	// (or a word: see wordLike).
	schemeValue = regexp.MustCompile(`(?i)\b(basic|bearer|digest)\s+[A-Za-z0-9._~+/=-]+`)
	// secretPair matches a secret named as such and its value, as in
	// password=..., "token": "...", api_key: ...
	secretPair = regexp.MustCompile(`(?i)\b(password|passwd|pwd|pass|secret|token|api[_-]?key|apikey|access[_-]?token|refresh[_-]?token|jwt|ha1b?|credentials?)("?\s*[:=]\s*)("[^"]*"|'[^']*'|[^\s,;&"']+)`)
	// opaqueRun matches a long run of base64 characters, the shape of an
	// API token, a hash or an encoded password; opaque decides.
	opaqueRun = regexp.MustCompile(`[A-Za-z0-9_+/=-]{24,}`)
	uuidLike  = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

const redacted = "[REDACTED]"

// opaque reports whether a long run of base64 characters is a secret's
// shape: letters and digits mixed. A UUID (an id Opentact names in its
// messages) is not; nor is a long word or a long number.
func opaque(run string) bool {
	if uuidLike.MatchString(run) {
		return false
	}
	letter := strings.ContainsFunc(run, func(r rune) bool { return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' })
	digit := strings.ContainsFunc(run, func(r rune) bool { return '0' <= r && r <= '9' })
	return letter && digit
}

// wordLike reports whether v reads as a word rather than a token: letters
// only, upper case at most the first.
func wordLike(v string) bool {
	for i, r := range v {
		switch {
		case 'a' <= r && r <= 'z':
		case 'A' <= r && r <= 'Z' && i == 0:
		default:
			return false
		}
	}
	return true
}

// minSecretLen is the length, in characters, below which scrub does not
// search a message for a caller's secret: a secret of one to three
// characters cannot be told from a word or a piece of one ("a" in
// "Invalid"), and is guessed in a few tries anyway.
const minSecretLen = 4

// hidden is what Opentact's messages about one call must not show: the
// caller's credentials and other secrets whole, phone numbers but their
// last four digits.
type hidden struct {
	creds   Credentials
	secrets []string // a SecretPath endpoint's path values, private text
	phones  []string
}

func (h hidden) scrubber() scrubber { return newScrubber(h.creds, h.secrets, h.phones) }

// scrubber scrubs Opentact's messages of one call's secrets.
type scrubber struct {
	// forms are the forms of the values searched for, case-folded (see
	// foldCase), sorted.
	forms []form
}

// form is one form of a value searched for, and what it becomes: mask
// for a phone number, [REDACTED] when mask is empty.
type form struct {
	text, mask string
}

// newScrubber searches for the secrets of creds and more (a SecretPath
// endpoint's path values, private text) of at least minSecretLen
// characters, each as itself, percent-encoded as a query value or as the
// path segment the client sends (escapeSegment), and base64-encoded
// (standard and URL alphabets, padded or not: a password, a Basic value's
// user:password); and the same of the secret in upper and in lower case,
// whose encodings differ from the secret's when it has letters beyond
// ASCII. Every form matches in any letter case. It searches for phones too
// (see phoneForms), to be masked rather than redacted.
func newScrubber(creds Credentials, more, phones []string) scrubber {
	var forms []form
	for _, s := range append(creds.secrets(), more...) {
		if utf8.RuneCountInString(s) < minSecretLen {
			continue
		}
		for _, v := range []string{s, strings.ToUpper(s), strings.ToLower(s)} {
			b := []byte(v)
			for _, f := range []string{v, url.QueryEscape(v), url.PathEscape(v), escapeSegment(v), jsonEscape(v),
				base64.StdEncoding.EncodeToString(b), base64.URLEncoding.EncodeToString(b),
				base64.RawStdEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b)} {
				forms = append(forms, form{text: f})
			}
		}
	}
	for _, p := range phones {
		forms = append(forms, phoneForms(p)...)
	}
	for i := range forms {
		forms[i].text = foldCase(forms[i].text)
	}
	slices.SortFunc(forms, func(a, b form) int { return cmp.Or(strings.Compare(a.text, b.text), strings.Compare(a.mask, b.mask)) })
	return scrubber{forms: slices.Compact(forms)}
}

// phoneForms are the forms of a phone number Opentact may quote: its
// digits with and without a leading + (and the + percent-encoded), each
// masked to its last four digits. A value of fewer than minSecretLen
// digits is not searched for.
func phoneForms(p string) []form {
	digits := strings.TrimPrefix(p, "+")
	if utf8.RuneCountInString(digits) < minSecretLen {
		return nil
	}
	m := phoneMask(digits)
	return []form{{digits, m}, {"+" + digits, m}, {"%2B" + digits, m}, {url.QueryEscape(digits), m}}
}

// phoneMask is how a phone number is shown: its last four digits.
func phoneMask(digits string) string {
	r := []rune(digits)
	return "***" + string(r[max(0, len(r)-4):])
}

// jsonEscape is v as it stands inside a JSON string, as JavaScript writes
// it (no HTML escapes): Opentact may quote a request's JSON in its
// message.
func jsonEscape(v string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) != nil {
		return v
	}
	out := strings.TrimSuffix(b.String(), "\n")
	return strings.TrimSuffix(strings.TrimPrefix(out, `"`), `"`)
}

// foldCase lower-cases s rune by rune, but only where that keeps the
// rune's encoded length (nearly every cased letter), so that an index into
// the result is an index into s. Invalid UTF-8 is kept as it is.
func foldCase(s string) string {
	var b []byte
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if l := unicode.ToLower(r); l != r && utf8.RuneLen(l) == n {
			if b == nil {
				b = []byte(s)
			}
			utf8.EncodeRune(b[i:], l)
		}
		i += n
	}
	if b == nil {
		return s
	}
	return string(b)
}

// alnum reports whether r is a letter or a digit: what a word is made of.
func alnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// secrets replaces the caller's secrets in msg, and masks its phone
// numbers. Every occurrence of every form is found, overlapping ones
// included, and each run of occurrences that overlap or touch becomes one
// [REDACTED] (or one phone's mask, when the run is that phone's alone), so
// a short secret inside a longer one (a password inside a token) never
// leaves the longer one partly shown: the longest match always wins. A
// run is a secret only where it stands whole: when it begins (ends) with
// a letter or digit, the character before (after) it must not be one, or
// the run is a piece of a longer word or token and is left to the shape
// rules below. A phone number stands whole where no digit touches it.
func (s scrubber) secrets(msg string) string {
	if len(s.forms) == 0 || msg == "" {
		return msg
	}
	folded := foldCase(msg)
	type span struct {
		from, to int
		mask     string
	}
	var found []span
	for _, f := range s.forms {
		// Occurrences of one form that overlap or touch are kept as one
		// span: a run of one character repeated stays one span, not one
		// per character.
		cur := span{-1, -1, f.mask}
		for at := 0; at < len(folded); {
			i := strings.Index(folded[at:], f.text)
			if i < 0 {
				break
			}
			if at+i > cur.to {
				if cur.from >= 0 {
					found = append(found, cur)
				}
				cur.from = at + i
			}
			cur.to = at + i + len(f.text)
			at += i + 1
		}
		if cur.from >= 0 {
			found = append(found, cur)
		}
	}
	if len(found) == 0 {
		return msg
	}
	slices.SortFunc(found, func(a, b span) int { return cmp.Compare(a.from, b.from) })
	var b strings.Builder
	last := 0 // msg[:last] is written
	for i := 0; i < len(found); {
		// A run is shown as a phone's mask only when every match in it is
		// that phone's: a phone inside a secret goes with the secret.
		run := found[i]
		for i++; i < len(found) && found[i].from <= run.to; i++ {
			run.to = max(run.to, found[i].to)
			if found[i].mask != run.mask {
				run.mask = ""
			}
		}
		first, _ := utf8.DecodeRuneInString(msg[run.from:])
		before, _ := utf8.DecodeLastRuneInString(msg[:run.from])
		end, _ := utf8.DecodeLastRuneInString(msg[:run.to])
		after, _ := utf8.DecodeRuneInString(msg[run.to:])
		word := alnum
		if run.mask != "" {
			// A phone number stands whole where no digit touches it: a
			// longer run of digits is another number, "tn12029822917" is
			// still the number.
			word = unicode.IsDigit
		}
		if run.from > 0 && word(first) && word(before) || run.to < len(msg) && word(end) && word(after) {
			continue
		}
		b.WriteString(msg[last:run.from])
		b.WriteString(cmp.Or(run.mask, redacted))
		last = run.to
	}
	if last == 0 {
		return msg
	}
	b.WriteString(msg[last:])
	return b.String()
}

// scrub makes an upstream message safe to show: the caller's credentials
// and the values in more (see scrubber), and anything shaped like a
// credential of anyone's (an Authorization value, a JWT, a long opaque
// token or hash, a password=... pair), are replaced; control characters
// become spaces, invalid UTF-8 is dropped, and the result is bounded in
// length.
func scrub(msg string, creds Credentials, more ...string) string {
	return newScrubber(creds, more, nil).scrub(msg)
}

// maxScrubbed bounds the part of a message that is scrubbed at all: what
// is kept is maxMessageLen, and a secret beginning there, in its longest
// form (8 KiB of credential, base64-encoded, percent-escaped), ends well
// within it, while the rest would only cost time.
const maxScrubbed = 32 << 10

// scrub is scrub with the scrubber's secrets.
func (s scrubber) scrub(msg string) string {
	if len(msg) > maxScrubbed {
		msg = msg[:maxScrubbed]
	}
	msg = s.secrets(msg)
	msg = jwtLike.ReplaceAllString(msg, redacted)
	msg = schemeValue.ReplaceAllStringFunc(msg, func(m string) string {
		value := m[strings.LastIndexAny(m, " \t")+1:]
		if wordLike(value) {
			return m // "Basic authentication required"
		}
		return m[:len(m)-len(value)] + redacted
	})
	msg = secretPair.ReplaceAllStringFunc(msg, func(m string) string {
		sub := secretPair.FindStringSubmatch(m)
		prefix := sub[1] + sub[2]
		if q := m[len(prefix)]; q == '"' || q == '\'' {
			return prefix + string(q) + redacted + string(q) // "password": "[REDACTED]"
		}
		return prefix + redacted
	})
	msg = opaqueRun.ReplaceAllStringFunc(msg, func(run string) string {
		if opaque(run) {
			return redacted
		}
		return run
	})
	msg = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(msg, ""))
	msg = strings.TrimSpace(msg)
	if len(msg) > maxMessageLen {
		cut := maxMessageLen
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "..."
	}
	return msg
}

// maxRetryAfter bounds a Retry-After hint; larger values are clamped.
const maxRetryAfter = time.Hour

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP date
// (RFC 9110, section 10.2.3). It returns 0 when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if strings.Trim(v, "0123456789") == "" {
		// delay-seconds: digits only. Too many digits for an int64 is a
		// huge delay (ParseInt gives the bound with ErrRange), not none.
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return 0
		}
		return time.Duration(min(secs, int64(maxRetryAfter/time.Second))) * time.Second
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	return max(0, min(at.Sub(now), maxRetryAfter))
}
