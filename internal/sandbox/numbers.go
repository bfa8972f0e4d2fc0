package sandbox

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// MaxLeases bounds the numbers one account holds; past it an order is
	// refused, so that a client in a loop cannot take the inventory.
	MaxLeases = 100
	// MaxOrders bounds the orders an account's history keeps: past it the
	// oldest is forgotten.
	MaxOrders = 1000
	// MaxOrderItems bounds the numbers of one order, as OrderNumbers does.
	MaxOrderItems = 100
	// leaseTerm is how long after it is made a lease's expired_on is. The
	// sandbox never ends a lease by itself.
	leaseTerm = 30 * 24 * time.Hour
)

// telco is what the sandbox holds of Opentact's telephony: the inventory
// of numbers, shared by every account, and, under the same lock, each
// account's balance, orders, leases and messages (acct).
type telco struct {
	mu      sync.Mutex
	numbers []*number // ascending
	byTN    map[int64]*number
}

func newTelco() *telco {
	t := &telco{numbers: newInventory(), byTN: map[int64]*number{}}
	for _, n := range t.numbers {
		t.byTN[n.tn] = n
	}
	return t
}

// acct is what one account has at Opentact beyond its records: users
// whose profiles name the same account share it.
type acct struct {
	key  string // as user.account names it
	uuid string // the account's uuid; "" for a user without an account
	// balance is what the account can spend, under telco.mu: its
	// profile's account.balance, or zero when that says none.
	balance *big.Rat
	// balanceText is the balance as profiles show it once it has changed,
	// nil until then; the profile's answers read it without the lock.
	balanceText atomic.Pointer[string]

	orders    []*order // oldest first
	orderByID map[string]*order
	leases    []*lease // oldest first
	leaseByID map[string]*lease
	sms       []*sms // oldest first, of both directions
	smsByID   map[string]*sms
	eventSubs []eventSubJSON // oldest first
	// The call control apps' saved flows, by app uuid, their calls
	// (oldest first) and the verbs their flows ran (oldest first).
	flows    map[string]string
	calls    []*scaCall
	callByID map[string]*scaCall
	flowLogs []*flowLog
	// The SIP users of every domain, oldest first.
	sipUsers    []*sipUser
	sipUserByID map[string]*sipUser
}

func newAcct(key, uuid string, accountJSON json.RawMessage) *acct {
	a := &acct{key: key, uuid: uuid, balance: new(big.Rat), orderByID: map[string]*order{}, leaseByID: map[string]*lease{}, smsByID: map[string]*sms{},
		flows: map[string]string{}, callByID: map[string]*scaCall{}, sipUserByID: map[string]*sipUser{}}
	var fields map[string]json.RawMessage
	if json.Unmarshal(accountJSON, &fields) == nil {
		if b, ok := parseMoney(fields["balance"]); ok {
			a.balance = b
		}
	}
	return a
}

// charge takes amount from the balance, if the balance has it.
func (a *acct) charge(amount *big.Rat) bool {
	if a.balance.Cmp(amount) < 0 {
		return false
	}
	if amount.Sign() == 0 {
		return true
	}
	a.balance = new(big.Rat).Sub(a.balance, amount)
	text := moneyText(a.balance)
	a.balanceText.Store(&text)
	return true
}

// lease is a number an account holds.
type lease struct {
	uuid                            string
	acct                            *acct
	num                             *number
	order                           *order
	autorenew                       bool
	voice, fax, sms, mms, emergency bool
	profile                         string // the messaging profile's uuid; "" for none
	sipConnection, sipControlApp    string // uuids; "" for none
	subscription                    *subscription
	created, modified               time.Time
}

// subscription is a lease's SMS turned on through a messaging profile.
type subscription struct {
	uuid, profile, campaign string
	created, modified       time.Time
}

// order is an order as answered, kept for the account's history.
type order struct {
	uuid  string
	out   json.RawMessage
	view  map[string]json.RawMessage // out's members, for a search
	brief json.RawMessage            // as a lease names it
}

// orderItem is one number of an order, as Opentact keeps it.
type orderItem struct {
	TN        int64    `json:"tn"`
	Features  []string `json:"features"`
	Autorenew bool     `json:"autorenew"`
	Voice     bool     `json:"voice"`
	Fax       bool     `json:"fax"`
	SMS       bool     `json:"sms"`
	MMS       bool     `json:"mms"`
	Emergency bool     `json:"emergency"`
	Profile   string   `json:"profile,omitempty"`
}

type orderError struct {
	Item        orderItem `json:"item"`
	Reason      string    `json:"reason"`
	Description string    `json:"description"`
}

// orderJSON is an order as Opentact answers it: its docs' state and
// counts, and its schema's request, items, errors, numbers and leases.
type orderJSON struct {
	UUID       string          `json:"uuid"`
	State      string          `json:"state"`
	Total      int             `json:"total"`
	Success    int             `json:"success"`
	Processing int             `json:"processing"`
	Failed     int             `json:"failed"`
	Request    json.RawMessage `json:"request"`
	Items      []orderItem     `json:"items"`
	Errors     []orderError    `json:"errors"`
	TNs        []numberJSON    `json:"tns"`
	TNLeases   []leaseJSON     `json:"tnleases"`
	CreatedOn  string          `json:"created_on"`
	ModifiedOn string          `json:"modified_on"`
}

type orderBriefJSON struct {
	UUID       string `json:"uuid"`
	State      string `json:"state"`
	Total      int    `json:"total"`
	Success    int    `json:"success"`
	Processing int    `json:"processing"`
	Failed     int    `json:"failed"`
	CreatedOn  string `json:"created_on"`
	ModifiedOn string `json:"modified_on"`
}

// leaseJSON is a lease as Opentact answers it, with the features an
// order or an update turns on.
type leaseJSON struct {
	UUID             string            `json:"uuid"`
	TN               numberJSON        `json:"tn"`
	ExpiredOn        string            `json:"expired_on"`
	Autorenew        bool              `json:"autorenew"`
	Voice            bool              `json:"voice"`
	Fax              bool              `json:"fax"`
	SMS              bool              `json:"sms"`
	MMS              bool              `json:"mms"`
	Emergency        bool              `json:"emergency"`
	MessagingProfile json.RawMessage   `json:"messaging_profile"`
	SIPConnection    json.RawMessage   `json:"sip_connection"`
	SIPControlApp    json.RawMessage   `json:"sip_control_app"`
	TNOrder          json.RawMessage   `json:"tnorder,omitempty"`
	Subscriptions    []json.RawMessage `json:"subscriptions"`
	CreatedOn        string            `json:"created_on"`
	ModifiedOn       string            `json:"modified_on"`
}

// subscriptionJSON is an SMS subscription as Opentact answers it.
type subscriptionJSON struct {
	UUID             string          `json:"uuid"`
	Type             string          `json:"type"`
	MessagingProfile json.RawMessage `json:"messaging_profile"`
	SMSCampaign      json.RawMessage `json:"sms_campaign"`
	CreatedOn        string          `json:"created_on"`
	ModifiedOn       string          `json:"modified_on"`
}

func stamp(t time.Time) string { return t.UTC().Format(timeLayout) }

// reference is another object a lease points to, by its uuid.
func reference(uuid string) json.RawMessage {
	if uuid == "" {
		return nil
	}
	b, _ := json.Marshal(map[string]string{"uuid": uuid})
	return b
}

// messagingProfile is u's messaging profile id, as its collection holds
// it.
func (s *Sandbox) messagingProfile(u *user, id string) (json.RawMessage, bool) {
	if s.profiles == nil || id == "" {
		return nil, false
	}
	raw, err := s.records.get(u.account, s.profiles, nil, id)
	return raw, err == nil
}

// smsOn reports whether l can send SMS: SMS on, through a messaging
// profile that exists.
func (s *Sandbox) smsOn(u *user, l *lease) bool {
	_, ok := s.messagingProfile(u, l.profile)
	return l.sms && ok
}

func (s *Sandbox) subscriptionView(u *user, sub *subscription) subscriptionJSON {
	profile, _ := s.messagingProfile(u, sub.profile)
	if profile == nil {
		profile = reference(sub.profile)
	}
	return subscriptionJSON{
		UUID: sub.uuid, Type: "sms", MessagingProfile: profile, SMSCampaign: reference(sub.campaign),
		CreatedOn: stamp(sub.created), ModifiedOn: stamp(sub.modified),
	}
}

// leaseView is l as answered, under telco.mu; withOrder names its order.
func (s *Sandbox) leaseView(u *user, l *lease, withOrder bool) leaseJSON {
	v := leaseJSON{
		UUID: l.uuid, TN: l.num.view(), ExpiredOn: stamp(l.created.Add(leaseTerm)), Autorenew: l.autorenew,
		Voice: l.voice, Fax: l.fax, SMS: l.sms, MMS: l.mms, Emergency: l.emergency,
		SIPConnection: reference(l.sipConnection), SIPControlApp: reference(l.sipControlApp),
		Subscriptions: []json.RawMessage{}, CreatedOn: stamp(l.created), ModifiedOn: stamp(l.modified),
	}
	v.MessagingProfile, _ = s.messagingProfile(u, l.profile)
	if withOrder && l.order != nil {
		v.TNOrder = l.order.brief
	}
	if l.subscription != nil {
		b, _ := json.Marshal(s.subscriptionView(u, l.subscription))
		v.Subscriptions = append(v.Subscriptions, b)
	}
	return v
}

// leaseFilterView is what a lease search filters and sorts by: the
// number's digits as tn, and references by their uuids.
func leaseFilterView(l *lease) map[string]json.RawMessage {
	ref := func(id string) json.RawMessage {
		if id == "" {
			return json.RawMessage("null")
		}
		return json.RawMessage(strconv.Quote(id))
	}
	b := func(v bool) json.RawMessage { return json.RawMessage(strconv.FormatBool(v)) }
	return map[string]json.RawMessage{
		"uuid": ref(l.uuid), "tn": json.RawMessage(l.num.digits), "autorenew": b(l.autorenew),
		"voice": b(l.voice), "fax": b(l.fax), "sms": b(l.sms), "mms": b(l.mms), "emergency": b(l.emergency),
		"messaging_profile": ref(l.profile), "sip_connection": ref(l.sipConnection), "sip_control_app": ref(l.sipControlApp),
		"created_on": ref(stamp(l.created)), "modified_on": ref(stamp(l.modified)),
	}
}

// readDigits reads a phone number: a JSON number of its digits, or a
// string of them after an optional +.
func readDigits(raw json.RawMessage) (int64, bool) {
	text := strings.TrimSpace(string(raw))
	if strings.HasPrefix(text, `"`) {
		if json.Unmarshal(raw, &text) != nil {
			return 0, false
		}
		text = strings.TrimPrefix(text, "+")
	}
	return parseDigits(text)
}

// parseDigits reads 1 to 15 digits, the first not 0, as a phone number
// is written in a path.
func parseDigits(text string) (int64, bool) {
	if len(text) == 0 || len(text) > 15 || text[0] == '0' {
		return 0, false
	}
	for _, c := range text {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(text, 10, 64)
	return n, err == nil
}

// findLease is a's lease named by its uuid or its number's digits, as
// Opentact takes either.
func (s *Sandbox) findLease(a *acct, key string) *lease {
	if l := a.leaseByID[key]; l != nil {
		return l
	}
	if tn, ok := parseDigits(key); ok {
		if n := s.telco.byTN[tn]; n != nil && n.lease != nil && n.lease.acct == a {
			return n.lease
		}
	}
	return nil
}

// numberFilters are the members of a number search that name a place or
// a profile, compared without regard to case.
var numberFilters = []string{"rateCenter", "city", "province", "postalCode", "profile"}

// serveNumberSearch answers POST /rest/tn/search: a page (page from 1,
// size 1 to 100, from the query or the body) of the numbers nobody
// holds that match every filter given.
func (s *Sandbox) serveNumberSearch(w http.ResponseWriter, r *http.Request, _ *user, _ string) int {
	obj, status := readObject(w, r, true)
	if status != 0 {
		return status
	}
	errs := map[string]fieldError{}
	q := r.URL.Query()
	pageNo, size := 1, DefaultTake
	if n, given, fe := intParam(q, obj, "page", 1, math.MaxInt32); fe != nil {
		errs["page"] = *fe
	} else if given {
		pageNo = n
	}
	if n, given, fe := intParam(q, obj, "size", 1, maxSize); fe != nil {
		errs["size"] = *fe
	} else if given {
		size = n
	}
	text := map[string]string{}
	for _, key := range append([]string{"pattern"}, numberFilters...) {
		raw := obj[key]
		if !present(raw) {
			continue
		}
		var v string
		if json.Unmarshal(raw, &v) != nil {
			errs[key] = fieldError{Message: "must be a string", Value: raw}
			continue
		}
		text[key] = strings.TrimSpace(v)
	}
	var abc bool
	if raw := obj["abcSearch"]; present(raw) && json.Unmarshal(raw, &abc) != nil {
		errs["abcSearch"] = fieldError{Message: "must be a boolean", Value: raw}
	}
	pattern, hasPattern := text["pattern"]
	if hasPattern {
		var ok bool
		if pattern, ok = numberPattern(pattern, abc); !ok {
			msg := "must be 1 to 15 digits, * (any run of digits) and % (one digit)"
			if abc {
				msg = "must be 1 to 15 digits, letters, * (any run of digits) and % (one digit)"
			}
			errs["pattern"] = fieldError{Message: msg, Value: obj["pattern"]}
		}
	}
	if len(errs) > 0 {
		return writeValidationError(w, errs)
	}
	if name, ok := text["profile"]; ok && !slices.ContainsFunc(tnProfiles, func(p *tnProfile) bool { return strings.EqualFold(p.name, name) }) {
		return writeError(w, http.StatusNotFound, "Profile not found")
	}
	keep := func(n *number) bool {
		if n.lease != nil || (hasPattern && !n.matchesPattern(pattern)) {
			return false
		}
		var place [4]string
		if a := n.area; a != nil {
			place = [4]string{a.rateCenter, a.city, a.province, n.postalCode}
		}
		for i, key := range numberFilters {
			want, ok := text[key]
			got := n.profile.name
			if i < len(place) {
				got = place[i]
			}
			if ok && !strings.EqualFold(got, want) {
				return false
			}
		}
		return true
	}
	page := searchPage{Take: size, Skip: (pageNo - 1) * size, Data: []json.RawMessage{}}
	s.telco.mu.Lock()
	defer s.telco.mu.Unlock()
	for _, n := range s.telco.numbers {
		if !keep(n) {
			continue
		}
		if page.Total >= page.Skip && len(page.Data) < page.Take {
			b, _ := json.Marshal(n.view())
			page.Data = append(page.Data, b)
		}
		page.Total++
	}
	return writeSuccess(w, http.StatusOK, page)
}

// orderFeatures are the features an order item may ask for.
var orderFeatures = []string{"voice", "fax", "sms", "mms", "emergency"}

// readOrderItems reads an order's items: Opentact's documented
// {tn, features, autorenew}, or its schema's feature booleans.
func readOrderItems(raw json.RawMessage) ([]orderItem, map[string]fieldError) {
	errs := map[string]fieldError{}
	var list []json.RawMessage
	switch {
	case !present(raw):
		errs["items"] = fieldError{Message: "is required", Value: json.RawMessage("null")}
	case json.Unmarshal(raw, &list) != nil:
		errs["items"] = fieldError{Message: "must be an array of items", Value: raw}
	case len(list) == 0:
		errs["items"] = fieldError{Message: "must not be empty", Value: raw}
	case len(list) > MaxOrderItems:
		errs["items"] = fieldError{Message: fmt.Sprintf("must have at most %d items", MaxOrderItems)}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	var (
		items []orderItem
		seen  = map[int64]bool{}
	)
	for i, itemRaw := range list {
		name := fmt.Sprintf("items[%d]", i)
		var m map[string]json.RawMessage
		if json.Unmarshal(itemRaw, &m) != nil || m == nil {
			errs[name] = fieldError{Message: "must be an object", Value: itemRaw}
			continue
		}
		it := orderItem{Autorenew: true}
		var ok bool
		switch it.TN, ok = readDigits(m["tn"]); {
		case !present(m["tn"]):
			errs[name+".tn"] = fieldError{Message: "is required", Value: json.RawMessage("null")}
		case !ok:
			errs[name+".tn"] = fieldError{Message: "must be a phone number's digits", Value: m["tn"]}
		case seen[it.TN]:
			errs[name+".tn"] = fieldError{Message: "is ordered twice", Value: m["tn"]}
		}
		seen[it.TN] = true
		on := map[string]bool{}
		if raw := m["features"]; present(raw) {
			var fs []string
			if json.Unmarshal(raw, &fs) != nil || slices.ContainsFunc(fs, func(f string) bool { return !slices.Contains(orderFeatures, f) }) {
				errs[name+".features"] = fieldError{Message: "must list voice, fax, sms, mms or emergency", Value: raw}
			}
			for _, f := range fs {
				on[f] = true
			}
		}
		for _, key := range append([]string{"autorenew"}, orderFeatures...) {
			raw := m[key]
			if !present(raw) {
				continue
			}
			var v bool
			if json.Unmarshal(raw, &v) != nil {
				errs[name+"."+key] = fieldError{Message: "must be a boolean", Value: raw}
			} else if key == "autorenew" {
				it.Autorenew = v
			} else {
				on[key] = on[key] || v
			}
		}
		if raw := m["profile"]; present(raw) && json.Unmarshal(raw, &it.Profile) != nil {
			errs[name+".profile"] = fieldError{Message: "must be a number profile's name", Value: raw}
		}
		if len(on) == 0 {
			on["voice"] = true // a number answers calls unless told otherwise
		}
		it.Voice, it.Fax, it.SMS, it.MMS, it.Emergency = on["voice"], on["fax"], on["sms"], on["mms"], on["emergency"]
		it.Features = []string{}
		for _, f := range orderFeatures {
			if on[f] {
				it.Features = append(it.Features, f)
			}
		}
		items = append(items, it)
	}
	return items, errs
}

// serveOrder answers POST /rest/order: the numbers of its items that the
// inventory has leave it for leases of the caller's account, charged to
// its balance (402, and nothing taken, when the balance is short). An
// item whose number is not there is one of the order's errors.
func (s *Sandbox) serveOrder(w http.ResponseWriter, r *http.Request, u *user, _ string) int {
	obj, status := readObject(w, r, false)
	if status != 0 {
		return status
	}
	items, errs := readOrderItems(obj["items"])
	if len(errs) > 0 {
		return writeValidationError(w, errs)
	}
	s.telco.mu.Lock()
	defer s.telco.mu.Unlock()
	a, now := u.acct, s.now().UTC()
	o := orderJSON{UUID: newUUID(), Total: len(items), Items: items, Errors: []orderError{}, TNs: []numberJSON{}, TNLeases: []leaseJSON{},
		CreatedOn: stamp(now), ModifiedOn: stamp(now)}
	o.Request, _ = json.Marshal(map[string]json.RawMessage{"items": obj["items"]})
	var (
		buy  []*number
		with []orderItem
		cost = new(big.Rat)
	)
	for _, it := range items {
		n := s.telco.byTN[it.TN]
		switch {
		case n == nil:
			o.Errors = append(o.Errors, orderError{it, "not_found", "The number is not in the inventory"})
		case n.lease != nil:
			o.Errors = append(o.Errors, orderError{it, "not_available", "The number is already taken"})
		case it.Profile != "" && !strings.EqualFold(it.Profile, n.profile.name):
			o.Errors = append(o.Errors, orderError{it, "wrong_profile", "The number is of profile " + n.profile.name})
		default:
			buy, with = append(buy, n), append(with, it)
			cost.Add(cost, n.profile.price)
		}
	}
	if len(a.leases)+len(buy) > MaxLeases {
		return writeError(w, http.StatusBadRequest, fmt.Sprintf("Too many numbers: an account holds at most %d; release some first", MaxLeases))
	}
	if !a.charge(cost) {
		return writeError(w, http.StatusPaymentRequired, "Not enough account balance")
	}
	o.Success, o.Failed, o.State = len(buy), len(o.Errors), "success"
	if len(buy) == 0 {
		o.State = "failed"
	}
	kept := &order{uuid: o.UUID}
	kept.brief, _ = json.Marshal(orderBriefJSON{o.UUID, o.State, o.Total, o.Success, 0, o.Failed, o.CreatedOn, o.ModifiedOn})
	for i, n := range buy {
		it := with[i]
		l := &lease{uuid: newUUID(), acct: a, num: n, order: kept, autorenew: it.Autorenew,
			voice: it.Voice, fax: it.Fax, sms: it.SMS, mms: it.MMS, emergency: it.Emergency, created: now, modified: now}
		n.lease, n.modified = l, now
		a.leases = append(a.leases, l)
		a.leaseByID[l.uuid] = l
		o.TNs = append(o.TNs, n.view())
		o.TNLeases = append(o.TNLeases, s.leaseView(u, l, false))
	}
	kept.out, _ = json.Marshal(o)
	_ = json.Unmarshal(kept.out, &kept.view)
	a.orders = append(a.orders, kept)
	a.orderByID[kept.uuid] = kept
	if len(a.orders) > MaxOrders {
		delete(a.orderByID, a.orders[0].uuid)
		a.orders = slices.Delete(a.orders, 0, 1)
	}
	// Opentact processes an order later; the sandbox at once, so its
	// events follow the answer's content straight away.
	s.publish(a, event("tn_order", "TN order "+o.UUID+" - "+o.State, now, kept.out))
	if cost.Sign() > 0 {
		s.balanceEvent(a, "tn_order", now)
	}
	// 201, as Opentact's docs answer an order.
	return writeSuccess(w, http.StatusCreated, kept.out)
}

// serveOrderSearch answers POST /rest/order/search: a page of the
// account's orders, oldest first unless an order says otherwise.
func (s *Sandbox) serveOrderSearch(w http.ResponseWriter, r *http.Request, u *user, _ string) int {
	sr, status := readSearch(w, r, nil, nil)
	if status != 0 {
		return status
	}
	s.telco.mu.Lock()
	items := make([]searchItem, 0, len(u.acct.orders))
	for _, o := range u.acct.orders {
		items = append(items, searchItem{view: o.view, out: o.out})
	}
	s.telco.mu.Unlock()
	return sr.answer(w, items)
}

// serveOrderGet answers GET /rest/order/{uuid}.
func (s *Sandbox) serveOrderGet(w http.ResponseWriter, _ *http.Request, u *user, id string) int {
	s.telco.mu.Lock()
	o := u.acct.orderByID[id]
	s.telco.mu.Unlock()
	if o == nil {
		return writeError(w, http.StatusNotFound, "Not found")
	}
	return writeSuccess(w, http.StatusOK, o.out)
}

// serveLeaseSearch answers POST /rest/lease/tn/search: a page of the
// account's leases; tn takes a mask.
func (s *Sandbox) serveLeaseSearch(w http.ResponseWriter, r *http.Request, u *user, _ string) int {
	sr, status := readSearch(w, r, nil, []string{"tn"})
	if status != 0 {
		return status
	}
	s.telco.mu.Lock()
	defer s.telco.mu.Unlock()
	items := make([]searchItem, 0, len(u.acct.leases))
	for _, l := range u.acct.leases {
		out, _ := json.Marshal(s.leaseView(u, l, true))
		items = append(items, searchItem{view: leaseFilterView(l), out: out})
	}
	return sr.answer(w, items)
}

// serveLeaseGet answers GET /rest/lease/tn/{uuid}.
func (s *Sandbox) serveLeaseGet(w http.ResponseWriter, _ *http.Request, u *user, key string) int {
	s.telco.mu.Lock()
	defer s.telco.mu.Unlock()
	l := s.findLease(u.acct, key)
	if l == nil {
		return writeError(w, http.StatusNotFound, "Not found")
	}
	return writeSuccess(w, http.StatusOK, s.leaseView(u, l, true))
}

// serveLeaseByNumber answers GET /rest/lease/tn/{tn}/tn.
func (s *Sandbox) serveLeaseByNumber(w http.ResponseWriter, _ *http.Request, u *user, digits string) int {
	s.telco.mu.Lock()
	defer s.telco.mu.Unlock()
	tn, ok := parseDigits(digits)
	n := s.telco.byTN[tn]
	if !ok || n == nil || n.lease == nil || n.lease.acct != u.acct {
		return writeError(w, http.StatusNotFound, "Not found")
	}
	return writeSuccess(w, http.StatusOK, s.leaseView(u, n.lease, true))
}

// leaseFlags and leaseRefs are what PATCH /rest/lease/tn/{uuid} sets.
var (
	leaseFlags = []string{"voice", "fax", "sms", "mms", "emergency", "autorenew"}
	leaseRefs  = []string{"messaging_profile", "sip_connection", "sip_control_app"}
)

// serveLeaseUpdate answers PATCH /rest/lease/tn/{uuid}: sets the members
// sent. SMS is off without a messaging profile; turning it off, or
// taking the profile away, ends the SMS subscription.
func (s *Sandbox) serveLeaseUpdate(w http.ResponseWriter, r *http.Request, u *user, key string) int {
	obj, status := readObject(w, r, true)
	if status != 0 {
		return status
	}
	errs := map[string]fieldError{}
	flags, refs := map[string]bool{}, map[string]string{}
	for k, raw := range obj {
		switch {
		case slices.Contains(leaseFlags, k):
			var v bool
			if json.Unmarshal(raw, &v) != nil {
				errs[k] = fieldError{Message: "must be a boolean", Value: raw}
			}
			flags[k] = v
		case slices.Contains(leaseRefs, k):
			var v *string
			if json.Unmarshal(raw, &v) != nil || (v != nil && *v == "") {
				errs[k] = fieldError{Message: "must be a uuid or null", Value: raw}
			} else if v != nil {
				refs[k] = *v
			} else {
				refs[k] = ""
			}
		default:
			errs[k] = fieldError{Message: "is not a member of a lease that can be set", Value: raw}
		}
	}
	if len(errs) > 0 {
		return writeValidationError(w, errs)
	}
	s.telco.mu.Lock()
	defer s.telco.mu.Unlock()
	l := s.findLease(u.acct, key)
	if l == nil {
		return writeError(w, http.StatusNotFound, "Not found")
	}
	if id, ok := refs["messaging_profile"]; ok && id != "" {
		if _, found := s.messagingProfile(u, id); !found {
			return writeError(w, http.StatusNotFound, "Messaging profile not found")
		}
	}
	now := s.now().UTC()
	flag := map[string]*bool{"voice": &l.voice, "fax": &l.fax, "sms": &l.sms, "mms": &l.mms, "emergency": &l.emergency, "autorenew": &l.autorenew}
	for k, v := range flags {
		*flag[k] = v
	}
	ref := map[string]*string{"messaging_profile": &l.profile, "sip_connection": &l.sipConnection, "sip_control_app": &l.sipControlApp}
	for k, v := range refs {
		*ref[k] = v
	}
	if sub := l.subscription; sub != nil {
		switch {
		case !l.sms || l.profile == "":
			l.subscription = nil
		case sub.profile != l.profile:
			sub.profile, sub.modified = l.profile, now
		}
	}
	l.modified = now
	return writeSuccess(w, http.StatusOK, s.leaseView(u, l, true))
}

// serveRelease answers DELETE /rest/lease/tn/{uuid}, the uuid a lease's
// or a number's digits: the number goes back to the inventory, and the
// answer is the lease as it ended.
func (s *Sandbox) serveRelease(w http.ResponseWriter, _ *http.Request, u *user, key string) int {
	s.telco.mu.Lock()
	defer s.telco.mu.Unlock()
	a := u.acct
	l := s.findLease(a, key)
	if l == nil {
		return writeError(w, http.StatusNotFound, "Not found")
	}
	now := s.now().UTC()
	l.num.lease, l.num.modified = nil, now
	l.subscription, l.modified = nil, now
	delete(a.leaseByID, l.uuid)
	a.leases = slices.DeleteFunc(a.leases, func(o *lease) bool { return o == l })
	return writeSuccess(w, http.StatusOK, s.leaseView(u, l, true))
}
