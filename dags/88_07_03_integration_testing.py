"""Integration testing with containers: Postgres and app containers on a private network, real queries.

**Problem.** Unit tests with a mocked database pass while the real thing fails: the driver cannot reach the
host name, the credentials are read from the wrong place, the schema migration and the queries disagree,
or two services that work alone cannot talk to each other. A shared staging database makes such tests
flaky and order-dependent.

**Practice.** Each test run starts its own throwaway dependencies as containers on a private network
(no route to anything else), runs the app's containers against them with the same hardening and secret
delivery as production, asserts on real query results, and tears everything down, also on failure.

**Where each sub-point is covered.**

- database connection: ``start_database`` starts Postgres (``CONTAINERKIT_POSTGRES_IMAGE``, default
  ``postgres:15``) hardened on an ``internal`` network, the password from a Secret file; waits for its
  healthcheck.
- service connectivity: ``load_orders`` (an app container on the network) checks the server answers
  by name (``pg_isready -h db``) before it loads; ``network_is_private`` asserts a container outside
  the network cannot reach it.
- inter-container communication: ``load_orders`` creates the schema and writes rows; ``report_totals``, a
  separate container, reads them back through the server.
- end-to-end tests: ``check_end_to_end`` asserts the exact rows and totals the second container saw.
- ``tear_down`` removes the containers, the network and the secret files whatever happened.

**When copying.** Swap the ``psql`` commands for your app image and its own checks; keep the network
``internal``, the password in a Secret file, and the tear-down on ``all_done``.

**Needs.** A Docker engine (``needs:docker``).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.docker import SecureDockerOperator
from airflow.sdk import dag, get_current_context, task

from containerkit.spec import SecretRef, SecurityProfile

POSTGRES_IMAGE = os.environ.get("CONTAINERKIT_POSTGRES_IMAGE", "postgres:15")
NETWORK = "ck-88-07-03"
DB_HOST = "ck-88-07-03-db"
SECRETS_DIR = "/tmp/containerkit-88-07-03/secrets"
LABELS = {"containerkit.example": "88_07_03"}
PASSWORD_FILE = "/run/secrets/db-password"
POSTGRES_USER = SecurityProfile.for_image_user("999:999")  # the image's own non-root uid (psql needs it)
PSQL = f'PGPASSWORD="$(cat {PASSWORD_FILE})" psql -h {DB_HOST} -U app -d app -v ON_ERROR_STOP=1 -At'
LOAD = f"""set -eu
pg_isready -h {DB_HOST} -t 10
{PSQL} <<'SQL'
CREATE TABLE orders (id integer PRIMARY KEY, customer text NOT NULL, cents integer NOT NULL);
INSERT INTO orders VALUES (1, 'ada', 1250), (2, 'grace', 990), (3, 'ada', 4000);
SQL
{PSQL} -c "SELECT count(*) FROM orders"
"""
REPORT = f"""set -eu
{PSQL} -F , -c "SELECT customer, count(*), sum(cents) FROM orders GROUP BY customer ORDER BY customer" \\
  | tr '\\n' ';'
"""


def _client_task(task_id: str, script: str, network: str = NETWORK) -> SecureDockerOperator:
    return SecureDockerOperator(
        task_id=task_id,
        image=POSTGRES_IMAGE,
        command=["sh", "-c", script],
        security=POSTGRES_USER,
        secret_refs=[SecretRef(secret="app-db", key="password", path=PASSWORD_FILE)],
        secrets_dir=SECRETS_DIR,
        network_mode=network,
        resources="xs",
        labels=LABELS,
    )


@dag(
    dag_id="88_07_03_integration_testing",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "testing", "intermediate", "success", "needs:docker"],
    doc_md=__doc__,
)
def integration_testing() -> None:
    @task
    def start_database() -> dict[str, Any]:
        import docker

        from containerkit.docker.run_settings import render_docker
        from containerkit.spec import ContainerSpec, EnvVar

        root = Path(SECRETS_DIR)
        shutil.rmtree(root, ignore_errors=True)
        (root / "app-db").mkdir(parents=True)
        password = root / "app-db" / "password"
        password.write_text(secrets.token_urlsafe(18))
        password.chmod(0o444)  # read by the server's and the clients' uid 999; the parent stays private
        root.parent.chmod(0o711)
        client = docker.from_env()
        with contextlib.suppress(docker.errors.NotFound):
            client.containers.get(DB_HOST).remove(force=True, v=True)
        with contextlib.suppress(docker.errors.NotFound):
            client.networks.get(NETWORK).remove()
        client.networks.create(NETWORK, internal=True, labels=LABELS)
        spec = ContainerSpec(
            image=POSTGRES_IMAGE,
            env=[
                EnvVar("POSTGRES_USER", "app"),
                EnvVar("POSTGRES_DB", "app"),
                EnvVar("POSTGRES_PASSWORD_FILE", PASSWORD_FILE, not_secret=True),  # a path, not a value
            ],
            secrets=[SecretRef(secret="app-db", key="password", path=PASSWORD_FILE)],
            security=POSTGRES_USER,
            resources="s",
        )
        settings = render_docker(spec, secrets_dir=SECRETS_DIR)
        host = settings.host_config_kwargs()
        # Data and socket directories as tmpfs owned by the server's uid: a throwaway test database.
        owned = "rw,nosuid,nodev,uid=999,gid=999,mode=0700"
        host["tmpfs"] = {
            **host["tmpfs"],
            "/var/lib/postgresql/data": f"{owned},size=256m",
            "/var/run/postgresql": f"{owned},size=1m",
        }
        created = client.api.create_container(
            POSTGRES_IMAGE,
            name=DB_HOST,
            user=settings.user,
            environment=settings.runtime_environment(),
            labels={**settings.labels, **LABELS},
            host_config=client.api.create_host_config(**host, network_mode=NETWORK),
        )
        client.api.start(created["Id"])
        db = client.containers.get(created["Id"])
        start = time.monotonic()
        while db.attrs["State"].get("Health", {}).get("Status") != "healthy":
            if time.monotonic() - start > 60 or db.status == "exited":
                raise AssertionError(f"Postgres not healthy: {db.logs(tail=20).decode(errors='replace')}")
            time.sleep(0.5)
            db.reload()
        return {"container": db.name, "healthy_after_seconds": round(time.monotonic() - start, 2)}

    load_orders = _client_task("load_orders", LOAD)
    report_totals = _client_task("report_totals", REPORT)

    @task
    def network_is_private() -> str:
        """A container on the default bridge must not reach the database at all."""
        from containerkit.diagnostics.model import ContainerTaskFailed

        outsider = _client_task("outsider", f"pg_isready -h {DB_HOST} -t 3", network="bridge")
        try:
            outsider.execute(get_current_context())
        except ContainerTaskFailed as exc:
            if exc.diagnosis.exit_code != 2:  # pg_isready: 2 = no response
                raise AssertionError(f"outsider failed for another reason: {exc.diagnosis.render()}") from exc
            return exc.diagnosis.summary
        raise AssertionError(f"a container outside {NETWORK} reached {DB_HOST}")

    @task
    def check_end_to_end(loaded: str, totals: str) -> dict[str, Any]:
        if loaded.strip() != "3":
            raise AssertionError(f"the loader saw {loaded!r} rows, expected 3")
        rows = [row for row in totals.strip().split(";") if row]
        if rows != ["ada,2,5250", "grace,1,990"]:
            raise AssertionError(f"the second container read {rows}, expected ['ada,2,5250', 'grace,1,990']")
        return {"rows_loaded": 3, "totals": rows}

    @task(trigger_rule="all_done")
    def tear_down() -> None:
        import docker

        client = docker.from_env()
        labels = [f"{k}={v}" for k, v in LABELS.items()]
        for container in client.containers.list(all=True, filters={"label": labels}):
            container.remove(force=True, v=True)
        with contextlib.suppress(docker.errors.NotFound):
            client.networks.get(NETWORK).remove()
        shutil.rmtree(Path(SECRETS_DIR).parent, ignore_errors=True)

    @task(trigger_rule="one_failed")
    def fail_run_if_a_task_failed() -> None:
        """The tear-down leaf succeeds whatever happened; this leaf makes any other failure fail the run."""
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException("an integration check failed: read the failed task's log")

    database = start_database()
    private = network_is_private()
    database >> [load_orders, private]
    load_orders >> report_totals
    checked = check_end_to_end(load_orders.output, report_totals.output)
    [checked, private] >> tear_down()
    [database, load_orders, report_totals, private, checked] >> fail_run_if_a_task_failed()


integration_testing()
