package server

import (
	"crypto/tls"
	"errors"
	"fmt"

	"github.com/opentact-facade/opentact-facade/internal/certs"
)

// TLSFiles names the PEM files for TLS on both listeners.
type TLSFiles struct {
	Cert     string // server certificate chain
	Key      string // its private key
	ClientCA string // when set, callers must present a certificate signed by one of these CAs (mTLS)
}

// config loads the files; it returns nil, nil when TLS is off.
func (f TLSFiles) config() (*tls.Config, error) {
	switch {
	case f.Cert == "" && f.Key == "" && f.ClientCA == "":
		return nil, nil
	case f.Cert == "" || f.Key == "":
		return nil, errors.New("TLS needs both a certificate and a key (--tls-cert and --tls-key)")
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	c := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		// h2 for gRPC and REST over HTTP/2, http/1.1 for REST.
		NextProtos: []string{"h2", "http/1.1"},
	}
	if f.ClientCA != "" {
		pool, err := certs.Pool("TLS client CA", f.ClientCA)
		if err != nil {
			return nil, err
		}
		c.ClientCAs = pool
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c, nil
}
