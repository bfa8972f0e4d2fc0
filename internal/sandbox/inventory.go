package sandbox

import (
	"cmp"
	"encoding/json"
	"math/big"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// tnProfile is a number profile: the country of its numbers and their
// prices. An order charges nrc per number; an SMS sent, smsSend.
type tnProfile struct {
	uuid, name, description string
	tollFree                bool
	country                 json.RawMessage
	nrc, mrc                string // decimal text, as answered
	smsSend, smsReceive     string
	price, smsPrice         *big.Rat
}

// tnProfileJSON is a TN profile as Opentact sends it inside a number.
type tnProfileJSON struct {
	UUID              string          `json:"uuid"`
	Name              string          `json:"name"`
	Description       string          `json:"description"`
	IsActive          bool            `json:"is_active"`
	TollFree          bool            `json:"toll_free"`
	Country           json.RawMessage `json:"country"`
	NRC               json.Number     `json:"nrc"`
	MRC               json.Number     `json:"mrc"`
	SMSPerSendCost    json.Number     `json:"sms_per_send_cost"`
	SMSPerReceiveCost json.Number     `json:"sms_per_receive_cost"`
	CreatedOn         string          `json:"created_on"`
	ModifiedOn        string          `json:"modified_on"`
}

func (p *tnProfile) view() tnProfileJSON {
	at := inventoryEpoch.Format(timeLayout)
	return tnProfileJSON{
		UUID: p.uuid, Name: p.name, Description: p.description, IsActive: true, TollFree: p.tollFree,
		Country: p.country, NRC: json.Number(p.nrc), MRC: json.Number(p.mrc),
		SMSPerSendCost: json.Number(p.smsSend), SMSPerReceiveCost: json.Number(p.smsReceive),
		CreatedOn: at, ModifiedOn: at,
	}
}

func newTNProfile(uuid, name, description string, tollFree bool, country, nrc, smsCost string) *tnProfile {
	return &tnProfile{
		uuid: uuid, name: name, description: description, tollFree: tollFree, country: json.RawMessage(country),
		nrc: nrc, mrc: nrc, smsSend: smsCost, smsReceive: smsCost,
		price: mustMoney(nrc), smsPrice: mustMoney(smsCost),
	}
}

const (
	countryUS = `{"name":"United States","a2":"US","a3":"USA","n":840,"country_code":1,"national_code":1}`
	countryCA = `{"name":"Canada","a2":"CA","a3":"CAN","n":124,"country_code":1,"national_code":1}`
)

// The number profiles of the inventory, and their prices.
var (
	profileUS       = newTNProfile("6f2b1d7e-3c4a-4e5f-8a9b-0c1d2e3f4a01", "US", "United States local numbers", false, countryUS, "1.00", "0.004")
	profileCA       = newTNProfile("6f2b1d7e-3c4a-4e5f-8a9b-0c1d2e3f4a02", "CA", "Canada local numbers", false, countryCA, "1.25", "0.0055")
	profileTollFree = newTNProfile("6f2b1d7e-3c4a-4e5f-8a9b-0c1d2e3f4a03", "US Toll-Free", "United States toll-free numbers", true, countryUS, "2.00", "0.0125")
	tnProfiles      = []*tnProfile{profileUS, profileCA, profileTollFree}
)

// area is where local numbers are: a rate center, its city and state or
// province, the area code and exchanges its numbers have, and the postal
// codes they are given.
type area struct {
	province, city, rateCenter string
	npa                        string
	exchanges, postalCodes     []string
	profile                    *tnProfile
}

var areas = []area{
	{"DC", "Washington", "WSHNGTNZN1", "202", []string{"982", "223", "347"}, []string{"20001", "20005", "20009"}, profileUS},
	{"NY", "New York", "NWYRCYZN01", "212", []string{"226", "431", "608"}, []string{"10001", "10013", "10027"}, profileUS},
	{"NY", "Buffalo", "BUFFALO", "716", []string{"362", "548", "853"}, []string{"14201", "14202", "14209"}, profileUS},
	{"CA", "Los Angeles", "LSANCA01", "213", []string{"384", "623", "947"}, []string{"90012", "90017", "90071"}, profileUS},
	{"CA", "San Francisco", "SNFCCA01", "415", []string{"291", "554", "796"}, []string{"94103", "94105", "94110"}, profileUS},
	{"IL", "Chicago", "CHCGOZN1", "312", []string{"236", "578", "919"}, []string{"60601", "60606", "60611"}, profileUS},
	{"TX", "Austin", "AUSTIN", "512", []string{"236", "474", "851"}, []string{"78701", "78702", "78704"}, profileUS},
	{"TX", "Houston", "HOUSTON", "713", []string{"222", "529", "864"}, []string{"77002", "77003", "77010"}, profileUS},
	{"FL", "Miami", "MIAMI", "305", []string{"358", "579", "921"}, []string{"33128", "33130", "33131"}, profileUS},
	{"WA", "Seattle", "SEATTLE", "206", []string{"340", "622", "957"}, []string{"98101", "98104", "98121"}, profileUS},
	{"ON", "Toronto", "TORONTO", "416", []string{"214", "597", "861"}, []string{"M5H 2N2", "M5V 3L9", "M4W 1A8"}, profileCA},
	{"QC", "Montreal", "MONTREAL", "514", []string{"288", "395", "861"}, []string{"H2Y 1C6", "H3B 2Y5", "H2X 3Y8"}, profileCA},
	{"BC", "Vancouver", "VANCOUVER", "604", []string{"273", "681", "899"}, []string{"V6B 1A1", "V6C 3L6", "V6E 4M2"}, profileCA},
}

const (
	// numbersPerArea and tollFreeNumbers size the inventory: 13 areas of
	// 22 numbers, and 20 toll-free ones.
	numbersPerArea  = 22
	tollFreeNumbers = 20
	// DocsNumber is the number of Opentact's documented order example;
	// the inventory always has it (in Washington, DC).
	DocsNumber = 12029822917
)

var tollFreeNPAs = []string{"800", "833", "844", "855", "866", "877", "888"}

// inventoryEpoch is when the inventory's numbers were made.
var inventoryEpoch = time.Date(2024, 1, 16, 14, 15, 48, 540e6, time.UTC)

// number is a number of the inventory. lease is the lease holding it, nil
// while anyone can order it; it and modified change under telco.mu.
type number struct {
	tn         int64
	digits     string
	kind       string // "long_code" or "toll_free"
	area       *area  // nil for a toll-free number
	postalCode string
	profile    *tnProfile
	class4     int64
	modified   time.Time
	lease      *lease
}

// newInventory makes the numbers every sandbox starts with, the same each
// time (a fixed seed), in ascending order.
func newInventory() []*number {
	src := rand.NewPCG(28, 2026)
	pick := func(n int) int { return int(src.Uint64() % uint64(n)) }
	seen := map[int64]bool{}
	var out []*number
	add := func(digits, kind string, a *area, postal string, p *tnProfile) bool {
		tn, _ := strconv.ParseInt(digits, 10, 64)
		if seen[tn] {
			return false
		}
		seen[tn] = true
		out = append(out, &number{tn: tn, digits: digits, kind: kind, area: a, postalCode: postal, profile: p, modified: inventoryEpoch})
		return true
	}
	for i := range areas {
		a := &areas[i]
		n := 0
		if a.npa == "202" && add(strconv.Itoa(DocsNumber), "long_code", a, a.postalCodes[0], a.profile) {
			n++
		}
		for n < numbersPerArea {
			digits := "1" + a.npa + a.exchanges[pick(len(a.exchanges))] + fmt4(pick(10000))
			if add(digits, "long_code", a, a.postalCodes[pick(len(a.postalCodes))], a.profile) {
				n++
			}
		}
	}
	for n := 0; n < tollFreeNumbers; {
		digits := "1" + tollFreeNPAs[pick(len(tollFreeNPAs))] + strconv.Itoa(200+pick(800)) + fmt4(pick(10000))
		if add(digits, "toll_free", nil, "", profileTollFree) {
			n++
		}
	}
	slices.SortFunc(out, func(a, b *number) int { return cmp.Compare(a.tn, b.tn) })
	for i, n := range out {
		n.class4 = 700001 + int64(i)
	}
	return out
}

func fmt4(n int) string {
	s := strconv.Itoa(n)
	return strings.Repeat("0", 4-len(s)) + s
}

// numberJSON is a number (Opentact's TN) as it answers one: tn a JSON
// number, and the place a search filters by under the search's keys.
type numberJSON struct {
	TN          int64          `json:"tn"`
	Class4DIDID int64          `json:"class4_did_id"`
	Registered  bool           `json:"registered"`
	Type        string         `json:"type"`
	SMS         bool           `json:"sms"`
	RateCenter  *string        `json:"rateCenter"`
	City        *string        `json:"city"`
	Province    *string        `json:"province"`
	PostalCode  *string        `json:"postalCode"`
	Profile     *tnProfileJSON `json:"profile"`
	CreatedOn   string         `json:"created_on"`
	ModifiedOn  string         `json:"modified_on"`
	DeletedOn   *string        `json:"deleted_on"`
}

// view is n as answered, taken under telco.mu.
func (n *number) view() numberJSON {
	p := n.profile.view()
	v := numberJSON{
		TN: n.tn, Class4DIDID: n.class4, Registered: n.lease != nil, Type: n.kind, SMS: true, Profile: &p,
		CreatedOn: inventoryEpoch.Format(timeLayout), ModifiedOn: n.modified.UTC().Format(timeLayout),
	}
	if a := n.area; a != nil {
		v.RateCenter, v.City, v.Province, v.PostalCode = &a.rateCenter, &a.city, &a.province, &n.postalCode
	}
	return v
}

// briefNumberJSON is a number as an SMS names it.
type briefNumberJSON struct {
	TN         int64   `json:"tn"`
	CreatedOn  string  `json:"created_on"`
	ModifiedOn string  `json:"modified_on"`
	DeletedOn  *string `json:"deleted_on"`
}

func (n *number) brief() briefNumberJSON {
	return briefNumberJSON{TN: n.tn, CreatedOn: inventoryEpoch.Format(timeLayout), ModifiedOn: n.modified.UTC().Format(timeLayout)}
}

// keypad is the digit of each letter on a phone's keypad, for a vanity
// (abcSearch) pattern.
const keypad = "22233344455566677778889999"

// numberPattern reads a search's pattern: digits, * (any run of digits)
// and %, one digit; with abc, letters stand for their keypad digits.
func numberPattern(pattern string, abc bool) (string, bool) {
	out := []byte(pattern)
	for i, c := range out {
		switch {
		case c >= '0' && c <= '9', c == '*', c == '%':
		case abc && c >= 'a' && c <= 'z':
			out[i] = keypad[c-'a']
		case abc && c >= 'A' && c <= 'Z':
			out[i] = keypad[c-'A']
		default:
			return "", false
		}
	}
	return string(out), len(out) > 0 && len(out) <= 15
}

// matchesPattern reports whether pattern matches the number's digits
// whole, or its ten national digits (without the country code 1): a
// pattern of Opentact's is ten digits with wildcards.
func (n *number) matchesPattern(pattern string) bool {
	return matchMask(pattern, n.digits) || matchMask(pattern, strings.TrimPrefix(n.digits, "1"))
}
