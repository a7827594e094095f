"""Deferred Kubernetes tasks that are cancelled, time out in the triggerer, or find their pod gone.

On the local Docker-backed cluster (containerkit.testing). The pod is created by the operator and the
trigger is the one it defers with, rebuilt from its serialized form as the triggerer does:

* a user's mark failed / mark success / clear cancels the trigger through Airflow 3.3's real
  ``TriggerRunner`` (``cancel_triggers``, the user-action path that calls ``on_kill``): the pod's
  evidence is logged and the pod is deleted within seconds (apache/airflow #62398, #44014);
* the trigger timing out (``__fail__``, the defer timeout) no longer orphans the pod (#49466);
* a reentry whose pod was garbage-collected uses the trigger's final event: a pod that succeeded
  leaves the task successful, one that failed is diagnosed from the event (#66715).

The task context is the few fields the operator's label and try logic read (dag, ti ids, run_id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from types import SimpleNamespace
from typing import Any

import pytest

from containerkit.testing.cluster import LocalCluster

RUN_ID = "manual__2026-01-01T00:00:00+00:00"


def _operator(namespace: str, image: str, script: str, **kwargs: Any) -> Any:
    from containerkit.operators.kubernetes import SecureKubernetesPodOperator

    return SecureKubernetesPodOperator(
        task_id="run",
        namespace=namespace,
        image=image,
        cmds=["python", "-c", script],
        deferrable=True,
        startup_check_interval_seconds=1,
        base_container_status_polling_interval=0.2,
        poll_interval=0.5,
        **kwargs,
    )


def _context(try_number: int = 1) -> dict[str, Any]:
    ti = SimpleNamespace(dag_id="kpo_deferred", task_id="run", map_index=-1, try_number=try_number)
    return {"ti": ti, "run_id": RUN_ID, "dag": SimpleNamespace(dag_id="kpo_deferred")}


def _defer(op: Any, context: dict[str, Any]) -> Any:
    """Create the pod as the operator does and return the trigger it defers with, as the triggerer
    rebuilds it (classpath + serialized kwargs)."""
    from airflow.sdk._shared.module_loading import import_string
    from airflow.sdk.exceptions import TaskDeferred

    op.pod_request_obj = op.build_pod_request_obj(context)
    op.pod = op.get_or_create_pod(op.pod_request_obj, context)
    with pytest.raises(TaskDeferred) as deferred:
        op.invoke_defer_method()
    classpath, kwargs = deferred.value.trigger.serialize()
    assert classpath == "containerkit.triggers.kubernetes.SecureKubernetesPodTrigger"
    return import_string(classpath)(**kwargs)


def _phase(cluster: LocalCluster, namespace: str, name: str) -> str | None:
    pod = cluster.get("Pod", namespace, name)
    return None if pod is None else (pod.get("status") or {}).get("phase")


async def _until(predicate: Any, timeout: float) -> float:
    started = time.monotonic()
    while not await asyncio.to_thread(predicate):
        assert time.monotonic() - started < timeout, "timed out"
        await asyncio.sleep(0.2)
    return time.monotonic() - started


async def _cancel_by_user_action(cluster: LocalCluster, namespace: str, name: str, trigger: Any) -> float:
    """Run ``trigger`` in Airflow's TriggerRunner until the pod runs, cancel it as a user action does,
    and return how long after the cancel the pod was gone (or -1 if it stays)."""
    from airflow.jobs.triggerer_job_runner import TriggerRunner

    runner = TriggerRunner()
    runner.triggers[1] = {"task": None, "name": "kpo-cancel", "events": 0, "is_watcher": False}  # type: ignore[typeddict-item]
    task = asyncio.create_task(runner.run_trigger(1, trigger))
    runner.triggers[1]["task"] = task
    await _until(lambda: _phase(cluster, namespace, name) == "Running", 90)
    await asyncio.sleep(1.0)  # the script has printed its line
    runner.to_cancel.append(1)
    cancelled = time.monotonic()
    await runner.cancel_triggers()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert task.cancelled() or task.done()
    try:
        await _until(lambda: cluster.get("Pod", namespace, name) is None, 30)
    except AssertionError:
        return -1.0
    return time.monotonic() - cancelled


XCOM_SCRIPT = "import json, pathlib; pathlib.Path('/airflow/xcom/return.json').write_text(json.dumps(1))"
SLEEPER = "import time\nprint('deferred and busy', flush=True)\ntime.sleep(300)"


@pytest.mark.parametrize("on_finish_action", ["delete_pod", "keep_pod"])
def test_a_user_cancel_of_the_deferred_task_logs_the_evidence_and_deletes_the_pod_within_seconds(
    cluster: LocalCluster,
    k8s_namespace: str,
    python_image: str,
    airflow_db: Any,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    on_finish_action: str,
) -> None:
    caplog.set_level(logging.INFO)
    op = _operator(k8s_namespace, python_image, SLEEPER, on_finish_action=on_finish_action)
    trigger = _defer(op, _context())
    name = op.pod.metadata.name
    gone_after = asyncio.run(_cancel_by_user_action(cluster, k8s_namespace, name, trigger))
    log = "".join(capfd.readouterr()) + caplog.text
    assert f"Deferred task cancelled; pod {k8s_namespace}/{name} was Running" in log
    assert "deferred and busy" in log  # the last log lines, read before the deletion
    if on_finish_action == "keep_pod":
        assert gone_after == -1.0 and _phase(cluster, k8s_namespace, name) == "Running"
        assert f"Pod {k8s_namespace}/{name} kept (on_finish_action=keep_pod)" in log
        cluster.call(lambda: None)  # the namespace fixture removes the kept pod
        return
    assert 0 <= gone_after < 15, gone_after
    assert cluster.wait_for_no_pods(k8s_namespace, timeout=30) == []
    assert [c for c in cluster.engine_objects()["containers"] if f"-{k8s_namespace}-" in c] == []


def test_the_trigger_timing_out_deletes_the_pod_and_names_the_deadline(
    cluster: LocalCluster, k8s_namespace: str, python_image: str, airflow_db: Any
) -> None:
    """``__fail__`` with a trigger timeout: a fresh worker reads the pod's evidence, deletes it, diagnoses."""
    import datetime

    from airflow.sdk.bases.operator import TriggerFailureReason

    from containerkit.diagnostics import ContainerTaskFailed

    context = _context()
    first = _operator(k8s_namespace, python_image, SLEEPER, execution_timeout=datetime.timedelta(seconds=30))
    _defer(first, context)
    name = first.pod.metadata.name
    asyncio.run(_until(lambda: _phase(cluster, k8s_namespace, name) == "Running", 90))

    resumed = _operator(
        k8s_namespace, python_image, SLEEPER, execution_timeout=datetime.timedelta(seconds=30)
    )
    with pytest.raises(ContainerTaskFailed) as failed:
        resumed.resume_execution("__fail__", {"error": TriggerFailureReason.TRIGGER_TIMEOUT}, context)
    diagnosis = failed.value.diagnosis
    assert diagnosis.cause == "DeadlineExceeded:execution_timeout"
    assert f"pod {k8s_namespace}/{name} deleted (on_finish_action=delete_pod)" in diagnosis.summary
    assert cluster.wait_for_no_pods(k8s_namespace, timeout=30) == []


async def _final_event(trigger: Any) -> dict[str, Any]:
    events = [event async for event in trigger.run()]
    assert len(events) == 1
    return dict(events[0].payload)


@pytest.mark.parametrize(
    ("script", "status", "xcom"),
    [
        pytest.param("print('done')", "success", False, id="succeeded"),
        pytest.param(XCOM_SCRIPT, "success", True, id="succeeded-with-xcom"),
        pytest.param("import sys; print('bad row'); sys.exit(3)", "failed", False, id="failed"),
    ],
)
def test_a_reentry_whose_pod_is_gone_uses_the_triggers_final_event(
    cluster: LocalCluster,
    k8s_namespace: str,
    python_image: str,
    airflow_db: Any,
    script: str,
    status: str,
    xcom: bool,
) -> None:
    from containerkit.diagnostics import ContainerTaskFailed

    context = _context()
    op = _operator(k8s_namespace, python_image, script, do_xcom_push=xcom)
    trigger = _defer(op, context)
    event = asyncio.run(_final_event(trigger))
    assert event["status"] == status
    # The pod is garbage-collected between the trigger's event and the reentry.
    name = op.pod.metadata.name
    op.pod_manager.delete_pod(op.pod)
    assert cluster.wait_for_no_pods(k8s_namespace, timeout=30) == []

    resumed = _operator(k8s_namespace, python_image, script, do_xcom_push=xcom)
    if status == "success" and not xcom:
        assert resumed.trigger_reentry(context, event) is None  # succeeded: not failed for a missing pod
        return
    with pytest.raises(ContainerTaskFailed) as failed:
        resumed.trigger_reentry(context, event)
    diagnosis = failed.value.diagnosis
    if xcom:  # a succeeded task whose return value is lost is not a silent success (apache/airflow #73117)
        assert diagnosis.cause == "PodGone:result-lost"
        assert diagnosis.summary.startswith(f"pod {k8s_namespace}/{name} succeeded (the trigger saw it)")
        return
    assert (diagnosis.cause, diagnosis.exit_code) == ("NonZeroExit", 3)
    assert diagnosis.summary == "container base exited with code 3"
    assert "log: bad row" in diagnosis.evidence
