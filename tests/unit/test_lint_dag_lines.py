"""Finding lines for DAG tasks: the operator call, the ``@task`` decorator, the DAG for computed ids."""

from __future__ import annotations

from pathlib import Path

from containerkit.policy.sources.dag_lines import task_lines

SOURCE = """\
from airflow.sdk import DAG, dag, task
from airflow.providers.docker.operators.docker import DockerOperator

with DAG(
    "classic",
    schedule=None,
):
    DockerOperator(task_id="literal", image="x:1")
    for i in range(2):
        DockerOperator(task_id=f"computed_{i}", image="x:1")


@dag(schedule=None)
def decorated():
    @task.docker(image="x:1")
    def by_name():
        pass

    @task.kubernetes(image="x:1", task_id="explicit")
    def ignored_name():
        pass
"""


def test_task_lines(tmp_path: Path) -> None:
    f = tmp_path / "d.py"
    f.write_text(SOURCE)
    lines = task_lines(str(f), f.stat().st_mtime)
    assert lines.of("literal", "classic") == (8, 5)
    assert lines.of("group.literal", "classic") == (8, 5)  # TaskGroup prefix
    assert lines.of("computed_1", "classic") == (4, 6)  # no literal: the DAG(...) call
    assert lines.of("by_name", "decorated") == (15, 6)
    assert lines.of("explicit", "decorated") == (19, 6)
    assert lines.of("unknown", "decorated") == (13, 2)


def test_unparseable_file_falls_back_to_line_one(tmp_path: Path) -> None:
    f = tmp_path / "bad.py"
    f.write_text("def (:\n")
    assert task_lines(str(f), f.stat().st_mtime).of("t", "d") == (1, 1)
