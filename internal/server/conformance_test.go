package server_test

// The conformance suite: every declared method, over both doors, against
// a recording upstream, driven by the descriptors alone. A method added by
// its declaration is covered here with no new test code.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"buf.build/go/protovalidate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/timestamppb"

	apiv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/api/v1"
	"github.com/opentact-facade/opentact-facade/internal/codec"
	"github.com/opentact-facade/opentact-facade/internal/declare"
	"github.com/opentact-facade/opentact-facade/internal/openapi"
	"github.com/opentact-facade/opentact-facade/internal/server"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
	"github.com/opentact-facade/opentact-facade/service"
)

// The credentials every conformance call carries, over both doors.
const (
	cfBasic = "Basic b3BlbnRhY3RAY2FsbGlmeS5pbzoxMjM0NTY3OA=="
	cfJWT   = "eyJhbGciOiJIUzI1NiJ9.eyJ1dWlkIjoiY2YifQ.c2ln"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	calls, err := declare.Declared(service.Services)
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) == 0 {
		t.Fatal("no declared call")
	}
	routes, err := openapi.Routes()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range calls {
		t.Run(strings.TrimPrefix(c.FullMethod, "/"), func(t *testing.T) {
			t.Parallel()
			cf := newConformance(t, c)
			for _, door := range []string{"grpc", "rest"} {
				t.Run(door, func(t *testing.T) {
					cf.request(t, door)
					cf.answers(t, door)
					cf.invalid(t, door)
				})
			}
			t.Run("kind", cf.kind)
			t.Run("request_id", cf.requestID)
			t.Run("observed", func(t *testing.T) { cf.observed(t, routes) })
		})
	}
}

// cfUpstream is a recording Opentact whose answer the test sets.
type cfUpstream struct {
	*recorder
	mu     sync.Mutex
	seen   []cfRequest
	answer http.HandlerFunc
	hold   chan struct{} // when not nil, each request waits for it to close
	arrive chan struct{}
}

// cfRequest is what reached the upstream.
type cfRequest struct {
	method, uri, contentType string
	header                   http.Header
	body                     []byte
}

func newCfUpstream(t *testing.T) *cfUpstream {
	u := &cfUpstream{arrive: make(chan struct{}, 64)}
	u.recorder = newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.seen = append(u.seen, cfRequest{r.Method, r.RequestURI, r.Header.Get("Content-Type"), r.Header.Clone(), body})
		answer, hold := u.answer, u.hold
		u.mu.Unlock()
		u.arrive <- struct{}{}
		if hold != nil {
			select {
			case <-hold:
			case <-r.Context().Done():
				return
			}
		}
		answer(w, r)
	})
	return u
}

// set makes the upstream answer with h from now on, and forgets what it
// has seen.
func (u *cfUpstream) set(h http.HandlerFunc) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.answer, u.seen, u.hold = h, nil, nil
	for len(u.arrive) > 0 {
		<-u.arrive
	}
}

func (u *cfUpstream) requests() []cfRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.seen)
}

// payload answers Opentact's envelope around payload.
func payload(p string) http.HandlerFunc {
	return answer(http.StatusOK, `{"success":true,"payload":`+p+`}`)
}

// conformance is one declared method under test: a facade of its own
// against a recording upstream (under a path prefix, which catches URL
// joining bugs), and a valid request with every field set.
type conformance struct {
	call   *declare.Call
	up     *cfUpstream
	f      *facade
	req    proto.Message
	resp   protoreflect.MessageType
	target protoreflect.MessageDescriptor // the message the payload fills
}

func newConformance(t *testing.T, c *declare.Call) *conformance {
	up := newCfUpstream(t)
	f := startFacade(t, up.URL+"/base", cfRetry)
	resp, err := protoregistry.GlobalTypes.FindMessageByName(c.Method.Output().FullName())
	if err != nil {
		t.Fatal(err)
	}
	cf := &conformance{call: c, up: up, f: f, req: sampleRequest(t, c), resp: resp, target: c.Method.Output()}
	if c.Payload != nil {
		cf.target = c.Payload.Message()
	}
	return cf
}

// cfRetry lets the facade make 2 attempts, quickly.
func cfRetry(o *server.Options) {
	o.UpstreamMaxAttempts = 2
	o.Retry = &upstream.RetryPolicy{MaxAttempts: 2, BaseBackoff: time.Millisecond, MaxBackoff: time.Millisecond}
}

// invoke calls the method with req through door, and returns the answer
// or the call's status.
func (cf *conformance) invoke(t *testing.T, ctx context.Context, door string, req proto.Message) (proto.Message, error) {
	t.Helper()
	if door == "grpc" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", cfBasic, "x-auth-token", cfJWT)
		out := cf.resp.New().Interface()
		err := cf.f.conn.Invoke(ctx, cf.call.FullMethod, req, out)
		return out, err
	}
	return cf.invokeREST(t, ctx, req)
}

// invokeREST calls the method's REST route: path parameters from req,
// the body as its google.api.http rule says, and the other fields in the
// query, as grpc-gateway reads them.
func (cf *conformance) invokeREST(t *testing.T, ctx context.Context, req proto.Message) (proto.Message, error) {
	t.Helper()
	route := cf.call.REST
	if route == nil {
		t.Fatalf("%s has no REST route (google.api.http)", cf.call.FullMethod)
	}
	m := proto.Clone(req).ProtoReflect()
	path := route.Pattern
	for _, p := range pathParams(route.Pattern) {
		fd := m.Descriptor().Fields().ByName(protoreflect.Name(p))
		path = strings.Replace(path, "{"+p+"}", url.PathEscape(m.Get(fd).String()), 1)
		m.Clear(fd)
	}
	var body io.Reader
	query := url.Values{}
	switch route.Body {
	case "*":
		b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m.Interface())
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(b)
	case "":
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			addQuery(query, string(fd.Name()), fd, v)
			return true
		})
	default:
		t.Fatalf("REST body %q: the suite sends \"*\" or none", route.Body)
	}
	u := cf.f.restURL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	hr, err := http.NewRequestWithContext(ctx, route.Method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set("Authorization", cfBasic)
	hr.Header.Set("X-Auth-Token", cfJWT)
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	resp, err := cf.f.http.Do(hr)
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, restStatus(t, b).Err()
	}
	out := cf.resp.New().Interface()
	if err := protojson.Unmarshal(b, out); err != nil {
		t.Fatalf("REST answer %s: %v", b, err)
	}
	return out, nil
}

// addQuery adds a field's value as grpc-gateway reads query parameters:
// nested fields by dotted names, lists as repeated parameters.
func addQuery(q url.Values, name string, fd protoreflect.FieldDescriptor, v protoreflect.Value) {
	switch {
	case fd.IsList():
		for i := range v.List().Len() {
			q.Add(name, scalarText(fd, v.List().Get(i)))
		}
	case fd.Message() != nil && fd.Message().FullName() == "google.protobuf.Timestamp":
		q.Set(name, v.Message().Interface().(*timestamppb.Timestamp).AsTime().Format(time.RFC3339Nano))
	case fd.Message() != nil:
		v.Message().Range(func(sub protoreflect.FieldDescriptor, sv protoreflect.Value) bool {
			addQuery(q, name+"."+string(sub.Name()), sub, sv)
			return true
		})
	default:
		q.Set(name, scalarText(fd, v))
	}
}

func scalarText(fd protoreflect.FieldDescriptor, v protoreflect.Value) string {
	if fd.Enum() != nil {
		return string(fd.Enum().Values().ByNumber(v.Enum()).Name())
	}
	return fmt.Sprint(v.Interface())
}

// pathParams lists the {names} of a path template.
func pathParams(pattern string) []string {
	var out []string
	for seg := range strings.SplitSeq(pattern, "/") {
		if strings.HasPrefix(seg, "{") {
			name, _, _ := strings.Cut(strings.TrimPrefix(seg, "{"), "}") // "{uuid}:execute"
			name, _, _ = strings.Cut(name, "=")
			out = append(out, name)
		}
	}
	return out
}

// request: the exact Opentact request. Method, escaped path (under the
// base URL's prefix), query, content type and credentials are compared
// with what the declaration says; the body holds exactly the body fields
// set, under Opentact's keys, and reads back into the same values.
func (cf *conformance) request(t *testing.T, door string) {
	c := cf.call
	cf.up.set(payload(nullAnswer(cf.target, c.Payload)))
	if _, err := cf.invoke(t, t.Context(), door, cf.keyed(cf.req)); err != nil {
		t.Fatalf("a valid request failed: %v", err)
	}
	seen := cf.up.requests()
	if len(seen) != 1 {
		t.Fatalf("Opentact saw %d requests, want 1", len(seen))
	}
	got := seen[0]
	m := cf.req.ProtoReflect()
	wantURI := "/base" + c.Path
	for _, fd := range c.PathFields {
		v, _ := codec.Text(m, fd)
		wantURI = strings.Replace(wantURI, "{"+string(fd.Name())+"}", url.PathEscape(v), 1)
	}
	q := url.Values{}
	for _, fd := range c.Query {
		if v, ok := codec.Text(m, fd); ok {
			q.Set(codec.Key(fd), v)
		}
	}
	if len(q) > 0 {
		wantURI += "?" + q.Encode()
	}
	if got.method != c.HTTPMethod || got.uri != wantURI {
		t.Errorf("Opentact saw %s %s, want %s %s", got.method, got.uri, c.HTTPMethod, wantURI)
	}
	if a, x := got.header.Values("Authorization"), got.header.Values("X-Auth-Token"); !slices.Equal(a, []string{cfBasic}) || !slices.Equal(x, []string{cfJWT}) {
		t.Errorf("credentials Authorization %q, X-Auth-Token %q; want each forwarded once, unchanged", a, x)
	}
	for k := range got.header {
		if strings.HasPrefix(k, "X-Auth-") && k != "X-Auth-Token" || strings.HasPrefix(k, "Grpc-") {
			t.Errorf("Opentact saw header %s, which the caller did not send as a credential", k)
		}
	}
	switch c.Body {
	case declare.NoBody:
		if len(got.body) != 0 || got.contentType != "" {
			t.Errorf("a call without a body sent %q (%s)", got.body, got.contentType)
		}
	default:
		cf.checkBody(t, got)
	}
}

// checkBody compares the body Opentact saw with the request's body fields.
func (cf *conformance) checkBody(t *testing.T, got cfRequest) {
	c := cf.call
	src := cf.req.ProtoReflect()
	if c.Body == declare.BodyField {
		src = src.Get(c.BodyFields[0]).Message()
	}
	mt, _, _ := mime.ParseMediaType(got.contentType)
	if c.Multipart {
		if mt != "multipart/form-data" {
			t.Errorf("content type %q, want multipart/form-data", got.contentType)
		}
		return
	}
	if mt != "application/json" {
		t.Errorf("content type %q, want application/json", got.contentType)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(got.body, &members); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", got.body, err)
	}
	want := src.New()
	var wantKeys []string
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if c.Body == declare.BodyRest && !slices.Contains(c.BodyFields, fd) {
			return true
		}
		wantKeys = append(wantKeys, codec.Key(fd))
		if droppedName(fd) {
			// Decode never reads it back (a SIP user's password): the
			// member's text is compared instead.
			var text string
			if err := json.Unmarshal(members[codec.Key(fd)], &text); err != nil || text != v.String() {
				t.Errorf("body member %s = %s, want %q", codec.Key(fd), members[codec.Key(fd)], v.String())
			}
			return true
		}
		want.Set(fd, v)
		return true
	})
	var keys []string
	for k := range members {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	slices.Sort(wantKeys)
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("body members %q, want the body fields set: %q", keys, wantKeys)
	}
	back := src.New()
	if err := codec.Decode(got.body, back); err != nil {
		t.Fatalf("body %s: %v", got.body, err)
	}
	if !proto.Equal(back.Interface(), want.Interface()) {
		t.Errorf("body %s reads back as %v, want %v", got.body, back.Interface(), want.Interface())
	}
}

// answers: a full answer arrives whole; every member null leaves every
// field unset; a member no field models reaches other_fields.
func (cf *conformance) answers(t *testing.T, door string) {
	if cf.target == nil {
		// A scalar payload: it arrives in its field, as Opentact sent it.
		cf.up.set(payload(scalarAnswer))
		got, err := cf.invoke(t, t.Context(), door, cf.keyed(cf.req))
		if err != nil {
			t.Fatalf("an answer failed: %v", err)
		}
		if v := got.ProtoReflect().Get(cf.call.Payload).String(); v != scalarPayload {
			t.Errorf("the payload arrived as %q, want %q", v, scalarPayload)
		}
		return
	}
	full := sampleMessage(t, cf.target, true)
	b, err := codec.Encode(nil, full.ProtoReflect(), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := string(b)
	if cf.call.Payload != nil && cf.call.Payload.IsList() {
		p = "[" + p + "]"
	}
	cf.up.set(payload(p))
	got, err := cf.invoke(t, t.Context(), door, cf.keyed(cf.req))
	if err != nil {
		t.Fatalf("a full answer failed: %v", err)
	}
	if !proto.Equal(payloadOf(cf.call, got), full) {
		t.Errorf("a full answer arrived as %v, want %v", payloadOf(cf.call, got), full)
	}

	cf.up.set(payload(nullAnswer(cf.target, cf.call.Payload)))
	got, err = cf.invoke(t, t.Context(), door, cf.keyed(cf.req))
	if err != nil {
		t.Fatalf("an answer of nulls failed: %v", err)
	}
	if n := proto.Size(payloadOf(cf.call, got)); n != 0 {
		t.Errorf("an answer of nulls set fields: %v", payloadOf(cf.call, got))
	}

	other := cf.target.Fields().ByNumber(100)
	if other == nil || !other.IsMap() || other.Name() != "other_fields" {
		t.Fatalf("%s has no other_fields (field 100, map<string,string>) for what no field models", cf.target.FullName())
	}
	extra := `{"x_conformance":{"n":[1,2.50],"password":"p"}}`
	if cf.call.Payload != nil && cf.call.Payload.IsList() {
		extra = "[" + extra + "]"
	}
	cf.up.set(payload(extra))
	got, err = cf.invoke(t, t.Context(), door, cf.keyed(cf.req))
	if err != nil {
		t.Fatalf("an answer with an extra member failed: %v", err)
	}
	pm := payloadOf(cf.call, got).ProtoReflect()
	if v := pm.Get(other).Map().Get(protoreflect.ValueOfString("x_conformance").MapKey()); v.String() != `{"n":[1,2.50]}` {
		t.Errorf("other_fields[x_conformance] = %q, want {\"n\":[1,2.50]} (digits kept, password dropped)", v.String())
	}
}

// scalarAnswer is a scalar payload, the JSON of scalarPayload.
const (
	scalarPayload = "<Response><Say>text é/1</Say></Response>"
	scalarAnswer  = `"<Response><Say>text é/1</Say></Response>"`
)

// payloadOf is the message the payload filled: the response, its payload
// field's message, or the first element of its payload list.
func payloadOf(c *declare.Call, resp proto.Message) proto.Message {
	m := resp.ProtoReflect()
	switch {
	case c.Payload == nil:
		return resp
	case c.Payload.IsList():
		l := m.Get(c.Payload).List()
		if l.Len() == 0 {
			mt, _ := protoregistry.GlobalTypes.FindMessageByName(c.Payload.Message().FullName())
			return mt.New().Interface()
		}
		return l.Get(0).Message().Interface()
	default:
		return m.Get(c.Payload).Message().Interface()
	}
}

// nullAnswer is a payload whose every member the target models is null
// (a list of one such object for a list payload); for a scalar payload
// (target nil: a call flow's XML), a string.
func nullAnswer(target protoreflect.MessageDescriptor, payloadField protoreflect.FieldDescriptor) string {
	if target == nil {
		return scalarAnswer
	}
	members := map[string]any{}
	fields := target.Fields()
	for i := range fields.Len() {
		if fd := fields.Get(i); fd.Number() != 100 {
			members[codec.Key(fd)] = nil
		}
	}
	b, _ := json.Marshal(members)
	if payloadField != nil && payloadField.IsList() {
		return "[" + string(b) + "]"
	}
	return string(b)
}

// invalid: a request that breaks a declared rule (protovalidate's, or the
// facade's own on text sent to Opentact) is INVALID_ARGUMENT, and nothing
// is sent.
func (cf *conformance) invalid(t *testing.T, door string) {
	bad, field := breakRule(t, cf.req)
	if bad == nil {
		t.Skip("no field of the request has a rule to break")
	}
	cf.up.set(payload(nullAnswer(cf.target, cf.call.Payload)))
	_, err := cf.invoke(t, t.Context(), door, bad)
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("%s broken: %v, want InvalidArgument", field, err)
	}
	if n := len(cf.up.requests()); n != 0 {
		t.Errorf("an invalid request (%s) reached Opentact %d times", field, n)
	}
}

// kind: a read is shared by identical calls under way at once, may be
// retried, and is cached only when declared; a write is never shared,
// cached, or retried once sent; an idempotent call is retried.
func (cf *conformance) kind(t *testing.T) {
	c := cf.call
	ok := payload(nullAnswer(cf.target, c.Payload))

	// Two identical calls at once.
	cf.up.set(ok)
	hold := make(chan struct{})
	cf.up.mu.Lock()
	cf.up.hold = hold
	cf.up.mu.Unlock()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	errs := make(chan error, 2)
	req := cf.req
	call := func() {
		// A write with a request_id of its own for each call: the two
		// are then two requests, as without one (see requestID).
		_, err := cf.invoke(t, ctx, "grpc", cf.keyed(req))
		errs <- err
	}
	go call()
	cf.waitArrival(t)
	go call()
	if c.Kind == declare.Read {
		// The second call joins the first's request: no second one may
		// arrive while the first is held.
		select {
		case <-cf.up.arrive:
			t.Error("two identical reads under way at once made two requests, want them shared")
		case <-time.After(time.Second):
		}
	} else {
		cf.waitArrival(t) // a write is never shared: both arrive while held
	}
	close(hold)
	for range 2 {
		if err := <-errs; err != nil {
			t.Errorf("a concurrent call failed: %v", err)
		}
	}

	// Retried after a transient failure only when the call may be sent
	// again (the facade allows 2 attempts here).
	cf.up.set(answer(http.StatusServiceUnavailable, `{"success":false,"message":"busy","status":503}`))
	_, err := cf.invoke(t, t.Context(), "grpc", cf.keyed(cf.req))
	if status.Code(err) != codes.Unavailable {
		t.Errorf("after 503s: %v, want Unavailable", err)
	}
	want := 2
	if c.Kind == declare.Write {
		want = 1
	}
	if n := len(cf.up.requests()); n != want {
		t.Errorf("a %s that met a 503 was sent %d times, want %d", c.Kind, n, want)
	}

	// Cached, by a facade whose cache is on, only when declared.
	cf.up.set(ok)
	cached := &conformance{call: c, up: cf.up, req: cf.req, resp: cf.resp, target: cf.target}
	cached.f = startFacade(t, cf.up.URL+"/base", cfRetry, func(o *server.Options) { o.CacheTTL = time.Hour })
	for range 2 {
		if _, err := cached.invoke(t, t.Context(), "grpc", cf.keyed(cf.req)); err != nil {
			t.Fatal(err)
		}
	}
	want = 2
	if c.Cache {
		want = 1
	}
	if n := len(cf.up.requests()); n != want {
		t.Errorf("two calls in turn made %d requests with the cache on, want %d (cache declared: %v)", n, want, c.Cache)
	}
}

// cfKeys numbers the request_ids the suite gives its calls.
var cfKeys atomic.Int64

// keyed is req with a request_id of its own when the method takes one:
// each call of the suite is then its own request to Opentact, as a call
// without one is; requestID repeats one on purpose.
func (cf *conformance) keyed(req proto.Message) proto.Message {
	fd := cf.call.RequestID
	if fd == nil {
		return req
	}
	m := proto.Clone(req)
	m.ProtoReflect().Set(fd, protoreflect.ValueOfString(fmt.Sprintf("cf-%d", cfKeys.Add(1))))
	return m
}

// requestID: a repeat of a call with the same request_id, over either
// door, gets the first call's answer, and Opentact sees one request; the
// same request_id with another request is FAILED_PRECONDITION,
// REQUEST_ID_REUSED, and nothing is sent.
func (cf *conformance) requestID(t *testing.T) {
	c := cf.call
	if c.RequestID == nil {
		t.Skip("the method takes no request_id")
	}
	full := sampleMessage(t, cf.target, true)
	b, err := codec.Encode(nil, full.ProtoReflect(), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := string(b)
	if c.Payload != nil && c.Payload.IsList() {
		p = "[" + p + "]"
	}
	cf.up.set(payload(p))
	req := cf.keyed(cf.req)
	first, err := cf.invoke(t, t.Context(), "grpc", req)
	if err != nil {
		t.Fatalf("the first call failed: %v", err)
	}
	if n := len(cf.up.requests()); n != 1 {
		t.Fatalf("the first call made %d requests, want 1", n)
	}
	// From here on a request would be answered otherwise, and is counted
	// from 0.
	cf.up.set(payload(nullAnswer(cf.target, c.Payload)))
	for _, door := range []string{"grpc", "rest"} {
		got, err := cf.invoke(t, t.Context(), door, req)
		if err != nil {
			t.Fatalf("a repeat over %s failed: %v", door, err)
		}
		if !proto.Equal(got, first) {
			t.Errorf("a repeat over %s answered %v, want the first answer %v", door, got, first)
		}
	}
	other := otherRequest(t, req, c.RequestID)
	for _, door := range []string{"grpc", "rest"} {
		_, err := cf.invoke(t, t.Context(), door, other)
		if st := status.Convert(err); st.Code() != codes.FailedPrecondition || errorInfo(st).GetReason() != apiv1.ErrorReason_REQUEST_ID_REUSED.String() {
			t.Errorf("another request with the same request_id over %s: %v, want FailedPrecondition, REQUEST_ID_REUSED", door, err)
		}
	}
	if n := len(cf.up.requests()); n != 0 {
		t.Errorf("repeats and reuses of the request_id made %d requests, want none", n)
	}
}

// otherRequest is a valid request that differs from req in a field other
// than skip: a scalar set to another value its rules take, or else a list
// with its first element twice.
func otherRequest(t *testing.T, req proto.Message, skip protoreflect.FieldDescriptor) proto.Message {
	t.Helper()
	fields := req.ProtoReflect().Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd == skip || fd.IsMap() || fd.IsList() || fd.Message() != nil {
			continue
		}
		for _, v := range candidates(fd) {
			m := proto.Clone(req)
			if m.ProtoReflect().Get(fd).Equal(v) {
				continue
			}
			m.ProtoReflect().Set(fd, v)
			if validator().Validate(m) == nil {
				return m
			}
		}
	}
	for i := range fields.Len() {
		fd := fields.Get(i)
		if !fd.IsList() || req.ProtoReflect().Get(fd).List().Len() == 0 {
			continue
		}
		m := proto.Clone(req)
		l := m.ProtoReflect().Mutable(fd).List()
		first := l.Get(0)
		if fd.Message() != nil {
			first = protoreflect.ValueOfMessage(proto.Clone(first.Message().Interface()).ProtoReflect())
		}
		l.Append(first)
		if validator().Validate(m) == nil {
			return m
		}
	}
	t.Fatalf("no other valid request than %v", req)
	return nil
}

func (cf *conformance) waitArrival(t *testing.T) {
	t.Helper()
	select {
	case <-cf.up.arrive:
	case <-time.After(10 * time.Second):
		t.Fatal("no request reached Opentact in 10s")
	}
}

// observed: the method's endpoint has its metric series, its REST route
// is in the OpenAPI document, and its calls have access-log lines.
func (cf *conformance) observed(t *testing.T, routes []openapi.Route) {
	c := cf.call
	text := shMetrics(t, cf.f)
	if _, ok := shSample(text, "opentact_upstream_requests_total", `endpoint="`+c.Name+`"`); !ok {
		t.Errorf("/metrics has no opentact_upstream_requests_total for endpoint %q", c.Name)
	}
	if c.REST == nil {
		t.Fatal("no REST route declared (google.api.http)")
	}
	found := false
	for _, r := range routes {
		if r.Path == c.REST.Pattern && slices.Contains(r.Methods, c.REST.Method) {
			found = true
		}
	}
	if !found {
		t.Errorf("the OpenAPI document has no %s %s", c.REST.Method, c.REST.Pattern)
	}
	_, method, _ := strings.Cut(strings.TrimPrefix(c.FullMethod, "/"), "/")
	var grpcLine, restLine bool
	for _, l := range cf.f.logs.lines("finished call") {
		if l["grpc.method"] == method {
			grpcLine = grpcLine || l["transport"] == "grpc"
			restLine = restLine || l["transport"] == "rest"
		}
	}
	if !grpcLine || !restLine {
		t.Errorf("access lines for %s: over gRPC %v, over REST %v; want both", method, grpcLine, restLine)
	}
}

// validator checks requests as the engine does.
var validator = sync.OnceValue(func() protovalidate.Validator {
	v, err := protovalidate.New()
	if err != nil {
		panic(err)
	}
	return v
})

// violates reports whether m breaks a rule on the field at path.
func violates(m proto.Message, path string) bool {
	err := validator().Validate(m)
	verr, ok := err.(*protovalidate.ValidationError)
	if !ok {
		return false
	}
	for _, v := range verr.Violations {
		if p := protovalidate.FieldPathString(v.Proto.GetField()); p == path || strings.HasPrefix(p, path+".") || strings.HasPrefix(p, path+"[") {
			return true
		}
	}
	return false
}

// Candidate values, first the one a field gets when its rules take it.
var (
	stringCandidates = []string{"v/1 é", "3f1e0c7a-5d2b-4e9a-9c1d-2b3a4c5d6e7f", "12029822917", "sample"}
	intCandidates    = []int64{60, 1, 7, 1000}
	badStrings       = []string{"", "x", "not a uuid", strings.Repeat("x", 300), "all", "ALL"}
	badInts          = []int64{0, -1, 1 << 30}
)

// sampleRequest is c's request with every field set to a value its rules
// take.
func sampleRequest(t *testing.T, c *declare.Call) proto.Message {
	t.Helper()
	mt, err := protoregistry.GlobalTypes.FindMessageByName(c.Method.Input().FullName())
	if err != nil {
		t.Fatal(err)
	}
	m := mt.New()
	fill(t, m, m, "", false)
	if err := validator().Validate(m.Interface()); err != nil {
		t.Fatalf("no valid sample request: %v", err)
	}
	return m.Interface()
}

// sampleMessage is a message of md with every field set (other_fields and
// the names never carried left out), for an answer.
func sampleMessage(t *testing.T, md protoreflect.MessageDescriptor, answer bool) proto.Message {
	t.Helper()
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName())
	if err != nil {
		t.Fatal(err)
	}
	m := mt.New()
	fill(t, m, m, "", answer)
	return m.Interface()
}

// fill sets every field of m; root is the message validated, path m's
// place in it. Nested messages go one level deep.
func fill(t *testing.T, root, m protoreflect.Message, path string, answer bool) {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.Number() == 100 || answer && droppedName(fd) {
			continue
		}
		p := path + string(fd.Name())
		switch {
		case fd.IsMap():
			continue
		case fd.Message() != nil && fd.Message().FullName() == "google.protobuf.Timestamp":
			v := protoreflect.ValueOfMessage(timestamppb.New(time.Date(2024, 1, 16, 14, 15, 48, 540e6, time.UTC)).ProtoReflect())
			setOne(m, fd, v)
		case fd.Message() != nil:
			if strings.Count(path, ".") >= 1 {
				continue // one level of nesting is enough, and ends cycles
			}
			sub := m.NewField(fd)
			if fd.IsList() {
				sub = protoreflect.ValueOfMessage(m.NewField(fd).List().NewElement().Message())
			}
			fill(t, root, sub.Message(), p+".", answer)
			setOne(m, fd, sub)
		default:
			for _, v := range candidates(fd) {
				if o, _ := proto.GetExtension(fd.Options(), apiv1.E_Field).(*apiv1.Field); fd.Kind() == protoreflect.StringKind && (answer || o.GetNumber() || o.GetDecimal()) {
					v = answerText(fd)
				}
				setOne(m, fd, v)
				if answer || !violates(root.Interface(), p) {
					break
				}
			}
		}
	}
}

// droppedName reports whether fd's key is one the decoder never reads
// (codec.DroppedNames): an answer never carries it, a request may send it.
func droppedName(fd protoreflect.FieldDescriptor) bool {
	return slices.ContainsFunc(codec.DroppedNames, func(n string) bool { return strings.EqualFold(n, codec.Key(fd)) })
}

// setOne sets fd to v, or to a list of v.
func setOne(m protoreflect.Message, fd protoreflect.FieldDescriptor, v protoreflect.Value) {
	if fd.IsList() {
		l := m.NewField(fd).List()
		l.Append(v)
		m.Set(fd, protoreflect.ValueOfList(l))
		return
	}
	m.Set(fd, v)
}

// answerText is a string field's value in an answer: a decimal number
// where the field is declared one, digits where a number, text else.
func answerText(fd protoreflect.FieldDescriptor) protoreflect.Value {
	o, _ := proto.GetExtension(fd.Options(), apiv1.E_Field).(*apiv1.Field)
	switch {
	case o.GetDecimal():
		return protoreflect.ValueOfString("99.87895")
	case o.GetNumber():
		return protoreflect.ValueOfString("12029822917")
	}
	return protoreflect.ValueOfString("text é/1")
}

func candidates(fd protoreflect.FieldDescriptor) []protoreflect.Value {
	var out []protoreflect.Value
	switch fd.Kind() {
	case protoreflect.StringKind:
		// A rule that names its values, or a URL, first.
		rules, _ := proto.GetExtension(fd.Options(), validate.E_Field).(*validate.FieldRules)
		str := rules.GetString()
		if fd.IsList() {
			str = rules.GetRepeated().GetItems().GetString()
		}
		for _, s := range str.GetIn() {
			out = append(out, protoreflect.ValueOfString(s))
		}
		if str.GetUri() {
			out = append(out, protoreflect.ValueOfString("https://example.com/hook"))
		}
		if o, _ := proto.GetExtension(fd.Options(), apiv1.E_Field).(*apiv1.Field); o.GetFile() {
			// A document sent as a file, a call flow: only documents are
			// valid there.
			return append(out,
				protoreflect.ValueOfString("<Response>\n  <Hangup/>\n</Response>\n"),
				protoreflect.ValueOfString("<Response><Answer/><Hangup/></Response>"))
		}
		for _, s := range stringCandidates {
			out = append(out, protoreflect.ValueOfString(s))
		}
	case protoreflect.BoolKind:
		out = append(out, protoreflect.ValueOfBool(true))
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		for _, n := range intCandidates {
			out = append(out, protoreflect.ValueOfInt32(int32(n)))
		}
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		for _, n := range intCandidates {
			out = append(out, protoreflect.ValueOfInt64(n))
		}
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		for _, n := range intCandidates {
			out = append(out, protoreflect.ValueOfUint32(uint32(n)))
		}
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		for _, n := range intCandidates {
			out = append(out, protoreflect.ValueOfUint64(uint64(n)))
		}
	case protoreflect.DoubleKind:
		out = append(out, protoreflect.ValueOfFloat64(2.5))
	case protoreflect.FloatKind:
		out = append(out, protoreflect.ValueOfFloat32(2.5))
	case protoreflect.EnumKind:
		if vs := fd.Enum().Values(); vs.Len() > 1 {
			out = append(out, protoreflect.ValueOfEnum(vs.Get(1).Number()))
		}
	case protoreflect.BytesKind:
		out = append(out, protoreflect.ValueOfBytes([]byte("<Response><Hangup/></Response>")))
	}
	return out
}

// breakRule returns a copy of req with one field set to a value a rule
// refuses, and the field; nil when no field has a rule to break.
func breakRule(t *testing.T, req proto.Message) (proto.Message, string) {
	t.Helper()
	fields := req.ProtoReflect().Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.IsList() || fd.IsMap() || fd.Message() != nil {
			continue
		}
		var bad []protoreflect.Value
		switch fd.Kind() {
		case protoreflect.StringKind:
			for _, s := range badStrings {
				bad = append(bad, protoreflect.ValueOfString(s))
			}
		case protoreflect.Int32Kind:
			for _, n := range badInts {
				bad = append(bad, protoreflect.ValueOfInt32(int32(n)))
			}
		case protoreflect.Int64Kind:
			for _, n := range badInts {
				bad = append(bad, protoreflect.ValueOfInt64(n))
			}
		}
		for _, v := range bad {
			m := proto.Clone(req)
			m.ProtoReflect().Set(fd, v)
			if violates(m, string(fd.Name())) {
				return m, string(fd.Name())
			}
		}
	}
	// The facade's own rule: no control character in text for Opentact.
	for i := range fields.Len() {
		if fd := fields.Get(i); fd.Kind() == protoreflect.StringKind && !fd.IsList() && !fd.IsMap() {
			m := proto.Clone(req)
			m.ProtoReflect().Set(fd, protoreflect.ValueOfString("a\x00b"))
			return m, string(fd.Name())
		}
	}
	return nil, ""
}
