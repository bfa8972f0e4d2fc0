package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/opentact-facade/opentact-facade/internal/engine"
	"github.com/opentact-facade/opentact-facade/internal/openapi"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// newGateway returns grpc-gateway's mux, for the services to register
// their routes on; restHandler puts the facade's checks in front of it.
func newGateway() *runtime.ServeMux {
	return runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, restMarshaler()),
		runtime.WithIncomingHeaderMatcher(credentialHeaderMatcher),
		// The gRPC server sends no metadata worth showing a REST caller.
		runtime.WithOutgoingHeaderMatcher(dropAll),
		runtime.WithOutgoingTrailerMatcher(dropAll),
		runtime.WithDisableHTTPMethodOverride(),
		runtime.WithErrorHandler(errorHandler),
	)
}

// restJSON is how REST answers are encoded: proto field names (Opentact's
// own, snake_case), unset fields left out rather than shown as zero values.
var restJSON = protojson.MarshalOptions{UseProtoNames: true}

// restMarshaler encodes REST answers as restJSON says, and decodes
// request bodies strictly: an unknown field is a 400, not silently
// ignored (a misspelt "ttl" must not create a token without one).
func restMarshaler() runtime.Marshaler {
	return &runtime.HTTPBodyMarshaler{
		Marshaler: &runtime.JSONPb{MarshalOptions: restJSON},
	}
}

// forwardedHeaders maps each header a REST caller may pass into gRPC
// metadata, in Go's canonical spelling, to its metadata key: the X-Auth-*
// credential headers, and W3C Trace Context (traceparent, tracestate), so
// that a REST caller's trace continues through the facade.
var forwardedHeaders = func() map[string]string {
	m := map[string]string{"Traceparent": "traceparent", "Tracestate": "tracestate"}
	for _, k := range upstream.Kinds() {
		if k != upstream.Authorization {
			m[textproto.CanonicalMIMEHeaderKey(k.Header())] = k.MetadataKey()
		}
	}
	return m
}()

// credentialHeaderMatcher forwards the X-Auth-* credential headers and
// the trace context, and nothing else, as gRPC metadata. (The gateway always forwards
// Authorization itself; matching it here too would send it twice.) The
// gateway passes keys in canonical form.
func credentialHeaderMatcher(key string) (string, bool) {
	mk, ok := forwardedHeaders[key]
	return mk, ok
}

func dropAll(string) (string, bool) { return "", false }

// checkRequest rejects a REST request whose credential headers the facade
// would not forward, with the same InvalidArgument the gRPC service gives
// (grpc-gateway would silently drop a header value holding a control
// character, and the caller would be told its credentials are missing);
// answers a known path with another method 405 with that route's Allow;
// and reads the body, at most maxRESTBody of it (413 past that), before
// the gateway decodes it.
func checkRequest(mux *runtime.ServeMux, routes []openapi.Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fail := func(err error) {
			_, out := runtime.MarshalerForRequest(mux, r)
			runtime.HTTPError(r.Context(), mux, out, w, r, err)
		}
		if _, err := engine.CredentialsFromHeaders(r.Header.Values); status.Code(err) == codes.InvalidArgument {
			fail(err)
			return
		}
		route, known := routeOf(routes, r.URL.Path)
		if known && !slices.Contains(route.Methods, r.Method) {
			w.Header().Set("Allow", strings.Join(route.Methods, ", "))
			_, out := runtime.MarshalerForRequest(mux, r)
			writeStatus(w, out, http.StatusMethodNotAllowed, status.New(codes.Unimplemented, http.StatusText(http.StatusMethodNotAllowed)))
			return
		}
		// The whole body is read here, so that a body too large is a 413
		// (and the connection can serve the next request) rather than a
		// decoding error halfway; a route without a body gets none.
		if r.Body == http.NoBody {
			mux.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRESTBody))
		if err != nil {
			_, out := runtime.MarshalerForRequest(mux, r)
			if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
				writeStatus(w, out, http.StatusRequestEntityTooLarge,
					status.Newf(codes.InvalidArgument, "the request body is larger than %d bytes", maxRESTBody))
				return
			}
			fail(status.Error(codes.InvalidArgument, "the request body could not be read"))
			return
		}
		if known && slices.Contains(route.Body, r.Method) {
			r.Body = io.NopCloser(bytes.NewReader(body))
		} else {
			r.Body = http.NoBody
		}
		mux.ServeHTTP(w, r)
	})
}

// routeOf finds the route of a request path.
func routeOf(routes []openapi.Route, path string) (openapi.Route, bool) {
	for _, r := range routes {
		if r.Match(path) {
			return r, true
		}
	}
	return openapi.Route{}, false
}

// errorHandler is grpc-gateway's, plus a Retry-After header when the status
// carries a google.rpc.RetryInfo (a 429 or 503 from Opentact).
func errorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
			secs := math.Ceil(ri.GetRetryDelay().AsDuration().Seconds())
			w.Header().Set("Retry-After", strconv.Itoa(int(secs)))
		}
	}
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
}

// writeStatus answers with an HTTP status of its own and st as the body,
// in the gateway's error format.
func writeStatus(w http.ResponseWriter, m runtime.Marshaler, code int, st *status.Status) {
	body, err := m.Marshal(st.Proto())
	if err != nil {
		http.Error(w, st.Message(), code)
		return
	}
	w.Header().Set("Content-Type", m.ContentType(st.Proto()))
	w.WriteHeader(code)
	_, _ = w.Write(body)
}
