#!/usr/bin/env bash
# make dev: fakewa, fakelaravel and the gateway (batch mode, embedded Redis, fakewa's test-only
# dial settings) on loopback, each logging to a folder under /tmp; prints the URLs, the tokens and
# the two commands that pair a demo session; Ctrl-C (or SIGTERM) stops all three.
#
# Settings (environment): BIN (bin), DEV_GATEWAY_ADDR (127.0.0.1:4000), DEV_LARAVEL_ADDR
# (127.0.0.1:8000), DEV_FAKEWA_ADDR (127.0.0.1:9000), DEV_FAKEWA_CONTROL (127.0.0.1:9001),
# DEV_MODE (batch).
set -euo pipefail
bin=${BIN:-bin}
gw=${DEV_GATEWAY_ADDR:-127.0.0.1:4000}
lv=${DEV_LARAVEL_ADDR:-127.0.0.1:8000}
wa=${DEV_FAKEWA_ADDR:-127.0.0.1:9000}
wactl=${DEV_FAKEWA_CONTROL:-127.0.0.1:9001}
mode=${DEV_MODE:-batch}
for b in simulator fakelaravel gateway; do
	[ -x "$bin/$b" ] || { echo "dev: $bin/$b missing (make build)" >&2; exit 1; }
done
command -v curl >/dev/null || { echo "dev: curl is needed" >&2; exit 1; }

dir=$(mktemp -d /tmp/wagate-dev.XXXXXX)
token() { head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
api_token=$(token)
laravel_token=$(token)
pids=()
stop() {
	trap - EXIT INT TERM
	[ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null || true
	wait 2>/dev/null || true
	echo "dev: stopped; logs and data in $dir"
}
trap stop EXIT
trap 'exit 0' INT TERM

"$bin/simulator" fakewa -listen "$wa" -control "$wactl" -root-key "$dir/fakewa.pub" >"$dir/fakewa.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$dir/fakewa.pub" ] && break; sleep 0.1; done
[ -s "$dir/fakewa.pub" ] || { echo "dev: fakewa did not start, see $dir/fakewa.log" >&2; exit 1; }

FAKELARAVEL_TOKEN=$laravel_token "$bin/fakelaravel" -addr "$lv" -db "$dir/laravel.sqlite" >"$dir/fakelaravel.log" 2>&1 &
pids+=($!)

env WAGATE_ADDR="$gw" WAGATE_API_TOKEN="$api_token" WAGATE_MODE="$mode" WAGATE_REDIS_EMBEDDED=1 \
	WAGATE_LARAVEL_URL="http://$lv" WAGATE_LARAVEL_TOKEN="$laravel_token" WAGATE_DATA_DIR="$dir/gateway" \
	WAGATE_WA_INSECURE_TEST=1 WAGATE_WA_DIAL="$wa" WAGATE_WA_ROOT_PUBKEY="$(cat "$dir/fakewa.pub")" \
	"$bin/gateway" >"$dir/gateway.log" 2>&1 &
pids+=($!)
for _ in $(seq 150); do curl -fs "http://$gw/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "http://$gw/healthz" >/dev/null || { echo "dev: the gateway did not start, see $dir/gateway.log" >&2; exit 1; }

cat <<MSG
wagate dev environment ($mode mode), logs and data in $dir
  gateway      http://$gw          API token:     $api_token
  fakelaravel  http://$lv          Laravel token: $laravel_token   (GET /_fake/state with it)
  fakewa       ws://$wa/ws/chat    control: http://$wactl

Pair a demo session:
  curl -s -H 'Authorization: Bearer $api_token' -d '{"session_id":"demo"}' http://$gw/sessions
  qr=\$(curl -s -H 'Authorization: Bearer $api_token' http://$gw/sessions/demo/qr | sed 's/.*"qr":"\\([^"]*\\)".*/\\1/'); curl -s -d "{\\"qr\\":\\"\$qr\\",\\"phone\\":\\"15550001234\\"}" http://$wactl/pair
Then: curl -s -H 'Authorization: Bearer $api_token' http://$gw/sessions/demo
Ctrl-C stops everything.
MSG
# Until Ctrl-C, or until one of the three exits (then the others are stopped too).
wait -n "${pids[@]}" || true
echo "dev: a process exited, see the logs in $dir" >&2
exit 1
