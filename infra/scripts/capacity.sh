#!/usr/bin/env bash
# What each operation costs on DynamoDB and SQS, and what a month of it costs on AWS.
#
#   infra/scripts/capacity.sh            measure, print the table, check infra/capacity/expected.json
#   infra/scripts/capacity.sh --update   measure, print the table, rewrite infra/capacity/expected.json
#
# 1. starts DynamoDB Local and moto on loopback (infra/scripts/emulators.sh run);
# 2. runs the count check, tests/tests/capacity.rs: every operation of the list in
#    tests/src/capacity.rs once through the functions' routers and the matcher's SQS handler,
#    over SDK clients that count each request and ask for ReturnConsumedCapacity TOTAL; with
#    CAPACITY_PRINT it prints the markdown table, with CAPACITY_UPDATE it writes the JSON
#    instead of comparing (the test command runs the same test, comparing);
# 3. prices the figures (infra/capacity/cost.py: prices, the month's mix and the formulas are
#    at its top) and prints the cost tables.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

mode=CAPACITY_PRINT
case "${1:-}" in
"") ;;
--update) mode=CAPACITY_UPDATE ;;
*)
    sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac

# Built before the emulators start: their namespace has no network.
cargo test -p integration-tests --test capacity --no-run
env "$mode=1" bash infra/scripts/emulators.sh run \
    cargo test -p integration-tests --test capacity -- --nocapture --test-threads=1
python3 infra/capacity/cost.py infra/capacity/expected.json
