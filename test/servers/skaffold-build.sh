#!/usr/bin/env bash
# skaffold's custom build for the test node (profile test-node of skaffold.yaml): the image, built
# from the Dockerfile with buildah (image.sh), pushed as $IMAGE to the node's own registry. skaffold
# sets IMAGE and PUSH_IMAGE. It runs inside the node's network namespace, where that registry is:
# start it with `bash test/servers/pods.sh skaffold`, not with skaffold alone.
set -euo pipefail
dir="$(dirname "${BASH_SOURCE[0]}")"
[[ -n "${IMAGE:-}" ]] || { echo "IMAGE is not set: skaffold runs this script (bash test/servers/pods.sh skaffold)" >&2; exit 2; }
[[ "${PUSH_IMAGE:-true}" == true ]] || { echo "the test-node profile pushes to the node's registry (build.local.push: true)" >&2; exit 2; }
# The build itself needs npm's registry, which the node's namespace cannot reach: it runs in the
# network namespace of whoever started skaffold (pods.sh passes its own as FS_BUILD_NETNS).
if [[ -n "${FS_BUILD_NETNS:-}" ]]; then
  nsenter --net="$FS_BUILD_NETNS" -- bash "$dir/image.sh" build
else
  bash "$dir/image.sh" build
fi
bash "$dir/image.sh" push "$IMAGE"
echo "pushed $IMAGE" >&2
