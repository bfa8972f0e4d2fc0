#!/usr/bin/env bash
# Runs opentact-sandbox and opentact-facade pointed at it, on loopback, and
# prints ready-to-paste calls for the demo account. Ctrl-C stops both, and
# the script exits 0.
#
#   scripts/run-local.sh           runs the binaries already in $BIN
#   scripts/run-local.sh --build   what `make run` does: builds the two
#                                  binaries first, and opentactctl and
#                                  grpcurl in the background once the
#                                  facade answers
#
# Environment: BIN (bin), SANDBOX_ADDR, GRPC_ADDR, HTTP_ADDR, ADMIN_ADDR
# (the probes and /metrics); with --build,
# GO (go) and LDFLAGS (the Makefile's version stamp). Run it from the
# repository's root.
set -euo pipefail

BIN=${BIN:-bin}
GO=${GO:-go}
LDFLAGS=${LDFLAGS:-}
SANDBOX_ADDR=${SANDBOX_ADDR:-127.0.0.1:8081}
GRPC_ADDR=${GRPC_ADDR:-127.0.0.1:9090}
HTTP_ADDR=${HTTP_ADDR:-127.0.0.1:8080}
ADMIN_ADDR=${ADMIN_ADDR:-127.0.0.1:9091}

case "$*" in
"") build=0 ;;
--build) build=1 ;;
*)
	echo "usage: $0 [--build]" >&2
	exit 2
	;;
esac

# What runs, and the addresses that must accept connections before the
# calls are printed.
sandbox=("$BIN/opentact-sandbox" --addr "$SANDBOX_ADDR")
facade=("$BIN/opentact-facade" --grpc-addr "$GRPC_ADDR" --http-addr "$HTTP_ADDR" --admin-addr "$ADMIN_ADDR" --upstream "http://$SANDBOX_ADDR" --events-url "ws://$SANDBOX_ADDR/")
listening=("$SANDBOX_ADDR" "$GRPC_ADDR" "$HTTP_ADDR" "$ADMIN_ADDR")

demo_user=opentact@callify.io:12345678
demo_basic=$(printf '%s' "$demo_user" | base64)
grpcurl="go tool -modfile=tools/go.mod grpcurl -plaintext"
curl_basic="curl -s -u $demo_user -H 'content-type: application/json'"
ctl="OPENTACT_PASSWORD=12345678 $BIN/opentactctl"
ctl_flags="--plaintext --addr $GRPC_ADDR"

say() { printf 'run-local: %s\n' "$*"; }

# progress passes on what `go build -v` writes but the names of the
# packages it compiles (several hundred on a first build), which it counts
# on one line when the output is a terminal.
progress() {
	local n=0 line
	while IFS= read -r line; do
		if [[ $line =~ ^[[:alnum:]._~/-]+$ ]]; then
			n=$((n + 1))
			if [[ -t 1 ]]; then printf '\r  %d packages compiled' "$n"; fi
		else
			if [[ -t 1 ]] && ((n > 0)); then printf '\r\033[K'; fi
			printf '%s\n' "$line" >&2
		fi
	done
	if [[ -t 1 ]] && ((n > 0)); then printf '\r\033[K'; fi
}

# building WHAT NOTE CMD... runs CMD (go build -v, say), saying what it
# builds (with NOTE, when not empty) and how long that took.
building() {
	local what=$1 note=$2 start=$SECONDS status=0
	shift 2
	say "building $what${note:+ ($note)}..."
	"$@" 2>&1 | progress || status=$?
	if ((status != 0)); then
		echo "run-local: building $what failed" >&2
		return "$status"
	fi
	say "built $what in $((SECONDS - start))s"
}

first="the first build takes minutes"

build_stack() {
	building "opentact-facade and opentact-sandbox" "$first" \
		"$GO" build -v -trimpath -ldflags "$LDFLAGS" -o "$BIN/" ./cmd/opentact-facade ./cmd/opentact-sandbox
}

# build_tools builds what the rest of the printed calls need and prints
# those calls once each tool is there. A failure leaves the calls printed
# before working.
build_tools() {
	if building opentactctl "" "$GO" build -v -trimpath -ldflags "$LDFLAGS" -o "$BIN/" ./cmd/opentactctl; then
		print_ctl
	fi
	if building grpcurl "$first" build_grpcurl; then
		print_grpcurl
	fi
}

# build_grpcurl builds the executable `go tool grpcurl` runs, which go
# tool caches; the go build before it compiles its packages with their
# names shown.
build_grpcurl() {
	"$GO" build -v -modfile=tools/go.mod -o /dev/null github.com/fullstorydev/grpcurl/cmd/grpcurl &&
		"$GO" tool -modfile=tools/go.mod -n grpcurl >/dev/null
}

pids=()    # the sandbox and the facade
names=()   # their names, by pid
helpers=() # background builds, each the leader of its process group

start() {
	"$@" &
	pids+=($!)
	names[$!]=${1##*/}
}

# stop ends the background builds, then the sandbox and the facade. With
# "signalled", the signal that reached this script most likely reached them
# too (Ctrl-C reaches the whole process group), and the facade takes a
# second signal as an order to exit without draining: they get a few
# seconds to end on their own first.
stop() {
	trap - EXIT INT TERM HUP
	local g i
	for g in "${helpers[@]}"; do kill -TERM -- "-$g" 2>/dev/null || true; done
	if [[ ${1:-} == signalled ]]; then
		for ((i = 0; i < 50; i++)); do
			running || break
			sleep 0.1
		done
	fi
	kill -TERM "${pids[@]}" 2>/dev/null || true
	wait 2>/dev/null || true
}

# running reports whether the sandbox or the facade is still running.
running() {
	local pid
	for pid in "${pids[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then return 0; fi
	done
	return 1
}

# ended exits when the sandbox or the facade has exited; STATUS, when
# given, is its exit status as `wait -n` told it. Status 0 means a signal
# told it to stop: Ctrl-C did, having reached it but not this script
# (started with SIGINT ignored, as a background command of a
# non-interactive shell is). The script then stops the other and exits 0
# too.
ended() {
	local pid status
	for pid in "${pids[@]}"; do
		if kill -0 "$pid" 2>/dev/null; then
			continue
		fi
		if (($# > 0)); then
			status=$1
		else
			status=0
			wait "$pid" || status=$?
		fi
		if ((status == 0)); then
			stop signalled
			exit 0
		fi
		echo "run-local: ${names[$pid]} exited with status $status; stopping" >&2
		exit 1
	done
}

wait_listening() {
	local addr i
	for addr in "${listening[@]}"; do
		for ((i = 0; ; i++)); do
			if (exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}") 2>/dev/null; then
				break
			fi
			ended
			if ((i == 600)); then
				echo "run-local: nothing listens on $addr after a minute" >&2
				exit 1
			fi
			sleep 0.1
		done
	done
}

# capture VAR FIELD CMD prints the line that runs CMD and puts FIELD (a
# jq path) of its answer into $VAR: with jq when this machine has it;
# without it the reader copies the value by hand (for a token, opentactctl
# prints it alone).
capture() {
	local var=$1 field=$2 cmd=$3
	if command -v jq >/dev/null 2>&1; then
		printf '  %s=$(%s | jq -r %s)' "$var" "$cmd" "$field"
	else
		printf '  %s\n\njq is not installed, so copy the %s field of the answer into %s:\n\n  %s=...' "$cmd" "${field#.}" "$var" "$var"
	fi
}

print_ready() {
	local create_rest
	create_rest=$(capture TOKEN .token.token "$curl_basic -d '{\"name\":\"demo\",\"ttl\":3600}' http://$HTTP_ADDR/v1/tokens")
	cat <<MSG

opentact-facade is ready: gRPC on $GRPC_ADDR, REST on $HTTP_ADDR, upstream: the sandbox on $SANDBOX_ADDR.
Probes and metrics: http://$ADMIN_ADDR/healthz, /readyz and /metrics.
Demo account: opentact@callify.io / 12345678. Try, from another terminal in this folder:

  curl -s -u $demo_user http://$HTTP_ADDR/v1/auth

API tokens, with curl: create one (its secret into \$TOKEN), call with it as
Bearer, revoke it, and call with it again, which answers HTTP 401:

$create_rest

  curl -s -H "authorization: Bearer \$TOKEN" http://$HTTP_ADDR/v1/auth

  $curl_basic -d "{\"token\":\"\$TOKEN\"}" http://$HTTP_ADDR/v1/tokens:delete

  curl -s -w '\nHTTP %{http_code}\n' -H "authorization: Bearer \$TOKEN" http://$HTTP_ADDR/v1/auth

MSG
}

# print_walkthrough prints a day's work with numbers, SMS and a call
# control app, over REST.
print_walkthrough() {
	local tn=12029822917 v1=http://$HTTP_ADDR/v1 profile sms app lease
	profile=$(capture PROFILE .messaging_profile.uuid "$curl_basic -d '{\"name\":\"demo\"}' $v1/messaging-profiles")
	sms=$(capture SMS .sms.uuid "$curl_basic -d '{\"from\":\"$tn\",\"to\":\"12025550123\",\"message\":\"Hello from the sandbox\"}' $v1/sms")
	app=$(capture APP .app.uuid "$curl_basic -d '{\"name\":\"demo ivr\",\"product\":1}' $v1/call-control-apps")
	lease=$(capture LEASE .lease.uuid "curl -s -u $demo_user $v1/numbers/$tn/lease")
	cat <<MSG
Numbers and SMS, with curl. The sandbox's numbers are made up: nothing is bought
and no message leaves this machine, but the demo account's balance in the sandbox
pays (1.00 a number, 0.004 a message). Find numbers in Washington, DC; order
$tn (the number of Opentact's own example); make a messaging profile;
turn SMS on for the number (any UUID stands for the 10DLC campaign); send an SMS;
look it up ("created", then "sent" two seconds later); release the number:

  $curl_basic -d '{"pattern":"202*","size":3}' $v1/numbers:search

  $curl_basic -d '{"items":[{"tn":"$tn","features":["voice","sms"],"autorenew":true}]}' $v1/orders

$profile

  $curl_basic -d "{\"messaging_profile\":\"\$PROFILE\",\"sms_campaign\":\"5c1d2e3f-0000-4000-8000-0000000000ca\"}" $v1/leases/$tn/sms:enable

$sms

  curl -s -u $demo_user $v1/sms/outbound/\$SMS

Events as they happen, one JSON line each: stream them in another terminal (the
SMS and orders above show there too), then have the sandbox deliver an SMS and a
call to $tn (the sandbox's own control calls, not Opentact's):

  curl -sN -u $demo_user $v1/events:stream

  $curl_basic -d '{"to":"$tn","from":"12025550123","message":"Hi there"}' http://$SANDBOX_ADDR/sandbox/inbound-sms

  $curl_basic -d '{"to":"$tn","from":"12025550123"}' http://$SANDBOX_ADDR/sandbox/inbound-call

Voice: a call control app whose saved flow answers the calls to $tn. Make the
app; save a typed flow (the facade renders Opentact's call-flow XML, and answers
it typed); give the app the number's lease; have the sandbox call the number
again (the events stream shows its call_state events); see the call under way,
then, a few seconds later, the verbs its flow ran and the call log:

$app

  $curl_basic -X PUT -d '{"flow":{"verbs":[{"answer":{}},{"say":{"text":"Hello from the sandbox"}},{"pause":{"length_ms":500}},{"hangup":{}}]}}' $v1/call-control-apps/\$APP/call-flow

$lease

  $curl_basic -d "{\"add\":[\"\$LEASE\"]}" $v1/call-control-apps/\$APP/leases:assign

  $curl_basic -d '{"to":"$tn","from":"12025550123"}' http://$SANDBOX_ADDR/sandbox/inbound-call

  curl -s -u $demo_user $v1/calls:online

  $curl_basic -d '{}' $v1/call-control-apps/\$APP/logs:search

  $curl_basic -d '{"state":"offline"}' $v1/calls:search

  curl -s -u $demo_user -X DELETE $v1/leases/$tn
MSG
}

print_grpcurl() {
	local create_grpc
	create_grpc=$(capture TOKEN .token.token "$grpcurl -H 'authorization: Basic $demo_basic' -d '{\"name\":\"demo\",\"ttl\":3600}' $GRPC_ADDR opentact.auth.v1.TokenService/CreateToken")
	cat <<MSG

The same over gRPC, with grpcurl; the last call fails with Unauthenticated:

  $grpcurl -H 'authorization: Basic $demo_basic' $GRPC_ADDR opentact.auth.v1.AuthService/GetAuth

$create_grpc

  $grpcurl -H "authorization: Bearer \$TOKEN" $GRPC_ADDR opentact.auth.v1.AuthService/GetAuth

  $grpcurl -H 'authorization: Basic $demo_basic' -d "{\"token\":\"\$TOKEN\"}" $GRPC_ADDR opentact.auth.v1.TokenService/DeleteToken

  $grpcurl -H "authorization: Bearer \$TOKEN" $GRPC_ADDR opentact.auth.v1.AuthService/GetAuth

Events, streamed until Ctrl-C:

  $grpcurl -H 'authorization: Basic $demo_basic' -d '{"types":["sms","call_state"]}' $GRPC_ADDR opentact.events.v1.EventService/StreamEvents

MSG
}

print_ctl() {
	cat <<MSG

And with opentactctl, which prints the new secret alone on stdout and reads the
token to delete from stdin (see $BIN/opentactctl token -h):

  TOKEN=\$($ctl token create $ctl_flags --email opentact@callify.io --name demo --ttl 3600)

  OPENTACT_SECRET=\$TOKEN $BIN/opentactctl auth $ctl_flags --kind bearer

  printf '%s\n' "\$TOKEN" | $ctl token delete $ctl_flags --email opentact@callify.io

  OPENTACT_SECRET=\$TOKEN $BIN/opentactctl auth $ctl_flags --kind bearer

Events, one JSON line each, until Ctrl-C:

  $ctl events $ctl_flags --email opentact@callify.io --types sms,call_state

MSG
}

main() {
	trap stop EXIT
	trap 'stop signalled; exit 0' INT TERM HUP
	if ((build)); then build_stack; fi
	say "starting the sandbox and the facade..."
	start "${sandbox[@]}"
	start "${facade[@]}"
	wait_listening
	print_ready
	print_walkthrough
	if ((build)); then
		echo "Ctrl-C stops both. opentactctl and grpcurl are built in the background; their calls follow."
		# In a process group of its own, so that stop ends the go commands
		# under it too.
		set -m
		build_tools &
		helpers+=($!)
		set +m
	else
		print_grpcurl
		print_ctl
		echo "Ctrl-C stops both."
	fi
	# Until a signal (the trap), or until the sandbox or the facade ends.
	local status
	while :; do
		status=0
		wait -n "${pids[@]}" || status=$?
		ended "$status"
	done
}

# Under make, in a terminal, Ctrl-C would reach make too, and GNU make ends
# itself with the signal (exit status 130) once its recipe has returned,
# whatever the recipe did. So main runs as a job of its own that owns the
# terminal: Ctrl-C reaches it alone, and make sees its exit status. Ctrl-Z
# is ignored there, as the job would stay stopped behind make.
pgid=$(ps -o pgid= -p $$ 2>/dev/null) || pgid=
tpgid=$(ps -o tpgid= -p $$ 2>/dev/null) || tpgid=
if [[ -t 2 && -n ${pgid// /} && ${pgid// /} == "${tpgid// /}" ]]; then
	set -m
	(
		trap '' TSTP
		main
	) &
	job=$!
	# Should this script end otherwise (make killed), the pipe closes, and
	# the job is stopped too.
	exec 3> >(
		read -r _
		kill -TERM "$job" 2>/dev/null
	)
	watcher=$!
	set +e
	fg %+ >/dev/null
	status=$?
	kill "$watcher" 2>/dev/null
	wait "$watcher"
	exit "$status"
fi
main
