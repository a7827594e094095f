#!/usr/bin/env bash
# Make a Docker engine, the compose v2 plugin and the air-gapped base images available.
#
# On a fresh Debian machine (root, apt reachable) this installs Debian's docker.io, debootstrap and
# the distribution registry, starts dockerd in the background, links the pinned compose v2 binary
# from the project venv as the `docker compose` plugin, and builds the base images. Where it cannot
# (not root, no apt), it says so and leaves it to the tests to skip or, under
# CONTAINERKIT_REQUIRE_DOCKER=1, to fail.
set -uo pipefail
cd "$(dirname "$0")/.."
venv="${VENV:-.venv}"
log() { printf '[setup-docker] %s\n' "$*"; }

engine_up() { timeout 10 docker info >/dev/null 2>&1; }

apt_pkgs=(docker.io debootstrap docker-registry apache2-utils)
missing=()
for p in "${apt_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq "${missing[@]}" >/dev/null \
      || log "apt-get install failed"
  else
    log "missing ${missing[*]} and cannot install them (needs root and apt-get)"
  fi
fi
# The Debian registry package starts a system service on install; the tests run their own instances.
systemctl stop docker-registry >/dev/null 2>&1 || true
pkill -f '^/usr/bin/docker-registry serve /etc/docker/registry/config.yml' >/dev/null 2>&1 || true

if ! engine_up && command -v dockerd >/dev/null && [ "$(id -u)" = 0 ]; then
  log "starting dockerd"
  nohup dockerd >/var/log/containerkit-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do engine_up && break; sleep 1; done
fi
if ! engine_up; then
  log "no Docker engine reachable; Docker tests will skip (or fail under CONTAINERKIT_REQUIRE_DOCKER=1)"
  exit 0
fi
log "engine: $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')"

if ! docker compose version >/dev/null 2>&1 && [ -x "$venv/bin/docker-compose" ]; then
  mkdir -p "$HOME/.docker/cli-plugins"
  ln -sf "$(readlink -f "$venv/bin/docker-compose")" "$HOME/.docker/cli-plugins/docker-compose"
fi
log "compose: $(docker compose version --short 2>/dev/null || echo 'not available')"

if command -v debootstrap >/dev/null; then
  bash docker/airgap/build-bases.sh "${CONTAINERKIT_BASES:-all}" || { log "base image build failed"; exit 1; }
else
  log "debootstrap missing: base images not built"
fi
