"""``@task.secure_docker`` on the real engine: arguments in, result out through XCom, nothing in inspect."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import docker
import pytest

LABEL = "containerkit.test"
LABEL_VALUE = "dockerop-decorator"
SECRET_ARG = "tok-3f9a-not-in-inspect"


@pytest.fixture(scope="module", autouse=True)
def no_leftovers(docker_client: docker.DockerClient) -> Iterator[None]:
    yield
    left = docker_client.containers.list(all=True, filters={"label": f"{LABEL}={LABEL_VALUE}"})
    for container in left:
        container.remove(force=True, v=True)
    assert not left, f"containers left behind: {[c.name for c in left]}"


class InspectRecorder:
    """Captures ``docker inspect`` of each of our containers while it exists (as an operator of the
    engine would see it), polling the engine from a thread while the DAG runs."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client
        self.seen: dict[str, dict[str, Any]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            for c in self.client.api.containers(all=True, filters={"label": f"{LABEL}={LABEL_VALUE}"}):
                if c["Id"] not in self.seen:
                    with contextlib.suppress(docker.errors.NotFound):
                        self.seen[c["Id"]] = self.client.api.inspect_container(c["Id"])
            time.sleep(0.05)

    def __enter__(self) -> InspectRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def xcom(dag_run: Any, task_id: str, key: str = "return_value") -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        query = XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids=task_id, key=key)
        row = session.scalars(query).first()
        return XComModel.deserialize_value(row) if row else None


def test_round_trip_through_files_not_env(
    python_image: str, run_dag: Callable[..., Any], docker_client: docker.DockerClient
) -> None:
    from airflow.sdk import DAG, task

    labels = {LABEL: LABEL_VALUE}
    with DAG("ck_secure_docker_taskflow", schedule=None, start_date=datetime(2026, 1, 1)) as dag:

        @task
        def numbers() -> list[int]:
            return [3, 4, 5]

        @task.secure_docker(image=python_image, labels=labels, resources="xs", multiple_outputs=True)
        def summarize(values: list[int], token: str, scale: int = 1) -> dict[str, Any]:
            import os

            assert token.startswith("tok-")
            return {"total": sum(values) * scale, "uid": os.getuid(), "token_len": len(token)}

        summarize(numbers(), SECRET_ARG, scale=10)

    with InspectRecorder(docker_client) as recorder:
        dag_run = run_dag(dag)

    assert dag_run.state == "success"
    assert xcom(dag_run, "summarize", "total") == 120
    assert xcom(dag_run, "summarize", "uid") == 50000
    assert xcom(dag_run, "summarize", "token_len") == len(SECRET_ARG)

    assert len(recorder.seen) == 1, "the poller should have caught the task's container"
    (inspect,) = recorder.seen.values()
    config = inspect["Config"]
    visible = " ".join(
        [*(config.get("Env") or []), *(config.get("Cmd") or []), *(config.get("Entrypoint") or [])]
    )
    assert "__PYTHON_SCRIPT" not in visible and "__PYTHON_INPUT" not in visible
    assert "summarize" not in visible and SECRET_ARG not in visible and "sum(values)" not in visible
    assert config["Cmd"][1] == "/run/containerkit/job/script.py"
    assert inspect["HostConfig"]["ReadonlyRootfs"] is True


def test_exception_in_the_function_fails_the_task_with_its_traceback(
    python_image: str, run_dag: Callable[..., Any]
) -> None:
    from airflow.sdk import DAG, task

    from containerkit.diagnostics.model import ContainerTaskFailed

    errors: list[BaseException | None] = []
    with DAG("ck_secure_docker_taskflow_fail", schedule=None, start_date=datetime(2026, 1, 1)) as dag:

        @task.secure_docker(
            image=python_image,
            labels={LABEL: LABEL_VALUE},
            on_failure_callback=lambda context: errors.append(context.get("exception")),
        )
        def explode() -> None:
            raise RuntimeError("no rows for partition 2026-01-01")

        explode()

    assert run_dag(dag).state == "failed"
    (error,) = errors
    assert isinstance(error, ContainerTaskFailed)
    assert error.diagnosis.cause == "NonZeroExit"
    assert any("RuntimeError: no rows for partition 2026-01-01" in line for line in error.diagnosis.evidence)


def test_mapped_decorated_task_with_resources_runs_each_instance_with_the_preset(
    python_image: str, run_dag: Callable[..., Any]
) -> None:
    """``@task.secure_docker(resources="xs")`` + ``.expand()``: the preset name is not read as Airflow's
    executor ``resources`` (that broke the DAG at definition); every mapped container gets the preset."""
    from airflow.models.xcom import XComModel
    from airflow.sdk import DAG, task
    from airflow.utils.session import create_session

    from containerkit.spec import RESOURCE_PRESETS

    with DAG("ck_secure_docker_mapped", schedule=None, start_date=datetime(2026, 1, 1)) as dag:

        @task.secure_docker(image=python_image, labels={LABEL: LABEL_VALUE}, resources="xs")
        def limit(tag: str) -> str:
            with open("/sys/fs/cgroup/memory/memory.limit_in_bytes") as fh:
                return f"{fh.read().strip()} {tag}"

        limit.expand(tag=["a", "b"])

    dag_run = run_dag(dag)
    assert dag_run.state == "success"
    with create_session() as session:
        query = XComModel.get_many(
            run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids="limit", key="return_value"
        )
        values = sorted(XComModel.deserialize_value(row) for row in session.scalars(query).all())
    memory = RESOURCE_PRESETS["xs"].memory_limit_bytes
    assert values == [f"{memory} a", f"{memory} b"]
