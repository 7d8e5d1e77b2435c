#!/usr/bin/env bash
# Peak memory of a large conversion import: starts the local server (debug build, a temporary
# DATA_DIR), makes an offer, a send and a click, writes a CSV of ROWS conversions of that click
# (default 100,000; TUNE's column names) and one of as many rows whose payout does not parse,
# posts them to POST /conversions/import?network=tune (the invalid file, the file, the file
# again) and prints the server's peak resident set (VmHWM of /proc/<pid>/status) before and
# after each, with the time taken, the answer's last line and the store's size on disk.
#
#   infra/scripts/import-rss.sh [ROWS]
#
# Logs: .tools/logs/import-rss-server.log
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
ROWS="${1:-100000}"
LOGS="$ROOT/.tools/logs"
ADMIN_KEY="import-rss-admin-key-$RANDOM$RANDOM"
POSTBACK_TOKEN="import-rss-postback-token-$RANDOM$RANDOM"

say() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'ERROR: %s\n' "$*" >&2
    exit 1
}
[[ $ROWS =~ ^[0-9]+$ ]] || die "ROWS must be a number"
mkdir -p "$LOGS"

say "building the local server (debug)"
cargo build --quiet -p local-server --bin local-server
server_bin="$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/local-server"

work="$(mktemp -d)"
server_pid=""
# shellcheck disable=SC2329 # called by the EXIT trap
stop() {
    if [[ -n $server_pid ]]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap stop EXIT

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
mkdir -p "$work/data"
PORT="$port" DATA_DIR="$work/data" RUST_LOG=warn \
    META_APP_SECRET="import-rss-app-secret" META_VERIFY_TOKEN="import-rss-verify-token" \
    ADMIN_API_KEY="$ADMIN_KEY" POSTBACK_TOKEN="$POSTBACK_TOKEN" LINK_SECRET="import-rss-link-secret" \
    PUBLIC_BASE_URL="$base" \
    "$server_bin" >"$LOGS/import-rss-server.log" 2>&1 </dev/null &
server_pid=$!

auth=(-H "Authorization: Bearer $ADMIN_KEY")
for _ in $(seq 1 240); do
    kill -0 "$server_pid" 2>/dev/null || die "the local server exited (see $LOGS/import-rss-server.log)"
    curl -fs "${auth[@]}" "$base/offers" >/dev/null 2>&1 && break
    sleep 0.25
done
curl -fs "${auth[@]}" "$base/offers" >/dev/null || die "the local server did not answer"

hwm() { awk '/^VmHWM/ {print $2 " " $3}' "/proc/$server_pid/status"; }
rss() { awk '/^VmRSS/ {print $2 " " $3}' "/proc/$server_pid/status"; }

curl -fs "${auth[@]}" -X POST "$base/offers" -H 'Content-Type: application/json' \
    -d '{"offer_id": "shoes", "name": "Shoes", "destination_url": "https://shop.example/p?aff={click_id}"}' >/dev/null
code="$(curl -fs "${auth[@]}" -X POST "$base/sends" -H 'Content-Type: application/json' \
    -d '{"instance_id": "106540352242922", "contact_id": "16505551234", "message_id": "wamid.rss",
         "campaign": "spring", "creative": "tpl-a", "offer_id": "shoes"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["code"])')"
click="$(curl -fs -o /dev/null -w '%{redirect_url}' -A 'Mozilla/5.0' "$base/c/$code" | sed 's/.*aff=//')"
[[ -n $click ]] || die "no click id from the redirect"

python3 - "$work" "$ROWS" "$click" <<'EOF'
import sys
work, rows, click = sys.argv[1], int(sys.argv[2]), sys.argv[3]
header = "aff_sub,transaction_id,payout,currency,converted_at,event\n"
with open(f"{work}/conversions.csv", "w") as good, open(f"{work}/invalid.csv", "w") as bad:
    good.write(header)
    bad.write(header)
    for row in range(rows):
        good.write(f"{click},rss-{row:07d},{row % 100}.{row % 97:02d},USD,,sale\n")
        # The same size, refused by the payout's parse: the import's own path, no store.
        bad.write(f"{click},rss-{row:07d},{row % 100}x{row % 97:02d},USD,,sale\n")
EOF
size="$(stat -c %s "$work/conversions.csv")"

# import FILE NAME: posts FILE, prints the time, the answer's last line and the peak after.
import() {
    local start end
    start="$(date +%s)"
    curl -fsS "${auth[@]}" -X POST "$base/conversions/import?network=tune" \
        -H 'Content-Type: text/csv' --data-binary "@$1" -o "$work/answer.ndjson"
    end="$(date +%s)"
    printf '%s: %s s, %s answer lines, last %s\n' "$2" "$((end - start))" \
        "$(wc -l <"$work/answer.ndjson")" "$(tail -n 1 "$work/answer.ndjson")"
    printf 'peak RSS (VmHWM) after %s: %s (VmRSS %s)\n' "$2" "$(hwm)" "$(rss)"
}

printf 'rows %s, file %s bytes\n' "$ROWS" "$size"
printf 'peak RSS (VmHWM) before: %s (VmRSS %s)\n' "$(hwm)" "$(rss)"
# 1. Every row refused (a payout that does not parse): the parse and the answer alone, what
#    the import itself holds, before the store has grown.
import "$work/invalid.csv" "the invalid rows"
# 2. Every row recorded: the store's pages come on top (redb caches the pages it touches, up
#    to 1 GiB by default).
import "$work/conversions.csv" "the import"
# 3. The same file again: every row a duplicate, nothing stored.
import "$work/conversions.csv" "importing it again"
printf 'store on disk: %s\n' "$(du -sh "$work/data" | cut -f1)"
