#!/usr/bin/env bash
# Build the project's two images with whichever container builder this machine has:
#   PIPELINE_IMAGE  the image every Kubeflow step runs (Dockerfile)
#   SIDECAR_IMAGE   the tracking sidecar of the serving pods (serving/Dockerfile)
# The builder is IMAGE_BUILDER if set, else the first of docker (with a reachable daemon),
# podman (working) or buildah found on PATH. Called by `make images`, which passes the
# image names and versions.env's TENSORRT_VERSION.
set -euo pipefail

: "${PIPELINE_IMAGE:?}" "${SIDECAR_IMAGE:?}" "${TENSORRT_VERSION:?}"
WITH_TENSORRT="${WITH_TENSORRT:-0}"
GIT_REVISION="${GIT_REVISION:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"

pick_builder() {
  local found=""
  for candidate in docker podman buildah; do
    command -v "$candidate" >/dev/null 2>&1 || continue
    found="$found $candidate"
    case "$candidate" in
      buildah) echo buildah; return 0 ;;
      *) if "$candidate" info >/dev/null 2>&1; then echo "$candidate"; return 0; fi ;;
    esac
  done
  if [ -n "$found" ]; then
    echo "make images: found${found} but none can build (is the docker daemon running?);" \
      "start it, or install podman or buildah, or set IMAGE_BUILDER" >&2
  else
    echo "make images: no container builder found: install docker, podman or buildah" \
      "(or set IMAGE_BUILDER)" >&2
  fi
  return 1
}

builder="${IMAGE_BUILDER:-}"
[ -n "$builder" ] || builder="$(pick_builder)"
echo "make images: building with $builder"

"$builder" build -f Dockerfile -t "$PIPELINE_IMAGE" \
  --build-arg "GIT_REVISION=$GIT_REVISION" --build-arg "WITH_TENSORRT=$WITH_TENSORRT" \
  --build-arg "TENSORRT_VERSION=$TENSORRT_VERSION" .

# BuildKit reads serving/Dockerfile.dockerignore by itself; podman and buildah are told.
ignore=()
[ "$(basename "$builder")" = docker ] || ignore=(--ignorefile serving/Dockerfile.dockerignore)
"$builder" build -f serving/Dockerfile -t "$SIDECAR_IMAGE" "${ignore[@]}" \
  --build-arg "GIT_REVISION=$GIT_REVISION" .
