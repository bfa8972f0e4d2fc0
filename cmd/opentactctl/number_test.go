package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	messagingv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/messaging/v1"
	numberv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/number/v1"
)

const (
	tn1        = "12029822917"
	tn2        = "12029822918"
	recipient  = "12025550123"
	unknownTN  = "12025550000" // no lease of the account's: Opentact's 404
	leaseUUID  = "5a0c7f3e-8b1d-4c2e-9f6a-1b2c3d4e5f60"
	orderUUID  = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	smsUUID    = "0d8a4b1e-3c2f-4e5d-8a7b-6c5d4e3f2a10"
	smsiUUID   = "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
	nowhere    = "Nowhere" // a city without numbers
	smsCreated = `{"uuid":"` + smsUUID + `","type":"smso","state":"created","from":` + tn1 + `,"to":` + recipient + `,"message":%s,"thread":"3f2b1a0c-9d8e-4f7a-b6c5-d4e3f2a1b0c9","delivered":false,"automated":false,"tn":{"tn":` + tn1 + `,"created_on":"2024-05-01T10:00:00.000Z"},"created_on":"2024-05-02T09:30:00.000Z","modified_on":"2024-05-02T09:30:00.000Z"}`
)

// numberJSON is a number as Opentact's search answers it.
func numberJSON(tn string) string {
	return `{"tn":` + tn + `,"type":"long_code","sms":true,"registered":true,"profile":{"name":"US","nrc":0.5,"mrc":1},"created_on":"2024-01-15T08:00:00.000Z"}`
}

const leaseJSON = `{"uuid":"` + leaseUUID + `","tn":{"tn":` + tn1 + `,"created_on":"2024-01-15T08:00:00.000Z","modified_on":"2024-05-01T10:00:00.000Z","deleted_on":null},"expired_on":"2024-06-01T10:00:00.000Z","autorenew":false,"subscriptions":[],"created_on":"2024-05-01T10:00:00.000Z","modified_on":"2024-05-01T10:00:00.000Z"}`

const orderJSON = `{"uuid":"` + orderUUID + `","state":"success","total":1,"success":1,"processing":0,"failed":0,"created_on":"2024-05-01T10:00:00.000Z","modified_on":"2024-05-01T10:00:01.000Z"}`

// page is a page of Opentact's search with the items given.
func page(items ...string) string {
	return fmt.Sprintf(`{"take":10,"skip":0,"total":%d,"data":[%s]}`, len(items), strings.Join(items, ","))
}

// numberAnswer is the fake Opentact's answer to the number and SMS calls,
// as Opentact's docs give them: false for another call.
func numberAnswer(method, path, body string) (int, string, bool) {
	ok := func(payload string) (int, string, bool) {
		return http.StatusOK, `{"success":true,"payload":` + payload + `}`, true
	}
	notFound := func(msg string) (int, string, bool) {
		return http.StatusNotFound, `{"success":false,"message":` + quote(msg) + `,"status":404}`, true
	}
	switch {
	case method == http.MethodPost && path == "/rest/tn/search":
		if strings.Contains(body, nowhere) {
			return ok(page())
		}
		return ok(page(numberJSON(tn1), numberJSON(tn2)))
	case method == http.MethodPost && path == "/rest/order":
		return ok(orderJSON)
	case method == http.MethodPost && path == "/rest/lease/tn/search":
		return ok(page(leaseJSON))
	case method == http.MethodDelete && strings.HasPrefix(path, "/rest/lease/tn/") && strings.Count(path, "/") == 4:
		if strings.HasSuffix(path, "/"+unknownTN) {
			return notFound("TNLease not found")
		}
		return ok(leaseJSON)
	case method == http.MethodPost && path == "/rest/sms":
		var req struct {
			From    json.Number `json:"from"`
			Message string      `json:"message"`
		}
		_ = json.Unmarshal([]byte(body), &req)
		if req.From.String() == unknownTN {
			// Echoing the text, as an Opentact that quotes the request
			// might: the command must not print it.
			return notFound("TNLease not found: cannot send " + req.Message)
		}
		return ok(fmt.Sprintf(smsCreated, quote(req.Message)))
	case method == http.MethodGet && path == "/rest/sms/outbound/"+smsUUID:
		return ok(strings.Replace(strings.Replace(fmt.Sprintf(smsCreated, `"Hello, Anna!"`), `"created"`, `"sent"`, 1), `"delivered":false`, `"delivered":true`, 1))
	case method == http.MethodGet && strings.HasPrefix(path, "/rest/sms/outbound/"):
		return notFound("SMS not found")
	case method == http.MethodGet && path == "/rest/sms/inbound/"+smsiUUID:
		return ok(`{"uuid":"` + smsiUUID + `","type":"smsi","state":"success","from":` + recipient + `,"to":` + tn1 + `,"message":"Thanks!","readed":false,"created_on":"2024-05-02T09:31:00.000Z"}`)
	case method == http.MethodPost && path == "/rest/sms/search":
		return ok(page(`{"uuid":"`+smsUUID+`","type":"sms","state":"sent","from":`+tn1+`,"to":`+recipient+`,"message":"Hello, Anna!","delivered":true,"created_on":"2024-05-02T09:30:00.000Z"}`,
			`{"uuid":"`+smsiUUID+`","type":"smsi","state":"success","from":`+recipient+`,"to":`+tn1+`,"message":"Thanks!","readed":false,"created_on":"2024-05-02T09:31:00.000Z"}`))
	case method == http.MethodPost && path == "/rest/sms/search/outbound":
		return ok(page(fmt.Sprintf(smsCreated, `"Hello, Anna!"`)))
	case method == http.MethodPost && path == "/rest/sms/search/inbound":
		return ok(page())
	}
	return 0, "", false
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// ctlArgs is a command against o with Basic credentials (the password in
// fakeEnv): group and sub, then extra after the flags.
func (o *opentact) ctlArgs(group, sub string, extra ...string) []string {
	return append([]string{group, sub, "--plaintext", "--addr", o.addr, "--email", fakeEmail}, extra...)
}

var fakeBasic = "Basic " + base64.StdEncoding.EncodeToString([]byte(fakeEmail+":"+fakePassword))

// requestTest is one run of a command that makes one call: what Opentact
// must receive, and what stdout must hold.
type requestTest struct {
	name  string
	stdin string
	args  []string
	want  seenRequest // Authorization is fakeBasic
	out   []string    // parts of stdout; one starting with "{" is the whole
}

func (tc requestTest) run(t *testing.T, o *opentact) result {
	t.Helper()
	r := cli(t, fakeEnv, tc.stdin, tc.args...)
	r.wantCode(t, exitOK)
	tc.want.Authorization = fakeBasic
	if seen := o.requests(); len(seen) != 1 || seen[0] != tc.want {
		t.Errorf("Opentact saw %+v\nwant %+v", seen, tc.want)
	}
	for _, out := range tc.out {
		if strings.HasPrefix(out, "{") {
			if r.stdout != out {
				t.Errorf("stdout\n%s\nwant\n%s", r.stdout, out)
			}
		} else if !strings.Contains(r.stdout, out) {
			t.Errorf("stdout does not hold %s:\n%s", out, r.stdout)
		}
	}
	return r
}

// TestNumberCommands: each number command sends its request, numbers as
// JSON numbers without their +, and prints the answer.
func TestNumberCommands(t *testing.T) {
	t.Parallel()
	o := startOpentact(t)
	for _, tc := range []requestTest{
		{
			name: "search with every filter",
			args: o.ctlArgs("number", "search", "--pattern", "202*982%91%", "--rate-center", "WSHNGTNZN1", "--city", "Washington",
				"--province", "DC", "--postal-code", "20001", "--abc-search", "--profile", "US", "--page", "2", "--size", "5"),
			want: seenRequest{Method: "POST", URI: "/rest/tn/search?page=2&size=5",
				Body: `{"pattern":"202*982%91%","rateCenter":"WSHNGTNZN1","city":"Washington","province":"DC","postalCode":"20001","abcSearch":true,"profile":"US"}`},
			out: []string{`"total": 2`, `"tn": "` + tn1 + `"`, `"tn": "` + tn2 + `"`, `"name": "US"`},
		},
		{
			name: "search with no filter",
			args: o.ctlArgs("number", "search"),
			want: seenRequest{Method: "POST", URI: "/rest/tn/search", Body: `{}`},
			out:  []string{`"total": 2`},
		},
		{
			name: "search --abc-search=false is sent",
			args: o.ctlArgs("number", "search", "--abc-search=false", "--pattern", "1202*"),
			want: seenRequest{Method: "POST", URI: "/rest/tn/search", Body: `{"pattern":"1202*","abcSearch":false}`},
		},
		{
			name: "search --plain",
			args: o.ctlArgs("number", "search", "--plain", "--province", "DC"),
			want: seenRequest{Method: "POST", URI: "/rest/tn/search", Body: `{"province":"DC"}`},
			out:  []string{tn1 + "\n" + tn2 + "\n"},
		},
		{
			name: "search finding nothing",
			args: o.ctlArgs("number", "search", "--city", nowhere),
			want: seenRequest{Method: "POST", URI: "/rest/tn/search", Body: `{"city":"Nowhere"}`},
			out:  []string{"{\n  \"take\": 10,\n  \"skip\": 0,\n  \"total\": 0,\n  \"data\": []\n}\n"},
		},
		{
			name: "order, the default features",
			args: o.ctlArgs("number", "order", "+"+tn1, tn2, "--request-id", "order-1"),
			want: seenRequest{Method: "POST", URI: "/rest/order",
				Body: `{"items":[{"tn":` + tn1 + `,"features":["voice","sms"],"autorenew":false},{"tn":` + tn2 + `,"features":["voice","sms"],"autorenew":false}]}`},
			out: []string{`{
  "order": {
    "uuid": "` + orderUUID + `",
    "state": "success",
    "total": 1,
    "success": 1,
    "processing": 0,
    "failed": 0,
    "created_on": "2024-05-01T10:00:00Z",
    "modified_on": "2024-05-01T10:00:01Z"
  }
}
`},
		},
		{
			name: "order with --features and --autorenew, numbers after the flags",
			args: append(o.ctlArgs("number", "order", "--features", " SMS, fax,sms", "--autorenew", "--request-id", "order-2"), tn1),
			want: seenRequest{Method: "POST", URI: "/rest/order", Body: `{"items":[{"tn":` + tn1 + `,"features":["sms","fax"],"autorenew":true}]}`},
			out:  []string{`"state": "success"`},
		},
		{
			name: "list",
			args: o.ctlArgs("number", "list", "--take", "20", "--skip", "40", "--tn", "+"+tn1),
			want: seenRequest{Method: "POST", URI: "/rest/lease/tn/search?skip=40&take=20", Body: `{"tn":"` + tn1 + `"}`},
			out:  []string{`"uuid": "` + leaseUUID + `"`, `"total": 1`},
		},
		{
			name: "list with a mask",
			args: o.ctlArgs("number", "list", "--tn", "1202*"),
			want: seenRequest{Method: "POST", URI: "/rest/lease/tn/search", Body: `{"tn":"1202*"}`},
		},
		{
			name: "release by lease",
			args: o.ctlArgs("number", "release", leaseUUID, "--yes"),
			want: seenRequest{Method: "DELETE", URI: "/rest/lease/tn/" + leaseUUID},
			out:  []string{`"uuid": "` + leaseUUID + `"`, `"expired_on": "2024-06-01T10:00:00Z"`},
		},
		{
			name: "release by number",
			args: o.ctlArgs("number", "release", "--yes", "+"+tn1),
			want: seenRequest{Method: "DELETE", URI: "/rest/lease/tn/" + tn1},
			out:  []string{`"lease": {`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.run(t, o)
			if !slices.Contains(tc.args, "--plain") {
				r.wantRegularJSON(t)
			}
			if r.stderr != "" {
				t.Errorf("stderr: %s", r.stderr)
			}
		})
	}

	t.Run("release of a number the account does not hold", func(t *testing.T) {
		r := cli(t, fakeEnv, "", o.ctlArgs("number", "release", unknownTN, "--yes")...)
		r.wantCode(t, exitFailed)
		r.wantStderr(t, "opentactctl: NotFound: ", "TNLease not found")
		if r.stdout != "" {
			t.Errorf("stdout: %s", r.stdout)
		}
		o.requests()
	})
	t.Run("refused by the facade", func(t *testing.T) {
		r := cli(t, fakeEnv, "", o.ctlArgs("number", "search", "--size", "101")...)
		r.wantCode(t, exitFailed)
		r.wantStderr(t, "InvalidArgument", "\n  size: ")
		if seen := o.requests(); len(seen) != 0 {
			t.Errorf("Opentact saw %+v", seen)
		}
	})
}

// idLine is the line a write prints on stderr with the request id it
// made.
var idLine = regexp.MustCompile(`^request id ([A-Z2-7]{26}): to retry without (ordering|sending) twice, run the same command with --request-id ([A-Z2-7]{26})\n$`)

// TestOrderRequestID: every order carries a request id; without
// --request-id a new one per run, printed on stderr before the call.
func TestOrderRequestID(t *testing.T) {
	t.Parallel()
	rec := startRecorder(t)
	args := []string{"number", "order", tn1, "--plaintext", "--addr", rec.addr, "--email", fakeEmail}

	var ids []string
	for range 2 {
		r := cli(t, fakeEnv, "", args...)
		r.wantCode(t, exitOK)
		m := idLine.FindStringSubmatch(r.stderr)
		if m == nil || m[1] != m[3] || m[2] != "ordering" {
			t.Fatalf("stderr %q, want the request id line", r.stderr)
		}
		req := rec.last(t).(*numberv1.OrderNumbersRequest)
		if req.GetRequestId() != m[1] {
			t.Errorf("sent request_id %q, printed %q", req.GetRequestId(), m[1])
		}
		ids = append(ids, m[1])
	}
	if ids[0] == ids[1] {
		t.Errorf("two runs sent the same request id %s", ids[0])
	}

	// Given: sent as it is, and nothing printed.
	r := cli(t, fakeEnv, "", append(args, "--request-id", "my-order-7")...)
	r.wantCode(t, exitOK)
	if r.stderr != "" {
		t.Errorf("stderr with --request-id: %s", r.stderr)
	}
	want := &numberv1.OrderNumbersRequest{RequestId: proto.String("my-order-7"), Items: []*numberv1.OrderItem{{Tn: proto.String(tn1), Features: []string{"voice", "sms"}, Autorenew: proto.Bool(false)}}}
	if got := rec.last(t); !proto.Equal(got, want) {
		t.Errorf("sent %v, want %v", got, want)
	}

	// The id is printed even when the call fails, to retry with.
	rec.fail.Store(true)
	r = cli(t, fakeEnv, "", args...)
	r.wantCode(t, exitFailed)
	m := idLine.FindStringSubmatch(strings.SplitAfter(r.stderr, "\n")[0])
	if m == nil || rec.last(t).(*numberv1.OrderNumbersRequest).GetRequestId() != m[1] {
		t.Errorf("stderr of a failed order %q, want the id sent first", r.stderr)
	}
	r.wantStderr(t, "DeadlineExceeded")
}

// recorder is a gRPC server of our generated stubs that keeps the
// requests it gets: what the command sends, before the facade acts on
// it.
type recorder struct {
	numberv1.UnimplementedNumberServiceServer
	messagingv1.UnimplementedMessagingServiceServer
	addr string
	fail atomic.Bool // answer DeadlineExceeded

	mu  sync.Mutex
	got []proto.Message
}

func startRecorder(t *testing.T) *recorder {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{addr: l.Addr().String()}
	srv := grpc.NewServer()
	numberv1.RegisterNumberServiceServer(srv, rec)
	messagingv1.RegisterMessagingServiceServer(srv, rec)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return rec
}

func (r *recorder) keep(m proto.Message) error {
	r.mu.Lock()
	r.got = append(r.got, m)
	r.mu.Unlock()
	if r.fail.Load() {
		return status.Error(codes.DeadlineExceeded, "context deadline exceeded")
	}
	return nil
}

// last is the last request received.
func (r *recorder) last(t *testing.T) proto.Message {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.got) == 0 {
		t.Fatal("no request received")
	}
	return r.got[len(r.got)-1]
}

func (r *recorder) OrderNumbers(_ context.Context, req *numberv1.OrderNumbersRequest) (*numberv1.OrderNumbersResponse, error) {
	if err := r.keep(req); err != nil {
		return nil, err
	}
	return &numberv1.OrderNumbersResponse{Order: &numberv1.Order{Uuid: proto.String(orderUUID), State: proto.String("success")}}, nil
}

func (r *recorder) SendSMS(_ context.Context, req *messagingv1.SendSMSRequest) (*messagingv1.SendSMSResponse, error) {
	if err := r.keep(req); err != nil {
		return nil, err
	}
	if req.GetTo() == unknownTN {
		// An error that quotes the text, as a careless server might.
		return nil, status.Errorf(codes.InvalidArgument, "cannot send %q", req.GetMessage())
	}
	return &messagingv1.SendSMSResponse{Sms: &messagingv1.SMS{Uuid: proto.String(smsUUID), State: proto.String("created")}}, nil
}

// TestNumberUsageErrors: a command line the number commands cannot use
// fails with exit 2, names the flag or argument, and reaches nothing.
func TestNumberUsageErrors(t *testing.T) {
	t.Parallel()
	o := startOpentact(t)
	for _, tc := range []struct {
		name    string
		args    []string
		mention []string
	}{
		{"no number command", []string{"number"}, []string{"Usage", "search", "release"}},
		{"unknown number command", []string{"number", "buy"}, []string{"Usage"}},
		{"search with an argument", o.ctlArgs("number", "search", "202"), []string{"unexpected argument"}},
		{"search --page not a number", o.ctlArgs("number", "search", "--page", "two"), []string{"-page", "whole number"}},
		{"search --size beyond int32", o.ctlArgs("number", "search", "--size", "4294967296"), []string{"-size"}},
		{"search --abc-search with a value", o.ctlArgs("number", "search", "--abc-search=maybe"), []string{"-abc-search"}},
		{"order nothing", o.ctlArgs("number", "order"), []string{"numbers to order"}},
		{"order a word", o.ctlArgs("number", "order", tn1, "two"), []string{"argument 2", "not a number", "digits"}},
		{"order a number with spaces", o.ctlArgs("number", "order", "+1 202 982 2917"), []string{"argument 1", "not a number"}},
		{"order only a +", o.ctlArgs("number", "order", "+"), []string{"argument 1", "not a number"}},
		{"order an unknown feature", o.ctlArgs("number", "order", tn1, "--features", "voice,vioce"), []string{"--features", `"vioce"`, "voice, sms, fax, mms, emergency"}},
		{"order no feature", o.ctlArgs("number", "order", tn1, "--features", ""), []string{"--features", "empty"}},
		{"order an empty --request-id", o.ctlArgs("number", "order", tn1, "--request-id", ""), []string{"--request-id", "empty"}},
		{"list --take not a number", o.ctlArgs("number", "list", "--take", "ten"), []string{"-take", "whole number of leases"}},
		{"list with an argument", o.ctlArgs("number", "list", tn1), []string{"unexpected argument"}},
		{"release without --yes", o.ctlArgs("number", "release", leaseUUID), []string{"--yes", "gives the number back"}},
		{"release nothing", o.ctlArgs("number", "release", "--yes"), []string{"lease's uuid", "number"}},
		{"release two", o.ctlArgs("number", "release", tn1, tn2, "--yes"), []string{"one lease or number"}},
		{"release a word", o.ctlArgs("number", "release", "mine", "--yes"), []string{"neither a lease's uuid nor a number"}},
		{"release without credentials", []string{"number", "release", leaseUUID, "--yes", "--plaintext", "--addr", o.addr}, []string{"--email"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := cli(t, fakeEnv, "", tc.args...)
			r.wantCode(t, exitUsage)
			r.wantStderr(t, tc.mention...)
			if r.stdout != "" {
				t.Errorf("stdout: %s", r.stdout)
			}
		})
	}
	t.Cleanup(func() {
		if seen := o.requests(); len(seen) != 0 {
			t.Errorf("Opentact saw %+v", seen)
		}
	})
}

// TestNumberHelp: the number commands' usage says what each does, and
// where the request id and the confirmation come in.
func TestNumberHelp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args    []string
		mention []string
	}{
		{[]string{"number", "-h"}, []string{"search", "order", "list", "release", "opentactctl call NumberService/<Method>"}},
		{[]string{"number", "search", "-h"}, []string{"--pattern", "-rate-center", "-postal-code", "-abc-search", "--plain", "one a line", "-page", "-size"}},
		{[]string{"number", "order", "-h"}, []string{"NUMBER...", "--features", "voice,sms", "--autorenew", "--request-id", "standard error", "24 hours", "FailedPrecondition"}},
		{[]string{"number", "list", "-h"}, []string{"ListLeases", "--take", "--skip", "--tn"}},
		{[]string{"number", "release", "-h"}, []string{"--yes", "LEASE|NUMBER"}},
		{[]string{"-h"}, []string{"number search|order|list|release", "sms send|get|search"}},
	} {
		r := cli(t, nil, "", tc.args...)
		r.wantCode(t, exitOK)
		r.wantStderr(t, append([]string{"Usage"}, tc.mention...)...)
	}
}
