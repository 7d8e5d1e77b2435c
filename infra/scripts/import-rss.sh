#!/usr/bin/env bash
# Peak memory of a large conversion import: starts the local server (debug build, a temporary
# DATA_DIR), makes an offer, a send and a click, writes a CSV of ROWS conversions of that click
# (default 100,000; TUNE's column names), posts it to POST /conversions/import?network=tune,
# and prints the server's peak resident set (VmHWM of /proc/<pid>/status) before and after,
# the file's size, the time taken, the answer's totals line, the peak after importing the
# same file again (every row a duplicate) and the store's size on disk.
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

curl -fs "${auth[@]}" -X POST "$base/offers" -H 'Content-Type: application/json' \
    -d '{"offer_id": "shoes", "name": "Shoes", "destination_url": "https://shop.example/p?aff={click_id}"}' >/dev/null
code="$(curl -fs "${auth[@]}" -X POST "$base/sends" -H 'Content-Type: application/json' \
    -d '{"instance_id": "106540352242922", "contact_id": "16505551234", "message_id": "wamid.rss",
         "campaign": "spring", "creative": "tpl-a", "offer_id": "shoes"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["code"])')"
click="$(curl -fs -o /dev/null -w '%{redirect_url}' -A 'Mozilla/5.0' "$base/c/$code" | sed 's/.*aff=//')"
[[ -n $click ]] || die "no click id from the redirect"

python3 - "$work/conversions.csv" "$ROWS" "$click" <<'EOF'
import sys
path, rows, click = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(path, "w") as out:
    out.write("aff_sub,transaction_id,payout,currency,converted_at,event\n")
    for row in range(rows):
        out.write(f"{click},rss-{row:07d},{row % 100}.{row % 97:02d},USD,,sale\n")
EOF
size="$(stat -c %s "$work/conversions.csv")"
before="$(hwm)"
start="$(date +%s)"
curl -fsS "${auth[@]}" -X POST "$base/conversions/import?network=tune" \
    -H 'Content-Type: text/csv' --data-binary "@$work/conversions.csv" -o "$work/answer.ndjson"
end="$(date +%s)"
printf 'rows %s, file %s bytes, %s s\n' "$ROWS" "$size" "$((end - start))"
printf 'peak RSS (VmHWM) before the import: %s\n' "$before"
printf 'answer lines: %s, last: %s\n' "$(wc -l <"$work/answer.ndjson")" "$(tail -n 1 "$work/answer.ndjson")"
printf 'peak RSS (VmHWM) after the import: %s\n' "$(hwm)"
# The same file again: every row a duplicate, nothing stored. A peak that stays where it was
# is memory the import does not keep per row.
curl -fsS "${auth[@]}" -X POST "$base/conversions/import?network=tune" \
    -H 'Content-Type: text/csv' --data-binary "@$work/conversions.csv" -o "$work/again.ndjson"
printf 'again: %s\n' "$(tail -n 1 "$work/again.ndjson")"
printf 'peak RSS (VmHWM) after importing it again: %s\n' "$(hwm)"
# The embedded store (redb) caches the pages it touches (up to 1 GiB by default): the store's
# size says how much of the peak is the stored conversions' pages rather than the import.
printf 'store on disk: %s\n' "$(du -sh "$work/data" | cut -f1)"
