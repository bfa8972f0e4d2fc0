// Package apierr is the facade's one mapping from failures to gRPC
// statuses: every error a caller gets carries a google.rpc.ErrorInfo in
// Domain whose reason is an opentact.api.v1.ErrorReason.
package apierr

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

	apiv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/api/v1"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// Domain is the google.rpc.ErrorInfo domain of every error the facade returns.
const Domain = "opentact.org"

// The only messages an Unauthenticated status carries. They are fixed
// text, never Opentact's words, which could quote what the caller sent.
// (grpc-gateway would copy the message into a REST answer's
// WWW-Authenticate; the REST edge sets the challenges there instead.)
// Opentact's own message goes into ErrorInfo's "opentactMessage" metadata.
const (
	MessageCredentialsMissing = "missing credentials: send authorization (Basic or Bearer) or one of x-auth-token, x-auth-google-token, x-auth-facebook-token, x-auth-ha1b-token"
	MessageUnauthorized       = "opentact did not accept the credentials"
)

// FromError turns the outcome of an upstream call into the status of
// the call. ctx is the caller's: when it has ended, its end is the
// answer, whatever the upstream call reported.
func FromError(ctx context.Context, err error) *status.Status {
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
		return WithInfo(codes.DeadlineExceeded, "opentact did not answer in time", apiv1.ErrorReason_UPSTREAM_TIMEOUT, 0)
	case errors.Is(err, upstream.ErrNoCredentials):
		return MissingCredentials()
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
			st := WithInfo(code, MessageUnauthorized, reason, e.StatusCode)
			if e.Message != "" {
				st = withInfoMeta(code, MessageUnauthorized, reason, e.StatusCode, "opentactMessage", e.Message)
			}
			return st
		}
		fallback := fmt.Sprintf("opentact answered HTTP %d", e.StatusCode)
		if e.StatusCode >= 300 && e.StatusCode < 400 {
			fallback = fmt.Sprintf("opentact answered with a redirect (HTTP %d), which is never followed; check that the upstream URL is Opentact's https address", e.StatusCode)
		}
		st := WithInfo(code, opentactMessage(e, fallback), reason, e.StatusCode)
		if len(e.Fields) > 0 && code == codes.InvalidArgument {
			br := &errdetails.BadRequest{}
			for _, f := range e.Fields {
				br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: f.Field, Description: f.Message})
			}
			st = WithDetail(st, br)
		}
		if e.RetryAfter > 0 && (code == codes.ResourceExhausted || code == codes.Unavailable) {
			st = WithDetail(st, &errdetails.RetryInfo{RetryDelay: durationpb.New(e.RetryAfter)})
		}
		return st
	case upstream.FailRejected:
		fallback := fmt.Sprintf("opentact answered HTTP %d with success false", e.StatusCode)
		return WithInfo(codes.Internal, opentactMessage(e, fallback), apiv1.ErrorReason_UPSTREAM_REJECTED, e.StatusCode)
	case upstream.FailMalformed:
		return WithInfo(codes.Internal, fmt.Sprintf("opentact answered HTTP %d with a body that is not the documented JSON", e.StatusCode), apiv1.ErrorReason_UPSTREAM_MALFORMED_RESPONSE, e.StatusCode)
	case upstream.FailTooLarge:
		return WithInfo(codes.Internal, fmt.Sprintf("opentact's HTTP %d answer is larger than the facade accepts", e.StatusCode), apiv1.ErrorReason_UPSTREAM_RESPONSE_TOO_LARGE, e.StatusCode)
	case upstream.FailTransport:
		return WithInfo(codes.Unavailable, "opentact unreachable: "+transportProblem(e), apiv1.ErrorReason_UPSTREAM_UNREACHABLE, 0)
	case upstream.FailShed:
		return shedStatus(e)
	case upstream.FailCircuitOpen:
		st := WithInfo(codes.Unavailable, "opentact kept failing; the facade stopped calling it for a while", apiv1.ErrorReason_UPSTREAM_CIRCUIT_OPEN, 0)
		if e.RetryAfter > 0 {
			st = WithDetail(st, &errdetails.RetryInfo{RetryDelay: durationpb.New(e.RetryAfter)})
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
func statusCodeFor(httpStatus int) (codes.Code, apiv1.ErrorReason) {
	switch httpStatus {
	case http.StatusBadRequest:
		return codes.InvalidArgument, apiv1.ErrorReason_BAD_REQUEST
	case http.StatusUnauthorized:
		return codes.Unauthenticated, apiv1.ErrorReason_UNAUTHORIZED
	case http.StatusPaymentRequired:
		// "Not enough account balance": the account must be topped up
		// before the call can succeed.
		return codes.FailedPrecondition, apiv1.ErrorReason_INSUFFICIENT_BALANCE
	case http.StatusForbidden:
		return codes.PermissionDenied, apiv1.ErrorReason_FORBIDDEN
	case http.StatusNotFound:
		return codes.NotFound, apiv1.ErrorReason_NOT_FOUND
	case http.StatusConflict:
		// "Conflict": the record is still in use (a SIP domain with
		// users, an app with numbers) or already exists. The account's
		// state must change first; retrying the same call cannot help,
		// which AIP-193 calls FAILED_PRECONDITION, not ABORTED.
		return codes.FailedPrecondition, apiv1.ErrorReason_CONFLICT
	case http.StatusTooManyRequests:
		return codes.ResourceExhausted, apiv1.ErrorReason_RATE_LIMITED
	case http.StatusInternalServerError:
		return codes.Internal, apiv1.ErrorReason_UPSTREAM_INTERNAL_ERROR
	case http.StatusNotImplemented:
		return codes.Unimplemented, apiv1.ErrorReason_NOT_IMPLEMENTED
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return codes.Unavailable, apiv1.ErrorReason_UPSTREAM_UNAVAILABLE
	}
	switch {
	case httpStatus >= 400 && httpStatus < 500:
		return codes.FailedPrecondition, apiv1.ErrorReason_UPSTREAM_CLIENT_ERROR
	case httpStatus >= 300 && httpStatus < 400:
		return codes.Internal, apiv1.ErrorReason_UPSTREAM_REDIRECT
	default:
		return codes.Internal, apiv1.ErrorReason_UPSTREAM_SERVER_ERROR
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
	st := WithInfo(codes.Unavailable, "the facade has too many calls in flight; try again later", apiv1.ErrorReason_FACADE_BUSY, 0)
	if retryAfter > 0 {
		st = WithDetail(st, &errdetails.RetryInfo{RetryDelay: durationpb.New(retryAfter)})
	}
	return st.Err()
}

// shedStatus is the status of a call refused before its request was sent.
func shedStatus(e *upstream.Error) *status.Status {
	switch e.ShedReason {
	case upstream.ShedQueue:
		st := WithInfo(codes.Unavailable, fmt.Sprintf("the facade is sending Opentact as many requests as it allows, and this call would not get its answer in time (Opentact answers in about %v); try again later", e.Estimate.Round(time.Millisecond)), apiv1.ErrorReason_UPSTREAM_OVERLOADED, 0)
		if e.RetryAfter > 0 {
			st = WithDetail(st, &errdetails.RetryInfo{RetryDelay: durationpb.New(e.RetryAfter)})
		}
		return st
	case upstream.ShedDeadline:
		return WithInfo(codes.DeadlineExceeded, fmt.Sprintf("the call has less time left than Opentact takes to answer (about %v); not sent", e.Estimate.Round(time.Millisecond)), apiv1.ErrorReason_DEADLINE_TOO_SHORT, 0)
	}
	return status.New(codes.Canceled, "the caller went before the request was sent")
}

// ShuttingDown is the error of a call the server ended at the end of its
// shutdown grace.
func ShuttingDown() error {
	return WithInfo(codes.Unavailable, "the facade is shutting down; try another replica", apiv1.ErrorReason_FACADE_SHUTTING_DOWN, 0).Err()
}

// StreamShuttingDown is the error of a stream the server ends as it
// shuts down: UNAVAILABLE with RetryInfo, to be opened again on another
// replica.
func StreamShuttingDown(retryAfter time.Duration) error {
	st := WithInfo(codes.Unavailable, "the facade is shutting down; open the stream again (another replica will serve it)", apiv1.ErrorReason_FACADE_SHUTTING_DOWN, 0)
	return WithDetail(st, &errdetails.RetryInfo{RetryDelay: durationpb.New(retryAfter)}).Err()
}

func MissingCredentials() *status.Status {
	return WithInfo(codes.Unauthenticated, MessageCredentialsMissing, apiv1.ErrorReason_CREDENTIALS_MISSING, 0)
}

// WithInfo builds a status with one ErrorInfo in Domain; httpStatus, when
// not 0, is Opentact's HTTP status, in the metadata key "httpStatus".
func WithInfo(code codes.Code, msg string, reason apiv1.ErrorReason, httpStatus int) *status.Status {
	return withInfoMeta(code, msg, reason, httpStatus)
}

// withInfoMeta is WithInfo with more metadata, given as key, value pairs.
func withInfoMeta(code codes.Code, msg string, reason apiv1.ErrorReason, httpStatus int, kv ...string) *status.Status {
	info := &errdetails.ErrorInfo{Domain: Domain, Reason: reason.String()}
	if httpStatus != 0 || len(kv) > 0 {
		info.Metadata = make(map[string]string, 1+len(kv)/2)
	}
	if httpStatus != 0 {
		info.Metadata["httpStatus"] = strconv.Itoa(httpStatus)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		info.Metadata[kv[i]] = kv[i+1]
	}
	return WithDetail(status.New(code, msg), info)
}

func WithDetail(st *status.Status, detail protoadapt.MessageV1) *status.Status {
	out, err := st.WithDetails(detail)
	if err != nil {
		return st
	}
	return out
}
