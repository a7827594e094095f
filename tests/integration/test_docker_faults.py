"""Faults on the real Docker engine end in a Diagnosis and leave no container behind.

Every container carries ``containerkit.test=dockerfaults``; ``no_leftovers`` fails the module if one remains.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import docker
import pytest

from containerkit.diagnostics.model import ContainerTaskFailed

LABEL = "containerkit.test"
LABELS = {LABEL: "dockerfaults"}


@pytest.fixture(scope="module", autouse=True)
def no_leftovers(docker_client: docker.DockerClient) -> Iterator[None]:
    yield
    left = docker_client.containers.list(all=True, filters={"label": f"{LABEL}=dockerfaults"})
    for container in left:
        container.remove(force=True, v=True)
    assert not left, f"containers left behind: {[c.name for c in left]}"


class Failures:
    """The exception of each failed task, through the stock ``on_failure_callback``."""

    def __init__(self) -> None:
        self.errors: dict[str, BaseException | None] = {}

    def __call__(self, context: Any) -> None:
        self.errors[context["ti"].task_id] = context.get("exception")


def _dag(dag_id: str, **task_kwargs: Any) -> tuple[Any, Failures]:
    from airflow.sdk import DAG

    from containerkit.operators.docker import SecureDockerOperator

    failures = Failures()
    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        SecureDockerOperator(task_id="run", labels=LABELS, on_failure_callback=failures, **task_kwargs)
    return dag, failures


def test_execution_timeout_is_diagnosed_with_the_limit_and_the_cleanup(
    python_image: str, run_dag: Callable[..., Any], docker_client: docker.DockerClient
) -> None:
    code = "import time; print('working on batch 7', flush=True); time.sleep(3600)"
    dag, failures = _dag(
        "ck_faults_timeout",
        image=python_image,
        command=["python", "-c", code],
        execution_timeout=timedelta(seconds=5),
        stop_timeout=2,
    )
    started = time.monotonic()
    dag_run = run_dag(dag)
    assert dag_run.state == "failed"
    assert time.monotonic() - started < 300  # far less than the 3600 s sleep, on a loaded host
    error = failures.errors["run"]
    assert isinstance(error, ContainerTaskFailed), f"expected ContainerTaskFailed, got {error!r}"
    diagnosis = error.diagnosis
    assert diagnosis.cause == "DeadlineExceeded:execution_timeout"
    assert diagnosis.container is not None
    assert "execution_timeout=0:00:05 (5 s)" in diagnosis.summary
    assert f"container {diagnosis.container} stopped and removed" in diagnosis.summary
    assert "NOT cleaned up" not in diagnosis.summary
    assert "log: working on batch 7" in diagnosis.evidence
    assert diagnosis.evidence[0].startswith(f"container {diagnosis.container}: exit code ")
    assert "raise execution_timeout" in diagnosis.fix
    assert str(error).startswith("task run: DeadlineExceeded:execution_timeout: ")
    left = docker_client.containers.list(all=True, filters={"label": "containerkit.dag_id=ck_faults_timeout"})
    assert left == []


READ_SECRET = (
    "import pathlib; value = pathlib.Path('/run/secrets/db/password').read_text(); "
    "print('secret length', len(value))"
)


def _secret_dir(tmp_path: Any, mode: int) -> tuple[str, Any]:
    secrets_dir = tmp_path / "secrets"
    (secrets_dir / "db").mkdir(parents=True)
    secret = secrets_dir / "db" / "password"
    secret.write_text("s3cret-canary")
    os.chown(secret, 0, 0)
    secret.chmod(mode)
    return str(secrets_dir), secret


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the secret file owner 0:0")
def test_secret_file_the_container_uid_cannot_read_fails_before_create_with_the_read_fix(
    python_image: str, run_dag: Callable[..., Any], docker_client: docker.DockerClient, tmp_path: Any
) -> None:
    from containerkit.spec import SecretRef

    secrets_dir, secret = _secret_dir(tmp_path, 0o600)
    dag, failures = _dag(
        "ck_faults_secret_unreadable",
        image=python_image,
        command=["python", "-c", READ_SECRET],
        secrets_dir=secrets_dir,
        secret_refs=[SecretRef("db", "password", path="/run/secrets/db/password")],
    )
    assert run_dag(dag).state == "failed"
    error = failures.errors["run"]
    assert isinstance(error, ContainerTaskFailed), f"expected ContainerTaskFailed, got {error!r}"
    diagnosis = error.diagnosis
    assert diagnosis.cause == "SecretFile:unreadable"
    assert diagnosis.summary == (
        f"1 secret file(s) not readable by the container's uid 50000 (gid 0): {secret} (owner 0:0, mode 0600)"
    )
    assert f"chown 50000 {secret} && chmod 0400 {secret}" in diagnosis.fix
    assert f"chgrp 0 {secret} && chmod 0440 {secret}" in diagnosis.fix
    assert "writable" not in diagnosis.fix
    assert "s3cret-canary" not in str(error)
    created = docker_client.containers.list(
        all=True, filters={"label": "containerkit.dag_id=ck_faults_secret_unreadable"}
    )
    assert created == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the secret file owner 0:0")
def test_secret_file_readable_by_group_0_passes_the_pre_flight_and_is_read(
    python_image: str, run_dag: Callable[..., Any], tmp_path: Any
) -> None:
    from containerkit.spec import SecretRef

    secrets_dir, _ = _secret_dir(tmp_path, 0o440)
    dag, failures = _dag(
        "ck_faults_secret_group_readable",
        image=python_image,
        command=["python", "-c", READ_SECRET],
        secrets_dir=secrets_dir,
        secret_refs=[SecretRef("db", "password", path="/run/secrets/db/password")],
    )
    dag_run = run_dag(dag)
    assert dag_run.state == "success", failures.errors
    ti = next(ti for ti in dag_run.get_task_instances() if ti.task_id == "run")
    assert ti.state == "success"


def test_a_container_left_by_an_earlier_try_is_logged_and_removed_at_the_next_try(
    python_image: str,
    run_dag: Callable[..., Any],
    docker_client: docker.DockerClient,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A worker killed mid-run leaves its container; the next try finds it by its labels."""
    left: list[str] = []

    def leave_an_earlier_try(context: Any) -> None:
        ti = context["ti"]
        container = docker_client.containers.run(
            python_image,
            [
                "python",
                "-c",
                "print('earlier try: halfway through batch 3', flush=True); import time; time.sleep(300)",
            ],
            detach=True,
            labels={
                **LABELS,
                "containerkit.dag_id": ti.dag_id,
                "containerkit.task_id": ti.task_id,
                "containerkit.run_id": ti.run_id,
                "containerkit.try_number": str(ti.try_number - 1),
                "containerkit.map_index": str(ti.map_index),
            },
        )
        deadline = time.monotonic() + 30
        while b"halfway" not in container.logs() and time.monotonic() < deadline:
            time.sleep(0.5)
        left.append(container.id)

    dag, failures = _dag(
        "ck_faults_earlier_try",
        image=python_image,
        command=["python", "-c", "print('this try ran')"],
        pre_execute=leave_an_earlier_try,
    )
    dag_run = run_dag(dag)
    assert dag_run.state == "success", failures.errors
    assert len(left) == 1
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(left[0])
    out = "".join(capfd.readouterr()) + caplog.text
    assert f"Container {left[0][:12]} of earlier try 0 was left behind" in out
    assert "status running, exit code 0, OOMKilled False" in out
    assert "earlier try: halfway through batch 3" in out
    assert f"Removed container {left[0][:12]} of earlier try 0" in out
    remaining = docker_client.containers.list(
        all=True, filters={"label": "containerkit.dag_id=ck_faults_earlier_try"}
    )
    assert remaining == []


def test_a_container_of_another_mapped_instance_is_not_touched(
    python_image: str, run_dag: Callable[..., Any], docker_client: docker.DockerClient
) -> None:
    others: list[Any] = []

    def start_another_instance(context: Any) -> None:
        ti = context["ti"]
        others.append(
            docker_client.containers.run(
                python_image,
                ["sleep", "300"],
                detach=True,
                labels={
                    **LABELS,
                    "containerkit.dag_id": ti.dag_id,
                    "containerkit.task_id": ti.task_id,
                    "containerkit.run_id": ti.run_id,
                    "containerkit.try_number": str(ti.try_number + 1),
                    "containerkit.map_index": "7",
                },
            )
        )

    dag, failures = _dag(
        "ck_faults_other_instance",
        image=python_image,
        command=["python", "-c", "print('this try ran')"],
        pre_execute=start_another_instance,
    )
    try:
        assert run_dag(dag).state == "success", failures.errors
        others[0].reload()
        assert others[0].status == "running"
    finally:
        for container in others:
            container.remove(force=True, v=True)
