package sandbox

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The byte bound is checked on the store, with a smaller bound: filling
// MaxAccountBytes over HTTP takes seconds under -race.
func TestRecordStoreAccountBytes(t *testing.T) {
	t.Parallel()
	st := newRecordStore()
	st.maxBytes = 1 << 20
	colls := []*collection{{path: "/rest/a", key: "uuid"}, {path: "/rest/b", key: "uuid"}}
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	filler := json.RawMessage(strconv.Quote(strings.Repeat("a", MaxBodySize)))
	create := func(account string, i int) (string, error) {
		raw, err := st.create(account, colls[i%2], nil, "", map[string]json.RawMessage{"name": filler}, now)
		if err != nil {
			return "", err
		}
		var rec struct{ UUID string }
		_ = json.Unmarshal(raw, &rec)
		return rec.UUID, nil
	}
	var (
		first string
		n     int
		err   error
	)
	for ; n <= st.maxBytes/len(filler); n++ {
		var id string
		if id, err = create("a", n); err != nil {
			break
		}
		if n == 0 {
			first = id
		}
	}
	if !errors.Is(err, errAccountBytes) || n < st.maxBytes/(len(filler)+200) {
		t.Fatalf("after %d records of %d bytes: %v, want errAccountBytes near %d", n, len(filler), err, st.maxBytes)
	}
	// Per account, across its collections.
	if _, err := create("b", 0); err != nil {
		t.Errorf("another account: %v", err)
	}
	// An update may not grow past it; a delete frees room.
	if _, err := st.update("a", colls[0], nil, first, map[string]json.RawMessage{"more": filler}, now); !errors.Is(err, errAccountBytes) {
		t.Errorf("growing update: %v, want errAccountBytes", err)
	}
	if _, err := st.delete("a", colls[0], nil, first); err != nil {
		t.Fatal(err)
	}
	if _, err := create("a", 0); err != nil {
		t.Errorf("create after delete: %v", err)
	}

	w := httptest.NewRecorder()
	answer(w, http.StatusCreated, nil, errAccountBytes)
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), strconv.Itoa(MaxAccountBytes)) {
		t.Errorf("answer = %d %s, want 400 naming the bound", w.Code, w.Body)
	}
}
