"""@task.secure_kubernetes: a TaskFlow function in a hardened pod, code and arguments not in the pod spec.

Unlike ``@task.kubernetes``, the function's source and its arguments are not in the pod spec (no base64
env vars that anyone with ``get pods`` can read): they travel in a Secret owned by the pod, mounted
read-only and garbage-collected with it. The pod runs with the restricted profile and the ``xs`` preset.

Tasks: ``score`` runs in the pod and returns a dict through the xcom sidecar; ``report`` checks it on the
worker. Copying: set ``CONTAINERKIT_NAMESPACE`` / ``CONTAINERKIT_PYTHON_IMAGE`` and the
``kubernetes_default`` connection. Needs a Kubernetes API (tag ``needs:kubernetes``; the tests use the
local Docker-backed one from ``containerkit.testing``).
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import dag, task

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
NAMESPACE = os.environ.get("CONTAINERKIT_NAMESPACE", "airflow-tasks")


@dag(
    dag_id="88_11_05_taskflow_secure_kubernetes",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "containerkit", "needs:kubernetes"],
    doc_md=__doc__,
)
def taskflow_secure_kubernetes() -> None:
    @task.secure_kubernetes(
        image=PYTHON_IMAGE,
        namespace=NAMESPACE,
        kubernetes_conn_id="kubernetes_default",
        do_xcom_push=True,
        resources="xs",
    )
    def score(customer_id: str, weight: int) -> dict[str, object]:
        return {"customer": customer_id, "score": weight * 21}

    @task
    def report(result: dict[str, object]) -> dict[str, object]:
        if result != {"customer": "c-4711", "score": 42}:
            raise ValueError(f"the pod returned {result!r}, expected customer c-4711 with score 42")
        print(f"customer {result['customer']} scored {result['score']}")
        return result

    report(score("c-4711", weight=2))


taskflow_secure_kubernetes()
