#!/usr/bin/env bash
# chromium.sh - make sure Debian's Chromium is there for the browser tests (tests/e2e/test_dashboard.py,
#   Playwright driving /usr/bin/chromium; Playwright's own browser downloads are never used).
#   Idempotent: prints the browser's path and does nothing else when it is installed. Otherwise installs
#   the `chromium` package with apt-get, as root or through passwordless sudo, waiting for an apt/dpkg run
#   already under way instead of failing on its lock; says what to do and exits 1 when it cannot.
#   TIERSTREAM_CHROMIUM overrides the path (the tests read it too).
set -euo pipefail
CHROMIUM="${TIERSTREAM_CHROMIUM:-/usr/bin/chromium}"

if [[ -x "$CHROMIUM" ]]; then
  echo "$CHROMIUM"
  exit 0
fi
fail() { echo "chromium.sh: $CHROMIUM is missing and $1" >&2; exit 1; }
command -v apt-get >/dev/null 2>&1 \
  || fail "this system has no apt-get: install Chromium yourself and set TIERSTREAM_CHROMIUM to its path"
if [[ $(id -u) == 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  fail "this user may not install packages: run 'sudo apt-get install -y chromium' once"
fi

echo "chromium.sh: installing Debian's chromium package (once; the browser tests need it)" >&2
export DEBIAN_FRONTEND=noninteractive
lock=(-o DPkg::Lock::Timeout=900)
"${as_root[@]}" apt-get "${lock[@]}" update -qq >&2 || fail "apt-get update failed (see above)"
"${as_root[@]}" apt-get "${lock[@]}" install -y -qq chromium >&2 || fail "apt-get install chromium failed (see above)"
[[ -x "$CHROMIUM" ]] || fail "the chromium package installed no $CHROMIUM (set TIERSTREAM_CHROMIUM to the browser's path)"
echo "$CHROMIUM"
