#!/usr/bin/env bash
# Build the step image, the runtime images and the sync service's image, tagged with the package's version; --push pushes
# them too. The version is read from src/kserve_predictor/__init__.py, the one place it is
# written (the wheel's version, `install-runtime`'s default image and these tags all come from it).
#
#   scripts/images.sh                      # build ghcr.io/fuseml/kserve-predictor:<version> ...
#   REGISTRY=registry.example/me scripts/images.sh --push
#
# REGISTRY (default ghcr.io/fuseml) names another registry; DOCKER another client (podman).
set -euo pipefail
cd "$(dirname "$0")/.."
registry="${REGISTRY:-ghcr.io/fuseml}"
docker="${DOCKER:-docker}"
version="$(sed -n 's/^__version__ = "\([^"]*\)"$/\1/p' src/kserve_predictor/__init__.py)"
if [ -z "$version" ]; then
  echo "error: no __version__ = \"…\" line in src/kserve_predictor/__init__.py" >&2
  exit 2
fi
push=false
case "${1:-}" in
  "") ;;
  --push) push=true ;;
  *) echo "usage: scripts/images.sh [--push]" >&2; exit 2 ;;
esac

# target:tag, in build order (runtime-tensorflow builds on runtime)
images=(
  "step:$registry/kserve-predictor:$version"
  "runtime:$registry/kserve-predictor-runtime:$version"
  "runtime-tensorflow:$registry/kserve-predictor-runtime:$version-tensorflow"
  "sync:$registry/kserve-predictor-sync:$version"
)
for image in "${images[@]}"; do
  target="${image%%:*}"
  tag="${image#*:}"
  "$docker" build --build-arg "VERSION=$version" --target "$target" -t "$tag" .
done
if $push; then
  for image in "${images[@]}"; do
    "$docker" push "${image#*:}"
  done
fi
