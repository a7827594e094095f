"""Pattern 88_03_04: size and harden KubernetesExecutor worker pods per task with ``pod_override``.

Under KubernetesExecutor every task runs in its own worker pod built from the pod template; a task's
``executor_config={"pod_override": ...}`` is merged over it. containerkit renders that override from a
:class:`~containerkit.spec.ContainerSpec`, so the override carries a resource preset and the restricted
security profile (non-root 50000:0, read-only root with a writable ``/tmp``, no capabilities, seccomp
RuntimeDefault, no service-account token) instead of a hand-written ``V1Pod``.

The override's ``base`` container keeps the executor's command (``airflow tasks run ...``): the spec has
no ``command``, and :func:`~containerkit.kubernetes.pod.pod_override` refuses one. Its image must be an
Airflow image with the DAG's dependencies.

Other executors ignore ``pod_override``, so the DAG runs anywhere; each task reports the worker pod it
asked for, and ``check_overrides`` fails the run if an override lost its hardening or sizing.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import dag, get_current_context, task

from containerkit.kubernetes.pod import pod_override
from containerkit.spec import ContainerSpec, Scheduling, Toleration
from containerkit_examples import AIRFLOW_IMAGE

SMALL = ContainerSpec(AIRFLOW_IMAGE, resources="s", labels={"containerkit.io/size": "s"})
# A memory-heavy task: the "l" preset (4Gi, limit == request) on the batch node pool.
LARGE = ContainerSpec(
    AIRFLOW_IMAGE,
    resources="l",
    labels={"containerkit.io/size": "l"},
    scheduling=Scheduling(
        node_selector={"pool": "batch"}, tolerations=(Toleration("pool", "Equal", "batch", "NoSchedule"),)
    ),
)


def _requested_pod() -> dict[str, Any]:
    """What this task's pod_override asks for, read from the running task's own executor_config."""
    override = get_current_context()["task"].executor_config["pod_override"]
    base = override.spec.containers[0]
    sc = base.security_context
    return {
        "container": base.name,
        "limits": dict(base.resources.limits),
        "requests": dict(base.resources.requests),
        "run_as_user": sc.run_as_user,
        "read_only_root": sc.read_only_root_filesystem,
        "drop": list(sc.capabilities.drop),
        "token_mounted": override.spec.automount_service_account_token,
        "node_selector": dict(override.spec.node_selector or {}),
    }


@dag(
    dag_id="88_03_04_executor_pod_override",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["containerkit", "pattern:executor-pod-override"],
    doc_md=__doc__,
)
def executor_pod_override() -> None:
    @task(executor_config={"pod_override": pod_override(SMALL)})
    def extract() -> dict[str, Any]:
        return {"rows": 1000, "pod": _requested_pod()}

    @task(executor_config={"pod_override": pod_override(LARGE)})
    def aggregate(extracted: dict[str, Any]) -> dict[str, Any]:
        return {"total": extracted["rows"] * 2, "pod": _requested_pod(), "upstream_pod": extracted["pod"]}

    @task
    def check_overrides(result: dict[str, Any]) -> dict[str, Any]:
        small, large = result["upstream_pod"], result["pod"]
        problems = []
        for name, pod in (("extract", small), ("aggregate", large)):
            if pod["container"] != "base":
                problems.append(f"{name}: override container {pod['container']!r} is not 'base'")
            if pod["run_as_user"] in (None, 0) or not pod["read_only_root"] or pod["drop"] != ["ALL"]:
                problems.append(f"{name}: override is not hardened: {pod}")
            if pod["token_mounted"] is not False:
                problems.append(f"{name}: service-account token is mounted")
            if pod["limits"]["memory"] != pod["requests"]["memory"]:
                problems.append(f"{name}: memory limit != request")
        if large["limits"]["memory"] != "4Gi" or large["node_selector"] != {"pool": "batch"}:
            problems.append(f"aggregate: expected the l preset on the batch pool, got {large}")
        if problems:
            raise ValueError("; ".join(problems))
        return {
            "total": result["total"],
            "memory": {"extract": small["limits"]["memory"], "aggregate": "4Gi"},
        }

    check_overrides(aggregate(extract()))


executor_pod_override()
