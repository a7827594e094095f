"""``@task.secure_kubernetes``: a TaskFlow function in a hardened pod.

Unlike ``@task.kubernetes``, the function's source and its arguments are not in the pod spec (no base64
env vars): they travel in a Secret owned by the pod and mounted read-only, garbage-collected with it.
"""

from __future__ import annotations

import datetime

from airflow.sdk import DAG, task

from containerkit_examples import KUBERNETES_NAMESPACE, PYTHON_IMAGE

with DAG(
    dag_id="88_03_02_taskflow_secure_kubernetes",
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    tags=["containerkit", "kubernetes", "needs:kubernetes"],
    doc_md=__doc__,
):

    @task.secure_kubernetes(
        image=PYTHON_IMAGE, namespace=KUBERNETES_NAMESPACE, do_xcom_push=True, resources="xs"
    )
    def score(customer_id: str, weight: int) -> dict[str, object]:
        return {"customer": customer_id, "score": weight * 21}

    @task
    def report(result: dict[str, object]) -> None:
        print(f"customer {result['customer']} scored {result['score']}")

    report(score("c-4711", weight=2))
