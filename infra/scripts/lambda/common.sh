# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables are for the scripts that source this file
# Sourced by the Lambda scripts (lambda-build.sh, lambda-init.sh, lambda-invoke.sh): the
# repository root as the working directory, the functions (every `Binary:` of template.yaml, in
# its order, so that the stack and the scripts name the same ones), and the tools' paths.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$ROOT" || exit 1

mapfile -t FUNCTIONS < <(sed -n 's/^ *Binary: *//p' template.yaml)
((${#FUNCTIONS[@]})) || {
    printf 'ERROR: no function (Binary:) found in template.yaml\n' >&2
    exit 1
}
# cargo's `--bin FN` for each of them.
BIN_ARGS=()
for fn in "${FUNCTIONS[@]}"; do BIN_ARGS+=(--bin "$fn"); done
unset fn

PY="$ROOT/.tools/venv/bin/python"
LOGS="$ROOT/.tools/logs"

say() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'ERROR: %s\n' "$*" >&2
    exit 1
}
