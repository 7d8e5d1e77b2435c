#!/usr/bin/env bash
# Load test of the click redirect and the postback route on the local server (release build,
# embedded store, loopback only), with wrk (Debian's package; installed when missing).
#
#   infra/bench-revenue.sh            10 s per route, 32 connections
#   DURATION=30s CONNECTIONS=64 infra/bench-revenue.sh
#
# Prints wrk's throughput and latency percentiles per route, then checks the counts: the
# revenue report must hold every click and conversion that wrk saw answered (nothing lost), and
# at most one more per connection (requests in flight when wrk stopped): nothing doubled. Ends
# by itself and stops the server it started.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-2}"
PORT="${PORT:-3917}"
SENDS=1000
ADMIN_KEY=bench-admin-key
POSTBACK_TOKEN=bench-postback-token
BASE="http://127.0.0.1:$PORT"

if ! command -v wrk >/dev/null; then
    echo "installing wrk (Debian package)" >&2
    apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
cargo build --release -q -p local-server

WORK="$(mktemp -d)"
server_pid=""
cleanup() {
    [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

DATA_DIR="$WORK/data" PORT="$PORT" ADMIN_API_KEY="$ADMIN_KEY" POSTBACK_TOKEN="$POSTBACK_TOKEN" \
    META_APP_SECRET=bench-app-secret META_VERIFY_TOKEN=bench-verify LINK_SECRET=bench-link-secret \
    RUST_LOG=warn target/release/local-server >"$WORK/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
    curl -s -o /dev/null "$BASE/offers" && break
    sleep 0.1
done

admin() { curl -sf -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' "$@"; }

admin -X POST "$BASE/offers" -d '{"offer_id": "bench", "name": "Bench",
    "destination_url": "https://shop.example/p?sub={click_id}"}' >/dev/null
python3 - "$SENDS" >"$WORK/sends.json" <<'PY'
import json, sys
n = int(sys.argv[1])
print(json.dumps([{"instance_id": "1", "contact_id": f"c{i}", "message_id": f"m{i}",
                   "campaign": f"camp{i % 10}", "creative": f"tpl{i % 7}", "offer_id": "bench"}
                  for i in range(n)]))
PY
admin -X POST "$BASE/sends" --data-binary @"$WORK/sends.json" |
    python3 -c 'import json,sys; [print(s["code"]) for s in json.load(sys.stdin)["sends"]]' >"$WORK/codes"

# One click per send before the load, to have click ids to post back on.
while read -r code; do
    curl -s -o /dev/null -w '%{redirect_url}\n' -A 'Mozilla/5.0 warm-up' "$BASE/c/$code"
done <"$WORK/codes" | sed 's/.*sub=//' >"$WORK/clicks"

run() { # name script
    echo
    echo "== $1: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$2" "$BASE" | tee "$WORK/$1.out"
}
CODES_FILE="$WORK/codes" run clicks infra/load/clicks.lua
CLICKS_FILE="$WORK/clicks" POSTBACK_TOKEN="$POSTBACK_TOKEN" run postbacks infra/load/postbacks.lua

answered() { # wrk output file -> requests answered without an error status
    local total errors
    total=$(awk '/requests in/ {print $1}' "$1")
    errors=$(awk '/Non-2xx or 3xx responses/ {print $NF}' "$1")
    echo $((total - ${errors:-0}))
}
clicks=$(($(answered "$WORK/clicks.out") + SENDS))
conversions=$(answered "$WORK/postbacks.out")
admin "$BASE/reports/revenue?group_by=campaign" >"$WORK/report.json"
python3 - "$WORK/report.json" "$clicks" "$conversions" "$CONNECTIONS" <<'PY'
import json, sys
total = json.load(open(sys.argv[1]))["totals"][0]
clicks, conversions = int(sys.argv[2]), int(sys.argv[3])
print(f"\nreport: {total['sends']} sends, {total['clicks']} clicks, "
      f"{total['conversions']} conversions, revenue {total['revenue']}")
# wrk stops counting at the deadline with up to one request per connection still in flight;
# the server finishes those, so the counts may exceed wrk's by at most that many.
in_flight = int(sys.argv[4])
for name, answered in (("clicks", clicks), ("conversions", conversions)):
    counted = total[name]
    assert answered <= counted <= answered + in_flight, \
        f"{name}: wrk saw {answered} answered, the report counts {counted}"
print("counts check: every answered click and postback is counted, none twice")
PY
