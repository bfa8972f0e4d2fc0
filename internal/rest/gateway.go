package rest

import (
	"net/textproto"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// newGateway returns grpc-gateway's mux, for the services to register
// their routes on; e.check puts the facade's checks in front of it, and
// e answers its errors.
func newGateway(e *Edge) *runtime.ServeMux {
	return runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, restMarshaler()),
		runtime.WithIncomingHeaderMatcher(credentialHeaderMatcher),
		// The gRPC server sends no metadata worth showing a REST caller.
		runtime.WithOutgoingHeaderMatcher(dropAll),
		runtime.WithOutgoingTrailerMatcher(dropAll),
		runtime.WithDisableHTTPMethodOverride(),
		runtime.WithErrorHandler(e.errorHandler),
		runtime.WithRoutingErrorHandler(e.routingErrorHandler),
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
