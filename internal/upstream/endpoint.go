package upstream

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Endpoint is one Opentact call: its HTTP method, its path, and whether
// it is idempotent. Make one with NewEndpoint and call it with Do.
type Endpoint struct {
	name       string
	method     string
	route      string   // the path template, as declared: all that logs, spans and metrics see
	literal    []string // the template's literal parts, one more than its parameters
	params     []string // the parameters' names
	idempotent bool
	secretPath bool // a path parameter is a secret (Opentact's DELETE /rest/token/{token})
}

// EndpointOption qualifies an endpoint.
type EndpointOption func(*Endpoint)

// Idempotent marks an endpoint that may be sent again after a failure
// (AIP-194): a transient failure is retried as the client's RetryPolicy
// says. Without it, a request is retried only when it failed before any
// byte of it was written.
func Idempotent() EndpointOption { return func(e *Endpoint) { e.idempotent = true } }

// SecretPath marks an endpoint whose path parameters are secrets:
// Opentact's messages are scrubbed of the values (see scrub). Tracing and
// logs see every endpoint's URL as its template only, secret or not.
func SecretPath() EndpointOption { return func(e *Endpoint) { e.secretPath = true } }

// NewEndpoint describes an Opentact call. name is its metric label (such
// as "token.create"); path is under the client's base URL, with
// parameters in braces ("/rest/token/{uuid}"), filled in order by
// Request.Path.
func NewEndpoint(name, method, path string, opts ...EndpointOption) (*Endpoint, error) {
	e := &Endpoint{name: name, method: method, route: path}
	for _, o := range opts {
		o(e)
	}
	rest := path
	for {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			break
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("upstream: endpoint %s: unclosed { in %q", name, path)
		}
		e.literal = append(e.literal, rest[:open])
		e.params = append(e.params, rest[open+1:open+end])
		rest = rest[open+end+1:]
	}
	e.literal = append(e.literal, rest)
	if !strings.HasPrefix(path, "/") || strings.ContainsAny(strings.Join(e.literal, ""), "?#%") {
		return nil, fmt.Errorf("upstream: endpoint %s: path %q must start with / and carry no query, fragment or escape", name, path)
	}
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodPut, http.MethodDelete:
	default:
		return nil, fmt.Errorf("upstream: endpoint %s: method %q", name, method)
	}
	return e, nil
}

// Name is the endpoint's metric label.
func (e *Endpoint) Name() string { return e.name }

// Route is the method and path template, such as "DELETE /rest/token/{token}".
func (e *Endpoint) Route() string { return e.method + " " + e.route }

// IsIdempotent reports whether the endpoint may be sent again.
func (e *Endpoint) IsIdempotent() bool { return e.idempotent }

// escapedPath fills the template with values, each escaped as one path
// segment: a value can never add a segment, a query or a fragment, nor be
// read as "." or "..".
func (e *Endpoint) escapedPath(values []string) (string, error) {
	if len(values) != len(e.params) {
		return "", fmt.Errorf("endpoint %s takes %d path values, got %d", e.name, len(e.params), len(values))
	}
	if len(values) == 0 {
		return e.literal[0], nil
	}
	var b strings.Builder
	for i, lit := range e.literal {
		b.WriteString(lit)
		if i == len(values) {
			break
		}
		v := values[i]
		if v == "" {
			return "", fmt.Errorf("endpoint %s: empty %s", e.name, e.params[i])
		}
		b.WriteString(escapeSegment(v))
	}
	return b.String(), nil
}

// escapeSegment is url.PathEscape, plus the dots of a "." or ".." segment,
// which a server or proxy would resolve as a relative path.
func escapeSegment(v string) string {
	if strings.Trim(v, ".") == "" {
		return strings.Repeat("%2E", len(v))
	}
	return url.PathEscape(v)
}
