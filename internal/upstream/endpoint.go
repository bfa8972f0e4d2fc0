package upstream

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// Endpoint is one Opentact call: its HTTP method, its path, whether it is
// idempotent, and (by its type parameter) the payload its answer carries.
// Declare one with NewEndpoint and call it with Do.
type Endpoint[T any] struct {
	name       string
	method     string
	route      string   // the path template, as declared: all that logs, spans and metrics see
	literal    []string // the template's literal parts, one more than its parameters
	params     []string // the parameters' names
	idempotent bool
	secretPath bool // a path parameter is a secret (Opentact's DELETE /rest/token/{token})
}

// EndpointOption qualifies an endpoint.
type EndpointOption func(*endpointFlags)

type endpointFlags struct{ idempotent, secretPath bool }

// Idempotent marks an endpoint that may be sent again after a failure
// (AIP-194): a transient failure is retried as the client's RetryPolicy
// says. Without it, a request is retried only when it failed before any
// byte of it was written.
func Idempotent() EndpointOption { return func(f *endpointFlags) { f.idempotent = true } }

// SecretPath marks an endpoint whose path parameters are secrets:
// Opentact's messages are scrubbed of the values (see scrub). Tracing and
// logs see every endpoint's URL as its template only, secret or not.
func SecretPath() EndpointOption { return func(f *endpointFlags) { f.secretPath = true } }

// NewEndpoint declares an Opentact call. name is its metric label (such as
// "token.create"); path is under the client's base URL, with parameters in
// braces ("/rest/token/{uuid}"), filled in order by Request.Path. It
// panics on a malformed path: endpoints are declared at package level.
func NewEndpoint[T any](name, method, path string, opts ...EndpointOption) *Endpoint[T] {
	var f endpointFlags
	for _, o := range opts {
		o(&f)
	}
	e := &Endpoint[T]{name: name, method: method, route: path, idempotent: f.idempotent, secretPath: f.secretPath}
	rest := path
	for {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			break
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			panic(fmt.Sprintf("upstream: endpoint %s: unclosed { in %q", name, path))
		}
		e.literal = append(e.literal, rest[:open])
		e.params = append(e.params, rest[open+1:open+end])
		rest = rest[open+end+1:]
	}
	e.literal = append(e.literal, rest)
	if !strings.HasPrefix(path, "/") || strings.ContainsAny(strings.Join(e.literal, ""), "?#%") {
		panic(fmt.Sprintf("upstream: endpoint %s: path %q must start with / and carry no query, fragment or escape", name, path))
	}
	if method != http.MethodGet && method != http.MethodPost && method != http.MethodPatch && method != http.MethodPut && method != http.MethodDelete {
		panic(fmt.Sprintf("upstream: endpoint %s: method %q", name, method))
	}
	declared = append(declared, name)
	return e
}

// declared lists the names of the endpoints NewEndpoint declared.
var declared []string

// Endpoints lists the name of every declared endpoint, for metrics that
// show each series from the start.
func Endpoints() []string { return slices.Clone(declared) }

// Name is the endpoint's metric label.
func (e *Endpoint[T]) Name() string { return e.name }

// Route is the method and path template, such as "DELETE /rest/token/{token}".
func (e *Endpoint[T]) Route() string { return e.method + " " + e.route }

// IsIdempotent reports whether the endpoint may be sent again.
func (e *Endpoint[T]) IsIdempotent() bool { return e.idempotent }

// spec is what the call path needs of an endpoint, whatever its payload.
func (e *Endpoint[T]) spec() endpointSpec {
	return endpointSpec{name: e.name, method: e.method, route: e.route, idempotent: e.idempotent, secretPath: e.secretPath}
}

type endpointSpec struct {
	name, method, route    string
	idempotent, secretPath bool
}

// escapedPath fills the template with values, each escaped as one path
// segment: a value can never add a segment, a query or a fragment, nor be
// read as "." or "..".
func (e *Endpoint[T]) escapedPath(values []string) (string, error) {
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
