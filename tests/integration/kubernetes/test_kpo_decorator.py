"""``@task.secure_kubernetes`` on the local Docker-backed test double: the function really runs in the
pod, while its source and arguments never appear in the pod spec; they travel in a pod-owned Secret
that goes with the pod."""

from __future__ import annotations

import base64
import datetime
import json
from typing import Any

import pytest

from containerkit.testing.cluster import LocalCluster

SECRET_ARG = "s3cr3t-customer-4711"


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
def test_callable_runs_and_args_stay_out_of_the_pod_spec(
    cluster: LocalCluster, k8s_namespace: str, python_image: str, run_dag: Any, deferrable: bool
) -> None:
    from airflow.sdk import DAG, task

    with DAG(f"kpo_decorator_{deferrable}", schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:

        @task.secure_kubernetes(
            image=python_image,
            namespace=k8s_namespace,
            do_xcom_push=True,
            deferrable=deferrable,
            poll_interval=0.5,
        )
        def score_customer(customer: str, weight: int) -> dict[str, Any]:
            import os

            return {"customer": customer, "score": weight * 21, "uid": os.getuid()}

        score_customer(SECRET_ARG, weight=2)

    dagrun = run_dag(dag)
    ti = dagrun.get_task_instances()[0]
    assert ti.state == "success"
    # Computed in the pod, by the hardened uid, from the arguments shipped in the Secret.
    assert ti.xcom_pull(task_ids=ti.task_id) == {"customer": SECRET_ARG, "score": 42, "uid": 50000}

    pod = cluster.submitted("Pod", k8s_namespace)[-1]
    dumped = json.dumps(pod)
    for needle in (
        "def score_customer",
        SECRET_ARG,
        "weight * 21",
        base64.b64encode(SECRET_ARG.encode()).decode()[:12],
    ):
        assert needle not in dumped, f"{needle!r} readable from the pod spec"
    env_names = [e["name"] for c in pod["spec"]["containers"] for e in c.get("env") or []]
    assert not any(name.startswith("__PYTHON") for name in env_names)

    secret = next(
        o for o in cluster.submitted("Secret", k8s_namespace) if o["metadata"]["name"].startswith("ck-task-")
    )
    volume = next(v for v in pod["spec"]["volumes"] if v.get("secret"))
    assert volume["secret"] == {
        "secretName": secret["metadata"]["name"],
        "optional": False,
        "defaultMode": 0o444,
    }
    assert cluster.wait_for_no_pods(k8s_namespace, timeout=45) == []
    assert cluster.list_objects("Secret", k8s_namespace) == []
