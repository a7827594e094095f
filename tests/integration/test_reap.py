"""``containerkit reap`` against a real ``airflow api-server`` (SQLite) and real containers and pods.

One api-server per module reads the test process's metadata DB; the task-instance states come from a
real DAG run written through Airflow's ORM. Every container carries ``containerkit.test=reap`` and
every reap is scoped to that label, so other tests' containers on the engine are never looked at.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import requests
import yaml
from click.testing import CliRunner

from containerkit.cli.reap import reap as reap_command

TEST_LABEL = "containerkit.test=reap"
DAG_ID = "ck_reap_states"
RUN = "manual__2026-12-02T00:00:00+00:00"  # label-unsafe (':' and '+'): pods carry its hashed form
USER, PASSWORD = "reaper", "reaper-" + secrets.token_hex(8)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def api_server(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``airflow api-server`` (core API only) on the test DB, with a viewer user; stopped after."""
    home = tmp_path_factory.mktemp("reap-api")
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({USER: PASSWORD}))
    port = _free_port()
    env = {
        **os.environ,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
    }
    log = (home / "api-server.log").open("wb")
    airflow = str(Path(sys.executable).with_name("airflow"))
    process = subprocess.Popen(
        [
            airflow,
            "api-server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--apps",
            "core",
            "--workers",
            "1",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"{url}/api/v2/version", timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"api-server did not start: {(home / 'api-server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        log.close()


# task id -> (state, try number) of the task instances in run RUN; "mapped" has two mapped instances.
STATES: dict[str, tuple[str | None, int]] = {
    "live": ("running", 1),
    "deferred": ("deferred", 1),
    "done": ("success", 1),
    "failed": ("failed", 1),
    "retried": ("running", 2),
    "cleared": (None, 1),
}
MAPPED: dict[int, tuple[str, int]] = {0: ("running", 1), 1: ("success", 1)}


@pytest.fixture(scope="module")
def task_states(airflow_db: Path) -> dict[str, Any]:
    """A DAG run of ``ck_reap_states`` whose task instances are in the states above."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models.dagrun import get_or_create_dagrun
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.models.taskinstance import TaskInstance
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunTriggeredByType

    with DAG(DAG_ID, schedule=None, start_date=dt.datetime(2026, 1, 1), catchup=False) as dag:
        for task_id in (*STATES, "mapped"):
            EmptyOperator(task_id=task_id)
    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(collect_dags=False)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    scheduler_dag = SerializedDagModel.get_dag(DAG_ID)
    assert scheduler_dag is not None
    now = dt.datetime.now(dt.UTC)
    with create_session() as session:
        run = get_or_create_dagrun(
            dag=scheduler_dag,
            run_id=RUN,
            logical_date=None,
            data_interval=None,
            run_after=now,
            conf=None,
            triggered_by=DagRunTriggeredByType.TEST,
            triggering_user_name="test_reap",
            start_date=now,
            session=session,
        )
        session.flush()
        tis = {ti.task_id: ti for ti in run.get_task_instances(session=session)}
        for task_id, (state, try_number) in STATES.items():
            tis[task_id].state = state
            tis[task_id].try_number = try_number
        template = tis["mapped"]
        for index, (state, try_number) in MAPPED.items():
            ti = (
                template
                if index == 0
                else TaskInstance(
                    scheduler_dag.get_task("mapped"),
                    run_id=RUN,
                    map_index=index,
                    dag_version_id=template.dag_version_id,
                )
            )
            ti.map_index, ti.state, ti.try_number = index, state, try_number
            session.add(ti)
    return {"run_id": RUN}


@pytest.fixture
def containers(docker_client: docker.DockerClient, python_image: str) -> Iterator[dict[str, Any]]:
    """Started as each try's task container would be; every one is removed afterwards."""
    made: dict[str, Any] = {}

    def start(
        name: str,
        task_id: str,
        try_number: int,
        *,
        map_index: int = -1,
        dag_id: str = DAG_ID,
        run_id: str = RUN,
        command: list[str] | None = None,
    ) -> Any:
        labels = {
            "containerkit.managed": "true",
            "containerkit.test": "reap",
            "containerkit.dag_id": dag_id,
            "containerkit.task_id": task_id,
            "containerkit.run_id": run_id,
            "containerkit.try_number": str(try_number),
            "containerkit.map_index": str(map_index),
        }
        made[name] = docker_client.containers.run(
            python_image,
            command or ["sleep", "300"],
            detach=True,
            labels=labels,
            name=f"ck-reap-{name}-{secrets.token_hex(3)}",
        )
        return made[name]

    yield {"start": start, "made": made}
    for container in docker_client.containers.list(all=True, filters={"label": TEST_LABEL}):
        container.remove(force=True, v=True)


def _remaining(docker_client: docker.DockerClient, made: dict[str, Any]) -> set[str]:
    ids = {c.id for c in docker_client.containers.list(all=True, filters={"label": TEST_LABEL})}
    return {name for name, c in made.items() if c.id in ids}


def _reap(url: str, *args: str, **env: str) -> Any:
    base = {
        "CONTAINERKIT_AIRFLOW_API_URL": url,
        "CONTAINERKIT_AIRFLOW_API_USERNAME": USER,
        "CONTAINERKIT_AIRFLOW_API_PASSWORD": PASSWORD,
    }
    return CliRunner().invoke(reap_command, ["--label", TEST_LABEL, *args], env={**base, **env})


def _start_mix(start: Any) -> None:
    start("live", "live", 1)
    start("deferred", "deferred", 1)
    start("done", "done", 1)
    start("failed", "failed", 1, command=["sh", "-c", "echo giving up; exit 3"])
    start("retried_old", "retried", 1)
    start("retried_current", "retried", 2)
    start("cleared", "cleared", 1)
    start("mapped_0", "mapped", 1, map_index=0)
    start("mapped_1", "mapped", 1, map_index=1)
    start("run_deleted", "live", 1, run_id="manual__2025-01-01T00:00:00+00:00")
    start("other_deployment", "work", 1, dag_id="ck_reap_not_in_this_airflow")


LIVE = {"live", "deferred", "retried_current", "mapped_0", "other_deployment"}
DEAD = {"done", "failed", "retried_old", "cleared", "mapped_1", "run_deleted"}


def test_reap_removes_exactly_the_containers_of_tries_that_no_longer_run(
    api_server: str,
    task_states: dict[str, Any],
    containers: dict[str, Any],
    docker_client: docker.DockerClient,
) -> None:
    _start_mix(containers["start"])
    made = containers["made"]
    made["failed"].wait(timeout=60)

    young = _reap(api_server, "--min-age", "1h")
    assert young.exit_code == 0, young.output
    assert _remaining(docker_client, made) == LIVE | DEAD
    assert young.output.count("younger than the minimum age") == len(LIVE | DEAD)

    dry = _reap(api_server, "--min-age", "0", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert _remaining(docker_client, made) == LIVE | DEAD
    would = {name for name, c in made.items() if f"would remove container {c.id[:12]} " in dry.output}
    assert would == DEAD
    assert "dry run: 6 would be removed, 5 kept (nothing was removed)" in dry.output

    result = _reap(api_server, "--min-age", "0")
    assert result.exit_code == 0, result.output
    assert _remaining(docker_client, made) == LIVE
    lines = {
        name: next(line for line in result.output.splitlines() if c.id[:12] in line)
        for name, c in made.items()
    }
    assert (
        lines["done"].startswith("removed container")
        and "the task instance is success (try 1)" in lines["done"]
    )
    assert "the task instance is failed (try 1)" in lines["failed"]
    assert "exit code 3, OOMKilled False; last log line: 'giving up'" in lines["failed"]
    assert "the task instance is running with try 2, not try 1" in lines["retried_old"]
    assert "the task instance is none (cleared) (try 1)" in lines["cleared"]
    assert "the task instance is success (try 1)" in lines["mapped_1"]
    assert "no such task instance (its DAG run was deleted)" in lines["run_deleted"]
    assert lines["live"].startswith("kept") and "the task instance is running (try 1)" in lines["live"]
    assert "the task instance is deferred (try 1)" in lines["deferred"]
    assert "the task instance is running (try 2)" in lines["retried_current"]
    assert "knows no DAG 'ck_reap_not_in_this_airflow'" in lines["other_deployment"]
    assert "6 removed, 5 kept" in result.output

    again = _reap(api_server, "--min-age", "0", "--include-unknown-dags")
    assert again.exit_code == 0, again.output
    assert _remaining(docker_client, made) == LIVE - {"other_deployment"}


def test_unreachable_api_and_bad_credentials_name_the_setting_and_remove_nothing(
    api_server: str,
    task_states: dict[str, Any],
    containers: dict[str, Any],
    docker_client: docker.DockerClient,
) -> None:
    containers["start"]("done", "done", 1)
    made = containers["made"]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    not_airflow = f"http://127.0.0.1:{server.server_address[1]}"
    cases = {
        "unreachable": (
            {"CONTAINERKIT_AIRFLOW_API_URL": f"http://127.0.0.1:{_free_port()}"},
            "cannot reach the Airflow API at http://127.0.0.1:",
            "check --api-url / CONTAINERKIT_AIRFLOW_API_URL",
        ),
        "bad password": (
            {"CONTAINERKIT_AIRFLOW_API_PASSWORD": "wrong"},
            f"refused user '{USER}' (401 Invalid credentials)",
            "check --username / CONTAINERKIT_AIRFLOW_API_USERNAME and --password",
        ),
        "bad token": (
            {"CONTAINERKIT_AIRFLOW_API_TOKEN": "not-a-jwt"},
            "refused the token (403 Invalid JWT token)",
            "--token / CONTAINERKIT_AIRFLOW_API_TOKEN is expired or from another deployment",
        ),
        "not the api-server": (
            {"CONTAINERKIT_AIRFLOW_API_URL": not_airflow},
            f"no Airflow 3 REST API at {not_airflow}/api/v2 (404",
            "to the api-server's base URL (Airflow 3.x; without /api/v2)",
        ),
    }
    for name, (env, problem, fix) in cases.items():
        result = _reap(api_server, "--min-age", "0", **env)
        assert result.exit_code == 2, (name, result.output)
        assert problem in result.output and fix in result.output, (name, result.output)
        assert "Traceback" not in result.output, name
    server.shutdown()
    assert _remaining(docker_client, made) == {"done"}

    # The real command line against a server that accepts and never answers: one line on stderr, no
    # traceback, and it returns after --timeout instead of hanging.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        started = time.monotonic()
        cli = subprocess.run(
            [
                str(Path(sys.executable).with_name("containerkit")),
                "reap",
                "--label",
                TEST_LABEL,
                "--timeout",
                "2",
            ],
            env={**os.environ, "CONTAINERKIT_AIRFLOW_API_URL": f"http://127.0.0.1:{silent.getsockname()[1]}"},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert cli.returncode == 2, cli.stderr
    assert time.monotonic() - started < 45
    assert cli.stderr.startswith("containerkit reap: error: the Airflow API at http://127.0.0.1:"), cli.stderr
    assert "did not answer within 2 s" in cli.stderr and "raise --timeout" in cli.stderr, cli.stderr
    assert "Traceback" not in cli.stderr


def test_reap_pods_matches_the_stock_label_safe_run_id(
    api_server: str,
    task_states: dict[str, Any],
    local_cluster: Any,
    k8s_namespace: str,
    tmp_path: Path,
    python_image: str,
) -> None:
    """KPO pods carry label-safe ids (the run id hashed); a pod of any try of a live instance is kept."""
    from airflow.providers.cncf.kubernetes.pod_generator import make_safe_label_value

    safe_run = make_safe_label_value(RUN)
    assert safe_run != RUN

    def pod(name: str, task_id: str, try_number: int, map_index: int | None = None) -> dict[str, Any]:
        labels = {
            "kubernetes_pod_operator": "True",
            "dag_id": DAG_ID,
            "task_id": task_id,
            "run_id": safe_run,
            "try_number": str(try_number),
            "containerkit.test": "reap",
        }
        if map_index is not None:
            labels["map_index"] = str(map_index)
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": k8s_namespace, "labels": labels},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "base", "image": python_image, "command": ["sleep", "300"]}],
            },
        }

    wanted = {
        "live": pod("live", "live", 1),
        "reattachable": pod("reattachable", "retried", 1),
        "done": pod("done", "done", 1),
        "mapped-0": pod("mapped-0", "mapped", 1, 0),
        "mapped-1": pod("mapped-1", "mapped", 1, 1),
    }
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(local_cluster.kubeconfig_dict(k8s_namespace)))
    from kubernetes import client, config

    core_v1 = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))
    for body in wanted.values():
        core_v1.create_namespaced_pod(k8s_namespace, body)
    result = _reap(
        api_server,
        "--min-age",
        "0",
        "--no-docker",
        "--kubeconfig",
        str(kubeconfig),
        "--namespace",
        k8s_namespace,
    )
    assert result.exit_code == 0, result.output
    pods = local_cluster.pods(k8s_namespace)
    left = {p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")}
    assert left == {"live", "reattachable", "mapped-0"}, result.output
    assert f"removed pod {k8s_namespace}/done " in result.output
    lines = {
        name: next(line for line in result.output.splitlines() if f"/{name} " in line) for name in wanted
    }
    assert "the task instance is success (try 1)" in lines["done"]
    assert "the task instance is success (try 1)" in lines["mapped-1"]
    assert "the task instance is running (try 2)" in result.output  # the try-1 pod of a running try 2: kept


def test_the_reference_dag_reaps_through_its_connection(
    api_server: str,
    task_states: dict[str, Any],
    containers: dict[str, Any],
    docker_client: docker.DockerClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    containers["start"]("done", "done", 1)
    containers["start"]("live", "live", 1)
    host = api_server.removeprefix("http://")
    monkeypatch.setenv("AIRFLOW_CONN_CONTAINERKIT_AIRFLOW_API", f"http://{USER}:{PASSWORD}@{host}")
    monkeypatch.delenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", raising=False)  # pods: covered above
    path = Path(__file__).resolve().parents[2] / "dags/88_11_07_reap_orphaned_containers.py"
    dag = DagBag(str(path)).dags["88_11_07_reap_orphaned_containers"]
    run = dag.test(run_conf={"min_age_minutes": 0, "labels": [TEST_LABEL], "dry_run": False})
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert states == {"reap_docker_containers": "success", "reap_kubernetes_pods": "skipped"}
    assert _remaining(docker_client, containers["made"]) == {"live"}
