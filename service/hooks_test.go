package service

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"
)

// jwtWith builds a JWT-shaped token whose payload segment is claims
// (base64url without padding); header and signature are arbitrary.
func jwtWith(claims string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc([]byte(claims)) + "." + enc([]byte("signature"))
}

func TestJWTExpiry(t *testing.T) {
	t.Parallel()
	padded := func(claims string) string {
		p := base64.URLEncoding.EncodeToString([]byte(claims))
		if !strings.HasSuffix(p, "=") {
			panic("claims chosen to need padding: " + claims)
		}
		return "eyJhbGciOiJIUzI1NiJ9." + p + ".c2ln"
	}
	for _, tc := range []struct {
		name  string
		token string
		want  time.Time // zero: no expiry
	}{
		{"integer exp", jwtWith(`{"sub":"u-1","exp":1700000000}`), time.Unix(1700000000, 0)},
		{"exp as a float", jwtWith(`{"exp":1700000000.75}`), time.Unix(1700000000, 0)},
		{"exp in exponent form", jwtWith(`{"exp":1.7e9}`), time.Unix(1700000000, 0)},
		{"exp with other claims around it", jwtWith(`{"iat":1,"exp":1700000001,"nbf":2,"uuid":"x"}`), time.Unix(1700000001, 0)},
		{"padded payload", padded(`{"exp": 1700000000}`), time.Unix(1700000000, 0)},
		{"no exp", jwtWith(`{"sub":"u-1"}`), time.Time{}},
		{"exp null", jwtWith(`{"exp":null}`), time.Time{}},
		{"exp a word", jwtWith(`{"exp":"tomorrow"}`), time.Time{}},
		{"exp an object", jwtWith(`{"exp":{"at":1700000000}}`), time.Time{}},
		// A JWT whose exp is at or before 1970 has long expired: never
		// keep it (the TTL alone would serve it past its expiry).
		{"exp zero", jwtWith(`{"exp":0}`), time.Unix(0, 0)},
		{"exp negative", jwtWith(`{"exp":-5}`), time.Unix(0, 0)},
		{"exp hugely negative", jwtWith(`{"exp":-1e300}`), time.Unix(0, 0)},
		{"huge exp", jwtWith(`{"exp":1e300}`), time.Time{}},
		{"exp past 2^40", jwtWith(fmt.Sprintf(`{"exp":%d}`, int64(1)<<41)), time.Time{}},
		{"payload not JSON", jwtWith(`exp=1700000000`), time.Time{}},
		{"payload a JSON array", jwtWith(`[1700000000]`), time.Time{}},
		{"two parts", strings.Join(strings.Split(jwtWith(`{"exp":1700000000}`), ".")[:2], "."), time.Time{}},
		{"four parts", jwtWith(`{"exp":1700000000}`) + ".more", time.Time{}},
		{"one part", "opaque-api-token", time.Time{}},
		{"empty", "", time.Time{}},
		{"bad base64", "eyJhbGciOiJIUzI1NiJ9.!!not*base64!!.c2ln", time.Time{}},
		{"standard base64 alphabet", "a." + base64.RawStdEncoding.EncodeToString([]byte(`{"exp":1700000000,"x":"~~~~>>>"}`)) + ".c", time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := jwtExpiry(tc.token)
			if ok != !tc.want.IsZero() || !got.Equal(tc.want) {
				t.Errorf("jwtExpiry(%q) = %v, %v; want %v, %v", tc.token, got, ok, tc.want, !tc.want.IsZero())
			}
		})
	}
}
