#!/usr/bin/env bash
# `sam validate --lint` of template.yaml, offline. Installs the pinned AWS SAM CLI into its own
# venv (.tools/sam: its dependencies would fight moto's in .tools/venv) when missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.tools/sam"
SAM_CLI="aws-sam-cli==1.170.0"

if [[ ! -x $VENV/bin/sam ]] || [[ "$("$VENV/bin/pip" freeze 2>/dev/null)" != *"$SAM_CLI"* ]]; then
    echo "installing $SAM_CLI into .tools/sam" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "$SAM_CLI"
fi
SAM_CLI_TELEMETRY=0 "$VENV/bin/sam" validate --lint --template "$ROOT/template.yaml" --region us-east-1
