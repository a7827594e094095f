#!/usr/bin/env bash
# Build the air-gapped base images from Debian packages only (no image registry needed).
#
#   docker/airgap/build-bases.sh [debian|python|all]
#
# Images (tags are pinned, never `latest`; override the prefix with CONTAINERKIT_BASE_PREFIX):
#   containerkit/base-debian:12     debootstrap --variant=minbase bookworm, cleaned, `docker import`ed
#   containerkit/base-python:3.11   Debian's python3 (3.11) on base-debian, user 50000:0, /usr/local/bin/python
# Rebuilds are skipped when the tag exists (set CONTAINERKIT_REBUILD=1 to force).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
prefix="${CONTAINERKIT_BASE_PREFIX:-containerkit}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
what="${1:-all}"
# Debian's client (/usr/bin/docker) talks BuildKit to the engine; a newer client without buildx refuses it.
docker_bin="${DOCKER:-$( [ -x /usr/bin/docker ] && echo /usr/bin/docker || echo docker)}"

have() { [ "${CONTAINERKIT_REBUILD:-0}" != 1 ] && "$docker_bin" image inspect "$1" >/dev/null 2>&1; }

build_debian() {
  local tag="$prefix/base-debian:12"
  if have "$tag"; then echo "have $tag"; return; fi
  local root; root="$(mktemp -d /tmp/ck-rootfs.XXXXXX)"
  trap 'rm -rf "$root"' RETURN
  echo "debootstrap bookworm -> $tag"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >/tmp/ck-debootstrap.log 2>&1 \
    || { tail -20 /tmp/ck-debootstrap.log; return 1; }
  # Same hygiene as the official slim images: no apt lists, caches, docs or logs in the layer.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
         "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*.log \
         "$root"/tmp/* "$root"/var/tmp/*
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb http://deb.debian.org/debian-security bookworm-security main\n' \
    "$mirror" "$mirror" > "$root/etc/apt/sources.list"
  tar -C "$root" -c . | "$docker_bin" import \
    -c 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["bash"]' - "$tag" >/dev/null
  echo "built $tag"
}

build_python() {
  local tag="$prefix/base-python:3.11"
  if have "$tag"; then echo "have $tag"; return; fi
  DOCKER_BUILDKIT=1 "$docker_bin" build -q -t "$tag" \
    --build-arg "BASE_IMAGE=$prefix/base-debian:12" \
    -f "$here/python.Dockerfile" "$here" >/dev/null
  echo "built $tag"
}

case "$what" in
  debian) build_debian ;;
  python) build_debian; build_python ;;
  all) build_debian; build_python
       for extra in "$here"/build-*.sh; do [ -e "$extra" ] && bash "$extra"; done ;;
  *) echo "usage: $0 [debian|python|all]" >&2; exit 2 ;;
esac
