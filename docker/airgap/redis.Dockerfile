# Redis 7 from Debian packages (a redis:7 stand-in for sites without Docker Hub): non-root (uid/gid 999 like
# the official image), data in /data, no config file needed, `redis-cli ping` for health checks.
# Protected mode is off because the server is only reachable on the compose network (no published port).
# containerkit: ignore=DF-002 the base is built locally by build-bases.sh and never pushed: it has no registry digest
ARG BASE_IMAGE=containerkit/base-debian:12
FROM ${BASE_IMAGE}
# apt versions unpinned on purpose: Debian point releases retire old versions, so exact pins break rebuilds.
# hadolint ignore=DL3008
RUN groupadd --system --gid 999 redis \
 && useradd --system --uid 999 --gid 999 --home-dir /data --shell /usr/sbin/nologin redis \
 && apt-get update \
 && apt-get install -y --no-install-recommends redis-server redis-tools \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /data \
 && chown redis:redis /data
USER 999:999
WORKDIR /data
EXPOSE 6379
VOLUME ["/data"]
HEALTHCHECK --interval=10s --timeout=5s --retries=5 CMD ["redis-cli", "ping"]
CMD ["redis-server", "--protected-mode", "no", "--dir", "/data"]
