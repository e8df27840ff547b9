#!/usr/bin/env bash
# Start local Postgres, Kafka and kube-apiserver+etcd, and write $STATE_DIR/servers.env (also
# printed on stdout):
#   DATABASE_URL=...
#   KAFKA_BROKERS=...
#   KUBECONFIG=...
# If DATABASE_URL (or KAFKA_BROKERS, KUBECONFIG) is already exported, that server is not started and the
# given value is written instead -- unless it equals the local server's own value (e.g. after
# sourcing an old servers.env), in which case the local server is started as usual.
# Load the file with: set -a; . .local/servers.env; set +a
# Env: see postgres.sh and kafka.sh (FS_STATE_DIR, FS_PG_PORT, FS_KAFKA_PORT, ...).
set -euo pipefail
LOG_TAG=up
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

t0=$SECONDS
ensure_state_dir
local_db="$("$SERVERS_DIR/postgres.sh" env)"; local_db="${local_db#DATABASE_URL=}"
local_kafka="$("$SERVERS_DIR/kafka.sh" env)"; local_kafka="${local_kafka#KAFKA_BROKERS=}"
local_kube="$("$SERVERS_DIR/kube.sh" env)"; local_kube="${local_kube#KUBECONFIG=}"
if [[ -n "${DATABASE_URL:-}" && "$DATABASE_URL" != "$local_db" ]]; then
  log "DATABASE_URL is set by the caller; not starting local Postgres"
  db_url="$DATABASE_URL"
else
  "$SERVERS_DIR/postgres.sh" start
  db_url="$local_db"
fi
if [[ -n "${KAFKA_BROKERS:-}" && "$KAFKA_BROKERS" != "$local_kafka" ]]; then
  log "KAFKA_BROKERS is set by the caller; not starting local Kafka"
  brokers="$KAFKA_BROKERS"
else
  "$SERVERS_DIR/kafka.sh" start || die "Kafka failed to start (Postgres is left running)" \
    "see the Kafka log above; run test/servers/down.sh to stop everything"
  brokers="$local_kafka"
fi
if [[ -n "${KUBECONFIG:-}" && "$KUBECONFIG" != "$local_kube" ]]; then
  log "KUBECONFIG is set by the caller; not starting the local kube-apiserver"
  kubeconfig="$KUBECONFIG"
else
  "$SERVERS_DIR/kube.sh" start || die "kube-apiserver failed to start (Postgres and Kafka are left running)" \
    "see the kube messages above; run test/servers/down.sh to stop everything"
  kubeconfig="$local_kube"
fi
printf 'DATABASE_URL=%s\nKAFKA_BROKERS=%s\nKUBECONFIG=%s\n' "$db_url" "$brokers" "$kubeconfig" >"$STATE_DIR/servers.env.tmp"
mv -f "$STATE_DIR/servers.env.tmp" "$STATE_DIR/servers.env"
log "all up in $((SECONDS - t0))s; wrote $STATE_DIR/servers.env"
cat "$STATE_DIR/servers.env"
