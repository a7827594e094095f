"""A hardened, sized pod that returns an XCom, with a Secret key as an env var.

``SecureKubernetesPodOperator`` renders the pod from a ``ContainerSpec`` (restricted profile, ``s``
preset, read-only root filesystem with a writable /tmp), checks policy at parse time and again on the
final pod, and fails within seconds with a diagnosis when the pod cannot start.
"""

from __future__ import annotations

import datetime

from airflow.sdk import DAG

from containerkit.operators.kubernetes import SecureKubernetesPodOperator
from containerkit.spec import SecretRef
from containerkit_examples import KUBERNETES_NAMESPACE, PYTHON_IMAGE

with DAG(
    dag_id="88_03_01_secure_kubernetes_pod_operator",
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    tags=["containerkit", "kubernetes", "needs:kubernetes"],
    doc_md=__doc__,
):
    SecureKubernetesPodOperator(
        task_id="summarise",
        namespace=KUBERNETES_NAMESPACE,
        image=PYTHON_IMAGE,
        cmds=["python", "-c"],
        arguments=[
            "import json, os, pathlib; "
            "pathlib.Path('/airflow/xcom/return.json').write_text(json.dumps({'rows': 3, "
            "'has_token': bool(os.environ.get('API_TOKEN'))}))"
        ],
        resources="s",
        secret_refs=[SecretRef(secret="etl-api", key="token", env="API_TOKEN")],
        do_xcom_push=True,
    )
