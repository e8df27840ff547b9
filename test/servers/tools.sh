#!/usr/bin/env bash
# Chart tooling, compiled once from the Go module proxy (test/servers/tools/<tool>/go.mod pins the
# version) into $CACHE_DIR/<tool>-<version>/bin:
#   helm         helm.sh/helm/v3            (lint, template)
#   kubeconform  github.com/yannh/kubeconform (offline schema validation of rendered manifests)
#   skaffold     github.com/GoogleContainerTools/skaffold/v2 (diagnose/render of skaffold.yaml; the
#                proxy refuses to list its versions but serves the pinned one; ~10 min first build)
#   promtool     github.com/prometheus/prometheus (check/test rules of the chart's PrometheusRule;
#                Prometheus tags its Go module v0.3MM.P for release 3.MM.P; ~4 min first build)
#
# Usage: tools.sh {build [TOOL...]|path TOOL|version TOOL}
#   build    build the named tools (default: all) unless already cached (first time: helm ~3 min)
#   path     build if needed, then print the binary's path
#   version  print the pinned version
set -euo pipefail
LOG_TAG=tools
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=lib-go.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib-go.sh"

TOOLS_DIR="$SERVERS_DIR/tools"
ALL_TOOLS=(helm kubeconform skaffold promtool)

module_of() {
  case "$1" in
    helm) echo helm.sh/helm/v3 ;;
    kubeconform) echo github.com/yannh/kubeconform ;;
    skaffold) echo github.com/GoogleContainerTools/skaffold/v2 ;;
    promtool) echo github.com/prometheus/prometheus ;;
    *) die "unknown tool '$1'" "pick one of: ${ALL_TOOLS[*]}" ;;
  esac
}
package_of() {
  case "$1" in
    helm) echo helm.sh/helm/v3/cmd/helm ;;
    kubeconform) echo github.com/yannh/kubeconform/cmd/kubeconform ;;
    skaffold) echo github.com/GoogleContainerTools/skaffold/v2/cmd/skaffold ;;
    promtool) echo github.com/prometheus/prometheus/cmd/promtool ;;
  esac
}
version_of() {
  local module version
  module="$(module_of "$1")"
  version="$(awk -v m="$module" '$1 == m && $2 ~ /^v[0-9]/ { print $2; exit } $1 == "require" && $2 == m { print $3; exit }' "$TOOLS_DIR/$1/go.mod")"
  [[ -n "$version" ]] || die "cannot read the $module version from $TOOLS_DIR/$1/go.mod" "restore it: git checkout -- test/servers/tools"
  echo "$version"
}
dist_of() { echo "$CACHE_DIR/$1-$(version_of "$1")"; }

build_locked() {
  local tool=$1 version dist tmp t0=$SECONDS ldflags='-s -w'
  version="$(version_of "$tool")"
  dist="$(dist_of "$tool")"
  [[ -f "$dist/.complete" ]] && return 0
  need_go
  tmp="$(mktemp -d "$CACHE_DIR/.$tool-$version.XXXXXX")"
  # shellcheck disable=SC2064 # expand $tmp now
  trap "rm -rf '$tmp'" EXIT
  case "$tool" in
    helm)
      # As helm's Makefile: the Kubernetes version `helm template` assumes without a cluster is the
      # client-go it was built with (without these it assumes v1.20 and refuses kubeVersion >= 1.28).
      local client_go k8s_minor
      client_go="$(awk '$1 == "k8s.io/client-go" { print $2; exit }' "$TOOLS_DIR/helm/go.mod")"
      k8s_minor="$(cut -d. -f2 <<<"$client_go")"
      ldflags+=" -X helm.sh/helm/v3/internal/version.version=$version -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
      for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
        ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
      done ;;
    skaffold) ldflags+=" -X github.com/GoogleContainerTools/skaffold/v2/pkg/skaffold/version.version=$version" ;;
    promtool)
      # Module v0.316.0 is Prometheus 3.16.0: what `promtool --version` reports, as in its release builds.
      local minor=${version#v0.}
      ldflags+=" -X github.com/prometheus/common/version.Version=$((${minor%%.*} / 100)).$((${minor%%.*} % 100)).${minor#*.}" ;;
  esac
  log "building $tool $version from the Go module proxy into $dist/bin (once per version)"
  export CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false -trimpath"
  mkdir -p "$tmp/bin"
  go_build "$tool" "$TOOLS_DIR/$tool" "$CACHE_DIR/build-$tool-$version.log" "$(package_of "$tool")" "$tmp/bin/$tool" "$ldflags"
  "$tmp/bin/$tool" version >/dev/null 2>&1 || "$tmp/bin/$tool" -v >/dev/null 2>&1 || "$tmp/bin/$tool" --version >/dev/null 2>&1 \
    || die "the built $tool does not run" "see $CACHE_DIR/build-$tool-$version.log"
  rm -f "$CACHE_DIR/build-$tool-$version.log"
  finish_dist "$tmp" "$dist" $((SECONDS - t0))
  trap - EXIT
  log "$tool $version ready in $dist/bin (built in $((SECONDS - t0))s)"
}

build() {
  local tool
  for tool in "$@"; do
    module_of "$tool" >/dev/null
    [[ -f "$(dist_of "$tool")/.complete" ]] || with_build_lock "$tool-$(version_of "$tool")" build_locked "$tool"
  done
}

case "${1:-}" in
  build)
    shift
    if (($#)); then build "$@"; else build "${ALL_TOOLS[@]}"; fi ;;
  path)
    [[ -n "${2:-}" ]] || die "usage: $0 path TOOL" "pick one of: ${ALL_TOOLS[*]}"
    build "$2" >&2
    echo "$(dist_of "$2")/bin/$2" ;;
  version)
    [[ -n "${2:-}" ]] || die "usage: $0 version TOOL" "pick one of: ${ALL_TOOLS[*]}"
    version_of "$2" ;;
  *) die "usage: $0 {build [TOOL...]|path TOOL|version TOOL}" "pick one of the subcommands above" ;;
esac
