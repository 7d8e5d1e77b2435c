#!/usr/bin/env bash
# Property-based API testing of the local server from its description, infra/openapi.yaml:
# schemathesis (pinned in infra/scripts/emulators.sh, installed into .tools/venv) generates requests
# for every operation, valid and not, and fails on any 5xx, any response whose status, content
# type or body the description does not allow.
#
#   infra/scripts/schemathesis.sh [EXTRA SCHEMATHESIS ARGS...]
#
# Builds the local server (debug), starts it on a free loopback port with a temporary
# DATA_DIR and its own secrets (the admin key and postback token go on every request), runs
# schemathesis, and stops the server. Bounded: SCHEMATHESIS_MAX_EXAMPLES examples per
# operation and phase (default 50) and SCHEMATHESIS_TIME_LIMIT seconds in all (default 420).
# The seed is fixed (SCHEMATHESIS_SEED, default 1) so a run can be repeated.
# Logs: .tools/logs/schemathesis-server.log, report: .tools/logs/schemathesis-junit.xml
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
SCHEMATHESIS="$ROOT/.tools/venv/bin/schemathesis"
LOGS="$ROOT/.tools/logs"
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-50}"
TIME_LIMIT="${SCHEMATHESIS_TIME_LIMIT:-420}"
SEED="${SCHEMATHESIS_SEED:-1}"

ADMIN_KEY="schemathesis-admin-key-$RANDOM$RANDOM"
POSTBACK_TOKEN="schemathesis-postback-token-$RANDOM$RANDOM"

say() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'ERROR: %s\n' "$*" >&2
    exit 1
}

[[ -x $SCHEMATHESIS ]] || die "schemathesis is not installed (infra/scripts/emulators.sh install)"
mkdir -p "$LOGS"

say "building the local server (debug)"
cargo build --quiet -p local-server --bin local-server
server_bin="$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/local-server"

data_dir="$(mktemp -d)"
server_pid=""
# shellcheck disable=SC2329 # called by the EXIT trap
stop() {
    if [[ -n $server_pid ]]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$data_dir"
}
trap stop EXIT

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base_url="http://127.0.0.1:$port"
PORT="$port" DATA_DIR="$data_dir" RUST_LOG=warn \
    META_APP_SECRET="schemathesis-app-secret" META_VERIFY_TOKEN="schemathesis-verify-token" \
    ADMIN_API_KEY="$ADMIN_KEY" POSTBACK_TOKEN="$POSTBACK_TOKEN" LINK_SECRET="schemathesis-link-secret" \
    PUBLIC_BASE_URL="$base_url" \
    "$server_bin" >"$LOGS/schemathesis-server.log" 2>&1 </dev/null &
server_pid=$!

ready=0
for _ in $(seq 1 240); do
    kill -0 "$server_pid" 2>/dev/null || {
        tail -n 20 "$LOGS/schemathesis-server.log" >&2
        die "the local server exited (log above)"
    }
    if python3 - "$base_url/offers" "$ADMIN_KEY" <<'EOF' 2>/dev/null; then
import sys, urllib.request
request = urllib.request.Request(sys.argv[1], headers={"Authorization": "Bearer " + sys.argv[2]})
with urllib.request.urlopen(request, timeout=2) as response:
    sys.exit(0 if response.status == 200 else 1)
EOF
        ready=1
        break
    fi
    sleep 0.25
done
((ready)) || die "the local server did not answer within 60 s"
say "local server ready at $base_url (pid $server_pid); schemathesis, at most ${TIME_LIMIT} s"

status=0
timeout --kill-after=10 "$TIME_LIMIT" "$SCHEMATHESIS" run infra/openapi.yaml \
    --url "$base_url" \
    --header "Authorization: Bearer $ADMIN_KEY" \
    --header "X-Postback-Token: $POSTBACK_TOKEN" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --phases examples,coverage,fuzzing \
    --max-examples "$MAX_EXAMPLES" \
    --seed "$SEED" \
    --generation-database none \
    --request-timeout 10 \
    --suppress-health-check all \
    --report junit --report-junit-path "$LOGS/schemathesis-junit.xml" \
    --no-color \
    "$@" || status=$?
if ((status == 124 || status == 137)); then
    say "schemathesis did not finish within ${TIME_LIMIT} s"
fi
exit "$status"
