#!/usr/bin/env bash
# The widget snippet and the dashboard in a real browser: Debian's headless Chromium driven by
# playwright-core (npm), against the local server on loopback. Installs what is missing (apt
# chromium, npm playwright-core into .tools/browser), builds and starts the local server on a
# free port with a temporary data folder (infra/scripts/browser/server.sh), runs infra/scripts/browser/widget.test.mjs,
# dashboard.test.mjs, analytics.test.mjs, contacts.test.mjs and ads.test.mjs (screenshots in
# .tools/screenshots/), and stops the server.
set -euo pipefail

# shellcheck source=infra/scripts/browser/server.sh
source "$(dirname "${BASH_SOURCE[0]}")/browser/server.sh"

for test in widget dashboard analytics contacts ads; do
    if ! BASE_URL="$BASE_URL" PLAYWRIGHT_MODULES="$TOOLS/" POSTBACK_TOKEN=browser-postback \
        SCREENSHOTS="$ROOT/.tools/screenshots" node "infra/scripts/browser/$test.test.mjs"; then
        echo "--- local server log" >&2
        cat "$SERVER_LOG" >&2
        exit 1
    fi
done
