#!/usr/bin/env bash
# Load test of the local server (release build, embedded store) over loopback with wrk
# (Debian's package; installed when missing), route by route:
#   webhooks   signed WhatsApp deliveries, each a new contact's first message: 40% with a
#              click-to-WhatsApp referral, 60% pre-filled texts (10 rules installed; two match
#              two thirds of them), so 60% also queue a rule-match job
#   statuses   signed status-only deliveries (sent / delivered / read), which store nothing
#   revenue    tracked-link redirects (1,000 sends, one warm-up click each first), then
#              TUNE-style postbacks, each a new conversion on one of those clicks
#   reads      the webhook load again, on another instance, with its stats, contacts listing
#              and backfill preview read in parallel by a second wrk (2 paced connections)
# Prints throughput and latency percentiles per route, then count checks (infra/scripts/load/check.py,
# never timings): every webhook answered 200 made exactly one contact, of the kind sent (the
# stats counters, the rule counts and the contacts listing agree); every answered click and
# postback is in the revenue report, none twice. Exits non-zero when a check fails. Ends by
# itself and stops the server it started.
#
#   infra/scripts/load.sh                       10 s per route, 32 connections, 2 wrk threads
#   DURATION=3 CONNECTIONS=64 infra/scripts/load.sh
#   ROUTES="webhooks statuses" infra/scripts/load.sh   (any of: webhooks statuses revenue reads)
#   LOAD_PROFILE=debug DURATION=2 infra/scripts/load.sh   (the guard in infra/scripts/test.sh: counts only)
# LOAD_PORT picks the port (a free one by default); MAX_RATE (30000) sizes the pool of distinct
# deliveries (MAX_RATE x DURATION); MATCHER_WAIT_SECONDS (600) bounds the wait for the matcher;
# READS_DELAY_MS (10) paces each reading connection; LOCAL_SERVER names a server binary to use
# instead of building one.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
DURATION="${DURATION:-10}"
SECONDS_PER_ROUTE="${DURATION%s}"
CONNECTIONS="${CONNECTIONS:-32}"
THREADS="${THREADS:-2}"
LOAD_PROFILE="${LOAD_PROFILE:-release}"
READS_DELAY_MS="${READS_DELAY_MS:-10}"
MAX_RATE="${MAX_RATE:-30000}"
ROUTES=" ${ROUTES:-webhooks statuses revenue reads} "
SENDS=1000
ADMIN_KEY=load-admin-key
APP_SECRET=load-app-secret
POSTBACK_TOKEN=load-postback-token
WEBHOOK_INSTANCE=100000000000001
STATUS_INSTANCE=100000000000002
READS_INSTANCE=100000000000003
if ! [[ $SECONDS_PER_ROUTE =~ ^[0-9]+$ ]] || ((SECONDS_PER_ROUTE < 1)); then
    echo "DURATION must be whole seconds (e.g. 10 or 10s), not $DURATION" >&2
    exit 2
fi

if ! command -v wrk >/dev/null; then
    echo "installing wrk (Debian package)" >&2
    apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
if [[ -n ${LOCAL_SERVER:-} ]]; then
    SERVER="$LOCAL_SERVER" # a binary built elsewhere (e.g. an older commit, to compare)
else
    case "$LOAD_PROFILE" in
        release) cargo build --release -q -p local-server ;;
        debug) cargo build -q -p local-server ;;
        *)
            echo "LOAD_PROFILE must be release or debug, not $LOAD_PROFILE" >&2
            exit 2
            ;;
    esac
    TARGET_DIR="$(cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
    SERVER="$TARGET_DIR/$LOAD_PROFILE/local-server"
fi

WORK="$(mktemp -d)"
server_pid=""
cleanup() {
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

wants() { [[ $ROUTES == *" $1 "* ]]; }
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

# Distinct deliveries for every request wrk may make, made before the server starts.
per_thread=$(((SECONDS_PER_ROUTE * MAX_RATE + THREADS - 1) / THREADS))
generate() { # messages|statuses instance count-per-thread output-prefix
    python3 infra/scripts/load/webhooks.py "$1" --instance "$2" --secret "$APP_SECRET" \
        --threads "$THREADS" --per-thread "$3" --out "$4"
}
wants webhooks && generate messages "$WEBHOOK_INSTANCE" "$per_thread" "$WORK/webhooks"
wants statuses && generate statuses "$STATUS_INSTANCE" 3000 "$WORK/statuses"
wants reads && generate messages "$READS_INSTANCE" "$per_thread" "$WORK/reads-webhooks"

LOAD_PORT="${LOAD_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
BASE="http://127.0.0.1:$LOAD_PORT"
DATA_DIR="$WORK/data" PORT="$LOAD_PORT" ADMIN_API_KEY="$ADMIN_KEY" POSTBACK_TOKEN="$POSTBACK_TOKEN" \
    META_APP_SECRET="$APP_SECRET" META_VERIFY_TOKEN=load-verify LINK_SECRET=load-link-secret \
    RUST_LOG=warn "$SERVER" >"$WORK/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
    curl -s -o /dev/null "$BASE/offers" && break
    sleep 0.1
done
if ! curl -s -o /dev/null "$BASE/offers"; then
    echo "the local server did not start:" >&2
    cat "$WORK/server.log" >&2
    exit 1
fi

check() { python3 infra/scripts/load/check.py "$@"; }
failed=()
rows=()
run() { # name wrk-connections script
    echo
    echo "== $1: wrk -t$THREADS -c$2 -d${SECONDS_PER_ROUTE}s --latency"
    wrk -t"$THREADS" -c"$2" -d"${SECONDS_PER_ROUTE}s" --latency -s "$3" "$BASE" | tee "$WORK/$1.out"
}
verify() { # description check arguments...
    local what=$1
    shift
    check "$@" || failed+=("$what")
}

if wants webhooks; then
    check rules "$BASE" "$ADMIN_KEY" "$WEBHOOK_INSTANCE"
    BODIES="$WORK/webhooks" run webhooks "$CONNECTIONS" infra/scripts/load/webhooks.lua
    verify webhooks webhooks "$BASE" "$ADMIN_KEY" "$WEBHOOK_INSTANCE" "$WORK/webhooks.out"
    rows+=("webhooks|\`POST /webhooks/meta\`, new contacts (40% referrals, 60% rule texts)")
fi
if wants statuses; then
    BODIES="$WORK/statuses" CYCLE=1 run statuses "$CONNECTIONS" infra/scripts/load/webhooks.lua
    verify statuses statuses "$BASE" "$ADMIN_KEY" "$STATUS_INSTANCE" "$WORK/statuses.out"
    rows+=("statuses|\`POST /webhooks/meta\`, status only")
fi
if wants revenue; then
    check sends "$BASE" "$ADMIN_KEY" "$SENDS" "$WORK/codes" "$WORK/clicks"
    CODES_FILE="$WORK/codes" run clicks "$CONNECTIONS" infra/scripts/load/clicks.lua
    CLICKS_FILE="$WORK/clicks" POSTBACK_TOKEN="$POSTBACK_TOKEN" \
        run postbacks "$CONNECTIONS" infra/scripts/load/postbacks.lua
    verify revenue revenue "$BASE" "$ADMIN_KEY" "$WORK/clicks.out" "$WORK/postbacks.out" "$SENDS"
    rows+=("clicks|\`GET /c/{code}\`" "postbacks|\`GET /postbacks/tune\`")
fi
if wants reads; then
    check rules "$BASE" "$ADMIN_KEY" "$READS_INSTANCE"
    INSTANCE="$READS_INSTANCE" ADMIN_KEY="$ADMIN_KEY" DELAY_MS="$READS_DELAY_MS" \
        run reads 2 infra/scripts/load/reads.lua >"$WORK/reads.log" &
    reads_pid=$!
    BODIES="$WORK/reads-webhooks" run reads-webhooks "$CONNECTIONS" infra/scripts/load/webhooks.lua
    wait "$reads_pid"
    cat "$WORK/reads.log"
    verify "webhooks with reads" webhooks "$BASE" "$ADMIN_KEY" "$READS_INSTANCE" "$WORK/reads-webhooks.out"
    verify reads reads "$WORK/reads.out"
    rows+=("reads-webhooks|\`POST /webhooks/meta\` with the reads in parallel"
        "reads|stats / contacts / backfill preview in parallel (2 connections, ${READS_DELAY_MS} ms pauses)")
fi

echo
echo "== figures: ${LOCAL_SERVER:-$LOAD_PROFILE build}, wrk -t$THREADS -c$CONNECTIONS, ${SECONDS_PER_ROUTE} s per route;" \
    "$(nproc) cores, load average $load_before before the run (other work on the machine)"
echo "| Route | Requests/s | p50 | p99 | max |"
echo "| --- | ---: | ---: | ---: | ---: |"
for row in "${rows[@]}"; do
    check row "${row#*|}" "$WORK/${row%%|*}.out"
done
if ((${#failed[@]})); then
    echo "load: count checks FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "load: every count check passed"
