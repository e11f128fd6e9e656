#!/usr/bin/env bash
# run-tests.sh - the project's test command (what `make test` and .ci/run call).
#   Lint + the contract/docs checks + every test tier against a real Kafka and PostgreSQL, which the
#   test fixtures start through kafka-local.sh / pg-local.sh unless KAFKA_BOOTSTRAP_SERVERS /
#   DATABASE_URL point elsewhere. Whatever this run started is stopped at the end, pass or fail.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# The test servers live apart from the dev stack's (.build/kafka, .build/pg): tests never wipe its data.
export KAFKA_RUN_DIR="${KAFKA_RUN_DIR:-$ROOT/.build/test/kafka}" PG_RUN_DIR="${PG_RUN_DIR:-$ROOT/.build/test/pg}"

kafka_was_running=0; pg_was_running=0
bash deploy/local/kafka-local.sh status >/dev/null 2>&1 && kafka_was_running=1
bash deploy/local/pg-local.sh status >/dev/null 2>&1 && pg_was_running=1
cleanup() {
  # The fixtures stop what they started; this catches a crashed or interrupted run.
  [[ $kafka_was_running == 1 ]] || bash deploy/local/kafka-local.sh stop >/dev/null 2>&1 || true
  [[ $pg_was_running == 1 ]] || bash deploy/local/pg-local.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

status=0
echo "== lint and format (ruff)"
uv run --frozen ruff check . || status=1
uv run --frozen ruff format --check . || status=1
echo "== types (mypy over the shipped code)"
uv run --frozen mypy shared/src services/*/src src || status=1
echo "== browser for the dashboard's e2e tests (Debian chromium)"
bash deploy/local/chromium.sh || echo "warning: no Chromium; the dashboard's browser tests will fail and say why" >&2
echo "== tests (unit, contract, integration, e2e, fault, realdata)"
uv run --frozen pytest "$@" || status=1
exit $status
