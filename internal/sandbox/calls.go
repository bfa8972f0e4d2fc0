package sandbox

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/opentact-facade/opentact-facade/internal/callflow"
)

// The bounds of what an account keeps of its calls, oldest out first, so
// that a long-running sandbox stays small.
const (
	maxCalls    = 1000
	maxFlowLogs = 5000
)

// scaCall is a call to a number assigned to a call control app (Opentact's
// "SCA" call): online from its start until it is torn down, then in the
// call log.
type scaCall struct {
	uuid              string
	from, to          string
	tn                int64
	app               string // the app's uuid
	online            bool
	created, modified time.Time
}

// flowLog is one verb a flow ran on a call, as SearchCallFlowLogs shows it.
type flowLog struct {
	uuid    string
	app     string
	call    *scaCall
	name    string
	command map[string]string
	created time.Time
}

// scaCallJSON is Opentact's ISIPControlAppCall.
type scaCallJSON struct {
	UUID          string           `json:"uuid"`
	CreatedOn     string           `json:"created_on"`
	ModifiedOn    string           `json:"modified_on"`
	TN            map[string]int64 `json:"tn"`
	From          string           `json:"from"`
	To            string           `json:"to"`
	State         string           `json:"state"`
	Direction     string           `json:"direction"`
	Type          string           `json:"type"`
	Source        string           `json:"source"`
	SIPControlApp json.RawMessage  `json:"sip_control_app"`
	Account       json.RawMessage  `json:"account"`
}

func (c *scaCall) view(a *acct) scaCallJSON {
	state := "offline"
	if c.online {
		state = "online"
	}
	return scaCallJSON{
		UUID: c.uuid, CreatedOn: stamp(c.created), ModifiedOn: stamp(c.modified),
		TN: map[string]int64{"tn": c.tn}, From: c.from, To: c.to, State: state,
		Direction: "in", Type: "CallSCA", Source: "freeswitch",
		SIPControlApp: reference(c.app), Account: reference(a.uuid),
	}
}

// flowLogJSON is Opentact's ILogCallFlow.
type flowLogJSON struct {
	UUID          string            `json:"uuid"`
	CreatedOn     string            `json:"created_on"`
	ModifiedOn    string            `json:"modified_on"`
	Name          string            `json:"name"`
	Success       bool              `json:"success"`
	Command       map[string]string `json:"command"`
	Response      map[string]any    `json:"response"`
	Call          scaCallJSON       `json:"call"`
	SIPControlApp json.RawMessage   `json:"sip_control_app"`
}

// app reports whether id is one of u's call control apps.
func (s *Sandbox) app(u *user, id string) bool {
	return id != "" && controlApps.exists(s, u, id)
}

// appOf is the app a call to l goes to, if it still exists.
func (s *Sandbox) appOf(u *user, l *lease) string {
	if l == nil || !s.app(u, l.sipControlApp) {
		return ""
	}
	return l.sipControlApp
}

const noApp = "Not found"

// readFlow reads a multipart/form-data body's "file" part, the call-flow
// XML, and checks it as Opentact would parse it. On failure it has
// written the error and returns its status.
func readFlow(w http.ResponseWriter, r *http.Request) (string, int) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return "", writeError(w, http.StatusBadRequest, `The call flow must be sent as multipart/form-data, its XML as the file "file"`)
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodySize)
	mr, err := r.MultipartReader()
	if err != nil {
		return "", writeError(w, http.StatusBadRequest, "Malformed multipart body")
	}
	var file []byte
	found := false
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			return "", writeError(w, http.StatusRequestEntityTooLarge, "Request body too large")
		case err != nil:
			return "", writeError(w, http.StatusBadRequest, "Malformed multipart body")
		}
		b, err := io.ReadAll(p)
		if err != nil {
			if errors.As(err, &tooLarge) {
				return "", writeError(w, http.StatusRequestEntityTooLarge, "Request body too large")
			}
			return "", writeError(w, http.StatusBadRequest, "Malformed multipart body")
		}
		if p.FormName() == "file" {
			file, found = b, true
		}
	}
	if !found {
		return "", writeValidationError(w, map[string]fieldError{"file": {Message: "is required: the call flow's XML", Value: json.RawMessage("null")}})
	}
	if err := callflow.Check(file); err != nil {
		return "", writeError(w, http.StatusBadRequest, "Invalid call flow XML: "+err.Error())
	}
	return string(file), 0
}

// writeFlow answers a call flow as Opentact does: the XML as the payload,
// and where it is stored beside it.
func writeFlow(w http.ResponseWriter, app, flow string) int {
	return writeBody(w, http.StatusOK, struct {
		Success bool   `json:"success"`
		Payload string `json:"payload"`
		URL     string `json:"url"`
	}{true, flow, "https://sandbox.opentact.invalid/call-flows/" + app + ".xml"})
}

// serveFlowGet answers GET /rest/sip/app/call/flow/{uuid}: the app's saved
// flow.
func (s *Sandbox) serveFlowGet(w http.ResponseWriter, _ *http.Request, u *user, id string) int {
	if !s.app(u, id) {
		return writeError(w, http.StatusNotFound, noApp)
	}
	s.telco.mu.Lock()
	flow, ok := u.acct.flows[id]
	s.telco.mu.Unlock()
	if !ok {
		return writeError(w, http.StatusNotFound, "No call flow is saved for this app")
	}
	return writeFlow(w, id, flow)
}

// serveFlowSave answers POST /rest/sip/app/call/flow/{uuid}: the XML of
// the multipart file "file" becomes the flow the app's calls run.
func (s *Sandbox) serveFlowSave(w http.ResponseWriter, r *http.Request, u *user, id string) int {
	if !s.app(u, id) {
		return writeError(w, http.StatusNotFound, noApp)
	}
	flow, status := readFlow(w, r)
	if status != 0 {
		return status
	}
	s.telco.mu.Lock()
	u.acct.flows[id] = flow
	s.telco.mu.Unlock()
	return writeFlow(w, id, flow)
}

// serveFlowDelete answers DELETE /rest/sip/app/call/flow/{uuid}.
func (s *Sandbox) serveFlowDelete(w http.ResponseWriter, _ *http.Request, u *user, id string) int {
	if !s.app(u, id) {
		return writeError(w, http.StatusNotFound, noApp)
	}
	s.telco.mu.Lock()
	_, ok := u.acct.flows[id]
	delete(u.acct.flows, id)
	s.telco.mu.Unlock()
	if !ok {
		return writeError(w, http.StatusNotFound, "No call flow is saved for this app")
	}
	return writeBody(w, http.StatusOK, struct {
		Success bool `json:"success"`
	}{true})
}

// serveOnlineCalls answers GET /rest/sip/app/call/online: the calls under
// way, oldest first.
func (s *Sandbox) serveOnlineCalls(w http.ResponseWriter, _ *http.Request, u *user, _ string) int {
	s.telco.mu.Lock()
	defer s.telco.mu.Unlock()
	out := []scaCallJSON{}
	for _, c := range u.acct.calls {
		if c.online {
			out = append(out, c.view(u.acct))
		}
	}
	return writeSuccess(w, http.StatusOK, out)
}

// serveCallGet answers GET /rest/sip/app/call/{uuid}.
func (s *Sandbox) serveCallGet(w http.ResponseWriter, _ *http.Request, u *user, id string) int {
	s.telco.mu.Lock()
	defer s.telco.mu.Unlock()
	c := u.acct.callByID[id]
	if c == nil {
		return writeError(w, http.StatusNotFound, "Not found")
	}
	return writeSuccess(w, http.StatusOK, c.view(u.acct))
}

// serveCallExecute answers POST /rest/sip/app/call/{uuid}: a live call
// runs the flow of the multipart file "file" now.
func (s *Sandbox) serveCallExecute(w http.ResponseWriter, r *http.Request, u *user, id string) int {
	flow, status := readFlow(w, r)
	if status != 0 {
		return status
	}
	s.telco.mu.Lock()
	defer s.telco.mu.Unlock()
	c := u.acct.callByID[id]
	switch {
	case c == nil:
		return writeError(w, http.StatusNotFound, "Not found")
	case !c.online:
		return writeError(w, http.StatusBadRequest, "The call is not online")
	}
	s.run(u.acct, c, flow, s.now().UTC())
	return writeSuccess(w, http.StatusOK, c.view(u.acct))
}

// callMasks are the call search's members that take masks.
var callMasks = []string{"tn", "from", "to"}

// serveCallSearch answers POST /rest/sip/app/call/search: a page of the
// call log, newest first.
func (s *Sandbox) serveCallSearch(w http.ResponseWriter, r *http.Request, u *user, _ string) int {
	sr, status := readSearch(w, r, nil, callMasks)
	if status != 0 {
		return status
	}
	a := u.acct
	return sr.answer(w, newestFirst(s, func() []*scaCall { return a.calls }, nil, func(c *scaCall) searchItem {
		out, view := searchView(c.view(a))
		view["tn"] = json.RawMessage(strconv.FormatInt(c.tn, 10))
		view["sip_control_app"], _ = json.Marshal(c.app)
		return searchItem{view: view, out: out}
	}))
}

// serveFlowLogs answers POST /rest/sip/app/{uuid}/logs: a page of the
// verbs the app's flows ran, newest first.
func (s *Sandbox) serveFlowLogs(w http.ResponseWriter, r *http.Request, u *user, id string) int {
	if !s.app(u, id) {
		return writeError(w, http.StatusNotFound, noApp)
	}
	sr, status := readSearch(w, r, nil, []string{"from"})
	if status != 0 {
		return status
	}
	a := u.acct
	mine := func(e *flowLog) bool { return e.app == id }
	return sr.answer(w, newestFirst(s, func() []*flowLog { return a.flowLogs }, mine, func(e *flowLog) searchItem {
		out, view := searchView(flowLogJSON{
			UUID: e.uuid, CreatedOn: stamp(e.created), ModifiedOn: stamp(e.created), Name: e.name, Success: true,
			Command: e.command, Response: map[string]any{"success": true}, Call: e.call.view(a), SIPControlApp: reference(e.app),
		})
		view["call"], _ = json.Marshal(e.call.uuid)
		view["from"], _ = json.Marshal(e.call.from)
		view["tn"] = json.RawMessage(strconv.FormatInt(e.call.tn, 10))
		return searchItem{view: view, out: out}
	}))
}

// startCall keeps a new call to a's number n for app, under telco.mu.
func (a *acct) startCall(c *scaCall) {
	if len(a.calls) >= maxCalls {
		old := a.calls[0]
		a.calls = a.calls[1:]
		delete(a.callByID, old.uuid)
	}
	a.calls = append(a.calls, c)
	a.callByID[c.uuid] = c
}

// run plays flow on c as far as the sandbox can: it logs each of the
// flow's verbs, in order, as Opentact would run them, and keeps each as
// a flow log entry. Under telco.mu.
func (s *Sandbox) run(a *acct, c *scaCall, flow string, now time.Time) {
	for _, v := range verbs(flow) {
		s.log.Info("sandbox: call flow verb", slog.String("call", c.uuid), slog.String("app", c.app),
			slog.String("verb", v.name), slog.Any("attributes", v.attrs))
		if len(a.flowLogs) >= maxFlowLogs {
			a.flowLogs = a.flowLogs[1:]
		}
		a.flowLogs = append(a.flowLogs, &flowLog{uuid: newUUID(), app: c.app, call: c, name: v.name, command: v.attrs, created: now})
	}
	c.modified = now
}

// verb is one verb of a flow's <Response>, with its attributes.
type verb struct {
	name  string
	attrs map[string]string
}

// verbs are the verbs directly under flow's <Response>, in order. The flow
// was checked when it was saved.
func verbs(flow string) []verb {
	d := xml.NewDecoder(bytes.NewReader([]byte(flow)))
	var out []verb
	depth := 0
	for {
		tok, err := d.Token()
		if err != nil {
			return out
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 {
				attrs := map[string]string{}
				for _, a := range t.Attr {
					attrs[a.Name.Local] = a.Value
				}
				out = append(out, verb{name: t.Name.Local, attrs: attrs})
			}
		case xml.EndElement:
			depth--
		}
	}
}
