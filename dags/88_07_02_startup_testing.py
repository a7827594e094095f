"""Testing container startup: the Airflow image against its database; time to healthy, config, deps.

**Problem.** An image that builds and passes its unit tests can still fail to *start*: the database is
not reachable yet (or never), a setting from the environment is silently ignored, a migration takes
longer than the probe allows, or the health endpoint stays red. Those show up as crash loops after the
deploy.

**Practice.** Start the real image the way production does (hardened, sized, secrets as files, a real
database on a private network) and measure: the wait for each dependency, the migration, the time until
the health endpoint is green; check the configuration the image actually loaded. Fail when startup
exceeds its budget, so the probes' ``initialDelaySeconds`` / ``startupProbe`` can be set from numbers.

**Where each sub-point is covered.**

- dependency availability: ``start_database`` starts Postgres (``CONTAINERKIT_POSTGRES_IMAGE``, default
  ``postgres:15``) hardened on a private network and waits for its healthcheck; inside the Airflow
  container ``startup_test`` waits for the database with a real ``SELECT 1`` and times it.
- startup time / health check pass: ``startup_test`` runs ``airflow db migrate``, starts
  ``airflow api-server`` and polls ``/api/v2/monitor/health`` until the metadatabase is healthy, timing
  each phase; ``check_startup`` fails the run past ``startup_budget_seconds``.
- configuration loading: ``check_startup`` asserts the values the image loaded from env and from a
  ``_CMD`` secret file (executor, parallelism, the database host, never the password) and that the
  running server answers ``/api/v2/version`` with the image's Airflow version.
- ``tear_down`` removes the containers, the network and the secret files whatever happened.

**When copying.** Set ``CONTAINERKIT_AIRFLOW_IMAGE`` to your image (default
``apache/airflow:3.3.2-python3.11``) and the budget to what your probes allow; the settings under test
are in ``AIRFLOW_ENV``.

**Needs.** A Docker engine (``needs:docker``).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.docker import SecureDockerOperator
from airflow.sdk import Param, dag, get_current_context, task

from containerkit.spec import SecretRef

AIRFLOW_IMAGE = os.environ.get("CONTAINERKIT_AIRFLOW_IMAGE", "apache/airflow:3.3.2-python3.11")
POSTGRES_IMAGE = os.environ.get("CONTAINERKIT_POSTGRES_IMAGE", "postgres:15")
NETWORK = "ck-88-07-02"
DB_HOST = "ck-88-07-02-db"
SECRETS_DIR = "/tmp/containerkit-88-07-02/secrets"
LABELS = {"containerkit.example": "88_07_02"}
AIRFLOW_ENV = {
    "AIRFLOW_HOME": "/tmp/airflow",  # the root filesystem is read-only; /tmp is the task's tmpfs
    "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
    "AIRFLOW__CORE__PARALLELISM": "7",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD": "cat /run/secrets/sql_alchemy_conn",
    "AIRFLOW__LOGGING__BASE_LOG_FOLDER": "/tmp/airflow/logs",
}
STARTUP_TEST = r"""
import json, subprocess, sys, time, urllib.request
t0 = time.monotonic()
phases = {}
from airflow.configuration import conf
from sqlalchemy import create_engine, text
url = conf.get("database", "sql_alchemy_conn")
loaded = {
    "executor": conf.get("core", "executor"),
    "parallelism": conf.getint("core", "parallelism"),
    "database_host": url.split("@", 1)[-1].split("/", 1)[0],
}
phases["config_loaded"] = time.monotonic() - t0
engine = create_engine(url)
for attempt in range(60):
    try:
        with engine.connect() as db:
            db.execute(text("SELECT 1"))
        break
    except Exception as exc:
        last = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        time.sleep(1)
else:
    print(json.dumps({"error": f"database never answered: {last}"})); sys.exit(3)
engine.dispose()
phases["database_reachable"] = time.monotonic() - t0
subprocess.run(["airflow", "db", "migrate"], check=True, capture_output=True)
phases["migrated"] = time.monotonic() - t0
server_log = open("/tmp/api-server.log", "w+")
server = subprocess.Popen(["airflow", "api-server", "--port", "8080", "--workers", "1"],
                          stdout=server_log, stderr=subprocess.STDOUT)
health = None
try:
    while time.monotonic() - t0 < 600 and server.poll() is None:
        try:
            with urllib.request.urlopen("http://127.0.0.1:8080/api/v2/monitor/health", timeout=2) as r:
                health = json.load(r)
            if health["metadatabase"]["status"] == "healthy":
                break
        except OSError:
            pass
        time.sleep(0.5)
    phases["healthy"] = time.monotonic() - t0
    if not health or health["metadatabase"]["status"] != "healthy":
        server_log.seek(0)
        tail = server_log.read().splitlines()[-15:]
        print("\n".join(tail))
        print(json.dumps({"error": "api-server never healthy", "exit_code": server.poll(), "health": health}))
        sys.exit(4)
    with urllib.request.urlopen("http://127.0.0.1:8080/api/v2/version", timeout=5) as r:
        version = json.load(r)["version"]
finally:
    server.terminate()  # a clean stop is part of the test, but a slow one must not hide the result
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
print(json.dumps({"phases": {k: round(v, 2) for k, v in phases.items()}, "loaded": loaded,
                  "health": health, "version": version}))
"""


def _service(client: Any, name: str, spec: Any, network: str, secrets_dir: str, tmpfs: dict[str, str]) -> Any:
    """A long-running container with the settings containerkit renders for ``spec`` (hardened, sized)."""
    from containerkit.docker.run_settings import render_docker

    settings = render_docker(spec, secrets_dir=secrets_dir)
    kwargs = settings.host_config_kwargs()
    kwargs["tmpfs"] = {**kwargs["tmpfs"], **tmpfs}
    host = client.api.create_host_config(**kwargs, network_mode=network)
    created = client.api.create_container(
        spec.image.reference if hasattr(spec.image, "reference") else str(spec.image),
        name=name,
        command=list(settings.command) if settings.command else None,
        user=settings.user,
        environment=settings.runtime_environment(),
        labels={**settings.labels, **LABELS},
        healthcheck=settings.healthcheck,
        host_config=host,
    )
    client.api.start(created["Id"])
    return client.containers.get(created["Id"])


@dag(
    dag_id="88_07_02_startup_testing",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "testing", "intermediate", "success", "needs:docker"],
    params={
        "startup_budget_seconds": Param(240, type="integer", minimum=1, description="Start to healthy, s."),
    },
    doc_md=__doc__,
)
def startup_testing() -> None:
    @task
    def start_database() -> dict[str, Any]:
        import docker

        from containerkit.spec import ContainerSpec, EnvVar, SecurityProfile

        password = secrets.token_urlsafe(18)
        root = Path(SECRETS_DIR)
        shutil.rmtree(root, ignore_errors=True)
        for key, value in {
            "pg/password": password,
            "airflow/sql_alchemy_conn": f"postgresql+psycopg2://airflow:{password}@{DB_HOST}:5432/airflow",
        }.items():
            path = root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(value)  # no newline: a _CMD value is taken verbatim
            path.chmod(0o444)  # read by uid 999 (postgres) and 50000 (airflow); the directory is private
        root.parent.chmod(0o711)
        client = docker.from_env()
        with contextlib.suppress(docker.errors.NotFound):
            client.containers.get(DB_HOST).remove(force=True)
        with contextlib.suppress(docker.errors.NotFound):
            client.networks.get(NETWORK).remove()
        client.networks.create(NETWORK, internal=True, labels=LABELS)
        spec = ContainerSpec(
            image=POSTGRES_IMAGE,
            env=[
                EnvVar("POSTGRES_USER", "airflow"),
                EnvVar("POSTGRES_DB", "airflow"),
                EnvVar("PGDATA", "/var/lib/postgresql/data"),
                EnvVar("POSTGRES_PASSWORD_FILE", "/run/secrets/pg-password", not_secret=True),  # a path
            ],
            secrets=[SecretRef(secret="pg", key="password", path="/run/secrets/pg-password")],
            security=SecurityProfile.for_image_user("999:999"),
            resources="s",
        )
        start = time.monotonic()
        # Data and socket directories as tmpfs owned by the server's uid (a throwaway test database).
        owned = "rw,nosuid,nodev,uid=999,gid=999,mode=0700"
        tmpfs = {"/var/lib/postgresql/data": f"{owned},size=256m", "/var/run/postgresql": f"{owned},size=1m"}
        db = _service(client, DB_HOST, spec, NETWORK, SECRETS_DIR, tmpfs=tmpfs)
        while db.attrs["State"].get("Health", {}).get("Status") != "healthy":
            if time.monotonic() - start > 60 or db.status == "exited":
                raise AssertionError(f"Postgres not healthy after 60 s: {db.logs(tail=20).decode()}")
            time.sleep(0.5)
            db.reload()
        return {"container": db.name, "healthy_after_seconds": round(time.monotonic() - start, 2)}

    startup_test = SecureDockerOperator(
        task_id="startup_test",
        image=AIRFLOW_IMAGE,
        command=["python", "-c", STARTUP_TEST],
        environment=AIRFLOW_ENV,
        secret_refs=[SecretRef("airflow", "sql_alchemy_conn", path="/run/secrets/sql_alchemy_conn")],
        secrets_dir=SECRETS_DIR,
        network_mode=NETWORK,
        resources={"preset": "m", "memory": "1536Mi"},
        labels=LABELS,
    )

    @task
    def check_startup(database: dict[str, Any], output: Any) -> dict[str, Any]:
        report = output if isinstance(output, dict) else json.loads(output)
        budget = get_current_context()["params"]["startup_budget_seconds"]
        phases = report["phases"]
        print("startup phases (s after start): " + ", ".join(f"{k}={v}" for k, v in phases.items()))
        problems = []
        if report["health"] is None or report["health"]["metadatabase"]["status"] != "healthy":
            problems.append(f"health endpoint never reported a healthy metadatabase: {report['health']}")
        if phases["healthy"] > budget:
            problems.append(f"healthy after {phases['healthy']} s, budget {budget} s")
        want = {"executor": "LocalExecutor", "parallelism": 7, "database_host": f"{DB_HOST}:5432"}
        if report["loaded"] != want:
            problems.append(f"loaded configuration {report['loaded']}, expected {want}")
        if not str(report["version"]).startswith("3."):
            problems.append(f"the API reports Airflow {report['version']}")
        if problems:
            raise AssertionError("; ".join(problems))
        return {"database": database["healthy_after_seconds"], **phases, "version": report["version"]}

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

        raise AirflowFailException("a startup check failed: read the failed task's log")

    database = start_database()
    database >> startup_test
    checked = check_startup(database, startup_test.output)
    checked >> tear_down()
    [database, startup_test, checked] >> fail_run_if_a_task_failed()


startup_testing()
