"""``kill -9`` of a real ``airflow tasks test`` process mid-run, then the next try (Docker).

The dead try's container keeps running (nothing cleaned it up); the next try finds it by its labels,
writes its evidence (status, exit code, OOM flag, last log lines) into its own log, removes it, and runs.
The Airflow processes use a copy of the test DB and a DAG folder of their own; the try numbers are
advanced in the DB as the scheduler would after a heartbeat timeout.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

DAG_ID = "ck_worker_kill"
RUN_ID = "ck-worker-kill"
LABEL = "containerkit.test=workerkill"

DAG_FILE = """
import datetime
from airflow.sdk import DAG
from containerkit.operators.docker import SecureDockerOperator

STEPS = (
    "{% if ti.try_number == 1 %}echo 'try 1: halfway through batch 3'; sleep 300"
    "{% else %}echo 'try {{ ti.try_number }}: all batches done'{% endif %}"
)
with DAG("ck_worker_kill", schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False):
    SecureDockerOperator(
        task_id="work",
        image="IMAGE",
        command=["sh", "-c", STEPS],
        labels={"containerkit.test": "workerkill"},
        retries=2,
    )
"""

SETUP = """
import datetime as dt, sys
from airflow.dag_processing.bundles.manager import DagBundlesManager
from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
from airflow.models.dagrun import get_or_create_dagrun
from airflow.models.serialized_dag import SerializedDagModel
from airflow.utils.session import create_session
from airflow.utils.types import DagRunTriggeredByType

DagBundlesManager().sync_bundles_to_db()
bag = DagBag(sys.argv[1])
assert not bag.import_errors, bag.import_errors
sync_bag_to_db(bag, "dags-folder", None)
now = dt.datetime.now(dt.UTC)
with create_session() as session:
    get_or_create_dagrun(dag=SerializedDagModel.get_dag("ck_worker_kill"), run_id="ck-worker-kill",
        logical_date=None, data_interval=None, run_after=now, conf=None,
        triggered_by=DagRunTriggeredByType.TEST, triggering_user_name="test", start_date=now, session=session)
"""


@pytest.fixture
def airflow_env(airflow_db: Path, tmp_path: Path, python_image: str) -> dict[str, str]:
    """A copy of the migrated test DB and a DAG folder holding only the kill test's DAG."""
    home = tmp_path / "home"
    dags = home / "dags"
    dags.mkdir(parents=True)
    (dags / "ck_worker_kill.py").write_text(DAG_FILE.replace("IMAGE", python_image))
    db = home / "airflow.db"
    source = sqlite3.connect(str(airflow_db / "airflow.db"))
    target = sqlite3.connect(str(db))
    with target:
        source.backup(target)
    source.close()
    target.close()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{db}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    subprocess.run(
        [sys.executable, "-c", SETUP, str(dags)], env=env, check=True, timeout=300, capture_output=True
    )
    return env


@pytest.fixture
def no_leftovers(docker_client: docker.DockerClient) -> Iterator[None]:
    yield
    for container in docker_client.containers.list(all=True, filters={"label": LABEL}):
        container.remove(force=True, v=True)


def _set_try(env: dict[str, str], try_number: int, state: str) -> None:
    """What the scheduler writes: the dead try failed (heartbeat timeout), the next one queued."""
    db = sqlite3.connect(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///"))
    with db:
        db.execute(
            "UPDATE task_instance SET try_number = ?, state = ? "
            "WHERE dag_id = ? AND run_id = ? AND task_id = 'work'",
            (try_number, state, DAG_ID, RUN_ID),
        )
    db.close()


def _tasks_test(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    airflow = str(Path(sys.executable).with_name("airflow"))
    return subprocess.Popen(
        [airflow, "tasks", "test", DAG_ID, "work", RUN_ID],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_kill_9_mid_run_then_the_next_try_removes_the_dead_tries_container_and_logs_its_evidence(
    airflow_env: dict[str, str], docker_client: docker.DockerClient, no_leftovers: None, tmp_path: Path
) -> None:
    _set_try(airflow_env, 1, "queued")
    first = _tasks_test(airflow_env, tmp_path / "try1.log")
    try:
        deadline = time.monotonic() + 240
        container = None
        while container is None or b"halfway" not in container.logs():
            found = docker_client.containers.list(filters={"label": [LABEL, "containerkit.try_number=1"]})
            container = found[0] if found else None
            assert first.poll() is None, (tmp_path / "try1.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "try 1 never started its container"
            time.sleep(0.5)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the worker is lost: no on_kill, no cleanup
        first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL
    time.sleep(1)
    container.reload()
    assert container.status == "running"  # what the issue saw: the dead try's container runs on

    _set_try(airflow_env, 2, "queued")
    log = tmp_path / "try2.log"
    second = _tasks_test(airflow_env, log)
    assert second.wait(timeout=300) == 0, log.read_text()[-3000:]
    out = log.read_text()
    short = container.id[:12]
    evidence = (
        f"Container {short} of earlier try 1 was left behind (worker lost?): status running, exit code 0, "
        "OOMKilled False; last log lines:"
    )
    assert evidence in out, out[-3000:]
    assert "try 1: halfway through batch 3" in out.split(evidence, 1)[1]
    assert f"Removed container {short} of earlier try 1" in out
    assert "try 2: all batches done" in out
    assert docker_client.containers.list(all=True, filters={"label": f"containerkit.dag_id={DAG_ID}"}) == []
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(container.id)
    # Written once, in this order: evidence first, then the removal, then the new try's own container.
    assert (
        out.index(evidence) < out.index(f"Removed container {short}") < out.index("try 2: all batches done")
    )
