// Package rest is the facade's REST door: grpc-gateway's mux, generated
// routes for every service, behind the checks a public HTTP API needs
// (credentials headers, methods, body size, type and shape), calling the
// services in the process through the same interceptors as a gRPC call.
// Every request it refuses before a handler is counted and logged.
package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/opentact-facade/opentact-facade/internal/declare"
	"github.com/opentact-facade/opentact-facade/internal/engine"
	"github.com/opentact-facade/opentact-facade/internal/logs"
	"github.com/opentact-facade/opentact-facade/internal/openapi"
	"github.com/opentact-facade/opentact-facade/internal/telemetry"
)

// MaxBody caps a REST request body.
const MaxBody = 16 << 10

// Edge is what the REST port checks before grpc-gateway decodes a
// request, and how it answers a request it refuses: with a JSON
// google.rpc.Status, as every other REST error. Every request refused
// before a handler, by the edge or by the gateway (no route, a body it
// cannot decode), is counted by reason and logged, rate limited.
type Edge struct {
	mux     *runtime.ServeMux // the gateway, whose errors the edge answers
	conn    *inProcess
	routes  []openapi.Route
	metrics *telemetry.Metrics
	log     *slog.Logger
	sampler *logs.Sampler // refusals come in floods: their lines are rate limited
	// streamPaths are the GET routes of server-streaming methods, whose
	// answers last as long as the stream, past the server's write timeout.
	streamPaths map[string]bool
}

// Options are what an Edge is built from.
type Options struct {
	// Routes are the REST API's routes (the OpenAPI document's).
	Routes []openapi.Route
	// Interceptors are the gRPC server's unary interceptors, which every
	// REST call passes too, outermost first; Stats its stats handler (for
	// traces), nil when none.
	Interceptors []grpc.UnaryServerInterceptor
	// StreamInterceptors are its stream interceptors, for streaming calls.
	StreamInterceptors []grpc.StreamServerInterceptor
	Stats              stats.Handler
	Metrics            *telemetry.Metrics
	Log                *slog.Logger
	// Sampler rate limits the lines a client can cause in floods.
	Sampler *logs.Sampler
}

// New returns an edge; Register the services on it, then their gateway
// routes on Mux, calling them through Conn.
func New(o Options) *Edge {
	e := &Edge{
		routes:  append(slices.Clone(o.Routes), apiDescription),
		metrics: o.Metrics,
		log:     o.Log,
		sampler: o.Sampler,
		conn:    newInProcess(o.Interceptors, o.StreamInterceptors, o.Stats),
	}
	e.mux = newGateway(e)
	return e
}

// Register serves desc's methods, implemented by impl, to the gateway.
func (e *Edge) Register(desc *grpc.ServiceDesc, impl any) {
	e.conn.register(desc, impl)
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(desc.ServiceName))
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if err != nil || !ok {
		return
	}
	for _, c := range declare.Streams(sd) {
		if c.REST != nil && c.REST.Method == http.MethodGet {
			if e.streamPaths == nil {
				e.streamPaths = map[string]bool{}
			}
			e.streamPaths[c.REST.Pattern] = true
		}
	}
}

// Mux is the gateway, for the services' generated routes.
func (e *Edge) Mux() *runtime.ServeMux { return e.mux }

// Conn is the connection the gateway's routes call the services over.
func (e *Edge) Conn() grpc.ClientConnInterface { return e.conn }

// restCall is what the edge knows of a request on its way: whether the
// gateway handed it to the services (inProcess.Invoke ran), and whether
// it was already counted as refused. Only the request's goroutine
// touches it.
type restCall struct {
	invoked, refused bool
}

type restCallKey struct{}

// markInvoked records, for the REST edge, that the gateway handed the
// call to the services: an error after this is the handler's, not a
// refusal.
func markInvoked(ctx context.Context) {
	if c, _ := ctx.Value(restCallKey{}).(*restCall); c != nil {
		c.invoked = true
	}
}

// check refuses, before next (the gateway) sees it, a REST request:
//
//   - whose credential headers the facade would not forward, with the
//     same InvalidArgument the gRPC service gives (grpc-gateway would
//     silently drop a header value holding a control character, and the
//     caller would be told its credentials are missing);
//   - to a custom method's path with its parameter empty
//     ("/v1/calls/:execute"): 400;
//   - to a known path with another method: 405, with that route's Allow;
//   - with a body over MaxBody: 413;
//   - with a body that is not application/json: 415, so that a browser
//     cannot send one cross-site without a CORS preflight;
//   - with a body holding more than one JSON value: 400 (the gateway would
//     decode the first and ignore the rest).
//
// It reads the whole body, so that a body too large is a 413 (and the
// connection can serve the next request) rather than a decoding error
// halfway; a route without a body gets none.
func (e *Edge) check(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(context.WithValue(r.Context(), restCallKey{}, &restCall{}))
		if _, err := engine.CredentialsFromHeaders(r.Header.Values); status.Code(err) == codes.InvalidArgument {
			e.refuse(w, r, telemetry.RESTMalformedCredentials, 0, err)
			return
		}
		route, known := routeOf(e.routes, r.URL.Path)
		if known && strings.Contains(route.Path, "}:") && strings.Contains(r.URL.Path, "/:") {
			// "/v1/calls/:execute": the gateway would take it for another
			// route ({uuid} = ":execute") and answer a 405.
			e.refuse(w, r, telemetry.RESTMalformedRequest, http.StatusBadRequest,
				status.Error(codes.InvalidArgument, "a path parameter is empty"))
			return
		}
		if known && !slices.Contains(route.Methods, r.Method) {
			w.Header().Set("Allow", strings.Join(route.Methods, ", "))
			e.refuse(w, r, telemetry.RESTMethodNotAllowed, http.StatusMethodNotAllowed,
				status.Error(codes.Unimplemented, http.StatusText(http.StatusMethodNotAllowed)))
			return
		}
		if r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
		if err != nil {
			if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
				e.refuse(w, r, telemetry.RESTBodyTooLarge, http.StatusRequestEntityTooLarge,
					status.Errorf(codes.ResourceExhausted, "the request body is larger than %d bytes", MaxBody))
				return
			}
			e.refuse(w, r, telemetry.RESTMalformedRequest, 0, status.Error(codes.InvalidArgument, "the request body could not be read"))
			return
		}
		if len(body) > 0 {
			if !isJSON(r.Header.Values("Content-Type")) {
				e.refuse(w, r, telemetry.RESTUnsupportedMediaType, http.StatusUnsupportedMediaType,
					status.Error(codes.InvalidArgument, "the request body must be application/json (charset utf-8 if any)"))
				return
			}
			if !oneJSONValue(body) {
				e.refuse(w, r, telemetry.RESTMalformedRequest, 0, status.Error(codes.InvalidArgument, "the request body holds more than one JSON value"))
				return
			}
		}
		if known && slices.Contains(route.Body, r.Method) {
			r.Body = io.NopCloser(bytes.NewReader(body))
		} else {
			r.Body = http.NoBody
		}
		next.ServeHTTP(w, r)
	})
}

// refuse counts and logs a refused request, for reason (a
// telemetry.REST* reason), and answers it with err's status as a JSON
// google.rpc.Status, with code as the HTTP status when it is not 0 (the
// gRPC code's otherwise).
func (e *Edge) refuse(w http.ResponseWriter, r *http.Request, reason string, code int, err error) {
	if code == 0 {
		code = runtime.HTTPStatusFromCode(status.Code(err))
	}
	e.refused(r, reason, code)
	e.WriteError(w, r, code, err)
}

// WriteError answers r with err's status as a JSON google.rpc.Status, as
// every REST error is answered, with code as the HTTP status.
func (e *Edge) WriteError(w http.ResponseWriter, r *http.Request, code int, err error) {
	_, out := runtime.MarshalerForRequest(e.mux, r)
	runtime.HTTPError(r.Context(), e.mux, out, w, r, &runtime.HTTPStatusError{HTTPStatus: code, Err: err})
}

// refused counts a request refused before a handler and logs it, rate
// limited: its method, its path (escaped, cut short), the reason, the
// HTTP status and the client's address; never a header or the body.
func (e *Edge) refused(r *http.Request, reason string, code int) {
	if c, _ := r.Context().Value(restCallKey{}).(*restCall); c != nil {
		if c.refused {
			return
		}
		c.refused = true
	}
	e.metrics.RESTRefused(reason)
	e.sampler.Log(r.Context(), e.log, slog.LevelInfo, "REST request refused",
		slog.String("http.method", logs.Truncate(r.Method, 20)),
		slog.String("http.path", logs.Truncate(maskNumbers(r.URL.EscapedPath()), 200)),
		slog.String("reason", reason),
		slog.Int("http.status", code),
		slog.String("peer.address", r.RemoteAddr))
}

// routingErrorHandler answers a request the gateway has no route for
// (404, or 405 for a path the edge does not know), counting it.
func (e *Edge) routingErrorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, code int) {
	reason := telemetry.RESTMalformedRequest
	switch code {
	case http.StatusNotFound:
		reason = telemetry.RESTNotFound
	case http.StatusMethodNotAllowed:
		reason = telemetry.RESTMethodNotAllowed
	}
	e.refused(r, reason, code)
	runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, code)
}

// errorHandler is grpc-gateway's, plus a Retry-After header when the
// status carries a google.rpc.RetryInfo (a 429 or 503 from Opentact). An
// error before the gateway handed the call to the services is the
// gateway's refusal of the request (a body or path value it could not
// decode, a malformed Grpc-Timeout): it is counted as one.
func (e *Edge) errorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if c, _ := ctx.Value(restCallKey{}).(*restCall); c != nil && !c.invoked && !c.refused {
		code := runtime.HTTPStatusFromCode(status.Code(err))
		if se := (*runtime.HTTPStatusError)(nil); errors.As(err, &se) {
			code = se.HTTPStatus
		}
		e.refused(r, telemetry.RESTMalformedRequest, code)
	}
	st := status.Convert(err)
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			secs := math.Ceil(ri.GetRetryDelay().AsDuration().Seconds())
			w.Header().Set("Retry-After", strconv.Itoa(int(secs)))
		}
	}
	if st.Code() == codes.Unauthenticated {
		// grpc-gateway puts the status message in WWW-Authenticate; a 401
		// carries challenges instead (RFC 9110, section 11.6.1).
		w = challengeWriter{w}
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
}

// challengeWriter sets a 401's WWW-Authenticate to the schemes the facade
// takes, as the answer's header is written.
type challengeWriter struct{ http.ResponseWriter }

func (c challengeWriter) WriteHeader(code int) {
	if code == http.StatusUnauthorized {
		h := c.Header()
		h.Del("WWW-Authenticate")
		h.Add("WWW-Authenticate", `Basic realm="opentact"`)
		h.Add("WWW-Authenticate", "Bearer")
	}
	c.ResponseWriter.WriteHeader(code)
}

// isJSON reports whether a request's Content-Type values say JSON: one
// value, application/json, with no parameter but charset=utf-8 (JSON is
// UTF-8, RFC 8259; a body in another charset would be misread).
func isJSON(values []string) bool {
	if len(values) != 1 {
		return false
	}
	mt, params, err := mime.ParseMediaType(values[0])
	if err != nil || mt != "application/json" {
		return false
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return false
		}
	}
	return true
}

// oneJSONValue reports whether body holds no more than one JSON value,
// white space around it aside. A body that does not start with a whole
// JSON value passes: the gateway's decoder refuses it with its own words.
func oneJSONValue(body []byte) bool {
	if json.Valid(body) {
		return true
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var first json.RawMessage
	if dec.Decode(&first) != nil {
		return true
	}
	_, err := dec.Token()
	return errors.Is(err, io.EOF)
}

// routeOf finds the route of a request path. A path that is not in its
// clean form ("//v1/auth", "/v1/./auth", "/v1/auth/") has none: the
// gateway does not clean paths either, and answers it 404.
func routeOf(routes []openapi.Route, p string) (openapi.Route, bool) {
	if p != path.Clean(p) {
		return openapi.Route{}, false
	}
	var found openapi.Route
	known := false
	for _, r := range routes {
		if !r.Match(p) {
			continue
		}
		// /v1/calls/{uuid}:execute before /v1/calls/{uuid}, which
		// matches the same path with "x:execute" as its uuid.
		if strings.Contains(r.Path, "}:") {
			return r, true
		}
		if !known {
			found, known = r, true
		}
	}
	return found, known
}

// maskNumbers shows a run of 7 or more digits in a path (a phone number,
// as in /v1/numbers/{tn}/lease) by its last four only, as the facade's
// logs show every phone number.
func maskNumbers(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); {
		j := i
		for j < len(p) && p[j] >= '0' && p[j] <= '9' {
			j++
		}
		if j == i {
			b.WriteByte(p[i])
			i++
			continue
		}
		if j-i >= 7 {
			b.WriteString("***")
			b.WriteString(p[j-4 : j])
		} else {
			b.WriteString(p[i:j])
		}
		i = j
	}
	return b.String()
}
