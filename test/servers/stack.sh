#!/usr/bin/env bash
# The whole platform on one machine (what `make up` / `make down` run):
#   up:   real Postgres + Kafka (up.sh), register examples/*.yaml (a stand-in for the operator),
#         start serving (:8080), ingest (:8081) and one consumer per FeatureGroup as local
#         processes, send sample events through ingest and print a served response.
#   down: stop those processes, then the servers.
# Logs: .local/stack/*.log. Env: SERVING_PORT, INGEST_PORT, SAMPLE_EVENTS (default 2000).
set -euo pipefail
LOG_TAG=stack
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUN_DIR="$STATE_DIR/stack"
SERVING_PORT="${SERVING_PORT:-8080}"
INGEST_PORT="${INGEST_PORT:-8081}"

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

  log "registering examples/*.yaml (tables and registry rows)"
  local groups
  groups=$(node "$REPO/dist/examples/register.js" "$REPO"/examples/*.yaml | tee /dev/stderr | sed -n 's/^registered \([^ ]*\) .*/\1/p')

  start serving "$SERVING_PORT" dist/services/serving/main.js
  start ingest "$INGEST_PORT" dist/services/ingest/main.js
  local port=8090 group
  for group in $groups; do
    start "consumer-${group//\//-}" "$port" dist/services/consumer/main.js FEATURE_GROUP="$group" CONSUMER_MAX_WAIT_MS=50
    port=$((port + 1))
  done
  wait_ready serving "$SERVING_PORT"
  wait_ready ingest "$INGEST_PORT"
  port=8090
  for group in $groups; do wait_ready "consumer-${group//\//-}" "$port"; port=$((port + 1)); done

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
  serving  http://127.0.0.1:$SERVING_PORT   (GET /features/{id}, POST /get-online-features, /openapi.json)
  ingest   http://127.0.0.1:$INGEST_PORT   (POST /v1/events)
  postgres $DATABASE_URL
  kafka    $KAFKA_BROKERS
  logs     $RUN_DIR/*.log

curl http://127.0.0.1:$SERVING_PORT/features/user_123
$answer

More events: npm run produce -- --rate 1000 --count 10000     Stop everything: make down
MSG
}

down() {
  local pidfile
  for pidfile in "$RUN_DIR"/*.pid; do
    [[ -e "$pidfile" ]] || continue
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  done
  bash "$SERVERS_DIR/down.sh"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) die "usage: stack.sh up|down" ;;
esac
