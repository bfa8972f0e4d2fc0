package upstream

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
)

// Kind is one of the credential headers Opentact accepts.
// See https://api.opentact.org (authentication) for each kind.
type Kind int

// The credential kinds, in the order they are forwarded and reported.
const (
	Authorization      Kind = iota // Basic base64(email:password), or a bearer token from POST /rest/token
	XAuthToken                     // an Opentact JWT, the `token` of an earlier GET /rest/auth
	XAuthGoogleToken               // a Google sign-in token
	XAuthFacebookToken             // a Facebook sign-in token
	XAuthHA1BToken                 // md5(login@domain:domain:password)
	numKinds
)

// headerNames are spelled as in Opentact's documentation; they are written
// to the upstream request as is, bypassing Go's canonicalisation.
var headerNames = [numKinds]string{
	"Authorization",
	"X-Auth-Token",
	"X-Auth-Google-Token",
	"X-Auth-Facebook-Token",
	"X-Auth-HA1B-Token",
}

// metadataKeys are the lower-case gRPC metadata keys of the same headers.
var metadataKeys = func() (keys [numKinds]string) {
	for k, h := range headerNames {
		keys[k] = strings.ToLower(h)
	}
	return keys
}()

// Header is the HTTP header name of the kind, as Opentact spells it.
func (k Kind) Header() string { return headerNames[k] }

// MetadataKey is the gRPC metadata key of the kind (the header in lower case).
func (k Kind) MetadataKey() string { return metadataKeys[k] }

// String names the kind by its metadata key.
func (k Kind) String() string {
	if k < 0 || k >= numKinds {
		return "Kind(" + strconv.Itoa(int(k)) + ")"
	}
	return metadataKeys[k]
}

// Kinds lists every credential kind.
func Kinds() []Kind {
	ks := make([]Kind, numKinds)
	for i := range ks {
		ks[i] = Kind(i)
	}
	return ks
}

// maxCredentialLen bounds one credential value. Real ones (a JWT, a Google
// ID token) are a few KiB at most.
const maxCredentialLen = 8 << 10

// ErrInvalidCredential is wrapped by every error ParseCredentials returns.
// Those errors name the header, never its value.
var ErrInvalidCredential = errors.New("invalid credential header")

// Credentials are the credential headers one caller presented. The zero
// value has none. Its String, Format and LogValue name the kinds present
// and never a value, so a Credentials cannot leak through fmt or slog.
type Credentials struct {
	// Each value is behind a pointer, nil when absent, never changed once
	// set: in an unexported field fmt cannot call Format and prints the
	// fields it finds, but a pointer to a string below the top level it
	// prints as an address, whatever the verb. (A pointer to an array or
	// a struct it would follow, for a verb such as %s.)
	values [numKinds]*string
}

// ParseCredentials collects the credential headers from values, a lookup
// by lower-case metadata key such as metadata.MD.Get. An empty value counts
// as absent. A header sent twice, longer than 8 KiB, or holding a byte that
// is not printable ASCII is an error wrapping ErrInvalidCredential.
func ParseCredentials(values func(key string) []string) (Credentials, error) {
	var c Credentials
	for k := range numKinds {
		vs := values(metadataKeys[k])
		if len(vs) == 0 {
			continue
		}
		if len(vs) > 1 {
			return Credentials{}, fmt.Errorf("%w: %s sent %d times", ErrInvalidCredential, metadataKeys[k], len(vs))
		}
		if err := checkValue(vs[0]); err != nil {
			return Credentials{}, fmt.Errorf("%w: %s %s", ErrInvalidCredential, metadataKeys[k], err)
		}
		if v := vs[0]; v != "" {
			c.values[k] = &v
		}
	}
	return c, nil
}

// checkValue accepts what HTTP and gRPC both allow in a header value:
// printable ASCII and spaces (a Basic header is base64, a JWT is base64url).
func checkValue(v string) error {
	if len(v) > maxCredentialLen {
		return fmt.Errorf("is longer than %d bytes", maxCredentialLen)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c > 0x7e {
			return errors.New("holds a control or non-ASCII character")
		}
	}
	return nil
}

// NewCredentials builds Credentials from a value per kind; empty values
// count as absent. Values go through ParseCredentials' own checks.
func NewCredentials(values map[Kind]string) (Credentials, error) {
	byKey := make(map[string][]string, len(values))
	for k, v := range values {
		if k < 0 || k >= numKinds {
			return Credentials{}, fmt.Errorf("%w: unknown kind %d", ErrInvalidCredential, int(k))
		}
		byKey[metadataKeys[k]] = []string{v}
	}
	return ParseCredentials(func(key string) []string { return byKey[key] })
}

// Empty reports whether no credential is present.
func (c Credentials) Empty() bool { return c == Credentials{} }

// Has reports whether the kind is present.
func (c Credentials) Has(k Kind) bool { return c.Value(k) != "" }

// Value returns the kind's value, or "" if absent. Handle it as a secret.
func (c Credentials) Value(k Kind) string {
	if p := c.values[k]; p != nil {
		return *p
	}
	return ""
}

// all is every kind's value, "" for those absent.
func (c Credentials) all() [numKinds]string {
	var out [numKinds]string
	for k := range out {
		out[k] = c.Value(Kind(k))
	}
	return out
}

// setOn writes every present credential onto h under Opentact's spelling.
func (c Credentials) setOn(h http.Header) {
	for k, v := range c.all() {
		if v != "" {
			h[headerNames[k]] = []string{v}
		}
	}
}

// secrets lists every string that must never leave the facade: each value,
// and for Authorization its token without the scheme and, for Basic, the
// decoded user:password and password.
func (c Credentials) secrets() []string {
	var out []string
	for k, v := range c.all() {
		if v == "" {
			continue
		}
		out = append(out, v)
		if Kind(k) != Authorization {
			continue
		}
		scheme, token, ok := strings.Cut(v, " ")
		if !ok {
			continue
		}
		token = strings.TrimSpace(token)
		out = append(out, token)
		if !strings.EqualFold(scheme, "Basic") {
			continue
		}
		if raw, err := base64.StdEncoding.DecodeString(token); err == nil {
			out = append(out, string(raw))
			if _, password, ok := strings.Cut(string(raw), ":"); ok {
				out = append(out, password)
			}
		}
	}
	return out
}

// kindNames lists the present kinds by metadata key, e.g.
// "authorization,x-auth-token".
func (c Credentials) kindNames() string {
	var b strings.Builder
	for k, v := range c.all() {
		if v == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(metadataKeys[k])
	}
	return b.String()
}

// String names the kinds present, never a value.
func (c Credentials) String() string { return "Credentials[" + c.kindNames() + "]" }

// Format prints String for every verb, so no fmt verb (%#v, %d, %x)
// can reach the values.
func (c Credentials) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// LogValue logs the kinds present, never a value.
func (c Credentials) LogValue() slog.Value { return slog.StringValue(c.kindNames()) }
