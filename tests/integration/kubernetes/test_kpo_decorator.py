"""``@task.secure_kubernetes`` against the fake cluster: the callable and its arguments never appear in
the pod spec; they travel in a pod-owned Secret that is removed with the pod."""

from __future__ import annotations

import base64
import datetime
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kube_harness import PODS, SECRETS, FakeCluster, succeed

IMAGE = "registry.example.com/team/python:3.11"
SECRET_ARG = "s3cr3t-customer-4711"


@pytest.mark.parametrize("deferrable", [False, True], ids=["sync", "deferrable"])
def test_callable_and_args_stay_out_of_the_pod_spec(
    fake_cluster: FakeCluster, run_dag: Any, tmp_path: Path, deferrable: bool
) -> None:
    from airflow.sdk import DAG, task

    fake_cluster.script(IMAGE, succeed(["scored"], xcom={"customer": SECRET_ARG, "score": 42}))

    with DAG(f"kpo_decorator_{deferrable}", schedule=None, start_date=datetime.datetime(2026, 1, 1)) as dag:

        @task.secure_kubernetes(
            image=IMAGE,
            namespace="airflow-tasks",
            do_xcom_push=True,
            deferrable=deferrable,
            poll_interval=0.5,
        )
        def score_customer(customer: str, weight: int) -> dict[str, Any]:
            return {"customer": customer, "score": weight * 21}

        score_customer(SECRET_ARG, weight=2)

    dagrun = run_dag(dag)
    ti = dagrun.get_task_instances()[0]
    assert ti.state == "success"
    assert ti.xcom_pull(task_ids=ti.task_id) == {"customer": SECRET_ARG, "score": 42}

    pod = fake_cluster.created_pods()[-1]
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
        o for o in fake_cluster.created_objects("Secret") if o["metadata"]["name"].startswith("ck-task-")
    )
    volume = next(v for v in pod["spec"]["volumes"] if v.get("secret"))
    assert volume["secret"] == {
        "secretName": secret["metadata"]["name"],
        "optional": False,
        "defaultMode": 0o444,
    }
    assert fake_cluster.pods() == [] and not list(fake_cluster.objects(SECRETS))

    # The shipped script really runs the function with the shipped arguments.
    for key, value in secret["data"].items():
        (tmp_path / key).write_bytes(base64.b64decode(value))
    out = tmp_path / "return.json"
    subprocess.run(
        [sys.executable, tmp_path / "script.py", tmp_path / "input.pkl", out], check=True, timeout=60
    )
    assert json.loads(out.read_text()) == {"customer": SECRET_ARG, "score": 42}
    assert PODS  # the harness resource key stays importable for other tests
