#!/usr/bin/env bash
# Runs opentact-sandbox and opentact-facade pointed at it, on loopback, and
# prints ready-to-paste calls for the demo account. Ctrl-C stops both.
# Used by `make run`, which builds the binaries into $BIN first.
set -euo pipefail

BIN=${BIN:-bin}
SANDBOX_ADDR=${SANDBOX_ADDR:-127.0.0.1:8081}
GRPC_ADDR=${GRPC_ADDR:-127.0.0.1:9090}
HTTP_ADDR=${HTTP_ADDR:-127.0.0.1:8080}

pids=()
stop() {
	trap - EXIT INT TERM
	kill -TERM "${pids[@]}" 2>/dev/null || true
	wait "${pids[@]}" 2>/dev/null || true
}
trap stop EXIT
trap 'stop; exit 0' INT TERM

"$BIN/opentact-sandbox" --addr "$SANDBOX_ADDR" &
pids+=($!)
"$BIN/opentact-facade" --grpc-addr "$GRPC_ADDR" --http-addr "$HTTP_ADDR" --upstream "http://$SANDBOX_ADDR" &
pids+=($!)

# Wait until all three ports accept connections.
for addr in "$SANDBOX_ADDR" "$GRPC_ADDR" "$HTTP_ADDR"; do
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}") 2>/dev/null; then
			continue 2
		fi
		sleep 0.1
	done
	echo "run-local: nothing listens on $addr" >&2
	exit 1
done

demo_basic=$(printf '%s' 'opentact@callify.io:12345678' | base64)
grpcurl="go tool -modfile=tools/go.mod grpcurl -plaintext"
curl_basic="curl -s -u opentact@callify.io:12345678 -H 'content-type: application/json'"
ctl="OPENTACT_PASSWORD=12345678 $BIN/opentactctl"
ctl_flags="--plaintext --addr $GRPC_ADDR"

# The walk-through captures a new token's secret with jq when this machine
# has it; the script does not need jq, so without it the reader copies the
# secret by hand (or uses opentactctl, which prints it alone).
if command -v jq >/dev/null 2>&1; then
	capture() { printf '  TOKEN=$(%s | jq -r .token.token)' "$1"; }
else
	capture() { printf '  %s\n\njq is not installed, so copy the "token" field of the answer into TOKEN:\n\n  TOKEN=...' "$1"; }
fi
create_grpc=$(capture "$grpcurl -H 'authorization: Basic $demo_basic' -d '{\"name\":\"demo\",\"ttl\":3600}' $GRPC_ADDR opentact.auth.v1.TokenService/CreateToken")
create_rest=$(capture "$curl_basic -d '{\"name\":\"demo\",\"ttl\":3600}' http://$HTTP_ADDR/v1/tokens")

cat <<MSG

opentact-facade is ready: gRPC on $GRPC_ADDR, REST on $HTTP_ADDR, upstream: the sandbox on $SANDBOX_ADDR.
Demo account: opentact@callify.io / 12345678. Try, from another terminal in this folder:

  $grpcurl -H 'authorization: Basic $demo_basic' $GRPC_ADDR opentact.auth.v1.AuthService/GetAuth

  curl -s -u opentact@callify.io:12345678 http://$HTTP_ADDR/v1/auth

API tokens, with grpcurl: create one (its secret into \$TOKEN), call with it as
Bearer, revoke it, and call with it again, which fails with Unauthenticated:

$create_grpc

  $grpcurl -H "authorization: Bearer \$TOKEN" $GRPC_ADDR opentact.auth.v1.AuthService/GetAuth

  $grpcurl -H 'authorization: Basic $demo_basic' -d "{\"token\":\"\$TOKEN\"}" $GRPC_ADDR opentact.auth.v1.TokenService/DeleteToken

  $grpcurl -H "authorization: Bearer \$TOKEN" $GRPC_ADDR opentact.auth.v1.AuthService/GetAuth

The same over REST with curl; the last call answers HTTP 401:

$create_rest

  curl -s -H "authorization: Bearer \$TOKEN" http://$HTTP_ADDR/v1/auth

  $curl_basic -d "{\"token\":\"\$TOKEN\"}" http://$HTTP_ADDR/v1/tokens:delete

  curl -s -w '\nHTTP %{http_code}\n' -H "authorization: Bearer \$TOKEN" http://$HTTP_ADDR/v1/auth

And with opentactctl, which prints the new secret alone on stdout and reads the
token to delete from stdin (see $BIN/opentactctl token -h):

  TOKEN=\$($ctl token create $ctl_flags --email opentact@callify.io --name demo --ttl 3600)

  OPENTACT_SECRET=\$TOKEN $BIN/opentactctl auth $ctl_flags --kind bearer

  printf '%s\n' "\$TOKEN" | $ctl token delete $ctl_flags --email opentact@callify.io

  OPENTACT_SECRET=\$TOKEN $BIN/opentactctl auth $ctl_flags --kind bearer

Ctrl-C stops both.
MSG

# Run until either process exits or we are told to stop.
wait -n "${pids[@]}"
echo "run-local: a process exited; stopping" >&2
exit 1
