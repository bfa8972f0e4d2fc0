package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	apiv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/api/v1"
	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/declare"
	"github.com/opentact-facade/opentact-facade/service"
)

const (
	fakeEmail    = "anna@example.com"
	fakePassword = "fake-Password-7731"
	// fakeSecret is the API token the fake Opentact hands out.
	fakeSecret = "7VLyaDSQ8W48IETeNBfxbBqwgwzWLTvFojSnLgiXP5X8NSoE"
	fakeJWT    = "eyJhbGciOiJIUzI1NiJ9.eyJ1dWlkIjoibWUifQ.c2lnbmF0dXJl"
	adminJWT   = "eyJhbGciOiJIUzI1NiJ9.eyJ1dWlkIjoiYWRtaW4ifQ.c2lnbmF0dXJl"
	fakeToken  = `{"uuid":"bac27d93-df33-4e47-b4a1-edfcae0d3654","name":"ci","token":"` + fakeSecret + `","ttl":3600,"expired_on":"2020-10-26T16:57:28.701Z"}`
)

var fakeEnv = map[string]string{"OPENTACT_PASSWORD": fakePassword}

// seenRequest is one request as Opentact received it, its JSON body
// compacted.
type seenRequest struct {
	Method, URI, Body, Authorization string
}

// opentact is an Opentact on loopback, with a facade in front of it, for
// one test: it records every request and answers the demo user's calls
// with documented answers (numberAnswer's for numbers and SMS).
type opentact struct {
	addr string // the facade's gRPC address
	mu   sync.Mutex
	seen []seenRequest
}

func startOpentact(t *testing.T) *opentact {
	t.Helper()
	o := &opentact{}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(fakeEmail+":"+fakePassword))
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		// The JSON, whatever its spacing.
		var compact bytes.Buffer
		if json.Compact(&compact, body) == nil {
			body = compact.Bytes()
		}
		o.mu.Lock()
		o.seen = append(o.seen, seenRequest{r.Method, r.RequestURI, string(body), r.Header.Get("Authorization")})
		o.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if auth := r.Header.Get("Authorization"); auth != basic && auth != "Bearer "+fakeSecret {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"success":false,"message":"Unauthorized","status":401}`)
			return
		}
		if status, reply, ok := numberAnswer(r.Method, r.URL.Path, string(body)); ok {
			w.WriteHeader(status)
			_, _ = io.WriteString(w, reply)
			return
		}
		payload := fakeToken
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/rest/auth":
			payload = `{"uuid":"` + demoUUID + `","email":"` + fakeEmail + `","token":"` + fakeJWT + `","account":{"name":"ACME","admin":{"email":"admin@example.com","token":"` + adminJWT + `"}}}`
		case r.Method == http.MethodGet && r.URL.Path == "/rest/token/list":
			payload = "[" + fakeToken + "]"
		case r.Method == http.MethodDelete && r.URL.Path == "/rest/token/all":
			payload = "{}"
		}
		_, _ = io.WriteString(w, `{"success":true,"payload":`+payload+`}`)
	}))
	t.Cleanup(up.Close)
	o.addr, _ = startFacade(t, up.URL, nil)
	return o
}

// requests returns what Opentact received since the last call.
func (o *opentact) requests() []seenRequest {
	o.mu.Lock()
	defer o.mu.Unlock()
	seen := o.seen
	o.seen = nil
	return seen
}

// callArgs is a call against o with Basic credentials (the password in
// fakeEnv); extra follows the flags.
func (o *opentact) callArgs(method string, extra ...string) []string {
	return append([]string{"call", method, "--plaintext", "--addr", o.addr, "--email", fakeEmail}, extra...)
}

// servedMethods is every method of service.Services, as its descriptor
// says: "package.Service/Method  kind  REST route", sorted.
func servedMethods(t *testing.T) []string {
	t.Helper()
	var lines []string
	for _, s := range service.Services {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(s.Name)
		if err != nil {
			t.Fatal(err)
		}
		methods := d.(protoreflect.ServiceDescriptor).Methods()
		for i := range methods.Len() {
			md := methods.Get(i)
			opts := md.Options().(*descriptorpb.MethodOptions)
			kind := map[descriptorpb.MethodOptions_IdempotencyLevel]string{
				descriptorpb.MethodOptions_NO_SIDE_EFFECTS: "read",
				descriptorpb.MethodOptions_IDEMPOTENT:      "idempotent",
			}[opts.GetIdempotencyLevel()]
			if kind == "" {
				kind = "write"
			}
			if md.IsStreamingServer() {
				kind = "stream"
			} else if !proto.HasExtension(opts, apiv1.E_Upstream) {
				kind = "local" // no Opentact call: the facade answers it
			}
			route := "-"
			if rule, ok := proto.GetExtension(opts, annotations.E_Http).(*annotations.HttpRule); ok && rule != nil {
				for verb, path := range map[string]string{"GET": rule.GetGet(), "POST": rule.GetPost(), "PUT": rule.GetPut(), "PATCH": rule.GetPatch(), "DELETE": rule.GetDelete()} {
					if path != "" {
						route = verb + " " + path
					}
				}
			}
			lines = append(lines, string(s.Name)+"/"+string(md.Name())+" "+kind+" "+route)
		}
	}
	slices.Sort(lines)
	return lines
}

// TestMethodsListsEveryServedMethod: methods prints one line per method
// of service.Services, from the descriptors, so a new service is listed
// with no change here.
func TestMethodsListsEveryServedMethod(t *testing.T) {
	t.Parallel()
	want := servedMethods(t)
	if len(want) < 6 {
		t.Fatalf("the descriptors give %d methods: %q", len(want), want)
	}
	r := cli(t, nil, "", "methods")
	r.wantCode(t, exitOK)
	if r.stderr != "" {
		t.Errorf("stderr: %s", r.stderr)
	}
	var got []string
	for line := range strings.Lines(r.stdout) {
		got = append(got, strings.Join(strings.Fields(line), " "))
	}
	if !slices.Equal(got, want) {
		t.Errorf("methods printed\n%s\nwant (spacing aside)\n%s", r.stdout, strings.Join(want, "\n"))
	}
	if !regexp.MustCompile(`(?m)^opentact\.auth\.v1\.TokenService/CreateToken  +write  +POST /v1/tokens$`).MatchString(r.stdout) {
		t.Errorf("no CreateToken line in the documented form:\n%s", r.stdout)
	}

	r = cli(t, nil, "", "methods", "--json")
	r.wantCode(t, exitOK)
	var entries []methodEntry
	if err := json.Unmarshal([]byte(r.stdout), &entries); err != nil {
		t.Fatalf("methods --json: %v\n%s", err, r.stdout)
	}
	got = got[:0]
	for _, e := range entries {
		route := "-"
		if e.REST != nil {
			route = e.REST.Method + " " + e.REST.Path
		}
		got = append(got, e.Method+" "+e.Kind+" "+route)
		if !strings.HasSuffix(e.Request, "Request") || !strings.HasSuffix(e.Response, "Response") && e.Kind != "stream" {
			t.Errorf("%s: request %q, response %q", e.Method, e.Request, e.Response)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("methods --json printed %s", r.stdout)
	}

	for _, args := range [][]string{{"methods", "extra"}, {"methods", "--bogus"}} {
		if r := cli(t, nil, "", args...); r.code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, r.code, exitUsage)
		}
	}
}

// TestCallReachesEveryServedMethod: every method methods lists is
// answered by the facade through call, by its full and its short name.
func TestCallReachesEveryServedMethod(t *testing.T) {
	t.Parallel()
	o := startOpentact(t)
	// A status the facade gave: a code with an ErrorInfo's reason.
	fromFacade := regexp.MustCompile(`^opentactctl: [A-Za-z]+: .*\([A-Z_]+\)`)
	// short is a method's name with its service's short name, and how
	// many served methods have it.
	short := func(full string) string {
		svc, method, _ := strings.Cut(full, "/")
		return svc[strings.LastIndexByte(svc, '.')+1:] + "/" + method
	}
	var fulls []string
	shorts := map[string]int{}
	for _, line := range servedMethods(t) {
		full, _, _ := strings.Cut(line, " ")
		fulls = append(fulls, full)
		shorts[short(full)]++
	}
	for _, full := range fulls {
		names := []string{full}
		if shorts[short(full)] == 1 {
			names = append(names, short(full))
		}
		for _, name := range names {
			args := o.callArgs(name, "{}")
			if strings.HasSuffix(name, "/StreamEvents") {
				// A stream lasts until Ctrl-C, or --timeout when given.
				args = append(args, "--timeout=1s")
			}
			r := cli(t, fakeEnv, "", args...)
			if r.code == exitOK || r.code == exitFailed && fromFacade.MatchString(r.stderr) {
				continue
			}
			t.Errorf("call %s: exit %d\nstdout: %s\nstderr: %s", name, r.code, r.stdout, r.stderr)
		}
	}
}

// TestCallSendsTheRequestAndPrintsTheAnswer: call sends the request given
// as JSON to the method, with the credentials of the flags, and prints
// the answer with its secrets hidden unless --show-token.
func TestCallSendsTheRequestAndPrintsTheAnswer(t *testing.T) {
	t.Parallel()
	o := startOpentact(t)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(fakeEmail+":"+fakePassword))
	for _, tc := range []struct {
		name  string
		env   map[string]string
		stdin string
		args  []string
		want  seenRequest
		out   string // the whole of stdout, or a part of it with "..."
	}{
		{
			name: "a read, by its full name",
			args: o.callArgs("opentact.auth.v1.TokenService/ListTokens"),
			want: seenRequest{Method: "GET", URI: "/rest/token/list", Authorization: basic},
			out: `{
  "tokens": [
    {
      "uuid": "bac27d93-df33-4e47-b4a1-edfcae0d3654",
      "name": "ci",
      "token": "[hidden: use --show-token]",
      "ttl": 3600,
      "expired_on": "2020-10-26T16:57:28.701Z"
    }
  ]
}
`,
		},
		{
			name: "a write, by its short name, flags after the request",
			args: append([]string{"call", "TokenService/CreateToken", `{"name": "ci", "ttl": 3600}`}, o.callArgs("")[2:]...),
			want: seenRequest{Method: "POST", URI: "/rest/token", Body: `{"name":"ci","ttl":3600}`, Authorization: basic},
			out:  `"token": "[hidden: use --show-token]"`,
		},
		{
			name: "a write with --show-token",
			args: o.callArgs("TokenService/CreateToken", `{"name":"ci"}`, "--show-token"),
			want: seenRequest{Method: "POST", URI: "/rest/token", Body: `{"name":"ci"}`, Authorization: basic},
			out:  `"token": "` + fakeSecret + `"`,
		},
		{
			name:  "a secret in the request, on standard input",
			stdin: "{\n  \"token\": \"" + fakeSecret + "\"\n}\n",
			args:  o.callArgs("TokenService/DeleteToken", "-"),
			want:  seenRequest{Method: "DELETE", URI: "/rest/token/" + fakeSecret, Authorization: basic},
			out:   `"token": "[hidden: use --show-token]"`,
		},
		{
			name: "the secrets of an answer at any depth",
			env:  map[string]string{"OPENTACT_SECRET": fakeSecret},
			args: []string{"call", "AuthService/GetAuth", "--plaintext", "--addr", o.addr, "--kind", "bearer"},
			want: seenRequest{Method: "GET", URI: "/rest/auth", Authorization: "Bearer " + fakeSecret},
			out: `{
  "user": {
    "uuid": "` + demoUUID + `",
    "email": "anna@example.com",
    "token": "[hidden: use --show-token]",
    "account": {
      "name": "ACME",
      "admin": {
        "email": "admin@example.com",
        "token": "[hidden: use --show-token]"
      }
    }
  }
}
`,
		},
		{
			name:  "the password on standard input, the request as an argument",
			stdin: fakePassword + "\n",
			args:  o.callArgs("TokenService/UpdateToken", `{"uuid":"bac27d93-df33-4e47-b4a1-edfcae0d3654","ttl":120}`, "--secret-stdin"),
			want:  seenRequest{Method: "PATCH", URI: "/rest/token/bac27d93-df33-4e47-b4a1-edfcae0d3654", Body: `{"ttl":120}`, Authorization: basic},
			out:   `"uuid": "bac27d93-df33-4e47-b4a1-edfcae0d3654"`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := tc.env
			if env == nil {
				env = fakeEnv
			}
			r := cli(t, env, tc.stdin, tc.args...)
			r.wantCode(t, exitOK)
			if seen := o.requests(); len(seen) != 1 || seen[0] != tc.want {
				t.Errorf("Opentact saw %+v, want %+v", seen, tc.want)
			}
			if r.stderr != "" {
				t.Errorf("stderr: %s", r.stderr)
			}
			if strings.HasPrefix(tc.out, "{") {
				if r.stdout != tc.out {
					t.Errorf("stdout\n%s\nwant\n%s", r.stdout, tc.out)
				}
			} else if !strings.Contains(r.stdout, tc.out) {
				t.Errorf("stdout does not hold %s:\n%s", tc.out, r.stdout)
			}
			if !slices.Contains(tc.args, "--show-token") {
				r.wantNotShown(t, fakeSecret, fakeJWT, adminJWT, fakePassword)
			}
		})
	}

	t.Run("a failed call", func(t *testing.T) {
		r := cli(t, map[string]string{"OPENTACT_PASSWORD": wrongPass}, "", o.callArgs("TokenService/ListTokens")...)
		r.wantCode(t, exitFailed)
		r.wantStderr(t, "opentactctl: Unauthenticated: ", "(UNAUTHORIZED)")
		r.wantNotShown(t, wrongPass)
		if r.stdout != "" {
			t.Errorf("stdout: %s", r.stdout)
		}
		o.requests()
	})
	t.Run("refused by the facade", func(t *testing.T) {
		r := cli(t, fakeEnv, "", o.callArgs("TokenService/CreateToken", `{"name":"ci","ttl":59}`)...)
		r.wantCode(t, exitFailed)
		r.wantStderr(t, "InvalidArgument", "(INVALID_REQUEST)", "\n  ttl: ")
		if seen := o.requests(); len(seen) != 0 {
			t.Errorf("Opentact saw %+v", seen)
		}
	})
}

// TestCallUsageErrors: a call the command cannot make fails with exit 2,
// says why, shows no secret, and reaches nothing.
func TestCallUsageErrors(t *testing.T) {
	t.Parallel()
	o := startOpentact(t)
	for _, tc := range []struct {
		name    string
		env     map[string]string
		stdin   string
		args    []string
		mention []string
	}{
		{"no method", fakeEnv, "", []string{"call", "--plaintext", "--addr", o.addr, "--email", fakeEmail}, []string{"<Service>/<Method>", "opentactctl methods"}},
		{"no service", fakeEnv, "", o.callArgs("ListTokens"), []string{"<Service>/<Method>", "opentactctl methods"}},
		{"an unknown service", fakeEnv, "", o.callArgs("NoSuchService/ListTokens"), []string{`no service "NoSuchService"`}},
		{"an unknown package", fakeEnv, "", o.callArgs("opentact.auth.v2.TokenService/ListTokens"), []string{`no service "opentact.auth.v2.TokenService"`}},
		{"an unknown method", fakeEnv, "", o.callArgs("TokenService/Frobnicate"), []string{`no method "Frobnicate" in opentact.auth.v1.TokenService`}},
		{"a method of the other service", fakeEnv, "", o.callArgs("AuthService/ListTokens"), []string{`no method "ListTokens" in opentact.auth.v1.AuthService`}},
		{"not JSON", fakeEnv, "", o.callArgs("TokenService/CreateToken", `{"name": "ci",}`), []string{"opentact.auth.v1.TokenService/CreateToken", "not JSON", "line 1, column 15"}},
		{"not JSON, on standard input", fakeEnv, "{\n  \"name\": ci\n}", o.callArgs("TokenService/CreateToken", "-"), []string{"not JSON", "line 2, column 11"}},
		{"trailing text", fakeEnv, "", o.callArgs("TokenService/CreateToken", `{"name":"ci"} {}`), []string{"not JSON", "column 15"}},
		{"not an object", fakeEnv, "", o.callArgs("TokenService/CreateToken", `["ci"]`), []string{"JSON object", "opentact.auth.v1.CreateTokenRequest"}},
		{"an unknown field", fakeEnv, "", o.callArgs("TokenService/CreateToken", `{"nme": "ci"}`), []string{"opentact.auth.v1.CreateTokenRequest", `unknown field "nme"`, "line 1:2"}},
		{"a field of the wrong type", fakeEnv, "", o.callArgs("TokenService/CreateToken", `{"name": "ci", "ttl": "soon"}`), []string{"int32 field ttl"}},
		{"a second request", fakeEnv, "", o.callArgs("TokenService/CreateToken", `{"name":"ci"}`, `{}`), []string{"unexpected argument"}},
		{"a request on standard input with --secret-stdin", fakeEnv, "{}", o.callArgs("TokenService/ListTokens", "-", "--secret-stdin"), []string{"--secret-stdin", "OPENTACT_PASSWORD"}},
		{"a request over 4 MiB", fakeEnv, `{"name":"` + strings.Repeat("x", maxRequestBytes) + `"}`, o.callArgs("TokenService/CreateToken", "-"), []string{"over 4194304 bytes"}},
		{"no password", nil, "", o.callArgs("TokenService/ListTokens"), []string{"no password"}},
		{"an unknown flag", fakeEnv, "", o.callArgs("TokenService/ListTokens", "--bogus"), []string{"bogus"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := cli(t, tc.env, tc.stdin, tc.args...)
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

// TestCallKeepsSecretsOffTheCommandLine: a request that sets a secret is
// refused as an argument, and no error repeats a secret of the request.
func TestCallKeepsSecretsOffTheCommandLine(t *testing.T) {
	t.Parallel()
	o := startOpentact(t)
	for _, tc := range []struct {
		name    string
		stdin   string
		args    []string
		mention []string
	}{
		{"a secret as an argument", "", o.callArgs("TokenService/DeleteToken", `{"token":"`+fakeSecret+`"}`), []string{"sets token, a secret", "standard input", "command line"}},
		{"a secret unquoted", "", o.callArgs("TokenService/DeleteToken", `{"token": `+fakeSecret+`}`), []string{"not JSON", "column 12"}},
		{"a secret after a missing colon", "", o.callArgs("TokenService/DeleteToken", `{"token" "`+fakeSecret+`"}`), []string{"not JSON", "column 10"}},
		{"a secret in a field of the wrong type", "{\"name\": \"ci\", \"ttl\": \"" + fakeSecret + "\"}", o.callArgs("TokenService/CreateToken", "-"), []string{"int32 field ttl", "[hidden]"}},
		{"a secret in an unknown field", `{"tokn": "` + fakeSecret + `"}`, o.callArgs("TokenService/DeleteToken", "-"), []string{`unknown field "tokn"`}},
		{"a secret alone", "", o.callArgs("TokenService/DeleteToken", fakeSecret), []string{"not JSON"}},
		{"a secret where the method goes", "", o.callArgs(fakeSecret), []string{"<Service>/<Method>"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := cli(t, fakeEnv, tc.stdin, tc.args...)
			r.wantCode(t, exitUsage)
			r.wantStderr(t, tc.mention...)
			r.wantNotShown(t, fakeSecret)
		})
	}
	t.Cleanup(func() {
		if seen := o.requests(); len(seen) != 0 {
			t.Errorf("Opentact saw %+v", seen)
		}
	})
}

// TestCallMasksTheRequestsSecretsInErrors: an error that echoes a secret
// of the request does not get it printed. The facade scrubs what it
// knows; this server, which echoes, stands for one that does not.
func TestCallMasksTheRequestsSecretsInErrors(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		var req authv1.DeleteTokenRequest
		if err := stream.RecvMsg(&req); err != nil {
			return err
		}
		st, err := status.New(codes.NotFound, "no token "+req.GetToken()).WithDetails(&errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "token", Description: req.GetToken() + " is unknown"}},
		})
		if err != nil {
			return err
		}
		return st.Err()
	}))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	r := cli(t, fakeEnv, `{"token":"`+fakeSecret+`"}`, "call", "TokenService/DeleteToken", "-", "--plaintext", "--addr", l.Addr().String(), "--email", fakeEmail)
	r.wantCode(t, exitFailed)
	r.wantStderr(t, "NotFound: no token [hidden]", "\n  token: [hidden] is unknown")
	r.wantNotShown(t, fakeSecret)
}

// TestResolve: a short service name is taken only when one service has
// it; the full name always is.
func TestResolve(t *testing.T) {
	t.Parallel()
	var calls []*declare.Call
	for _, pkg := range []string{"a.v1", "b.v1"} {
		fd, err := protodesc.NewFile(&descriptorpb.FileDescriptorProto{
			Name:        proto.String(pkg + ".proto"),
			Package:     proto.String(pkg),
			Syntax:      proto.String("proto3"),
			MessageType: []*descriptorpb.DescriptorProto{{Name: proto.String("Empty")}},
			Service: []*descriptorpb.ServiceDescriptorProto{{
				Name:   proto.String("Things"),
				Method: []*descriptorpb.MethodDescriptorProto{{Name: proto.String("List"), InputType: proto.String("." + pkg + ".Empty"), OutputType: proto.String("." + pkg + ".Empty")}},
			}},
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		md := fd.Services().Get(0).Methods().Get(0)
		calls = append(calls, &declare.Call{Method: md, FullMethod: "/" + pkg + ".Things/List"})
	}
	for name, want := range map[string]string{"a.v1.Things/List": "/a.v1.Things/List", "/b.v1.Things/List": "/b.v1.Things/List"} {
		if c, err := resolve(calls, name); err != nil || c.FullMethod != want {
			t.Errorf("resolve(%q) = %v, %v; want %s", name, c, err, want)
		}
	}
	_, err := resolve(calls, "Things/List")
	if err == nil || !strings.Contains(err.Error(), "a.v1.Things, b.v1.Things") || !strings.Contains(err.Error(), "full name") {
		t.Errorf("resolve of an ambiguous short name: %v", err)
	}
	_, err = resolve(calls[:1], "Things/List")
	if err != nil {
		t.Errorf("resolve of a unique short name: %v", err)
	}
}

// TestBinaryCall runs methods and call as a process: the request with
// its secret on standard input, exit codes to the shell.
func TestBinaryCall(t *testing.T) {
	t.Parallel()
	bin := builtBinary(t)
	o := startOpentact(t)
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "OPENTACT_") })
	env = append(env, "OPENTACT_PASSWORD="+fakePassword)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	out, err := exec.CommandContext(ctx, bin, "methods").Output()
	if err != nil {
		t.Fatalf("methods: %v", err)
	}
	if n := strings.Count(string(out), "\n"); n != len(servedMethods(t)) {
		t.Errorf("methods printed %d lines:\n%s", n, out)
	}

	cmd := exec.CommandContext(ctx, bin, o.callArgs("TokenService/DeleteToken", "-")...)
	cmd.Env = env
	cmd.Stdin = strings.NewReader(`{"token":"` + fakeSecret + `"}`)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %v\nstderr: %s", cmd.Args, err, stderr.String())
	}
	if seen := o.requests(); len(seen) != 1 || seen[0].URI != "/rest/token/"+fakeSecret {
		t.Errorf("Opentact saw %+v", seen)
	}
	if !strings.Contains(stdout.String(), `"token": "[hidden: use --show-token]"`) || strings.Contains(stdout.String()+stderr.String(), fakeSecret) {
		t.Errorf("stdout %s\nstderr %s", stdout.String(), stderr.String())
	}

	for want, args := range map[int][]string{
		exitFailed: o.callArgs("TokenService/ListTokens", "--email", "nobody@example.com"),
		exitUsage:  o.callArgs("TokenService/Frobnicate"),
	} {
		c := exec.CommandContext(ctx, bin, args...)
		c.Env = env
		out, err := c.CombinedOutput()
		code := -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		if code != want {
			t.Errorf("%v: exit %d (%v), want %d\n%s", args, code, err, want, out)
		}
	}
}

// TestCallHelp: call's and methods' usage say what they do and where a
// secret goes.
func TestCallHelp(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args    []string
		mention []string
	}{
		{[]string{"call", "-h"}, []string{"<Service>/<Method>", "TokenService", "standard input", "every user", "--show-token", "debug_redact", "OPENTACT_PASSWORD", "-addr"}},
		{[]string{"methods", "-h"}, []string{"read", "idempotent", "write", "--json"}},
		{[]string{"-h"}, []string{"opentactctl methods", "opentactctl call"}},
	} {
		r := cli(t, nil, "", tc.args...)
		r.wantCode(t, exitOK)
		r.wantStderr(t, append([]string{"Usage"}, tc.mention...)...)
	}
	if r := cli(t, nil, "", "methods", "-h"); strings.Contains(r.stderr, "-addr") {
		t.Errorf("methods lists connection flags it does not use:\n%s", r.stderr)
	}
}
