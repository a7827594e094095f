"""Worker loss on Kubernetes: the next try finds the pods an earlier try left, logs their evidence, then
deletes them, or re-attaches where stock ``reattach_on_restart`` does.

The first test is the real thing: an ``airflow tasks test`` process running a SecureKubernetesPodOperator
is ``kill -9``-ed while its pod runs on the local Docker-backed cluster (containerkit.testing); a second
``airflow tasks test`` of the same task instance is the next try.
"""

from __future__ import annotations

import datetime
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from containerkit.testing.cluster import LocalCluster

DAG_ID = "kpo_worker_loss"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))

DAG_FILE = textwrap.dedent(
    '''
    """A task whose pod sleeps CK_WORKER_LOSS_SLEEP seconds."""
    import datetime
    import os

    from airflow.sdk import DAG

    from containerkit.operators.kubernetes import SecureKubernetesPodOperator

    SLEEP = os.environ.get("CK_WORKER_LOSS_SLEEP", "0")
    SCRIPT = f"import time\\nprint('working, sleeping {SLEEP}s', flush=True)\\ntime.sleep({SLEEP})"

    with DAG("kpo_worker_loss", schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False):
        SecureKubernetesPodOperator(
            task_id="run",
            namespace=os.environ["CONTAINERKIT_NAMESPACE"],
            image=os.environ["CONTAINERKIT_PYTHON_IMAGE"],
            cmds=["python", "-c", SCRIPT],
            startup_check_interval_seconds=1,
            base_container_status_polling_interval=0.2,
            poll_interval=0.5,
            reattach_on_restart=False,
        )
    '''
)


@pytest.fixture
def task_env(airflow_db: Path, tmp_path: Path, python_image: str) -> dict[str, str]:
    """An Airflow home of its own for the task processes: a copy of the migrated test DB, one DAG."""
    source = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    if not source.startswith("sqlite:///"):
        pytest.skip(f"the task processes copy the SQLite test DB; this run uses {source.split(':')[0]}")
    home = tmp_path / "home"
    dags = tmp_path / "dags"
    home.mkdir()
    dags.mkdir()
    (dags / f"{DAG_ID}.py").write_text(DAG_FILE)
    with (
        sqlite3.connect(source.removeprefix("sqlite:///")) as src,
        sqlite3.connect(home / "airflow.db") as dst,
    ):
        src.backup(dst)
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "CONTAINERKIT_PYTHON_IMAGE": python_image,
    }


def _pod_log(cluster: LocalCluster, namespace: str, name: str) -> str:
    from kubernetes import config

    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
    try:
        from kubernetes.client import CoreV1Api

        return str(CoreV1Api(api).read_namespaced_pod_log(name, namespace, container="base"))
    except Exception:
        return ""
    finally:
        api.close()


def _wait_running(cluster: LocalCluster, namespace: str, process: subprocess.Popen[bytes], out: Path) -> str:
    """The name of the task's pod once it runs and has logged, while ``process`` still lives."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the first try ended early:\n{out.read_text()[-3000:]}"
        for pod in cluster.pods(namespace):
            name = pod["metadata"]["name"]
            if (pod.get("status") or {}).get("phase") == "Running" and "working" in _pod_log(
                cluster, namespace, name
            ):
                return str(name)
        time.sleep(0.5)
    raise AssertionError(f"the first try's pod never ran:\n{out.read_text()[-3000:]}")


def test_kill_9_of_the_task_process_then_the_next_try_logs_the_evidence_and_deletes_the_pod(
    cluster: LocalCluster, k8s_namespace: str, task_env: dict[str, str], tmp_path: Path
) -> None:
    command = [AIRFLOW, "tasks", "test", DAG_ID, "run", "2026-01-01"]
    first_out = tmp_path / "try1.log"
    with first_out.open("wb") as sink:
        first = subprocess.Popen(
            command,
            env={**task_env, "CK_WORKER_LOSS_SLEEP": "300"},
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        lost = _wait_running(cluster, k8s_namespace, first, first_out)
        os.killpg(first.pid, signal.SIGKILL)  # the worker is lost: no cleanup, no on_kill
        first.wait(30)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    left = {p["metadata"]["name"]: p["status"]["phase"] for p in cluster.pods(k8s_namespace)}
    assert left == {lost: "Running"}, "kill -9 left the pod running (the case under test)"

    second = subprocess.run(
        command,
        env={**task_env, "CK_WORKER_LOSS_SLEEP": "0"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = second.stdout + second.stderr
    assert second.returncode == 0, log[-4000:]
    assert "Found a pod of an earlier try (try_number" in log
    # The dead try's evidence, read before the pod was deleted.
    assert (
        f"pod {k8s_namespace}/{lost}: phase Running, container base running, exit code -, OOMKilled False"
        in log
    )
    assert "last log lines:\n    working, sleeping 300s" in log
    assert f"Deleting pod {k8s_namespace}/{lost} of an earlier try: nothing watches it any more" in log
    assert "working, sleeping 0s" in log  # the new try ran its own pod
    assert cluster.wait_for_no_pods(k8s_namespace, timeout=60) == []
    assert [c for c in cluster.engine_objects()["containers"] if f"-{k8s_namespace}-" in c] == []


LOST_TRY_SCRIPT = "import time\nprint('from the lost try', flush=True)\ntime.sleep(3)\nprint('lost try done')"


def test_a_running_pod_of_an_earlier_try_is_reattached_as_stock_does_and_the_log_says_so(
    cluster: LocalCluster,
    k8s_namespace: str,
    python_image: str,
    run_dag: Any,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A pod left by try 0 still runs when try 1 starts: reattach_on_restart follows it to the end."""
    from airflow.sdk import DAG

    from containerkit.operators.kubernetes import SecureKubernetesPodOperator

    planted: list[str] = []

    def leave_an_earlier_try(context: Any) -> None:
        """What a worker killed mid-run leaves: its pod, labelled for this task instance, try 0."""
        task = context["task"]
        pod = task.build_pod_request_obj(context)
        pod.metadata.labels["try_number"] = "0"
        pod.spec.containers[0].args = ["-c", LOST_TRY_SCRIPT]
        pod.metadata.name = f"{pod.metadata.name}-lost"
        task.pod_manager.create_pod(pod)
        planted.append(pod.metadata.name)

    with DAG(
        "kpo_worker_loss_reattach", schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False
    ) as dag:
        SecureKubernetesPodOperator(
            task_id="run",
            namespace=k8s_namespace,
            image=python_image,
            cmds=["python"],
            arguments=["-c", "print('a new pod: not expected')"],
            startup_check_interval_seconds=1,
            base_container_status_polling_interval=0.2,
            poll_interval=0.5,
            pre_execute=leave_an_earlier_try,
        )
    dagrun = run_dag(dag)
    ti = next(ti for ti in dagrun.get_task_instances() if ti.task_id == "run")
    out = "".join(capfd.readouterr()) + caplog.text
    assert ti.state == "success", out[-3000:]
    (name,) = planted
    assert f"Re-attaching to pod {k8s_namespace}/{name}" in out
    assert "as stock reattach_on_restart does" in out
    assert "lost try done" in out and "a new pod: not expected" not in out
    assert [p["metadata"]["name"] for p in cluster.submitted("Pod", k8s_namespace)] == [name]
    assert cluster.wait_for_no_pods(k8s_namespace, timeout=45) == []


def test_pods_of_other_mapped_instances_are_not_touched(
    cluster: LocalCluster,
    k8s_namespace: str,
    python_image: str,
    run_dag: Any,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Map index 0 starts while index 1's pod runs: same dag/task/run labels, not an earlier try of 0."""
    from airflow.sdk import DAG

    from containerkit.operators.kubernetes import SecureKubernetesPodOperator

    planted: list[str] = []

    def start_a_sibling(context: Any) -> None:
        task = context["task"]
        pod = task.build_pod_request_obj(context)
        pod.metadata.labels["map_index"] = "1"
        pod.metadata.name = f"{pod.metadata.name}-sibling"
        pod.spec.containers[0].args = ["-c", "import time; time.sleep(60)"]
        task.pod_manager.create_pod(pod)
        planted.append(pod.metadata.name)

    with DAG(
        "kpo_worker_loss_mapped", schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False
    ) as dag:
        SecureKubernetesPodOperator.partial(
            task_id="run",
            namespace=k8s_namespace,
            image=python_image,
            cmds=["python"],
            startup_check_interval_seconds=1,
            base_container_status_polling_interval=0.2,
            poll_interval=0.5,
            pre_execute=start_a_sibling,
        ).expand(arguments=[["-c", "print('index 0 ran')"]])
    dagrun = run_dag(dag)
    ti = next(ti for ti in dagrun.get_task_instances() if ti.task_id == "run")
    out = "".join(capfd.readouterr())
    assert ti.state == "success", out[-3000:]
    (sibling,) = planted
    assert "index 0 ran" in out and "earlier try" not in out
    deadline = time.monotonic() + 45  # index 0's own pod is deleted as it ends
    while len(cluster.pods(k8s_namespace)) > 1 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert [p["metadata"]["name"] for p in cluster.pods(k8s_namespace)] == [sibling]
    assert (cluster.get("Pod", k8s_namespace, sibling) or {}).get("status", {}).get("phase") == "Running"
