// Package declare reads what the proto declares of each Opentact call: the
// (opentact.api.v1.upstream) method option, the standard idempotency_level
// and the (google.api.http) REST route. It checks that a declaration says
// everything the engine, the sandbox and the CLI need, so that a method
// missing a piece fails when it is read, not when it is called.
package declare

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	apiv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/api/v1"
)

// Kind is how a call may be repeated (AIP-194), from its idempotency_level.
type Kind int

const (
	// Write is a call with side effects that is not idempotent: it is sent
	// again only when no byte of it was sent, never shared, never cached.
	Write Kind = iota
	// Idempotent may be sent again after a transient failure.
	Idempotent
	// Read has no side effects: it may be retried, and identical calls
	// under way at once may share one request (request coalescing).
	Read
	// Stream is a server-streaming method no declaration serves: its
	// handler is written by hand (engine.Options.Streams).
	Stream
	// Local is a unary method that is no Opentact call: the facade answers
	// it itself, with a handler written by hand (engine.Options.Local).
	Local
)

func (k Kind) String() string {
	switch k {
	case Read:
		return "read"
	case Idempotent:
		return "idempotent"
	case Stream:
		return "stream"
	case Local:
		return "local"
	}
	return "write"
}

// BodyKind is what a call's request body holds.
type BodyKind int

const (
	// NoBody: the request has no body.
	NoBody BodyKind = iota
	// BodyRest: every request field the path and the query do not take.
	BodyRest
	// BodyField: one message field's value.
	BodyField
)

// Call is one declared Opentact call.
type Call struct {
	// Method is the gRPC method.
	Method protoreflect.MethodDescriptor
	// FullMethod is "/package.Service/Method", as gRPC names it.
	FullMethod string
	// Name is the endpoint's metric label, such as "token.create".
	Name string
	// Kind says whether the call may be shared and retried.
	Kind Kind
	// Cache lets the response cache keep its answers.
	Cache bool

	// HTTPMethod and Path are Opentact's method and path template.
	HTTPMethod string
	Path       string
	// PathFields are the request fields the path's parameters take, in
	// the template's order.
	PathFields []protoreflect.FieldDescriptor
	// SecretPath is set when a path value is a secret: the engine shows the
	// request by its template alone, and scrubs the values from Opentact's
	// messages.
	SecretPath bool
	// Query are the request fields sent as query parameters.
	Query []protoreflect.FieldDescriptor
	// Body is what the body holds; BodyFields lists the fields it takes
	// (for BodyField, the one field).
	Body       BodyKind
	BodyFields []protoreflect.FieldDescriptor
	// Multipart sends the body as multipart/form-data.
	Multipart bool
	// Payload is the response field that Opentact's payload fills; nil
	// when the payload is the response message itself.
	Payload protoreflect.FieldDescriptor
	// RequestID is the request field holding the caller's idempotency key
	// for a write, never sent to Opentact; nil when the method has none.
	RequestID protoreflect.FieldDescriptor

	// REST is the facade's own route (google.api.http), if declared.
	REST *Route
}

// Route is one REST route of the facade.
type Route struct {
	Method  string // GET, POST, ...
	Pattern string // "/v1/tokens/{uuid}"
	Body    string // google.api.http's body: "*", a field, or ""
}

// HasOption reports whether md carries an (opentact.api.v1.upstream)
// option, i.e. is a declared call.
func HasOption(md protoreflect.MethodDescriptor) bool {
	opts, ok := md.Options().(*descriptorpb.MethodOptions)
	return ok && opts != nil && proto.HasExtension(opts, apiv1.E_Upstream)
}

// nameRE is the form of an endpoint name: lower-case words joined by dots.
var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`)

// isStream reports whether md is a server-streaming method without an
// upstream declaration: no one Opentact call answers it, so its handler
// is written by hand and given to the engine (engine.Options.Streams).
func isStream(md protoreflect.MethodDescriptor) bool {
	return md.IsStreamingServer() && !md.IsStreamingClient() && !HasOption(md)
}

// isLocal reports whether md is a unary method without an upstream
// declaration: the facade answers it itself (engine.Options.Local).
func isLocal(md protoreflect.MethodDescriptor) bool {
	return !md.IsStreamingServer() && !md.IsStreamingClient() && !HasOption(md)
}

// fullMethod is md's name as gRPC has it: "/package.Service/Method".
func fullMethod(md protoreflect.MethodDescriptor) string {
	return "/" + string(md.Parent().FullName()) + "/" + string(md.Name())
}

// Method returns md's declaration, or an error saying what it lacks or gets
// wrong.
func Method(md protoreflect.MethodDescriptor) (*Call, error) {
	c, err := read(md)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", md.FullName(), err)
	}
	return c, nil
}

func read(md protoreflect.MethodDescriptor) (*Call, error) {
	opts, _ := md.Options().(*descriptorpb.MethodOptions)
	if opts == nil || !proto.HasExtension(opts, apiv1.E_Upstream) {
		return nil, fmt.Errorf("no (opentact.api.v1.upstream) option")
	}
	up := proto.GetExtension(opts, apiv1.E_Upstream).(*apiv1.Upstream)
	if md.IsStreamingClient() || md.IsStreamingServer() {
		return nil, fmt.Errorf("a streaming method cannot be one Opentact call")
	}
	c := &Call{
		Method:     md,
		FullMethod: fullMethod(md),
		Name:       up.GetName(),
		Cache:      up.GetCache(),
		Multipart:  up.GetMultipart(),
	}
	switch opts.GetIdempotencyLevel() {
	case descriptorpb.MethodOptions_NO_SIDE_EFFECTS:
		c.Kind = Read
	case descriptorpb.MethodOptions_IDEMPOTENT:
		c.Kind = Idempotent
	}
	if !nameRE.MatchString(c.Name) {
		return nil, fmt.Errorf("name %q: want lower-case words joined by dots, such as \"token.create\"", c.Name)
	}
	if c.Cache && c.Kind != Read {
		return nil, fmt.Errorf("cache is declared on a %s; only reads (idempotency_level NO_SIDE_EFFECTS) may be cached", c.Kind)
	}
	c.HTTPMethod, c.Path = pattern(up)
	if c.HTTPMethod == "" {
		return nil, fmt.Errorf("no HTTP method and path (get, post, put, patch or delete)")
	}
	in, out := md.Input(), md.Output()
	bound := map[protoreflect.FieldDescriptor]string{}
	bind := func(fd protoreflect.FieldDescriptor, as string) error {
		if prev, ok := bound[fd]; ok {
			return fmt.Errorf("field %s is both in the %s and in the %s", fd.Name(), prev, as)
		}
		bound[fd] = as
		return nil
	}
	params, err := templateParams(c.Path)
	if err != nil {
		return nil, err
	}
	for _, p := range params {
		fd := in.Fields().ByName(protoreflect.Name(p))
		if fd == nil {
			return nil, fmt.Errorf("path parameter {%s} names no field of %s", p, in.FullName())
		}
		if !scalar(fd) {
			return nil, fmt.Errorf("path parameter {%s} must be a scalar field", p)
		}
		if err := bind(fd, "path"); err != nil {
			return nil, err
		}
		c.PathFields = append(c.PathFields, fd)
	}
	for _, s := range up.GetSecretPath() {
		fd := in.Fields().ByName(protoreflect.Name(s))
		if fd == nil || !slices.Contains(c.PathFields, fd) {
			return nil, fmt.Errorf("secret_path %q names no path parameter", s)
		}
		c.SecretPath = true
	}
	if name := up.GetRequestId(); name != "" {
		fd := in.Fields().ByName(protoreflect.Name(name))
		if fd == nil || fd.Kind() != protoreflect.StringKind || !scalar(fd) {
			return nil, fmt.Errorf("request_id %q must name a string field of %s", name, in.FullName())
		}
		if c.Kind != Write {
			return nil, fmt.Errorf("request_id is declared on a %s; a read or an idempotent call needs no idempotency key", c.Kind)
		}
		if err := bind(fd, "request_id"); err != nil {
			return nil, err
		}
		c.RequestID = fd
	}
	for _, q := range up.GetQuery() {
		fd := in.Fields().ByName(protoreflect.Name(q))
		if fd == nil {
			return nil, fmt.Errorf("query %q names no field of %s", q, in.FullName())
		}
		if !scalar(fd) {
			return nil, fmt.Errorf("query field %s must be a scalar", q)
		}
		if err := bind(fd, "query"); err != nil {
			return nil, err
		}
		c.Query = append(c.Query, fd)
	}
	switch body := up.GetBody(); body {
	case "":
	case "*":
		c.Body = BodyRest
		fields := in.Fields()
		for i := range fields.Len() {
			if fd := fields.Get(i); bound[fd] == "" {
				c.BodyFields = append(c.BodyFields, fd)
				bound[fd] = "body"
			}
		}
	default:
		fd := in.Fields().ByName(protoreflect.Name(body))
		if fd == nil || fd.Message() == nil || fd.IsList() || fd.IsMap() {
			return nil, fmt.Errorf("body %q must name a message field of %s", body, in.FullName())
		}
		if err := bind(fd, "body"); err != nil {
			return nil, err
		}
		c.Body, c.BodyFields = BodyField, []protoreflect.FieldDescriptor{fd}
	}
	if c.Body != NoBody && (c.HTTPMethod == http.MethodGet || c.HTTPMethod == http.MethodDelete) {
		return nil, fmt.Errorf("a %s request carries no body", c.HTTPMethod)
	}
	if c.Multipart && c.Body == NoBody {
		return nil, fmt.Errorf("multipart is declared without a body")
	}
	fields := in.Fields()
	for i := range fields.Len() {
		if fd := fields.Get(i); bound[fd] == "" {
			return nil, fmt.Errorf("request field %s goes neither to the path, the query nor the body", fd.Name())
		}
	}
	if p := up.GetPayload(); p != "" {
		fd := out.Fields().ByName(protoreflect.Name(p))
		if fd == nil || fd.IsMap() {
			return nil, fmt.Errorf("payload %q must name a message, list or scalar field of %s", p, out.FullName())
		}
		c.Payload = fd
	}
	if err := pagedShape(in, out); err != nil {
		return nil, err
	}
	c.REST = restRoute(opts)
	return c, nil
}

// pagedShape checks that a paged search has Opentact's one shape: a
// request with take and skip (or the number search's page and size)
// answers take, skip and total, and the page in a list named data.
func pagedShape(in, out protoreflect.MessageDescriptor) error {
	has := func(md protoreflect.MessageDescriptor, name string) bool {
		fd := md.Fields().ByName(protoreflect.Name(name))
		return fd != nil && !fd.IsList() && (fd.Kind() == protoreflect.Int32Kind || fd.Kind() == protoreflect.Int64Kind)
	}
	if !(has(in, "take") && has(in, "skip")) && !(has(in, "page") && has(in, "size")) {
		return nil
	}
	data := out.Fields().ByName("data")
	if !has(out, "take") || !has(out, "skip") || !has(out, "total") || data == nil || !data.IsList() || data.Message() == nil {
		return fmt.Errorf("a paged search answers take, skip and total (integers) and a list of messages named data; %s does not", out.FullName())
	}
	return nil
}

// pattern is the declared HTTP method and path.
func pattern(up *apiv1.Upstream) (method, path string) {
	switch p := up.GetPattern().(type) {
	case *apiv1.Upstream_Get:
		return http.MethodGet, p.Get
	case *apiv1.Upstream_Post:
		return http.MethodPost, p.Post
	case *apiv1.Upstream_Put:
		return http.MethodPut, p.Put
	case *apiv1.Upstream_Patch:
		return http.MethodPatch, p.Patch
	case *apiv1.Upstream_Delete:
		return http.MethodDelete, p.Delete
	}
	return "", ""
}

// templateParams lists the parameters of a path template, checking its
// form: it starts with "/", carries no query, fragment or escape, and each
// parameter is a whole segment.
func templateParams(path string) ([]string, error) {
	if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, "?#%") {
		return nil, fmt.Errorf("path %q must start with / and carry no query, fragment or escape", path)
	}
	var params []string
	for seg := range strings.SplitSeq(path[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return nil, fmt.Errorf("path %q has an empty, . or .. segment", path)
		}
		open, close := strings.IndexByte(seg, '{'), strings.IndexByte(seg, '}')
		switch {
		case open < 0 && close < 0:
			continue
		case open != 0 || close != len(seg)-1 || strings.Count(seg, "{") != 1:
			return nil, fmt.Errorf("path %q: a parameter must be a whole segment, such as {uuid}", path)
		}
		name := seg[1 : len(seg)-1]
		if slices.Contains(params, name) {
			return nil, fmt.Errorf("path %q binds {%s} twice", path, name)
		}
		params = append(params, name)
	}
	return params, nil
}

// scalar reports whether fd holds one scalar value (not a message, list
// or map).
func scalar(fd protoreflect.FieldDescriptor) bool {
	return fd.Message() == nil && !fd.IsList() && !fd.IsMap()
}

// restRoute reads the method's google.api.http rule, nil if none.
func restRoute(opts *descriptorpb.MethodOptions) *Route {
	if !proto.HasExtension(opts, annotations.E_Http) {
		return nil
	}
	rule := proto.GetExtension(opts, annotations.E_Http).(*annotations.HttpRule)
	r := &Route{Body: rule.GetBody()}
	switch p := rule.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		r.Method, r.Pattern = http.MethodGet, p.Get
	case *annotations.HttpRule_Post:
		r.Method, r.Pattern = http.MethodPost, p.Post
	case *annotations.HttpRule_Put:
		r.Method, r.Pattern = http.MethodPut, p.Put
	case *annotations.HttpRule_Patch:
		r.Method, r.Pattern = http.MethodPatch, p.Patch
	case *annotations.HttpRule_Delete:
		r.Method, r.Pattern = http.MethodDelete, p.Delete
	default:
		return nil
	}
	return r
}

// Methods reads the declaration of every method of sd; each must have one.
func Methods(sd protoreflect.ServiceDescriptor) ([]*Call, error) {
	methods := sd.Methods()
	out := make([]*Call, 0, methods.Len())
	for i := range methods.Len() {
		md := methods.Get(i)
		if isStream(md) || isLocal(md) {
			continue
		}
		c, err := Method(md)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
