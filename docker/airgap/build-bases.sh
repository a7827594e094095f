#!/usr/bin/env bash
# Build the air-gapped base images from Debian packages and PyPI only (no image registry needed).
#
#   docker/airgap/build-bases.sh [debian|python|airflow|postgres|redis|all]...
#
# Images (tags are pinned, never `latest`; override the prefix with CONTAINERKIT_BASE_PREFIX):
#   containerkit/base-debian:12                  debootstrap --variant=minbase bookworm, cleaned, `docker import`ed
#   containerkit/base-python:3.11                Debian's python3 (3.11), user 50000:0, /usr/local/bin/python
#   containerkit/base-airflow:3.3.2-python3.11   the apache/airflow:3.3.2-python3.11 contract, venv from PyPI
#   containerkit/postgres:15                     Debian's postgresql-15, postgres:15 env contract, non-root
#   containerkit/redis:7                         Debian's redis-server 7, non-root
#
# Cached: an image is rebuilt only when its inputs change. Each Dockerfile-built image carries the hash of
# its build context (label org.containerkit.context-hash); base-debian is rebuilt only when missing.
# CONTAINERKIT_REBUILD=1 forces rebuilds. PyPI through a TLS-intercepting proxy: CONTAINERKIT_CA_FILE (default
# the host bundle /etc/ssl/certs/ca-certificates.crt when present) is passed as the BuildKit secret `ca`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
prefix="${CONTAINERKIT_BASE_PREFIX:-containerkit}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
constraints="${CONTAINERKIT_CONSTRAINTS:-$repo/constraints.txt}"
ca_file="${CONTAINERKIT_CA_FILE:-/etc/ssl/certs/ca-certificates.crt}"
# Debian's client (/usr/bin/docker) talks BuildKit to the engine; a newer client without buildx refuses it.
docker_bin="${DOCKER:-$([ -x /usr/bin/docker ] && echo /usr/bin/docker || echo docker)}"
hash_label=org.containerkit.context-hash

DEBIAN_TAG="$prefix/base-debian:12"
PYTHON_TAG="$prefix/base-python:3.11"
AIRFLOW_TAG="$prefix/base-airflow:3.3.2-python3.11"
POSTGRES_TAG="$prefix/postgres:15"
REDIS_TAG="$prefix/redis:7"

have() { [ "${CONTAINERKIT_REBUILD:-0}" != 1 ] && "$docker_bin" image inspect "$1" >/dev/null 2>&1; }

# Builders run in subshells so each one's EXIT trap removes its own temp dir.
build_debian() (
  tag="$DEBIAN_TAG"
  if have "$tag"; then echo "have $tag"; exit 0; fi
  root="$(mktemp -d /tmp/ck-rootfs.XXXXXX)"
  trap 'rm -rf "$root"' EXIT
  echo "debootstrap bookworm -> $tag"
  debootstrap --variant=minbase bookworm "$root" "$mirror" >/tmp/ck-debootstrap.log 2>&1 \
    || { tail -20 /tmp/ck-debootstrap.log; exit 1; }
  # Same hygiene as the official slim images: no apt lists, caches, docs or logs in the layer.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*.log \
    "$root"/tmp/* "$root"/var/tmp/*
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb http://deb.debian.org/debian-security bookworm-security main\n' \
    "$mirror" "$mirror" >"$root/etc/apt/sources.list"
  tar -C "$root" -c . | "$docker_bin" import \
    -c 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["bash"]' - "$tag" >/dev/null
  echo "built $tag"
)

# build_from <tag> <dockerfile> <context files...>: build on base-debian from a private context dir.
build_from() (
  tag="$1" dockerfile="$2"
  shift 2
  ctx="$(mktemp -d /tmp/ck-airgap-ctx.XXXXXX)"
  trap 'rm -rf "$ctx"' EXIT
  cp "$here/$dockerfile" "$ctx/Dockerfile"
  for f in "$@"; do cp -p "$f" "$ctx/"; done
  # The base image id is an input too: a rebuilt base-debian invalidates everything on top of it.
  base_id="$("$docker_bin" image inspect -f '{{.Id}}' "$DEBIAN_TAG")"
  hash="$( (echo "$base_id"; cd "$ctx" && find . -type f | LC_ALL=C sort | xargs sha256sum) | sha256sum | cut -c1-16)"
  if have "$tag" && [ "$("$docker_bin" image inspect -f "{{index .Config.Labels \"$hash_label\"}}" "$tag")" = "$hash" ]; then
    echo "have $tag"
    exit 0
  fi
  secret=()
  [ -s "$ca_file" ] && secret=(--secret "id=ca,src=$ca_file")
  echo "building $tag"
  DOCKER_BUILDKIT=1 "$docker_bin" build -q -t "$tag" --label "$hash_label=$hash" \
    --build-arg "BASE_IMAGE=$DEBIAN_TAG" "${secret[@]}" "$ctx" >/dev/null
  echo "built $tag"
)

build_python() { build_from "$PYTHON_TAG" python.Dockerfile; }
build_airflow() {
  build_from "$AIRFLOW_TAG" airflow.Dockerfile "$here/entrypoint.sh" "$here/airflow-wait.py" \
    "$here/airflow-requirements.txt" "$constraints"
}
build_postgres() { build_from "$POSTGRES_TAG" postgres.Dockerfile "$here/postgres-entrypoint.sh"; }
build_redis() { build_from "$REDIS_TAG" redis.Dockerfile; }

[ $# -gt 0 ] || set -- all
for what in "$@"; do
  case "$what" in
    debian) build_debian ;;
    python) build_debian; build_python ;;
    airflow) build_debian; build_airflow ;;
    postgres) build_debian; build_postgres ;;
    redis) build_debian; build_redis ;;
    all)
      build_debian
      build_python
      build_postgres
      build_redis
      build_airflow
      for extra in "$here"/build-*.sh; do
        [ "$extra" = "$here/build-bases.sh" ] || { [ -e "$extra" ] && bash "$extra"; }
      done
      ;;
    *) echo "usage: $0 [debian|python|airflow|postgres|redis|all]..." >&2; exit 2 ;;
  esac
done
