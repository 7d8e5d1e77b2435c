# Sourced by infra/scripts/browser-test.sh and infra/scripts/dashboard-screenshots.sh: what a
# browser run needs before its pages. Installs what is missing (Debian's chromium, npm
# playwright-core into .tools/browser), builds the local server, starts it on a free loopback
# port with a temporary data folder (and the given arguments, e.g. --demo) and stops it on exit.
# Sets ROOT, TOOLS, BASE_URL, SERVER_LOG; exports ADMIN_API_KEY, READONLY_API_KEY and META_APP_SECRET for the
# page scripts.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$ROOT" || exit 1
TOOLS="$ROOT/.tools/browser"
PLAYWRIGHT_VERSION="1.65.1"

if [[ ! -x /usr/bin/chromium ]]; then
    echo "installing Debian's chromium" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if [[ ! -f "$TOOLS/node_modules/playwright-core/package.json" ]] ||
    ! grep -q "\"version\": \"$PLAYWRIGHT_VERSION\"" "$TOOLS/node_modules/playwright-core/package.json"; then
    mkdir -p "$TOOLS"
    npm install --prefix "$TOOLS" --no-audit --no-fund --silent "playwright-core@$PLAYWRIGHT_VERSION"
fi

cargo build -q -p local-server
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

BASE_URL="http://127.0.0.1:$port"
SERVER_LOG="$work/server.log"
export ADMIN_API_KEY=browser-admin-key READONLY_API_KEY=browser-readonly-key \
    META_APP_SECRET=browser-app-secret
DATA_DIR="$work/data" DEMO_DATA_DIR="$work/demo-data" PORT="$port" META_VERIFY_TOKEN=browser-verify \
    POSTBACK_TOKEN=browser-postback LINK_SECRET=browser-link RUST_LOG=warn target/debug/local-server "$@" >"$SERVER_LOG" 2>&1 &
server_pid=$!
# Until it answers (a --demo start answers once its week is in) or it stops.
for _ in $(seq 1 300); do
    curl -s -o /dev/null "$BASE_URL/widget.js" && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$SERVER_LOG" >&2; exit 1; }
    sleep 0.1
done
