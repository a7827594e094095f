# An apache/airflow:3.3.2-python3.11 stand-in built from Debian packages and PyPI only (air-gapped sites,
# and this project's tests). The official image's contract is kept, so `docker/Dockerfile` and the compose
# files run unchanged on either:
#   * user `airflow`, uid 50000, gid 0 (any uid with gid 0 works: home and AIRFLOW_HOME are group-writable)
#   * AIRFLOW_HOME=/opt/airflow (dags/, logs/, plugins/, config/), WORKDIR /opt/airflow
#   * `airflow`, `python` and `pip` on PATH from /home/airflow/.local/bin; `pip install` as `airflow` works
#   * ENTRYPOINT dumb-init -> /entrypoint: waits for the database (and the broker for `celery`), runs
#     `airflow <args>` for Airflow subcommands, passes `bash`/`python` through
# Build context: a directory holding this file, entrypoint.sh, airflow-wait.py, airflow-requirements.txt and
# the project's constraints.txt (build-bases.sh assembles it). PyPI through a TLS-intercepting proxy needs
# the proxy's CA as the optional BuildKit secret `ca`; it is used for that RUN only, never stored.
# containerkit: ignore=DF-002 the base is built locally by build-bases.sh and never pushed: it has no registry digest
ARG BASE_IMAGE=containerkit/base-debian:12

FROM ${BASE_IMAGE} AS venv
# apt versions unpinned on purpose: Debian point releases retire old versions, so exact pins break rebuilds.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY constraints.txt airflow-requirements.txt /tmp/pins/
# The venv lives where the official image puts `pip install --user` packages, so PATH is the same.
RUN --mount=type=secret,id=ca,required=false \
    if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca REQUESTS_CA_BUNDLE=/run/secrets/ca; fi \
 && python3 -m venv /home/airflow/.local \
 && /home/airflow/.local/bin/pip install --no-cache-dir --disable-pip-version-check \
      -c /tmp/pins/constraints.txt -r /tmp/pins/airflow-requirements.txt \
 && find /home/airflow/.local -name '__pycache__' -prune -exec rm -rf {} +

FROM ${BASE_IMAGE}
ARG AIRFLOW_UID=50000
ENV AIRFLOW_HOME=/opt/airflow \
    AIRFLOW_USER_HOME_DIR=/home/airflow \
    AIRFLOW_UID=${AIRFLOW_UID} \
    AIRFLOW_VERSION=3.3.2 \
    PATH=/home/airflow/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# apt versions unpinned on purpose: Debian point releases retire old versions, so exact pins break rebuilds.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ca-certificates curl dumb-init netbase tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s /usr/bin/python3 /usr/local/bin/python \
 && useradd --uid "${AIRFLOW_UID}" --gid 0 --home-dir /home/airflow --create-home --shell /bin/bash airflow \
 && mkdir -p /opt/airflow/dags /opt/airflow/logs /opt/airflow/plugins /opt/airflow/config \
 && chown -R "${AIRFLOW_UID}:0" /opt/airflow /home/airflow \
 && chmod -R g+rwX /opt/airflow /home/airflow
COPY --from=venv --chown=${AIRFLOW_UID}:0 /home/airflow/.local /home/airflow/.local
COPY entrypoint.sh /entrypoint
COPY airflow-wait.py /usr/local/lib/containerkit/airflow-wait.py
USER ${AIRFLOW_UID}:0
WORKDIR /opt/airflow
ENTRYPOINT ["/usr/bin/dumb-init", "--", "/entrypoint"]
CMD []
