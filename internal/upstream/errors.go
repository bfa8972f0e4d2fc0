package upstream

import (
	"errors"
	"fmt"
	"net/http"
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

// Unwrap returns the underlying transport or decoding error, if any.
func (e *Error) Unwrap() error { return e.cause }

// maxMessageLen bounds the upstream message copied into an Error.
const maxMessageLen = 512

// jwtLike matches a JWT or a fragment of one: base64url of `{"` and on.
var jwtLike = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{2,}(\.[A-Za-z0-9_-]*)*`)

const redacted = "[REDACTED]"

// scrub makes an upstream message safe to show: the caller's credentials
// and anything JWT-shaped are replaced, control characters become spaces,
// invalid UTF-8 is dropped, and the result is bounded in length.
func scrub(msg string, creds Credentials) string {
	// Longest first: a short secret (a password) inside a longer one (a
	// token) must not break the longer one's match and leave it mostly shown.
	secrets := creds.secrets()
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, redacted)
		}
	}
	msg = jwtLike.ReplaceAllString(msg, redacted)
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
