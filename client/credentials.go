// Package client is for Go services that call opentact-facade: per-call
// credentials for grpc.WithPerRPCCredentials, so that the caller's
// Opentact credentials ride along with every call without being set by
// hand.
//
//	conn, err := grpc.NewClient("facade:9090",
//		grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{})),
//		grpc.WithPerRPCCredentials(client.Basic("anna@example.com", password)),
//	)
//	user, err := authv1.NewAuthServiceClient(conn).GetAuth(ctx, &authv1.GetAuthRequest{})
//
// The credentials refuse to travel over a connection without transport
// security (the call fails before anything is sent) unless AllowInsecure
// is called, for a facade on loopback or behind a trusted proxy.
//
// A credential that cannot be sent (an empty one, one longer than 8 KiB,
// one holding a control or non-ASCII character) fails every call with
// Unauthenticated before anything is sent. Not InvalidArgument: grpc-go
// (gRFC A54) turns that code, coming from call credentials, into
// Internal.
package client

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// maxValueLen is the facade's own bound on one credential header.
const maxValueLen = 8 << 10

// Credentials is one Opentact credential, sent as gRPC metadata on every
// call. It implements credentials.PerRPCCredentials. Its String, Format
// and LogValue name the kind, never the secret, for a *Credentials and a
// Credentials alike.
type Credentials struct {
	key string
	// value is behind a pointer: fmt never follows a pointer below the
	// top level, so a Credentials in an unexported field (where fmt
	// cannot call Format) does not print the secret either.
	value         *string
	err           error
	allowInsecure bool
}

var _ credentials.PerRPCCredentials = (*Credentials)(nil)

// Basic is e-mail and password, sent as "authorization: Basic
// base64(email:password)".
func Basic(email, password string) *Credentials {
	switch {
	case email == "" || password == "":
		return &Credentials{key: "authorization", err: errors.New("basic credentials need an e-mail and a password")}
	case strings.Contains(email, ":"):
		return &Credentials{key: "authorization", err: errors.New("basic credentials: the e-mail must not contain ':'")}
	}
	return newCredentials("authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(email+":"+password)))
}

// Bearer is an Opentact API token (from POST /rest/token), sent as
// "authorization: Bearer <token>".
func Bearer(token string) *Credentials { return newCredentials("authorization", "Bearer "+token) }

// Token is an Opentact JWT (the token field of an earlier GetAuth), sent
// as "x-auth-token".
func Token(jwt string) *Credentials { return newCredentials("x-auth-token", jwt) }

// GoogleToken is a Google sign-in token, sent as "x-auth-google-token".
func GoogleToken(token string) *Credentials { return newCredentials("x-auth-google-token", token) }

// FacebookToken is a Facebook sign-in token, sent as "x-auth-facebook-token".
func FacebookToken(token string) *Credentials {
	return newCredentials("x-auth-facebook-token", token)
}

// HA1B is md5(login@domain:domain:password), sent as "x-auth-ha1b-token".
func HA1B(hash string) *Credentials { return newCredentials("x-auth-ha1b-token", hash) }

func newCredentials(key, value string) *Credentials {
	c := &Credentials{key: key, value: &value}
	if strings.HasSuffix(value, " ") || value == "" {
		c.err = fmt.Errorf("%s credential is empty", key)
		return c
	}
	if len(value) > maxValueLen {
		c.err = fmt.Errorf("%s credential is longer than %d bytes", key, maxValueLen)
		return c
	}
	for i := 0; i < len(value); i++ {
		if b := value[i]; b < 0x20 || b > 0x7e {
			c.err = fmt.Errorf("%s credential holds a control or non-ASCII character", key)
			return c
		}
	}
	return c
}

// AllowInsecure returns a copy of c that may be sent over a connection
// without transport security. The secret then crosses the network in
// clear text: use it only on loopback or inside a trusted network.
func (c *Credentials) AllowInsecure() *Credentials {
	cp := *c
	cp.allowInsecure = true
	return &cp
}

// GetRequestMetadata implements credentials.PerRPCCredentials. A
// credential that could not be built fails the call with
// Unauthenticated before anything is sent.
func (c *Credentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	switch {
	case c.err != nil:
		return nil, status.Error(codes.Unauthenticated, c.err.Error())
	case c.value == nil:
		return nil, status.Error(codes.Unauthenticated, "client.Credentials not built by one of its constructors")
	}
	return map[string]string{c.key: *c.value}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials: true
// unless AllowInsecure was called.
func (c *Credentials) RequireTransportSecurity() bool { return !c.allowInsecure }

// String names the kind, never the secret. (String, Format and LogValue
// have value receivers so that a Credentials value is covered too.)
func (c Credentials) String() string { return "client.Credentials[" + c.key + "]" }

// Format prints String for every verb, so no fmt verb can reach the secret.
func (c Credentials) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// LogValue logs the kind, never the secret.
func (c Credentials) LogValue() slog.Value { return slog.StringValue(c.key) }
