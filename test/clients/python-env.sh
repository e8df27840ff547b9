#!/usr/bin/env bash
# The real clients' Python environment: Feast's SDK and schemathesis, every package pinned in
# test/clients/requirements.txt (a full `pip freeze`), installed once from PyPI into
# $CACHE_DIR/python-clients-<digest of requirements.txt>/ (about 30 s and 630 MB the first time).
#
# Usage: python-env.sh {build|path}
#   build  create the environment unless it is cached
#   path   build if needed, then print the environment's directory (bin/python, bin/feast, bin/st)
set -euo pipefail
LOG_TAG=clients
# shellcheck source=../servers/lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/../servers/lib.sh"

REQUIREMENTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/requirements.txt"
digest="$(sha256sum "$REQUIREMENTS" | cut -c1-12)"
ENV_DIR="$CACHE_DIR/python-clients-$digest"

build() {
  [[ -f "$ENV_DIR/.complete" ]] && return 0
  command -v python3 >/dev/null || die "python3 is not installed" "install Python 3.10+ (apt-get install python3 python3-venv)"
  python3 -c 'import venv' 2>/dev/null || die "python3 has no venv module" "apt-get install python3-venv"
  mkdir -p "$CACHE_DIR"
  exec 9>"$CACHE_DIR/.python-clients.lock"
  flock 9
  [[ -f "$ENV_DIR/.complete" ]] && return 0
  local t0=$SECONDS
  # Built where it will live (a venv's scripts name their interpreter by path); only a complete
  # build gets .complete, and an incomplete one is removed first.
  rm -rf "$ENV_DIR"
  log "building the Python clients (Feast SDK, schemathesis) from PyPI into $ENV_DIR (first time ~30 s)"
  python3 -m venv "$ENV_DIR" || die "python3 -m venv failed" "install python3-venv, then run make test again"
  "$ENV_DIR/bin/pip" install --quiet --disable-pip-version-check --no-deps --requirement "$REQUIREMENTS" ||
    die "pip could not install test/clients/requirements.txt" "check that PyPI is reachable (pip config list), then run make test again"
  "$ENV_DIR/bin/pip" check >/dev/null || die "the pinned packages do not fit together" "regenerate test/clients/requirements.txt with pip freeze"
  "$ENV_DIR/bin/python" -c 'import feast, schemathesis' || die "feast or schemathesis does not import" "remove $ENV_DIR and run make test again"
  touch "$ENV_DIR/.complete"
  log "Python clients ready in $((SECONDS - t0)) s: $ENV_DIR"
}

case "${1:-}" in
  build) build ;;
  path) build && echo "$ENV_DIR" ;;
  *) die "usage: python-env.sh {build|path}" "see the comment at the top of test/clients/python-env.sh" ;;
esac
