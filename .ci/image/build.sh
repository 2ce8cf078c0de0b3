#!/usr/bin/env bash
# Builds berth's image (default berth:dev) from the repository's Dockerfile on
# the local bases .ci/image/base.sh makes: the same Dockerfile, only its BASE
# and BUILD_BASE arguments changed.
#
# The image carries a label, dev.berth.image.inputs, with a hash of what it is
# built from (Dockerfile, .dockerignore, package.json, package-lock.json,
# tsconfig.json, src/, and the base images; the build runs on a snapshot of
# them, so the label is exact). When berth:dev already carries
# the current hash nothing is built; FORCE=1 builds anyway.
#
#   bash .ci/image/build.sh            # base images, then berth:dev
#   bash .ci/image/build.sh --inputs   # print the current inputs hash only
#   IMAGE=berth:x bash .ci/image/build.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

IMAGE=${IMAGE:-berth:dev}
LABEL=dev.berth.image.inputs
CACHE=${BERTH_IMAGE_CACHE:-/var/cache/berth-image}
export DOCKER_BUILDKIT=0 # the classic builder: BuildKit may want to fetch its frontend
t0=$SECONDS
log() { printf '[image/build +%ss] %s\n' "$((SECONDS - t0))" "$*" >&2; }

INPUTS="Dockerfile .dockerignore package.json package-lock.json tsconfig.json"
inputs_hash() { # inputs_hash DIR: the files the Dockerfile uses (as .dockerignore lets them through), and the bases
  (
    cd "$1"
    for f in $INPUTS; do printf '%s %s\n' "$f" "$(sha256sum <"$f" | cut -c1-64)"; done
    find src -type f ! -name '*.swp' ! -name '*~' ! -name '.#*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
    for image in "$BASE" "$BUILD_BASE"; do
      printf '%s %s\n' "$image" "$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || echo missing)"
    done
  ) | sha256sum | cut -c1-32
}

if [ "${1:-}" = --inputs ]; then
  eval "$(bash .ci/image/base.sh --names)"
  inputs_hash .
  exit 0
fi

# BASE=... BUILD_BASE=..., the images base.sh made (or found up to date).
bases=$(bash .ci/image/base.sh | tail -n 1)
eval "$bases"
: "${BASE:?base.sh printed no BASE}" "${BUILD_BASE:?base.sh printed no BUILD_BASE}"

mkdir -p "$CACHE"
exec 9>"$CACHE/.build.lock" # one build at a time
flock 9

# The build context is a snapshot, so the label describes exactly what was built even while src/ is being edited.
ctx=$(mktemp -d /tmp/berth-image-context.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
cp $INPUTS "$ctx/"
cp -r src "$ctx/src"
hash=$(inputs_hash "$ctx")
current=$(docker image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$IMAGE" 2>/dev/null || true)
if [ "$current" = "$hash" ] && [ -z "${FORCE:-}" ]; then
  log "$IMAGE is up to date ($LABEL=$hash)"
  exit 0
fi

log "building $IMAGE on $BASE (build stage: $BUILD_BASE)"
old_id=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
docker build \
  --build-arg "BASE=$BASE" --build-arg "BUILD_BASE=$BUILD_BASE" \
  --label "$LABEL=$hash" \
  -t "$IMAGE" "$ctx"
new_id=$(docker image inspect -f '{{.Id}}' "$IMAGE")
# The image this one replaces goes, unless a container or another tag still uses it.
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then docker rmi "$old_id" >/dev/null 2>&1 || true; fi
log "built $IMAGE: $(docker image inspect -f '{{.Size}}' "$IMAGE") bytes ($LABEL=$hash)"
