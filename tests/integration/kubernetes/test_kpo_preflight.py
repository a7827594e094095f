"""SecureKubernetesPodOperator's pre-flight (``pin_image_digest``) against a real local registry.

The image is built from the Debian base and pushed by the real engine to Debian's ``docker-registry``
(fixtures in ``tests/integration/conftest.py``); the pod runs on the local Docker-backed test double
(containerkit.testing), by digest. The pod must run exactly the digest the engine reported, and a tag the
registry lacks must fail the task before any pod exists.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from containerkit.testing.cluster import LocalCluster

FAILURES: list[BaseException] = []
MODES = [pytest.param(False, id="sync"), pytest.param(True, id="deferrable")]


def record_failure(context: Any) -> None:
    FAILURES.append(context["exception"])


def pinned_dag(dag_id: str, namespace: str, image: str, **op_kwargs: Any) -> Any:
    from airflow.sdk import DAG

    from containerkit.operators.kubernetes import SecureKubernetesPodOperator

    params = op_kwargs.pop("params", None)
    with DAG(
        dag_id, schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False, params=params
    ) as dag:
        SecureKubernetesPodOperator(
            task_id="run",
            namespace=namespace,
            image=image,
            pin_image_digest=True,
            startup_check_interval_seconds=1,
            base_container_status_polling_interval=0.2,
            poll_interval=0.5,
            on_failure_callback=record_failure,
            **op_kwargs,
        )
    return dag


def run(run_dag: Any, dag: Any) -> tuple[Any, BaseException | None]:
    FAILURES.clear()
    dagrun = run_dag(dag)
    ti = next(ti for ti in dagrun.get_task_instances() if ti.task_id == "run")
    return ti, (FAILURES[-1] if FAILURES else None)


def base_image(pod: Any) -> str:
    containers = pod["spec"]["containers"] if isinstance(pod, dict) else pod.spec.containers
    base = containers[0]
    return str(base["image"] if isinstance(base, dict) else base.image)


@pytest.mark.parametrize("access", ["anonymous", "connection"])
def test_pod_runs_the_digest_the_engine_pushed(
    cluster: LocalCluster,
    k8s_namespace: str,
    run_dag: Any,
    pushed_app: Any,
    auth_registry: Any,
    monkeypatch: pytest.MonkeyPatch,
    access: str,
) -> None:
    import containerkit.operators.kubernetes as kpo

    checked: list[Any] = []
    real_check_pod = kpo.check_pod

    def spy_check_pod(pod: Any, **kwargs: Any) -> Any:
        checked.append((kwargs["where"], pod))
        return real_check_pod(pod, **kwargs)

    monkeypatch.setattr(kpo, "check_pod", spy_check_pod)
    if access == "anonymous":
        # A templated tag: the rendered reference is what gets pinned.
        image, conn_id = pushed_app.plain + ":{{ params.tag }}", None
        pinned = f"{pushed_app.plain}@{pushed_app.digest}"
    else:
        # A bare repository through a connection: the pin names the connection's registry.
        image, conn_id = "ck/app:{{ params.tag }}", auth_registry.conn_id
        pinned = f"{pushed_app.auth}@{pushed_app.digest}"
    dag = pinned_dag(
        f"kpo_pin_{access}", k8s_namespace, image, registry_conn_id=conn_id, params={"tag": "1.0.0"}
    )
    ti, error = run(run_dag, dag)
    assert error is None and ti.state == "success", error
    created = cluster.submitted("Pod", k8s_namespace)
    assert len(created) == 1
    assert base_image(created[0]) == pinned
    # Policy ran on the final pod, and that pod already named the digest.
    final = [pod for where, pod in checked if "run time" in where]
    assert final and base_image(final[-1]) == pinned
    # The engine ran that digest (the kubelet never pulls: the engine pushed it, so it has it).
    status = cluster.events(k8s_namespace)
    assert any(e["reason"] == "Started" for e in status)
    assert cluster.wait_for_no_pods(k8s_namespace, timeout=45) == []


@pytest.mark.parametrize("deferrable", MODES)
def test_missing_tag_fails_before_any_pod_exists(
    cluster: LocalCluster, k8s_namespace: str, run_dag: Any, pushed_app: Any, deferrable: bool
) -> None:
    from containerkit.diagnostics import ContainerTaskFailed

    dag = pinned_dag(
        f"kpo_pin_missing_{deferrable}", k8s_namespace, f"{pushed_app.plain}:9.9.9", deferrable=deferrable
    )
    ti, error = run(run_dag, dag)
    assert ti.state == "failed"
    assert isinstance(error, ContainerTaskFailed), error
    assert error.diagnosis.cause == "ImagePull:not-found"
    assert "9.9.9" in error.diagnosis.summary
    assert "task run (pre-flight)" in str(error)
    assert cluster.submitted("Pod", k8s_namespace) == []
