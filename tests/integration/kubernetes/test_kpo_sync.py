"""SecureKubernetesPodOperator against the fake cluster over real HTTP, synchronous mode."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from kube_harness import (
    FakeCluster,
    succeed,
)

NS = "airflow-tasks"
IMAGE = "registry.example.com/team/etl:1.4.2"


def make_dag(dag_id: str, **op_kwargs: Any) -> Any:
    from airflow.sdk import DAG
    from containerkit.operators.kubernetes import SecureKubernetesPodOperator

    with DAG(dag_id, schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False) as dag:
        SecureKubernetesPodOperator(
            task_id="run",
            namespace=NS,
            image=op_kwargs.pop("image", IMAGE),
            cmds=["python", "-c", "print('hi')"],
            startup_check_interval_seconds=op_kwargs.pop("startup_check_interval_seconds", 1),
            base_container_status_polling_interval=0.2,
            poll_interval=0.5,
            **op_kwargs,
        )
    return dag


def task_instance(dagrun: Any) -> Any:
    return next(ti for ti in dagrun.get_task_instances() if ti.task_id == "run")


def test_success_with_logs_and_xcom(
    fake_cluster: FakeCluster, run_dag: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    fake_cluster.script(IMAGE, succeed(["extract: 3 rows", "load: done"], xcom={"rows": 3}))
    dagrun = run_dag(make_dag("kpo_sync_success", do_xcom_push=True))
    ti = task_instance(dagrun)
    assert ti.state == "success"
    assert ti.xcom_pull(task_ids="run") == {"rows": 3}
    out = "".join(capfd.readouterr())
    assert "load: done" in out
    assert fake_cluster.pods() == []
    created = fake_cluster.created_pods()[-1]
    sidecar = next(c for c in created["spec"]["containers"] if c["name"] == "airflow-xcom-sidecar")
    assert sidecar["securityContext"]["readOnlyRootFilesystem"] is True
    assert sidecar["resources"]["limits"]["memory"]
    base = created["spec"]["containers"][0]
    assert base["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert base["resources"]["limits"]["memory"]
