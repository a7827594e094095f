"""``execution_timeout`` on SecureKubernetesPodOperator ends in a DeadlineExceeded diagnosis, pod deleted.

Runs on the local Docker-backed cluster (containerkit.testing), sync and deferrable, through ``dag.test()``.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from containerkit.testing.cluster import LocalCluster

FAILURES: list[BaseException] = []


def _record(context: Any) -> None:
    FAILURES.append(context["exception"])


def _dag(dag_id: str, namespace: str, image: str, **op_kwargs: Any) -> Any:
    from airflow.sdk import DAG

    from containerkit.operators.kubernetes import SecureKubernetesPodOperator

    with DAG(dag_id, schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False) as dag:
        SecureKubernetesPodOperator(
            task_id="run",
            name="sleeper",
            namespace=namespace,
            image=image,
            cmds=["python", "-c", "import time; print('waiting on the lock', flush=True); time.sleep(3600)"],
            startup_check_interval_seconds=1,
            poll_interval=0.5,
            on_failure_callback=_record,
            execution_timeout=datetime.timedelta(seconds=8),
            **op_kwargs,
        )
    return dag


@pytest.mark.parametrize("deferrable", [pytest.param(False, id="sync"), pytest.param(True, id="deferrable")])
def test_execution_timeout_is_diagnosed_with_the_limit_and_the_deleted_pod(
    cluster: LocalCluster, k8s_namespace: str, python_image: str, run_dag: Any, deferrable: bool
) -> None:
    from containerkit.diagnostics import ContainerTaskFailed

    FAILURES.clear()
    dagrun = run_dag(_dag(f"kpo_deadline_{deferrable}", k8s_namespace, python_image, deferrable=deferrable))
    ti = next(ti for ti in dagrun.get_task_instances() if ti.task_id == "run")
    assert ti.state == "failed"
    (pod,) = cluster.submitted("Pod", k8s_namespace)
    name = pod["metadata"]["name"]
    (error,) = FAILURES
    assert isinstance(error, ContainerTaskFailed), f"expected ContainerTaskFailed, got {error!r}"
    diagnosis = error.diagnosis
    assert diagnosis.cause == "DeadlineExceeded:execution_timeout"
    assert diagnosis.summary.startswith(
        "the task ran longer than its execution_timeout=0:00:08 (8 s) and was stopped; "
        f"pod {k8s_namespace}/{name} deleted (on_finish_action=delete_pod)"
    ), diagnosis.summary
    assert "NOT cleaned up" not in diagnosis.summary
    assert "raise execution_timeout" in diagnosis.fix
    assert cluster.wait_for_no_pods(k8s_namespace, timeout=45) == []
    assert [c for c in cluster.engine_objects()["containers"] if f"-{k8s_namespace}-" in c] == []


def test_execution_timeout_with_keep_pod_says_the_pod_was_kept(
    cluster: LocalCluster, k8s_namespace: str, python_image: str, run_dag: Any
) -> None:
    from containerkit.diagnostics import ContainerTaskFailed

    FAILURES.clear()
    dagrun = run_dag(_dag("kpo_deadline_keep", k8s_namespace, python_image, on_finish_action="keep_pod"))
    ti = next(ti for ti in dagrun.get_task_instances() if ti.task_id == "run")
    assert ti.state == "failed"
    (error,) = FAILURES
    assert isinstance(error, ContainerTaskFailed), f"expected ContainerTaskFailed, got {error!r}"
    (pod,) = cluster.pods(k8s_namespace)
    name = pod["metadata"]["name"]
    assert f"NOT cleaned up: pod {k8s_namespace}/{name} kept (on_finish_action=keep_pod)" in (
        error.diagnosis.summary
    )
