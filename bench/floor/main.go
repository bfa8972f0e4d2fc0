// Command floor is make bench's floor: the least a facade built on this
// stack (grpc-go, grpc-gateway in the process, net/http to the upstream)
// can be. It does less than any real facade must, so that no facade on
// the same stack can beat its throughput on the same machine:
//
//   - --mode=echo answers GetAuth with nothing but the e-mail of the
//     caller's Basic credential, without calling the upstream: the
//     least a call answered from a cache can cost;
//   - --mode=forward makes one plain net/http request per call, decodes
//     the answer (upstream.DecodeAnswer) and answers with the e-mail
//     alone: the least a call sent to the upstream can cost.
//
// --upstream-ca trusts a PEM bundle for an HTTPS upstream (forward), and
// --delay makes echo answer that long after each call arrives: the least
// memory a call held in flight as long as a distant upstream takes can
// cost, with no upstream connection at all. --debug-addr serves Go's
// profiler, as the facade's does, so that make bench can profile the
// floor beside the facade.
//
// It has no interceptors, logs, metrics, traces, retries, circuit
// breaker, bounds or sharing, and maps nothing but the e-mail. It takes
// the facade's --grpc-addr, --http-addr, --admin-addr and --upstream
// flags (and ignores --log-level and --max-connections-per-client),
// answers /readyz on the REST port and on --admin-addr, and is built and
// run by make bench alone: it is not a facade to deploy.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/certs"
	"github.com/opentact-facade/opentact-facade/internal/codec"
	"github.com/opentact-facade/opentact-facade/internal/profiler"
	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

func main() {
	grpcAddr := flag.String("grpc-addr", "127.0.0.1:0", "gRPC listen address")
	httpAddr := flag.String("http-addr", "127.0.0.1:0", "REST listen address")
	up := flag.String("upstream", "", "the upstream's base URL (forward mode)")
	mode := flag.String("mode", "forward", "echo or forward")
	ca := flag.String("upstream-ca", "", "PEM bundle the upstream's certificate must chain to (forward mode)")
	delay := flag.Duration("delay", 0, "echo mode: answer this long after each call arrives")
	debugAddr := flag.String("debug-addr", "", "serve Go's profiler (/debug/pprof/) on this address; off when empty")
	adminAddr := flag.String("admin-addr", "", "answer /readyz on this address too, as the facade's admin port; off when empty")
	flag.String("log-level", "", "ignored: the floor logs nothing")
	flag.Int("max-connections-per-client", 0, "ignored: the floor has no bounds")
	flag.Parse()
	if err := run(*grpcAddr, *httpAddr, *debugAddr, *adminAddr, *up, *mode, *ca, *delay); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func run(grpcAddr, httpAddr, debugAddr, adminAddr, up, mode, ca string, delay time.Duration) error {
	cfg, err := load(up, mode, ca, delay)
	if err != nil {
		return err
	}
	if debugAddr != "" {
		dl, err := net.Listen("tcp", debugAddr)
		if err != nil {
			return err
		}
		defer profiler.Serve(dl)()
	}
	gl, err := net.Listen("tcp", grpcAddr)
	if err != nil {
		return err
	}
	hl, err := net.Listen("tcp", httpAddr)
	if err != nil {
		gl.Close()
		return err
	}
	if adminAddr != "" {
		// Last: once it answers, the other two listen.
		al, err := net.Listen("tcp", adminAddr)
		if err != nil {
			gl.Close()
			hl.Close()
			return err
		}
		as := &http.Server{Handler: http.HandlerFunc(ready), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = as.Serve(al) }()
		defer as.Close()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, gl, hl, cfg)
}

// load is the floor's configuration from its flags.
func load(up, mode, ca string, delay time.Duration) (config, error) {
	cfg := config{up: up, mode: mode, delay: delay}
	if ca == "" {
		return cfg, nil
	}
	var err error
	cfg.roots, err = certs.Pool("--upstream-ca", ca)
	return cfg, err
}

type config struct {
	up, mode string
	roots    *x509.CertPool // nil: the system's
	delay    time.Duration  // echo's
}

// serve answers GetAuth on gl (gRPC) and hl (REST) until ctx ends.
func serve(ctx context.Context, gl, hl net.Listener, cfg config) error {
	defer gl.Close()
	defer hl.Close()
	f := &floor{url: strings.TrimSuffix(cfg.up, "/") + "/rest/auth", delay: cfg.delay}
	switch cfg.mode {
	case "echo":
	case "forward":
		f.forward = true
		tr := upstream.NewTransport()
		if cfg.roots != nil {
			tr.TLSClientConfig = &tls.Config{RootCAs: cfg.roots}
		}
		f.client = &http.Client{Transport: tr}
		defer f.client.CloseIdleConnections()
	default:
		return fmt.Errorf("--mode %q: want echo or forward", cfg.mode)
	}
	gs := grpc.NewServer()
	authv1.RegisterAuthServiceServer(gs, f)
	gw := runtime.NewServeMux(runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.HTTPBodyMarshaler{
		Marshaler: &runtime.JSONPb{MarshalOptions: protojson.MarshalOptions{UseProtoNames: true}},
	}))
	if err := authv1.RegisterAuthServiceHandlerServer(context.Background(), gw, f); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", ready)
	mux.Handle("/", gw)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	errc := make(chan error, 2)
	go func() { errc <- gs.Serve(gl) }()
	go func() { errc <- hs.Serve(hl) }()
	var err error
	done := 0
	select {
	case err = <-errc:
		done++
	case <-ctx.Done():
	}
	gs.Stop()
	_ = hs.Close()
	for ; done < 2; done++ {
		<-errc // both serve loops are over before serve returns
	}
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, grpc.ErrServerStopped) {
		err = nil
	}
	return err
}

// ready answers /readyz.
func ready(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") }

type floor struct {
	authv1.UnimplementedAuthServiceServer
	forward bool
	url     string
	client  *http.Client
	delay   time.Duration
}

func (f *floor) GetAuth(ctx context.Context, _ *authv1.GetAuthRequest) (*authv1.GetAuthResponse, error) {
	auth := metadata.ValueFromIncomingContext(ctx, "authorization")
	if len(auth) != 1 {
		return nil, status.Error(codes.Unauthenticated, "one authorization header, please")
	}
	if !f.forward {
		email, ok := basicEmail(auth[0])
		if !ok {
			return nil, status.Error(codes.Unauthenticated, "not a Basic credential")
		}
		if f.delay > 0 {
			t := time.NewTimer(f.delay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return nil, status.FromContextError(ctx.Err()).Err()
			}
		}
		return answer(email), nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url, nil)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	req.Header["Authorization"] = auth
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, status.Error(codes.Unavailable, "upstream unreachable")
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	switch {
	case err != nil:
		return nil, status.Error(codes.Unavailable, "upstream answer cut off")
	case resp.StatusCode != http.StatusOK:
		return nil, status.Errorf(codes.Unknown, "upstream HTTP %d", resp.StatusCode)
	}
	var u authv1.GetAuthResponse
	m := u.ProtoReflect()
	if err := upstream.DecodeAnswer(body, func(p []byte) error { return codec.DecodeField(p, m, userField) }); err != nil {
		return nil, status.Error(codes.Internal, "upstream answer not understood")
	}
	return answer(u.GetUser().GetEmail()), nil
}

// userField is the field GET /rest/auth's payload fills, as the facade
// declares it.
var userField = (&authv1.GetAuthResponse{}).ProtoReflect().Descriptor().Fields().ByName("user")

func answer(email string) *authv1.GetAuthResponse {
	return &authv1.GetAuthResponse{User: &authv1.User{Email: &email}}
}

// basicEmail is the user name of a Basic credential.
func basicEmail(h string) (string, bool) {
	enc, ok := strings.CutPrefix(h, "Basic ")
	if !ok {
		return "", false
	}
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return "", false
	}
	email, _, ok := strings.Cut(string(raw), ":")
	return email, ok
}
