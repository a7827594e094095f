"""``partial(resources=...)`` on both secure operators and both decorators: a mapped task the scheduler
can deserialize, whose instances get the container resources asked for.

``BaseOperator`` has a ``resources`` of its own (executor resources); the scheduler reads a mapped
task's serialized ``partial_kwargs["resources"]`` as one, so a preset name there broke the DAG.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from airflow.sdk import DAG, task
from airflow.serialization.serialized_objects import DagSerialization

from containerkit.errors import SpecError
from containerkit.operators.docker import SecureDockerOperator
from containerkit.operators.kubernetes import SecureKubernetesPodOperator

OPERATORS = [SecureDockerOperator, SecureKubernetesPodOperator]
MAPPED_FIELD = {SecureDockerOperator: "command", SecureKubernetesPodOperator: "arguments"}
IMAGE = "python:3.11-slim"


def _round_trip(dag: Any) -> Any:
    return DagSerialization.from_dict(DagSerialization.to_dict(dag))


@pytest.mark.parametrize("operator", OPERATORS, ids=lambda o: o.__name__)
def test_partial_resources_survive_serialization_and_reach_the_spec(operator: type) -> None:
    with DAG(f"ck_mapped_{operator.__name__}", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        partial = operator.partial(task_id="m", image=IMAGE, resources="xs")  # type: ignore[attr-defined]
        partial.expand(**{MAPPED_FIELD[operator]: [["a"], ["b"]]})
    mapped = _round_trip(dag).task_dict["m"]
    assert mapped.partial_kwargs["spec_resources"] == "xs"
    assert mapped.partial_kwargs.get("resources") is None
    given = operator(task_id="x", image=IMAGE, spec_resources="xs").container_spec.resources
    assert given == operator(task_id="y", image=IMAGE, resources="xs").container_spec.resources
    assert given != operator(task_id="z", image=IMAGE).container_spec.resources  # "s", the default


@pytest.mark.parametrize("operator", OPERATORS, ids=lambda o: o.__name__)
def test_resources_and_spec_resources_together_are_refused(operator: type) -> None:
    with pytest.raises(SpecError, match="spec_resources='m': given together with resources"):
        operator(task_id="x", image=IMAGE, resources="xs", spec_resources="m")


@pytest.mark.parametrize("decorator", ["secure_docker", "secure_kubernetes"])
def test_decorated_mapped_task_with_resources_serializes(decorator: str) -> None:
    with DAG(f"ck_mapped_{decorator}", schedule=None, start_date=datetime(2026, 1, 1)) as dag:

        @getattr(task, decorator)(image=IMAGE, resources="xs")
        def work(n: int) -> int:
            return n

        work.expand(n=[1, 2])
    mapped = _round_trip(dag).task_dict["work"]
    assert mapped.partial_kwargs["spec_resources"] == "xs"
    assert mapped.partial_kwargs.get("resources") is None
