#!/usr/bin/env bash
# Refreshes the README's dashboard screenshots (infra/dashboard/*.png): starts the local server
# with --demo on a free port with a temporary demo folder (infra/scripts/browser/server.sh, as
# the browser test does), signs in in headless Chromium and saves one PNG per page
# (infra/scripts/browser/screenshots.mjs), then stops the server. Run it when a page changes and
# commit the PNGs.
set -euo pipefail

# shellcheck source=infra/scripts/browser/server.sh
source "$(dirname "${BASH_SOURCE[0]}")/browser/server.sh" --demo

if ! BASE_URL="$BASE_URL" PLAYWRIGHT_MODULES="$TOOLS/" OUT="$ROOT/infra/dashboard" \
    node infra/scripts/browser/screenshots.mjs; then
    echo "--- local server log" >&2
    cat "$SERVER_LOG" >&2
    exit 1
fi
ls -l infra/dashboard/*.png
