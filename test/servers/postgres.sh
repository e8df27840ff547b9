#!/usr/bin/env bash
# Local PostgreSQL for tests: 127.0.0.1:${FS_PG_PORT:-25432}, data in $STATE_DIR/postgres/data.
#
# Usage: postgres.sh {start|stop|status|pid|env|psql [ARGS...]}
#   start   init on first use (role+db featurestore/featurestore), start, wait for pg_isready
#   stop    fast shutdown (idempotent)
#   status  exit 0 if running, 3 if not
#   pid     print the postmaster pid (for kill -STOP/-CONT fault tests)
#   env     print DATABASE_URL=...
#   psql    open psql as featurestore on the featurestore database
# Env: FS_PG_PORT (25432), FS_STATE_DIR, PG_START_TIMEOUT (30), FS_PG_LISTEN (an extra listen
#      address) and FS_PG_ALLOW_CIDR (clients from there may log in with a password): for a real node
set -euo pipefail
LOG_TAG=postgres
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PG_PORT="${FS_PG_PORT:-25432}"
# Loopback, plus FS_PG_LISTEN (an address inside a network namespace of a real node) when set.
LISTEN_ADDRESSES="127.0.0.1${FS_PG_LISTEN:+,$FS_PG_LISTEN}"
PG_DIR="$STATE_DIR/postgres"
# The postgres OS user must reach the data dir; under a 0700 parent (e.g. a clone in /root) it
# can't, so fall back to a per-state-dir directory in /var/tmp.
if [[ $EUID -eq 0 ]] && id -u postgres >/dev/null 2>&1; then
  _probe="$STATE_DIR"
  while [[ ! -e "$_probe" ]]; do _probe="$(dirname "$_probe")"; done
  if ! runuser -u postgres -- test -x "$_probe"; then
    PG_DIR="/var/tmp/feature-store-pg-$(printf '%s' "$STATE_DIR" | cksum | cut -d' ' -f1)"
  fi
fi
PG_DATA="$PG_DIR/data"
PG_LOG="$PG_DIR/postgres.log"
PG_TIMEOUT="${PG_START_TIMEOUT:-30}"
DATABASE_URL_LOCAL="postgres://featurestore:featurestore@127.0.0.1:$PG_PORT/featurestore"
# Unix socket paths are limited to ~107 bytes; fall back to a short /tmp dir.
PG_SOCK="$PG_DIR"
if ((${#PG_DIR} + ${#PG_PORT} + 10 > 100)); then
  PG_SOCK="/tmp/fs-pg-$(printf '%s' "$PG_DIR" | cksum | cut -d' ' -f1)"
fi

# Newest /usr/lib/postgresql/*/bin; install Debian's postgresql if there is none.
find_pg_bin() {
  local d
  d="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n1)"
  if [[ -z "$d" ]] && command -v pg_ctl >/dev/null 2>&1; then
    d="$(dirname "$(readlink -f "$(command -v pg_ctl)")")"
  fi
  printf '%s' "$d"
}
PG_BIN="$(find_pg_bin)"

ensure_postgres_installed() {
  [[ -n "$PG_BIN" ]] && return 0
  [[ $EUID -eq 0 ]] || die "PostgreSQL server binaries not found" "install them: sudo apt-get install -y postgresql"
  log "PostgreSQL not found; running apt-get update && apt-get install -y postgresql (1-2 min) ..."
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } >&2; then
    die "apt-get install postgresql failed" "check apt sources/network, then run: apt-get install -y postgresql"
  fi
  # Debian may create and start a 'main' cluster on 5432; we don't use it.
  if command -v pg_lsclusters >/dev/null 2>&1; then
    pg_lsclusters --no-header 2>/dev/null | awk '$4 == "online" {print $1, $2}' | while read -r ver name; do
      log "stopping Debian's auto-started cluster $ver/$name (not used by us)"
      pg_ctlcluster "$ver" "$name" stop || true
    done
  fi
  PG_BIN="$(find_pg_bin)"
  [[ -n "$PG_BIN" ]] || die "postgresql installed but no /usr/lib/postgresql/*/bin found" "inspect: dpkg -L postgresql-common"
}

# Run as the postgres OS user when root (initdb/postgres refuse to run as root).
as_pg() {
  if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

ensure_pg_user() {
  [[ $EUID -eq 0 ]] || return 0
  id -u postgres >/dev/null 2>&1 && return 0
  log "creating system user 'postgres'"
  useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres \
    || die "could not create the postgres OS user" "create it by hand: useradd --system --user-group postgres"
}

postmaster_pid() { [[ -f "$PG_DATA/postmaster.pid" ]] && head -n1 "$PG_DATA/postmaster.pid"; }

# Like `pg_ctl status`, but a killed postmaster that is still a zombie counts as stopped.
is_running() {
  local pid; pid="$(postmaster_pid 2>/dev/null)" || return 1
  pid_alive "$pid" && grep -qa postgres "/proc/$pid/cmdline" 2>/dev/null
}

# After a kill -9 the old postmaster can linger as a zombie (or its pid be reused),
# which makes postgres refuse to start: wait for it to vanish, then drop the stale lock.
clear_stale_pidfile() {
  local pid deadline=$((SECONDS + 10))
  pid="$(postmaster_pid 2>/dev/null)" || return 0
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  log "removing stale lock files of the previous postmaster (pid $pid)"
  rm -f "$PG_DATA/postmaster.pid" "$PG_SOCK/.s.PGSQL.$PG_PORT.lock"
}

prepare_dirs() {
  ensure_state_dir
  [[ "$PG_DIR" == "$STATE_DIR/postgres" ]] \
    || log "note: the postgres OS user cannot traverse $STATE_DIR, so its data lives in $PG_DIR"
  mkdir -p "$PG_DIR" "$PG_SOCK"
  if [[ $EUID -eq 0 ]]; then
    chown postgres:postgres "$PG_DIR" "$PG_SOCK"
    if [[ -d "$PG_DATA" && "$(stat -c %U "$PG_DATA")" != postgres ]]; then
      chown -R postgres:postgres "$PG_DATA"
    fi
  fi
  chmod 755 "$PG_DIR" "$PG_SOCK"
  as_pg test -w "$PG_DIR" || die "the postgres OS user cannot write $PG_DIR (a parent dir is not traversable by others?)" \
    "chmod o+x the parent directories, or set FS_STATE_DIR=/var/tmp/feature-store"
}

init_cluster() {
  log "initializing a new cluster in $PG_DATA ($("$PG_BIN/postgres" --version))"
  as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -E UTF8 --no-locale --no-sync \
    --auth-local=trust --auth-host=scram-sha-256 >"$PG_DIR/initdb.log" 2>&1 \
    || { log_tail "$PG_DIR/initdb.log"; die "initdb failed" "fix the cause above, then: rm -rf '$PG_DATA' && $0 start"; }
  printf "\ninclude_if_exists = 'featurestore.conf'\n" | as_pg tee -a "$PG_DATA/postgresql.conf" >/dev/null
}

# Rewritten on every start so FS_PG_PORT / socket dir changes take effect.
write_conf() {
  # Clients: local sockets, loopback, and with FS_PG_ALLOW_CIDR (a real node's pods) that range.
  {
    printf '%s\n' '# Generated by test/servers/postgres.sh on each start; edits are overwritten.' \
      'local   all       all                 trust' 'host    all       all   127.0.0.1/32  scram-sha-256'
    if [[ -n "${FS_PG_ALLOW_CIDR:-}" ]]; then printf 'host    all       all   %s  scram-sha-256\n' "$FS_PG_ALLOW_CIDR"; fi
  } | as_pg tee "$PG_DATA/pg_hba.conf" >/dev/null
  as_pg tee "$PG_DATA/featurestore.conf" >/dev/null <<EOF
# Generated by test/servers/postgres.sh on each start; edits are overwritten.
listen_addresses = '$LISTEN_ADDRESSES'
port = $PG_PORT
unix_socket_directories = '$PG_SOCK'
max_connections = 200
shared_buffers = 256MB
fsync = on
synchronous_commit = on
# Per-statement time for make bench's "where the time goes" (about 1% overhead).
shared_preload_libraries = 'pg_stat_statements'
log_line_prefix = '%m [%p] %q%u@%d '
EOF
}

provision() {
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d postgres >/dev/null <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'featurestore') THEN
    CREATE ROLE featurestore SUPERUSER LOGIN PASSWORD 'featurestore';
  END IF;
END $$;
SELECT 'CREATE DATABASE featurestore OWNER featurestore'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'featurestore') \gexec
SQL
}

cmd_start() {
  ensure_postgres_installed
  if is_running; then log "already running (pid $(postmaster_pid), port $PG_PORT)"; return 0; fi
  ensure_pg_user
  prepare_dirs
  if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
    init_cluster
  else
    local have want
    have="$(cat "$PG_DATA/PG_VERSION")"
    want="$(basename "$(dirname "$PG_BIN")")"
    [[ "$have" == "$want" || ! "$want" =~ ^[0-9]+$ ]] || die "data dir $PG_DATA is from PostgreSQL $have but binaries are $want" \
      "discard the test data: rm -rf '$PG_DATA' && $0 start"
  fi
  write_conf
  clear_stale_pidfile
  if ! wait_port_free 127.0.0.1 "$PG_PORT" 10; then
    die "port $PG_PORT is already in use by another process" "stop it (ss -ltnp 'sport = :$PG_PORT') or use FS_PG_PORT=<free port>"
  fi
  log "starting on 127.0.0.1:$PG_PORT (data $PG_DATA, log $PG_LOG)"
  as_pg "$PG_BIN/pg_ctl" start -D "$PG_DATA" -l "$PG_LOG" -w -t "$PG_TIMEOUT" >/dev/null \
    || { log_tail "$PG_LOG"; die "postgres did not start within ${PG_TIMEOUT}s" "read the log above ($PG_LOG); '$0 stop' then retry"; }
  local deadline=$((SECONDS + PG_TIMEOUT))
  until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; do
    ((SECONDS < deadline)) || { log_tail "$PG_LOG"; die "pg_isready did not answer within ${PG_TIMEOUT}s" "read $PG_LOG"; }
    sleep 0.2
  done
  provision || { log_tail "$PG_LOG"; die "could not create role/database featurestore" "read $PG_LOG; '$0 psql' to inspect"; }
  log "ready (pid $(postmaster_pid)): $DATABASE_URL_LOCAL"
}

cmd_stop() {
  if ! is_running; then log "not running"; return 0; fi
  local pid; pid="$(postmaster_pid)"
  kill -CONT "$pid" 2>/dev/null || true # in case a test left it SIGSTOPped
  log "stopping (pid $pid)"
  as_pg "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -w -t 60 >/dev/null \
    || { log_tail "$PG_LOG"; die "pg_ctl stop failed" "force it: kill -9 $pid (data is crash-safe)"; }
  [[ "$PG_SOCK" == "$PG_DIR" ]] || rmdir "$PG_SOCK" 2>/dev/null || true
  log "stopped"
}

# A crash as tests need one: backends quit at once, no checkpoint; the next start replays the WAL.
cmd_crash() {
  is_running || die "not running" "start it: $0 start"
  local pid; pid="$(postmaster_pid)"
  kill -CONT "$pid" 2>/dev/null || true
  log "crashing (immediate shutdown, pid $pid)"
  as_pg "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m immediate -w -t 60 >/dev/null \
    || { log_tail "$PG_LOG"; die "pg_ctl stop -m immediate failed" "kill -9 $pid"; }
  log "crashed"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  crash) cmd_crash ;;
  status)
    if is_running; then log "running (pid $(postmaster_pid), port $PG_PORT)"; else log "not running"; exit 3; fi ;;
  pid)
    is_running || die "not running" "start it: $0 start"
    postmaster_pid ;;
  env) echo "DATABASE_URL=$DATABASE_URL_LOCAL" ;;
  psql) shift; exec "$PG_BIN/psql" "$DATABASE_URL_LOCAL" "$@" ;;
  *) die "usage: $0 {start|stop|crash|status|pid|env|psql [ARGS...]}" "pick one of the subcommands above" ;;
esac
