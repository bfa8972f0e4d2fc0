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
cat <<MSG

opentact-facade is ready: gRPC on $GRPC_ADDR, REST on $HTTP_ADDR, upstream: the sandbox on $SANDBOX_ADDR.
Demo account: opentact@callify.io / 12345678. Try, from another terminal in this folder:

  go tool -modfile=tools/go.mod grpcurl -plaintext -H 'authorization: Basic $demo_basic' $GRPC_ADDR opentact.auth.v1.AuthService/GetAuth

  curl -s -u opentact@callify.io:12345678 http://$HTTP_ADDR/v1/auth

Ctrl-C stops both.
MSG

# Run until either process exits or we are told to stop.
wait -n "${pids[@]}"
echo "run-local: a process exited; stopping" >&2
exit 1
