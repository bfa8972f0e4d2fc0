package server

import (
	"sync"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	lru "github.com/hashicorp/golang-lru/v2"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
)

// jsonMemoSize bounds the answers whose JSON the gateway keeps, the least
// recently used going first: enough for the hot accounts of a busy
// facade, small enough (each answer about 2 KiB with its JSON) to stay
// well under a MiB.
const jsonMemoSize = 256

// memoMarshaler is the gateway's marshaler with a memory of the JSON of
// the jsonMemoSize answers it used last, by message. The service hands
// one *GetAuthResponse to every call it answers with it (identical calls
// sharing one upstream request, cache hits), and never changes an answer
// once returned, so a REST answer is encoded once rather than once per
// caller: protojson was a fifth of the facade's CPU on cache hits.
//
// Keyed by pointer: a message in the memo is kept alive by it, so no
// other message can take its address while its JSON is there.
type memoMarshaler struct {
	runtime.Marshaler
	json *lru.Cache[*authv1.GetAuthResponse, *memoEntry]
}

// memoEntry is one answer's JSON, encoded by the first call to want it;
// the calls that want it meanwhile (all the callers of a shared request
// wake at once) wait for that encoding rather than making their own.
type memoEntry struct {
	once sync.Once
	json []byte
	err  error
}

func newMemoMarshaler(m runtime.Marshaler) *memoMarshaler {
	c, _ := lru.New[*authv1.GetAuthResponse, *memoEntry](jsonMemoSize) // errors only for a size below 1
	return &memoMarshaler{Marshaler: m, json: c}
}

// Marshal implements runtime.Marshaler. The bytes of a remembered answer
// are shared: the gateway only writes them out.
func (m *memoMarshaler) Marshal(v any) ([]byte, error) {
	resp, ok := v.(*authv1.GetAuthResponse)
	if !ok || resp == nil {
		return m.Marshaler.Marshal(v)
	}
	e, ok := m.json.Get(resp)
	if !ok {
		// Whoever adds the entry first, the others use it.
		e = &memoEntry{}
		if prev, found, _ := m.json.PeekOrAdd(resp, e); found {
			e = prev
		}
	}
	e.once.Do(func() { e.json, e.err = m.Marshaler.Marshal(resp) })
	return e.json, e.err
}
