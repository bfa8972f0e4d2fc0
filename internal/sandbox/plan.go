package sandbox

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
	"strings"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	apiv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/api/v1"
	"github.com/opentact-facade/opentact-facade/internal/declare"
)

// opKind is what the sandbox does for a declared call served generically,
// inferred from the call's HTTP method, path template and payload.
type opKind int

const (
	opCreate    opKind = iota + 1 // POST …/things
	opGet                         // GET …/things/{key}
	opList                        // GET …/things (or …/things/list), a list payload
	opSearch                      // POST …/things/search
	opUpdate                      // PATCH or PUT …/things/{key}
	opDelete                      // DELETE …/things/{key}
	opSingleton                   // GET …/thing, one object
)

func (k opKind) String() string {
	return [...]string{opCreate: "create", opGet: "get", opList: "list", opSearch: "search",
		opUpdate: "update", opDelete: "delete", opSingleton: "singleton read"}[k]
}

// operation is one declared call served generically.
type operation struct {
	kind opKind
	call *declare.Call
	coll *collection // nil for a singleton read
	// required are the body members a create cannot do without.
	required []requiredMember
	// query are the Opentact keys of the declared query fields, which
	// filter a list or a search.
	query []string
	// seed is a singleton read's answer for u.
	seed func(u *user) (json.RawMessage, bool)
}

// requiredMember is a body member whose protovalidate rules require it.
type requiredMember struct {
	key      string
	nonEmpty bool // nor may it be "" or []
}

// collection is the records under one path template.
type collection struct {
	path string // the template, each parameter as {}: "/rest/sip/domain/{}/user"
	segs []string
	// params is how many path parameters scope it: the values of those of
	// /rest/sip/domain/{domain}/user name the domain whose users they are.
	params int
	// key is the member that names a record in a path: "uuid", unless the
	// declared get, update or delete names another ({domain}).
	key   string
	keyBy string // the call that named key, for errors
	// parent is the collection of the record its last parameter names,
	// when the sandbox serves it: a record is made only under a parent
	// that exists, and goes with it.
	parent   *collection
	children []*collection
	// fixture holds the records of a read-only collection seeded from a
	// fixture, the same for every account; nil for one held per account.
	fixture *bucket
	writers []string // the calls that write it
}

// serverOwned are the members a create sets and an update leaves alone,
// whatever the body says.
var serverOwned = []string{"uuid", "created_on", "modified_on"}

// profileSeeds are the singleton reads of what the caller's own profile
// already says: GET /rest/account is the caller's account, GET /rest/user
// the caller.
var profileSeeds = map[string]func(u *user) (json.RawMessage, bool){
	"/rest/account": func(u *user) (json.RawMessage, bool) { return u.accountNow(), u.accountJSON != nil },
	"/rest/user": func(u *user) (json.RawMessage, bool) {
		return append(append(json.RawMessage(nil), u.profileJSON()...), '}'), true
	},
}

// plan builds the routes of the declared calls that no hand-written route
// serves, and returns the collections they serve, by path. A call whose
// operation cannot be inferred, or whose data is missing, is an error
// naming it: the sandbox serves every declared call.
func plan(calls []*declare.Call, fixtures fs.FS) ([]route, map[string]*collection, error) {
	data, err := loadFixtures(fixtures)
	if err != nil {
		return nil, nil, err
	}
	hand, handColl := map[string]bool{}, map[string]bool{}
	for _, rt := range handWritten {
		hand[rt.method+" "+normalize(rt.segs)] = true
		handColl[rt.coll] = true
	}
	var (
		errs   []error
		ops    = map[string]*operation{} // by method and template
		colls  = map[string]*collection{}
		routes []route
	)
	for _, c := range calls {
		segs := strings.Split(strings.TrimPrefix(c.Path, "/"), "/")
		id := c.HTTPMethod + " " + normalize(segs)
		if hand[id] {
			continue
		}
		op, collSegs, keyField, err := infer(c, segs)
		if err != nil {
			errs = append(errs, callError(c, err))
			continue
		}
		if prev := ops[id]; prev != nil {
			if prev.kind != op.kind {
				errs = append(errs, callError(c, fmt.Errorf("is a %s, but %s on the same path is a %s", op.kind, prev.call.FullMethod, prev.kind)))
			}
			continue
		}
		if op.kind == opSingleton {
			if op.seed, err = singletonSeed(c.Path, data); err != nil {
				errs = append(errs, callError(c, err))
				continue
			}
		} else {
			path := normalize(collSegs)
			if handColl[path] {
				errs = append(errs, callError(c, fmt.Errorf("its collection %s is served by hand-written code: serve this call there too", path)))
				continue
			}
			coll := colls[path]
			if coll == nil {
				coll = &collection{path: path, segs: collSegs, params: countParams(collSegs)}
				colls[path] = coll
			}
			if keyField != nil {
				key := jsonKey(keyField)
				if coll.key != "" && coll.key != key {
					errs = append(errs, callError(c, fmt.Errorf("names a record of %s by %q, but %s names it by %q", path, key, coll.keyBy, coll.key)))
					continue
				}
				coll.key, coll.keyBy = key, c.FullMethod
			}
			if op.kind == opCreate || op.kind == opUpdate || op.kind == opDelete {
				coll.writers = append(coll.writers, c.FullMethod)
			}
			op.coll = coll
		}
		ops[id] = op
		rt := newRoute(c.HTTPMethod, c.Path, op.serve)
		routes = append(routes, rt)
	}
	for _, path := range sortedKeys(colls) {
		coll := colls[path]
		if coll.key == "" {
			coll.key = "uuid"
		}
		if i := lastParam(coll.segs); i >= 0 {
			if parent := colls[normalize(coll.segs[:i])]; parent != nil {
				coll.parent = parent
				parent.children = append(parent.children, coll)
			}
		}
	}
	for _, path := range sortedKeys(data) {
		coll := colls[path]
		if coll == nil {
			continue // for a call not served here
		}
		if err := coll.seed(data[path]); err != nil {
			errs = append(errs, fmt.Errorf("sandbox: fixture %s: %w", path, err))
		}
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	// As among the hand-written routes, the more specific pattern first:
	// a longer one, then a literal segment before a parameter.
	slices.SortStableFunc(routes, func(a, b route) int {
		if len(a.segs) != len(b.segs) {
			return cmp.Compare(len(b.segs), len(a.segs))
		}
		for i := range a.segs {
			if pa, pb := isParam(a.segs[i]), isParam(b.segs[i]); pa != pb {
				if pa {
					return 1
				}
				return -1
			}
		}
		return 0
	})
	return routes, colls, nil
}

func callError(c *declare.Call, err error) error {
	return fmt.Errorf("sandbox: %s %s (%s) %w", c.HTTPMethod, c.Path, c.FullMethod, err)
}

// infer works out what a call does from its declaration: the operation,
// the path segments of its collection, and the field naming a record.
func infer(c *declare.Call, segs []string) (*operation, []string, protoreflect.FieldDescriptor, error) {
	var (
		op       = &operation{call: c}
		last     = segs[len(segs)-1]
		list     = c.Payload != nil && c.Payload.IsList()
		collSegs = segs
		keyField protoreflect.FieldDescriptor
	)
	for _, fd := range c.Query {
		op.query = append(op.query, jsonKey(fd))
	}
	switch {
	case isParam(last):
		collSegs, keyField = segs[:len(segs)-1], c.PathFields[len(c.PathFields)-1]
		switch c.HTTPMethod {
		case http.MethodGet:
			op.kind = opGet
		case http.MethodPatch, http.MethodPut:
			op.kind = opUpdate
		case http.MethodDelete:
			op.kind = opDelete
		default:
			return nil, nil, nil, fmt.Errorf("cannot be inferred: a %s to one record is no generic operation; write a handler for it", c.HTTPMethod)
		}
		if list {
			return nil, nil, nil, fmt.Errorf("cannot be inferred: a %s of one record answers a list; write a handler for it", op.kind)
		}
	case c.HTTPMethod == http.MethodPost && last == "search":
		op.kind, collSegs = opSearch, segs[:len(segs)-1]
		if list {
			return nil, nil, nil, errors.New("cannot be inferred: a search answers {take, skip, total, data}, not a list; write a handler for it")
		}
	case c.HTTPMethod == http.MethodPost:
		op.kind = opCreate
		switch {
		case list:
			return nil, nil, nil, errors.New("cannot be inferred: a create answers one record, not a list; write a handler for it")
		case searchShaped(c):
			return nil, nil, nil, errors.New("cannot be inferred: it answers a search page, but its path does not end in /search; write a handler for it")
		}
		op.required = requiredMembers(c)
	case c.HTTPMethod == http.MethodGet && list:
		op.kind = opList
		if last == "list" {
			collSegs = segs[:len(segs)-1]
		}
	case c.HTTPMethod == http.MethodGet:
		op.kind = opSingleton
		if len(c.PathFields) > 0 {
			return nil, nil, nil, errors.New("cannot be inferred: a read of one object under a record; write a handler for it")
		}
		return op, nil, nil, nil
	default:
		return nil, nil, nil, fmt.Errorf("cannot be inferred: a %s of a whole collection; write a handler for it", c.HTTPMethod)
	}
	if c.Multipart {
		return nil, nil, nil, errors.New("cannot be inferred: a multipart body; write a handler for it")
	}
	if len(collSegs) == 0 || isParam(collSegs[len(collSegs)-1]) {
		return nil, nil, nil, errors.New("cannot be inferred: its collection's path does not end in a name; write a handler for it")
	}
	return op, collSegs, keyField, nil
}

// searchShaped reports whether the call's payload is a search page: a
// message with a list under Opentact's key "data".
func searchShaped(c *declare.Call) bool {
	md := c.Method.Output()
	if c.Payload != nil {
		md = c.Payload.Message()
	}
	if md == nil {
		return false
	}
	fields := md.Fields()
	for i := range fields.Len() {
		if fd := fields.Get(i); fd.IsList() && jsonKey(fd) == "data" {
			return true
		}
	}
	return false
}

// singletonSeed is the answer of a singleton read of path: what the
// caller's profile says, or a fixture holding one object.
func singletonSeed(path string, data map[string]json.RawMessage) (func(*user) (json.RawMessage, bool), error) {
	if seed := profileSeeds[path]; seed != nil {
		return seed, nil
	}
	raw, ok := data[path]
	switch {
	case !ok:
		return nil, fmt.Errorf("reads one object the sandbox has no data for: add internal/sandbox/fixtures%s.json holding it, or write a handler", path)
	case raw[0] != '{':
		return nil, fmt.Errorf("reads one object, but fixture %s holds a list", path)
	}
	return func(*user) (json.RawMessage, bool) { return raw, true }, nil
}

// seed makes coll read-only, holding the records of a fixture.
func (coll *collection) seed(raw json.RawMessage) error {
	switch {
	case raw[0] != '[':
		return errors.New("holds one object, but its calls serve a collection")
	case coll.params > 0:
		return errors.New("only a collection at a path without parameters can have a fixture")
	case len(coll.writers) > 0:
		return fmt.Errorf("a collection with a fixture is read-only, but %s writes it", strings.Join(coll.writers, ", "))
	}
	var objects []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &objects); err != nil {
		return fmt.Errorf("want a JSON array of objects: %w", err)
	}
	b := newBucket()
	for i, members := range objects {
		if members == nil {
			return fmt.Errorf("record %d is not an object", i)
		}
		rec := &record{members: members}
		if key, ok := keyText(members[coll.key]); ok {
			if b.byKey[key] != nil {
				return fmt.Errorf("two records have %s %q", coll.key, key)
			}
			rec.key = key
			b.byKey[key] = rec
		}
		b.list = append(b.list, rec)
	}
	coll.fixture = b
	return nil
}

// requiredMembers are the body members of a create that its request's
// protovalidate rules require, under Opentact's keys.
func requiredMembers(c *declare.Call) []requiredMember {
	var fields []protoreflect.FieldDescriptor
	switch c.Body {
	case declare.BodyRest:
		fields = c.BodyFields
	case declare.BodyField:
		all := c.BodyFields[0].Message().Fields()
		for i := range all.Len() {
			fields = append(fields, all.Get(i))
		}
	}
	var out []requiredMember
	for _, fd := range fields {
		if required, nonEmpty := requiredRule(fd); required {
			out = append(out, requiredMember{key: jsonKey(fd), nonEmpty: nonEmpty})
		}
	}
	return out
}

// requiredRule reads fd's buf.validate rules: a field is required when
// they say so, or when a field without presence must not be empty (a
// string's min_len, a list's min_items), as protovalidate checks those
// whether or not the field is set.
func requiredRule(fd protoreflect.FieldDescriptor) (required, nonEmpty bool) {
	opts, _ := fd.Options().(*descriptorpb.FieldOptions)
	if opts == nil || !proto.HasExtension(opts, validate.E_Field) {
		return false, false
	}
	rules, _ := proto.GetExtension(opts, validate.E_Field).(*validate.FieldRules)
	switch rules.GetIgnore() {
	case validate.Ignore_IGNORE_IF_ZERO_VALUE, validate.Ignore_IGNORE_ALWAYS:
		return false, false
	}
	nonEmpty = rules.GetString().GetMinLen() > 0 || rules.GetString().GetLen() > 0 ||
		rules.GetBytes().GetMinLen() > 0 || rules.GetBytes().GetLen() > 0 ||
		rules.GetRepeated().GetMinItems() > 0 || rules.GetMap().GetMinPairs() > 0
	return rules.GetRequired() || (nonEmpty && !fd.HasPresence()), nonEmpty
}

// jsonKey is the member a field travels under at Opentact: its
// (opentact.api.v1.field).key, or its name.
func jsonKey(fd protoreflect.FieldDescriptor) string {
	if opts, ok := fd.Options().(*descriptorpb.FieldOptions); ok && opts != nil && proto.HasExtension(opts, apiv1.E_Field) {
		if key := proto.GetExtension(opts, apiv1.E_Field).(*apiv1.Field).GetKey(); key != "" {
			return key
		}
	}
	return string(fd.Name())
}

func isParam(seg string) bool { return strings.HasPrefix(seg, "{") }

// normalize is a template's path with each parameter as {}, so that
// templates naming their parameters differently compare equal.
func normalize(segs []string) string {
	var b strings.Builder
	for _, seg := range segs {
		b.WriteByte('/')
		if isParam(seg) {
			seg = "{}"
		}
		b.WriteString(seg)
	}
	return b.String()
}

func countParams(segs []string) int {
	n := 0
	for _, seg := range segs {
		if isParam(seg) {
			n++
		}
	}
	return n
}

func lastParam(segs []string) int {
	for i := len(segs) - 1; i >= 0; i-- {
		if isParam(segs[i]) {
			return i
		}
	}
	return -1
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
