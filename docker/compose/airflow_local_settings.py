"""Dev-stack cluster policies for docker-compose.yaml (mounted read-only, found through PYTHONPATH).

Two settings a newcomer's stack needs and a production deployment does not:

* ``dag_policy``: a DAG without a schedule starts unpaused. It runs only when someone triggers it, so
  unpausing it is safe, and the reference DAGs can be triggered from the UI at once. Scheduled DAGs keep
  ``[core] dags_are_paused_at_creation`` (paused), so nothing starts running on its own.
* ``task_policy``: every Docker task container (``DockerOperator`` and its subclasses, e.g.
  ``SecureDockerOperator``) carries the compose project's labels. ``docker compose down -v
  --remove-orphans`` then removes a task container a dead worker left behind, like any other container
  of the project, and ``docker compose ps`` lists running task containers as service
  ``containerkit-task``.

Standard library only: Airflow imports this module in every process. Airflow also runs the provider's own
policies (entry point ``airflow.policy``); pluggy calls both.
"""

from __future__ import annotations

import os
from typing import Any

PROJECT_ENV = "CONTAINERKIT_COMPOSE_PROJECT"
TASK_SERVICE = "containerkit-task"


def compose_labels(project: str) -> dict[str, str]:
    """The labels compose reads to count a container as part of ``project`` (an orphan service)."""
    return {
        "com.docker.compose.project": project,
        "com.docker.compose.service": TASK_SERVICE,
        "com.docker.compose.oneoff": "False",
        "com.docker.compose.container-number": "1",
        "com.docker.compose.config-hash": TASK_SERVICE,
        "com.docker.compose.version": "containerkit",
    }


def _is_docker_task(task: Any) -> bool:
    return any(cls.__name__ == "DockerOperator" for cls in type(task).__mro__)


def dag_policy(dag: Any) -> None:
    """Unpause DAGs without a schedule on creation (dev stack only)."""
    if getattr(dag, "is_paused_upon_creation", None) is None and getattr(dag, "schedule", "") is None:
        dag.is_paused_upon_creation = False


def task_policy(task: Any) -> None:
    """Give Docker task containers the compose project's labels (dev stack only)."""
    project = os.environ.get(PROJECT_ENV, "")
    if not project or not _is_docker_task(task):
        return
    labels = getattr(task, "labels", None)
    if isinstance(labels, (list, tuple)):
        labels = {name: "" for name in labels}
    task.labels = {**(labels or {}), **compose_labels(project)}
