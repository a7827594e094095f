"""``secure_kubernetes_task`` (``@task.secure_kubernetes``), where the dag-processor pre-imports it."""

from __future__ import annotations

from containerkit.decorators.kubernetes import secure_kubernetes_task
from containerkit.operators.preimport import warm

warm("kubernetes")

__all__ = ["secure_kubernetes_task"]
