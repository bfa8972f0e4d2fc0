package sandbox

import (
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	// MaxRecords bounds the records of one collection an account holds
	// (per parent record, for a nested one), so that a client in a loop
	// cannot fill the memory.
	MaxRecords = 1000
	// MaxAccountBytes bounds the size of all of an account's records, as
	// their JSON counts it.
	MaxAccountBytes = 16 << 20
)

// recordOverhead is what a record costs beyond its members' JSON.
const recordOverhead = 64

var (
	errNotFound     = errors.New("not found")
	errConflict     = errors.New("already exists")
	errTooMany      = errors.New("too many records")
	errAccountBytes = errors.New("records too large")
)

// recordStore holds the records of the generic collections, per account.
type recordStore struct {
	mu       sync.Mutex
	accounts map[string]*accountRecords
	maxBytes int // MaxAccountBytes
}

type accountRecords struct {
	buckets map[bucketKey]*bucket
	bytes   int
}

// bucketKey names the records of one collection under one parent.
type bucketKey struct {
	coll  *collection
	scope string // the scoping parameters' values, path-escaped, joined by "/"
}

// bucket is a collection's records, in creation order, by key.
type bucket struct {
	list  []*record
	byKey map[string]*record
}

func newBucket() *bucket { return &bucket{byKey: map[string]*record{}} }

type record struct {
	members map[string]json.RawMessage
	key     string // the key member's text; "" when it has none
	size    int
}

func newRecordStore() *recordStore {
	return &recordStore{accounts: map[string]*accountRecords{}, maxBytes: MaxAccountBytes}
}

func scopeOf(values []string) string {
	var b strings.Builder
	for i, v := range values {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(url.PathEscape(v))
	}
	return b.String()
}

// bucket returns the records of coll under scope for account, nil when
// there are none yet.
func (st *recordStore) bucket(account string, coll *collection, scope []string) *bucket {
	if coll.fixture != nil {
		return coll.fixture
	}
	if a := st.accounts[account]; a != nil {
		return a.buckets[bucketKey{coll, scopeOf(scope)}]
	}
	return nil
}

// parentExists reports whether the record the last scope value names
// exists, where the sandbox holds coll's parent.
func (st *recordStore) parentExists(account string, coll *collection, scope []string) bool {
	if coll.parent == nil || len(scope) == 0 {
		return true
	}
	b := st.bucket(account, coll.parent, scope[:len(scope)-1])
	return b != nil && b.byKey[scope[len(scope)-1]] != nil
}

// encode is a record's JSON, taken under the lock.
func (r *record) encode() json.RawMessage {
	b, err := json.Marshal(r.members)
	if err != nil {
		return json.RawMessage(`{}`) // every member was valid JSON when stored
	}
	return b
}

func sizeOf(members map[string]json.RawMessage) int {
	n := recordOverhead
	for k, v := range members {
		n += len(k) + len(v)
	}
	return n
}

// create stores members as a new record of coll under scope, with its
// uuid and times set; key is its key member's text.
func (st *recordStore) create(account string, coll *collection, scope []string, key string, members map[string]json.RawMessage, now time.Time) (json.RawMessage, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.parentExists(account, coll, scope) {
		return nil, errNotFound
	}
	a := st.accounts[account]
	if a == nil {
		a = &accountRecords{buckets: map[bucketKey]*bucket{}}
		st.accounts[account] = a
	}
	bk := bucketKey{coll, scopeOf(scope)}
	b := a.buckets[bk]
	switch {
	case b != nil && len(b.list) >= MaxRecords:
		return nil, errTooMany
	case b != nil && key != "" && b.byKey[key] != nil:
		return nil, errConflict
	}
	id := newUUID()
	if coll.key == "uuid" {
		key = id
	}
	stamp := json.RawMessage(`"` + now.UTC().Format(timeLayout) + `"`)
	members["uuid"] = json.RawMessage(`"` + id + `"`)
	members["created_on"], members["modified_on"] = stamp, stamp
	rec := &record{members: members, key: key, size: sizeOf(members)}
	if a.bytes+rec.size > st.maxBytes {
		return nil, errAccountBytes
	}
	if b == nil {
		b = newBucket()
		a.buckets[bk] = b
	}
	b.list = append(b.list, rec)
	if key != "" {
		b.byKey[key] = rec
	}
	a.bytes += rec.size
	return rec.encode(), nil
}

// get returns coll's record key under scope.
func (st *recordStore) get(account string, coll *collection, scope []string, key string) (json.RawMessage, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if b := st.bucket(account, coll, scope); b != nil {
		if rec := b.byKey[key]; rec != nil {
			return rec.encode(), nil
		}
	}
	return nil, errNotFound
}

// list returns coll's records under scope that keep says to keep, in
// creation order; errNotFound when the parent record is not there.
func (st *recordStore) list(account string, coll *collection, scope []string, keep func(map[string]json.RawMessage) bool) ([]map[string]json.RawMessage, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.parentExists(account, coll, scope) {
		return nil, errNotFound
	}
	var out []map[string]json.RawMessage
	if b := st.bucket(account, coll, scope); b != nil {
		for _, rec := range b.list {
			if keep(rec.members) {
				out = append(out, clone(rec.members))
			}
		}
	}
	return out, nil
}

// clone copies a record's members (not their bytes, which are never
// changed in place) so that they are read outside the lock.
func clone(members map[string]json.RawMessage) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(members))
	for k, v := range members {
		out[k] = v
	}
	return out
}

// update sets the members given on coll's record key under scope, and
// its modified_on.
func (st *recordStore) update(account string, coll *collection, scope []string, key string, set map[string]json.RawMessage, now time.Time) (json.RawMessage, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	a := st.accounts[account]
	b := st.bucket(account, coll, scope)
	if a == nil || b == nil || b.byKey[key] == nil {
		return nil, errNotFound
	}
	rec := b.byKey[key]
	members := clone(rec.members)
	for k, v := range set {
		members[k] = v
	}
	members["modified_on"] = json.RawMessage(`"` + now.UTC().Format(timeLayout) + `"`)
	size := sizeOf(members)
	if a.bytes-rec.size+size > st.maxBytes {
		return nil, errAccountBytes
	}
	a.bytes += size - rec.size
	rec.members, rec.size = members, size
	return rec.encode(), nil
}

// delete removes coll's record key under scope, and the records nested
// under it.
func (st *recordStore) delete(account string, coll *collection, scope []string, key string) (json.RawMessage, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	a := st.accounts[account]
	bk := bucketKey{coll, scopeOf(scope)}
	if a == nil || a.buckets[bk] == nil || a.buckets[bk].byKey[key] == nil {
		return nil, errNotFound
	}
	b := a.buckets[bk]
	rec := b.byKey[key]
	a.remove(bk, b, rec)
	a.dropChildren(coll, append(scope[:len(scope):len(scope)], key))
	return rec.encode(), nil
}

func (a *accountRecords) remove(bk bucketKey, b *bucket, rec *record) {
	if rec.key != "" {
		delete(b.byKey, rec.key)
	}
	for i, r := range b.list {
		if r == rec {
			b.list = slices.Delete(b.list, i, i+1)
			break
		}
	}
	a.bytes -= rec.size
	if len(b.list) == 0 {
		delete(a.buckets, bk)
	}
}

// dropChildren removes the records of coll's child collections under the
// record that scope (its own scope, then its key) names, and theirs.
func (a *accountRecords) dropChildren(coll *collection, scope []string) {
	for _, child := range coll.children {
		bk := bucketKey{child, scopeOf(scope)}
		b := a.buckets[bk]
		if b == nil {
			continue
		}
		for _, rec := range b.list {
			a.bytes -= rec.size
			if rec.key != "" {
				a.dropChildren(child, append(scope[:len(scope):len(scope)], rec.key))
			}
		}
		delete(a.buckets, bk)
	}
}
