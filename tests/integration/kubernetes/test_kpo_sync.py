"""SecureKubernetesPodOperator against the fake cluster over real HTTP, sync and deferrable.

Every DAG runs through ``dag.test()`` in-process (deferrable tasks run their trigger inline). After
each run the fake API must hold no pod: success, failure, fail-fast, timeout and kill all clean up.
"""

from __future__ import annotations

import datetime
import threading
import time
from typing import Any

import pytest
from kube_harness import (
    FakeCluster,
    config_error,
    image_pull_error,
    oom_killed,
    run_forever,
    succeed,
    unschedulable,
)

NS = "airflow-tasks"
IMAGE = "registry.example.com/team/etl:1.4.2"
FAILURES: list[BaseException] = []
OPERATORS: list[Any] = []

MODES = [pytest.param(False, id="sync"), pytest.param(True, id="deferrable")]


def record_failure(context: Any) -> None:
    FAILURES.append(context["exception"])


def make_dag(dag_id: str, **op_kwargs: Any) -> Any:
    from airflow.sdk import DAG

    from containerkit.operators.kubernetes import SecureKubernetesPodOperator

    with DAG(dag_id, schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False) as dag:
        SecureKubernetesPodOperator(
            task_id="run",
            namespace=NS,
            image=op_kwargs.pop("image", IMAGE),
            cmds=["python", "-m", "etl"],
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


@pytest.mark.parametrize("deferrable", MODES)
def test_success_with_logs_and_xcom(
    fake_cluster: FakeCluster, run_dag: Any, capfd: pytest.CaptureFixture[str], deferrable: bool
) -> None:
    fake_cluster.script(IMAGE, succeed(["extract: 3 rows", "load: done"], xcom={"rows": 3}))
    ti, error, _ = run(
        run_dag, make_dag(f"kpo_success_{deferrable}", do_xcom_push=True, deferrable=deferrable)
    )
    assert error is None and ti.state == "success"
    assert ti.xcom_pull(task_ids="run") == {"rows": 3}
    assert "load: done" in "".join(capfd.readouterr())
    assert fake_cluster.pods() == []
    created = fake_cluster.created_pods()[-1]
    sidecar = next(c for c in created["spec"]["containers"] if c["name"] == "airflow-xcom-sidecar")
    assert sidecar["securityContext"]["readOnlyRootFilesystem"] is True
    assert sidecar["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert sidecar["resources"]["limits"]["memory"]
    base = created["spec"]["containers"][0]
    assert base["securityContext"]["allowPrivilegeEscalation"] is False
    assert base["resources"]["limits"]["memory"] == "512Mi"  # the default "s" preset


FAIL_FAST = {
    "config-key": (
        config_error("couldn't find key password in Secret airflow-tasks/db"),
        "CreateContainerConfigError:secret-key-missing",
        "password",
    ),
    "image-not-found": (
        image_pull_error(IMAGE, f"rpc error: code = NotFound desc = {IMAGE}: not found"),
        "ImagePullBackOff:not-found",
        IMAGE,
    ),
    "unschedulable": (
        unschedulable("0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available: "
                      "3 No preemption victims found for incoming pod."),
        "Unschedulable:insufficient-resources",
        "memory=512Mi",
    ),
}  # fmt: skip


@pytest.mark.parametrize("deferrable", MODES)
@pytest.mark.parametrize("case", list(FAIL_FAST))
def test_fails_fast_with_diagnosis(
    fake_cluster: FakeCluster, run_dag: Any, case: str, deferrable: bool
) -> None:
    from containerkit.diagnostics import ContainerTaskFailed

    scenario, cause, fragment = FAIL_FAST[case]
    fake_cluster.script(IMAGE, scenario)
    dag = make_dag(
        f"kpo_fail_fast_{case}_{deferrable}".replace("-", "_"), deferrable=deferrable, do_xcom_push=True
    )
    ti, error, elapsed = run(run_dag, dag)
    assert ti.state == "failed"
    assert isinstance(error, ContainerTaskFailed), error
    assert error.diagnosis.cause == cause
    assert fragment in str(error)
    # The stock operator waits startup_timeout_seconds=120 here.
    assert elapsed < 60, elapsed
    assert fake_cluster.pods() == []


@pytest.mark.parametrize("deferrable", MODES)
def test_oomkilled_names_the_limit(fake_cluster: FakeCluster, run_dag: Any, deferrable: bool) -> None:
    from containerkit.diagnostics import ContainerTaskFailed

    fake_cluster.script(IMAGE, oom_killed(["loading partition", "building frame"]))
    ti, error, _ = run(run_dag, make_dag(f"kpo_oom_{deferrable}", deferrable=deferrable, resources="xs"))
    assert ti.state == "failed"
    assert isinstance(error, ContainerTaskFailed)
    assert error.diagnosis.cause == "OOMKilled"
    limit = fake_cluster.created_pods()[-1]["spec"]["containers"][0]["resources"]["limits"]["memory"]
    assert f"OOMKilled: container base was killed for exceeding its memory limit {limit}" in str(error)
    assert fake_cluster.pods() == []


@pytest.mark.parametrize("deferrable", MODES)
def test_execution_timeout_deletes_the_pod(fake_cluster: FakeCluster, run_dag: Any, deferrable: bool) -> None:
    from containerkit.diagnostics import ContainerTaskFailed

    fake_cluster.script(IMAGE, run_forever(["working", "still working"]))
    dag = make_dag(
        f"kpo_timeout_{deferrable}", deferrable=deferrable, execution_timeout=datetime.timedelta(seconds=4)
    )
    ti, error, _ = run(run_dag, dag)
    assert ti.state == "failed"
    assert fake_cluster.created_pods(), "the pod was created"
    assert fake_cluster.pods() == []
    if isinstance(error, ContainerTaskFailed):
        assert error.diagnosis.cause == "ExecutionTimeout"
    else:  # the timeout signal can land outside the operator's own code (e.g. in Airflow's callbacks)
        assert "Timeout" in type(error).__name__, error


class _RememberOperator:
    """A KubernetesPodOperatorCallback that hands the running operator instance to the test."""

    @staticmethod
    def on_pod_starting(*, operator: Any, **_: Any) -> None:
        OPERATORS.append(operator)


def test_on_kill_deletes_the_pod_after_reading_evidence(
    fake_cluster: FakeCluster,
    run_dag: Any,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from airflow.providers.cncf.kubernetes.callbacks import KubernetesPodOperatorCallback

    callback = type("Remember", (_RememberOperator, KubernetesPodOperatorCallback), {})
    fake_cluster.script(IMAGE, run_forever(["serving"]))
    OPERATORS.clear()

    def kill_when_running() -> None:
        deadline = time.monotonic() + 60
        while not OPERATORS and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        OPERATORS[-1].on_kill()

    killer = threading.Thread(target=kill_when_running, daemon=True)
    killer.start()
    ti, _, _ = run(run_dag, make_dag("kpo_on_kill", callbacks=callback))
    killer.join(5)
    assert ti.state == "failed"
    assert fake_cluster.created_pods()
    assert fake_cluster.pods() == []
    out = "".join(capfd.readouterr()) + caplog.text
    assert "Task killed; pod" in out
    assert "Successfully assigned" in out  # the pod's events were read before the deletion


def test_policy_runs_on_the_final_pod(fake_cluster: FakeCluster, run_dag: Any) -> None:
    """A stock parameter that weakens the rendered pod is caught before any pod is created."""
    from containerkit.policy.enforce import PolicyViolation

    dag = make_dag("kpo_policy_final_pod", container_security_context={"privileged": True})
    ti, error, _ = run(run_dag, dag)
    assert ti.state == "failed"
    assert isinstance(error, PolicyViolation)
    assert "PSS-B-002" in str(error) and "final pod" in str(error)
    assert fake_cluster.created_pods() == []
