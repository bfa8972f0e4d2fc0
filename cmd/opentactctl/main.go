// Command opentactctl calls opentact-facade from the command line.
//
//	OPENTACT_PASSWORD=… opentactctl auth --plaintext --email anna@example.com
//	opentactctl auth --kind token --secret-stdin < jwt.txt
//
// Secrets (a password or a token) come from the environment or from
// standard input, never from a flag: command lines are visible to every
// user of the machine and kept in shell history.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/opentact-facade/opentact-facade/client"
	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
)

func main() {
	ctx := context.Background()
	os.Exit(run(ctx, os.Args[1:], os.LookupEnv, os.Stdin, os.Stdout, os.Stderr))
}

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // the call failed
	exitUsage  = 2 // bad command line or input
)

const usage = `Usage: opentactctl auth [flags]

Calls opentact.auth.v1.AuthService/GetAuth through opentact-facade and prints
the answer as JSON. The JWT in the answer is shown only with --show-token.

Credentials (secrets never come from a flag):
  --email E (or OPENTACT_EMAIL) with the password in OPENTACT_PASSWORD, or
  on standard input with --secret-stdin: Basic credentials.
  --kind bearer|token|google|facebook|ha1b with the secret in OPENTACT_SECRET,
  or on standard input with --secret-stdin.

Flags:
`

// kinds maps --kind to the credential it builds.
var kinds = map[string]func(string) *client.Credentials{
	"bearer":   client.Bearer,
	"token":    client.Token,
	"google":   client.GoogleToken,
	"facebook": client.FacebookToken,
	"ha1b":     client.HA1B,
}

func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdin io.Reader, stdout, stderr io.Writer) int {
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "opentactctl: "+format+"\n", a...)
		return code
	}
	if len(args) == 0 || args[0] != "auth" {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	env := func(name, def string) string {
		if v, ok := lookupEnv(name); ok {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("opentactctl auth", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	var (
		addr        = fs.String("addr", env("OPENTACT_FACADE_ADDR", "127.0.0.1:9090"), "the facade's gRPC address (env OPENTACT_FACADE_ADDR)")
		plaintext   = fs.Bool("plaintext", false, "connect without TLS; the credentials then travel in clear text")
		caFile      = fs.String("cacert", "", "PEM CA bundle to verify the facade's certificate (default: the system's)")
		certFile    = fs.String("cert", "", "PEM client certificate, for a facade that requires mTLS")
		keyFile     = fs.String("key", "", "PEM key of --cert")
		email       = fs.String("email", env("OPENTACT_EMAIL", ""), "e-mail for Basic credentials (env OPENTACT_EMAIL)")
		kind        = fs.String("kind", "", "token kind instead of Basic: bearer, token, google, facebook or ha1b")
		secretStdin = fs.Bool("secret-stdin", false, "read the password or token from the first line of standard input")
		timeout     = fs.Duration("timeout", 10*time.Second, "deadline of the call")
		showToken   = fs.Bool("show-token", false, "print the JWT of the answer instead of hiding it")
	)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		// Not echoed: a stray argument is often a password typed where
		// it does not belong, and stderr ends up in logs.
		return fail(exitUsage, "unexpected argument after the flags (secrets go in the environment or on standard input, never on the command line)")
	}
	// Only an --email on the command line conflicts with --kind: an
	// OPENTACT_EMAIL exported for Basic calls does not.
	emailFlag := false
	fs.Visit(func(f *flag.Flag) { emailFlag = emailFlag || f.Name == "email" })

	var secret string
	var haveSecret bool
	if *secretStdin {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fail(exitUsage, "reading standard input: %v", err)
		}
		secret, haveSecret = strings.TrimRight(line, "\r\n"), true
	}
	var creds *client.Credentials
	switch {
	case *kind != "" && *kind != "basic" && emailFlag:
		return fail(exitUsage, "--email goes with Basic credentials, not --kind %s", *kind)
	case *kind == "" || *kind == "basic":
		if *email == "" {
			return fail(exitUsage, "give --email (or OPENTACT_EMAIL), or --kind for a token")
		}
		if !haveSecret {
			secret, haveSecret = lookupEnv("OPENTACT_PASSWORD")
		}
		if !haveSecret || secret == "" {
			return fail(exitUsage, "no password: set OPENTACT_PASSWORD or use --secret-stdin")
		}
		creds = client.Basic(*email, secret)
	default:
		build, ok := kinds[*kind]
		if !ok {
			return fail(exitUsage, "unknown --kind %q: want bearer, token, google, facebook or ha1b", *kind)
		}
		if !haveSecret {
			secret, haveSecret = lookupEnv("OPENTACT_SECRET")
		}
		if !haveSecret || secret == "" {
			return fail(exitUsage, "no %s: set OPENTACT_SECRET or use --secret-stdin", *kind)
		}
		creds = build(secret)
	}

	transport := insecure.NewCredentials()
	if *plaintext {
		creds = creds.AllowInsecure()
	} else {
		cfg, err := tlsConfig(*caFile, *certFile, *keyFile)
		if err != nil {
			return fail(exitUsage, "%v", err)
		}
		transport = credentials.NewTLS(cfg)
	}
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(transport), grpc.WithPerRPCCredentials(creds))
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	defer conn.Close()

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	resp, err := authv1.NewAuthServiceClient(conn).GetAuth(ctx, &authv1.GetAuthRequest{})
	if err != nil {
		st := status.Convert(err)
		msg := fmt.Sprintf("%s: %s", st.Code(), st.Message())
		for _, d := range st.Details() {
			if info, ok := d.(*errdetails.ErrorInfo); ok {
				msg += " (" + info.GetReason() + ")"
			}
		}
		return fail(exitFailed, "%s", msg)
	}
	if !*showToken && resp.GetUser().GetToken() != "" {
		resp.GetUser().Token = proto.String("[hidden: use --show-token]")
	}
	out, err := protojson.MarshalOptions{Multiline: true, UseProtoNames: true}.Marshal(resp)
	if err != nil {
		return fail(exitFailed, "printing the answer: %v", err)
	}
	fmt.Fprintln(stdout, string(out))
	return exitOK
}

func tlsConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cacert %s: no PEM certificate in it", caFile)
		}
		cfg.RootCAs = pool
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("--cert and --key go together")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("--cert/--key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
