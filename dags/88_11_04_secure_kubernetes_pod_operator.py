"""SecureKubernetesPodOperator: a hardened, sized pod that returns an XCom and reads a Secret key as env.

``SecureKubernetesPodOperator`` renders the pod from a ``ContainerSpec`` (restricted profile, ``s``
preset, read-only root filesystem with a writable /tmp), checks policy at parse time and again on the
final pod, and fails within seconds with a diagnosis when the pod cannot start.

Tasks:

* ``ensure_secret``: creates the demo Secret ``etl-api`` (key ``token``, a random value) in the task
  namespace when it does not exist yet, and reports whether it did; in your cluster the Secret comes
  from your secret manager (External Secrets, Vault, Sealed Secrets) and this task goes away.
* ``summarise``: the pod. It reads ``API_TOKEN`` from the Secret (only whether it is set reaches the
  XCom, never the value) and writes ``/airflow/xcom/return.json``.
* ``check_summary``: asserts the XCom; ``drop_secret`` deletes the Secret again if ``ensure_secret``
  created it (a teardown: a failed pod does not leave it behind, and the run still fails).

Copying: set ``CONTAINERKIT_NAMESPACE`` / ``CONTAINERKIT_PYTHON_IMAGE`` (or edit the constants) and the
``kubernetes_default`` connection. Needs a Kubernetes API (tag ``needs:kubernetes``; the tests use the
local Docker-backed one from ``containerkit.testing``).
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.kubernetes import SecureKubernetesPodOperator
from airflow.sdk import dag, task, teardown

from containerkit.spec import SecretRef

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
NAMESPACE = os.environ.get("CONTAINERKIT_NAMESPACE", "airflow-tasks")
KUBERNETES_CONN_ID = "kubernetes_default"
SECRET_NAME = "etl-api"


@dag(
    dag_id="88_11_04_secure_kubernetes_pod_operator",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "containerkit", "needs:kubernetes"],
    doc_md=__doc__,
)
def secure_kubernetes_pod_operator() -> None:
    @task
    def ensure_secret() -> bool:
        """Create the demo Secret if it is missing; True when this run created it."""
        import secrets

        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
        from kubernetes.client import V1ObjectMeta, V1Secret
        from kubernetes.client.exceptions import ApiException

        core = KubernetesHook(conn_id=KUBERNETES_CONN_ID).core_v1_client
        try:
            core.read_namespaced_secret(SECRET_NAME, NAMESPACE)
            return False
        except ApiException as exc:
            if exc.status != 404:
                raise
        body = V1Secret(
            metadata=V1ObjectMeta(name=SECRET_NAME, labels={"app.kubernetes.io/managed-by": "containerkit"}),
            string_data={"token": secrets.token_urlsafe(24)},
            type="Opaque",
        )
        core.create_namespaced_secret(NAMESPACE, body)
        return True

    summarise = SecureKubernetesPodOperator(
        task_id="summarise",
        name="summarise",
        namespace=NAMESPACE,
        kubernetes_conn_id=KUBERNETES_CONN_ID,
        image=PYTHON_IMAGE,
        cmds=["python", "-c"],
        arguments=[
            "import json, os, pathlib; "
            "pathlib.Path('/airflow/xcom/return.json').write_text(json.dumps({'rows': 3, "
            "'has_token': bool(os.environ.get('API_TOKEN'))}))"
        ],
        resources="s",
        secret_refs=[SecretRef(secret=SECRET_NAME, key="token", env="API_TOKEN")],
        do_xcom_push=True,
    )

    @task
    def check_summary(result: dict[str, Any]) -> dict[str, Any]:
        if result != {"rows": 3, "has_token": True}:
            raise ValueError(f"unexpected pod result {result!r}: expected rows=3 and the token set")
        return result

    @teardown
    def drop_secret(created: bool) -> None:
        if not created:
            return
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

        KubernetesHook(conn_id=KUBERNETES_CONN_ID).core_v1_client.delete_namespaced_secret(
            SECRET_NAME, NAMESPACE
        )

    created = ensure_secret()
    checked = check_summary(summarise.output)
    created >> summarise
    checked >> drop_secret(created)


secure_kubernetes_pod_operator()
