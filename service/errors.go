package service

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// Domain is the google.rpc.ErrorInfo domain of every error the facade returns.
const Domain = "opentact.org"

// Reasons carried in google.rpc.ErrorInfo. They are part of the API:
// clients may switch on them.
const (
	ReasonCredentialsMissing   = "CREDENTIALS_MISSING"         // no credential header at all
	ReasonCredentialsMalformed = "CREDENTIALS_MALFORMED"       // a credential header the facade will not forward
	ReasonInvalidRequest       = "INVALID_REQUEST"             // the request breaks a rule of its proto; BadRequest names the fields
	ReasonBadRequest           = "BAD_REQUEST"                 // Opentact answered 400
	ReasonUnauthorized         = "UNAUTHORIZED"                // 401
	ReasonForbidden            = "FORBIDDEN"                   // 403
	ReasonNotFound             = "NOT_FOUND"                   // 404
	ReasonConflict             = "CONFLICT"                    // 409
	ReasonRateLimited          = "RATE_LIMITED"                // 429
	ReasonInternalError        = "UPSTREAM_INTERNAL_ERROR"     // 500
	ReasonNotImplemented       = "NOT_IMPLEMENTED"             // 501
	ReasonUnavailable          = "UPSTREAM_UNAVAILABLE"        // 502, 503, 504
	ReasonClientError          = "UPSTREAM_CLIENT_ERROR"       // any other 4xx
	ReasonServerError          = "UPSTREAM_SERVER_ERROR"       // any other 5xx
	ReasonRedirect             = "UPSTREAM_REDIRECT"           // a 3xx: redirects are never followed
	ReasonRejected             = "UPSTREAM_REJECTED"           // 2xx with "success": false
	ReasonMalformedResponse    = "UPSTREAM_MALFORMED_RESPONSE" // 2xx body that is not the documented JSON
	ReasonResponseTooLarge     = "UPSTREAM_RESPONSE_TOO_LARGE" // body over the size cap
	ReasonUnreachable          = "UPSTREAM_UNREACHABLE"        // refused, reset, cut off, DNS, TLS
	ReasonTimeout              = "UPSTREAM_TIMEOUT"            // no answer within --upstream-timeout
	ReasonCircuitOpen          = "UPSTREAM_CIRCUIT_OPEN"       // Opentact kept failing; the facade is not calling it for a while
	ReasonBusy                 = "FACADE_BUSY"                 // the facade is at its bound of calls in flight
	ReasonUpstreamOverloaded   = "UPSTREAM_OVERLOADED"         // every request slot to Opentact is busy, and the call could not get one in time
	ReasonDeadlineTooShort     = "DEADLINE_TOO_SHORT"          // the call has less time left than Opentact takes to answer
	ReasonShuttingDown         = "FACADE_SHUTTING_DOWN"        // the call was still running at the end of the shutdown grace
)

// The only messages an Unauthenticated status carries. They are fixed
// text, never Opentact's words, which could quote what the caller sent.
// (grpc-gateway would copy the message into a REST answer's
// WWW-Authenticate; the REST edge sets the challenges there instead.)
// Opentact's own message goes into ErrorInfo's "opentactMessage" metadata.
const (
	MessageCredentialsMissing = "missing credentials: send authorization (Basic or Bearer) or one of x-auth-token, x-auth-google-token, x-auth-facebook-token, x-auth-ha1b-token"
	MessageUnauthorized       = "opentact did not accept the credentials"
)

// errorStatus turns the outcome of an upstream call into the status of
// the call. ctx is the caller's: when it has ended, its end is the
// answer, whatever the upstream call reported.
func errorStatus(ctx context.Context, err error) *status.Status {
	if ctx.Err() != nil {
		return status.FromContextError(ctx.Err())
	}
	var ue *upstream.Error
	if st, ok := status.FromError(err); ok && err != nil {
		return st // a handler's own status
	}
	switch {
	case errors.As(err, &ue):
		return upstreamStatus(ue)
	case errors.Is(err, context.DeadlineExceeded):
		if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
			// The caller's own deadline, though ctx's timer has not fired
			// yet: the upstream call ran on a context of its own bound to
			// the same deadline (a shared request), whose timer fired first.
			return status.FromContextError(context.DeadlineExceeded)
		}
		return withInfo(codes.DeadlineExceeded, "opentact did not answer in time", ReasonTimeout, 0)
	case errors.Is(err, upstream.ErrNoCredentials):
		return missingCredentials()
	default:
		return status.New(codes.Internal, "internal error")
	}
}

// upstreamStatus maps one failed upstream call to a gRPC status. The
// message carries Opentact's own message when it sent one; it is already
// scrubbed of credentials by the upstream package.
func upstreamStatus(e *upstream.Error) *status.Status {
	switch e.Failure {
	case upstream.FailStatus:
		code, reason := statusCodeFor(e.StatusCode)
		if code == codes.Unauthenticated {
			st := withInfo(code, MessageUnauthorized, reason, e.StatusCode)
			if e.Message != "" {
				st = withInfoMeta(code, MessageUnauthorized, reason, e.StatusCode, "opentactMessage", e.Message)
			}
			return st
		}
		fallback := fmt.Sprintf("opentact answered HTTP %d", e.StatusCode)
		if e.StatusCode >= 300 && e.StatusCode < 400 {
			fallback = fmt.Sprintf("opentact answered with a redirect (HTTP %d), which is never followed; check that the upstream URL is Opentact's https address", e.StatusCode)
		}
		st := withInfo(code, opentactMessage(e, fallback), reason, e.StatusCode)
		if len(e.Fields) > 0 && code == codes.InvalidArgument {
			br := &errdetails.BadRequest{}
			for _, f := range e.Fields {
				br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: f.Field, Description: f.Message})
			}
			st = withDetail(st, br)
		}
		if e.RetryAfter > 0 && (code == codes.ResourceExhausted || code == codes.Unavailable) {
			st = withDetail(st, &errdetails.RetryInfo{RetryDelay: durationpb.New(e.RetryAfter)})
		}
		return st
	case upstream.FailRejected:
		fallback := fmt.Sprintf("opentact answered HTTP %d with success false", e.StatusCode)
		return withInfo(codes.Internal, opentactMessage(e, fallback), ReasonRejected, e.StatusCode)
	case upstream.FailMalformed:
		return withInfo(codes.Internal, fmt.Sprintf("opentact answered HTTP %d with a body that is not the documented JSON", e.StatusCode), ReasonMalformedResponse, e.StatusCode)
	case upstream.FailTooLarge:
		return withInfo(codes.Internal, fmt.Sprintf("opentact's HTTP %d answer is larger than the facade accepts", e.StatusCode), ReasonResponseTooLarge, e.StatusCode)
	case upstream.FailTransport:
		return withInfo(codes.Unavailable, "opentact unreachable: "+transportProblem(e), ReasonUnreachable, 0)
	case upstream.FailShed:
		return shedStatus(e)
	case upstream.FailCircuitOpen:
		st := withInfo(codes.Unavailable, "opentact kept failing; the facade stopped calling it for a while", ReasonCircuitOpen, 0)
		if e.RetryAfter > 0 {
			st = withDetail(st, &errdetails.RetryInfo{RetryDelay: durationpb.New(e.RetryAfter)})
		}
		return st
	}
	return status.New(codes.Internal, "internal error")
}

// opentactMessage is Opentact's own message when it sent one, else fallback.
func opentactMessage(e *upstream.Error, fallback string) string {
	if e.Message == "" {
		return fallback
	}
	return "opentact: " + e.Message
}

// statusCodeFor is the table from Opentact's HTTP status to a gRPC code.
func statusCodeFor(httpStatus int) (codes.Code, string) {
	switch httpStatus {
	case http.StatusBadRequest:
		return codes.InvalidArgument, ReasonBadRequest
	case http.StatusUnauthorized:
		return codes.Unauthenticated, ReasonUnauthorized
	case http.StatusForbidden:
		return codes.PermissionDenied, ReasonForbidden
	case http.StatusNotFound:
		return codes.NotFound, ReasonNotFound
	case http.StatusConflict:
		return codes.Aborted, ReasonConflict
	case http.StatusTooManyRequests:
		return codes.ResourceExhausted, ReasonRateLimited
	case http.StatusInternalServerError:
		return codes.Internal, ReasonInternalError
	case http.StatusNotImplemented:
		return codes.Unimplemented, ReasonNotImplemented
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return codes.Unavailable, ReasonUnavailable
	}
	switch {
	case httpStatus >= 400 && httpStatus < 500:
		return codes.FailedPrecondition, ReasonClientError
	case httpStatus >= 300 && httpStatus < 400:
		return codes.Internal, ReasonRedirect
	default:
		return codes.Internal, ReasonServerError
	}
}

// transportProblem names what went wrong on the wire in a few words, never
// with an address or anything from the request.
func transportProblem(err error) string {
	var (
		dnsErr  *net.DNSError
		certErr *tls.CertificateVerificationError
		unkAuth x509.UnknownAuthorityError
		recErr  tls.RecordHeaderError
		netErr  net.Error
	)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "connection closed before the answer was complete"
	case errors.As(err, &dnsErr):
		return "host name not found"
	case errors.As(err, &certErr), errors.As(err, &unkAuth), errors.As(err, &recErr):
		return "TLS handshake failed"
	case errors.As(err, &netErr) && netErr.Timeout():
		return "timed out"
	}
	return "connection failed"
}

// Busy is the error of a call the facade turned away, without calling
// Opentact, because it already had as many calls in flight as it
// allows; retryAfter, when positive, is sent as RetryInfo.
func Busy(retryAfter time.Duration) error {
	st := withInfo(codes.Unavailable, "the facade has too many calls in flight; try again later", ReasonBusy, 0)
	if retryAfter > 0 {
		st = withDetail(st, &errdetails.RetryInfo{RetryDelay: durationpb.New(retryAfter)})
	}
	return st.Err()
}

// shedStatus is the status of a call refused before its request was sent.
func shedStatus(e *upstream.Error) *status.Status {
	switch e.ShedReason {
	case upstream.ShedQueue:
		st := withInfo(codes.Unavailable, fmt.Sprintf("the facade is sending Opentact as many requests as it allows, and this call would not get its answer in time (Opentact answers in about %v); try again later", e.Estimate.Round(time.Millisecond)), ReasonUpstreamOverloaded, 0)
		if e.RetryAfter > 0 {
			st = withDetail(st, &errdetails.RetryInfo{RetryDelay: durationpb.New(e.RetryAfter)})
		}
		return st
	case upstream.ShedDeadline:
		return withInfo(codes.DeadlineExceeded, fmt.Sprintf("the call has less time left than Opentact takes to answer (about %v); not sent", e.Estimate.Round(time.Millisecond)), ReasonDeadlineTooShort, 0)
	}
	return status.New(codes.Canceled, "the caller went before the request was sent")
}

// ShuttingDown is the error of a call the server ended at the end of its
// shutdown grace.
func ShuttingDown() error {
	return withInfo(codes.Unavailable, "the facade is shutting down; try another replica", ReasonShuttingDown, 0).Err()
}

func missingCredentials() *status.Status {
	return withInfo(codes.Unauthenticated, MessageCredentialsMissing, ReasonCredentialsMissing, 0)
}

// withInfo builds a status with one ErrorInfo in Domain; httpStatus, when
// not 0, is Opentact's HTTP status, in the metadata key "httpStatus".
func withInfo(code codes.Code, msg, reason string, httpStatus int) *status.Status {
	return withInfoMeta(code, msg, reason, httpStatus)
}

// withInfoMeta is withInfo with more metadata, given as key, value pairs.
func withInfoMeta(code codes.Code, msg, reason string, httpStatus int, kv ...string) *status.Status {
	info := &errdetails.ErrorInfo{Domain: Domain, Reason: reason}
	if httpStatus != 0 || len(kv) > 0 {
		info.Metadata = make(map[string]string, 1+len(kv)/2)
	}
	if httpStatus != 0 {
		info.Metadata["httpStatus"] = strconv.Itoa(httpStatus)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		info.Metadata[kv[i]] = kv[i+1]
	}
	return withDetail(status.New(code, msg), info)
}

func withDetail(st *status.Status, detail protoadapt.MessageV1) *status.Status {
	out, err := st.WithDetails(detail)
	if err != nil {
		return st
	}
	return out
}
