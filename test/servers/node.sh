#!/usr/bin/env bash
# A real single-node Kubernetes for tests, inside a network namespace this script creates: etcd and
# kube-apiserver (kube.sh, with service-account tokens and endpoints on), containerd + runc from
# Debian's packages with a configuration of our own (own root, state and socket, cgroupfs), and
# kubelet, kube-proxy, kube-scheduler and kube-controller-manager, compiled from the Go module proxy
# at the kube-apiserver's version (kube/go.mod) into $CACHE_DIR/kube-node-<version>/bin; CoreDNS
# (coredns/go.mod) and an image registry (Distribution, registry/go.mod) the same way; and a
# Postgres and Kafka of its own (postgres.sh, kafka.sh) on the node's address for its pods. Everything listens inside the namespace only; iptables rules
# and ip_forward stay in it. `stop` removes the processes, the namespace and the state.
# Needs root.
#
# Usage: node.sh {build|start|stop|status|exec CMD...|kubectl ARGS...|load-image ARCHIVE|env}
#   build    compile kubelet, kube-proxy, kube-scheduler, kube-controller-manager once; make the
#            pause image (a static binary built with gcc) once
#   start    create the namespace, start the cluster and the node, wait until the node is Ready
#   stop     stop everything started here and remove the namespace (idempotent)
#   status   exit 0 if the node is Ready
#   exec     run CMD inside the node's network namespace
#   kubectl  kubectl against the node's cluster
#   env      DATABASE_URL and KAFKA_BROKERS of the node's own Postgres and Kafka, as pods reach them,
#            and REGISTRY, the node's image registry (plain HTTP)
#   load-image  import an OCI archive (test/servers/image.sh oci-archive) into the node's containerd
#   ctr      ctr ARGS against the node's containerd, namespace k8s.io (e.g. images tag A B)
#   helm     helm ARGS against the node's cluster (tools.sh builds helm)
#   psql     psql ARGS as the superuser of the node's own Postgres
#   kubeconfig  print the path of the cluster's kubeconfig (for tools run with `exec`)
# Env: FS_NODE_NETNS (fs-node), FS_NODE_IP (10.213.0.10), FS_NODE_POD_CIDR (10.214.0.0/24)
set -euo pipefail
LOG_TAG=node
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=lib-go.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib-go.sh"

MOD_DIR="$SERVERS_DIR/kube"
KUBE_VERSION="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v[0-9]/ { print $2; exit }' "$MOD_DIR/go.mod")"
NODE_DIST="$CACHE_DIR/kube-node-$KUBE_VERSION"
COREDNS_MOD_DIR="$SERVERS_DIR/coredns"
COREDNS_VERSION="$(awk '$1 == "github.com/coredns/coredns" && $2 ~ /^v[0-9]/ { print $2; exit }' "$COREDNS_MOD_DIR/go.mod")"
COREDNS_DIST="$CACHE_DIR/coredns-$COREDNS_VERSION"
REGISTRY_MOD_DIR="$SERVERS_DIR/registry"
REGISTRY_VERSION="$(awk '$1 == "github.com/distribution/distribution/v3" && $2 ~ /^v[0-9]/ { print $2; exit }' "$REGISTRY_MOD_DIR/go.mod")"
REGISTRY_DIST="$CACHE_DIR/registry-$REGISTRY_VERSION"
REGISTRY_PORT="${FS_NODE_REGISTRY_PORT:-5000}"
NETNS="${FS_NODE_NETNS:-fs-node}"
NODE_IP="${FS_NODE_IP:-10.213.0.10}"
POD_CIDR="${FS_NODE_POD_CIDR:-10.214.0.0/24}"
N_DIR="$STATE_DIR/node"
CLUSTER_STATE="$N_DIR/cluster"
CTRD_DIR="$N_DIR/containerd"
CTRD_SOCK="$CTRD_DIR/containerd.sock"
KUBELET_DIR="$N_DIR/kubelet"
CNI_CONF="$N_DIR/cni"
PAUSE_IMAGE="localhost/pause:fs-1"
# containerd puts every container's cgroup under /k8s.io (its namespace) of each hierarchy.
CGROUP_NS="k8s.io"
PAUSE_ARCHIVE="$CACHE_DIR/pause-fs-1.oci.tar"

# nsenter, not `ip netns exec`: that remounts /sys for the namespace, which hides the cgroup
# mounts kubelet needs.
in_ns() { nsenter --net="/var/run/netns/$NETNS" -- "$@"; }
kube_in_ns() {
  in_ns env FS_STATE_DIR="$CLUSTER_STATE" FS_KUBE_NODE=1 FS_KUBE_ADVERTISE_ADDRESS="$NODE_IP" FS_KUBE_BIND_ADDRESS=0.0.0.0 \
    bash "$SERVERS_DIR/kube.sh" "$@"
}
kubectl_node() { kube_in_ns kubectl "$@"; }
# Postgres and Kafka for the node's pods, inside the namespace, on the node's address.
SERVERS_STATE="$N_DIR/servers"
servers_in_ns() {
  in_ns env FS_STATE_DIR="$SERVERS_STATE" FS_PG_LISTEN="$NODE_IP" FS_PG_ALLOW_CIDR="$POD_CIDR" FS_KAFKA_LISTEN="$NODE_IP" \
    bash "$SERVERS_DIR/$1.sh" "${@:2}"
}

need_root() { [[ $EUID -eq 0 ]] || die "the node needs root (network namespace, containerd, kubelet)" "run the tests as root"; }

# ---------------------------------------------------------------------------------------------
# build

build_node_locked() {
  local c specs=()
  for c in kubelet kube-proxy kube-scheduler kube-controller-manager; do specs+=("$c=k8s.io/kubernetes/cmd/$c"); done
  build_go_dist "$NODE_DIST" "the node's Kubernetes $KUBE_VERSION components (first time a few minutes)" "$MOD_DIR" "${specs[@]}"
}

build_pause() {
  [[ -s "$PAUSE_ARCHIVE" ]] && return 0
  ensure_cmd gcc gcc
  ensure_cmd buildah buildah
  local tmp ctr mnt
  tmp="$(mktemp -d "$CACHE_DIR/.pause.XXXXXX")"
  # shellcheck disable=SC2064 # expand $tmp now
  trap "rm -rf '$tmp'" EXIT
  # The pod sandbox only has to hold its namespaces open until it is told to stop.
  printf '%s\n' '#include <signal.h>' '#include <unistd.h>' 'static void stop(int s) { (void)s; _exit(0); }' \
    'int main(void) { signal(SIGTERM, stop); signal(SIGINT, stop); for (;;) pause(); }' >"$tmp/pause.c"
  gcc -static -O2 -o "$tmp/pause" "$tmp/pause.c" || die "gcc could not build the pause binary" "apt-get install gcc libc6-dev"
  local bah=(buildah --root "$tmp/storage" --runroot "$tmp/run" --storage-driver vfs)
  ctr="$("${bah[@]}" from scratch)"
  mnt="$("${bah[@]}" mount "$ctr")"
  install -m 0755 "$tmp/pause" "$mnt/pause"
  "${bah[@]}" umount "$ctr" >/dev/null
  "${bah[@]}" config --entrypoint '["/pause"]' "$ctr"
  "${bah[@]}" commit --quiet --rm "$ctr" "$PAUSE_IMAGE" >/dev/null
  "${bah[@]}" push --quiet "$PAUSE_IMAGE" "oci-archive:$tmp/pause.tar:$PAUSE_IMAGE" >/dev/null
  mv "$tmp/pause.tar" "$PAUSE_ARCHIVE"
  rm -rf "$tmp"
  trap - EXIT
}

cmd_build() {
  need_root
  ensure_cmd containerd containerd
  ensure_cmd runc runc
  [[ -x /usr/lib/cni/bridge ]] || ensure_cmd /usr/lib/cni/bridge containernetworking-plugins
  bash "$SERVERS_DIR/kube.sh" build quiet
  with_build_lock "kube-node-$KUBE_VERSION" build_node_locked
  with_build_lock "coredns-$COREDNS_VERSION" build_go_dist "$COREDNS_DIST" "CoreDNS $COREDNS_VERSION (first time ~2 min)" \
    "$COREDNS_MOD_DIR" coredns=github.com/coredns/coredns
  with_build_lock "registry-$REGISTRY_VERSION" build_go_dist "$REGISTRY_DIST" \
    "the Distribution registry $REGISTRY_VERSION (first time ~1 min)" "$REGISTRY_MOD_DIR" \
    registry=github.com/distribution/distribution/v3/cmd/registry
  build_pause
}

# ---------------------------------------------------------------------------------------------
# start / stop

write_configs() {
  mkdir -p "$CTRD_DIR" "$KUBELET_DIR" "$CNI_CONF" "$N_DIR/logs"
  cat >"$CTRD_DIR/config.toml" <<EOF
version = 2
root = "$CTRD_DIR/root"
state = "$CTRD_DIR/state"
[grpc]
  address = "$CTRD_SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # The machine withholds CAP_SYS_RESOURCE: without this, sandboxes fail with
  # "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  # Pod network namespaces under our state, not /var/run/netns: stop finds them even when
  # containerd is gone (an interrupted run), by their mounts.
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "10010"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
      SystemdCgroup = false
      # runc's state of our containers, apart from any other runtime's on the machine: stop reaches
      # them through it even when containerd and the shims are gone.
      Root = "$CTRD_DIR/runc"
  # The node's own registry (plain HTTP, inside the namespace): what skaffold pushes, kubelet pulls.
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."$NODE_IP:$REGISTRY_PORT"]
    endpoint = ["http://$NODE_IP:$REGISTRY_PORT"]
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$CNI_CONF"
EOF
  cat >"$CNI_CONF/10-fs-bridge.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "fs-pods", "plugins": [
  {"type": "bridge", "bridge": "fs-cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}
]}
EOF
  cat >"$KUBELET_DIR/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failCgroupV1: false
containerRuntimeEndpoint: unix://$CTRD_SOCK
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
# The kubelet port is reachable inside the namespace only; the API server reads logs through it.
authentication: { anonymous: { enabled: true }, webhook: { enabled: false } }
authorization: { mode: AlwaysAllow }
clusterDomain: cluster.local
clusterDNS: [$NODE_IP]
resolvConf: ""
podCIDR: $POD_CIDR
failSwapOn: false
cgroupsPerQOS: false
enforceNodeAllocatable: []
localStorageCapacityIsolation: false
evictionHard: { memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%" }
serializeImagePulls: false
EOF
}

# start_bg NAME CMD...: CMD in the namespace, in the background; nsenter execs it, so the pid is CMD's.
start_bg() {
  local name=$1; shift
  nsenter --net="/var/run/netns/$NETNS" -- "$@" >"$N_DIR/logs/$name.log" 2>&1 &
  echo $! >"$N_DIR/$name.pid"
}

cmd_start() {
  need_root
  cmd_build
  # A run that was interrupted left its node: clear it first, then start clean.
  if [[ -d "$N_DIR" ]] || ip netns list | grep -q "^$NETNS\b"; then
    log "clearing what an earlier run left ($N_DIR, namespace $NETNS)"
    cmd_stop
  fi
  if ! ip netns list | grep -qx "$NETNS\( (id: [0-9]*)\)\?"; then
    log "creating network namespace $NETNS (node $NODE_IP, pods $POD_CIDR)"
    # `ip netns add` makes /run/netns a mount point the first time: note it, to undo at stop.
    mountpoint -q /run/netns || { mkdir -p "$STATE_DIR" && touch "$STATE_DIR/.node-made-run-netns"; }
    ip netns add "$NETNS"
    in_ns ip link set lo up
    in_ns ip link add fs-node0 type bridge
    in_ns ip addr add "$NODE_IP/24" dev fs-node0
    in_ns ip link set fs-node0 up
    # A default route that goes nowhere but the namespace's own bridge: Service IPs need a route
    # before kube-proxy's rules can rewrite them, and nothing can leave the namespace this way.
    in_ns ip route add default dev fs-node0
    in_ns sysctl -qw net.ipv4.ip_forward=1
  fi
  ensure_state_dir
  write_configs
  # No other containerd on the machine uses these cgroups: they are ours to remove at stop.
  [[ -d "/sys/fs/cgroup/memory/$CGROUP_NS" ]] || touch "$STATE_DIR/.node-made-cgroups"
  kube_in_ns start >&2
  servers_in_ns postgres start >&2
  servers_in_ns kafka start >&2
  start_bg containerd containerd --config "$CTRD_DIR/config.toml"
  local deadline=$((SECONDS + 30))
  until [[ -S "$CTRD_SOCK" ]]; do
    ((SECONDS < deadline)) || { log_tail "$N_DIR/logs/containerd.log" 30; die "containerd did not start" "see $N_DIR/logs/containerd.log"; }
    sleep 0.2
  done
  in_ns ctr --address "$CTRD_SOCK" -n k8s.io images import --all-platforms "$PAUSE_ARCHIVE" >/dev/null
  local kubeconfig="$CLUSTER_STATE/kubeconfig"
  start_bg kubelet "$NODE_DIST/bin/kubelet" --config="$KUBELET_DIR/config.yaml" --kubeconfig="$kubeconfig" \
    --root-dir="$KUBELET_DIR/root" --node-ip="$NODE_IP" --hostname-override=fs-node --v=1
  local pki="$CLUSTER_STATE/kube/pki"
  # Service accounts and their tokens, Deployments' ReplicaSets, garbage collection; scheduling.
  start_bg kube-controller-manager "$NODE_DIST/bin/kube-controller-manager" --kubeconfig="$kubeconfig" \
    --service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" --use-service-account-credentials=false \
    --leader-elect=false --bind-address=127.0.0.1 --secure-port=10257 --controllers='*,-nodeipam,-cloud-node-lifecycle'
  start_bg kube-scheduler "$NODE_DIST/bin/kube-scheduler" --kubeconfig="$kubeconfig" --leader-elect=false \
    --bind-address=127.0.0.1 --secure-port=10259
  # Services: iptables rules, in the namespace only. No conntrack sysctls: the machine owns those.
  start_bg kube-proxy "$NODE_DIST/bin/kube-proxy" --kubeconfig="$kubeconfig" --proxy-mode=iptables \
    --cluster-cidr="$POD_CIDR" --hostname-override=fs-node --conntrack-max-per-core=0 \
    --conntrack-tcp-timeout-established=0 --conntrack-tcp-timeout-close-wait=0 \
    --metrics-bind-address=127.0.0.1:10249 --healthz-bind-address=127.0.0.1:10256
  # Cluster DNS on the node's address: Service and pod names in cluster.local; any other name is
  # answered NXDOMAIN here, so no query leaves the namespace.
  cat >"$N_DIR/Corefile" <<EOF
cluster.local:53 in-addr.arpa:53 {
  bind $NODE_IP
  errors
  kubernetes cluster.local in-addr.arpa {
    kubeconfig $kubeconfig
    pods insecure
  }
}
.:53 {
  bind $NODE_IP
  template ANY ANY {
    rcode NXDOMAIN
  }
}
EOF
  start_bg coredns "$COREDNS_DIST/bin/coredns" -conf "$N_DIR/Corefile"
  # An image registry on the node's address, for builds that push (skaffold's custom build).
  cat >"$N_DIR/registry.yaml" <<EOF
version: 0.1
log: { level: warn }
storage: { filesystem: { rootdirectory: $N_DIR/registry }, delete: { enabled: true } }
http: { addr: "$NODE_IP:$REGISTRY_PORT" }
EOF
  start_bg registry env OTEL_TRACES_EXPORTER=none "$REGISTRY_DIST/bin/registry" serve "$N_DIR/registry.yaml"
  log "waiting for node fs-node to be Ready"
  deadline=$((SECONDS + 120))
  until kubectl_node get node fs-node -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -qx True; do
    ((SECONDS < deadline)) || { log_tail "$N_DIR/logs/kubelet.log" 40; die "the node did not become Ready" "see $N_DIR/logs/kubelet.log"; }
    sleep 1
  done
  log "node fs-node Ready"
}

stop_pid() {
  local name=$1 pid
  pid="$(cat "$N_DIR/$name.pid" 2>/dev/null || true)"
  [[ -n "$pid" ]] || return 0
  if pid_alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do pid_alive "$pid" || break; sleep 0.2; done
    pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$N_DIR/$name.pid"
}

cmd_stop() {
  need_root
  # No controller to recreate the pods deleted next, no scheduler to place them.
  stop_pid kube-controller-manager
  stop_pid kube-scheduler
  # Pods first, while kubelet runs, so their sandboxes are torn down the normal way.
  if kubectl_node get --raw /readyz >/dev/null 2>&1; then
    kubectl_node delete pods --all --all-namespaces --grace-period=0 --force --wait=false >/dev/null 2>&1 || true
    local deadline=$((SECONDS + 60))
    while [[ -n "$(kubectl_node get pods -A -o name 2>/dev/null)" ]] && ((SECONDS < deadline)); do sleep 1; done
  fi
  stop_pid registry
  stop_pid coredns
  stop_pid kube-proxy
  stop_pid kubelet
  # Containers and their shims first, then containerd.
  if [[ -S "$CTRD_SOCK" ]]; then
    local task
    for task in $(in_ns ctr --address "$CTRD_SOCK" -n k8s.io tasks ls -q 2>/dev/null || true); do
      in_ns ctr --address "$CTRD_SOCK" -n k8s.io tasks kill -s SIGKILL "$task" >/dev/null 2>&1 || true
    done
  fi
  stop_pid containerd
  # Shims outlive containerd by design; they are ours when their socket lives under our state.
  pkill -KILL -f "containerd-shim-runc-v2 .*-address $CTRD_SOCK" 2>/dev/null || true
  # Containers outlive their shims: kill and delete what runc still knows of under our root (after
  # an interrupted run, containerd may be long gone).
  local rroot id
  for rroot in "$CTRD_DIR"/runc/*/; do # the shim keeps one root per containerd namespace
    [[ -d "$rroot" ]] || continue
    for id in $(runc --root "$rroot" list -q 2>/dev/null || true); do
      runc --root "$rroot" kill --all "$id" KILL 2>/dev/null || true
      runc --root "$rroot" delete --force "$id" 2>/dev/null || true
    done
  done
  if ip netns list | grep -q "^$NETNS\b"; then
    servers_in_ns kafka stop >&2 || true
    servers_in_ns postgres stop >&2 || true
    kube_in_ns stop >&2 || true
    ip netns del "$NETNS"
  fi
  if [[ -f "$STATE_DIR/.node-made-run-netns" && -z "$(ip netns list)" ]]; then
    umount /run/netns 2>/dev/null || true
    rm -f "$STATE_DIR/.node-made-run-netns"
  fi
  # The containers' cgroups: runc delete removed the live ones, but an OOM kill or a crash can
  # leave empty ones. Only when this node made the hierarchy: another runtime's stay untouched.
  if [[ -f "$STATE_DIR/.node-made-cgroups" ]]; then
    local cg
    for cg in $(find /sys/fs/cgroup/*/"$CGROUP_NS" -depth -type d 2>/dev/null); do rmdir "$cg" 2>/dev/null || true; done
    if compgen -G "/sys/fs/cgroup/*/$CGROUP_NS" >/dev/null; then
      warn "cgroups /sys/fs/cgroup/*/$CGROUP_NS are still in use"
    else
      rm -f "$STATE_DIR/.node-made-cgroups"
    fi
  fi
  # Mounts the node made under its state: pod volumes, and the pods' network namespaces.
  local m
  for m in $(awk -v d="$N_DIR" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r); do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$N_DIR"
}

cmd_status() { kubectl_node get node fs-node -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -qx True; }

case "${1:-}" in
  build) cmd_build ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  exec) shift; in_ns "$@" ;;
  # What a pod needs to reach the node's Postgres and Kafka.
  env)
    echo "DATABASE_URL=postgres://featurestore:featurestore@$NODE_IP:${FS_PG_PORT:-25432}/featurestore"
    echo "KAFKA_BROKERS=$NODE_IP:${FS_KAFKA_PORT:-29092}"
    echo "REGISTRY=$NODE_IP:$REGISTRY_PORT"
    ;;
  load-image)
    [[ -f "${2:-}" ]] || die "usage: node.sh load-image OCI_ARCHIVE" "make one with test/servers/image.sh oci-archive"
    in_ns ctr --address "$CTRD_SOCK" -n k8s.io images import --all-platforms "$2" >/dev/null
    ;;
  kubectl) shift; kubectl_node "$@" ;;
  ctr) shift; in_ns ctr --address "$CTRD_SOCK" -n k8s.io "$@" ;;
  helm)
    shift
    helm_bin="$(bash "$SERVERS_DIR/tools.sh" path helm)"
    in_ns env KUBECONFIG="$CLUSTER_STATE/kubeconfig" HELM_CACHE_HOME="$N_DIR/helm/cache" HELM_CONFIG_HOME="$N_DIR/helm/config" \
      HELM_DATA_HOME="$N_DIR/helm/data" "$helm_bin" "$@"
    ;;
  psql) shift; servers_in_ns postgres psql "$@" ;;
  kubeconfig) echo "$CLUSTER_STATE/kubeconfig" ;;
  *) die "usage: node.sh {build|start|stop|status|exec CMD...|kubectl ARGS...|load-image ARCHIVE|ctr ARGS...|helm ARGS...|psql ARGS...|kubeconfig|env}" "see the comment at the top of test/servers/node.sh" ;;
esac
