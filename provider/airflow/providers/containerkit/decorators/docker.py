"""``secure_docker_task`` (``@task.secure_docker``), importable where the dag-processor pre-imports it."""

from __future__ import annotations

from containerkit.decorators.docker import secure_docker_task
from containerkit.operators.preimport import warm

warm("docker")

__all__ = ["secure_docker_task"]
