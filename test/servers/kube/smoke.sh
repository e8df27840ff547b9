#!/usr/bin/env bash
# Smoke test for test/servers/kube.sh: against the running kube-apiserver, with the built kubectl,
# exercise what an operator needs: namespaces, a CRD with a status subresource, a custom object
# (spec and /status written separately), a Deployment (stored, never scheduled: no controllers)
# and a coordination.k8s.io Lease (leader election). Cleans up its namespace and CRD.
#
# Without kube-controller-manager nothing finalizes a deleted namespace (it stays Terminating)
# and nothing garbage-collects by ownerReferences; so cleanup deletes the objects itself and then
# clears the namespace's 'kubernetes' finalizer through the /finalize subresource.
#
# Usage: test/servers/kube/smoke.sh      (after: test/servers/kube.sh start)
set -euo pipefail
LOG_TAG=kube-smoke
# shellcheck source=SCRIPTDIR/../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

KUBE_SH="$SERVERS_DIR/kube.sh"
bash "$KUBE_SH" status 2>/dev/null || die "the test kube-apiserver is not running" "start it: $KUBE_SH start"
k() { bash "$KUBE_SH" kubectl "$@"; }
NS="smoke-$$"
GROUP="smoke.featurestore.test"

cleanup() {
  k delete crd "widgets.$GROUP" --ignore-not-found >/dev/null 2>&1 || true
  k -n "$NS" delete deployments,configmaps,serviceaccounts,leases --all >/dev/null 2>&1 || true
  k delete namespace "$NS" --wait=false --ignore-not-found >/dev/null 2>&1 || true
  k get namespace "$NS" -o json 2>/dev/null | sed 's/"kubernetes"//' \
    | k replace --raw "/api/v1/namespaces/$NS/finalize" -f - >/dev/null 2>&1 || true
}
trap cleanup EXIT

log "server version: $(k version -o json | sed -n 's/.*"gitVersion": "\([^"]*\)".*/\1/p' | tr '\n' ' ')"
k get namespaces
k create namespace "$NS"

k apply -f - <<EOF
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.$GROUP
spec:
  group: $GROUP
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 1}
          status:
            type: object
            properties:
              phase: {type: string}
EOF
k wait --for=condition=Established --timeout=30s "crd/widgets.$GROUP"

k -n "$NS" apply -f - <<EOF
apiVersion: $GROUP/v1alpha1
kind: Widget
metadata: {name: w1}
spec: {size: 3}
EOF
# Schema validation is enforced by the real apiserver.
if k -n "$NS" apply -f - >/dev/null 2>&1 <<EOF
apiVersion: $GROUP/v1alpha1
kind: Widget
metadata: {name: bad}
spec: {size: 0}
EOF
then die "a Widget violating the CRD schema (size: 0) was accepted" "the apiserver is not validating CRDs?"; fi
# Status goes through the /status subresource only.
k -n "$NS" patch widget w1 --subresource=status --type=merge -p '{"status":{"phase":"Ready"}}'
[[ "$(k -n "$NS" get widget w1 -o jsonpath='{.status.phase}')" == Ready ]] || die "status subresource patch did not stick"
k -n "$NS" patch widget w1 --type=merge -p '{"status":{"phase":"Ignored"}}' >/dev/null
[[ "$(k -n "$NS" get widget w1 -o jsonpath='{.status.phase}')" == Ready ]] || die "a main-resource patch changed .status (subresource not active)"

k -n "$NS" create deployment web --image=registry.k8s.io/pause:3.10 --replicas=2
k -n "$NS" get deployment web -o jsonpath='{.metadata.name} generation={.metadata.generation}{"\n"}'
k -n "$NS" create configmap cfg --from-literal=a=b
k -n "$NS" create serviceaccount operator

k -n "$NS" apply -f - <<EOF
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: feature-store-operator}
spec: {holderIdentity: smoke, leaseDurationSeconds: 15}
EOF
k -n "$NS" get lease feature-store-operator -o jsonpath='{.spec.holderIdentity}{"\n"}'

k auth can-i '*' '*' --all-namespaces | grep -qx yes || die "the admin token is not cluster-admin" "check $STATE_DIR/kube/tokens.csv"
log "OK: namespaces, CRD + status subresource + schema validation, custom object, Deployment, ConfigMap, ServiceAccount, Lease"
