package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/opentact-facade/opentact-facade/internal/openapi"
	"github.com/opentact-facade/opentact-facade/service"
)

// restEdge is what the REST port checks before grpc-gateway decodes a
// request, and how it answers a request it refuses: with a JSON
// google.rpc.Status, as every other REST error.
type restEdge struct {
	mux    *runtime.ServeMux
	routes []openapi.Route
}

func newRESTEdge(mux *runtime.ServeMux, routes []openapi.Route) *restEdge {
	return &restEdge{mux: mux, routes: routes}
}

// check refuses, before next (the gateway) sees it, a REST request:
//
//   - whose credential headers the facade would not forward, with the
//     same InvalidArgument the gRPC service gives (grpc-gateway would
//     silently drop a header value holding a control character, and the
//     caller would be told its credentials are missing);
//   - to a known path with another method: 405, with that route's Allow;
//   - with a body over maxRESTBody: 413;
//   - with a body that is not application/json: 415, so that a browser
//     cannot send one cross-site without a CORS preflight;
//   - with a body holding more than one JSON value: 400 (the gateway would
//     decode the first and ignore the rest).
//
// It reads the whole body, so that a body too large is a 413 (and the
// connection can serve the next request) rather than a decoding error
// halfway; a route without a body gets none.
func (e *restEdge) check(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := service.CredentialsFromHeaders(r.Header.Values); status.Code(err) == codes.InvalidArgument {
			e.refuse(w, r, 0, err)
			return
		}
		route, known := routeOf(e.routes, r.URL.Path)
		if known && !slices.Contains(route.Methods, r.Method) {
			w.Header().Set("Allow", strings.Join(route.Methods, ", "))
			e.refuse(w, r, http.StatusMethodNotAllowed, status.Error(codes.Unimplemented, http.StatusText(http.StatusMethodNotAllowed)))
			return
		}
		if r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRESTBody))
		if err != nil {
			if tooLarge := (*http.MaxBytesError)(nil); errors.As(err, &tooLarge) {
				e.refuse(w, r, http.StatusRequestEntityTooLarge,
					status.Errorf(codes.InvalidArgument, "the request body is larger than %d bytes", maxRESTBody))
				return
			}
			e.refuse(w, r, 0, status.Error(codes.InvalidArgument, "the request body could not be read"))
			return
		}
		if len(body) > 0 {
			if !isJSON(r.Header.Values("Content-Type")) {
				e.refuse(w, r, http.StatusUnsupportedMediaType,
					status.Error(codes.InvalidArgument, "the request body must be application/json (charset utf-8 if any)"))
				return
			}
			if !oneJSONValue(body) {
				e.refuse(w, r, 0, status.Error(codes.InvalidArgument, "the request body holds more than one JSON value"))
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

// refuse answers a refused request with err's status as a JSON
// google.rpc.Status, and with code as the HTTP status when it is not 0
// (the gRPC code's otherwise).
func (e *restEdge) refuse(w http.ResponseWriter, r *http.Request, code int, err error) {
	_, out := runtime.MarshalerForRequest(e.mux, r)
	if code != 0 {
		err = &runtime.HTTPStatusError{HTTPStatus: code, Err: err}
	}
	runtime.HTTPError(r.Context(), e.mux, out, w, r, err)
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

// routeOf finds the route of a request path.
func routeOf(routes []openapi.Route, path string) (openapi.Route, bool) {
	for _, r := range routes {
		if r.Match(path) {
			return r, true
		}
	}
	return openapi.Route{}, false
}
