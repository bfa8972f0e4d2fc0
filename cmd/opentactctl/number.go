package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	numberv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/number/v1"
)

const numberUsage = `Usage: opentactctl number search|order|list|release [flags]

Finds, buys, lists and gives back phone numbers through
opentact.number.v1.NumberService. A number is its digits, such as
12029822917; a leading + is allowed.

  search [--pattern P] [--province XX] [--city C] ... [--plain]
                      numbers that can be ordered, a page at a time
  order NUMBER... [--features voice,sms] [--autorenew] [--request-id ID]
                      buys the numbers, charging the account's balance
  list [--take N] [--skip N] [--tn NUMBER]
                      the numbers the account holds (their leases)
  release LEASE|NUMBER --yes
                      gives a number back

The other calls of NumberService (orders, one lease, a lease's features) are
made with opentactctl call NumberService/<Method>: opentactctl methods lists
them. Run opentactctl number COMMAND -h for its flags.
`

const numberSearchUsage = `Usage: opentactctl number search [filters] [--page N] [--size N] [--plain] [flags]

Calls opentact.number.v1.NumberService/SearchNumbers through opentact-facade:
the numbers that can be ordered and match every filter given (with none, any
number), a page at a time: --page from 1, --size 1 to 100 (Opentact's
defaults: 1 and 10). --pattern takes digits and wildcards: * any run of
digits, % one digit.

Prints the page as JSON (take, skip, total, data: the numbers, with their
profiles and prices). With --plain, the numbers alone instead, one a line as
digits, for scripts:
  opentactctl number search --province NY --size 1 --plain

` + credentialsHelp + `
Flags:
`

const numberOrderUsage = `Usage: opentactctl number order NUMBER... [--features LIST] [--autorenew] [--request-id ID] [flags]

Calls opentact.number.v1.NumberService/OrderNumbers through opentact-facade:
buys every NUMBER (digits, a leading + allowed), charging the account's
balance (FailedPrecondition, INSUFFICIENT_BALANCE, when it is short). Each
gets the features of --features, a comma list of voice, sms, fax, mms and
emergency (default voice,sms). With --autorenew the leases renew themselves;
without it they end when they expire, and nothing more is charged.
Prints the order as JSON.

An order spends money, so it is never made twice by mistake. Every order
carries a request id: the one given with --request-id, or a new one, printed
on standard error before the call. To retry (after a timeout, say), run the
same command again with --request-id and that id: the facade answers with
the first call's order rather than ordering again, for 24 hours (each replica
of the facade keeps its own ids), and refuses (FailedPrecondition) the same
id with other numbers or features.
  opentactctl number order 12029822917 --request-id order-2029822917

` + credentialsHelp + `
Flags:
`

const numberListUsage = `Usage: opentactctl number list [--take N] [--skip N] [--tn NUMBER] [flags]

Calls opentact.number.v1.NumberService/ListLeases through opentact-facade:
the numbers the account holds (their leases: features, messaging profile,
expiry), a page at a time: --take at most 1000, --skip the leases before the
page. --tn keeps one number, or those matching a mask. Prints the page as
JSON (take, skip, total, data).

` + credentialsHelp + `
Flags:
`

const numberReleaseUsage = `Usage: opentactctl number release LEASE|NUMBER --yes [flags]

Calls opentact.number.v1.NumberService/ReleaseNumber through opentact-facade:
gives a number back to Opentact. The account no longer holds it, its calls
and messages stop, and anyone may buy it. LEASE is the lease's uuid (as
number list prints it), NUMBER the number's digits (a leading + allowed).
--yes is required, to confirm. Prints the released lease as JSON.

` + credentialsHelp + `
Flags:
`

// defaultFeatures are the features of an order without --features.
const defaultFeatures = "voice,sms"

// numberDigits is the number s stands for, without its leading +: false
// when s is not digits. The length is the facade's to check.
func numberDigits(s string) (string, bool) {
	d := strings.TrimPrefix(s, "+")
	if d == "" || strings.Trim(d, "0123456789") != "" {
		return "", false
	}
	return d, true
}

// requestID is the --request-id flag of a write Opentact must not get
// twice: the caller's, or a new one.
type requestID struct{ given stringFlag }

func (r *requestID) define(c *command, what string) {
	c.fs.Var(&r.given, "request-id", "the `ID` that makes a retry of this "+what+" safe, 1 to 64 characters (default: a new one, printed on standard error)")
}

// check refuses an empty --request-id. The length is the facade's to
// check.
func (r *requestID) check(c *command) (int, bool) {
	if r.given.v != nil && *r.given.v == "" {
		return c.fail(exitUsage, "--request-id is empty: give 1 to 64 characters, or leave it out for a new one"), true
	}
	return exitOK, false
}

// value is the id to send. A new one is printed on standard error before
// the call, so that it is known even when the call times out.
func (r *requestID) value(c *command, retry string) *string {
	if r.given.v != nil {
		return r.given.v
	}
	id := rand.Text()
	fmt.Fprintf(c.stderr, "request id %s: to retry without %s twice, run the same command with --request-id %s\n", id, retry, id)
	return &id
}

// orderFeatures are the features an order item may ask for, as the proto
// declares them.
func orderFeatures() []string {
	fd := (&numberv1.OrderItem{}).ProtoReflect().Descriptor().Fields().ByName("features")
	rules, _ := proto.GetExtension(fd.Options(), validate.E_Field).(*validate.FieldRules)
	return rules.GetRepeated().GetItems().GetString().GetIn()
}

// features reads --features: a comma list of known features, at least
// one. Its error is a usage error.
func features(list string) ([]string, error) {
	known := orderFeatures()
	var out []string
	for f := range strings.SplitSeq(list, ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		switch {
		case f == "":
			return nil, fmt.Errorf("--features has an empty item: give a comma list of %s", strings.Join(known, ", "))
		case len(known) > 0 && !slices.Contains(known, f):
			return nil, fmt.Errorf("--features: unknown feature %q: want %s", f, strings.Join(known, ", "))
		case !slices.Contains(out, f):
			out = append(out, f)
		}
	}
	return out, nil
}

// printPage prints a page of a search as print does, with "data": [] when
// the page is empty: protojson leaves an empty list out, and a script
// reading .data gets an empty array rather than nothing.
func (c *command) printPage(resp proto.Message) int {
	m := resp.ProtoReflect()
	fd := m.Descriptor().Fields().ByName("data")
	if fd == nil || !fd.IsList() || m.Get(fd).List().Len() > 0 {
		return c.print(resp)
	}
	raw, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(resp)
	var compact, out bytes.Buffer
	if err == nil {
		err = json.Compact(&compact, raw)
	}
	if err != nil {
		return c.fail(exitFailed, "printing the answer: %v", err)
	}
	b := bytes.TrimSuffix(compact.Bytes(), []byte("}"))
	if len(b) > 1 {
		b = append(b, ',')
	}
	b = append(b, `"data":[]}`...)
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return c.fail(exitFailed, "printing the answer: %v", err)
	}
	fmt.Fprintln(c.stdout, out.String())
	return exitOK
}

func runNumberSearch(ctx context.Context, c *command, args []string) int {
	var pattern, rateCenter, city, province, postalCode, profile stringFlag
	page := int32Flag{unit: "pages"}
	size := int32Flag{unit: "numbers"}
	c.fs.Var(&pattern, "pattern", "digits with wildcards, `P`: * any run of digits, % one digit")
	c.fs.Var(&rateCenter, "rate-center", "a rate center, such as WSHNGTNZN1")
	c.fs.Var(&city, "city", "a city")
	c.fs.Var(&province, "province", "a state or province, two letters, such as NY")
	c.fs.Var(&postalCode, "postal-code", "a postal code")
	abcSearch := c.fs.Bool("abc-search", false, "alphabetic (vanity) search: the letters of --pattern stand for digits")
	c.fs.Var(&profile, "profile", "a number profile's name, such as US")
	c.fs.Var(&page, "page", "the page, from 1 (default: Opentact's, 1)")
	c.fs.Var(&size, "size", "the page's size, 1 to 100 (default: Opentact's, 10)")
	plain := c.fs.Bool("plain", false, "print the numbers alone, one a line, instead of the JSON answer")
	if code, done := c.parse(args); done {
		return code
	}
	if code, done := c.noArgs(); done {
		return code
	}
	req := &numberv1.SearchNumbersRequest{
		Page: page.v, Size: size.v,
		Pattern: pattern.v, RateCenter: rateCenter.v, City: city.v, Province: province.v,
		PostalCode: postalCode.v, Profile: profile.v,
	}
	if c.visited("abc-search") {
		req.AbcSearch = abcSearch
	}
	conn, code, done := c.dial()
	if done {
		return code
	}
	defer conn.Close()

	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := numberv1.NewNumberServiceClient(conn).SearchNumbers(ctx, req)
	if err != nil {
		return c.callFailed(err)
	}
	if *plain {
		for _, n := range resp.GetData() {
			if n.GetTn() != "" {
				fmt.Fprintln(c.stdout, n.GetTn())
			}
		}
		return exitOK
	}
	return c.printPage(resp)
}

func runNumberOrder(ctx context.Context, c *command, args []string) int {
	featureList := c.fs.String("features", defaultFeatures, "the features of every number, a comma `LIST` of voice, sms, fax, mms and emergency")
	autorenew := c.fs.Bool("autorenew", false, "leases that renew themselves (default: they end when they expire)")
	var rid requestID
	rid.define(c, "order")
	numbers, code, done := c.parseArgs(args)
	if done {
		return code
	}
	if len(numbers) == 0 {
		return c.fail(exitUsage, "give the numbers to order, as digits: opentactctl number search finds them")
	}
	if code, done := rid.check(c); done {
		return code
	}
	feats, err := features(*featureList)
	if err != nil {
		return c.fail(exitUsage, "%v", err)
	}
	req := &numberv1.OrderNumbersRequest{}
	for i, n := range numbers {
		tn, ok := numberDigits(n)
		if !ok {
			// By position: a stray argument may be a secret.
			return c.fail(exitUsage, "argument %d is not a number: give each number as digits, a leading + allowed", i+1)
		}
		req.Items = append(req.Items, &numberv1.OrderItem{Tn: &tn, Features: feats, Autorenew: autorenew})
	}
	conn, code, done := c.dial()
	if done {
		return code
	}
	defer conn.Close()
	req.RequestId = rid.value(c, "ordering")

	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := numberv1.NewNumberServiceClient(conn).OrderNumbers(ctx, req)
	if err != nil {
		return c.callFailed(err)
	}
	return c.print(resp)
}

func runNumberList(ctx context.Context, c *command, args []string) int {
	take := int32Flag{unit: "leases"}
	skip := int32Flag{unit: "leases"}
	var tn stringFlag
	c.fs.Var(&take, "take", "the page's size, at most 1000 (default: Opentact's)")
	c.fs.Var(&skip, "skip", "the leases before the page")
	c.fs.Var(&tn, "tn", "only this `NUMBER`, or the numbers matching this mask")
	if code, done := c.parse(args); done {
		return code
	}
	if code, done := c.noArgs(); done {
		return code
	}
	req := &numberv1.ListLeasesRequest{Take: take.v, Skip: skip.v, Tn: tn.v}
	if tn.v != nil {
		// A mask is the facade's and Opentact's to read; only a whole
		// number loses its +, as everywhere in the API.
		if d, ok := numberDigits(*tn.v); ok {
			req.Tn = &d
		}
	}
	conn, code, done := c.dial()
	if done {
		return code
	}
	defer conn.Close()

	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := numberv1.NewNumberServiceClient(conn).ListLeases(ctx, req)
	if err != nil {
		return c.callFailed(err)
	}
	return c.printPage(resp)
}

func runNumberRelease(ctx context.Context, c *command, args []string) int {
	yes := c.fs.Bool("yes", false, "confirm: give the number back")
	pos, code, done := c.parseArgs(args)
	if done {
		return code
	}
	switch {
	case len(pos) == 0:
		return c.fail(exitUsage, "give the lease's uuid (as number list prints it) or the number to release")
	case len(pos) > 1:
		return c.fail(exitUsage, "number release takes one lease or number; give them one at a time")
	}
	target := pos[0]
	if !isUUID(target) {
		d, ok := numberDigits(target)
		if !ok {
			// Not echoed: it may be a secret.
			return c.fail(exitUsage, "the argument is neither a lease's uuid nor a number: give the uuid, as number list prints it, or the number's digits")
		}
		target = d
	}
	if !*yes {
		return c.fail(exitUsage, "number release gives the number back: the account loses it and anyone may buy it; give --yes to confirm")
	}
	conn, code, done := c.dial()
	if done {
		return code
	}
	defer conn.Close()

	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := numberv1.NewNumberServiceClient(conn).ReleaseNumber(ctx, &numberv1.ReleaseNumberRequest{Uuid: target})
	if err != nil {
		return c.callFailed(err)
	}
	return c.print(resp)
}
