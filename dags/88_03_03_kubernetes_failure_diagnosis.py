"""Fail fast with a diagnosis: a pod whose Secret key does not exist.

Stock KubernetesPodOperator waits ``startup_timeout_seconds`` (120 s) on CreateContainerConfigError;
``SecureKubernetesPodOperator`` fails within seconds with
``CreateContainerConfigError:secret-key-missing: Secret <ns>/etl-db has no key 'passwrd' ...`` and the fix,
deletes the pod, and logs its events. ``on_failure_callback`` shows how to read the diagnosis.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from airflow.sdk import DAG

from containerkit.diagnostics import ContainerTaskFailed
from containerkit.operators.kubernetes import SecureKubernetesPodOperator
from containerkit.spec import SecretRef
from containerkit_examples import KUBERNETES_NAMESPACE, PYTHON_IMAGE


def page_on_call(context: dict[str, Any]) -> None:
    error = context.get("exception")
    if isinstance(error, ContainerTaskFailed):
        logging.getLogger(__name__).error("cause=%s fix=%s", error.diagnosis.cause, error.diagnosis.fix)


with DAG(
    dag_id="88_03_03_kubernetes_failure_diagnosis",
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1),
    catchup=False,
    tags=["containerkit", "kubernetes", "needs:kubernetes"],
    doc_md=__doc__,
):
    SecureKubernetesPodOperator(
        task_id="misspelt_secret_key",
        namespace=KUBERNETES_NAMESPACE,
        image=PYTHON_IMAGE,
        cmds=["python", "-c", "print('never runs')"],
        secret_refs=[SecretRef(secret="etl-db", key="passwrd", env="DB_PASSWORD")],
        on_failure_callback=page_on_call,
        retries=0,
    )
