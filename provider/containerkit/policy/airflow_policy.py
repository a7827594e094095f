"""Cluster-wide enforcement for ``airflow_local_settings.py``: the same check on every pod and task.

Platform teams add two lines to ``airflow_local_settings.py``::

    from containerkit.policy.airflow_policy import pod_mutation_hook, task_policy  # noqa: F401

``task_policy`` runs while a DAG file is parsed: every container task (stock ``KubernetesPodOperator`` /
``DockerOperator``, decorators and subclasses included) is rendered and checked, so under ``enforce`` a
violating task fails the DAG import with the findings in the import error. A task's own
``policy_mode`` / ``policy_exemptions`` attributes (containerkit operators) and a pod's
``containerkit.io/ignore`` annotation are honoured. ``pod_mutation_hook`` checks every pod Airflow
launches (KubernetesExecutor workers and KubernetesPodOperator pods) just before creation.
"""

from __future__ import annotations

from typing import Any

from containerkit.policy.enforce import PolicyViolation, check_pod, enforce_findings, resolve_mode
from containerkit.policy.model import Finding

MODE_ATTR = "policy_mode"


def check_task(task: Any) -> list[Finding]:
    """Render and check one task; raises :class:`PolicyViolation` under ``enforce``."""
    mode = resolve_mode(getattr(task, MODE_ATTR, None))
    if mode == "off":
        return []
    from containerkit.policy.engine import evaluate
    from containerkit.policy.sources.dags import task_exemptions, task_target

    dag_id = getattr(task, "dag_id", None)
    target = task_target(task, dag_id=dag_id)
    if target is None:
        return []
    exemptions = task_exemptions(task)
    where = f"task {dag_id}.{task.task_id}" if dag_id else f"task {task.task_id}"
    return enforce_findings(evaluate(target), mode=mode, where=where, exemptions=exemptions)


def task_policy(task: Any) -> None:
    """Airflow cluster policy: raise ``AirflowClusterPolicyViolation`` when a task breaks an error rule."""
    from airflow.exceptions import AirflowClusterPolicyViolation

    try:
        check_task(task)
    except PolicyViolation as exc:
        raise AirflowClusterPolicyViolation(str(exc)) from exc


def pod_mutation_hook(pod: Any) -> None:
    """Airflow pod hook: check (never change) the pod about to be created; raises under ``enforce``."""
    name = getattr(getattr(pod, "metadata", None), "name", None) or "<unnamed>"
    check_pod(pod, where=f"pod {name}")
