package engine

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"google.golang.org/protobuf/proto"

	"github.com/opentact-facade/opentact-facade/internal/defaults"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// credKey identifies a call (or an API token) without holding its
// credentials: an HMAC-SHA256 of the values under a key drawn at random
// when the process starts, so that it can neither be reversed nor
// recomputed outside the process.
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

// key identifies a call: its credentials and parts (the method, the
// request), so that two calls share a key only if they ask the same thing
// with the same credentials.
func (k *keyer) key(c upstream.Credentials, parts ...[]byte) credKey {
	st, _ := k.pool.Get().(*keyState)
	if st == nil {
		st = &keyState{mac: hmac.New(sha256.New, k.secret[:])}
	}
	// Length-prefixed, kind by kind, part by part: no two calls encode
	// alike.
	msg := st.msg[:0]
	for _, kind := range upstream.Kinds() {
		v := c.Value(kind)
		msg = binary.BigEndian.AppendUint64(msg, uint64(len(v)))
		msg = append(msg, v...)
	}
	for _, p := range parts {
		msg = binary.BigEndian.AppendUint64(msg, uint64(len(p)))
		msg = append(msg, p...)
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
// call joins a request under way for the same key (method, credentials
// and request) when that
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

	resp  proto.Message
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
func (f *flights) do(ctx context.Context, key credKey, fn func(context.Context) (proto.Message, error)) (resp proto.Message, stats upstream.Stats, shared bool, err error) {
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

func (f *flights) wait(ctx context.Context, key credKey, fl *flight) (proto.Message, upstream.Stats, bool, error) {
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

// cache keeps successful answers for a while, by call key, within a
// bound on entries and one on bytes (each answer counted as its encoded
// size plus cacheEntryOverhead), the least recently used going first. It
// never keeps an error, never serves an answer past the expiry its hook
// reads from it (a JWT's) or past the expired_on of the API token its call
// carried (when a token answer through the facade told it), and drops the
// answers to calls that carried a token once that token is revoked
// through the facade.
type cache struct {
	lru      *lru.Cache[credKey, cacheEntry]
	ttl      time.Duration
	now      func() time.Time
	maxBytes int64
	addMu    sync.Mutex // adds and revocations: the byte count and the token index follow them
	bytes    atomic.Int64
	hits     atomic.Uint64
	misses   atomic.Uint64
	evicted  atomic.Uint64
	// byToken indexes the entries of calls that carried a token
	// (Authorization: Bearer) by the token's tag; guarded by addMu.
	byToken map[credKey]map[credKey]struct{}
	// tokenExpiry is when answers to calls carrying each API token that
	// a Tells hook has shown stop being true, by tag; bounded like the
	// entries.
	tokenExpiry *lru.Cache[credKey, time.Time]
	// revocations counts revocations, so that an answer to a request
	// under way while one happened is not kept after it.
	revocations atomic.Uint64
}

type cacheEntry struct {
	resp    proto.Message
	expires time.Time
	size    int64
	token   credKey // the tag of the call's token; zero if it carried none
}

// Bounds of the response cache when none is given.
const (
	DefaultCacheMaxEntries = defaults.CacheMaxEntries
	DefaultCacheMaxBytes   = defaults.CacheMaxBytes
)

// cacheEntryOverhead is what an entry costs beyond its encoded answer:
// the message structs, the key and the LRU's bookkeeping.
const cacheEntryOverhead = 1280

func newCache(ttl time.Duration, maxEntries int, maxBytes int64) *cache {
	if maxEntries <= 0 {
		maxEntries = DefaultCacheMaxEntries
	}
	if maxBytes <= 0 {
		maxBytes = DefaultCacheMaxBytes
	}
	c := &cache{ttl: ttl, now: time.Now, maxBytes: maxBytes, byToken: map[credKey]map[credKey]struct{}{}}
	c.tokenExpiry, _ = lru.New[credKey, time.Time](maxEntries)
	// The callback keeps the byte count and the token index (it runs under
	// addMu, or on a get's Remove, which takes it); evictions are counted
	// where they happen, as the LRU calls it on Remove too.
	c.lru, _ = lru.NewWithEvict(maxEntries, func(key credKey, e cacheEntry) {
		c.bytes.Add(-e.size)
		if e.token != (credKey{}) {
			if keys := c.byToken[e.token]; keys != nil {
				delete(keys, key)
				if len(keys) == 0 {
					delete(c.byToken, e.token)
				}
			}
		}
	})
	return c
}

func (c *cache) get(key credKey) (proto.Message, bool) {
	e, ok := c.lru.Get(key)
	if ok && c.now().Before(e.expires) {
		c.hits.Add(1)
		return e.resp, true
	}
	if ok {
		c.addMu.Lock()
		c.lru.Remove(key)
		c.addMu.Unlock()
	}
	c.misses.Add(1)
	return nil, false
}

// add keeps resp for key until the TTL or expires (when not zero), the
// sooner. token is the tag of the call's token, or zero; since is the
// revocation count when the call's request started: an answer to a call
// that carried a token, fetched across a revocation, is not kept.
func (c *cache) add(key credKey, resp proto.Message, expires time.Time, token credKey, since uint64) {
	until := c.now().Add(c.ttl)
	if !expires.IsZero() && expires.Before(until) {
		until = expires
	}
	size := int64(proto.Size(resp)) + cacheEntryOverhead
	if !c.now().Before(until) || size > c.maxBytes {
		return
	}
	// The handler's message points into the decoded payload; a copy keeps
	// only the message alive for the entry's lifetime.
	resp = proto.Clone(resp)
	c.addMu.Lock()
	defer c.addMu.Unlock()
	if token != (credKey{}) {
		if c.revocations.Load() != since {
			return
		}
		if at, ok := c.tokenExpiry.Peek(token); ok && at.Before(until) {
			if until = at; !c.now().Before(until) {
				return
			}
		}
	}
	c.lru.Remove(key) // an entry replaced is uncounted by the callback
	c.bytes.Add(size)
	if token != (credKey{}) {
		if c.byToken[token] == nil {
			c.byToken[token] = map[credKey]struct{}{}
		}
		c.byToken[token][key] = struct{}{}
	}
	if c.lru.Add(key, cacheEntry{resp: resp, expires: until, size: size, token: token}) {
		c.evicted.Add(1)
	}
	for c.bytes.Load() > c.maxBytes {
		if _, _, ok := c.lru.RemoveOldest(); !ok {
			break
		}
		c.evicted.Add(1)
	}
}

// expire records that the API token tagged token is not to be answered
// for from the cache from at on, and drops its answers kept longer.
func (c *cache) expire(token credKey, at time.Time) {
	c.addMu.Lock()
	defer c.addMu.Unlock()
	c.tokenExpiry.Add(token, at)
	for k := range c.byToken[token] {
		if e, ok := c.lru.Peek(k); ok && e.expires.After(at) {
			c.lru.Remove(k) // the callback edits byToken[token]: allowed while ranging over it
		}
	}
}

// revoke drops every answer to a call that carried the token tagged
// token, or, with all, to any call that carried a token.
func (c *cache) revoke(token credKey, all bool) {
	c.addMu.Lock()
	defer c.addMu.Unlock()
	c.revocations.Add(1)
	var keys []credKey
	for tag, entries := range c.byToken {
		if all || tag == token {
			for k := range entries {
				keys = append(keys, k)
			}
		}
	}
	for _, k := range keys {
		c.lru.Remove(k)
	}
}
