#!/usr/bin/env bash
# The whole platform on real pods: the test node (node.sh), the product image built with buildah
# (image.sh) and imported into it, and `helm upgrade --install` of charts/feature-store with
# test/servers/pods/values.yaml, against the node's own Postgres and Kafka. Needs root.
#
# Usage: pods.sh {up|demo|skaffold|down|status}
#   up      start the node (if it is not running), build and load the image, create the serving login
#           role and the Secret fs-postgres, install the chart and wait until every component is
#           Ready (warm: about 40 s; the first time also builds the node, ~10 min)
#   skaffold  the same through `skaffold run -p test-node` (skaffold.yaml): skaffold builds with
#           buildah (test/servers/skaffold-build.sh), pushes to the node's registry and installs the
#           chart; runs inside the node's network namespace. Extra arguments go to skaffold.
#   demo    up, then `kubectl apply -f examples/`, an event through the ingest Service and its
#           feature read back through the serving Service (what `make up MODE=pods` runs)
#   down    stop the node and remove everything it made (node.sh stop)
#   status  exit 0 when the release's Deployments are all available
# Env: FS_PODS_NAMESPACE (feature-store), FS_PODS_RELEASE (feature-store)
set -euo pipefail
LOG_TAG=pods
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NAMESPACE="${FS_PODS_NAMESPACE:-feature-store}"
RELEASE="${FS_PODS_RELEASE:-feature-store}"
NODE=(bash "$SERVERS_DIR/node.sh")
IMAGE=(bash "$SERVERS_DIR/image.sh")

node_env() { "${NODE[@]}" env | sed -n "s/^$1=//p"; }

# Serving logs in as a member of featurestore_serving, which the operator grants read access.
serving_role() {
  "${NODE[@]}" psql -q -v ON_ERROR_STOP=1 <<'SQL' >/dev/null
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'featurestore_serving') THEN CREATE ROLE featurestore_serving NOLOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'serving') THEN
    CREATE ROLE serving LOGIN PASSWORD 'serving' IN ROLE featurestore_serving;
  END IF;
END $$;
SQL
}

postgres_secret() {
  local admin serving
  admin="$(node_env DATABASE_URL)"
  serving="postgres://serving:serving@${admin#*@}"
  "${NODE[@]}" kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | "${NODE[@]}" kubectl apply -f - >/dev/null
  "${NODE[@]}" kubectl -n "$NAMESPACE" create secret generic fs-postgres --from-literal=DATABASE_URL="$admin" \
    --from-literal=SERVING_DATABASE_URL="$serving" --dry-run=client -o yaml | "${NODE[@]}" kubectl apply -f - >/dev/null
}

cmd_status() {
  local out
  out="$("${NODE[@]}" kubectl -n "$NAMESPACE" get deployments -l "app.kubernetes.io/instance=$RELEASE" \
    -o jsonpath='{range .items[*]}{.metadata.name}={.status.availableReplicas}/{.spec.replicas}{"\n"}{end}' 2>/dev/null)" || return 1
  [[ -n "$out" ]] || return 1
  ! grep -qvE '=([0-9]+)/\1$' <<<"$out"
}

# What the chart needs before it installs: the node, the serving role, the Postgres Secret.
prepare() {
  "${NODE[@]}" status 2>/dev/null || "${NODE[@]}" start
  serving_role
  postgres_secret
}

cmd_skaffold() {
  local t0=$SECONDS skaffold helm kubectl
  prepare
  skaffold="$(bash "$SERVERS_DIR/tools.sh" path skaffold)"
  helm="$(bash "$SERVERS_DIR/tools.sh" path helm)"
  kubectl="$(bash "$SERVERS_DIR/kube.sh" kubectl-path)"
  log "skaffold run -p test-node: buildah build, push to the node's registry $(node_env REGISTRY), helm install"
  (cd "$REPO" && "${NODE[@]}" exec env KUBECONFIG="$("${NODE[@]}" kubeconfig)" PATH="$(dirname "$helm"):$(dirname "$kubectl"):$PATH" \
    SKAFFOLD_UPDATE_CHECK=false SKAFFOLD_DEFAULT_REPO="$(node_env REGISTRY)" FS_BUILD_NETNS="/proc/$$/ns/net" \
    "$skaffold" run -p test-node --cache-artifacts=false "$@") >&2 ||
    die "skaffold run failed" "read its output above; the node stays up for a look: bash $SERVERS_DIR/node.sh kubectl get pods -A"
  log "skaffold run done in $((SECONDS - t0)) s"
}

cmd_up() {
  local t0=$SECONDS t
  prepare
  t=$SECONDS
  "${IMAGE[@]}" build
  "${NODE[@]}" load-image "$("${IMAGE[@]}" oci-archive)"
  log "image loaded into the node in $((SECONDS - t)) s"
  t=$SECONDS
  log "helm upgrade --install $RELEASE charts/feature-store -n $NAMESPACE (waits until every component is Ready)"
  "${NODE[@]}" helm upgrade --install "$RELEASE" "$REPO/charts/feature-store" -n "$NAMESPACE" \
    -f "$SERVERS_DIR/pods/values.yaml" --set-string "kafka.brokers=$(node_env KAFKA_BROKERS)" "$@" --wait --timeout 5m >/dev/null || {
    "${NODE[@]}" kubectl -n "$NAMESPACE" get pods -o wide >&2 || true
    die "the release did not become Ready" "read the pods' logs: bash $SERVERS_DIR/node.sh kubectl -n $NAMESPACE logs deploy/$RELEASE-operator"
  }
  log "release $RELEASE Ready in $((SECONDS - t)) s (platform up in $((SECONDS - t0)) s): serving http://$RELEASE-serving.$NAMESPACE.svc:8080, ingest http://$RELEASE-ingest.$NAMESPACE.svc:8081"
}

cmd_demo() {
  cmd_up
  "${NODE[@]}" kubectl apply -f "$REPO/examples/user-activity.yaml" >&2
  local ingest serving deadline=$((SECONDS + 120)) answer=""
  ingest="$("${NODE[@]}" kubectl -n "$NAMESPACE" get service "$RELEASE-ingest" -o jsonpath='{.spec.clusterIP}')"
  serving="$("${NODE[@]}" kubectl -n "$NAMESPACE" get service "$RELEASE-serving" -o jsonpath='{.spec.clusterIP}')"
  log "waiting for the consumer of user-activity to be Ready"
  "${NODE[@]}" kubectl -n default wait --for=condition=Ready featuregroup/user-activity --timeout=180s >/dev/null
  "${NODE[@]}" exec curl -fsS --max-time 10 -X POST "http://$ingest:8081/v1/events" -H 'content-type: application/json' \
    -d "{\"entity_id\": \"user_123\", \"action\": \"click\", \"page\": \"/home\", \"timestamp\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"}" >/dev/null
  until answer="$("${NODE[@]}" exec curl -fsS --max-time 5 "http://$serving:8080/features/user_123" 2>/dev/null)"; do
    ((SECONDS < deadline)) || die "user_123 was not served within 120 s" "look at the consumer: bash $SERVERS_DIR/node.sh kubectl -n default logs deploy/user-activity-consumer"
    sleep 0.5
  done
  log "served through the serving Service: $answer"
  cat >&2 <<EOF
[pods] The platform runs on real pods on the test node (network namespace fs-node). From this machine:
  bash test/servers/node.sh kubectl get pods -A
  bash test/servers/node.sh exec curl http://$serving:8080/features/user_123     # serving's Service
  bash test/servers/node.sh exec curl -X POST http://$ingest:8081/v1/events -d '{"entity_id":"u1","action":"buy"}'
  make down MODE=pods     # stops the node and removes everything it made
EOF
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  demo) cmd_demo ;;
  skaffold) shift; cmd_skaffold "$@" ;;
  down) "${NODE[@]}" stop ;;
  status) cmd_status ;;
  *) die "usage: pods.sh {up [HELM ARGS...]|demo|skaffold [SKAFFOLD ARGS...]|down|status}" "see the comment at the top of test/servers/pods.sh" ;;
esac
