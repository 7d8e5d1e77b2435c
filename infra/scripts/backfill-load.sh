#!/usr/bin/env bash
# Backfill at size through the HTTP API and the job (tests/tests/backfill_load.rs): contacts
# loaded into the store, a rule created, POST /instances/{id}/backfill previewed and run on the
# local server's in-process queue and matcher until its job is done; wall times, and on
# DynamoDB Local the round trips by API.
#
#   infra/scripts/backfill-load.sh            100,000 contacts on the embedded store, 5,000 on DynamoDB Local
#   EMBEDDED_CONTACTS=N DYNAMO_CONTACTS=N infra/scripts/backfill-load.sh
#   PROFILE=release infra/scripts/backfill-load.sh   (timings worth quoting: an optimised build)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

profile=()
[[ "${PROFILE:-dev}" == release ]] && profile=(--release)
test_cmd=(cargo test "${profile[@]}" -p integration-tests --test backfill_load)

# Built before the emulators start: their namespace has no network.
"${test_cmd[@]}" --no-run
BACKFILL_LOAD_CONTACTS="${EMBEDDED_CONTACTS:-100000}" BACKFILL_LOAD_STORE=embedded \
    "${test_cmd[@]}" -- --nocapture embedded
BACKFILL_LOAD_CONTACTS="${DYNAMO_CONTACTS:-5000}" BACKFILL_LOAD_STORE=dynamo \
    bash infra/scripts/emulators.sh run "${test_cmd[@]}" -- --nocapture dynamo
