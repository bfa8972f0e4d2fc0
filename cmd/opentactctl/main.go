// Command opentactctl calls opentact-facade from the command line.
//
//	OPENTACT_PASSWORD=… opentactctl auth --plaintext --email anna@example.com
//	opentactctl auth --kind token --secret-stdin < jwt.txt
//	TOKEN=$(opentactctl token create --email anna@example.com --name ci --ttl 3600)
//	opentactctl token list --email anna@example.com
//	printf '%s\n' "$TOKEN" | opentactctl token delete --email anna@example.com
//	opentactctl number search --email anna@example.com --province DC --plain
//	opentactctl number order --email anna@example.com 12029822917 --request-id o-1
//	printf '%s\n' "$TEXT" | opentactctl sms send --email anna@example.com --from 12029822917 --to 12025550123
//	opentactctl callflow render ivr.yaml
//	opentactctl callflow save --email anna@example.com --app "$APP" ivr.yaml
//	opentactctl calls search --email anna@example.com --state offline --since 2025-07-01T00:00:00Z
//	opentactctl methods
//	opentactctl call TokenService/ListTokens --email anna@example.com
//	printf '{"token": "%s"}' "$TOKEN" | opentactctl call TokenService/DeleteToken -
//
// Secrets (a password, a token, the token to delete) come from the
// environment or from standard input, and the text of an SMS from standard
// input, never from a flag or an argument: command lines are visible to
// every user of the machine and kept in shell history.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/opentact-facade/opentact-facade/client"
	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
	"github.com/opentact-facade/opentact-facade/internal/certs"
	"github.com/opentact-facade/opentact-facade/internal/version"
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

// envTokenToDelete holds the secret of the token `token delete` revokes.
const envTokenToDelete = "OPENTACT_TOKEN_TO_DELETE"

// hiddenSecret stands for a token's secret in everything printed but the
// answer of `token create`.
const hiddenSecret = "[hidden: shown once, by token create]"

const credentialsHelp = `Credentials (secrets never come from a flag):
  --email E (or OPENTACT_EMAIL) with the password in OPENTACT_PASSWORD, or
  on standard input with --secret-stdin: Basic credentials.
  --kind bearer|token|google|facebook|ha1b with the secret in OPENTACT_SECRET,
  or on standard input with --secret-stdin.
`

const usage = `Usage:
  opentactctl auth [flags]
  opentactctl token create --name NAME [--ttl SECONDS] [--json] [flags]
  opentactctl token list [flags]
  opentactctl token update UUID [--name NAME] [--ttl SECONDS] [flags]
  opentactctl token delete [flags]   (the secret in ` + envTokenToDelete + ` or on stdin)
  opentactctl token delete-all --yes [flags]
  opentactctl number search|order|list|release [flags]
  opentactctl sms send|get|search [flags]   (the text of send on stdin)
  opentactctl callflow render FILE [flags]   (no credentials needed)
  opentactctl callflow save --app UUID FILE [--xml] [--json] [flags]
  opentactctl callflow get --app UUID [--json] [flags]
  opentactctl calls online|search [--json] [flags]
  opentactctl events [--types TYPE,...] [flags]   (until Ctrl-C)
  opentactctl methods [--json]
  opentactctl call <Service>/<Method> [REQUEST|-] [--show-token] [flags]
  opentactctl --version

Calls opentact-facade and prints the answer as JSON (callflow prints the
flow's XML, calls a table; --json the JSON). methods lists every method
served; call calls any of them with a JSON request (a secret in it goes on
standard input, with -). Run a command with -h for its flags.

` + credentialsHelp

const authUsage = `Usage: opentactctl auth [flags]

Calls opentact.auth.v1.AuthService/GetAuth through opentact-facade and prints
the answer as JSON. The JWT in the answer is shown only with --show-token.

` + credentialsHelp + `
Flags:
`

const tokenUsage = `Usage: opentactctl token create|list|update|delete|delete-all [flags]

Manages the caller's Opentact API tokens through opentact.auth.v1.TokenService.
A token works as "authorization: Bearer <token>": opentactctl --kind bearer
with the token in OPENTACT_SECRET.

  create --name NAME [--ttl SECONDS] [--json]
                      a new token; prints its secret, the only time it is shown
  list                every token, secrets hidden
  update UUID [--name NAME] [--ttl SECONDS]
                      renames a token or changes its lifetime
  delete              revokes the token whose secret is in
                      ` + envTokenToDelete + ` or on standard input
  delete-all --yes    revokes every token of the caller's user

Run opentactctl token COMMAND -h for its flags.
`

const tokenCreateUsage = `Usage: opentactctl token create --name NAME [--ttl SECONDS] [--json] [flags]

Calls opentact.auth.v1.TokenService/CreateToken through opentact-facade: a new
API token for the caller's user, which then works as
"authorization: Bearer <token>" (opentactctl --kind bearer). Without --ttl the
lifetime is Opentact's default; the facade refuses a ttl under 60 seconds.

The secret is printed alone on one line of standard output, so that
  TOKEN=$(opentactctl token create --name ci --ttl 3600)
keeps it; the token's uuid, name and expiry go to standard error. With --json
the whole answer, secret included, is printed as JSON on standard output
instead. This is the only time the secret is shown: it cannot be shown again
(token list and every other command hide it), so keep it now.

` + credentialsHelp + `
Flags:
`

const tokenListUsage = `Usage: opentactctl token list [flags]

Calls opentact.auth.v1.TokenService/ListTokens through opentact-facade and
prints every token of the caller's user as JSON: uuid, name, ttl, expired_on,
created_on and modified_on. The secrets are never printed: each token's
"token" is "` + hiddenSecret + `".

` + credentialsHelp + `
Flags:
`

const tokenUpdateUsage = `Usage: opentactctl token update UUID [--name NAME] [--ttl SECONDS] [flags]

Calls opentact.auth.v1.TokenService/UpdateToken through opentact-facade for
the token UUID (as token list prints it, not the token's secret): only the
fields given as flags are changed, at least one of them. Prints the updated
token as JSON, its secret hidden.

` + credentialsHelp + `
Flags:
`

const tokenDeleteUsage = `Usage: opentactctl token delete [flags]

Calls opentact.auth.v1.TokenService/DeleteToken through opentact-facade: the
token is revoked at once. Opentact names the token by its secret, not its
uuid, so the secret never comes from the command line: it is the value of
` + envTokenToDelete + ` when that is set, else the first line of standard
input, trimmed of white space:
  OPENTACT_TOKEN_TO_DELETE=$TOKEN opentactctl token delete
  printf '%s\n' "$TOKEN" | opentactctl token delete
Standard input holds one secret only: with --secret-stdin, put the token to
delete in ` + envTokenToDelete + `. Prints the revoked token as JSON, its
secret hidden.

` + credentialsHelp + `
Flags:
`

const tokenDeleteAllUsage = `Usage: opentactctl token delete-all --yes [flags]

Calls opentact.auth.v1.TokenService/DeleteAllTokens through opentact-facade:
every API token of the caller's user is revoked at once, those of other
programs included. --yes is required, to confirm. Prints the (empty) answer
as JSON.

` + credentialsHelp + `
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
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "auth":
		return runAuth(ctx, newCommand("auth", authUsage, lookupEnv, stdin, stdout, stderr), args[1:])
	case "token", "number", "sms", "callflow", "calls":
		return groups[args[0]].run(ctx, args[0], args[1:], lookupEnv, stdin, stdout, stderr)
	case "events":
		return runEvents(ctx, newCommand("events", eventsUsage, lookupEnv, stdin, stdout, stderr), args[1:])
	case "methods":
		return runMethods(newLocalCommand("methods", methodsUsage, stdout, stderr), args[1:])
	case "call":
		return runCall(ctx, newCommand("call", callUsage, lookupEnv, stdin, stdout, stderr), args[1:])
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, usage)
		return exitOK
	case "-version", "--version":
		if len(args) > 1 {
			fmt.Fprint(stderr, usage)
			return exitUsage
		}
		// As opentact-facade --version prints it.
		fmt.Fprintln(stdout, "opentactctl", version.String(), version.GoVersion())
		return exitOK
	default:
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
}

// subcommand is one command of a group: its usage and what it does.
type subcommand struct {
	usage string
	run   func(context.Context, *command, []string) int
}

// anonymous are the subcommands that call the facade without credentials
// (a method the facade answers itself), and take no credential flags.
var anonymous = map[string]bool{"callflow render": true}

// group is a command with subcommands, such as token create.
type group struct {
	usage string
	subs  map[string]subcommand
}

// groups are the commands with subcommands, by name.
var groups = map[string]group{
	"token": {tokenUsage, map[string]subcommand{
		"create":     {tokenCreateUsage, runTokenCreate},
		"list":       {tokenListUsage, runTokenList},
		"update":     {tokenUpdateUsage, runTokenUpdate},
		"delete":     {tokenDeleteUsage, runTokenDelete},
		"delete-all": {tokenDeleteAllUsage, runTokenDeleteAll},
	}},
	"number": {numberUsage, map[string]subcommand{
		"search":  {numberSearchUsage, runNumberSearch},
		"order":   {numberOrderUsage, runNumberOrder},
		"list":    {numberListUsage, runNumberList},
		"release": {numberReleaseUsage, runNumberRelease},
	}},
	"sms": {smsUsage, map[string]subcommand{
		"send":   {smsSendUsage, runSMSSend},
		"get":    {smsGetUsage, runSMSGet},
		"search": {smsSearchUsage, runSMSSearch},
	}},
	"callflow": {callflowUsage, map[string]subcommand{
		"render": {callflowRenderUsage, runCallflowRender},
		"save":   {callflowSaveUsage, runCallflowSave},
		"get":    {callflowGetUsage, runCallflowGet},
	}},
	"calls": {callsUsage, map[string]subcommand{
		"online": {callsOnlineUsage, runCallsOnline},
		"search": {callsSearchUsage, runCallsSearch},
	}},
}

// run runs the subcommand args[0] of the group name.
func (g group) run(ctx context.Context, name string, args []string, lookupEnv func(string) (string, bool), stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, g.usage)
		return exitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, g.usage)
		return exitOK
	}
	sub, ok := g.subs[args[0]]
	if !ok {
		fmt.Fprint(stderr, g.usage)
		return exitUsage
	}
	full := name + " " + args[0]
	if anonymous[full] {
		return sub.run(ctx, newAnonymousCommand(full, sub.usage, lookupEnv, stdin, stdout, stderr), args[1:])
	}
	return sub.run(ctx, newCommand(full, sub.usage, lookupEnv, stdin, stdout, stderr), args[1:])
}

// command is one run of a command: its flags (those every command shares
// among them) and its streams.
type command struct {
	fs          *flag.FlagSet
	lookupEnv   func(string) (string, bool)
	stdin       io.Reader
	stdout      io.Writer
	stderr      io.Writer
	addr        *string
	plaintext   *bool
	caFile      *string
	certFile    *string
	keyFile     *string
	email       *string
	kind        *string
	secretStdin *bool
	timeout     *time.Duration
	tls         *tlsProbe // nil with --plaintext
	// about, when set, names the input a refusal (InvalidArgument) is
	// about, such as the file of a call flow.
	about string
}

func newCommand(name, help string, lookupEnv func(string) (string, bool), stdin io.Reader, stdout, stderr io.Writer) *command {
	c := newAnonymousCommand(name, help, lookupEnv, stdin, stdout, stderr)
	fs := c.fs
	email, _ := lookupEnv("OPENTACT_EMAIL")
	c.email = fs.String("email", email, "e-mail for Basic credentials (env OPENTACT_EMAIL)")
	c.kind = fs.String("kind", "", "token kind instead of Basic: bearer, token, google, facebook or ha1b")
	c.secretStdin = fs.Bool("secret-stdin", false, "read the password or token from the first line of standard input")
	return c
}

// newAnonymousCommand is a command that calls the facade without
// credentials (a method the facade answers itself): the connection flags
// alone. It connects with connect(nil).
func newAnonymousCommand(name, help string, lookupEnv func(string) (string, bool), stdin io.Reader, stdout, stderr io.Writer) *command {
	env := func(name, def string) string {
		if v, ok := lookupEnv(name); ok {
			return v
		}
		return def
	}
	c := newLocalCommand(name, help, stdout, stderr)
	c.lookupEnv, c.stdin = lookupEnv, stdin
	fs := c.fs
	c.addr = fs.String("addr", env("OPENTACT_FACADE_ADDR", "127.0.0.1:9090"), "the facade's gRPC address (env OPENTACT_FACADE_ADDR)")
	c.plaintext = fs.Bool("plaintext", false, "connect without TLS; the credentials then travel in clear text")
	c.caFile = fs.String("cacert", "", "PEM CA bundle to verify the facade's certificate (default: the system's)")
	c.certFile = fs.String("cert", "", "PEM client certificate, for a facade that requires mTLS")
	c.keyFile = fs.String("key", "", "PEM key of --cert")
	c.timeout = fs.Duration("timeout", 10*time.Second, "deadline of the call")
	return c
}

// newLocalCommand is a command that calls nothing: no connection or
// credential flags.
func newLocalCommand(name, help string, stdout, stderr io.Writer) *command {
	fs := flag.NewFlagSet("opentactctl "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, help); fs.PrintDefaults() }
	return &command{fs: fs, stdout: stdout, stderr: stderr}
}

func (c *command) fail(code int, format string, a ...any) int {
	fmt.Fprintf(c.stderr, "opentactctl: "+format+"\n", a...)
	return code
}

// parse parses args as flags; done is true when the command ends there,
// with code (-h, or a bad flag the flag package has reported).
func (c *command) parse(args []string) (code int, done bool) {
	if err := c.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, true
		}
		return exitUsage, true
	}
	return exitOK, false
}

// noArgs refuses arguments after the flags. Not echoed: a stray argument
// is often a secret typed where it does not belong, and stderr ends up in
// logs.
func (c *command) noArgs() (int, bool) {
	if c.fs.NArg() > 0 {
		return c.fail(exitUsage, "unexpected argument after the flags (secrets go in the environment or on standard input, never on the command line)"), true
	}
	return exitOK, false
}

// visited reports whether the flag name was given on the command line.
func (c *command) visited(name string) bool {
	seen := false
	c.fs.Visit(func(f *flag.Flag) { seen = seen || f.Name == name })
	return seen
}

// firstLine reads the first line of standard input, without its line
// ending.
func (c *command) firstLine() (string, error) {
	line, err := bufio.NewReader(c.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading standard input: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// credentials builds the caller's credentials from the flags, the
// environment and, with --secret-stdin, standard input.
func (c *command) credentials() (*client.Credentials, int, bool) {
	// Only an --email on the command line conflicts with --kind: an
	// OPENTACT_EMAIL exported for Basic calls does not.
	emailFlag := c.visited("email")

	var secret string
	var haveSecret bool
	if *c.secretStdin {
		line, err := c.firstLine()
		if err != nil {
			return nil, c.fail(exitUsage, "%v", err), true
		}
		secret, haveSecret = line, true
	}
	var creds *client.Credentials
	switch kind := *c.kind; {
	case kind != "" && kind != "basic" && emailFlag:
		return nil, c.fail(exitUsage, "--email goes with Basic credentials, not --kind %s", kind), true
	case kind == "" || kind == "basic":
		if *c.email == "" {
			return nil, c.fail(exitUsage, "give --email (or OPENTACT_EMAIL), or --kind for a token"), true
		}
		if !haveSecret {
			secret, haveSecret = c.lookupEnv("OPENTACT_PASSWORD")
		}
		if !haveSecret || secret == "" {
			return nil, c.fail(exitUsage, "no password: set OPENTACT_PASSWORD or use --secret-stdin"), true
		}
		creds = client.Basic(*c.email, secret)
	default:
		build, ok := kinds[kind]
		if !ok {
			return nil, c.fail(exitUsage, "unknown --kind %q: want bearer, token, google, facebook or ha1b", kind), true
		}
		if !haveSecret {
			secret, haveSecret = c.lookupEnv("OPENTACT_SECRET")
		}
		if !haveSecret || secret == "" {
			return nil, c.fail(exitUsage, "no %s: set OPENTACT_SECRET or use --secret-stdin", kind), true
		}
		creds = build(secret)
	}
	return creds, exitOK, false
}

// dial builds the credentials and the connection to the facade.
func (c *command) dial() (*grpc.ClientConn, int, bool) {
	creds, code, done := c.credentials()
	if done {
		return nil, code, true
	}
	return c.connect(creds)
}

// connect opens the connection to the facade, sending creds with every
// call, or nothing when creds is nil.
func (c *command) connect(creds *client.Credentials) (*grpc.ClientConn, int, bool) {
	transport := insecure.NewCredentials()
	if *c.plaintext {
		if creds != nil {
			creds = creds.AllowInsecure()
		}
	} else {
		cfg, err := tlsConfig(*c.caFile, *c.certFile, *c.keyFile)
		if err != nil {
			return nil, c.fail(exitUsage, "%v", err), true
		}
		c.tls = &tlsProbe{TransportCredentials: credentials.NewTLS(cfg), plaintext: new(atomic.Bool)}
		transport = c.tls
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(transport)}
	if creds != nil {
		opts = append(opts, grpc.WithPerRPCCredentials(creds))
	}
	conn, err := grpc.NewClient(*c.addr, opts...)
	if err != nil {
		return nil, c.fail(exitUsage, "%v", err), true
	}
	return conn, exitOK, false
}

// callFailed prints a failed call's status: its code, its message, the
// reason of its ErrorInfo and the fields of its BadRequest. secrets (the
// token to delete) are masked in case an answer echoes one.
func (c *command) callFailed(err error, secrets ...string) int {
	st := status.Convert(err)
	msg := fmt.Sprintf("%s: %s", st.Code(), st.Message())
	if c.about != "" && st.Code() == codes.InvalidArgument {
		msg = c.about + ": " + msg
	}
	var fields []string
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			msg += " (" + d.GetReason() + ")"
		case *errdetails.BadRequest:
			for _, v := range d.GetFieldViolations() {
				fields = append(fields, fmt.Sprintf("\n  %s: %s", v.GetField(), v.GetDescription()))
			}
		}
	}
	msg += strings.Join(fields, "")
	if c.tls != nil && c.tls.plaintext.Load() {
		msg += fmt.Sprintf("\n  %s does not speak TLS: for a facade served without TLS (as `make run` serves it), add --plaintext", *c.addr)
	}
	for _, s := range secrets {
		// A short one would mask innocent words; the facade scrubs
		// credentials itself.
		if len(s) >= minMaskedLen {
			msg = strings.ReplaceAll(msg, s, "[hidden]")
		}
	}
	return c.fail(exitFailed, "%s", msg)
}

// minMaskedLen is the length from which callFailed masks a secret.
const minMaskedLen = 8

// print prints an answer as JSON, with Opentact's field names, indented by
// two spaces. protojson's own indented output varies its spacing from build
// to build on purpose; encoding/json's indentation is regular.
func (c *command) print(resp proto.Message) int {
	out, err := marshalJSON(resp)
	if err != nil {
		return c.fail(exitFailed, "printing the answer: %v", err)
	}
	fmt.Fprintln(c.stdout, string(out))
	return exitOK
}

// marshalJSON is every answer as the commands print it: protojson with
// Opentact's field names, indented by encoding/json with two spaces.
// protojson varies its spacing from build to build on purpose; the
// re-indented text is the same for the same answer, for scripts and diffs.
func marshalJSON(m proto.Message) ([]byte, error) {
	compact, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, compact, "", "  "); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// tlsProbe is the TLS credentials of a connection, noting a server that
// answered the handshake with something else than TLS: crypto/tls says so
// with a tls.RecordHeaderError, which grpc-go passes on only as text.
type tlsProbe struct {
	credentials.TransportCredentials
	plaintext *atomic.Bool // shared with clones
}

func (p *tlsProbe) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	c, info, err := p.TransportCredentials.ClientHandshake(ctx, authority, conn)
	if _, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		p.plaintext.Store(true)
	}
	return c, info, err
}

func (p *tlsProbe) Clone() credentials.TransportCredentials {
	return &tlsProbe{TransportCredentials: p.TransportCredentials.Clone(), plaintext: p.plaintext}
}

func (c *command) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, *c.timeout)
}

func runAuth(ctx context.Context, c *command, args []string) int {
	showToken := c.fs.Bool("show-token", false, "print the JWT of the answer instead of hiding it")
	if code, done := c.parse(args); done {
		return code
	}
	if code, done := c.noArgs(); done {
		return code
	}
	conn, code, done := c.dial()
	if done {
		return code
	}
	defer conn.Close()

	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := authv1.NewAuthServiceClient(conn).GetAuth(ctx, &authv1.GetAuthRequest{})
	if err != nil {
		return c.callFailed(err)
	}
	if !*showToken {
		hideTree(resp.ProtoReflect(), showTokenMarker)
	}
	return c.print(resp)
}

// int32Flag is an optional int32 flag: nil until given. unit, when set,
// names what it counts in its error.
type int32Flag struct {
	v    *int32
	unit string
}

func (f *int32Flag) String() string {
	if f == nil || f.v == nil {
		return ""
	}
	return strconv.Itoa(int(*f.v))
}

func (f *int32Flag) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		if f.unit != "" {
			return errors.New("want a whole number of " + f.unit)
		}
		return errors.New("want a whole number")
	}
	v := int32(n)
	f.v = &v
	return nil
}

// stringFlag is an optional string flag: nil until given.
type stringFlag struct{ v *string }

func (f *stringFlag) String() string {
	if f == nil || f.v == nil {
		return ""
	}
	return *f.v
}

func (f *stringFlag) Set(s string) error {
	f.v = &s
	return nil
}

// hideSecret replaces the secret of t, when it has one, and the JWT of its
// owner.
func hideSecret(t *authv1.Token) {
	if t.GetToken() != "" {
		t.Token = proto.String(hiddenSecret)
	}
	if t.User != nil {
		hideTree(t.User.ProtoReflect(), "[hidden]")
	}
}

// hideTree replaces every secret (a field marked debug_redact) set in m or
// in a message under it, such as the JWTs of an account's users: a text
// becomes marker, each text of a list or map too, and a secret of any
// other kind, which cannot show the marker, is cleared.
func hideTree(m protoreflect.Message, marker string) {
	hidden := protoreflect.ValueOfString(marker)
	eachSecret(m, func(m protoreflect.Message, fd protoreflect.FieldDescriptor, v protoreflect.Value) {
		switch {
		case fd.IsMap() && fd.MapValue().Kind() == protoreflect.StringKind:
			var keys []protoreflect.MapKey
			v.Map().Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
				keys = append(keys, k)
				return true
			})
			for _, k := range keys {
				v.Map().Set(k, hidden)
			}
		case fd.IsList() && fd.Kind() == protoreflect.StringKind:
			for i := range v.List().Len() {
				v.List().Set(i, hidden)
			}
		case !fd.IsMap() && !fd.IsList() && fd.Kind() == protoreflect.StringKind:
			if v.String() != "" {
				m.Set(fd, hidden)
			}
		default:
			m.Clear(fd)
		}
	})
}

// eachSecret calls f for every field marked debug_redact that is set in m
// or in a message under it, with the message that holds it. f may set or
// clear that field.
func eachSecret(m protoreflect.Message, f func(m protoreflect.Message, fd protoreflect.FieldDescriptor, v protoreflect.Value)) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case redacted(fd):
			f(m, fd, v)
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					eachSecret(mv.Message(), f)
					return true
				})
			}
		case fd.IsList():
			if fd.Message() != nil {
				for i := range v.List().Len() {
					eachSecret(v.List().Get(i).Message(), f)
				}
			}
		case fd.Message() != nil:
			eachSecret(v.Message(), f)
		}
		return true
	})
}

// redacted reports whether fd is marked debug_redact: a secret.
func redacted(fd protoreflect.FieldDescriptor) bool {
	opts, ok := fd.Options().(*descriptorpb.FieldOptions)
	return ok && opts.GetDebugRedact()
}

func runTokenCreate(ctx context.Context, c *command, args []string) int {
	var name stringFlag
	ttl := int32Flag{unit: "seconds"}
	c.fs.Var(&name, "name", "the new token's `NAME` (required)")
	c.fs.Var(&ttl, "ttl", "the new token's lifetime in `SECONDS`, at least 60 (default: Opentact's)")
	asJSON := c.fs.Bool("json", false, "print the whole answer as JSON on standard output, secret included, instead of the secret alone")
	if code, done := c.parse(args); done {
		return code
	}
	if code, done := c.noArgs(); done {
		return code
	}
	if name.v == nil {
		return c.fail(exitUsage, "give the new token's --name")
	}
	conn, code, done := c.dial()
	if done {
		return code
	}
	defer conn.Close()

	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := authv1.NewTokenServiceClient(conn).CreateToken(ctx, &authv1.CreateTokenRequest{Name: *name.v, Ttl: ttl.v})
	if err != nil {
		return c.callFailed(err)
	}
	if *asJSON {
		return c.print(resp)
	}
	t := resp.GetToken()
	about := describe(t)
	if t.GetToken() == "" {
		return c.fail(exitFailed, "the answer holds no secret for the new token %s", about)
	}
	fmt.Fprintln(c.stdout, t.GetToken())
	fmt.Fprintf(c.stderr, "created token %s; its secret, on standard output, cannot be shown again\n", about)
	return exitOK
}

// describe names a token for a person: uuid, name, ttl and expiry, never
// the secret.
func describe(t *authv1.Token) string {
	var parts []string
	if t.Name != nil {
		parts = append(parts, fmt.Sprintf("name %q", t.GetName()))
	}
	if t.Ttl != nil {
		parts = append(parts, fmt.Sprintf("ttl %ds", t.GetTtl()))
	}
	if t.ExpiredOn != nil {
		parts = append(parts, "expires "+t.GetExpiredOn().AsTime().UTC().Format(time.RFC3339))
	}
	s := t.GetUuid()
	if s == "" {
		s = "(no uuid)"
	}
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	return s
}

func runTokenList(ctx context.Context, c *command, args []string) int {
	if code, done := c.parse(args); done {
		return code
	}
	if code, done := c.noArgs(); done {
		return code
	}
	conn, code, done := c.dial()
	if done {
		return code
	}
	defer conn.Close()

	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := authv1.NewTokenServiceClient(conn).ListTokens(ctx, &authv1.ListTokensRequest{})
	if err != nil {
		return c.callFailed(err)
	}
	if len(resp.GetTokens()) == 0 {
		// protojson leaves an empty list out; a script reading .tokens
		// gets an empty array rather than nothing.
		fmt.Fprintln(c.stdout, "{\n  \"tokens\": []\n}")
		return exitOK
	}
	for _, t := range resp.GetTokens() {
		hideSecret(t)
	}
	return c.print(resp)
}

func runTokenUpdate(ctx context.Context, c *command, args []string) int {
	var name stringFlag
	ttl := int32Flag{unit: "seconds"}
	c.fs.Var(&name, "name", "the token's new `NAME` (unchanged when not given)")
	c.fs.Var(&ttl, "ttl", "the token's new lifetime in `SECONDS`, at least 60 (unchanged when not given)")
	// The UUID may come before or after the flags.
	if code, done := c.parse(args); done {
		return code
	}
	if c.fs.NArg() == 0 {
		return c.fail(exitUsage, "give the uuid of the token to update, as token list prints it")
	}
	uuid := c.fs.Arg(0)
	if code, done := c.parse(c.fs.Args()[1:]); done {
		return code
	}
	if code, done := c.noArgs(); done {
		return code
	}
	if !isUUID(uuid) {
		// Not echoed: it may be the token's secret, given by mistake.
		return c.fail(exitUsage, "the argument is not a uuid: give the token's uuid, as token list prints it, not its secret")
	}
	if name.v == nil && ttl.v == nil {
		return c.fail(exitUsage, "nothing to update: give --name, --ttl or both")
	}
	conn, code, done := c.dial()
	if done {
		return code
	}
	defer conn.Close()

	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := authv1.NewTokenServiceClient(conn).UpdateToken(ctx, &authv1.UpdateTokenRequest{Uuid: uuid, Name: name.v, Ttl: ttl.v})
	if err != nil {
		return c.callFailed(err)
	}
	hideSecret(resp.GetToken())
	return c.print(resp)
}

// isUUID reports whether s is shaped like a UUID: 32 hex digits in groups
// of 8, 4, 4, 4 and 12.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
				return false
			}
		}
	}
	return true
}

func runTokenDelete(ctx context.Context, c *command, args []string) int {
	if code, done := c.parse(args); done {
		return code
	}
	if c.fs.NArg() > 0 {
		// Not echoed: it is most likely the secret itself.
		return c.fail(exitUsage, "token delete takes no argument: the token's secret goes in %s or on standard input, never on the command line, which other users of the machine and the shell history see", envTokenToDelete)
	}
	// The environment first; standard input only when it is not set, and
	// only when --secret-stdin does not claim it.
	target, fromEnv := c.lookupEnv(envTokenToDelete)
	source := envTokenToDelete
	if !fromEnv && *c.secretStdin {
		return c.fail(exitUsage, "--secret-stdin reads the credential from standard input, so the token to delete cannot come from there too: put it in %s", envTokenToDelete)
	}
	// The credentials first, so that a mistake there is told before
	// standard input is waited for.
	conn, code, done := c.dial()
	if done {
		return code
	}
	defer conn.Close()
	if !fromEnv {
		line, err := c.firstLine()
		if err != nil {
			return c.fail(exitUsage, "%v", err)
		}
		target, source = line, "standard input"
	}
	target = strings.TrimSpace(target)
	if target == "" {
		return c.fail(exitUsage, "no token to delete: %s is empty (set %s, or give the secret on the first line of standard input)", source, envTokenToDelete)
	}

	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := authv1.NewTokenServiceClient(conn).DeleteToken(ctx, &authv1.DeleteTokenRequest{Token: target})
	if err != nil {
		return c.callFailed(err, target)
	}
	hideSecret(resp.GetToken())
	return c.print(resp)
}

func runTokenDeleteAll(ctx context.Context, c *command, args []string) int {
	yes := c.fs.Bool("yes", false, "confirm: revoke every token of the caller's user")
	if code, done := c.parse(args); done {
		return code
	}
	if code, done := c.noArgs(); done {
		return code
	}
	if !*yes {
		return c.fail(exitUsage, "token delete-all revokes every token of the caller's user: give --yes to confirm")
	}
	conn, code, done := c.dial()
	if done {
		return code
	}
	defer conn.Close()

	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := authv1.NewTokenServiceClient(conn).DeleteAllTokens(ctx, &authv1.DeleteAllTokensRequest{})
	if err != nil {
		return c.callFailed(err)
	}
	return c.print(resp)
}

func tlsConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := certs.Pool("--cacert", caFile)
		if err != nil {
			return nil, err
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
