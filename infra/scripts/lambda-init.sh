#!/usr/bin/env bash
# Times each function's cold start: exec of its bootstrap -> its first request for an event.
#
#   infra/scripts/lambda-init.sh [RUNS]           RUNS starts per function (default 21), median printed
#   LAMBDA_INIT_BIN_DIR=DIR infra/scripts/lambda-init.sh   time the binaries in DIR instead of building
#
# 1. builds the functions natively, `cargo build --release --bin <fn>...` (x86_64, the same
#    [profile.release] as the arm64 zips; this machine cannot run arm64 code natively, and
#    under qemu the figures would measure the emulator);
# 2. starts DynamoDB Local and moto on loopback (infra/scripts/emulators.sh run), creates the
#    template's tables, the match queue and the SSM SecureString parameters under
#    SECRETS_PREFIX (infra/scripts/lambda/setup_aws.py): what a function reads at init is real —
#    its one SSM GetParameters (WithDecryption) on moto and its DynamoDB warm-up read on
#    DynamoDB Local;
# 3. for each function, infra/scripts/lambda/fake_runtime.py (a minimal Runtime API on 127.0.0.1)
#    starts the bootstrap RUNS times with the environment Lambda gives it and records the
#    time from exec to the runtime's first GET /2018-06-01/runtime/invocation/next;
#    First the floor: infra/lambda-floor, a hello-world lambda_runtime binary built with the same
#    profile, started the same way, so that each function's row also says how many times the
#    floor's init time and CPU it takes, in the same run;
# 4. prints min / median / max per function. Function logs: .tools/logs/lambda-init-<fn>.log
#
#   LAMBDA_INIT_FUNCTIONS="webhook rules"   time only these (the floor is always timed)
#   LAMBDA_INIT_CERTS=probe                 leave the root certificates to rustls-native-certs'
#                                           probing (the bundle and every file of the folder),
#                                           as before template.yaml set SSL_CERT_FILE
#
# The functions start as template.yaml starts them: SSL_CERT_FILE names the system's bundle
# (Amazon Linux's /etc/pki/tls/certs/ca-bundle.crt there; this machine's here) and
# SSL_CERT_DIR is unset, whatever this shell has.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lambda/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lambda/common.sh"

WORK=""
inner() {
    local runs=$1 bin_dir=$2
    WORK="$(mktemp -d)"
    trap 'rm -rf "$WORK"' EXIT
    "$PY" infra/scripts/lambda/setup_aws.py --dynamodb "$DYNAMODB_ENDPOINT" --moto "$SQS_ENDPOINT" \
        "$WORK/env"
    # The variables Lambda itself sets (lambda_runtime reads them at init).
    local env_args=() line
    while IFS= read -r line; do env_args+=("$line"); done <"$WORK/env"
    env_args+=(
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256 AWS_LAMBDA_FUNCTION_VERSION="\$LATEST"
        AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/lambda-init AWS_LAMBDA_LOG_STREAM_NAME=init
        AWS_LAMBDA_INITIALIZATION_TYPE=on-demand _HANDLER=bootstrap LAMBDA_TASK_ROOT="$bin_dir"
        RUST_LOG=info TZ=:UTC
    )

    local certs=(-u SSL_CERT_DIR -u SSL_CERT_FILE)
    if [[ ${LAMBDA_INIT_CERTS:-file} != probe ]]; then
        local bundle
        for bundle in /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/certs/ca-certificates.crt; do
            [[ -f $bundle ]] && break
        done
        env_args+=(SSL_CERT_FILE="$bundle")
    fi
    env_args=("${certs[@]}" "${env_args[@]}")

    local fn failed=0 results="$LOGS/lambda-init.json" floor="$WORK/floor.json"
    : >"$results"
    printf '\n%-12s %8s %10s %8s %10s %9s %7s   (ms; exec -> first next, %s starts; cpu: median CPU time)\n' \
        function min median max cpu "x floor" "x cpu" "$runs" >&2
    env "${env_args[@]}" AWS_LAMBDA_FUNCTION_NAME=lambda-floor \
        "$PY" infra/scripts/lambda/fake_runtime.py time --runs "$runs" --label lambda-floor \
        --log "$LOGS/lambda-init-lambda-floor.log" -- "$bin_dir/lambda-floor" >"$floor" || return 1
    cat "$floor" >>"$results"
    local functions
    read -r -a functions <<<"${LAMBDA_INIT_FUNCTIONS:-${FUNCTIONS[*]}}"
    for fn in "${functions[@]}"; do
        rm -f "$LOGS/lambda-init-$fn.log"
        env "${env_args[@]}" AWS_LAMBDA_FUNCTION_NAME="$fn" \
            "$PY" infra/scripts/lambda/fake_runtime.py time --runs "$runs" --label "$fn" \
            --floor "$floor" --log "$LOGS/lambda-init-$fn.log" -- "$bin_dir/$fn" >>"$results" ||
            failed=1
    done
    printf '(binaries: %s; every start: .tools/logs/lambda-init.json)\n' "${bin_dir#"$ROOT"/}" >&2
    return "$failed"
}

main() {
    local runs=${1:-21}
    if ! [[ $runs =~ ^[0-9]+$ ]] || ((runs == 0)); then
        printf 'usage: infra/scripts/lambda-init.sh [RUNS]\n' >&2
        exit 2
    fi
    bash infra/scripts/emulators.sh install
    mkdir -p "$LOGS"
    local bin_dir=${LAMBDA_INIT_BIN_DIR:-}
    if [[ -z $bin_dir ]]; then
        local bins=(--bin lambda-floor) fn
        for fn in ${LAMBDA_INIT_FUNCTIONS:-${FUNCTIONS[*]}}; do bins+=(--bin "$fn"); done
        say "cargo build --release ${bins[*]} (native, for timing)"
        cargo build --release "${bins[@]}"
        bin_dir="$ROOT/target/release"
    fi
    bin_dir="$(cd "$bin_dir" && pwd)"
    bash infra/scripts/emulators.sh run bash "$ROOT/infra/scripts/lambda-init.sh" __inner "$runs" "$bin_dir"
}

if [[ ${1:-} == __inner ]]; then
    inner "$2" "$3"
else
    main "$@"
fi
