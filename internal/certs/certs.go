// Package certs loads the PEM files that TLS settings name.
package certs

import (
	"crypto/x509"
	"fmt"
	"os"
)

// Pool reads a PEM bundle of CA certificates; what names the setting
// (a flag, say) in errors.
func Pool(what, path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s %s: no PEM certificate in it", what, path)
	}
	return pool, nil
}
