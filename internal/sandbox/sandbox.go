// Package sandbox is an offline stand-in for Opentact, in the spirit of
// stripe-mock. It serves every call the facade declares (package declare)
// from the same declarations: a declared create, get, list, search,
// update or delete is served by a generic in-memory collection per path
// and per account, and a declared read of one object from what the
// caller's profile or a fixture says. Hand-written code is only for
// behaviour Opentact has of its own: GET /rest/auth, the token calls
// (POST /rest/token, GET /rest/token/list, PATCH /rest/token/{uuid},
// DELETE /rest/token/{token} and DELETE /rest/token/all), and numbers and
// SMS: an inventory of numbers shared by every account, searched by
// pattern and place; orders that charge the account's balance; leases,
// their SMS subscriptions and their release; messages that are sent and
// delivered as the sandbox's clock moves on; SIP users, whose password it
// keeps and answers only as Opentact's digests, the numbers of a SIP
// connection, and the deletes Opentact refuses while a record is in
// use. It knows a few
// accounts (the documented demo account, plus any loaded from a file),
// checks every credential kind Opentact accepts, answers with Opentact's
// documented payload and error shapes, and issues real signed JWTs that it
// accepts back as X-Auth-Token. Tokens made by POST /rest/token live in
// memory, per account, and work as Authorization: Bearer <token>.
//
// A WebSocket to / (or /ws) gets Opentact's events after an auth frame
// with one of its JWTs: orders, balance changes, SMS sent and received,
// and inbound calls, which POST /sandbox/inbound-sms and
// /sandbox/inbound-call make happen. Close stops its sockets and timers.
package sandbox

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/opentact-facade/opentact-facade/internal/declare"
	"github.com/opentact-facade/opentact-facade/service"
)

// The documented demo account: the Basic header of Opentact's example call
// decodes to these. The other demo credentials are the sandbox's own.
const (
	DemoEmail         = "opentact@callify.io"
	DemoPassword      = "12345678"
	DemoAPIToken      = "demo-api-token"
	DemoGoogleToken   = "demo-google-token"
	DemoFacebookToken = "demo-facebook-token"
)

// DemoHA1B is the demo account's HA1B token: md5(login@domain:domain:password).
var DemoHA1B = ha1b("opentact", "callify.io", DemoPassword)

func ha1b(login, domain, password string) string {
	sum := md5.Sum([]byte(login + "@" + domain + ":" + domain + ":" + password))
	return hex.EncodeToString(sum[:])
}

// demoProfile follows the documented 2024 payload shape, with the account
// fields newer answers and Opentact's schema add: some are modelled by the
// facade, the rest (time_zone, messaging profiles, addresses) reach
// callers in other_fields.
const demoProfile = `{
  "uuid": "0116f6d1-1280-44b2-9134-da48509ec575",
  "email": "opentact@callify.io",
  "wss_online": true,
  "role": "User",
  "created_on": "2024-01-16T14:15:48.540Z",
  "modified_on": "2024-01-16T14:15:48.540Z",
  "deleted_on": null,
  "phone_number": "+1234567890",
  "dob": "2024-01-16T14:15:48.540Z",
  "avatar": "https://google/image.png",
  "first_name": "First Name",
  "last_name": "Last Name",
  "gender": "Female",
  "account": {
    "created_on": "2024-01-16T14:15:48.540Z",
    "modified_on": "2024-01-16T14:15:48.540Z",
    "uuid": "f2cb79fb-6bf8-4484-8034-debf95aac73b",
    "email": "info@denovolab.com",
    "name": "DENOVOLAB",
    "level": "Level0",
    "deleted_on": null,
    "balance": 99.87895,
    "phone": 87015260731,
    "address1": "1 Demo Street",
    "address2": null,
    "zip_code": "10001",
    "city": "New York",
    "class4_id": 48213,
    "disabled_on": null,
    "time_zone": {"name": "America/New_York", "country_code": "US", "utc_offset": -5, "utc_dst_offset": -4},
    "messaging_profile_default": null,
    "messaging_profiles": [],
    "addresses": [{"name": "office", "is_billing": true, "city": "New York", "country": {"a2": "US", "n": 840}}]
  }
}`

// Account is one user the sandbox knows, as written in an accounts file.
// Every credential is optional; Profile is served as the payload, with a
// fresh JWT as its "token", and must hold a "uuid" and an "email".
type Account struct {
	Password      string          `json:"password"`       // for Authorization: Basic base64(email:password)
	APITokens     []string        `json:"api_tokens"`     // for Authorization: Bearer <token> (or the bare token)
	GoogleToken   string          `json:"google_token"`   // for X-Auth-Google-Token
	FacebookToken string          `json:"facebook_token"` // for X-Auth-Facebook-Token
	HA1B          string          `json:"ha1b"`           // for X-Auth-HA1B-Token
	Profile       json.RawMessage `json:"profile"`
}

// Demo is the documented demo account.
func Demo() Account {
	return Account{
		Password:      DemoPassword,
		APITokens:     []string{DemoAPIToken},
		GoogleToken:   DemoGoogleToken,
		FacebookToken: DemoFacebookToken,
		HA1B:          DemoHA1B,
		Profile:       json.RawMessage(demoProfile),
	}
}

// LoadAccounts reads an accounts file: a JSON array of Account.
func LoadAccounts(path string) ([]Account, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var accounts []Account
	if err := json.Unmarshal(b, &accounts); err != nil {
		return nil, fmt.Errorf("accounts file %s: %w", path, err)
	}
	if accounts == nil {
		return nil, fmt.Errorf("accounts file %s: want a JSON array of accounts", path)
	}
	return accounts, nil
}

// Options configures a Sandbox.
type Options struct {
	Accounts []Account        // the accounts it knows; Demo() is always added
	Secret   []byte           // HMAC-SHA256 key for its JWTs; random when empty
	TokenTTL time.Duration    // lifetime of an issued JWT; 24h when 0
	Now      func() time.Time // the clock, for JWTs, tokens and records; time.Now when nil
	Logger   *slog.Logger     // nil discards logs
	// Calls are the declared calls to serve besides auth and tokens; nil
	// serves those of the facade's services (service.Services).
	Calls []*declare.Call
	// Fixtures holds the data of read-only collections, a JSON file per
	// collection path (rest/dict/tz.json); nil uses the embedded
	// internal/sandbox/fixtures.
	Fixtures fs.FS
	// EventQueue is how many frames an events socket may have waiting
	// before it is dropped as too slow; DefaultEventQueue when 0.
	EventQueue int
	// InboundSMSEvery, when positive, has every account that leases a
	// number receive an SMS on it at this interval of the clock.
	InboundSMSEvery time.Duration
}

// Sandbox serves auth, tokens and the declared calls, and events over a
// WebSocket. It is an http.Handler, safe for concurrent use. Close ends
// its sockets and timers.
type Sandbox struct {
	secret []byte
	ttl    time.Duration
	now    func() time.Time
	log    *slog.Logger

	byEmail    map[string]*user
	byUUID     map[string]*user
	byAPIToken map[string]*user
	byGoogle   map[string]*user
	byFacebook map[string]*user
	byHA1B     map[string]*user
	accts      map[string]*acct // by user.account

	routes []route // the hand-written ones first, then the declared calls'

	// The state that changes after New.
	tokens  *tokenStore
	records *recordStore
	telco   *telco
	// profiles is the collection of messaging profiles, which an SMS
	// subscription needs; nil when no declared call serves it.
	profiles *collection
	// colls are the generic collections, by path (each parameter as {}),
	// for the hand-written routes that read them.
	colls map[string]*collection
	// events are the event sockets; sched emits the events due later.
	events *hub
	sched  *scheduler
}

type user struct {
	uuid     string
	password string
	// profile is the payload object without its "token" and without the
	// closing brace, ready to have a token appended, as it was given;
	// fields are its members.
	profile []byte
	fields  map[string]json.RawMessage
	// account names the records the user sees: those of its profile's
	// account (users of one account share them), or its own.
	account string
	// accountJSON is the profile's "account" object, if it has one.
	accountJSON json.RawMessage
	// acct is the account's balance, numbers and messages.
	acct *acct
}

// New returns a Sandbox knowing opts.Accounts and the demo account. It
// fails when a declared call can be served neither by a hand-written
// route nor generically, naming the call and what it lacks.
func New(opts Options) (*Sandbox, error) {
	s := &Sandbox{
		secret:     opts.Secret,
		ttl:        opts.TokenTTL,
		now:        opts.Now,
		log:        opts.Logger,
		byEmail:    map[string]*user{},
		byUUID:     map[string]*user{},
		byAPIToken: map[string]*user{},
		byGoogle:   map[string]*user{},
		byFacebook: map[string]*user{},
		byHA1B:     map[string]*user{},
		accts:      map[string]*acct{},
		tokens:     newTokenStore(),
		records:    newRecordStore(),
		telco:      newTelco(),
	}
	if len(s.secret) == 0 {
		s.secret = make([]byte, 32)
		_, _ = rand.Read(s.secret)
	}
	if s.ttl <= 0 {
		s.ttl = 24 * time.Hour
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for i, a := range append([]Account{Demo()}, opts.Accounts...) {
		if err := s.add(a); err != nil {
			return nil, fmt.Errorf("account %d: %w", i, err)
		}
	}
	calls := opts.Calls
	if calls == nil {
		var err error
		if calls, err = declare.Declared(service.Services); err != nil {
			return nil, err
		}
	}
	fixtures := opts.Fixtures
	if fixtures == nil {
		fixtures = embeddedFixtures()
	}
	generic, colls, err := plan(calls, fixtures)
	if err != nil {
		return nil, err
	}
	s.routes = append(slices.Clip(handWritten), generic...)
	s.profiles, s.colls = colls["/rest/profile/messaging"], colls
	s.events = newHub(opts.EventQueue)
	s.sched = newScheduler(s.now)
	if opts.InboundSMSEvery > 0 {
		s.inboundEvery(opts.InboundSMSEvery)
	}
	return s, nil
}

func (s *Sandbox) add(a Account) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(a.Profile, &fields); err != nil || fields == nil {
		return errors.New("profile must be a JSON object")
	}
	var id, email string
	if json.Unmarshal(fields["uuid"], &id) != nil || id == "" {
		return errors.New(`profile needs a "uuid" string`)
	}
	if json.Unmarshal(fields["email"], &email) != nil || email == "" {
		return errors.New(`profile needs an "email" string`)
	}
	if s.byUUID[id] != nil {
		return fmt.Errorf("uuid %s is used twice", id)
	}
	if s.byEmail[strings.ToLower(email)] != nil {
		return fmt.Errorf("email %s is used twice", email)
	}
	delete(fields, "token")
	profile, err := json.Marshal(fields)
	if err != nil {
		return err
	}
	u := &user{uuid: id, password: a.Password, profile: profile[:len(profile)-1], fields: fields, account: "user " + id}
	var accountUUID string
	if acct := fields["account"]; len(acct) > 0 && acct[0] == '{' {
		u.accountJSON = acct
		var a struct {
			UUID string `json:"uuid"`
		}
		if json.Unmarshal(acct, &a) == nil && a.UUID != "" {
			u.account, accountUUID = "account "+a.UUID, a.UUID
		}
	}
	type claim struct {
		index map[string]*user
		kind  string
		token string
	}
	claims := []claim{{s.byGoogle, "google_token", a.GoogleToken}, {s.byFacebook, "facebook_token", a.FacebookToken}, {s.byHA1B, "ha1b", a.HA1B}}
	for _, t := range a.APITokens {
		claims = append(claims, claim{s.byAPIToken, "api_tokens", t})
	}
	for _, c := range claims {
		if other := c.index[c.token]; other != nil && other != u {
			return fmt.Errorf("%s of %s is already another account's", c.kind, email)
		}
		if c.token != "" {
			c.index[c.token] = u
		}
	}
	// Users of one account share its balance, as the first of them says it.
	if s.accts[u.account] == nil {
		s.accts[u.account] = newAcct(u.account, accountUUID, u.accountJSON)
	}
	u.acct = s.accts[u.account]
	s.byUUID[id] = u
	s.byEmail[strings.ToLower(email)] = u
	return nil
}

// profileJSON is the user's profile as answered now (without its token
// and closing brace): as given, but for the account's balance once it has
// changed.
func (u *user) profileJSON() []byte {
	if u.acct.balanceText.Load() == nil || u.accountJSON == nil {
		return u.profile
	}
	fields := maps.Clone(u.fields)
	fields["account"] = u.accountNow()
	b, err := json.Marshal(fields)
	if err != nil {
		return u.profile
	}
	return b[:len(b)-1]
}

// accountNow is the profile's account object as answered now: once the
// account has spent, its balance is what it has left, also in the
// profile of a user of the account whose profile said none.
func (u *user) accountNow() json.RawMessage {
	text := u.acct.balanceText.Load()
	if text == nil || u.accountJSON == nil {
		return u.accountJSON
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(u.accountJSON, &fields) != nil {
		return u.accountJSON
	}
	fields["balance"] = json.RawMessage(*text)
	b, err := json.Marshal(fields)
	if err != nil {
		return u.accountJSON
	}
	return b
}
