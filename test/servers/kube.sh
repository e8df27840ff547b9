#!/usr/bin/env bash
# A real Kubernetes API server for operator tests (like controller-runtime's envtest):
# etcd + kube-apiserver on 127.0.0.1, no kubelet/scheduler/controller-manager, so objects are
# stored and validated (CRDs, status subresources, RBAC, admission, watches) but no pods run.
# Both are compiled once from the Go module proxy (test/servers/kube/go.mod, .../kube/etcd/go.mod)
# into $CACHE_DIR/kube-<version>/bin and $CACHE_DIR/etcd-<version>/bin.
#
# Usage: kube.sh {build|start|stop|restart|status|pid [etcd|apiserver]|env|kubeconfig|kubectl [ARGS...]|kubectl-path|audit-log}
#   build       compile kube-apiserver + kubectl and etcd once (first time ~5-20 min on 2 cores)
#   start       build if needed, make certs/token once, start etcd then kube-apiserver, wait for
#               /readyz, write $STATE_DIR/kubeconfig (idempotent; starts only what is not running)
#   stop        stop kube-apiserver (SIGTERM, 5s, SIGKILL), then etcd (SIGTERM, 30s, SIGKILL); idempotent
#   restart     stop + start (same data)
#               (start/stop/restart are serialized per state dir with a lock file, and find their
#               servers even if a pidfile got lost, so concurrent test runners are safe)
#   status      exit 0 if both run (also reports /readyz), 3 if not
#   pid         print the pid of kube-apiserver (default) or etcd, e.g. for kill -STOP fault tests
#   env         print KUBECONFIG=...
#   kubeconfig  print the kubeconfig (server, CA data, admin token) on stdout
#   kubectl     run the built kubectl against this server, e.g. `kubectl get ns`
#   kubectl-path  print the path of the built kubectl (for callers with their own KUBECONFIG)
#   audit-log   print the path of the API server's audit log (JSON lines, Metadata level)
# Env: FS_KUBE_PORT (26443), FS_ETCD_PORT (22379), FS_ETCD_PEER_PORT (22380),
#      FS_KUBE_START_TIMEOUT (90), FS_ETCD_FSYNC (0: etcd runs with --unsafe-no-fsync, which only
#      loses data if the machine itself crashes), FS_KUBE_APISERVER_ARGS / FS_ETCD_ARGS (extra flags),
#      FS_STATE_DIR, FS_CACHE_DIR; for the build: GOPATH/GOMODCACHE/GOCACHE (Go's defaults), GOPROXY.
set -euo pipefail
LOG_TAG=kube
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=lib-go.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib-go.sh"

MOD_DIR="$SERVERS_DIR/kube"
ETCD_MOD_DIR="$MOD_DIR/etcd"
# Versions come from the wrapper modules' go.mod files (the single source of truth).
mod_version() { awk -v m="$2" '$1 == m && $2 ~ /^v[0-9]/ { print $2; exit }' "$1/go.mod"; }
KUBE_VERSION="$(mod_version "$MOD_DIR" k8s.io/kubernetes)"
ETCD_VERSION="$(mod_version "$ETCD_MOD_DIR" go.etcd.io/etcd/server/v3)"
[[ -n "$KUBE_VERSION" && -n "$ETCD_VERSION" ]] \
  || die "cannot read the k8s.io/kubernetes / go.etcd.io/etcd/server/v3 versions from $MOD_DIR/go.mod, $ETCD_MOD_DIR/go.mod" \
    "restore them: git checkout -- test/servers/kube"
KUBE_DIST="$CACHE_DIR/kube-$KUBE_VERSION"
ETCD_DIST="$CACHE_DIR/etcd-$ETCD_VERSION"
APISERVER_BIN="$KUBE_DIST/bin/kube-apiserver"
KUBECTL_BIN="$KUBE_DIST/bin/kubectl"
ETCD_BIN="$ETCD_DIST/bin/etcd"

KUBE_PORT="${FS_KUBE_PORT:-26443}"
ETCD_PORT="${FS_ETCD_PORT:-22379}"
ETCD_PEER_PORT="${FS_ETCD_PEER_PORT:-22380}"
START_TIMEOUT="${FS_KUBE_START_TIMEOUT:-90}"
K_DIR="$STATE_DIR/kube"
PKI="$K_DIR/pki"
ETCD_DATA="$K_DIR/etcd"
ETCD_LOG="$K_DIR/etcd.log"
ETCD_PID="$K_DIR/etcd.pid"
API_LOG="$K_DIR/kube-apiserver.log"
API_PID="$K_DIR/kube-apiserver.pid"
TOKEN_FILE="$K_DIR/tokens.csv"
AUDIT_POLICY="$K_DIR/audit-policy.yaml"
AUDIT_LOG="$K_DIR/audit.log"
KUBECONFIG_PATH="$STATE_DIR/kubeconfig"
SERVER_URL="https://127.0.0.1:$KUBE_PORT"
ETCD_URL="http://127.0.0.1:$ETCD_PORT"

# ---------------------------------------------------------------------------------------------
# build

build_kube_locked() {
  [[ -f "$KUBE_DIST/.complete" ]] && return 0
  need_go
  local tmp t0=$SECONDS minor date ldflags=() pkg
  tmp="$(mktemp -d "$CACHE_DIR/.kube-$KUBE_VERSION.XXXXXX")"
  # shellcheck disable=SC2064 # expand $tmp now
  trap "rm -rf '$tmp'" EXIT
  minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
  date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  # What hack/lib/version.sh stamps, so `kubectl version` and /version report the real release.
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=("-X $pkg.gitVersion=$KUBE_VERSION" "-X $pkg.gitMajor=1" "-X $pkg.gitMinor=$minor"
      "-X $pkg.gitTreeState=clean" "-X $pkg.buildDate=$date")
  done
  log "building Kubernetes $KUBE_VERSION (kube-apiserver, kubectl) from the Go module proxy into $KUBE_DIST/bin"
  log "  the FIRST build takes ~5-20 min on 2 cores (nice -n 19; ~1 GB of modules in $(go env GOMODCACHE), a few GB of $(go env GOCACHE)); it is done once per version"
  export CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false -trimpath"
  mkdir -p "$tmp/bin"
  go_build kube-apiserver "$MOD_DIR" "$CACHE_DIR/build-kube-apiserver-$KUBE_VERSION.log" k8s.io/kubernetes/cmd/kube-apiserver \
    "$tmp/bin/kube-apiserver" "-s -w ${ldflags[*]}"
  go_build kubectl "$MOD_DIR" "$CACHE_DIR/build-kubectl-$KUBE_VERSION.log" k8s.io/kubernetes/cmd/kubectl \
    "$tmp/bin/kubectl" "-s -w ${ldflags[*]}"
  "$tmp/bin/kube-apiserver" --version >&2 || die "the built kube-apiserver does not run" "see $CACHE_DIR/build-kube-apiserver-$KUBE_VERSION.log"
  rm -f "$CACHE_DIR/build-kube-apiserver-$KUBE_VERSION.log" "$CACHE_DIR/build-kubectl-$KUBE_VERSION.log"
  finish_dist "$tmp" "$KUBE_DIST" $((SECONDS - t0))
  trap - EXIT
  log "Kubernetes $KUBE_VERSION ready in $KUBE_DIST/bin ($(du -sh "$KUBE_DIST" | cut -f1), built in $((SECONDS - t0))s)"
}

build_etcd_locked() {
  [[ -f "$ETCD_DIST/.complete" ]] && return 0
  need_go
  local tmp t0=$SECONDS
  tmp="$(mktemp -d "$CACHE_DIR/.etcd-$ETCD_VERSION.XXXXXX")"
  # shellcheck disable=SC2064 # expand $tmp now
  trap "rm -rf '$tmp'" EXIT
  log "building etcd $ETCD_VERSION from the Go module proxy into $ETCD_DIST/bin (first time 1-5 min)"
  export CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false -trimpath"
  mkdir -p "$tmp/bin"
  go_build etcd "$ETCD_MOD_DIR" "$CACHE_DIR/build-etcd-$ETCD_VERSION.log" go.etcd.io/etcd/server/v3 "$tmp/bin/etcd" "-s -w"
  "$tmp/bin/etcd" --version >&2 || die "the built etcd does not run" "see $CACHE_DIR/build-etcd-$ETCD_VERSION.log"
  rm -f "$CACHE_DIR/build-etcd-$ETCD_VERSION.log"
  finish_dist "$tmp" "$ETCD_DIST" $((SECONDS - t0))
  trap - EXIT
  log "etcd $ETCD_VERSION ready in $ETCD_DIST/bin ($(du -sh "$ETCD_DIST" | cut -f1), built in $((SECONDS - t0))s)"
}

cmd_build() {
  if [[ -f "$KUBE_DIST/.complete" && -f "$ETCD_DIST/.complete" ]]; then
    [[ "${1:-}" == quiet ]] || log "already built: $KUBE_DIST/bin (Kubernetes $KUBE_VERSION), $ETCD_DIST/bin (etcd $ETCD_VERSION)"
    return 0
  fi
  local t0=$SECONDS
  with_build_lock "etcd-$ETCD_VERSION" build_etcd_locked
  with_build_lock "kube-$KUBE_VERSION" build_kube_locked
  log "build done in $((SECONDS - t0))s"
}

# ---------------------------------------------------------------------------------------------
# certificates, token, kubeconfig

# ensure_pki: a CA, a serving cert for 127.0.0.1/localhost (and the in-cluster names), a
# service-account signing key pair. Made once and kept, so kubeconfigs stay valid across restarts.
ensure_pki() {
  ensure_cmd openssl openssl
  mkdir -p "$PKI"
  chmod 700 "$PKI"
  if [[ ! -s "$PKI/ca.key" || ! -s "$PKI/ca.crt" ]] || ! openssl x509 -checkend 86400 -noout -in "$PKI/ca.crt" >/dev/null 2>&1; then
    log "generating a test CA in $PKI"
    rm -f "$PKI/apiserver.crt"
    cat >"$PKI/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = feature-store-test-ca
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
authorityKeyIdentifier = keyid
subjectAltName = IP:127.0.0.1, DNS:localhost, IP:10.0.0.1, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local
EOF
    openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 3650 -config "$PKI/openssl.cnf" -extensions ca \
      -keyout "$PKI/ca.key" -out "$PKI/ca.crt" 2>"$PKI/openssl.log" \
      || { log_tail "$PKI/openssl.log"; die "openssl could not create the CA" "fix the cause above, then: rm -rf '$PKI' && $0 start"; }
  fi
  if [[ ! -s "$PKI/apiserver.key" || ! -s "$PKI/apiserver.crt" ]] \
      || ! openssl x509 -checkend 86400 -noout -in "$PKI/apiserver.crt" >/dev/null 2>&1; then
    log "generating the kube-apiserver serving certificate (127.0.0.1, localhost)"
    if ! { openssl req -new -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
          -keyout "$PKI/apiserver.key" -out "$PKI/apiserver.csr" 2>"$PKI/openssl.log" \
        && openssl x509 -req -sha256 -days 825 -in "$PKI/apiserver.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
          -set_serial "0x$(openssl rand -hex 12)" -extfile "$PKI/openssl.cnf" -extensions server \
          -out "$PKI/apiserver.crt" 2>>"$PKI/openssl.log"; }; then
      log_tail "$PKI/openssl.log"
      die "openssl could not create the serving certificate" "fix the cause above, then: rm -rf '$PKI' && $0 start"
    fi
    rm -f "$PKI/apiserver.csr"
  fi
  if [[ ! -s "$PKI/sa.key" || ! -s "$PKI/sa.pub" ]]; then
    log "generating the service-account signing key pair"
    if ! { openssl genrsa -out "$PKI/sa.key" 2048 2>"$PKI/openssl.log" \
        && openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>>"$PKI/openssl.log"; }; then
      log_tail "$PKI/openssl.log"
      die "openssl could not create the service-account keys" "fix the cause above, then: rm -rf '$PKI' && $0 start"
    fi
  fi
  chmod 600 "$PKI"/*.key
}

# ensure_token: a random admin bearer token in group system:masters (bound to cluster-admin).
ensure_token() {
  if [[ ! -s "$TOKEN_FILE" ]]; then
    mkdir -p "$K_DIR"
    (umask 077 && printf '%s,admin,admin,"system:masters"\n' "$(openssl rand -hex 24)" >"$TOKEN_FILE")
  fi
}
admin_token() { cut -d, -f1 "$TOKEN_FILE"; }

render_kubeconfig() {
  cat <<EOF
# Generated by test/servers/kube.sh: local kube-apiserver for tests (admin = system:masters).
apiVersion: v1
kind: Config
clusters:
- name: feature-store-test
  cluster:
    server: $SERVER_URL
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: feature-store-test-admin
  user:
    token: $(admin_token)
contexts:
- name: feature-store-test
  context:
    cluster: feature-store-test
    user: feature-store-test-admin
    namespace: default
current-context: feature-store-test
preferences: {}
EOF
}

write_kubeconfig() {
  local tmp="$KUBECONFIG_PATH.tmp.$$"
  (umask 077 && render_kubeconfig >"$tmp") && mv -f "$tmp" "$KUBECONFIG_PATH"
}

# ---------------------------------------------------------------------------------------------
# processes

read_pid() { [[ -f "$1" ]] && cat "$1"; }
# drop_pidfile FILE PID: remove FILE only if it still names PID.
drop_pidfile() { [[ "$(read_pid "$1" 2>/dev/null)" != "$2" ]] || rm -f "$1"; }

# cmdline_is PID BINARY MARKER: argv[0] is BINARY and one argument is exactly MARKER.
cmdline_is() {
  local args
  args="$({ tr '\0' '\n' <"/proc/$1/cmdline"; } 2>/dev/null)" || return 1
  [[ "${args%%$'\n'*}" == "$2" ]] && grep -qxF -- "$3" <<<"$args"
}

# proc_running PIDFILE BINARY MARKER: the process of this state dir is alive (also when SIGSTOPped).
# MARKER (an argument naming this state dir) tells it apart from a reused pid or another state
# dir's server. Without a valid pidfile (lost, e.g. by a crashed script), a matching live process
# is adopted, so that `stop` can still stop it and `start` does not start a second one.
proc_running() {
  local pid
  if pid="$(read_pid "$1")" && pid_alive "$pid" && cmdline_is "$pid" "$2" "$3"; then return 0; fi
  while IFS=/ read -r _ _ pid _; do
    if pid_alive "$pid" && cmdline_is "$pid" "$2" "$3"; then
      [[ -d "$(dirname "$1")" ]] && echo "$pid" >"$1"
      return 0
    fi
  done < <(grep -laF -- "$3" /proc/[0-9]*/cmdline 2>/dev/null)
  return 1
}
ETCD_MARKER="--data-dir=$ETCD_DATA"
API_MARKER="--cert-dir=$PKI"
etcd_running() { proc_running "$ETCD_PID" "$ETCD_BIN" "$ETCD_MARKER"; }
apiserver_running() { proc_running "$API_PID" "$APISERVER_BIN" "$API_MARKER"; }

# lock_state: one start/stop/restart at a time per state dir (test runners and people share
# .local); held until this script exits, and not inherited by the servers (see launch).
lock_state() {
  ensure_state_dir
  mkdir -p "$K_DIR"
  exec 8>"$K_DIR/.lock"
  flock -n 8 || { log "another kube.sh start/stop is running for $K_DIR; waiting for it ..."; flock 8; }
}

etcd_healthy() { curl -fsS -m 2 "$ETCD_URL/health" 2>/dev/null | grep -q '"health":"true"'; }
apiserver_ready() {
  [[ "$(curl -sS -m 3 --cacert "$PKI/ca.crt" -H "Authorization: Bearer $(admin_token)" "$SERVER_URL/readyz" 2>/dev/null)" == ok ]]
}

# launch PIDFILE LOGFILE CMD...: detached (setsid), stdio redirected so callers don't hang on pipes.
launch() {
  local pidfile=$1 logf=$2; shift 2
  [[ -f "$logf" ]] && mv -f "$logf" "$logf.1"
  setsid nohup "$@" </dev/null >"$logf" 2>&1 8>&- &
  echo $! >"$pidfile"
}

check_port_free() {
  wait_port_free 127.0.0.1 "$1" 10 || die "port $1 (for $2) is already in use by another process" \
    "stop it (ss -ltnp 'sport = :$1') or set $3 to a free port"
}

start_etcd() {
  mkdir -p "$ETCD_DATA"
  chmod 700 "$ETCD_DATA"
  local fsync=(--unsafe-no-fsync=true)
  [[ "${FS_ETCD_FSYNC:-0}" == 1 ]] && fsync=()
  log "starting etcd $ETCD_VERSION on $ETCD_URL (peer :$ETCD_PEER_PORT, data $ETCD_DATA, log $ETCD_LOG)"
  # shellcheck disable=SC2086 # FS_ETCD_ARGS is a word list
  launch "$ETCD_PID" "$ETCD_LOG" "$ETCD_BIN" \
    --name=feature-store-test --data-dir="$ETCD_DATA" \
    --listen-client-urls="$ETCD_URL" --advertise-client-urls="$ETCD_URL" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="feature-store-test=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state=new \
    --initial-cluster-token=feature-store-test "${fsync[@]}" ${FS_ETCD_ARGS:-}
  # (--data-dir is also ETCD_MARKER, by which proc_running recognizes this server.)
  local pid deadline=$((SECONDS + 30))
  pid="$(read_pid "$ETCD_PID")"
  until etcd_healthy; do
    if ! pid_alive "$pid"; then
      drop_pidfile "$ETCD_PID" "$pid"; log_tail "$ETCD_LOG"
      die "etcd exited during startup" "read the log above ($ETCD_LOG); if the data is corrupt or from another etcd version: rm -rf '$ETCD_DATA' && $0 start"
    fi
    ((SECONDS < deadline)) || { log_tail "$ETCD_LOG"; die "etcd not healthy after 30s (pid $pid still running)" "read $ETCD_LOG; '$0 stop' then retry"; }
    sleep 0.2
  done
  log "etcd healthy (pid $pid)"
}

start_apiserver() {
  log "starting kube-apiserver $KUBE_VERSION on $SERVER_URL (log $API_LOG)"
  # Flags follow envtest's defaults. Admission: OwnerReferencesPermissionEnforcement on, as on
  # clusters that check blockOwnerDeletion against the owner's finalizers (OpenShift); otherwise
  # everything default-on except ServiceAccount, which
  # rejects pods until kube-controller-manager (absent here) has created the namespace's
  # 'default' ServiceAccount. --endpoint-reconciler-type=none: the 'kubernetes' Service is still
  # created, but its Endpoints are not, because 127.0.0.1 is an invalid endpoint IP (the default
  # reconciler would log that error every 10s).
  # Audit log: every request's user, verb and resource (Metadata level), so tests can check that
  # the chart's RBAC grants exactly the verbs the operator uses.
  printf '%s\n' 'apiVersion: audit.k8s.io/v1' 'kind: Policy' 'omitStages: [RequestReceived]' \
    'rules:' '  - level: None' '    nonResourceURLs: ["/healthz*", "/readyz*", "/livez*", "/openapi*", "/version", "/api", "/apis"]' \
    '  - level: Metadata' >"$AUDIT_POLICY"
  # Without a node no pod runs: no service-account tokens, no endpoints. FS_KUBE_NODE=1 (a real
  # node joins, test/servers/node.sh) turns both on.
  local admission=(--disable-admission-plugins=ServiceAccount --enable-admission-plugins=OwnerReferencesPermissionEnforcement) reconciler=none
  if [[ "${FS_KUBE_NODE:-0}" == 1 ]]; then
    # The node by its address, never its name: no DNS lookup leaves the namespace.
    admission=(--enable-admission-plugins=ServiceAccount,OwnerReferencesPermissionEnforcement --kubelet-preferred-address-types=InternalIP)
    reconciler=lease
  fi
  # shellcheck disable=SC2086 # FS_KUBE_APISERVER_ARGS is a word list
  launch "$API_PID" "$API_LOG" "$APISERVER_BIN" \
    --advertise-address="${FS_KUBE_ADVERTISE_ADDRESS:-127.0.0.1}" --bind-address="${FS_KUBE_BIND_ADDRESS:-127.0.0.1}" --secure-port="$KUBE_PORT" \
    --etcd-servers="$ETCD_URL" \
    "$API_MARKER" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" --token-auth-file="$TOKEN_FILE" \
    --authorization-mode=RBAC \
    --service-account-issuer=https://kubernetes.default.svc \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 --allow-privileged=true \
    "${admission[@]}" --endpoint-reconciler-type="$reconciler" \
    --audit-policy-file="$AUDIT_POLICY" --audit-log-path="$AUDIT_LOG" --audit-log-format=json \
    --audit-log-maxsize=200 --audit-log-maxbackup=1 \
    ${FS_KUBE_APISERVER_ARGS:-}
}

# wait_apiserver_ready: until GET /readyz says ok (etcd reachable, RBAC bootstrapped, ...).
wait_apiserver_ready() {
  local pid t0=$SECONDS deadline=$((SECONDS + START_TIMEOUT))
  pid="$(read_pid "$API_PID")"
  until apiserver_ready; do
    if ! pid_alive "$pid"; then
      drop_pidfile "$API_PID" "$pid"; log_tail "$API_LOG"
      die "kube-apiserver exited during startup" "read the log above ($API_LOG); bad certs: rm -rf '$PKI'; bad data: rm -rf '$ETCD_DATA'; then: $0 start"
    fi
    if ((SECONDS >= deadline)); then
      log_tail "$API_LOG"
      curl -sS -m 3 --cacert "$PKI/ca.crt" -H "Authorization: Bearer $(admin_token)" "$SERVER_URL/readyz?verbose" 2>&1 | grep -v '\] ok$' >&2 || true
      die "kube-apiserver not ready after ${START_TIMEOUT}s (pid $pid still running)" \
        "read $API_LOG and the failing /readyz checks above; '$0 stop' then retry, or raise FS_KUBE_START_TIMEOUT"
    fi
    sleep 0.25
  done
  log "kube-apiserver ready (pid $pid) after $((SECONDS - t0))s"
}

cmd_start() {
  local t0=$SECONDS
  cmd_build quiet
  ensure_cmd curl curl
  ensure_state_dir
  mkdir -p "$K_DIR"
  ensure_pki
  ensure_token
  # Check every port first, so a conflict doesn't leave etcd running alone.
  local etcd_up=0 api_up=0
  etcd_running && etcd_up=1
  apiserver_running && api_up=1
  if ((!etcd_up)); then
    check_port_free "$ETCD_PORT" etcd FS_ETCD_PORT
    check_port_free "$ETCD_PEER_PORT" "etcd peers" FS_ETCD_PEER_PORT
  fi
  ((api_up)) || check_port_free "$KUBE_PORT" kube-apiserver FS_KUBE_PORT
  if ((etcd_up)); then
    log "etcd already running (pid $(read_pid "$ETCD_PID"), $ETCD_URL)"
  else
    start_etcd
  fi
  if ((api_up)); then
    log "kube-apiserver already running (pid $(read_pid "$API_PID"), $SERVER_URL)"
  else
    start_apiserver
  fi
  wait_apiserver_ready
  write_kubeconfig
  log "ready in $((SECONDS - t0))s: KUBECONFIG=$KUBECONFIG_PATH (server $SERVER_URL, Kubernetes $KUBE_VERSION, etcd $ETCD_VERSION)"
}

# stop_proc NAME PIDFILE BINARY MARKER PORT GRACE: SIGTERM, up to GRACE seconds, then SIGKILL; wait
# for the port.
stop_proc() {
  local name=$1 pidfile=$2 bin=$3 marker=$4 port=$5 grace=$6
  if ! proc_running "$pidfile" "$bin" "$marker"; then rm -f "$pidfile"; log "$name not running"; return 0; fi
  local pid deadline=$((SECONDS + grace))
  pid="$(read_pid "$pidfile")"
  kill -CONT "$pid" 2>/dev/null || true # in case a test left it SIGSTOPped
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
  if pid_alive "$pid"; then
    log "$name still running after ${grace}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while pid_alive "$pid"; do sleep 0.1; done
  fi
  wait_port_free 127.0.0.1 "$port" 10 || warn "port $port still open 10s after $name exited"
  drop_pidfile "$pidfile" "$pid"
}

cmd_stop() {
  # Resume both first: a SIGSTOPped etcd (fault tests) would stall the apiserver's shutdown.
  ! etcd_running || kill -CONT "$(read_pid "$ETCD_PID")" 2>/dev/null || true
  # With a watch open, kube-apiserver's graceful shutdown waits for it far longer than a test
  # restart should take; it keeps no state of its own (etcd does), so it gets 5s, then SIGKILL.
  stop_proc kube-apiserver "$API_PID" "$APISERVER_BIN" "$API_MARKER" "$KUBE_PORT" 5
  stop_proc etcd "$ETCD_PID" "$ETCD_BIN" "$ETCD_MARKER" "$ETCD_PORT" 30
  log "stopped"
}

cmd_status() {
  local rc=0
  if etcd_running; then
    log "etcd running (pid $(read_pid "$ETCD_PID"), $ETCD_URL, $(etcd_healthy && echo healthy || echo NOT healthy))"
  else
    log "etcd not running"; rc=3
  fi
  if apiserver_running; then
    log "kube-apiserver running (pid $(read_pid "$API_PID"), $SERVER_URL, /readyz $(apiserver_ready && echo ok || echo NOT ok))"
  else
    log "kube-apiserver not running"; rc=3
  fi
  return $rc
}

need_kubeconfig() {
  [[ -s "$TOKEN_FILE" && -s "$PKI/ca.crt" ]] || die "no certificates/token yet in $K_DIR" "start it: $0 start"
}

case "${1:-}" in
  build) cmd_build ;;
  start) lock_state; cmd_start ;;
  stop) lock_state; cmd_stop ;;
  restart) lock_state; cmd_stop; cmd_start ;;
  status) cmd_status ;;
  pid)
    case "${2:-apiserver}" in
      apiserver | kube-apiserver) apiserver_running || die "kube-apiserver not running" "start it: $0 start"; read_pid "$API_PID" ;;
      etcd) etcd_running || die "etcd not running" "start it: $0 start"; read_pid "$ETCD_PID" ;;
      *) die "usage: $0 pid [apiserver|etcd]" "pick one of the two" ;;
    esac ;;
  env) echo "KUBECONFIG=$KUBECONFIG_PATH" ;;
  audit-log) echo "$AUDIT_LOG" ;;
  kubectl-path) [[ -x "$KUBECTL_BIN" ]] || die "kubectl not built" "run: $0 build"; echo "$KUBECTL_BIN" ;;
  kubeconfig) need_kubeconfig; render_kubeconfig ;;
  kubectl)
    shift
    [[ -x "$KUBECTL_BIN" ]] || die "kubectl not built" "run: $0 build"
    need_kubeconfig
    [[ -f "$KUBECONFIG_PATH" ]] || write_kubeconfig
    exec "$KUBECTL_BIN" --kubeconfig "$KUBECONFIG_PATH" "$@" ;;
  *) die "usage: $0 {build|start|stop|restart|status|pid [etcd|apiserver]|env|kubeconfig|kubectl [ARGS...]|kubectl-path|audit-log}" "pick one of the subcommands above" ;;
esac
