#!/usr/bin/env bash
# Builds every function as Lambda runs it (provided.al2023, arm64, like `sam build`) and prints
# each binary's size and its zip's.
#
#   infra/scripts/lambda-build.sh              build every function of template.yaml, print sizes
#   infra/scripts/lambda-build.sh --install    only install cargo-lambda (other scripts use this)
#   LAMBDA_ARCH=x86-64 infra/scripts/lambda-build.sh   build for x86_64 instead
#
# 1. installs cargo-lambda from PyPI (it brings zig, the cross linker) into .tools/lambda-venv
#    when missing;
# 2. finds a Rust standard library for aarch64-unknown-linux-gnu: rustup's target if installed,
#    else `rustup target add` (needs the network to reach Rust's own servers); where that
#    fails (a machine that reaches only package registries), Debian's rustc-web and its arm64
#    standard library (`libstd-rust-web-dev:arm64`), installed with apt-get as root and used
#    through RUSTC=/usr/bin/rustc for this build only: rustup's toolchain stays the default;
# 3. runs `cargo lambda build --release --arm64 --output-format zip --bin <fn>...`, which
#    zips each `bootstrap` as Lambda takes it: target/lambda/<fn>/bootstrap.zip;
# 4. prints binary and zip size per function, and fails if a zip is 5 MB or more.
# The [profile.release] of Cargo.toml decides size and speed (see the README's "Lambda
# artefacts" section); cargo-lambda adds `-C target-cpu` (neoverse-n1 on arm64) and, for a
# setting the profile leaves out, its own default (e.g. panic=abort), so the profile sets them all.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lambda/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lambda/common.sh"

VENV="$ROOT/.tools/lambda-venv"
CARGO_LAMBDA_VERSION="1.9.2" # PyPI cargo-lambda; bump here
ZIP_LIMIT=$((5 * 1000 * 1000))

install_cargo_lambda() {
    mkdir -p "$ROOT/.tools"
    if command -v flock >/dev/null 2>&1; then
        exec {lock_fd}>"$ROOT/.tools/.lambda-install.lock"
        flock "$lock_fd"
    fi
    local stamp="$VENV/.cargo-lambda-version"
    if [[ -x $VENV/bin/cargo-lambda && -f $stamp && "$(cat "$stamp")" == "$CARGO_LAMBDA_VERSION" ]]; then
        say "cargo-lambda $CARGO_LAMBDA_VERSION already installed in .tools/lambda-venv"
    else
        command -v python3 >/dev/null 2>&1 || die "python3 not found: it installs cargo-lambda"
        say "installing cargo-lambda $CARGO_LAMBDA_VERSION (with zig) from PyPI into .tools/lambda-venv"
        [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV" ||
            die "python3 -m venv failed (on Debian's python: apt-get install python3-venv)"
        "$VENV/bin/pip" install --quiet --disable-pip-version-check "cargo-lambda==$CARGO_LAMBDA_VERSION"
        printf '%s' "$CARGO_LAMBDA_VERSION" >"$stamp"
    fi
    if [[ -n ${lock_fd:-} ]]; then exec {lock_fd}>&-; fi
}

# Sets LAMBDA_RUSTC (empty: rustup's) to a compiler that has the target's standard library.
LAMBDA_RUSTC=""
find_target_std() {
    local target=$1
    if rustup target list --installed 2>/dev/null | grep -qx "$target"; then
        say "Rust standard library for $target: rustup's"
        return 0
    fi
    if [[ -d /usr/lib/rustlib/$target/lib && -x /usr/bin/rustc ]]; then
        LAMBDA_RUSTC=/usr/bin/rustc
        say "Rust standard library for $target: Debian's ($("$LAMBDA_RUSTC" --version))"
        return 0
    fi
    say "rustup target add $target (gives up after 180 s without Rust's servers)"
    if timeout 180 rustup target add "$target" >&2; then
        return 0
    fi
    if ! command -v apt-get >/dev/null 2>&1 || ((EUID != 0)); then
        die "no Rust standard library for $target: run 'rustup target add $target', or as root on Debian let this script install rustc-web"
    fi
    say "installing Debian's rustc-web and its $target standard library (apt-get)"
    local deb_arch=arm64
    [[ $target == x86_64-* ]] && deb_arch=amd64
    if [[ $deb_arch != "$(dpkg --print-architecture)" ]] &&
        ! dpkg --print-foreign-architectures | grep -qx "$deb_arch"; then
        dpkg --add-architecture "$deb_arch"
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        rustc-web "libstd-rust-web-dev:$deb_arch" >&2
    [[ -d /usr/lib/rustlib/$target/lib ]] || die "Debian's libstd-rust-web-dev:$deb_arch has no $target library"
    LAMBDA_RUSTC=/usr/bin/rustc
}

human() { awk -v b="$1" 'BEGIN { printf "%.2f MiB", b / 1048576 }'; }

main() {
    install_cargo_lambda
    [[ ${1:-} == --install ]] && return 0
    export PATH="$VENV/bin:$PATH"

    local arch_flag target
    case "${LAMBDA_ARCH:-arm64}" in
    arm64) arch_flag=--arm64 target=aarch64-unknown-linux-gnu ;;
    x86-64 | x86_64) arch_flag=--x86-64 target=x86_64-unknown-linux-gnu ;;
    *) die "LAMBDA_ARCH must be arm64 or x86-64" ;;
    esac
    find_target_std "$target"

    local extra=()
    if [[ -n $LAMBDA_RUSTC ]]; then
        export RUSTC="$LAMBDA_RUSTC"
        extra+=(--skip-target-check)
    fi
    say "cargo lambda build --release $arch_flag --output-format zip ${BIN_ARGS[*]}"
    local started=$SECONDS
    cargo lambda build --release "$arch_flag" --output-format zip "${extra[@]}" "${BIN_ARGS[@]}"
    say "built in $((SECONDS - started)) s"

    local over=0 fn binary zip bin_bytes zip_bytes
    printf '\n%-10s %12s %12s %12s %12s\n' function binary "" zip "" >&2
    for fn in "${FUNCTIONS[@]}"; do
        binary="target/$target/release/$fn"
        zip="target/lambda/$fn/bootstrap.zip"
        [[ -f $binary && -f $zip ]] || die "missing $binary or $zip after the build"
        bin_bytes=$(stat -c %s "$binary")
        zip_bytes=$(stat -c %s "$zip")
        printf '%-10s %12s %12s %12s %12s\n' "$fn" "$bin_bytes" "$(human "$bin_bytes")" \
            "$zip_bytes" "$(human "$zip_bytes")" >&2
        ((zip_bytes < ZIP_LIMIT)) || over=$((over + 1))
    done
    printf '(%s; zips in target/lambda/<function>/bootstrap.zip)\n' "$target" >&2
    ((over == 0)) || die "$over zip(s) are 5 MB or more"
}

main "$@"
