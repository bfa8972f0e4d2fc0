package server

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/textproto"
	"strconv"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/opentact-facade/opentact-facade/internal/upstream"
	"github.com/opentact-facade/opentact-facade/service"
)

// newGateway returns grpc-gateway's mux, with the services registered on
// it by register; restHandler puts the facade's checks in front of it.
func newGateway(register func(*runtime.ServeMux) error) (*runtime.ServeMux, error) {
	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, restMarshaler()),
		runtime.WithIncomingHeaderMatcher(credentialHeaderMatcher),
		// The gRPC server sends no metadata worth showing a REST caller.
		runtime.WithOutgoingHeaderMatcher(dropAll),
		runtime.WithOutgoingTrailerMatcher(dropAll),
		runtime.WithDisableHTTPMethodOverride(),
		runtime.WithErrorHandler(errorHandler),
		runtime.WithRoutingErrorHandler(routingErrorHandler),
	)
	if err := register(mux); err != nil {
		return nil, err
	}
	return mux, nil
}

// restJSON is how REST answers are encoded: proto field names (Opentact's
// own, snake_case), unset fields left out rather than shown as zero values.
var restJSON = protojson.MarshalOptions{UseProtoNames: true}

// restMarshaler encodes REST answers as restJSON says, GetAuthResponse by
// hand (authJSON).
func restMarshaler() runtime.Marshaler {
	return authJSON{&runtime.HTTPBodyMarshaler{
		Marshaler: &runtime.JSONPb{
			MarshalOptions:   restJSON,
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
		},
	}}
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
// would not forward, with the same InvalidArgument the gRPC service gives.
// Without it, grpc-gateway silently drops a header value holding a control
// character, and the caller would be told its credentials are missing. It
// also caps the request body.
func checkRequest(mux *runtime.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := service.CredentialsFromHeaders(r.Header.Values); status.Code(err) == codes.InvalidArgument {
			_, out := runtime.MarshalerForRequest(mux, r)
			runtime.HTTPError(r.Context(), mux, out, w, r, err)
			return
		}
		// No route takes a body: read what is sent, at most maxRESTBody of
		// it, so that the connection can serve the next request, and
		// refuse more. (A body not read at all would be drained by
		// net/http after the answer, holding it back.)
		r.Body = http.MaxBytesReader(w, r.Body, maxRESTBody)
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			_, out := runtime.MarshalerForRequest(mux, r)
			if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
				writeStatus(w, out, http.StatusRequestEntityTooLarge,
					status.Newf(codes.InvalidArgument, "the request body is larger than %d bytes", maxRESTBody))
				return
			}
			runtime.HTTPError(r.Context(), mux, out, w, r, status.Error(codes.InvalidArgument, "the request body could not be read"))
			return
		}
		mux.ServeHTTP(w, r)
	})
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

// routingErrorHandler is grpc-gateway's, except that a known path with the
// wrong method is 405 Method Not Allowed (with Allow), not 501.
func routingErrorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	if httpStatus != http.StatusMethodNotAllowed {
		runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, httpStatus)
		return
	}
	w.Header().Set("Allow", http.MethodGet) // every route of the API is a GET
	errorHandler(ctx, mux, m, statusWriter{w, httpStatus}, r, status.Error(codes.Unimplemented, http.StatusText(httpStatus)))
}

// statusWriter writes its own status code in place of the one given.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s statusWriter) WriteHeader(int) { s.ResponseWriter.WriteHeader(s.code) }

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
