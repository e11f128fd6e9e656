#!/usr/bin/env bash
# pg-local.sh - Tierstream's project-owned PostgreSQL cluster on 127.0.0.1 (no Docker, no system cluster).
#
#   pg-local.sh start    initdb on first use, start the server, wait until a real query answers,
#                        print the server URL on stdout. Idempotent (already running -> print URL, exit 0).
#   pg-local.sh stop     pg_ctl stop -m fast; SIGKILL by postmaster.pid after $PG_STOP_TIMEOUT s
#   pg-local.sh status   exit 0 (and print pid + URL) if the cluster is running
#   pg-local.sh url      print postgresql://tierstream:tierstream@127.0.0.1:PORT/postgres
#
# stdout carries only the URL (start, url) or the status line (status); logs go to stderr.
# PostgreSQL refuses to run as root: as root every server binary runs as the `postgres` user (runuser)
# and the data dir belongs to it; as any other user the binaries run as that user.
#
# Environment (all optional):
#   PG_RUN_DIR          parent of data/, run/ (unix socket), logs/   (default: <repo>/.build/pg)
#   PG_PORT             port; default: the port saved in the cluster's config, else a free port
#   PG_BINDIR           PostgreSQL bin dir (default: highest /usr/lib/postgresql/*/bin matching the data
#                       dir's major version, else initdb on PATH); Debian's `postgresql` is installed
#                       with apt-get when none is found and we run as root
#   PG_START_TIMEOUT    seconds to wait for readiness                (default: 60)
#   PG_STOP_TIMEOUT     seconds to wait for a fast shutdown          (default: 30)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$SCRIPT_DIR/../.." && pwd)"
PG_RUN_DIR="${PG_RUN_DIR:-$REPO_DIR/.build/pg}"
PG_START_TIMEOUT="${PG_START_TIMEOUT:-60}"
PG_STOP_TIMEOUT="${PG_STOP_TIMEOUT:-30}"
PG_SUPERUSER=tierstream
PG_PASSWORD=tierstream
PG_OS_USER=postgres

die() { echo "pg-local: $*" >&2; exit 1; }
log() { echo "pg-local: $*" >&2; }

IS_ROOT=0
[[ "${EUID:-$(id -u)}" -eq 0 ]] && IS_ROOT=1

# Absolute paths (postgres runs with another cwd).
[[ "$PG_RUN_DIR" = /* ]] || PG_RUN_DIR="$(pwd)/$PG_RUN_DIR"
DATA_DIR="$PG_RUN_DIR/data"
SOCK_DIR="$PG_RUN_DIR/run"
LOG_DIR="$PG_RUN_DIR/logs"
LOG_FILE="$LOG_DIR/postgresql.log"
CONF_NAME="tierstream.conf"
CONF="$DATA_DIR/$CONF_NAME"
LOCK_FILE="$PG_RUN_DIR/.lock"

# ---------------------------------------------------------------- helpers

as_pg() { # run a command as the cluster owner
  if (( IS_ROOT )); then runuser -u "$PG_OS_USER" -- "$@"; else "$@"; fi
}

need_python() { command -v python3 >/dev/null 2>&1 || die "python3 is needed for port selection"; }

free_port() {
  need_python
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

port_free() { # port -> 0 if nothing listens on 127.0.0.1:port
  need_python
  python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
PY
}

alive() { # pid -> 0 if the process exists and is not a zombie (PID 1 may not reap orphans)
  [[ "$1" =~ ^[0-9]+$ ]] && kill -0 "$1" 2>/dev/null || return 1
  local state
  state="$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null)" || true
  [[ "$state" != Z ]]
}

postmaster_pid() { # pid from postmaster.pid (line 1), or nothing
  [[ -f "$DATA_DIR/postmaster.pid" ]] || return 0
  head -n1 "$DATA_DIR/postmaster.pid" 2>/dev/null | tr -dc '0-9'
}

is_running() { # our postmaster: alive, and its command line names our data dir
  local pid; pid="$(postmaster_pid)"
  [[ -n "$pid" ]] && alive "$pid" || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$DATA_DIR"
}

# After a crash, postmaster.pid and the socket lock files remain. PostgreSQL ignores them when their pid
# is gone, but not when it is an unreaped zombie (PID 1 of a container may never reap): drop those whose
# process is not alive. Only ever called when our postmaster is not running.
clear_stale_locks() {
  local f pid
  for f in "$DATA_DIR/postmaster.pid" "$SOCK_DIR"/.s.PGSQL.*.lock; do
    [[ -f "$f" ]] || continue
    pid="$(head -n1 "$f" 2>/dev/null | tr -dc '0-9')"
    if [[ -z "$pid" ]] || ! alive "$pid"; then
      log "removing stale $(basename "$f") (pid ${pid:-?} is not running)"
      rm -f "$f"
      [[ "$f" != *.lock ]] || rm -f "${f%.lock}"
    fi
  done
}

running_port() { sed -n '4p' "$DATA_DIR/postmaster.pid" 2>/dev/null | tr -dc '0-9'; }

saved_port() { [[ -f "$CONF" ]] && sed -n "s/^port *= *\([0-9][0-9]*\).*/\1/p" "$CONF" | head -n1 || true; }

url_for() { echo "postgresql://$PG_SUPERUSER:$PG_PASSWORD@127.0.0.1:$1/postgres"; }

find_bindir() { # sets BINDIR; returns 1 if none
  local want="" d
  [[ -f "$DATA_DIR/PG_VERSION" ]] && want="$(cat "$DATA_DIR/PG_VERSION")"
  if [[ -n "${PG_BINDIR:-}" ]]; then
    [[ -x "$PG_BINDIR/initdb" ]] || die "PG_BINDIR=$PG_BINDIR has no initdb"
    BINDIR="$PG_BINDIR"; return 0
  fi
  # an existing cluster needs the binaries of its own major version
  if [[ -n "$want" && -x "/usr/lib/postgresql/$want/bin/initdb" ]]; then BINDIR="/usr/lib/postgresql/$want/bin"; return 0; fi
  d="$(for x in /usr/lib/postgresql/*/bin/initdb; do [[ -x "$x" ]] && dirname "$x"; done | sort -t/ -k5,5V | tail -n1)" || true
  if [[ -z "$d" ]] && command -v initdb >/dev/null 2>&1; then d="$(dirname "$(command -v initdb)")"; fi
  [[ -n "$d" ]] || return 1
  BINDIR="$d"
  if [[ -n "$want" ]]; then
    local have; have="$("$BINDIR/postgres" --version | sed -n 's/.* \([0-9][0-9]*\)\..*/\1/p')"
    [[ "$have" == "$want" ]] || die "$DATA_DIR is a PostgreSQL $want cluster but only $have binaries ($BINDIR) are installed; remove $PG_RUN_DIR or install postgresql-$want"
  fi
}

install_postgres() {
  if (( ! IS_ROOT )) || ! command -v apt-get >/dev/null 2>&1; then
    die "PostgreSQL server binaries (initdb) not found in /usr/lib/postgresql/*/bin or on PATH; install PostgreSQL (Debian: apt-get install postgresql) or set PG_BINDIR"
  fi
  log "initdb not found: installing Debian's postgresql with apt-get"
  # Do not let the package create (and start) the system-wide 'main' cluster on 5432: we run our own.
  if [[ ! -e /etc/postgresql-common/createcluster.d/tierstream.conf ]]; then
    mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false   # written by tierstream deploy/local/pg-local.sh" \
      >/etc/postgresql-common/createcluster.d/tierstream.conf
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2 || die "apt-get update failed"
  apt-get install -y -q --no-upgrade -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold postgresql >&2 \
    || die "apt-get install postgresql failed"
}

ensure_bindir() {
  find_bindir && return 0
  install_postgres
  find_bindir || die "still no initdb after installing postgresql"
}

# Create the run dir; every path component created here gets o+x so the cluster owner can traverse it.
make_run_dir() {
  local d created=() p
  d="$PG_RUN_DIR"
  while [[ ! -e "$d" ]]; do created+=("$d"); d="$(dirname "$d")"; done
  mkdir -p "$PG_RUN_DIR"
  for p in "${created[@]}"; do chmod o+x "$p"; done
}

# Every ancestor of the run dir must be traversable by the cluster owner; an existing one that is not
# is reported (we do not chmod directories this script did not create).
prepare_dirs() {
  local p
  (( IS_ROOT )) || { mkdir -p "$DATA_DIR" "$SOCK_DIR" "$LOG_DIR"; chmod 700 "$DATA_DIR" "$SOCK_DIR"; return 0; }
  id "$PG_OS_USER" >/dev/null 2>&1 || die "no '$PG_OS_USER' OS user to run PostgreSQL as (PostgreSQL refuses to run as root)"
  # top-down, so the message names the first component that blocks
  local chain=() i
  p="$PG_RUN_DIR"
  while [[ "$p" != / ]]; do chain=("$p" "${chain[@]}"); p="$(dirname "$p")"; done
  for i in / "${chain[@]}"; do
    if ! runuser -u "$PG_OS_USER" -- test -x "$i" 2>/dev/null; then
      log "warning: the '$PG_OS_USER' user cannot traverse $i ($(stat -c '%A %U' "$i"))"
      die "make it traversable (chmod o+x $i) or set PG_RUN_DIR to a directory the '$PG_OS_USER' user can reach"
    fi
  done
  mkdir -p "$DATA_DIR" "$SOCK_DIR" "$LOG_DIR"
  # the run dir itself stays as it is (it may be a directory the caller chose); only our subdirs change hands
  chown "$PG_OS_USER:" "$DATA_DIR" "$SOCK_DIR" "$LOG_DIR"
  chmod 755 "$LOG_DIR"
  chmod 700 "$DATA_DIR" "$SOCK_DIR"
}

init_cluster() {
  local pwfile
  pwfile="$(mktemp "$PG_RUN_DIR/.pwfile.XXXXXX")"
  # shellcheck disable=SC2064
  trap "rm -f '$pwfile'" EXIT
  printf '%s\n' "$PG_PASSWORD" >"$pwfile"
  chmod 600 "$pwfile"
  (( IS_ROOT )) && chown "$PG_OS_USER:" "$pwfile"
  log "initdb $DATA_DIR ($("$BINDIR/postgres" --version), superuser $PG_SUPERUSER)"
  if ! (cd "$PG_RUN_DIR" && as_pg "$BINDIR/initdb" -D "$DATA_DIR" -U "$PG_SUPERUSER" --pwfile="$pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --no-locale) \
        >"$LOG_DIR/initdb.log" 2>&1 8>&-; then
    cat "$LOG_DIR/initdb.log" >&2
    rm -f "$pwfile"
    die "initdb failed"
  fi
  rm -f "$pwfile"; trap - EXIT
  # our settings live in tierstream.conf, rewritten at every start
  echo "include_if_exists = '$CONF_NAME'   # Tierstream local settings (pg-local.sh)" >>"$DATA_DIR/postgresql.conf"
}

write_conf() { # port
  local port="$1" sockdirs="$SOCK_DIR"
  # A unix socket path is limited to 107 bytes; without room for it, TCP only.
  if (( ${#SOCK_DIR} + 20 > 107 )); then
    log "socket dir path too long for a unix socket; listening on TCP only"; sockdirs=""
  fi
  cat >"$CONF.tmp" <<EOF
# Tierstream local cluster settings, generated by deploy/local/pg-local.sh at every start
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sockdirs'
max_connections = 300
shared_buffers = 256MB
password_encryption = scram-sha-256
log_timezone = 'UTC'
timezone = 'UTC'
log_line_prefix = '%m [%p] %q%u@%d '
EOF
  (( IS_ROOT )) && chown "$PG_OS_USER:" "$CONF.tmp"
  mv -f "$CONF.tmp" "$CONF"
}

lock_run_dir() {
  exec 8>"$LOCK_FILE"
  flock 8 2>/dev/null || true
}

wait_ready() { # port
  local port="$1" end=$(( SECONDS + PG_START_TIMEOUT ))
  while (( SECONDS < end )); do
    is_running || { log "postmaster exited"; return 1; }
    if "$BINDIR/pg_isready" -q -h 127.0.0.1 -p "$port" -t 2 \
       && PGPASSWORD="$PG_PASSWORD" PGCONNECT_TIMEOUT=3 "$BINDIR/psql" -X -q -A -t \
            "host=127.0.0.1 port=$port user=$PG_SUPERUSER dbname=postgres sslmode=disable" -c 'select 1' 2>/dev/null \
          | grep -qx 1; then
      return 0
    fi
    sleep 0.2
  done
  return 1
}

kill_cluster() { # SIGKILL the postmaster and its children (the backends), then drop the stale pid file
  local pid children
  pid="$(postmaster_pid)"
  if [[ -n "$pid" ]] && alive "$pid"; then
    children="$(ps -o pid= --ppid "$pid" 2>/dev/null || true)"
    log "sending SIGKILL to postmaster $pid"
    kill -KILL "$pid" 2>/dev/null || true
    # shellcheck disable=SC2086
    [[ -z "${children// /}" ]] || kill -KILL $children 2>/dev/null || true
    local end=$(( SECONDS + 10 ))
    while alive "$pid" && (( SECONDS < end )); do sleep 0.1; done
  fi
  clear_stale_locks
}

# ---------------------------------------------------------------- commands

cmd_start() {
  make_run_dir
  lock_run_dir
  if is_running; then
    local p; p="$(running_port)"; p="${p:-$(saved_port)}"
    if [[ -n "${PG_PORT:-}" && "$p" != "$PG_PORT" ]]; then
      log "warning: already running on port $p, not on the requested PG_PORT=$PG_PORT"
    fi
    log "already running (pid $(postmaster_pid)) on port $p"
    url_for "$p"; return 0
  fi
  clear_stale_locks
  ensure_bindir
  prepare_dirs
  [[ -f "$DATA_DIR/PG_VERSION" ]] || init_cluster

  local port; port="${PG_PORT:-$(saved_port)}"; port="${port:-$(free_port)}"
  port_free "$port" || die "port 127.0.0.1:$port is already in use (set PG_PORT to another port)"
  write_conf "$port"
  if ! (cd "$PG_RUN_DIR" && as_pg "$BINDIR/pg_ctl" start -D "$DATA_DIR" -l "$LOG_FILE" -w -t "$PG_START_TIMEOUT" -s) \
       >&2 8>&-; then
    tail -n 30 "$LOG_FILE" >&2 2>/dev/null || true
    die "pg_ctl start failed"
  fi
  log "started pid $(postmaster_pid), waiting for 127.0.0.1:$port"
  if ! wait_ready "$port"; then
    tail -n 30 "$LOG_FILE" >&2 2>/dev/null || true
    stop_cluster || true
    die "PostgreSQL not ready after ${PG_START_TIMEOUT}s"
  fi
  log "ready at 127.0.0.1:$port"
  url_for "$port"
}

stop_cluster() {
  if ! is_running; then clear_stale_locks; log "not running"; return 0; fi
  local pid; pid="$(postmaster_pid)"
  find_bindir || true
  if [[ -n "${BINDIR:-}" ]] && (cd "$PG_RUN_DIR" && as_pg "$BINDIR/pg_ctl" stop -D "$DATA_DIR" -m fast -w -t "$PG_STOP_TIMEOUT" -s) >&2 8>&-; then
    local end=$(( SECONDS + 5 ))
    while alive "$pid" && (( SECONDS < end )); do sleep 0.1; done
  fi
  if alive "$pid"; then
    log "postmaster $pid did not stop within ${PG_STOP_TIMEOUT}s"
    kill_cluster
  fi
  log "stopped pid $pid"
}

cmd_stop() {
  [[ -d "$PG_RUN_DIR" ]] || { log "not running"; return 0; }
  lock_run_dir
  stop_cluster
}

cmd_status() {
  if is_running; then
    local p; p="$(running_port)"; p="${p:-$(saved_port)}"
    echo "running pid $(postmaster_pid) at $(url_for "$p")"
  else
    echo "not running"; return 1
  fi
}

cmd_url() {
  local p=""
  if is_running; then p="$(running_port)"; fi
  p="${p:-$(saved_port)}"
  p="${p:-${PG_PORT:-}}"
  [[ -n "$p" ]] || die "no cluster in $DATA_DIR yet (run: $0 start)"
  url_for "$p"
}

case "${1:-}" in
  start)  cmd_start ;;
  stop)   cmd_stop ;;
  status) cmd_status ;;
  url)    cmd_url ;;
  *) echo "usage: $0 {start|stop|status|url}" >&2; exit 2 ;;
esac
