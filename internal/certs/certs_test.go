package certs_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opentact-facade/opentact-facade/internal/certs"
	"github.com/opentact-facade/opentact-facade/internal/testpki"
)

func TestPool(t *testing.T) {
	p := testpki.New(t)
	if pool, err := certs.Pool("--ca", p.ServerCA); err != nil || pool == nil {
		t.Fatalf("a PEM CA: %v, %v", pool, err)
	}
	notPEM := p.Write(t, "not.pem", []byte("not a certificate"))
	missing := filepath.Join(p.Dir, "missing.pem")
	for _, tc := range []struct{ path, want string }{
		{notPEM, "--ca " + notPEM + ": no PEM certificate in it"},
		{missing, "--ca: open " + missing},
	} {
		_, err := certs.Pool("--ca", tc.path)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Pool(%s): %v, want an error starting %q", tc.path, err, tc.want)
		}
	}
	if _, err := os.Stat(missing); err == nil {
		t.Fatal("the missing file exists")
	}
}
