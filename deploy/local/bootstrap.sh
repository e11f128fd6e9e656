#!/usr/bin/env bash
# bootstrap.sh - install what the project needs on a fresh machine (idempotent, quiet when done).
#   Python >= 3.11 must exist; uv comes from PyPI; the locked environment from uv.lock.
#   Java/Maven (for the Kafka broker) and PostgreSQL are installed on demand by kafka-local.sh and
#   pg-local.sh, the first time they start.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
UV_VERSION="0.13.8"

log() { echo "bootstrap: $*" >&2; }

PYTHON="${PYTHON:-}"
if [[ -z "$PYTHON" ]]; then
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      PYTHON="$(command -v "$candidate")"; break
    fi
  done
fi
[[ -n "$PYTHON" ]] || { log "Python 3.11+ is required (none found on PATH)"; exit 1; }

if ! command -v uv >/dev/null 2>&1 || [[ "$(uv --version 2>/dev/null | awk '{print $2}')" != "$UV_VERSION" ]]; then
  log "installing uv $UV_VERSION from PyPI"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION" 2>&1 | grep -v "^WARNING: Running pip as the 'root'" >&2 || true
  hash -r
fi
command -v uv >/dev/null 2>&1 || { log "uv is not on PATH after installing it; add $("$PYTHON" -m site --user-base)/bin to PATH"; exit 1; }

cd "$ROOT"
uv sync --frozen --all-packages --python "$PYTHON" --quiet
log "environment ready ($(uv run --frozen python --version))"
