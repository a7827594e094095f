"""``SecureDockerOperator.partial(resources=...)``: a mapped task the scheduler can deserialize.

``BaseOperator`` has a ``resources`` of its own (executor resources); the scheduler reads a mapped
task's serialized ``partial_kwargs["resources"]`` as one, so a preset name there broke the DAG.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from airflow.sdk import DAG
from airflow.serialization.serialized_objects import DagSerialization

from containerkit.errors import SpecError
from containerkit.operators.docker import SecureDockerOperator


def test_partial_resources_survive_serialization_and_reach_the_spec() -> None:
    with DAG("ck_mapped_unit", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        SecureDockerOperator.partial(task_id="m", image="python:3.11-slim", resources="xs").expand(
            command=[["true"], ["false"]]
        )
    back = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    mapped = back.task_dict["m"]
    assert mapped.partial_kwargs["spec_resources"] == "xs"
    assert mapped.partial_kwargs.get("resources") is None
    op = SecureDockerOperator(task_id="x", image="python:3.11-slim", spec_resources="xs")
    assert (
        op.container_spec.resources
        == SecureDockerOperator(
            task_id="y", image="python:3.11-slim", resources="xs"
        ).container_spec.resources
    )


def test_resources_and_spec_resources_together_are_refused() -> None:
    with pytest.raises(SpecError, match="spec_resources"):
        SecureDockerOperator(task_id="x", image="python:3.11-slim", resources="xs", spec_resources="m")
