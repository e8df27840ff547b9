# shellcheck shell=bash
# Building servers and tools once from the Go module proxy into $CACHE_DIR/<tool>-<version>/bin.
# Source it after lib.sh; do not execute it.

need_go() {
  command -v go >/dev/null 2>&1 && return 0
  die "'go' not found; it is needed once, to compile the servers and tools in test/servers from the Go module proxy" \
    "install Go >= 1.21 (https://go.dev/dl; older-than-required Go fetches the right toolchain itself), then: $0 build"
}

# go_build LABEL MODDIR LOGFILE PACKAGE OUTPUT LDFLAGS: nice'd `go build -v` in MODDIR with a
# progress line every 30s ("N of ~M packages compiled"; packages already in GOCACHE don't count).
go_build() {
  local label=$1 dir=$2 logf=$3 pkg=$4 out=$5 ldflags=$6 total
  total="$(cd "$dir" && go list -deps "$pkg" 2>/dev/null | wc -l)" || total='?'
  local t0=$SECONDS
  (cd "$dir" && exec nice -n 19 go build -v -ldflags "$ldflags" -o "$out" "$pkg") >"$logf" 2>&1 &
  local pid=$! next=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= next)); then
      log "  ... $label: $(grep -cv '^go: ' "$logf" || true) of ~$total packages compiled, $((SECONDS - t0))s elapsed"
      next=$((SECONDS + 30))
    fi
    sleep 1
  done
  if ! wait "$pid"; then
    log_tail "$logf" 30
    die "building $label failed (full log: $logf)" \
      "check the error above; module download problems: GOPROXY=$(go env GOPROXY), try 'cd $dir && go mod download'; then: $0 build"
  fi
  log "  $label built in $((SECONDS - t0))s"
}

# with_build_lock NAME CMD...: one build per version at a time (parallel test runners).
with_build_lock() {
  local name=$1; shift
  mkdir -p "$CACHE_DIR"
  (
    exec 9>"$CACHE_DIR/.$name.lock"
    flock -n 9 || { log "another process is building $name; waiting for it ..."; flock 9; }
    "$@"
  )
}

# finish_dist TMP DIST SECONDS: mark the temp build dir complete and move it into place.
finish_dist() {
  local tmp=$1 dist=$2 secs=$3
  printf 'built %s in %ss with %s (GOPROXY=%s)\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$secs" "$(go version)" "$(go env GOPROXY)" \
    >"$tmp/.complete"
  rm -rf "$dist" # an incomplete leftover, if any
  mv -T "$tmp" "$dist" || die "could not move $tmp to $dist" "check permissions of $CACHE_DIR"
}


# build_go_dist DIST WHAT MODDIR NAME=PACKAGE...: unless DIST is complete, compile each PACKAGE of
# the module in MODDIR (static, stripped) into DIST/bin/NAME, then move it into place. WHAT names
# the build in the progress line. Run it under with_build_lock.
build_go_dist() {
  local dist=$1 what=$2 dir=$3 spec name logf tmp t0=$SECONDS
  shift 3
  [[ -f "$dist/.complete" ]] && return 0
  need_go
  tmp="$(mktemp -d "$CACHE_DIR/.$(basename "$dist").XXXXXX")"
  # shellcheck disable=SC2064 # expand $tmp now
  trap "rm -rf '$tmp'" EXIT
  log "building $what from the Go module proxy into $dist/bin"
  export CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false -trimpath"
  mkdir -p "$tmp/bin"
  for spec in "$@"; do
    name="${spec%%=*}"
    logf="$CACHE_DIR/build-$name-$(basename "$dist").log"
    go_build "$name" "$dir" "$logf" "${spec#*=}" "$tmp/bin/$name" "-s -w"
    rm -f "$logf"
  done
  finish_dist "$tmp" "$dist" $((SECONDS - t0))
  trap - EXIT
}
