# A python:3.11-slim stand-in built from Debian packages only (air-gapped sites, and this project's tests).
# Contract kept from the official image: `python` on PATH at /usr/local/bin/python, C.UTF-8, a non-root
# default user (uid 50000, gid 0) so read-only, non-root task containers work unchanged.
# containerkit: ignore=DF-002 the base is built locally by build-bases.sh and never pushed: it has no registry digest
ARG BASE_IMAGE=containerkit/base-debian:12
FROM ${BASE_IMAGE}
# apt versions unpinned on purpose: Debian point releases retire old versions, so exact pins break rebuilds.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s /usr/bin/python3 /usr/local/bin/python \
 && useradd --uid 50000 --gid 0 --home-dir /home/app --create-home --shell /usr/sbin/nologin app
USER 50000:0
WORKDIR /home/app
HEALTHCHECK NONE
# Under an outer init (docker run --init, which SecureDockerOperator uses) tini is not PID 1: as a
# subreaper it still reaps, without warning on every task log.
ENV TINI_SUBREAPER=1
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["python"]
