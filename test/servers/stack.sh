#!/usr/bin/env bash
# The whole platform on one machine (what `make up` / `make down` run):
#   up:   real Postgres, Kafka and kube-apiserver+etcd (up.sh); the FeatureGroup CRD; the operator
#         (:8082), the local runner (runs each consumer Deployment as a local process, :8090+),
#         serving (:8080) and ingest (:8081); `kubectl apply -f examples/`; waits for every
#         FeatureGroup to be Ready; sends sample events through ingest and prints a served
#         response. Then it stays in the foreground: Ctrl-C stops everything (DETACH=1 returns
#         instead, and `make down` stops it later).
#   down: stop those processes, then the servers.
# Logs: .local/stack/*.log. Env: SERVING_PORT, INGEST_PORT, OPERATOR_PORT, SAMPLE_EVENTS (2000), DETACH.
set -euo pipefail
LOG_TAG=stack
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUN_DIR="$STATE_DIR/stack"
SERVING_PORT="${SERVING_PORT:-8080}"
INGEST_PORT="${INGEST_PORT:-8081}"
OPERATOR_PORT="${OPERATOR_PORT:-8082}"
RUNNER_PORT="${RUNNER_PORT:-8089}"

# start NAME PORT ENTRY [VAR=VALUE...]: one component as a background process with a pidfile.
start() {
  local name=$1 port=$2 entry=$3; shift 3
  if port_open 127.0.0.1 "$port"; then
    die "port $port (for $name) is already in use" "run 'make down', or set ${name^^}_PORT to a free port"
  fi
  env "$@" PORT="$port" nohup node "$REPO/$entry" >>"$RUN_DIR/$name.log" 2>&1 &
  echo $! >"$RUN_DIR/$name.pid"
}

wait_ready() {
  local name=$1 port=$2 deadline=$((SECONDS + 60))
  until curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do
    if ! kill -0 "$(cat "$RUN_DIR/$name.pid")" 2>/dev/null; then
      tail -n 20 "$RUN_DIR/$name.log" >&2
      die "$name exited during start-up" "see $RUN_DIR/$name.log"
    fi
    ((SECONDS < deadline)) || die "$name not ready after 60s" "see $RUN_DIR/$name.log"
    sleep 0.3
  done
  log "$name ready on :$port"
}

up() {
  [[ -f "$REPO/dist/services/serving/main.js" ]] || die "dist/ is missing" "run 'make up' (it builds first) or 'npm run build'"
  mkdir -p "$RUN_DIR"
  bash "$SERVERS_DIR/up.sh" >/dev/null
  set -a; source "$STATE_DIR/servers.env"; set +a

  local kubectl
  kubectl="$(bash "$SERVERS_DIR/kube.sh" kubectl-path)"
  kubectl=("$kubectl" --kubeconfig "$KUBECONFIG")

  log "installing the FeatureGroup CRD (crds/featuregroup.yaml)"
  "${kubectl[@]}" apply --server-side --force-conflicts --field-manager featurestore-stack -f "$REPO/crds/featuregroup.yaml" >/dev/null
  "${kubectl[@]}" wait --for=condition=Established --timeout=60s crd/featuregroups.featurestore.dev >/dev/null

  start operator "$OPERATOR_PORT" dist/operator/main.js POD_NAME=operator-local
  start local-runner "$RUNNER_PORT" dist/services/local-runner/main.js RUNNER_BASE_PORT=8090
  start serving "$SERVING_PORT" dist/services/serving/main.js
  start ingest "$INGEST_PORT" dist/services/ingest/main.js
  wait_ready operator "$OPERATOR_PORT"
  wait_ready local-runner "$RUNNER_PORT"
  wait_ready serving "$SERVING_PORT"
  wait_ready ingest "$INGEST_PORT"

  # The top-level manifests only (examples/dev/ holds in-cluster Kafka/Postgres for skaffold).
  local manifests=() file
  for file in "$REPO"/examples/*.yaml; do manifests+=(-f "$file"); done
  log "kubectl apply -f examples/*.yaml"
  "${kubectl[@]}" apply "${manifests[@]}" >&2
  log "waiting for every FeatureGroup to be Ready (operator: tables, grants, consumer Deployment; runner: consumers)"
  "${kubectl[@]}" wait --for=condition=Ready --timeout=120s "${manifests[@]}" >/dev/null \
    || die "FeatureGroups did not become Ready within 120s" "see kubectl describe fg -A, $RUN_DIR/operator.log and $RUN_DIR/local-runner.log"
  "${kubectl[@]}" get "${manifests[@]}" >&2

  log "sending ${SAMPLE_EVENTS:-2000} sample events through ingest, then the seed's own event for user_123"
  node "$REPO/dist/examples/producer.js" --url "http://127.0.0.1:$INGEST_PORT" --count "${SAMPLE_EVENTS:-2000}" --rate 5000 --users 100 >&2
  curl -fsS -H 'content-type: application/json' "http://127.0.0.1:$INGEST_PORT/v1/events" \
    -d "{\"entity_id\":\"user_123\",\"action\":\"click\",\"timestamp\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"}" >/dev/null
  local deadline=$((SECONDS + 30)) answer=''
  until answer=$(curl -fsS "http://127.0.0.1:$SERVING_PORT/features/user_123" 2>/dev/null); do
    ((SECONDS < deadline)) || die "user_123 was not served within 30s" "see $RUN_DIR/*.log"
    sleep 0.2
  done
  cat <<MSG

The platform is up:
  serving    http://127.0.0.1:$SERVING_PORT   (GET /features/{id}, POST /get-online-features, /openapi.json)
  ingest     http://127.0.0.1:$INGEST_PORT   (POST /v1/events)
  operator   http://127.0.0.1:$OPERATOR_PORT   (/metrics, /leader)
  kubeconfig $KUBECONFIG   (kubectl: ${kubectl[0]})
  postgres   $DATABASE_URL
  kafka      $KAFKA_BROKERS
  logs       $RUN_DIR/*.log

curl http://127.0.0.1:$SERVING_PORT/features/user_123
$answer

More events:  npm run produce -- --rate 1000 --count 10000
FeatureGroups: KUBECONFIG=$KUBECONFIG ${kubectl[0]} get fg -A
MSG
  if [[ -n "${DETACH:-}" ]]; then
    log "left running (DETACH set); stop everything with: make down"
    return 0
  fi
  log "running in the foreground; Ctrl-C stops everything"
  trap 'echo >&2; log "stopping"; down; exit 0' INT TERM
  while true; do sleep 3600 & wait $!; done
}

# Consumers (children of the local runner) drain on SIGTERM, so wait for every process to exit
# before stopping Kafka and Postgres under them.
down() {
  local pidfile pids=()
  for pidfile in "$RUN_DIR"/*.pid; do
    [[ -e "$pidfile" ]] || continue
    pids+=("$(cat "$pidfile")")
    rm -f "$pidfile"
  done
  ((${#pids[@]} == 0)) || kill "${pids[@]}" 2>/dev/null || true
  local pid deadline=$((SECONDS + 30))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  done
  bash "$SERVERS_DIR/down.sh"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) die "usage: stack.sh up|down" ;;
esac
