"""SecureKubernetesPodOperator on the local Docker-backed test double, sync and deferrable.

Every pod really runs on the engine (containerkit.testing); every DAG runs through ``dag.test()``
in-process (deferrable tasks run their trigger inline). After each run the API holds no pod and the
engine no container of it: success, failure, fail-fast, timeout and kill all clean up.
"""

from __future__ import annotations

import datetime
import threading
import time
from typing import Any

import pytest

from containerkit.testing.cluster import LocalCluster

FAILURES: list[BaseException] = []
OPERATORS: list[Any] = []
MODES = [pytest.param(False, id="sync"), pytest.param(True, id="deferrable")]
MISSING_IMAGE = "containerkit/not-on-this-engine:0.0.1"


def record_failure(context: Any) -> None:
    FAILURES.append(context["exception"])


def make_dag(dag_id: str, namespace: str, image: str, script: str, **op_kwargs: Any) -> Any:
    from airflow.sdk import DAG

    from containerkit.operators.kubernetes import SecureKubernetesPodOperator

    with DAG(dag_id, schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False) as dag:
        SecureKubernetesPodOperator(
            task_id="run",
            namespace=namespace,
            image=image,
            cmds=["python", "-c", script],
            startup_check_interval_seconds=1,
            base_container_status_polling_interval=0.2,
            poll_interval=0.5,
            on_failure_callback=record_failure,
            **op_kwargs,
        )
    return dag


def run(run_dag: Any, dag: Any) -> tuple[Any, BaseException | None, float]:
    FAILURES.clear()
    started = time.monotonic()
    dagrun = run_dag(dag)
    elapsed = time.monotonic() - started
    ti = next(ti for ti in dagrun.get_task_instances() if ti.task_id == "run")
    return ti, (FAILURES[-1] if FAILURES else None), elapsed


def assert_cleaned_up(cluster: LocalCluster, namespace: str) -> None:
    assert cluster.wait_for_no_pods(namespace, timeout=45) == []
    left = [c for c in cluster.engine_objects()["containers"] if f"-{namespace}-" in c]
    assert left == []


XCOM_SCRIPT = (
    "import json, pathlib; print('extract: 3 rows'); print('load: done'); "
    "pathlib.Path('/airflow/xcom/return.json')"
    ".write_text(json.dumps({'rows': 3, 'uid': __import__('os').getuid()}))"
)


@pytest.mark.parametrize("deferrable", MODES)
def test_success_with_logs_and_xcom(
    cluster: LocalCluster,
    k8s_namespace: str,
    python_image: str,
    run_dag: Any,
    capfd: pytest.CaptureFixture[str],
    deferrable: bool,
) -> None:
    dag = make_dag(
        f"kpo_success_{deferrable}",
        k8s_namespace,
        python_image,
        XCOM_SCRIPT,
        do_xcom_push=True,
        deferrable=deferrable,
    )
    ti, error, _ = run(run_dag, dag)
    assert error is None and ti.state == "success", error
    # The XCom sidecar really read the file the task wrote, as the hardened uid.
    assert ti.xcom_pull(task_ids="run") == {"rows": 3, "uid": 50000}
    assert "load: done" in "".join(capfd.readouterr())
    created = cluster.submitted("Pod", k8s_namespace)[-1]
    sidecar = next(c for c in created["spec"]["containers"] if c["name"] == "airflow-xcom-sidecar")
    assert sidecar["securityContext"]["readOnlyRootFilesystem"] is True
    assert sidecar["securityContext"]["capabilities"]["drop"] == ["ALL"]
    base = created["spec"]["containers"][0]
    assert base["securityContext"]["allowPrivilegeEscalation"] is False
    assert base["resources"]["limits"]["memory"] == "512Mi"  # the default "s" preset
    reasons = [e["reason"] for e in cluster.events(k8s_namespace, created["metadata"]["name"])]
    assert reasons[:2] == ["Scheduled", "Pulled"] and "Started" in reasons
    assert_cleaned_up(cluster, k8s_namespace)


def _fail_fast_case(
    case: str, namespace: str, cluster: LocalCluster, python_image: str
) -> tuple[dict[str, Any], str, str]:
    from containerkit.spec import SecretRef

    if case == "config-key":
        cluster.create_secret(namespace, "db", {"user": "etl"})
        kwargs = {"secret_refs": [SecretRef(secret="db", key="password", env="DB_PASSWORD")]}
        return {"image": python_image, **kwargs}, "CreateContainerConfigError:secret-key-missing", "password"
    if case == "image-not-found":
        return {"image": MISSING_IMAGE}, "ImagePullBackOff:not-found", MISSING_IMAGE
    # requests above the node's allocatable memory
    return (
        {"image": python_image, "resources": {"preset": "s", "memory": "64Ti"}},
        "Unschedulable:insufficient-resources",
        "memory=64Ti",
    )


@pytest.mark.parametrize("deferrable", MODES)
@pytest.mark.parametrize("case", ["config-key", "image-not-found", "unschedulable"])
def test_fails_fast_with_diagnosis(
    cluster: LocalCluster, k8s_namespace: str, python_image: str, run_dag: Any, case: str, deferrable: bool
) -> None:
    from containerkit.diagnostics import ContainerTaskFailed

    kwargs, cause, fragment = _fail_fast_case(case, k8s_namespace, cluster, python_image)
    image = kwargs.pop("image")
    dag = make_dag(
        f"kpo_fail_fast_{case}_{deferrable}".replace("-", "_"),
        k8s_namespace,
        image,
        "print('never runs')",
        deferrable=deferrable,
        do_xcom_push=True,
        **kwargs,
    )
    ti, error, elapsed = run(run_dag, dag)
    assert ti.state == "failed"
    assert isinstance(error, ContainerTaskFailed), error
    assert error.diagnosis.cause == cause
    assert fragment in str(error)
    # The stock operator waits startup_timeout_seconds=120 here.
    assert elapsed < 60, elapsed
    assert_cleaned_up(cluster, k8s_namespace)


OOM_SCRIPT = "blocks = []\nwhile True:\n    blocks.append(bytearray(4 * 1024 * 1024))\n"


@pytest.mark.parametrize("deferrable", MODES)
def test_kernel_oom_kill_names_the_limit(
    cluster: LocalCluster, k8s_namespace: str, python_image: str, run_dag: Any, deferrable: bool
) -> None:
    from containerkit.diagnostics import ContainerTaskFailed

    dag = make_dag(
        f"kpo_oom_{deferrable}",
        k8s_namespace,
        python_image,
        OOM_SCRIPT,
        deferrable=deferrable,
        resources={"preset": "xs", "memory": "32Mi"},
    )
    ti, error, _ = run(run_dag, dag)
    assert ti.state == "failed"
    assert isinstance(error, ContainerTaskFailed), error
    assert error.diagnosis.cause == "OOMKilled"
    assert "OOMKilled: container base was killed for exceeding its memory limit 32Mi" in str(error)
    assert_cleaned_up(cluster, k8s_namespace)


@pytest.mark.parametrize("deferrable", MODES)
def test_execution_timeout_deletes_the_pod(
    cluster: LocalCluster, k8s_namespace: str, python_image: str, run_dag: Any, deferrable: bool
) -> None:
    from containerkit.diagnostics import ContainerTaskFailed

    dag = make_dag(
        f"kpo_timeout_{deferrable}",
        k8s_namespace,
        python_image,
        "import time; time.sleep(3600)",
        deferrable=deferrable,
        execution_timeout=datetime.timedelta(seconds=6),
    )
    ti, error, _ = run(run_dag, dag)
    assert ti.state == "failed"
    assert cluster.submitted("Pod", k8s_namespace), "the pod was created"
    if isinstance(error, ContainerTaskFailed):
        assert error.diagnosis.cause == "DeadlineExceeded:execution_timeout"
    else:  # the timeout signal can land outside the operator's own code (e.g. in Airflow's callbacks)
        assert "Timeout" in type(error).__name__, error
    assert_cleaned_up(cluster, k8s_namespace)


class _RememberOperator:
    """A KubernetesPodOperatorCallback that hands the running operator instance to the test."""

    @staticmethod
    def on_pod_starting(*, operator: Any, **_: Any) -> None:
        OPERATORS.append(operator)


def test_on_kill_deletes_the_pod_after_reading_evidence(
    cluster: LocalCluster,
    k8s_namespace: str,
    python_image: str,
    run_dag: Any,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from airflow.providers.cncf.kubernetes.callbacks import KubernetesPodOperatorCallback

    callback = type("Remember", (_RememberOperator, KubernetesPodOperatorCallback), {})
    OPERATORS.clear()

    def kill_when_running() -> None:
        deadline = time.monotonic() + 60
        while not OPERATORS and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        OPERATORS[-1].on_kill()

    killer = threading.Thread(target=kill_when_running, daemon=True)
    killer.start()
    dag = make_dag(
        "kpo_on_kill",
        k8s_namespace,
        python_image,
        "print('serving', flush=True); import time; time.sleep(3600)",
        callbacks=callback,
    )
    ti, _, _ = run(run_dag, dag)
    killer.join(5)
    assert ti.state == "failed"
    assert cluster.submitted("Pod", k8s_namespace)
    out = "".join(capfd.readouterr()) + caplog.text
    assert "Task killed; pod" in out
    assert "Successfully assigned" in out  # the pod's events were read before the deletion
    assert_cleaned_up(cluster, k8s_namespace)


def test_policy_runs_on_the_final_pod(
    cluster: LocalCluster, k8s_namespace: str, python_image: str, run_dag: Any
) -> None:
    """A stock parameter that weakens the rendered pod is caught before any pod is created."""
    from containerkit.policy.enforce import PolicyViolation

    dag = make_dag(
        "kpo_policy_final_pod",
        k8s_namespace,
        python_image,
        "print(1)",
        container_security_context={"privileged": True},
    )
    ti, error, _ = run(run_dag, dag)
    assert ti.state == "failed"
    assert isinstance(error, PolicyViolation)
    assert "PSS-B-002" in str(error) and "final pod" in str(error)
    assert cluster.submitted("Pod", k8s_namespace) == []
