# shellcheck shell=bash
# Shared helpers for test/servers/*.sh. Source it; do not execute it.
#
# Env:
#   FS_STATE_DIR  where servers keep data, logs, pidfiles (default: $REPO/.local)
#   FS_CACHE_DIR  where downloaded artifacts go (default: $HOME/.cache/feature-store)

SERVERS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(git -C "$SERVERS_DIR" rev-parse --show-toplevel 2>/dev/null || (cd "$SERVERS_DIR/../.." && pwd))"
STATE_DIR="${FS_STATE_DIR:-$REPO/.local}"
# shellcheck disable=SC2034 # used by the scripts that source this file
CACHE_DIR="${FS_CACHE_DIR:-${HOME:-/root}/.cache/feature-store}"

log()  { printf '[%s] %s\n' "${LOG_TAG:-servers}" "$*" >&2; }
warn() { printf '[%s] WARNING: %s\n' "${LOG_TAG:-servers}" "$*" >&2; }
# die MESSAGE [HINT]: print the error and what to do next, then exit 1.
die() {
  printf '[%s] ERROR: %s\n' "${LOG_TAG:-servers}" "$1" >&2
  [[ -n "${2:-}" ]] && printf '[%s]   -> %s\n' "${LOG_TAG:-servers}" "$2" >&2
  exit 1
}

# ensure_state_dir: create $STATE_DIR (world-traversable so the postgres user
# can reach its subdir) and keep it out of git without touching .gitignore.
ensure_state_dir() {
  mkdir -p "$STATE_DIR" || die "cannot create state dir $STATE_DIR" "set FS_STATE_DIR to a writable directory"
  chmod 755 "$STATE_DIR"
  [[ -f "$STATE_DIR/.gitignore" ]] || printf '*\n' >"$STATE_DIR/.gitignore"
}

# ensure_cmd CMD APT_PACKAGE: install the Debian package if CMD is missing.
ensure_cmd() {
  command -v "$1" >/dev/null 2>&1 && return 0
  [[ $EUID -eq 0 ]] || die "'$1' not found" "install it: sudo apt-get install -y $2"
  log "'$1' not found; installing Debian package $2 (apt-get update && apt-get install -y $2) ..."
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2"; } >&2; then
    die "apt-get install $2 failed" "check apt sources/network, then run: apt-get install -y $2"
  fi
}

# port_open HOST PORT: true if something accepts TCP connections there.
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# wait_port_free HOST PORT TIMEOUT_SECONDS: e.g. a just-killed server still releasing its socket.
wait_port_free() {
  local deadline=$((SECONDS + $3))
  while port_open "$1" "$2"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# wait_for_port HOST PORT TIMEOUT_SECONDS
wait_for_port() {
  local host=$1 port=$2 timeout=$3 deadline=$((SECONDS + $3))
  until port_open "$host" "$port"; do
    ((SECONDS < deadline)) || { warn "$host:$port not open after ${timeout}s"; return 1; }
    sleep 0.2
  done
}

# pid_alive PID: process exists and is not a zombie (also true while SIGSTOPped).
pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null && ! grep -qs '^State:[[:space:]]*Z' "/proc/$1/status"; }

# log_tail FILE [N]: show the last N lines of a log on stderr.
log_tail() {
  [[ -f "$1" ]] || { warn "no log file at $1"; return 0; }
  printf '[%s] ---- last %s lines of %s ----\n' "${LOG_TAG:-servers}" "${2:-40}" "$1" >&2
  tail -n "${2:-40}" "$1" >&2
  printf '[%s] ---- end of log ----\n' "${LOG_TAG:-servers}" >&2
}
