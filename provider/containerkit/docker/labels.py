"""The labels a containerkit operator puts on each task container: which task instance it ran for.

Written by ``SecureDockerOperator`` and read back by it (an earlier try's leftovers after a lost
worker) and by ``containerkit reap``; one module, so the writer and the readers cannot drift.
"""

from __future__ import annotations

MANAGED_LABEL = "containerkit.managed"
"""On every container a containerkit operator creates."""

DAG_ID = "containerkit.dag_id"
TASK_ID = "containerkit.task_id"
RUN_ID = "containerkit.run_id"
TRY_NUMBER = "containerkit.try_number"
MAP_INDEX = "containerkit.map_index"

TASK_INSTANCE = (DAG_ID, TASK_ID, RUN_ID)
"""The labels every try of one task instance shares (with ``MAP_INDEX`` for a mapped one)."""


def task_instance_labels(
    dag_id: str, task_id: str, run_id: str, try_number: int | None, map_index: int
) -> dict[str, str]:
    """The exact ids as label values (Docker labels take any string; ``""`` when unknown)."""
    return {
        DAG_ID: dag_id,
        TASK_ID: task_id,
        RUN_ID: run_id,
        TRY_NUMBER: "" if try_number is None else str(try_number),
        MAP_INDEX: str(map_index),
    }
