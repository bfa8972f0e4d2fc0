package faultupstream

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// start starts a server that the test closes at its end.
func start(t *testing.T) *Server {
	t.Helper()
	s := Start()
	t.Cleanup(s.Close)
	return s
}

// newClient is a plain client of its own that never follows redirects;
// keepAlive false gives every request a fresh connection, so that Go's
// transport never retries one on a reused connection.
func newClient(t *testing.T, keepAlive bool) *http.Client {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func basic(email, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(email+":"+password))
}

// headers builds request headers, keeping each name's spelling as given.
func headers(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h[kv[i]] = []string{kv[i+1]}
	}
	return h
}

func newRequest(ctx context.Context, t *testing.T, method, u string, h http.Header) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	return req
}

// get sends GET base+/rest/auth with h and reads the whole answer.
func get(t *testing.T, c *http.Client, base string, h http.Header) (*http.Response, []byte) {
	t.Helper()
	resp, err := c.Do(newRequest(context.Background(), t, http.MethodGet, base+"/rest/auth", h))
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body: %v", err)
	}
	return resp, body
}

type okAnswer struct {
	Success bool `json:"success"`
	Payload struct {
		UUID      string  `json:"uuid"`
		Email     string  `json:"email"`
		Token     string  `json:"token"`
		DeletedOn *string `json:"deleted_on"`
		Account   struct {
			UUID    string      `json:"uuid"`
			Balance json.Number `json:"balance"`
		} `json:"account"`
	} `json:"payload"`
}

// wantOK checks a 200 JSON answer and returns it decoded.
func wantOK(t *testing.T, resp *http.Response, body []byte) okAnswer {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200; body %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var a okAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, body)
	}
	if !a.Success {
		t.Errorf("success false in %s", body)
	}
	return a
}

// getOK sends GET base+/rest/auth with h and checks a 200 JSON answer.
func getOK(t *testing.T, c *http.Client, base string, h http.Header) okAnswer {
	t.Helper()
	resp, body := get(t, c, base, h)
	return wantOK(t, resp, body)
}

// wantError checks Opentact's error body with the given status.
func wantError(t *testing.T, resp *http.Response, body []byte, status int) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d; body %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var e struct {
		Success *bool  `json:"success"`
		Message string `json:"message"`
		Status  int    `json:"status"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	if e.Success == nil || *e.Success || e.Message == "" || e.Status != status {
		t.Errorf("error body %s, want success false, a message and status %d", body, status)
	}
}

// eventually polls cond for up to 5 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func keys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func TestOKHasThe2024Shape(t *testing.T) {
	s := start(t)
	h := headers("Authorization", basic("anna@example.com", "s3cret"))
	resp, body := get(t, newClient(t, true), s.URL(), h)
	a := wantOK(t, resp, body)

	if a.Payload.Email != "anna@example.com" || EmailFor(h) != "anna@example.com" {
		t.Errorf("email %q, EmailFor %q, want anna@example.com", a.Payload.Email, EmailFor(h))
	}
	if a.Payload.UUID != UUIDFor(h) || a.Payload.Token != TokenFor(h) {
		t.Errorf("uuid %q token %q, want %q %q", a.Payload.UUID, a.Payload.Token, UUIDFor(h), TokenFor(h))
	}
	if sum := sha256.Sum256([]byte("anna@example.com")); a.Payload.Token != "jwt."+hex.EncodeToString(sum[:]) {
		t.Errorf("token %q, want jwt.<sha256 of the email>", a.Payload.Token)
	}
	if a.Payload.DeletedOn != nil || a.Payload.Account.Balance != "99.87895" || a.Payload.Account.UUID == "" {
		t.Errorf("payload %s: want deleted_on null, a balance number and an account uuid", body)
	}

	// Same field names as Opentact's documented 2024 answer, no more, no less.
	fixture, err := os.ReadFile("../../testdata/opentact/auth-2024.json")
	if err != nil {
		t.Fatal(err)
	}
	type shape struct {
		Success bool           `json:"success"`
		Payload map[string]any `json:"payload"`
	}
	var want, got shape
	if err := json.Unmarshal(fixture, &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys(got.Payload), keys(want.Payload)) {
		t.Errorf("payload fields %v, want %v", keys(got.Payload), keys(want.Payload))
	}
	gotAcc, _ := got.Payload["account"].(map[string]any)
	wantAcc, _ := want.Payload["account"].(map[string]any)
	if !slices.Equal(keys(gotAcc), keys(wantAcc)) {
		t.Errorf("account fields %v, want %v", keys(gotAcc), keys(wantAcc))
	}
	if _, isNumber := gotAcc["balance"].(float64); !isNumber {
		t.Errorf("balance %v is not a JSON number", gotAcc["balance"])
	}
}

func TestTokenCredentialsDeriveTheProfile(t *testing.T) {
	s := start(t)
	c := newClient(t, true)
	for _, name := range []string{"X-Auth-Token", "X-Auth-Google-Token", "X-Auth-Facebook-Token", "X-Auth-HA1B-Token", "Authorization"} {
		t.Run(name, func(t *testing.T) {
			v := "value-of-" + name
			if name == "Authorization" {
				v = "Bearer api-token-1"
			}
			sum := sha256.Sum256([]byte(v))
			wantEmail := hex.EncodeToString(sum[:8]) + "@token.test"
			h := headers(name, v) // Opentact's spelling, not canonicalised
			for _, hh := range []http.Header{h, headers(strings.ToLower(name), v), headers(http.CanonicalHeaderKey(name), v)} {
				if got := EmailFor(hh); got != wantEmail {
					t.Errorf("EmailFor(%v) = %q, want %q", hh, got, wantEmail)
				}
			}
			if got := TokenFor(h); got != "jwt."+hex.EncodeToString(sum[:]) {
				t.Errorf("TokenFor = %q", got)
			}
			a := getOK(t, c, s.URL(), h)
			if a.Payload.Email != wantEmail || a.Payload.Token != TokenFor(h) || a.Payload.UUID != UUIDFor(h) {
				t.Errorf("payload %+v, want email %q token %q uuid %q", a.Payload, wantEmail, TokenFor(h), UUIDFor(h))
			}
		})
	}

	// Basic wins over the X-Auth-* headers; different tokens, different users.
	h := headers("Authorization", basic("bob@example.com", "pw"), "X-Auth-Token", "t1")
	if got := EmailFor(h); got != "bob@example.com" {
		t.Errorf("EmailFor(Basic + X-Auth-Token) = %q, want bob@example.com", got)
	}
	if EmailFor(headers("X-Auth-Token", "t1")) == EmailFor(headers("X-Auth-Token", "t2")) ||
		UUIDFor(headers("X-Auth-Token", "t1")) == UUIDFor(headers("X-Auth-Token", "t2")) {
		t.Error("two tokens give the same profile")
	}
	if EmailFor(http.Header{}) != "" || UUIDFor(nil) != "" || TokenFor(nil) != "" {
		t.Error("no credentials should derive nothing")
	}
}

func TestNoCredentialsIs401(t *testing.T) {
	s := start(t)
	resp, body := get(t, newClient(t, true), s.URL(), nil)
	wantError(t, resp, body, http.StatusUnauthorized)
}

func TestStatusFaults(t *testing.T) {
	s := start(t)
	c := newClient(t, true)
	h := headers("Authorization", basic("a@example.com", "pw"))
	for _, tc := range []struct {
		fault  Fault
		status int
		check  func(t *testing.T, resp *http.Response, body []byte)
	}{
		{HTML, http.StatusBadGateway, wantHTML},
		{HTML200, http.StatusOK, wantHTML},
		{BrokenJSON, http.StatusOK, func(t *testing.T, resp *http.Response, body []byte) {
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			if len(body) == 0 || json.Valid(body) {
				t.Errorf("body %q should be invalid JSON", body)
			}
		}},
		{Unauthorized, http.StatusUnauthorized, nil},
		{InternalError, http.StatusInternalServerError, nil},
		{Unavailable, http.StatusServiceUnavailable, func(t *testing.T, resp *http.Response, _ []byte) {
			if ra, ok := resp.Header["Retry-After"]; ok {
				t.Errorf("Retry-After %q without SetRetryAfter", ra)
			}
		}},
	} {
		t.Run(string(tc.fault), func(t *testing.T) {
			s.SetFault(tc.fault)
			resp, body := get(t, c, s.URL(), h)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.check == nil {
				wantError(t, resp, body, tc.status)
			} else {
				tc.check(t, resp, body)
			}
		})
	}
}

func wantHTML(t *testing.T, resp *http.Response, body []byte) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type %q, want text/html", ct)
	}
	if !bytes.Contains(body, []byte("<html")) || json.Valid(body) {
		t.Errorf("body %q is not an HTML page", body)
	}
}

func TestUnavailableRetryAfter(t *testing.T) {
	s := start(t)
	c := newClient(t, true)
	s.SetFault(Unavailable)
	h := headers("X-Auth-Token", "t")
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{1500 * time.Millisecond, "2"}, {3 * time.Second, "3"}, {0, ""}} {
		s.SetRetryAfter(tc.d)
		resp, body := get(t, c, s.URL(), h)
		wantError(t, resp, body, http.StatusServiceUnavailable)
		if got := resp.Header.Get("Retry-After"); got != tc.want {
			t.Errorf("SetRetryAfter(%v): Retry-After %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestRedirect(t *testing.T) {
	s := start(t)
	s.SetFault(Redirect)
	h := headers("X-Auth-Token", "t")

	resp, _ := get(t, newClient(t, true), s.URL(), h)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	main, _ := url.Parse(s.URL())
	if loc.Hostname() != "127.0.0.1" || loc.Host == main.Host || loc.Path != "/rest/auth" ||
		resp.Header.Get("Location") != s.RedirectURL()+"/rest/auth" {
		t.Errorf("Location %q, want /rest/auth on another loopback port than %s", loc, main.Host)
	}
	if s.RedirectHits() != 0 || s.Requests() != 1 {
		t.Errorf("RedirectHits %d Requests %d, want 0 and 1", s.RedirectHits(), s.Requests())
	}

	// A client that follows it reaches the target, which counts and answers.
	follow := newClient(t, true)
	follow.CheckRedirect = nil
	a := getOK(t, follow, s.URL(), h)
	if a.Payload.Email != EmailFor(h) {
		t.Errorf("target's email %q, want %q", a.Payload.Email, EmailFor(h))
	}
	if s.RedirectHits() != 1 || s.Requests() != 2 {
		t.Errorf("RedirectHits %d Requests %d, want 1 and 2", s.RedirectHits(), s.Requests())
	}
}

func TestFlapCycles(t *testing.T) {
	s := start(t)
	c := newClient(t, true)
	h := headers("X-Auth-Token", "t")
	statuses := func(n int) []int {
		var out []int
		for range n {
			resp, body := get(t, c, s.URL(), h)
			if resp.StatusCode == http.StatusOK {
				if a := wantOK(t, resp, body); a.Payload.Email != EmailFor(h) {
					t.Errorf("email %q, want %q", a.Payload.Email, EmailFor(h))
				}
			} else {
				wantError(t, resp, body, http.StatusServiceUnavailable)
			}
			out = append(out, resp.StatusCode)
		}
		return out
	}
	s.SetFault(Flap)
	if got, want := statuses(4), []int{503, 200, 503, 200}; !slices.Equal(got, want) {
		t.Errorf("default flap: %v, want %v", got, want)
	}
	s.SetFlap(2)
	if got, want := statuses(6), []int{503, 503, 200, 503, 503, 200}; !slices.Equal(got, want) {
		t.Errorf("SetFlap(2): %v, want %v", got, want)
	}
	s.SetFlap(0)
	if got, want := statuses(2), []int{200, 200}; !slices.Equal(got, want) {
		t.Errorf("SetFlap(0): %v, want %v", got, want)
	}
	s.SetFlap(1)
	s.SetRetryAfter(time.Second)
	resp, _ := get(t, c, s.URL(), h)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("flap failure: %d, Retry-After %q; want 503 with 1", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func TestDelay(t *testing.T) {
	s := start(t)
	c := newClient(t, true)
	s.SetFault(Delay)
	s.SetDelay(50 * time.Millisecond)
	h := headers("X-Auth-Token", "delayed")
	began := time.Now()
	a := getOK(t, c, s.URL(), h)
	if took := time.Since(began); took < 50*time.Millisecond {
		t.Errorf("answered after %v, want >= 50ms", took)
	}
	if a.Payload.Email != EmailFor(h) {
		t.Errorf("email %q, want %q", a.Payload.Email, EmailFor(h))
	}
	if s.Disconnects() != 0 {
		t.Errorf("Disconnects %d after a completed delay", s.Disconnects())
	}

	// A client that gives up during the delay is a disconnect.
	s.SetDelay(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Do(newRequest(ctx, t, http.MethodGet, s.URL()+"/rest/auth", h)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the deadline", err)
	}
	waitDisconnects(t, s, 1)
}

func waitDisconnects(t *testing.T, s *Server, n int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.WaitDisconnects(ctx, n); err != nil {
		t.Fatalf("WaitDisconnects(%d): %v (Disconnects %d)", n, err, s.Disconnects())
	}
	if got := s.Disconnects(); got != n {
		t.Errorf("Disconnects %d, want %d", got, n)
	}
}

func TestHangReleasesOnClientCancel(t *testing.T) {
	s := start(t)
	c := newClient(t, true)
	s.SetFault(Hang)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		resp, err := c.Do(newRequest(ctx, t, http.MethodGet, s.URL()+"/rest/auth", headers("X-Auth-Token", "t")))
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	eventually(t, "the request to arrive", func() bool { return s.Requests() == 1 })
	select {
	case err := <-errc:
		t.Fatalf("Hang answered: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	if s.Disconnects() != 0 {
		t.Fatalf("Disconnects %d before the client went", s.Disconnects())
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
	waitDisconnects(t, s, 1)

	// WaitDisconnects gives up with its context.
	short, cancelShort := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancelShort()
	if err := s.WaitDisconnects(short, 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitDisconnects(2) = %v, want the deadline", err)
	}
}

func TestResetIsATransportError(t *testing.T) {
	s := start(t)
	s.SetFault(Reset)
	resp, err := newClient(t, false).Do(newRequest(context.Background(), t, http.MethodGet, s.URL()+"/rest/auth", headers("X-Auth-Token", "t")))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got a response (%d), want a transport error", resp.StatusCode)
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("err %v, want a connection reset", err)
	}
	if s.Requests() != 1 {
		t.Errorf("Requests %d, want 1", s.Requests())
	}
}

func TestTruncateEndsEarly(t *testing.T) {
	s := start(t)
	c := newClient(t, true)
	h := headers("X-Auth-Token", "t")
	_, full := get(t, c, s.URL(), h)

	s.SetFault(Truncate)
	resp, err := c.Do(newRequest(context.Background(), t, http.MethodGet, s.URL()+"/rest/auth", h))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(full)) {
		t.Errorf("status %d Content-Length %d, want 200 and %d", resp.StatusCode, resp.ContentLength, len(full))
	}
	got, err := io.ReadAll(resp.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("read error %v, want io.ErrUnexpectedEOF", err)
	}
	if !bytes.Equal(got, full[:len(full)/2]) {
		t.Errorf("read %q, want the first half of %q", got, full)
	}
}

func TestHugeStreamsWithoutHoldingIt(t *testing.T) {
	s := start(t)
	s.SetFault(Huge)
	resp, err := newClient(t, true).Do(newRequest(context.Background(), t, http.MethodGet, s.URL()+"/rest/auth", headers("X-Auth-Token", "t")))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" || resp.ContentLength != -1 {
		t.Fatalf("status %d Content-Type %q Content-Length %d, want 200, application/json, none",
			resp.StatusCode, resp.Header.Get("Content-Type"), resp.ContentLength)
	}

	var (
		buf         = make([]byte, 256<<10)
		total       int
		first, last []byte
		maxHeap     uint64
		nextSample  int
		ms          runtime.MemStats
	)
	for {
		n, err := resp.Body.Read(buf)
		if first == nil && n > 0 {
			first = bytes.Clone(buf[:min(n, 2)])
		}
		if n > 0 {
			last = append(last, buf[:n]...)
			last = last[max(0, len(last)-2):]
		}
		total += n
		if total >= nextSample {
			runtime.ReadMemStats(&ms)
			maxHeap = max(maxHeap, ms.HeapInuse)
			nextSample += 4 << 20
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", total, err)
		}
	}
	if total != HugeBodySize {
		t.Errorf("read %d bytes, want %d", total, HugeBodySize)
	}
	if string(first) != `{"` || string(last) != "}}" {
		t.Errorf("body starts %q and ends %q, want a JSON object", first, last)
	}
	if maxHeap > 24<<20 {
		t.Errorf("HeapInuse reached %d MiB while streaming 64 MiB", maxHeap>>20)
	}
	t.Logf("max HeapInuse %.1f MiB", float64(maxHeap)/(1<<20))
	if s.Disconnects() != 0 {
		t.Errorf("Disconnects %d after reading it all", s.Disconnects())
	}
}

func TestHugeStopsWhenTheClientGoes(t *testing.T) {
	s := start(t)
	s.SetFault(Huge)
	resp, err := newClient(t, true).Do(newRequest(context.Background(), t, http.MethodGet, s.URL()+"/rest/auth", headers("X-Auth-Token", "t")))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := io.CopyN(io.Discard, resp.Body, 1<<20); n != 1<<20 || err != nil {
		t.Fatalf("read %d: %v", n, err)
	}
	resp.Body.Close() // not read to the end: the transport drops the connection
	waitDisconnects(t, s, 1)
}

func TestPerRequestOverride(t *testing.T) {
	s := start(t)
	c := newClient(t, false)
	s.SetFault(Hang) // nothing below may hang

	h := headers("X-Auth-Token", "fault:ok:user42")
	a := getOK(t, c, s.URL(), h)
	if a.Payload.Email != EmailFor(h) || EmailFor(h) == EmailFor(headers("X-Auth-Token", "fault:ok:user43")) {
		t.Errorf("email %q, want %q, distinct per user", a.Payload.Email, EmailFor(h))
	}
	getOK(t, c, s.URL(), headers("X-Auth-Token", "fault:ok"))

	for _, tc := range []struct {
		token  string
		status int
	}{
		{"fault:internal", 500},
		{"fault:unauthorized:x", 401},
		{"fault:unavailable:a:b", 503},
		{"fault:nope", 400},
		{"fault:", 400},
		{"fault:OK", 400},
	} {
		resp, body := get(t, c, s.URL(), headers("X-Auth-Token", tc.token))
		wantError(t, resp, body, tc.status)
	}
	resp, body := get(t, c, s.URL(), headers("X-Auth-Token", "fault:html200:u"))
	if resp.StatusCode != 200 {
		t.Errorf("fault:html200: status %d", resp.StatusCode)
	}
	wantHTML(t, resp, body)
}

func TestCountersLastHeadersAndReset(t *testing.T) {
	s := start(t)
	c := newClient(t, true)
	h := headers("X-Auth-Token", "t", "X-Probe", "1")
	if s.LastHeaders() != nil {
		t.Error("LastHeaders before any request should be nil")
	}

	resp, body := get(t, c, s.URL()+"/elsewhere", h) // GET /elsewhere/rest/auth: a path prefix is fine
	wantOK(t, resp, body)
	req := newRequest(context.Background(), t, http.MethodGet, s.URL()+"/rest/other", headers("X-Probe", "2"))
	if resp, err := c.Do(req); err != nil {
		t.Fatal(err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantError(t, resp, b, http.StatusNotFound)
	}
	req = newRequest(context.Background(), t, http.MethodPost, s.URL()+"/rest/auth", headers("X-Probe", "3"))
	if resp, err := c.Do(req); err != nil {
		t.Fatal(err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantError(t, resp, b, http.StatusMethodNotAllowed)
	}
	if s.Requests() != 2 {
		t.Errorf("Requests %d, want 2 (the 404 does not count)", s.Requests())
	}
	last := s.LastHeaders()
	if last.Get("X-Probe") != "3" {
		t.Errorf("LastHeaders X-Probe %q, want 3", last.Get("X-Probe"))
	}
	last.Set("X-Probe", "changed")
	if s.LastHeaders().Get("X-Probe") != "3" {
		t.Error("LastHeaders is not a copy")
	}

	// Disturb every setting and counter, then Reset.
	s.SetFault(Redirect)
	follow := newClient(t, true)
	follow.CheckRedirect = nil
	get(t, follow, s.URL(), h)
	s.SetFault(Hang)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Do(newRequest(ctx, t, http.MethodGet, s.URL()+"/rest/auth", h)); err == nil {
		t.Fatal("Hang answered")
	}
	waitDisconnects(t, s, 1)
	s.SetRetryAfter(5 * time.Second)
	s.SetFlap(3)
	s.SetDelay(time.Millisecond)
	if s.RedirectHits() != 1 || s.Requests() != 4 {
		t.Fatalf("RedirectHits %d Requests %d, want 1 and 4", s.RedirectHits(), s.Requests())
	}

	s.Reset()
	if s.Requests() != 0 || s.RedirectHits() != 0 || s.Disconnects() != 0 || s.LastHeaders() != nil {
		t.Errorf("after Reset: Requests %d RedirectHits %d Disconnects %d LastHeaders %v",
			s.Requests(), s.RedirectHits(), s.Disconnects(), s.LastHeaders())
	}
	getOK(t, c, s.URL(), h) // fault back to OK
	s.SetFault(Unavailable)
	if resp, _ := get(t, c, s.URL(), h); resp.Header.Get("Retry-After") != "" {
		t.Errorf("Retry-After %q after Reset", resp.Header.Get("Retry-After"))
	}
	s.SetFault(Flap)
	var got []int
	for range 2 {
		resp, _ := get(t, c, s.URL(), h)
		got = append(got, resp.StatusCode)
	}
	if !slices.Equal(got, []int{503, 200}) {
		t.Errorf("flap after Reset: %v, want [503 200]", got)
	}
	// Delay is back to its second: a 200ms caller gives up first.
	s.SetFault(Delay)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	if resp, err := c.Do(newRequest(ctx2, t, http.MethodGet, s.URL()+"/rest/auth", h)); err == nil {
		resp.Body.Close()
		t.Error("Delay answered within 200ms after Reset")
	}
	if s.Requests() != 5 {
		t.Errorf("Requests %d, want 5", s.Requests())
	}
}

func TestSetFaultRejectsUnknown(t *testing.T) {
	s := start(t)
	defer func() {
		if recover() == nil {
			t.Error("SetFault(\"nope\") did not panic")
		}
	}()
	s.SetFault("nope")
}

func TestFaultsAreValid(t *testing.T) {
	for _, f := range Faults() {
		if !f.Valid() {
			t.Errorf("%q not valid", f)
		}
	}
	if len(Faults()) != 15 || Fault("").Valid() {
		t.Errorf("Faults() has %d entries", len(Faults()))
	}
}

func TestCloseUnblocksEverything(t *testing.T) {
	s := Start()
	defer s.Close() // a second Close is a no-op
	s.SetDelay(time.Hour)
	c := newClient(t, false)

	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for _, f := range []Fault{Hang, Delay, Huge} {
		wg.Go(func() {
			req := newRequest(context.Background(), t, http.MethodGet, s.URL()+"/rest/auth", headers("X-Auth-Token", "fault:"+string(f)))
			resp, err := c.Do(req)
			if err == nil {
				// Huge: headers arrived; the body never ends now.
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err == nil {
					err = fmt.Errorf("%s: read the whole body", f)
				} else {
					err = nil
				}
			} else {
				err = nil // Hang and Delay: the connection dropped
			}
			errs <- err
		})
	}
	eventually(t, "three requests", func() bool { return s.Requests() == 3 })
	time.Sleep(20 * time.Millisecond) // let Huge fill the socket buffers

	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if s.Disconnects() != 0 {
		t.Errorf("Disconnects %d: Close is not a client going away", s.Disconnects())
	}
	if resp, err := c.Get(s.URL() + "/rest/auth"); err == nil {
		resp.Body.Close()
		t.Error("a request after Close got an answer")
	}
}

// TestConcurrentMixedFaults has many callers each asking for their own
// fault and credentials; each must get its own answer.
func TestConcurrentMixedFaults(t *testing.T) {
	s := start(t)
	// Every connection closed leaves a TIME_WAIT for a minute; keep them
	// few so that repeated runs do not run out of loopback ports.
	const callers = 256
	c := newClient(t, true)
	c.Transport.(*http.Transport).MaxIdleConnsPerHost = callers
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() { // the accessors race with the handlers
		for {
			select {
			case <-stop:
				return
			default:
				_ = s.LastHeaders().Get("X-Auth-Token")
				_, _ = s.Requests(), s.Disconnects()
				time.Sleep(100 * time.Microsecond)
			}
		}
	})
	defer func() { close(stop); readers.Wait() }()
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			kind := []string{"ok", "internal", "unavailable", "html", "broken-json", "reset", "truncate", "ok"}[i%8]
			h := headers("X-Auth-Token", "fault:"+kind+":user"+strconv.Itoa(i))
			resp, err := c.Do(newRequest(context.Background(), t, http.MethodGet, s.URL()+"/rest/auth", h))
			if kind == "reset" {
				if err == nil {
					resp.Body.Close()
					t.Errorf("caller %d: reset gave a response", i)
				}
				return
			}
			if err != nil {
				t.Errorf("caller %d (%s): %v", i, kind, err)
				return
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch kind {
			case "truncate":
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Errorf("caller %d: truncate read error %v", i, err)
				}
			case "ok":
				var a okAnswer
				if err != nil || json.Unmarshal(body, &a) != nil || a.Payload.Email != EmailFor(h) {
					t.Errorf("caller %d: got %s (%v), want email %s", i, body, err, EmailFor(h))
				}
			default:
				want := map[string]int{"internal": 500, "unavailable": 503, "html": 502, "broken-json": 200}[kind]
				if err != nil || resp.StatusCode != want {
					t.Errorf("caller %d (%s): status %d (%v), want %d", i, kind, resp.StatusCode, err, want)
				}
			}
		})
	}
	wg.Wait()
	// Go's transport may retry a GET reset on a reused connection.
	if s.Requests() < callers {
		t.Errorf("Requests %d, want >= %d", s.Requests(), callers)
	}
}

func TestHugeHeaders(t *testing.T) {
	t.Parallel()
	s := Start()
	defer s.Close()
	s.SetFault(HugeHeaders)
	resp, body := get(t, newClient(t, false), s.URL(), headers("X-Auth-Token", "tok"))
	size := 0
	for k, vs := range resp.Header {
		for _, v := range vs {
			size += len(k) + len(v)
		}
	}
	if resp.StatusCode != http.StatusOK || size < HugeHeaderSize*9/10 || !strings.Contains(string(body), `"success":true`) {
		t.Errorf("status %d, %d bytes of headers, body %.80q; want 200, about %d bytes, the OK body", resp.StatusCode, size, body, HugeHeaderSize)
	}
}
