package sandbox

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"
)

// The SIP side of Opentact that its declarations cannot say: the numbers
// a SIP connection (or a call control app) carries, the records nobody
// may delete while others use them, and SIP users, whose password the
// sandbox keeps to itself. SIP connections, domains, invites and
// outbound voice profiles are generic collections.

const (
	// MaxSIPUsers bounds the SIP users of one account, over all its
	// domains, so that a client in a loop cannot fill the memory.
	MaxSIPUsers = 1000
	// maxSIPUserText bounds each text member of a SIP user, in bytes.
	maxSIPUserText = 1024
	// maxAssign bounds the leases one assignment names, as the facade's
	// AssignLeases and RemoveLeases do.
	maxAssign = 100
)

// genericRecord is u's record key of the generic collection at path
// (each parameter as {}) under scope, when the sandbox serves that
// collection and the record exists.
func (s *Sandbox) genericRecord(u *user, path string, scope []string, key string) (json.RawMessage, bool) {
	coll := s.colls[path]
	if coll == nil {
		return nil, false
	}
	raw, err := s.records.get(u.account, coll, scope, key)
	return raw, err == nil
}

// refersTo reports whether a record's member names the record id: the
// uuid as sent, or an object with that uuid.
func refersTo(raw json.RawMessage, id string) bool {
	var text string
	if json.Unmarshal(raw, &text) == nil {
		return text == id
	}
	var obj struct {
		UUID string `json:"uuid"`
	}
	return json.Unmarshal(raw, &obj) == nil && obj.UUID == id
}

// leaseHolder is a record a lease names by its uuid, a record of a
// generic collection: where its calls go (a SIP connection or a call
// control app, which a SIP domain names by a member of its own) or its
// messages (a messaging profile).
type leaseHolder struct {
	what string // "SIP connection", for messages
	// exists reports whether u's account has the holder id.
	exists func(s *Sandbox, u *user, id string) bool
	// ref is the lease's reference to a holder of this kind.
	ref func(l *lease) *string
	// domainMember is the SIP domain's member naming it; "" for none.
	domainMember string
}

// inCollection is the existence check of a holder whose records the
// generic collection at path holds.
func inCollection(path string) func(*Sandbox, *user, string) bool {
	return func(s *Sandbox, u *user, id string) bool {
		_, ok := s.genericRecord(u, path, nil, id)
		return ok
	}
}

var (
	sipConnections = leaseHolder{
		what:         "SIP connection",
		exists:       inCollection("/rest/sip/connection"),
		ref:          func(l *lease) *string { return &l.sipConnection },
		domainMember: "sip_connection",
	}
	// controlApps are the call control apps, the generic collection of
	// Opentact's /rest/sip/app.
	controlApps = leaseHolder{
		what:         "call control app",
		exists:       inCollection("/rest/sip/app"),
		ref:          func(l *lease) *string { return &l.sipControlApp },
		domainMember: "sip_control_app",
	}
	messagingProfiles = leaseHolder{
		what:   "messaging profile",
		exists: inCollection("/rest/profile/messaging"),
		ref:    func(l *lease) *string { return &l.profile },
	}
)

// serveLeases answers GET …/{uuid}/tnlease (a messaging profile's
// …/tnleases): the account's leases the holder's record is named by.
func (h leaseHolder) serveLeases(s *Sandbox, w http.ResponseWriter, _ *http.Request, u *user, id string) int {
	s.telco.mu.Lock()
	defer s.telco.mu.Unlock()
	if !h.exists(s, u, id) {
		return writeError(w, http.StatusNotFound, "Not found")
	}
	out := []leaseJSON{}
	for _, l := range u.acct.leases {
		if *h.ref(l) == id {
			out = append(out, s.leaseView(u, l, true))
		}
	}
	return writeSuccess(w, http.StatusOK, out)
}

// serveAssign answers POST …/{uuid}/tnlease with {"add": [lease uuids]}
// and or {"remove": [...]}: the leases added send their calls to the
// holder, those removed that did no longer do. Every lease named must be
// one of the account's (404 TNLease not found, and nothing changes). The
// answer is the leases named, added ones first, as they are after the
// change: Opentact's schema answers leases, its docs their uuids. A lease
// already as asked is left as it is, modified_on included, so that a
// repeat changes nothing.
func (h leaseHolder) serveAssign(s *Sandbox, w http.ResponseWriter, r *http.Request, u *user, id string) int {
	obj, status := readObject(w, r, false)
	if status != 0 {
		return status
	}
	errs := map[string]fieldError{}
	lists := map[string][]string{}
	for k, raw := range obj {
		if k != "add" && k != "remove" {
			errs[k] = fieldError{Message: "is not a member of an assignment: add or remove", Value: raw}
			continue
		}
		if !present(raw) {
			continue
		}
		var ids []string
		switch {
		case json.Unmarshal(raw, &ids) != nil || slices.Contains(ids, ""):
			errs[k] = fieldError{Message: "must be an array of lease uuids", Value: raw}
		case len(ids) > maxAssign:
			errs[k] = fieldError{Message: fmt.Sprintf("must name at most %d leases", maxAssign)}
		}
		lists[k] = ids
	}
	for _, id := range lists["add"] {
		if slices.Contains(lists["remove"], id) {
			v, _ := json.Marshal(id)
			errs["remove"] = fieldError{Message: "names a lease that add names too", Value: v}
		}
	}
	if len(errs) > 0 {
		return writeValidationError(w, errs)
	}
	s.telco.mu.Lock()
	defer s.telco.mu.Unlock()
	if !h.exists(s, u, id) {
		return writeError(w, http.StatusNotFound, "Not found")
	}
	a := u.acct
	var named []*lease
	for _, k := range []string{"add", "remove"} {
		for _, lid := range lists[k] {
			l := a.leaseByID[lid]
			if l == nil {
				return writeError(w, http.StatusNotFound, "TNLease not found")
			}
			if !slices.Contains(named, l) {
				named = append(named, l)
			}
		}
	}
	now := s.now().UTC()
	for _, l := range named {
		ref := h.ref(l)
		switch {
		case slices.Contains(lists["add"], l.uuid) && *ref != id:
			*ref, l.modified = id, now
		case slices.Contains(lists["remove"], l.uuid) && *ref == id:
			*ref, l.modified = "", now
		}
	}
	out := make([]leaseJSON, 0, len(named))
	for _, l := range named {
		out = append(out, s.leaseView(u, l, true))
	}
	return writeSuccess(w, http.StatusOK, out)
}

// inUse says why the holder id may not be deleted, or "": Opentact's 409
// for a record others still use. Under telco.mu.
func (h leaseHolder) inUse(s *Sandbox, u *user, id string) string {
	for _, l := range u.acct.leases {
		if *h.ref(l) == id {
			return fmt.Sprintf("the %s still carries the calls of a number (TN lease %s)", h.what, l.uuid)
		}
	}
	if coll := s.colls["/rest/sip/domain"]; coll != nil && h.domainMember != "" {
		recs, _ := s.records.list(u.account, coll, nil, func(m map[string]json.RawMessage) bool { return refersTo(m[h.domainMember], id) })
		if len(recs) > 0 {
			var domain string
			_ = json.Unmarshal(recs[0]["domain"], &domain)
			return fmt.Sprintf("the %s is used by SIP domain %s", h.what, domain)
		}
	}
	return ""
}

// deleteRefusals are Opentact's refusals to delete a record of a generic
// collection while others use it, by the collection's path: each says
// why u's record key may not go, or "" when it may. A generic delete
// runs it under telco.mu, so that no lease or SIP user comes to use the
// record meanwhile, and answers 409 "Conflict: <why>".
var deleteRefusals = map[string]func(s *Sandbox, u *user, key string) string{
	"/rest/sip/domain":     (*Sandbox).domainInUse,
	"/rest/sip/connection": sipConnections.inUse,
	"/rest/sip/app":        controlApps.inUse,
}

// deleteUnlessInUse is a generic delete of a collection that refuse
// guards.
func (s *Sandbox) deleteUnlessInUse(w http.ResponseWriter, u *user, coll *collection, scope []string, key string, refuse func(*Sandbox, *user, string) string) int {
	s.telco.mu.Lock()
	defer s.telco.mu.Unlock()
	if _, err := s.records.get(u.account, coll, scope, key); err != nil {
		return answer(w, 0, nil, err)
	}
	if why := refuse(s, u, key); why != "" {
		return writeError(w, http.StatusConflict, "Conflict: "+why)
	}
	raw, err := s.records.delete(u.account, coll, scope, key)
	return answer(w, http.StatusOK, raw, err)
}

// domainInUse refuses to delete a SIP domain that still has users.
func (s *Sandbox) domainInUse(u *user, domain string) string {
	for _, su := range u.acct.sipUsers {
		if su.domain == domain {
			return "the SIP domain still has SIP users; delete them first"
		}
	}
	return ""
}

// sipUser is a user of one of an account's SIP domains. Its password is
// kept to compute the digests a SIP server checks registrations with,
// and never answered.
type sipUser struct {
	uuid, domain      string
	login, password   string
	members           map[string]json.RawMessage // the other members, as set
	created, modified time.Time
}

// sipUserMembers are the members of a SIP user a create or an update
// sets, besides login and password, and what each takes: Opentact's
// schema's, and its docs' is_active and tn_lease.
var sipUserMembers = map[string]string{
	"first_name": "text", "last_name": "text", "email": "text", "avatar": "text", "dob": "text",
	"phone_number": "digits", "gender": "gender", "same_domain_calls_only": "bool", "is_active": "bool",
	"tn_lease": "lease",
}

// readSIPUser reads a SIP user's members from a create's or an update's
// body; a create needs login and password. Members sent as null are
// cleared (but login and password, which are required). On failure it
// has written the error and returns its status.
func readSIPUser(w http.ResponseWriter, r *http.Request, create bool) (login, password *string, set map[string]json.RawMessage, status int) {
	obj, status := readObject(w, r, !create)
	if status != 0 {
		return nil, nil, nil, status
	}
	errs := map[string]fieldError{}
	set = map[string]json.RawMessage{}
	for k, raw := range obj {
		if len(raw) > maxSIPUserText {
			errs[k] = fieldError{Message: fmt.Sprintf("must be at most %d bytes of JSON", maxSIPUserText)}
			delete(obj, k)
		}
	}
	text := func(k string, raw json.RawMessage) (string, bool) {
		var v string
		if json.Unmarshal(raw, &v) != nil {
			errs[k] = fieldError{Message: "must be a string", Value: raw}
			return "", false
		}
		return v, true
	}
	for _, k := range []string{"login", "password"} {
		raw, sent := obj[k]
		delete(obj, k)
		switch {
		case !sent && (!create || errs[k].Message != ""):
		case !present(raw) && create:
			errs[k] = fieldError{Message: "is required", Value: json.RawMessage("null")}
		case !present(raw):
			errs[k] = fieldError{Message: "cannot be cleared", Value: json.RawMessage("null")}
		default:
			if v, ok := text(k, raw); ok && v == "" {
				errs[k] = fieldError{Message: "must not be empty", Value: raw}
			} else if ok && k == "login" {
				login = &v
			} else if ok {
				password = &v
			}
		}
	}
	for k, raw := range obj {
		kind, ok := sipUserMembers[k]
		switch {
		case !ok:
			errs[k] = fieldError{Message: "is not a member of a SIP user that can be set", Value: raw}
			continue
		case !present(raw):
			set[k] = json.RawMessage("null")
			continue
		}
		var fine bool
		switch kind {
		case "bool":
			var b bool
			fine = json.Unmarshal(raw, &b) == nil
		case "digits":
			// Opentact's docs send a number, its schema a string.
			var (
				n json.Number
				v string
			)
			fine = json.Unmarshal(raw, &n) == nil || json.Unmarshal(raw, &v) == nil
		case "gender":
			v, ok := text(k, raw)
			fine = ok && (v == "Male" || v == "Female" || v == "Other")
		case "lease", "text":
			_, fine = text(k, raw)
		}
		if !fine && errs[k].Message == "" {
			errs[k] = fieldError{Message: "must be " + map[string]string{"bool": "a boolean", "digits": "a phone number",
				"gender": "Male, Female or Other", "lease": "a lease uuid", "text": "a string"}[kind], Value: raw}
		}
		set[k] = raw
	}
	if len(errs) > 0 {
		return nil, nil, nil, writeValidationError(w, errs)
	}
	return login, password, set, 0
}

// ha1 is the digest a SIP server checks a user's registrations with:
// md5(login:domain:password), ha1b's sibling.
func ha1(login, domain, password string) string {
	sum := md5.Sum([]byte(login + ":" + domain + ":" + password))
	return hex.EncodeToString(sum[:])
}

// sipUserView is su as Opentact answers it, under telco.mu: its
// members, the digests of its password (never the password), its state
// (the sandbox registers nobody: "offline"), and its domain.
func (s *Sandbox) sipUserView(u *user, su *sipUser) map[string]json.RawMessage {
	v := map[string]json.RawMessage{
		"first_name": nil, "last_name": nil, "email": nil, "phone_number": nil, "avatar": nil, "dob": nil, "gender": nil,
		"is_active": json.RawMessage("true"), "same_domain_calls_only": json.RawMessage("false"),
	}
	for k, raw := range su.members {
		v[k] = raw
	}
	for k, raw := range v {
		if raw == nil {
			v[k] = json.RawMessage("null")
		}
	}
	quote := func(text string) json.RawMessage { b, _ := json.Marshal(text); return b }
	v["uuid"], v["login"] = quote(su.uuid), quote(su.login)
	v["ha1"], v["ha1b"] = quote(ha1(su.login, su.domain, su.password)), quote(ha1b(su.login, su.domain, su.password))
	v["state"], v["groups"] = quote("offline"), json.RawMessage("[]")
	v["created_on"], v["modified_on"] = quote(stamp(su.created)), quote(stamp(su.modified))
	delete(v, "tn_lease")
	var id string
	if json.Unmarshal(su.members["tn_lease"], &id) == nil && u.acct.leaseByID[id] != nil {
		v["tn_lease"] = reference(id)
	}
	domain := map[string]json.RawMessage{"domain": quote(su.domain)}
	if raw, ok := s.genericRecord(u, "/rest/sip/domain", nil, su.domain); ok {
		var rec map[string]json.RawMessage
		if json.Unmarshal(raw, &rec) == nil {
			domain["created_on"], domain["modified_on"] = rec["created_on"], rec["modified_on"]
		}
	}
	v["sip_domain"], _ = json.Marshal(domain)
	return v
}

// findSIPUser is the account's user id of domain, under telco.mu.
func (a *acct) findSIPUser(domain, id string) *sipUser {
	if su := a.sipUserByID[id]; su != nil && su.domain == domain {
		return su
	}
	return nil
}

// loginTaken reports whether another user than self of the domain has
// login, under telco.mu.
func (a *acct) loginTaken(domain, login string, self *sipUser) bool {
	return slices.ContainsFunc(a.sipUsers, func(o *sipUser) bool { return o != self && o.domain == domain && o.login == login })
}

// checkTNLease refuses a tn_lease that is not one of the account's
// leases: its message, or "". Under telco.mu.
func (a *acct) checkTNLease(set map[string]json.RawMessage) string {
	var id string
	if raw, ok := set["tn_lease"]; ok && present(raw) && (json.Unmarshal(raw, &id) != nil || a.leaseByID[id] == nil) {
		return "TNLease not found"
	}
	return ""
}

// serveSIPUsers answers GET /rest/sip/domain/{domain}/user: the domain's
// users, oldest first.
func (s *Sandbox) serveSIPUsers(w http.ResponseWriter, _ *http.Request, u *user, params []string) int {
	domain := params[0]
	s.telco.mu.Lock()
	defer s.telco.mu.Unlock()
	if _, ok := s.genericRecord(u, "/rest/sip/domain", nil, domain); !ok {
		return writeError(w, http.StatusNotFound, "Not found")
	}
	out := []map[string]json.RawMessage{}
	for _, su := range u.acct.sipUsers {
		if su.domain == domain {
			out = append(out, s.sipUserView(u, su))
		}
	}
	return writeSuccess(w, http.StatusOK, out)
}

// serveSIPUserCreate answers POST /rest/sip/domain/{domain}/user: a user
// of a domain of the account's (404 otherwise) whose login no other user
// of the domain has (409 otherwise).
func (s *Sandbox) serveSIPUserCreate(w http.ResponseWriter, r *http.Request, u *user, params []string) int {
	domain := params[0]
	login, password, set, status := readSIPUser(w, r, true)
	if status != 0 {
		return status
	}
	s.telco.mu.Lock()
	defer s.telco.mu.Unlock()
	a := u.acct
	if _, ok := s.genericRecord(u, "/rest/sip/domain", nil, domain); !ok {
		return writeError(w, http.StatusNotFound, "Not found")
	}
	if msg := a.checkTNLease(set); msg != "" {
		return writeError(w, http.StatusNotFound, msg)
	}
	if a.loginTaken(domain, *login, nil) {
		return writeError(w, http.StatusConflict, "Conflict: a SIP user with this login already exists in the domain")
	}
	if len(a.sipUsers) >= MaxSIPUsers {
		return writeError(w, http.StatusBadRequest, fmt.Sprintf("Too many SIP users: an account holds at most %d; delete some first", MaxSIPUsers))
	}
	now := s.now().UTC()
	su := &sipUser{uuid: newUUID(), domain: domain, login: *login, password: *password, members: set, created: now, modified: now}
	a.sipUsers = append(a.sipUsers, su)
	a.sipUserByID[su.uuid] = su
	// 201 as a NestJS @Post answers by default.
	return writeSuccess(w, http.StatusCreated, s.sipUserView(u, su))
}

// serveSIPUserGet answers GET /rest/sip/domain/{domain}/user/{uuid}.
func (s *Sandbox) serveSIPUserGet(w http.ResponseWriter, _ *http.Request, u *user, params []string) int {
	s.telco.mu.Lock()
	defer s.telco.mu.Unlock()
	su := u.acct.findSIPUser(params[0], params[1])
	if su == nil {
		return writeError(w, http.StatusNotFound, "Not found")
	}
	return writeSuccess(w, http.StatusOK, s.sipUserView(u, su))
}

// serveSIPUserUpdate answers PATCH /rest/sip/domain/{domain}/user/{uuid}:
// sets the members sent; a new login must be free in the domain (409).
func (s *Sandbox) serveSIPUserUpdate(w http.ResponseWriter, r *http.Request, u *user, params []string) int {
	login, password, set, status := readSIPUser(w, r, false)
	if status != 0 {
		return status
	}
	s.telco.mu.Lock()
	defer s.telco.mu.Unlock()
	a := u.acct
	su := a.findSIPUser(params[0], params[1])
	if su == nil {
		return writeError(w, http.StatusNotFound, "Not found")
	}
	if msg := a.checkTNLease(set); msg != "" {
		return writeError(w, http.StatusNotFound, msg)
	}
	if login != nil && a.loginTaken(su.domain, *login, su) {
		return writeError(w, http.StatusConflict, "Conflict: a SIP user with this login already exists in the domain")
	}
	if login != nil {
		su.login = *login
	}
	if password != nil {
		su.password = *password
	}
	members := make(map[string]json.RawMessage, len(su.members)+len(set))
	maps.Copy(members, su.members)
	maps.Copy(members, set)
	su.members, su.modified = members, s.now().UTC()
	return writeSuccess(w, http.StatusOK, s.sipUserView(u, su))
}

// serveSIPUserDelete answers DELETE /rest/sip/domain/{domain}/user/{uuid}:
// the user as it was.
func (s *Sandbox) serveSIPUserDelete(w http.ResponseWriter, _ *http.Request, u *user, params []string) int {
	s.telco.mu.Lock()
	defer s.telco.mu.Unlock()
	a := u.acct
	su := a.findSIPUser(params[0], params[1])
	if su == nil {
		return writeError(w, http.StatusNotFound, "Not found")
	}
	delete(a.sipUserByID, su.uuid)
	a.sipUsers = slices.DeleteFunc(a.sipUsers, func(o *sipUser) bool { return o == su })
	return writeSuccess(w, http.StatusOK, s.sipUserView(u, su))
}
