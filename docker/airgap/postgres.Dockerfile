# PostgreSQL 15 from Debian packages (a postgres:15 stand-in for sites without Docker Hub).
# Contract kept from the official image: POSTGRES_USER / POSTGRES_PASSWORD(_FILE) / POSTGRES_DB initialise an
# empty PGDATA on first start, PGDATA=/var/lib/postgresql/data, port 5432, uid/gid 999, `pg_isready` for
# health checks. Unlike the official image it never runs as root: the data volume is created owned by 999.
# containerkit: ignore=DF-002 the base is built locally by build-bases.sh and never pushed: it has no registry digest
ARG BASE_IMAGE=containerkit/base-debian:12
FROM ${BASE_IMAGE}
# apt versions unpinned on purpose: Debian point releases retire old versions, so exact pins break rebuilds.
# hadolint ignore=DL3008
RUN groupadd --system --gid 999 postgres \
 && useradd --system --uid 999 --gid 999 --home-dir /var/lib/postgresql --shell /bin/bash postgres \
 && mkdir -p /etc/postgresql-common/createcluster.d \
 && echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/containerkit.conf \
 && apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \
 && chmod 700 /var/lib/postgresql/data
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data
USER 999:999
EXPOSE 5432
VOLUME ["/var/lib/postgresql/data"]
STOPSIGNAL SIGINT
HEALTHCHECK --interval=10s --timeout=5s --retries=5 CMD ["pg_isready", "-h", "127.0.0.1", "-q"]
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint"]
CMD ["postgres"]
