package service

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"hash"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"google.golang.org/protobuf/proto"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// credKey identifies a credential set without holding it: an HMAC-SHA256
// of the values under a key drawn at random when the process starts, so
// that it can neither be reversed nor recomputed outside the process.
type credKey [sha256.Size]byte

type keyer struct {
	secret [32]byte
	pool   sync.Pool // of *keyState: an HMAC is 3 allocations to set up
}

// keyState is a keyed HMAC and a buffer for the message, reused across
// calls.
type keyState struct {
	mac hash.Hash
	msg []byte
}

// maxPooledKeyMsg bounds the message buffer kept for reuse; credentials
// are limited to 64 KiB of metadata anyway.
const maxPooledKeyMsg = 4 << 10

func newKeyer() *keyer {
	k := &keyer{}
	_, _ = rand.Read(k.secret[:])
	return k
}

func (k *keyer) key(c upstream.Credentials) credKey {
	st, _ := k.pool.Get().(*keyState)
	if st == nil {
		st = &keyState{mac: hmac.New(sha256.New, k.secret[:])}
	}
	// Length-prefixed, kind by kind: no two credential sets encode alike.
	msg := st.msg[:0]
	for _, kind := range upstream.Kinds() {
		v := c.Value(kind)
		msg = binary.BigEndian.AppendUint64(msg, uint64(len(v)))
		msg = append(msg, v...)
	}
	st.mac.Reset()
	st.mac.Write(msg)
	var out credKey
	st.mac.Sum(out[:0])
	clear(msg) // no credential stays in the pooled buffer
	if cap(msg) <= maxPooledKeyMsg {
		st.msg = msg
		k.pool.Put(st)
	}
	return out
}

// flights lets identical concurrent calls share one upstream request. A
// call joins a request under way for the same credentials when that
// request's deadline is no earlier than its own, give or take joinSlackFor;
// otherwise it starts its own. The shared request does not end when one
// caller cancels; it is cancelled when every caller waiting on it has
// gone. Each caller waits only until its own deadline.
type flights struct {
	mu sync.Mutex
	m  map[credKey]*flight
}

// joinSlackFor is how much earlier than a caller's own deadline a shared
// request may be bound to end for the caller to join it: a tenth of the
// caller's time, and at least 50ms. Calls without a deadline of their own
// get the same default budget counted from their arrival, so this is how
// far apart two of them may arrive and still share.
func joinSlackFor(budget time.Duration) time.Duration {
	return max(50*time.Millisecond, budget/10)
}

type flight struct {
	done     chan struct{}
	deadline time.Time
	cancel   context.CancelFunc
	waiters  int // guarded by flights.mu

	resp  *authv1.GetAuthResponse
	err   error
	stats upstream.Stats
}

// do runs fn for key, or waits for the same call already under way. ctx
// must have a deadline. shared reports whether another caller's request
// answered.
//
// The first caller runs fn in its own goroutine (no goroutine is started
// per call); should it go before fn ends while others wait, fn goes on for
// them, and only its handler lingers until then.
func (f *flights) do(ctx context.Context, key credKey, fn func(context.Context) (*authv1.GetAuthResponse, error)) (resp *authv1.GetAuthResponse, stats upstream.Stats, shared bool, err error) {
	deadline, _ := ctx.Deadline()
	f.mu.Lock()
	if f.m == nil {
		f.m = map[credKey]*flight{}
	}
	fl, ok := f.m[key]
	if ok && !fl.deadline.Before(deadline.Add(-joinSlackFor(time.Until(deadline)))) {
		fl.waiters++
		f.mu.Unlock()
		return f.wait(ctx, key, fl)
	}
	// The shared request outlives this caller's cancellation, not its
	// deadline: a later caller with more time starts its own.
	sctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()
	fl = &flight{done: make(chan struct{}), deadline: deadline, cancel: cancel, waiters: 1}
	f.m[key] = fl
	f.mu.Unlock()

	stop := context.AfterFunc(ctx, func() { f.leave(key, fl) })
	fl.resp, fl.err = fn(upstream.WithStats(sctx, &fl.stats))
	stopped := stop()
	f.mu.Lock()
	if f.m[key] == fl {
		delete(f.m, key)
	}
	f.mu.Unlock()
	close(fl.done)
	if !stopped {
		// This caller went before the answer: its own end is its answer.
		return nil, upstream.Stats{}, false, ctx.Err()
	}
	return fl.resp, fl.stats, false, fl.err
}

func (f *flights) wait(ctx context.Context, key credKey, fl *flight) (*authv1.GetAuthResponse, upstream.Stats, bool, error) {
	select {
	case <-fl.done:
		return fl.resp, fl.stats, true, fl.err
	case <-ctx.Done():
		f.leave(key, fl)
		return nil, upstream.Stats{}, true, ctx.Err()
	}
}

// leave records that a caller stopped waiting on fl. The last one out
// cancels the request and lets no later caller join it on its way out.
func (f *flights) leave(key credKey, fl *flight) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl.waiters--
	if fl.waiters == 0 {
		if f.m[key] == fl {
			delete(f.m, key)
		}
		fl.cancel()
	}
}

// cache keeps successful answers for a while, by credential key, within a
// bound on entries and one on bytes (each answer counted as its encoded
// size plus cacheEntryOverhead), the least recently used going first. It
// never keeps an error, and never serves an answer past the expiry of the
// JWT in it.
type cache struct {
	lru      *lru.Cache[credKey, cacheEntry]
	ttl      time.Duration
	now      func() time.Time
	maxBytes int64
	addMu    sync.Mutex // adds, so that the byte count follows replaced entries
	bytes    atomic.Int64
	hits     atomic.Uint64
	misses   atomic.Uint64
	evicted  atomic.Uint64
}

type cacheEntry struct {
	resp    *authv1.GetAuthResponse
	expires time.Time
	size    int64
}

// Bounds of the response cache when none is given.
const (
	DefaultCacheMaxEntries = 10_000
	DefaultCacheMaxBytes   = 32 << 20
)

// cacheEntryOverhead is what an entry costs beyond its encoded answer:
// the message structs, the key and the LRU's bookkeeping.
const cacheEntryOverhead = 1280

// jwtSkew: an answer is dropped this long before its JWT expires, so that
// a caller never receives a token about to die in flight.
const jwtSkew = 5 * time.Second

func newCache(ttl time.Duration, maxEntries int, maxBytes int64) *cache {
	if maxEntries <= 0 {
		maxEntries = DefaultCacheMaxEntries
	}
	if maxBytes <= 0 {
		maxBytes = DefaultCacheMaxBytes
	}
	c := &cache{ttl: ttl, now: time.Now, maxBytes: maxBytes}
	// The callback keeps the byte count; evictions are counted where they
	// happen, as the LRU calls it on Remove too.
	c.lru, _ = lru.NewWithEvict(maxEntries, func(_ credKey, e cacheEntry) { c.bytes.Add(-e.size) })
	return c
}

func (c *cache) get(key credKey) (*authv1.GetAuthResponse, bool) {
	e, ok := c.lru.Get(key)
	if ok && c.now().Before(e.expires) {
		c.hits.Add(1)
		return e.resp, true
	}
	if ok {
		c.lru.Remove(key)
	}
	c.misses.Add(1)
	return nil, false
}

func (c *cache) add(key credKey, resp *authv1.GetAuthResponse) {
	expires := c.now().Add(c.ttl)
	if exp, ok := jwtExpiry(resp.GetUser().GetToken()); ok {
		if exp = exp.Add(-jwtSkew); exp.Before(expires) {
			expires = exp
		}
	}
	size := int64(proto.Size(resp)) + cacheEntryOverhead
	if !c.now().Before(expires) || size > c.maxBytes {
		return
	}
	c.addMu.Lock()
	defer c.addMu.Unlock()
	c.lru.Remove(key) // an entry replaced is uncounted by the callback
	c.bytes.Add(size)
	if c.lru.Add(key, cacheEntry{resp: resp, expires: expires, size: size}) {
		c.evicted.Add(1)
	}
	for c.bytes.Load() > c.maxBytes {
		if _, _, ok := c.lru.RemoveOldest(); !ok {
			break
		}
		c.evicted.Add(1)
	}
}

// jwtExpiry reads the "exp" claim of a JWT, without checking its
// signature (the facade has no key; the claim only shortens caching).
func jwtExpiry(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == nil {
		return time.Time{}, false
	}
	secs, err := claims.Exp.Float64()
	if err != nil || secs > 1<<40 {
		return time.Time{}, false
	}
	if secs <= 0 {
		// 1970 or before: long expired, so never cached (rather than
		// cached for the whole TTL as a token without exp would be).
		return time.Unix(0, 0), true
	}
	return time.Unix(int64(secs), 0), true
}
