#!/usr/bin/env bash
# The widget snippet and the dashboard in a real browser: Debian's headless Chromium driven by
# playwright-core (npm), against the local server on loopback. Installs what is missing (apt
# chromium, npm playwright-core into .tools/browser), builds and starts the local server on a
# free port with a temporary data folder, runs infra/scripts/browser/widget.test.mjs,
# dashboard.test.mjs, analytics.test.mjs and contacts.test.mjs (screenshots in
# .tools/screenshots/), and stops the server.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
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

export ADMIN_API_KEY=browser-admin-key READONLY_API_KEY=browser-readonly-key META_APP_SECRET=browser-app-secret
DATA_DIR="$work/data" PORT="$port" META_VERIFY_TOKEN=browser-verify POSTBACK_TOKEN=browser-postback \
    LINK_SECRET=browser-link RUST_LOG=warn target/debug/local-server >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$port/widget.js" && break
    sleep 0.1
done

for test in widget dashboard analytics contacts; do
    if ! BASE_URL="http://127.0.0.1:$port" PLAYWRIGHT_MODULES="$TOOLS/" POSTBACK_TOKEN=browser-postback \
        SCREENSHOTS="$ROOT/.tools/screenshots" node "infra/scripts/browser/$test.test.mjs"; then
        echo "--- local server log" >&2
        cat "$work/server.log" >&2
        exit 1
    fi
done
