// Package testpki makes a throwaway PKI for tests (and make bench): a server certificate
// for 127.0.0.1 and localhost from one CA, a client certificate from a
// second (the CA a server trusts for mTLS), and a client certificate from
// a third that no one trusts. Keys are ECDSA P-256; certificates are valid
// from an hour ago to an hour from now.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

var serial atomic.Int64

// CA is a certificate authority that issues leaf certificates.
type CA struct {
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// NewCA makes a self-signed CA named name.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	ca, err := MakeCA(name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// MakeCA is NewCA for a program (make bench) rather than a test.
func MakeCA(name string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, key: key}, nil
}

// Issue signs a leaf certificate named name, for a server (127.0.0.1, ::1
// and localhost) or a client, and returns it and its key in PEM.
func (ca *CA) Issue(t testing.TB, name string, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	certPEM, keyPEM, err := ca.Leaf(name, server)
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, keyPEM
}

// Leaf is Issue for a program rather than a test.
func (ca *CA) Leaf(name string, server bool) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), nil
}

// PEM is the CA's certificate in PEM.
func (ca *CA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// PKI is the three CAs' certificates, as PEM files in Dir and loaded.
type PKI struct {
	Dir string

	// PEM files.
	ServerCA, ServerCert, ServerKey string
	ClientCA, ClientCert, ClientKey string
	RogueCert, RogueKey             string

	Roots  *x509.CertPool  // trusts the server's CA
	Client tls.Certificate // signed by the client CA
	Rogue  tls.Certificate // signed by a CA no one trusts
}

// New makes a PKI in a temporary directory removed when the test ends.
func New(t testing.TB) *PKI {
	t.Helper()
	p := &PKI{Dir: t.TempDir(), Roots: x509.NewCertPool()}
	serverCA, clientCA, rogueCA := NewCA(t, "test server CA"), NewCA(t, "test client CA"), NewCA(t, "rogue CA")
	p.Roots.AddCert(serverCA.Cert)
	p.ServerCA = p.Write(t, "server-ca.pem", serverCA.PEM())
	p.ClientCA = p.Write(t, "client-ca.pem", clientCA.PEM())
	leaf := func(ca *CA, name string, server bool, file string) (certFile, keyFile string, pair tls.Certificate) {
		certPEM, keyPEM := ca.Issue(t, name, server)
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return p.Write(t, file+".pem", certPEM), p.Write(t, file+"-key.pem", keyPEM), pair
	}
	p.ServerCert, p.ServerKey, _ = leaf(serverCA, "opentact-facade", true, "server")
	p.ClientCert, p.ClientKey, p.Client = leaf(clientCA, "good client", false, "client")
	p.RogueCert, p.RogueKey, p.Rogue = leaf(rogueCA, "rogue client", false, "rogue")
	return p
}

// Write writes data to the file name in p.Dir and returns its path.
func (p *PKI) Write(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(p.Dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
