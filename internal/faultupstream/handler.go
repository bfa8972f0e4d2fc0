package faultupstream

import (
	"bytes"
	"encoding/json"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// faultPrefix starts an X-Auth-Token that selects its request's fault.
const faultPrefix = "fault:"

// serveMain answers the main listener.
func (s *Server) serveMain(w http.ResponseWriter, r *http.Request) {
	if !s.enter() {
		panic(http.ErrAbortHandler) // Close has begun: drop the connection
	}
	defer s.leave()

	h := r.Header // never written to by the handlers; LastHeaders clones it
	s.lastHeaders.Store(&h)
	if !strings.HasSuffix(r.URL.Path, "/rest/auth") {
		writeError(w, http.StatusNotFound, "Not found")
		return
	}
	s.requests.Add(1)
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, http.StatusMethodNotAllowed, "Method not allowed")
		return
	}
	f := *s.fault.Load()
	if v := r.Header.Get("X-Auth-Token"); strings.HasPrefix(v, faultPrefix) {
		name, _, _ := strings.Cut(v[len(faultPrefix):], ":")
		f = Fault(name)
		if !f.Valid() {
			writeError(w, http.StatusBadRequest, "Unknown fault "+strconv.Quote(name))
			return
		}
	}
	s.answer(w, r, f)
}

// serveRedirectTarget answers the redirect target listener: it counts
// the request and answers as OK.
func (s *Server) serveRedirectTarget(w http.ResponseWriter, r *http.Request) {
	if !s.enter() {
		panic(http.ErrAbortHandler)
	}
	defer s.leave()
	s.redirectHits.Add(1)
	writeOK(w, r)
}

func (s *Server) answer(w http.ResponseWriter, r *http.Request, f Fault) {
	switch f {
	case OK:
		writeOK(w, r)
	case Delay:
		s.wait(r, time.Duration(s.delay.Load()))
		writeOK(w, r)
	case Hang:
		s.wait(r, -1)
	case Reset:
		resetConn(w)
	case Truncate:
		truncate(w, r)
	case Huge:
		s.streamHuge(w, r)
	case HugeHeaders:
		filler := strings.Repeat("x", 8<<10)
		for i := range HugeHeaderSize / len(filler) {
			w.Header()["X-Filler-"+strconv.Itoa(i)] = []string{filler}
		}
		writeOK(w, r)
	case HTML:
		writeHTML(w, http.StatusBadGateway, badGatewayPage)
	case HTML200:
		writeHTML(w, http.StatusOK, captivePortalPage)
	case BrokenJSON:
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write([]byte(brokenJSON))
	case Redirect:
		w.Header().Set("Location", s.redirectURL+"/rest/auth")
		writeHTML(w, http.StatusFound, foundPage)
	case Unavailable:
		s.writeUnavailable(w)
	case Flap:
		n := s.flapN.Load()
		if (s.flapSeq.Add(1)-1)%(n+1) < n {
			s.writeUnavailable(w)
		} else {
			writeOK(w, r)
		}
	case Unauthorized:
		writeError(w, http.StatusUnauthorized, "Invalid credentials")
	case InternalError:
		writeError(w, http.StatusInternalServerError, "Internal server error")
	default: // SetFault and serveMain admit only valid faults
		writeError(w, http.StatusBadRequest, "Unknown fault "+strconv.Quote(string(f)))
	}
}

// wait waits d (forever if d < 0). If the client goes first (counted as a
// disconnect) or the server closes, it aborts the request instead: no
// answer, and the handler goes no further.
func (s *Server) wait(r *http.Request, d time.Duration) {
	var elapsed <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		elapsed = t.C
	}
	select {
	case <-elapsed:
		return
	case <-s.closing:
	case <-r.Context().Done():
		if !s.isClosing() { // Close also cancels the request's context
			s.addDisconnect()
		}
	}
	// Drop the connection: returning normally would let net/http send an
	// empty 200 before Close gets to the connection.
	panic(http.ErrAbortHandler)
}

// writeOK answers 200 with the payload of the request's credentials, or
// 401 when it has none.
func writeOK(w http.ResponseWriter, r *http.Request) {
	id, ok := identify(r.Header)
	if !ok {
		writeError(w, http.StatusUnauthorized, "Authentication required")
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(okBody(id))
}

// writeError writes Opentact's error body.
func writeError(w http.ResponseWriter, status int, message string) {
	body, _ := json.Marshal(struct {
		Success bool   `json:"success"`
		Message string `json:"message"`
		Status  int    `json:"status"`
	}{false, message, status})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (s *Server) writeUnavailable(w http.ResponseWriter) {
	if d := time.Duration(s.retryAfter.Load()); d > 0 {
		secs := int64(math.Ceil(d.Seconds()))
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	writeError(w, http.StatusServiceUnavailable, "Service temporarily unavailable")
}

func writeHTML(w http.ResponseWriter, status int, page string) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(page))
}

const (
	badGatewayPage = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n" +
		"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
	captivePortalPage = "<!DOCTYPE html>\n<html><head><title>Sign in to the network</title></head>\n" +
		"<body><h1>Welcome</h1><p>Please accept the terms of use to continue.</p>" +
		"<form method=\"post\" action=\"/portal/accept\"><button>Accept</button></form></body></html>\n"
	foundPage  = "<html><head><title>302 Found</title></head><body><h1>Found</h1></body></html>\n"
	brokenJSON = `{"success":true,"payload":{"uuid":"0116f6d1-1280-44b2-9134-da48509ec575","email":,"role":"User"`
)

// hijack takes the connection over from net/http, or aborts the request
// when it cannot (it always can on HTTP/1.x).
func hijack(w http.ResponseWriter) net.Conn {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	return conn
}

// resetConn closes the connection with a TCP RST instead of a FIN.
func resetConn(w http.ResponseWriter) {
	conn := hijack(w)
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// truncate sends the head of an OK answer with its full Content-Length,
// half of its body, and closes the connection (with a FIN, so the client
// reads the half before the end).
func truncate(w http.ResponseWriter, r *http.Request) {
	id, _ := identify(r.Header) // without credentials: the empty identity's body
	body := okBody(id)
	conn := hijack(w)
	defer conn.Close()
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ")
	b.WriteString(strconv.Itoa(len(body)))
	b.WriteString("\r\nConnection: close\r\n\r\n")
	b.Write(body[:len(body)/2])
	_, _ = conn.Write(b.Bytes())
}

// Huge's body: valid JSON of HugeBodySize bytes, so that only its size can
// make a client reject it.
const (
	hugePrefix = `{"success":true,"payload":{"email":"huge@token.test","padding":"`
	hugeSuffix = `"}}`
)

// hugeChunk is the padding written over and over; never modified.
var hugeChunk = bytes.Repeat([]byte{'a'}, 32<<10)

// streamHuge writes Huge's body chunk by chunk; a client that goes away
// before the end is counted as a disconnect.
func (s *Server) streamHuge(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	ctx := r.Context()
	write := func(p []byte) {
		if ctx.Err() == nil && !s.isClosing() {
			if _, err := w.Write(p); err == nil {
				return
			}
		}
		if !s.isClosing() {
			s.addDisconnect()
		}
		// Abort: returning would let net/http end the chunked body
		// cleanly, making a cut-off body look complete.
		panic(http.ErrAbortHandler)
	}
	write([]byte(hugePrefix))
	for left := HugeBodySize - len(hugePrefix) - len(hugeSuffix); left > 0; {
		n := min(left, len(hugeChunk))
		write(hugeChunk[:n])
		left -= n
	}
	write([]byte(hugeSuffix))
}
