#!/usr/bin/env bash
# Runs every function's Lambda binary under cargo-lambda's Lambda emulator and checks its
# answers to real event shapes (infra/scripts/events/), against DynamoDB Local and moto.
#
#   infra/scripts/lambda-invoke.sh
#
# 1. installs the emulators' tools (infra/scripts/emulators.sh install) and cargo-lambda
#    (infra/scripts/lambda-build.sh --install);
# 2. builds the functions' binaries (every Binary: of template.yaml), `cargo build --bin <fn>...` (debug: what `cargo lambda watch`
#    runs, sharing target/debug with the tests), with network, before the emulators start;
# 3. inside `infra/scripts/emulators.sh run` (loopback only): creates the template's tables on
#    DynamoDB Local, the match queue and the secrets (SSM SecureString under SECRETS_PREFIX)
#    on moto (infra/scripts/lambda/setup_aws.py), starts `cargo lambda watch` on 127.0.0.1 with that
#    environment (AWS_ENDPOINT_URL = moto for SSM and SQS, AWS_ENDPOINT_URL_DYNAMODB =
#    DynamoDB Local), and sends each event of `infra/scripts/lambda/events.py list`, in order, with
#    `cargo lambda invoke FUNCTION --data-file EVENT`;
# 4. checks each answer's status code and a body field (infra/scripts/lambda/events.py check) and
#    exits non-zero if any is wrong. Logs: .tools/logs/lambda-watch.log (functions included).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lambda/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lambda/common.sh"
export PATH="$ROOT/.tools/lambda-venv/bin:$PATH"

WORK="" WATCH_PID=""
cleanup() {
    if [[ -n $WATCH_PID ]]; then
        kill -TERM -- "-$WATCH_PID" 2>/dev/null || true
        wait "$WATCH_PID" 2>/dev/null || true
    fi
    [[ -z $WORK ]] || rm -rf "$WORK"
}

inner() {
    trap cleanup EXIT
    WORK="$(mktemp -d)"
    "$PY" infra/scripts/lambda/setup_aws.py --dynamodb "$DYNAMODB_ENDPOINT" --moto "$SQS_ENDPOINT" \
        "$WORK/env"
    echo "RUST_LOG=info" >>"$WORK/env"

    local port
    port="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    say "cargo lambda watch on 127.0.0.1:$port (log .tools/logs/lambda-watch.log)"
    # Its own process group, so that the functions it starts stop with it.
    setsid cargo lambda watch --ignore-changes --invoke-address 127.0.0.1 --invoke-port "$port" \
        --env-file "$WORK/env" >"$LOGS/lambda-watch.log" 2>&1 </dev/null &
    WATCH_PID=$!
    "$PY" - "$port" "$WATCH_PID" <<'EOF' || {
import os, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(1)
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.2)
sys.exit(1)
EOF
        tail -n 30 "$LOGS/lambda-watch.log" >&2
        printf 'ERROR: cargo lambda watch did not start (log above)\n' >&2
        return 1
    }

    local fn event total=0 wrong=0 verdict
    while read -r fn event; do
        total=$((total + 1))
        if ! cargo lambda invoke "$fn" --invoke-address 127.0.0.1 --invoke-port "$port" \
            --data-file "$event" --output-format json >"$WORK/answer" 2>"$WORK/invoke.err"; then
            wrong=$((wrong + 1))
            printf 'FAIL %-9s %-42s invoke failed: %s\n' "$fn" "${event#infra/scripts/events/}" \
                "$(tr '\n' ' ' <"$WORK/invoke.err" | cut -c1-300)" >&2
            continue
        fi
        if verdict=$("$PY" infra/scripts/lambda/events.py check "$event" <"$WORK/answer"); then
            printf 'ok   %-9s %-42s %s\n' "$fn" "${event#infra/scripts/events/}" "$verdict" >&2
        else
            wrong=$((wrong + 1))
            printf 'FAIL %-9s %-42s %s\n' "$fn" "${event#infra/scripts/events/}" "$verdict" >&2
        fi
    done < <("$PY" infra/scripts/lambda/events.py list)

    if ((wrong)); then
        tail -n 40 "$LOGS/lambda-watch.log" >&2
        printf 'lambda invoke check: %d of %d answers wrong (log above)\n' "$wrong" "$total" >&2
        return 1
    fi
    printf 'lambda invoke check: all %d answers right\n' "$total" >&2
}

main() {
    bash infra/scripts/emulators.sh install
    bash infra/scripts/lambda-build.sh --install
    mkdir -p "$LOGS"
    say "cargo build ${BIN_ARGS[*]} (what cargo lambda watch runs)"
    cargo build "${BIN_ARGS[@]}"
    bash infra/scripts/emulators.sh run bash "$ROOT/infra/scripts/lambda-invoke.sh" __inner
}

if [[ ${1:-} == __inner ]]; then
    inner
else
    main "$@"
fi
