"""Resource tuning: measure a workload over several runs, let the recommender size it, see each QoS class.

**Problem.** Requests and limits are guesses until someone measures: too small and the task is
OOM-killed or throttled, too large and the cluster pays for idle reservations. The Vertical Pod
Autoscaler does not act on bare task pods, and the Kubernetes QoS class a task ends up with
(Guaranteed, Burstable, BestEffort: the eviction order under node pressure) follows from the numbers
nobody looked at.

**Practice.**

* *resource monitoring* (``workload``): one containerized workload run five times (a mapped
  ``SecureDockerOperator``, inputs of different sizes) on the generous ``s`` preset. containerkit
  samples each container while it runs and records one usage record per try: peak memory (the cgroup's
  own peak counter), CPU seconds, throttling, OOM flag, in the task log as one line, in XCom
  ``containerkit_usage`` and in the durable usage store.
* *memory tuning / CPU tuning* (``recommend_sizes``): ``containerkit.usage.recommend`` over those
  records: memory from the 90th percentile of peaks + 15 % (never below a successful peak, bumped after
  an OOM kill), request = limit; CPU request from the 90th percentile of per-try average cores + 15 %;
  the matching ``containerkit.spec`` preset, the ``resources=`` to paste, the flags (``oversized`` here)
  and the monthly over-request. It asserts that the recommendation holds every observed peak and is
  smaller than the preset the task ran with. ``containerkit recommend`` prints the same from the CLI.
* *QoS classes* (``qos_classes``): three renderings of the same task, the preset it ran with, the
  recommendation (memory request = limit, CPU request below the preset's CPU limit: Burstable) and the
  recommendation with CPU request = limit at the observed peak rate (Guaranteed: last to be evicted, but
  hard-capped at that rate). Each is rendered with
  ``containerkit.kubernetes.pod.render_pod``, checked by policy, created through the Kubernetes API,
  and the QoS class the cluster assigns (``status.qosClass``) is read back, printed, compared with
  ``containerkit.usage.qos.qos_class`` and the pods deleted.

**Copying.** Replace the workload with your task, run it for a week of real inputs (the recommender
wants five successful tries by default and weighs recent ones more: half-life 7 days), then paste the
suggested ``resources=``. Set ``CONTAINERKIT_PYTHON_IMAGE``, ``CONTAINERKIT_NAMESPACE`` and the
``kubernetes_default`` connection; records go to ``CONTAINERKIT_USAGE_STORE`` (default
``$AIRFLOW_HOME/containerkit/usage``; any path every worker can write, or an object-storage URL).

**Needs.** A Docker engine (``needs:docker``) and a Kubernetes API (``needs:kubernetes``; CI uses the
local Docker-backed test double, which assigns QoS classes as the API server does).
"""

from __future__ import annotations

import os
import time
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.docker import SecureDockerOperator
from airflow.sdk import dag, task, teardown

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
NAMESPACE = os.environ.get("CONTAINERKIT_NAMESPACE", "airflow-tasks")
DAG_ID = "88_08_03_resource_tuning"
KUBERNETES_CONN_ID = "kubernetes_default"
LABEL = {"containerkit.reference": DAG_ID}
RAN_WITH = "s"  # containerkit.spec.DEFAULT_PRESET, what the workload runs with
INPUT_MIB = [48, 64, 56, 72, 60]  # five runs of the workload, inputs of different sizes

# Holds an input of the given size in memory and does a little CPU work on it.
WORKLOAD = """
import sys, time
size = int(sys.argv[1])
data = bytearray(size * 1024 * 1024)
for i in range(0, len(data), 4096):
    data[i] = 1
checksum = 0
for _ in range(3):
    checksum += sum(data[::4096])
time.sleep(1.0)
print(f"processed {size} MiB, checksum {checksum}")
"""


def _core_api() -> Any:
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
    from kubernetes.client import CoreV1Api

    return CoreV1Api(KubernetesHook(conn_id=KUBERNETES_CONN_ID).api_client)


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "performance", "intermediate", "success", "needs:docker", "needs:kubernetes"],
    doc_md=__doc__,
)
def resource_tuning() -> None:
    # No resources= here: it is the default preset (``s``), and a mapped operator's partial
    # ``resources`` collides with BaseOperator.resources when Airflow serializes the DAG.
    workload = SecureDockerOperator.partial(
        task_id="workload",
        image=PYTHON_IMAGE,
        labels=LABEL,
    ).expand(command=[["python", "-c", WORKLOAD, str(size)] for size in INPUT_MIB])

    @task
    def recommend_sizes(**context: Any) -> dict[str, Any]:
        """Size the workload from its usage records of this run (XCom: works on remote workers too)."""
        from containerkit.spec import RESOURCE_PRESETS, Resources
        from containerkit.usage.recommend import RecommendOptions, recommend
        from containerkit.usage.record import UsageRecord
        from containerkit.usage.report_text import patch, table

        pulled = context["ti"].xcom_pull(task_ids="workload", key="containerkit_usage") or []
        records = [UsageRecord.from_dict(item) for item in pulled if item]
        if len(records) != len(INPUT_MIB):
            raise AssertionError(f"expected {len(INPUT_MIB)} usage records, got {len(records)}")
        for record in records:
            print(f"try map_index={record.map_index}: {record.summary()}")
        [answer] = recommend(records, options=RecommendOptions(min_history=len(INPUT_MIB)))
        print(table([answer]))
        print(patch([answer]))
        if answer.memory_bytes is None or answer.cpu_request_cores is None:
            raise AssertionError(f"no recommendation: {answer.reason}")
        peak = max(r.peak_memory_bytes or 0 for r in records)
        ran_with = RESOURCE_PRESETS[RAN_WITH]
        problems = []
        if answer.memory_bytes < peak:
            problems.append(f"recommended memory {answer.memory} is below an observed peak")
        if answer.memory_bytes >= ran_with.memory_limit_bytes:
            problems.append(f"recommended memory {answer.memory} is not below the {RAN_WITH} preset's")
        if "oversized" not in answer.flags:
            problems.append(
                f"the workload ran on {RAN_WITH} far above its peak but is not flagged: {answer.flags}"
            )
        Resources.coerce(answer.resources)  # the suggestion is a valid spec
        if problems:
            raise AssertionError("; ".join(problems))
        return {
            "memory": answer.memory,
            "cpu_request": answer.cpu_request,
            "cpu_limit": answer.cpu_limit,
            "resources": answer.resources,
            "flags": list(answer.flags),
            "over_request_gib_hours": answer.over_request_gib_hours,
        }

    @task
    def qos_classes(sizes: dict[str, Any], **context: Any) -> dict[str, str]:
        """Create each rendering as a pod and read the QoS class the cluster gives it."""
        from kubernetes.client.exceptions import ApiException

        from containerkit.kubernetes.manifests import to_dict
        from containerkit.kubernetes.pod import render_pod
        from containerkit.policy.enforce import check_pod
        from containerkit.spec import ContainerSpec
        from containerkit.usage.qos import qos_class

        recommended = sizes["resources"]
        base = recommended if isinstance(recommended, dict) else {"preset": recommended}
        renderings = {
            f"preset {RAN_WITH}": RAN_WITH,
            "recommended": recommended,
            "recommended, cpu request = limit": {
                **{k: v for k, v in base.items() if k not in ("requests", "limits")},
                "memory": sizes["memory"],
                "cpu": sizes["cpu_limit"] or sizes["cpu_request"],  # the peak rate: not throttled below it
            },
        }
        expected = {
            f"preset {RAN_WITH}": "Burstable",
            "recommended": "Burstable",
            "recommended, cpu request = limit": "Guaranteed",
        }
        api = _core_api()
        suffix = context["run_id"].encode().hex()[-6:]
        created: list[str] = []
        seen: dict[str, str] = {}
        try:
            for index, (label, resources) in enumerate(renderings.items()):
                spec = ContainerSpec(
                    PYTHON_IMAGE,
                    command=["python", "-c", "print('qos probe')"],
                    resources=resources,
                    labels=LABEL,
                )
                pod = render_pod(spec, name=f"qos-{index}-{suffix}", namespace=NAMESPACE)
                check_pod(pod, mode="enforce", where=f"{DAG_ID} rendering {label!r}")
                local = qos_class(to_dict(pod))
                api.create_namespaced_pod(NAMESPACE, pod)
                created.append(pod.metadata.name)
                assigned = None
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    status = api.read_namespaced_pod(pod.metadata.name, NAMESPACE).status
                    if status is not None and status.phase not in (None, "Pending") and status.qos_class:
                        assigned = status.qos_class
                        break
                    time.sleep(0.5)
                container = pod.spec.containers[0].resources
                print(
                    f"{label:34s} requests {container.requests}  limits {container.limits}  "
                    f"-> QoS {assigned} (containerkit.usage.qos says {local})"
                )
                if assigned != local or assigned != expected[label]:
                    raise AssertionError(
                        f"{label}: cluster says {assigned}, local {local}, expected {expected[label]}"
                    )
                seen[label] = assigned
        finally:
            for name in created:
                try:
                    api.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)
                except ApiException as exc:
                    if exc.status != 404:
                        raise
        return seen

    @teardown
    def remove_leftovers() -> None:
        """Every container the workload started is removed by the operator; nothing labelled is left."""
        import docker

        client = docker.from_env()
        try:
            left = client.containers.list(all=True, filters={"label": [f"{k}={v}" for k, v in LABEL.items()]})
            for container in left:
                container.remove(force=True, v=True)
        finally:
            client.close()

    sizes = recommend_sizes()
    workload >> sizes
    qos = qos_classes(sizes)
    qos >> remove_leftovers()


resource_tuning()
