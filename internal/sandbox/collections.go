package sandbox

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	// DefaultTake is a search's page size when the request gives none:
	// Opentact documents none; 10 is its number search's default size.
	DefaultTake = 10
	// maxSize is the largest size of a page-and-size search, as Opentact's
	// number search documents it.
	maxSize = 100
	// maxConditions bounds a search's filters, and its order's members, so
	// that one request cannot keep the sandbox busy for long.
	maxConditions = 32
)

// searchParams are a search's members that are no filter.
var searchParams = []string{"take", "skip", "page", "size", "mode", "order"}

// serve answers a declared call served generically.
func (op *operation) serve(s *Sandbox, w http.ResponseWriter, r *http.Request, u *user, params []string) int {
	switch op.kind {
	case opSingleton:
		raw, ok := op.seed(u)
		if !ok {
			return writeError(w, http.StatusNotFound, "Not found")
		}
		return writeSuccess(w, http.StatusOK, raw)
	case opCreate:
		return op.create(s, w, r, u, params)
	case opList:
		conds, status := conditions(w, r, op.query, nil, nil)
		if status != 0 {
			return status
		}
		recs, err := s.records.list(u.account, op.coll, params, every(conds))
		if err != nil {
			return answer(w, 0, nil, err)
		}
		return writeSuccess(w, http.StatusOK, encodeAll(recs))
	case opSearch:
		return op.search(s, w, r, u, params)
	}
	scope, key := params[:len(params)-1], params[len(params)-1]
	switch op.kind {
	case opGet:
		raw, err := s.records.get(u.account, op.coll, scope, key)
		return answer(w, http.StatusOK, raw, err)
	case opUpdate:
		obj, status := readObject(w, r, true)
		if status != 0 {
			return status
		}
		for _, m := range serverOwned {
			delete(obj, m)
		}
		delete(obj, op.coll.key)
		raw, err := s.records.update(u.account, op.coll, scope, key, obj, s.now())
		return answer(w, http.StatusOK, raw, err)
	case opDelete:
		if refuse := deleteRefusals[op.coll.path]; refuse != nil {
			return s.deleteUnlessInUse(w, u, op.coll, scope, key, refuse)
		}
		raw, err := s.records.delete(u.account, op.coll, scope, key)
		return answer(w, http.StatusOK, raw, err)
	}
	return writeError(w, http.StatusInternalServerError, "Internal server error")
}

// answer writes a record store's answer: raw in the envelope, or err's
// error body.
func answer(w http.ResponseWriter, status int, raw json.RawMessage, err error) int {
	switch {
	case err == nil:
		return writeSuccess(w, status, raw)
	case errors.Is(err, errNotFound):
		return writeError(w, http.StatusNotFound, "Not found")
	case errors.Is(err, errConflict):
		return writeError(w, http.StatusConflict, "Conflict: a record with this key already exists")
	case errors.Is(err, errTooMany):
		return writeError(w, http.StatusBadRequest, fmt.Sprintf("Too many records: an account holds at most %d in one collection; delete some first", MaxRecords))
	case errors.Is(err, errAccountBytes):
		return writeError(w, http.StatusBadRequest, fmt.Sprintf("Too much data: an account's records hold at most %d bytes; delete some first", MaxAccountBytes))
	}
	return writeError(w, http.StatusInternalServerError, "Internal server error")
}

// create stores the body as a new record: its uuid, created_on and
// modified_on are the sandbox's, every other member is as sent.
func (op *operation) create(s *Sandbox, w http.ResponseWriter, r *http.Request, u *user, scope []string) int {
	obj, status := readObject(w, r, true)
	if status != 0 {
		return status
	}
	errs := map[string]fieldError{}
	for _, m := range op.required {
		raw := obj[m.key]
		switch {
		case !present(raw):
			errs[m.key] = fieldError{Message: "is required", Value: json.RawMessage("null")}
		case m.nonEmpty && empty(raw):
			errs[m.key] = fieldError{Message: "must not be empty", Value: raw}
		}
	}
	var key string
	if k := op.coll.key; k != "uuid" {
		var ok bool
		if key, ok = keyText(obj[k]); !ok && errs[k].Message == "" {
			value := obj[k]
			if !present(value) {
				value = json.RawMessage("null")
			}
			errs[k] = fieldError{Message: "is required: it names the record", Value: value}
		}
	}
	if len(errs) > 0 {
		return writeValidationError(w, errs)
	}
	raw, err := s.records.create(u.account, op.coll, scope, key, obj, s.now())
	// 201 as a NestJS @Post answers by default, as for tokens.
	return answer(w, http.StatusCreated, raw, err)
}

// searchPage is Opentact's answer to a search: the page asked for, the
// number of records that match, and the page's records.
type searchPage struct {
	Take  int               `json:"take"`
	Skip  int               `json:"skip"`
	Mode  string            `json:"mode,omitempty"`
	Order json.RawMessage   `json:"order,omitempty"`
	Total int               `json:"total"`
	Data  []json.RawMessage `json:"data"`
}

// search answers a page of the records that match the filters the body
// and the declared query give, in the order asked for.
func (op *operation) search(s *Sandbox, w http.ResponseWriter, r *http.Request, u *user, scope []string) int {
	sr, status := readSearch(w, r, op.query, nil)
	if status != 0 {
		return status
	}
	recs, err := s.records.list(u.account, op.coll, scope, sr.keep)
	if err != nil {
		return answer(w, 0, nil, err)
	}
	items := make([]searchItem, len(recs))
	for i, m := range recs {
		items[i] = searchItem{view: m}
	}
	return sr.answer(w, items)
}

// searchRequest is a search's page, order and filters, as read from its
// query and body.
type searchRequest struct {
	page  searchPage
	order []orderBy
	keep  func(map[string]json.RawMessage) bool
}

// searchItem is one record a search may answer: view is what its filters
// and order look at, out the JSON answered (view's, when nil).
type searchItem struct {
	view map[string]json.RawMessage
	out  json.RawMessage
}

// readSearch reads a search's body and query: take and skip (or page and
// size), mode, order, and every other member of the body and each of the
// declared query fields sent as a filter. A filter on a member of masked
// that holds * (any run) or % (one character) matches as a mask. On
// failure it has written the error and returns its status.
func readSearch(w http.ResponseWriter, r *http.Request, query, masked []string) (*searchRequest, int) {
	obj, status := readObject(w, r, true)
	if status != 0 {
		return nil, status
	}
	errs := map[string]fieldError{}
	q := r.URL.Query()
	num := func(name string, lo, hi int) (int, bool) {
		n, given, fe := intParam(q, obj, name, lo, hi)
		if fe != nil {
			errs[name] = *fe
		}
		return n, given
	}
	sr := &searchRequest{page: searchPage{Take: DefaultTake}}
	if take, ok := num("take", 0, math.MaxInt32); ok {
		sr.page.Take = take
	}
	sr.page.Skip, _ = num("skip", 0, math.MaxInt32)
	// Opentact's number search pages by page (from 1) and size instead.
	pageNo, byPage := num("page", 1, math.MaxInt32)
	size, bySize := num("size", 1, maxSize)
	if byPage || bySize {
		if !bySize {
			size = DefaultTake
		}
		if !byPage {
			pageNo = 1
		}
		sr.page.Take, sr.page.Skip = size, (pageNo-1)*size
	}
	if raw := obj["mode"]; present(raw) {
		var mode string
		if json.Unmarshal(raw, &mode) != nil || (!strings.EqualFold(mode, "AND") && !strings.EqualFold(mode, "OR")) {
			errs["mode"] = fieldError{Message: "must be AND or OR", Value: raw}
		}
		sr.page.Mode = strings.ToUpper(mode)
	}
	if raw := obj["order"]; present(raw) {
		var err error
		if sr.order, err = parseOrder(raw); err != nil {
			errs["order"] = fieldError{Message: err.Error(), Value: raw}
		} else if len(sr.order) > maxConditions {
			errs["order"] = fieldError{Message: fmt.Sprintf("may name at most %d members", maxConditions), Value: raw}
		}
		sr.page.Order = raw
	}
	if len(errs) > 0 {
		return nil, writeValidationError(w, errs)
	}
	for _, name := range searchParams {
		delete(obj, name)
	}
	conds, status := conditions(w, r, query, masked, obj)
	if status != 0 {
		return nil, status
	}
	sr.keep = every(conds)
	if sr.page.Mode == "OR" {
		sr.keep = some(conds)
	}
	return sr, 0
}

// answer writes the page of items that sr keeps, in sr's order (items'
// own order for records equal by it).
func (sr *searchRequest) answer(w http.ResponseWriter, items []searchItem) int {
	kept := items[:0:0]
	for _, it := range items {
		if sr.keep(it.view) {
			kept = append(kept, it)
		}
	}
	sortItems(kept, sr.order)
	page := sr.page
	page.Total = len(kept)
	kept = kept[min(page.Skip, len(kept)):]
	kept = kept[:min(page.Take, len(kept))]
	page.Data = make([]json.RawMessage, 0, len(kept))
	for _, it := range kept {
		out := it.out
		if out == nil {
			out = encodeAll([]map[string]json.RawMessage{it.view})[0]
		}
		page.Data = append(page.Data, out)
	}
	return writeSuccess(w, http.StatusOK, page)
}

// intParam reads an integer in [lo, hi] from the query, else from the
// body; given reports whether either had it.
func intParam(q map[string][]string, body map[string]json.RawMessage, name string, lo, hi int) (n int, given bool, fe *fieldError) {
	var (
		f   float64
		raw json.RawMessage
		ok  bool
	)
	if vs := q[name]; len(vs) > 0 {
		raw, _ = json.Marshal(vs[0])
		v, err := strconv.ParseFloat(strings.TrimSpace(vs[0]), 64)
		f, ok = v, err == nil
	} else if raw = body[name]; present(raw) {
		ok = json.Unmarshal(raw, &f) == nil
	} else {
		return 0, false, nil
	}
	switch {
	case !ok || f != math.Trunc(f) || math.IsInf(f, 0):
		return 0, true, &fieldError{Message: "must be an integer", Value: raw}
	case f < float64(lo):
		return 0, true, &fieldError{Message: fmt.Sprintf("must be at least %d", lo), Value: raw}
	case f > float64(hi):
		return 0, true, &fieldError{Message: fmt.Sprintf("must be at most %d", hi), Value: raw}
	}
	return int(f), true, nil
}

// condition is one filter of a list or a search.
type condition func(members map[string]json.RawMessage) bool

// every keeps a record that meets every condition.
func every(conds []condition) func(map[string]json.RawMessage) bool {
	return func(m map[string]json.RawMessage) bool {
		for _, c := range conds {
			if !c(m) {
				return false
			}
		}
		return true
	}
}

// some keeps a record that meets any condition, or every record when
// there are none (a search's mode OR).
func some(conds []condition) func(map[string]json.RawMessage) bool {
	return func(m map[string]json.RawMessage) bool {
		for _, c := range conds {
			if c(m) {
				return true
			}
		}
		return len(conds) == 0
	}
}

// conditions are the filters of a list's or a search's declared query
// and of a search's body: equality with a member, a mask for a member of
// masked, or a time window (created_on_from and its like). On failure it
// has written the error and returns its status.
func conditions(w http.ResponseWriter, r *http.Request, query, masked []string, body map[string]json.RawMessage) ([]condition, int) {
	if len(body) > maxConditions {
		return nil, writeError(w, http.StatusBadRequest, fmt.Sprintf("Too many filters: a search takes at most %d", maxConditions))
	}
	var conds []condition
	q := r.URL.Query()
	for _, key := range query {
		if slices.Contains(searchParams, key) || !q.Has(key) {
			continue
		}
		text := q.Get(key)
		conds = append(conds, func(m map[string]json.RawMessage) bool { return sameText(m[key], text) })
	}
	errs := map[string]fieldError{}
	for _, key := range sortedKeys(body) {
		raw := body[key]
		if !present(raw) {
			continue // an unset filter
		}
		if member, bound, ok := window(key); ok {
			var s string
			at, err := time.Time{}, json.Unmarshal(raw, &s)
			if err == nil {
				at, err = time.Parse(time.RFC3339Nano, s)
			}
			if err != nil {
				errs[key] = fieldError{Message: "must be a time such as 2024-01-16T14:15:48.540Z", Value: raw}
				continue
			}
			conds = append(conds, func(m map[string]json.RawMessage) bool {
				var s string
				if json.Unmarshal(m[member], &s) != nil {
					return false
				}
				t, err := time.Parse(time.RFC3339Nano, s)
				return err == nil && (bound == "_from" && !t.Before(at) || bound == "_to" && !t.After(at))
			})
			continue
		}
		want, _ := decodeValue(raw)
		if text, ok := want.(string); ok && slices.Contains(masked, key) && strings.ContainsAny(text, "*%") {
			conds = append(conds, func(m map[string]json.RawMessage) bool {
				got, ok := memberText(m[key])
				return ok && matchMask(text, got)
			})
			continue
		}
		conds = append(conds, func(m map[string]json.RawMessage) bool {
			got, ok := decodeValue(m[key])
			return ok && sameValue(got, want)
		})
	}
	if len(errs) > 0 {
		return nil, writeValidationError(w, errs)
	}
	return conds, 0
}

// window reads created_on_from and its like: the time member bounded, and
// how.
func window(key string) (member, bound string, ok bool) {
	for _, m := range []string{"created_on", "modified_on"} {
		for _, b := range []string{"_from", "_to"} {
			if key == m+b {
				return m, b, true
			}
		}
	}
	return "", "", false
}

// decodeValue decodes one JSON value, numbers as json.Number.
func decodeValue(raw json.RawMessage) (any, bool) {
	if raw == nil {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil, false
	}
	return v, true
}

// sameValue is equality of JSON values, a number equal to itself in any
// notation and to a string of it (Opentact takes digits either way).
func sameValue(a, b any) bool {
	if n, ok := a.(json.Number); ok {
		return sameNumber(n.String(), b)
	}
	if n, ok := b.(json.Number); ok {
		return sameNumber(n.String(), a)
	}
	return reflect.DeepEqual(a, b)
}

func sameNumber(n string, other any) bool {
	var s string
	switch o := other.(type) {
	case json.Number:
		s = o.String()
	case string:
		s = strings.TrimSpace(o)
	default:
		return false
	}
	x, errX := strconv.ParseInt(n, 10, 64)
	y, errY := strconv.ParseInt(s, 10, 64)
	if errX == nil && errY == nil {
		return x == y
	}
	fx, errX := strconv.ParseFloat(n, 64)
	fy, errY := strconv.ParseFloat(s, 64)
	return errX == nil && errY == nil && fx == fy
}

// sameText is equality of a record's member with a query parameter's text.
func sameText(raw json.RawMessage, text string) bool {
	v, ok := decodeValue(raw)
	if !ok {
		return false
	}
	switch v := v.(type) {
	case bool:
		return strconv.FormatBool(v) == text
	case nil:
		return false
	}
	return sameValue(v, text)
}

// keyText is the text a key member is named by in a path: a string's
// value or a number's literal.
func keyText(raw json.RawMessage) (string, bool) {
	switch v, _ := decodeValue(raw); v := v.(type) {
	case string:
		return v, v != ""
	case json.Number:
		return v.String(), true
	}
	return "", false
}

// empty reports whether raw is "", [] or {}.
func empty(raw json.RawMessage) bool {
	switch v, _ := decodeValue(raw); v := v.(type) {
	case string:
		return v == ""
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	}
	return false
}

// orderBy is one member of a search's order.
type orderBy struct {
	member string
	desc   bool
}

// parseOrder reads {"member": "ASC" | "DESC", ...} in its members' order.
func parseOrder(raw json.RawMessage) ([]orderBy, error) {
	errShape := errors.New(`must map members to "ASC" or "DESC"`)
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errShape
	}
	var out []orderBy
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil, errShape
		}
		v, err := dec.Token()
		dir, ok := v.(string)
		if err != nil || !ok || (!strings.EqualFold(dir, "ASC") && !strings.EqualFold(dir, "DESC")) {
			return nil, errShape
		}
		out = append(out, orderBy{member: k.(string), desc: strings.EqualFold(dir, "DESC")})
	}
	return out, nil
}

// sortItems orders items as a search's order says; items equal by it
// keep their order.
func sortItems(items []searchItem, order []orderBy) {
	if len(order) == 0 {
		return
	}
	slices.SortStableFunc(items, func(a, b searchItem) int {
		for _, o := range order {
			if c := compareValues(a.view[o.member], b.view[o.member]); c != 0 {
				if o.desc {
					return -c
				}
				return c
			}
		}
		return 0
	})
}

// compareValues orders JSON values: missing and null first, then false,
// true, numbers, strings, and anything else by its text.
func compareValues(a, b json.RawMessage) int {
	va, _ := decodeValue(a)
	vb, _ := decodeValue(b)
	rank := func(v any) int {
		switch v.(type) {
		case nil:
			return 0
		case bool:
			return 1
		case json.Number:
			return 2
		case string:
			return 3
		}
		return 4
	}
	if c := cmp.Compare(rank(va), rank(vb)); c != 0 {
		return c
	}
	switch x := va.(type) {
	case bool:
		y := vb.(bool)
		if x == y {
			return 0
		}
		if !x {
			return -1
		}
		return 1
	case json.Number:
		fx, _ := x.Float64()
		fy, _ := vb.(json.Number).Float64()
		return cmp.Compare(fx, fy)
	case string:
		return strings.Compare(x, vb.(string))
	case nil:
		return 0
	}
	return bytes.Compare(a, b)
}

func encodeAll(recs []map[string]json.RawMessage) []json.RawMessage {
	out := make([]json.RawMessage, 0, len(recs))
	for _, m := range recs {
		b, err := json.Marshal(m)
		if err != nil {
			b = json.RawMessage(`{}`)
		}
		out = append(out, b)
	}
	return out
}

// memberText is the text a mask is matched against: a string's value or
// a number's literal.
func memberText(raw json.RawMessage) (string, bool) {
	switch v, _ := decodeValue(raw); v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	}
	return "", false
}

// matchMask reports whether the whole of text matches mask, in which *
// stands for any run of characters (none included) and % for one.
func matchMask(mask, text string) bool {
	m, t := []rune(mask), []rune(text)
	// can[j]: mask[:i] matches text[:j], for the i reached.
	can := make([]bool, len(t)+1)
	can[0] = true
	for _, c := range m {
		next := make([]bool, len(t)+1)
		for j := range can {
			switch {
			case c == '*':
				next[j] = can[j] || (j > 0 && next[j-1])
			case j > 0 && (c == '%' || c == t[j-1]):
				next[j] = can[j-1]
			}
		}
		can = next
	}
	return can[len(t)]
}
