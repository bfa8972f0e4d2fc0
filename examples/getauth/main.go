// Command getauth is an example of a Go service calling opentact-facade
// with the client package: the credentials are given once, to the
// connection, and ride along with every call.
//
// Against the sandbox that `make run` starts:
//
//	OPENTACT_EMAIL=opentact@callify.io OPENTACT_PASSWORD=12345678 \
//	  go run ./examples/getauth -addr 127.0.0.1:9090 -plaintext
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/opentact-facade/opentact-facade/client"
	authv1 "github.com/opentact-facade/opentact-facade/gen/go/opentact/auth/v1"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "getauth:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	fs := flag.NewFlagSet("getauth", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9090", "the facade's gRPC address")
	plaintext := fs.Bool("plaintext", false, "no TLS (a facade on loopback, such as `make run`'s)")
	if err := fs.Parse(args); err != nil {
		return err
	}

	// One credential for the whole connection. Over TLS by default; a
	// plaintext connection needs both insecure transport credentials and
	// AllowInsecure, so that clear text is never an accident.
	creds := client.Basic(getenv("OPENTACT_EMAIL"), getenv("OPENTACT_PASSWORD"))
	transport := credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	if *plaintext {
		creds, transport = creds.AllowInsecure(), insecure.NewCredentials()
	}
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(transport), grpc.WithPerRPCCredentials(creds))
	if err != nil {
		return err
	}
	defer conn.Close()

	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := authv1.NewAuthServiceClient(conn).GetAuth(ctx, &authv1.GetAuthRequest{})
	if err != nil {
		return err
	}
	u := resp.GetUser()
	fmt.Fprintf(out, "signed in as %s (%s), account %s\n", u.GetEmail(), u.GetUuid(), u.GetAccount().GetUuid())
	return nil
}
