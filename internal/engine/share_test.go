package engine

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

func mustCreds(t *testing.T, values map[upstream.Kind]string) upstream.Credentials {
	t.Helper()
	c, err := upstream.NewCredentials(values)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestKeyer(t *testing.T) {
	t.Parallel()
	const secret = "Bearer S3CRET-token-0123456789"
	k := newKeyer()

	same1 := mustCreds(t, map[upstream.Kind]string{upstream.Authorization: secret, upstream.XAuthToken: "jwt"})
	same2 := mustCreds(t, map[upstream.Kind]string{upstream.XAuthToken: "jwt", upstream.Authorization: secret})
	if k.key(same1) != k.key(same2) {
		t.Error("the same credentials gave two keys")
	}

	// Every pair of these differs in a kind or a value, and must give
	// different keys.
	sets := map[string]map[upstream.Kind]string{
		"auth":                   {upstream.Authorization: secret},
		"auth other value":       {upstream.Authorization: secret + "x"},
		"auth+token":             {upstream.Authorization: secret, upstream.XAuthToken: "jwt"},
		"auth+token other value": {upstream.Authorization: secret, upstream.XAuthToken: "jwt2"},
		"token":                  {upstream.XAuthToken: "jwt"},
		"token as google":        {upstream.XAuthGoogleToken: "jwt"},
		"token as facebook":      {upstream.XAuthFacebookToken: "jwt"},
		"token as ha1b":          {upstream.XAuthHA1BToken: "jwt"},
		"ab|c":                   {upstream.XAuthToken: "ab", upstream.XAuthGoogleToken: "c"},
		"a|bc":                   {upstream.XAuthToken: "a", upstream.XAuthGoogleToken: "bc"},
		"abc|":                   {upstream.XAuthToken: "abc"},
		"|abc":                   {upstream.XAuthGoogleToken: "abc"},
		"every kind":             {upstream.Authorization: secret, upstream.XAuthToken: "1", upstream.XAuthGoogleToken: "2", upstream.XAuthFacebookToken: "3", upstream.XAuthHA1BToken: "4"},
		"every kind but one":     {upstream.Authorization: secret, upstream.XAuthToken: "1", upstream.XAuthGoogleToken: "2", upstream.XAuthFacebookToken: "3"},
		"none":                   {},
	}
	seen := map[credKey]string{}
	for name, values := range sets {
		key := k.key(mustCreds(t, values))
		if other, ok := seen[key]; ok {
			t.Errorf("%q and %q share a key", name, other)
		}
		seen[key] = name
	}

	// The key holds no part of the secret, and is no plain hash anyone
	// could compute from the secret outside the process.
	creds := mustCreds(t, map[upstream.Kind]string{upstream.Authorization: secret})
	key := k.key(creds)
	for _, enc := range [][]byte{key[:], []byte(hex.EncodeToString(key[:])), []byte(base64.StdEncoding.EncodeToString(key[:]))} {
		for i := 0; i+6 <= len(secret); i++ {
			if bytes.Contains(enc, []byte(secret[i:i+6])) {
				t.Errorf("the key %x holds %q, a piece of the secret", key, secret[i:i+6])
			}
		}
	}
	if plain := sha256.Sum256([]byte(secret)); key == credKey(plain) {
		t.Error("the key is sha256 of the secret: anyone can recompute it")
	}
	if token := sha256.Sum256([]byte(strings.TrimPrefix(secret, "Bearer "))); key == credKey(token) {
		t.Error("the key is sha256 of the bearer token: anyone can recompute it")
	}

	// Another process (another keyer) keys the same credentials
	// differently.
	if newKeyer().key(creds) == key {
		t.Error("two keyers gave the same key for the same credentials")
	}
	if k.key(creds) != key {
		t.Error("one keyer gave two keys for the same credentials")
	}
}

// TestCacheExpiryIsNoEviction: an entry dropped because its time ran out
// is not an eviction (opentact_facade_cache_evictions_total counts
// answers pushed out of a full cache), and the LRU bound evicts the least
// recently used entry.
func TestCacheExpiryIsNoEviction(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	c := newCache(time.Minute, 2, 0)
	c.now = func() time.Time { return now }
	k := newKeyer()
	key := func(tok string) credKey {
		return k.key(mustCreds(t, map[upstream.Kind]string{upstream.XAuthToken: tok}))
	}
	resp := &authv1.GetAuthResponse{}
	add := func(key credKey, expires time.Time) { c.add(key, resp, expires, credKey{}, 0) }

	add(key("a"), time.Time{})
	if _, ok := c.get(key("a")); !ok {
		t.Fatal("miss right after add")
	}
	now = now.Add(time.Minute)
	if _, ok := c.get(key("a")); ok {
		t.Fatal("hit at the TTL")
	}
	if c.evicted.Load() != 0 || c.lru.Len() != 0 {
		t.Errorf("after expiry: %d evictions, %d entries; want 0, 0", c.evicted.Load(), c.lru.Len())
	}

	// An answer's own expiry (a JWT's, from its hook) ends the entry
	// before the TTL does.
	add(key("b"), now.Add(5*time.Second))
	now = now.Add(4 * time.Second)
	if _, ok := c.get(key("b")); !ok {
		t.Fatal("miss 1s before the answer expires")
	}
	now = now.Add(time.Second)
	if _, ok := c.get(key("b")); ok {
		t.Fatal("hit when the answer expires")
	}
	// An answer that has expired is not kept, whatever the TTL.
	add(key("z"), time.Unix(0, 0))
	if c.lru.Len() != 0 {
		t.Error("an answer that expired in 1970 was cached")
	}
	add(key("c"), now)
	if c.lru.Len() != 0 {
		t.Error("an answer expiring now was cached")
	}

	// LRU: a, b, then a read of a, then c pushes b out.
	add(key("a"), time.Time{})
	add(key("b"), time.Time{})
	c.get(key("a"))
	add(key("c"), time.Time{})
	if _, ok := c.get(key("b")); ok {
		t.Error("b, least recently used, is still cached")
	}
	if _, ok := c.get(key("a")); !ok {
		t.Error("a, recently used, was evicted")
	}
	if got := c.evicted.Load(); got != 1 {
		t.Errorf("%d evictions, want 1", got)
	}
	if c.hits.Load() != 4 || c.misses.Load() != 3 {
		t.Errorf("hits %d, misses %d; want 4, 3", c.hits.Load(), c.misses.Load())
	}
}

// TestCacheBoundedInBytes: the byte bound evicts the least recently used
// answers, replacing an entry does not count it twice, and an answer
// larger than the whole bound is not kept.
func TestCacheBoundedInBytes(t *testing.T) {
	t.Parallel()
	k := newKeyer()
	key := func(tok string) credKey {
		return k.key(mustCreds(t, map[upstream.Kind]string{upstream.XAuthToken: tok}))
	}
	resp := func(size int) *authv1.GetAuthResponse {
		name := strings.Repeat("n", size)
		return &authv1.GetAuthResponse{User: &authv1.User{FirstName: &name}}
	}
	one := int64(proto.Size(resp(10_000))) + cacheEntryOverhead
	c := newCache(time.Minute, 100, 3*one)
	for _, tok := range []string{"a", "b", "c", "a", "a"} {
		c.add(key(tok), resp(10_000), time.Time{}, credKey{}, 0)
	}
	if got := c.bytes.Load(); got != 3*one || c.lru.Len() != 3 {
		t.Errorf("after a, b, c and a twice more: %d bytes, %d entries; want %d, 3", got, c.lru.Len(), 3*one)
	}
	c.add(key("d"), resp(10_000), time.Time{}, credKey{}, 0) // b is the least recently used
	if _, ok := c.get(key("b")); ok {
		t.Error("b is still cached past the byte bound")
	}
	if got := c.bytes.Load(); got != 3*one {
		t.Errorf("%d bytes after an eviction, want %d", got, 3*one)
	}
	if got := c.evicted.Load(); got != 1 {
		t.Errorf("%d evictions, want 1", got)
	}
	c.add(key("huge"), resp(40_000), time.Time{}, credKey{}, 0)
	if _, ok := c.get(key("huge")); ok || c.bytes.Load() > 3*one {
		t.Errorf("an answer over the whole bound was cached (%d bytes held)", c.bytes.Load())
	}
}

// tokenKeys are a keyer's tag of an API token and key of a call carrying
// the X-Auth-Token name, for cache tests.
func tokenKeys(t *testing.T) (tag, key func(string) credKey) {
	k := newKeyer()
	tag = func(tok string) credKey { return k.key(upstream.Credentials{}, []byte(tok)) }
	key = func(name string) credKey {
		return k.key(mustCreds(t, map[upstream.Kind]string{upstream.XAuthToken: name}))
	}
	return tag, key
}

// TestCacheRevocation: revoking a token drops the answers of every call
// that carried it and no other; revoking all drops every answer of a call
// that carried a token; an answer fetched across a revocation is not kept.
func TestCacheRevocation(t *testing.T) {
	t.Parallel()
	tag, key := tokenKeys(t)
	resp := &authv1.GetAuthResponse{}
	c := newCache(time.Minute, 100, 0)
	c.add(key("t1-a"), resp, time.Time{}, tag("t1"), 0)
	c.add(key("t1-b"), resp, time.Time{}, tag("t1"), 0)
	c.add(key("t2"), resp, time.Time{}, tag("t2"), 0)
	c.add(key("basic"), resp, time.Time{}, credKey{}, 0)

	c.revoke(tag("t1"), false)
	for name, want := range map[string]bool{"t1-a": false, "t1-b": false, "t2": true, "basic": true} {
		if _, ok := c.get(key(name)); ok != want {
			t.Errorf("after revoking t1, %s cached: %v, want %v", name, ok, want)
		}
	}
	// Fetched before the revocation (since 0), added after it: not kept.
	c.add(key("t1-a"), resp, time.Time{}, tag("t1"), 0)
	if _, ok := c.get(key("t1-a")); ok {
		t.Error("an answer fetched across a revocation was kept")
	}
	c.revoke(credKey{}, true)
	for name, want := range map[string]bool{"t2": false, "basic": true} {
		if _, ok := c.get(key(name)); ok != want {
			t.Errorf("after revoking all, %s cached: %v, want %v", name, ok, want)
		}
	}
	if len(c.byToken) != 0 {
		t.Errorf("the token index keeps %d tags after every tagged entry went", len(c.byToken))
	}
}

// TestCacheTokenExpiry: a token's expiry, once told, ends the answers to
// calls that carried it then, not at the TTL: one kept past it is dropped
// at once, one kept until before it stays, and one added later is kept
// only until it; a token already expired is not cached at all; the
// expiries kept are bounded like the entries.
func TestCacheTokenExpiry(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	tag, key := tokenKeys(t)
	resp := &authv1.GetAuthResponse{}
	c := newCache(time.Minute, 3, 0)
	c.now = func() time.Time { return now }
	c.add(key("t1-long"), resp, time.Time{}, tag("t1"), 0)
	c.add(key("t1-short"), resp, now.Add(10*time.Second), tag("t1"), 0)
	c.add(key("t2"), resp, time.Time{}, tag("t2"), 0)

	c.expire(tag("t1"), now.Add(20*time.Second))
	for name, want := range map[string]bool{"t1-long": false, "t1-short": true, "t2": true} {
		if _, ok := c.get(key(name)); ok != want {
			t.Errorf("t1 told to expire in 20s: %s cached: %v, want %v", name, ok, want)
		}
	}
	c.add(key("t1-long"), resp, time.Time{}, tag("t1"), 0)
	now = now.Add(19 * time.Second)
	if _, ok := c.get(key("t1-long")); !ok {
		t.Error("an answer added after t1's expiry was told is gone before it")
	}
	now = now.Add(time.Second)
	if _, ok := c.get(key("t1-long")); ok {
		t.Error("an answer to a call carrying t1 was served at t1's expiry")
	}
	c.add(key("t1-long"), resp, time.Time{}, tag("t1"), 0)
	if _, ok := c.lru.Peek(key("t1-long")); ok {
		t.Error("an answer to a call carrying an expired token was cached")
	}
	for _, tok := range []string{"a", "b", "c", "d"} {
		c.expire(tag(tok), now)
	}
	if n := c.tokenExpiry.Len(); n != 3 {
		t.Errorf("%d token expiries kept, want the bound, 3", n)
	}
}
