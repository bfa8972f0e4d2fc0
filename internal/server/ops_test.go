package server_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/sandbox"
	"github.com/opentact-facade/opentact-facade/internal/server"
)

// TestReflectionServesTheAPI does what grpcurl does: list the services,
// fetch AuthService's descriptors by symbol, and call GetAuth with dynamic
// messages built from them alone.
func TestReflectionServesTheAPI(t *testing.T) {
	t.Parallel()
	f := startFacade(t, startSandbox(t).URL)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	stream, err := rpb.NewServerReflectionClient(f.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ask := func(req *rpb.ServerReflectionRequest) *rpb.ServerReflectionResponse {
		t.Helper()
		if err := stream.Send(req); err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	var names []string
	for _, s := range ask(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{}}).GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	if !slicesContains(names, "opentact.auth.v1.AuthService") {
		t.Fatalf("services %v do not include opentact.auth.v1.AuthService", names)
	}

	resp := ask(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "opentact.auth.v1.AuthService"}})
	files := &descriptorpb.FileDescriptorSet{}
	for _, raw := range resp.GetFileDescriptorResponse().GetFileDescriptorProto() {
		fd := &descriptorpb.FileDescriptorProto{}
		if err := proto.Unmarshal(raw, fd); err != nil {
			t.Fatal(err)
		}
		files.File = append(files.File, fd)
	}
	_ = stream.CloseSend()
	reg, err := protodesc.NewFiles(files)
	if err != nil {
		t.Fatalf("descriptors from reflection do not resolve: %v", err)
	}
	d, err := reg.FindDescriptorByName("opentact.auth.v1.AuthService")
	if err != nil {
		t.Fatal(err)
	}
	method := d.(protoreflect.ServiceDescriptor).Methods().ByName("GetAuth")
	if method == nil {
		t.Fatal("reflection shows no GetAuth method")
	}
	in := dynamicpb.NewMessage(method.Input())
	out := dynamicpb.NewMessage(method.Output())
	callCtx := metadata.AppendToOutgoingContext(ctx, "authorization", demoBasic)
	if err := f.conn.Invoke(callCtx, "/opentact.auth.v1.AuthService/GetAuth", in, out); err != nil {
		t.Fatalf("dynamic GetAuth: %v", err)
	}
	user := out.Get(method.Output().Fields().ByName("user")).Message()
	if email := user.Get(user.Descriptor().Fields().ByName("email")).String(); email != sandbox.DemoEmail {
		t.Errorf("email = %q, want %s", email, sandbox.DemoEmail)
	}
}

// TestLogsHoldNoSecrets runs calls with every credential kind, successes
// and failures, logging at debug level, and looks for every secret in the
// output.
func TestLogsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	sb := startSandbox(t)
	f := startFacade(t, sb.URL)
	const password = "Sup3r-Secret-Pass"
	badBasic := basic(sandbox.DemoEmail, password)

	secrets := []string{
		sandbox.DemoPassword, demoBasic, strings.TrimPrefix(demoBasic, "Basic "),
		password, badBasic, strings.TrimPrefix(badBasic, "Basic "),
		sandbox.DemoAPIToken, sandbox.DemoGoogleToken, sandbox.DemoFacebookToken, sandbox.DemoHA1B,
		"forged-jwt-value",
	}
	calls := []metadata.MD{
		metadata.Pairs("authorization", demoBasic),
		metadata.Pairs("authorization", badBasic),
		metadata.Pairs("authorization", "Bearer "+sandbox.DemoAPIToken),
		metadata.Pairs("x-auth-google-token", sandbox.DemoGoogleToken),
		metadata.Pairs("x-auth-facebook-token", sandbox.DemoFacebookToken),
		metadata.Pairs("x-auth-ha1b-token", sandbox.DemoHA1B),
		metadata.Pairs("x-auth-token", "forged-jwt-value", "authorization", demoBasic),
		metadata.Pairs("x-auth-token", "forged-jwt-value", "x-auth-token", "forged-jwt-value"),
	}
	var jwts []string
	for _, md := range calls {
		resp, _ := f.client.GetAuth(metadata.NewOutgoingContext(context.Background(), md), &authv1.GetAuthRequest{})
		if tok := resp.GetUser().GetToken(); tok != "" {
			jwts = append(jwts, tok)
		}
		h := http.Header{}
		for k, vs := range md {
			h[http.CanonicalHeaderKey(k)] = vs
		}
		f.rest(t, http.MethodGet, "/v1/auth", h)
	}
	if len(jwts) == 0 {
		t.Fatal("no call succeeded; the test would prove nothing")
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "finished call") || !strings.Contains(logs, "opentact call failed") {
		t.Fatalf("expected access and failure lines in the logs, got:\n%s", logs)
	}
	for _, s := range append(secrets, jwts...) {
		if strings.Contains(logs, s) {
			t.Errorf("the logs contain the secret %q", s)
		}
		if b64 := base64.StdEncoding.EncodeToString([]byte(s)); strings.Contains(logs, b64) {
			t.Errorf("the logs contain the secret %q in base64", s)
		}
	}
}

// TestShutdownLetsCallsInFlightFinish cancels Serve's context while a
// gRPC and a REST call wait on a slow upstream; both still succeed.
func TestShutdownLetsCallsInFlightFinish(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	arrived := make(chan struct{}, 2)
	up := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		answer(200, okBody)(w, r)
	})
	f, stop := startStoppableFacade(t, up.URL)
	releaseOnce := sync.OnceFunc(func() { close(release) })
	t.Cleanup(releaseOnce) // runs before the upstream closes, even if the test fails early

	var wg sync.WaitGroup
	var grpcErr error
	var restStatus int
	wg.Add(2)
	go func() {
		defer wg.Done()
		// Different credentials: identical calls would share one request.
		_, grpcErr = f.client.GetAuth(metadata.AppendToOutgoingContext(context.Background(), "x-auth-token", "t1"), &authv1.GetAuthRequest{})
	}()
	go func() {
		defer wg.Done()
		resp, _ := f.rest(t, http.MethodGet, "/v1/auth", http.Header{"X-Auth-Token": {"t2"}})
		restStatus = resp.StatusCode
	}()
	<-arrived
	<-arrived

	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	select {
	case err := <-stopped:
		t.Fatalf("Serve returned (%v) while calls were in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	releaseOnce()
	wg.Wait()
	if grpcErr != nil {
		t.Errorf("gRPC call in flight during shutdown: %v", grpcErr)
	}
	if restStatus != http.StatusOK {
		t.Errorf("REST call in flight during shutdown: status %d", restStatus)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// TestShutdownEndsHealthWatches: health Watch streams, which last as long
// as their clients, hear NOT_SERVING when the shutdown begins and then end
// with UNAVAILABLE, so Serve returns at once instead of at the end of the
// grace; a call in flight still finishes.
func TestShutdownEndsHealthWatches(t *testing.T) {
	t.Parallel()
	// Long, so that ending well within it is about the watches, not the
	// machine's speed.
	const grace = time.Minute
	up, arrived, release := holdingUpstream(t)
	f, stop := startStoppableFacade(t, up.URL, func(o *server.Options) { o.ShutdownGrace = grace })

	ctx, cancel := context.WithTimeout(context.Background(), 2*grace)
	defer cancel()
	// The whole server, the AuthService, and a service it does not know.
	watches := map[string]healthpb.Health_WatchClient{}
	for _, svc := range []string{"", authv1.AuthService_ServiceDesc.ServiceName, "no.such.Service"} {
		w, err := healthpb.NewHealthClient(f.conn).Watch(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil {
			t.Fatalf("Watch %q: %v", svc, err)
		}
		want := healthpb.HealthCheckResponse_SERVING
		if svc == "no.such.Service" {
			want = healthpb.HealthCheckResponse_SERVICE_UNKNOWN
		}
		if r, err := w.Recv(); err != nil || r.GetStatus() != want {
			t.Fatalf("Watch %q: first status %v, %v; want %v", svc, r.GetStatus(), err, want)
		}
		watches[svc] = w
	}
	slow := make(chan error, 1)
	go func() {
		_, err := f.client.GetAuth(authCtx(t, 2*grace), &authv1.GetAuthRequest{})
		slow <- err
	}()
	waitArrivals(t, arrived, 1)

	begun := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()

	type end struct {
		statuses []healthpb.HealthCheckResponse_ServingStatus
		err      error
	}
	ends := map[string]chan end{}
	for svc, w := range watches {
		ch := make(chan end, 1)
		ends[svc] = ch
		go func() {
			var e end
			for {
				r, err := w.Recv()
				if err != nil {
					e.err = err
					ch <- e
					return
				}
				e.statuses = append(e.statuses, r.GetStatus())
			}
		}()
	}
	for svc, ch := range ends {
		select {
		case e := <-ch:
			if svc != "no.such.Service" && (len(e.statuses) != 1 || e.statuses[0] != healthpb.HealthCheckResponse_NOT_SERVING) {
				t.Errorf("Watch %q heard %v before it ended, want NOT_SERVING", svc, e.statuses)
			}
			if status.Code(e.err) != codes.Unavailable {
				t.Errorf("Watch %q ended with %v, want UNAVAILABLE", svc, e.err)
			}
		case <-time.After(grace / 2):
			t.Fatalf("Watch %q still open %v after shutdown began (grace %v)", svc, time.Since(begun), grace)
		}
	}
	// The call in flight holds the shutdown, not the watches.
	select {
	case err := <-stopped:
		t.Fatalf("Serve returned (%v) with a call in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	release()
	if err := <-slow; err != nil {
		t.Errorf("the call in flight during shutdown: %v", err)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
		if d := time.Since(begun); d > grace/2 {
			t.Errorf("Serve returned %v after shutdown began, want well within the %v grace", d, grace)
		}
	case <-time.After(grace / 2):
		t.Fatalf("Serve did not return %v after the last call ended", grace/2)
	}
}
