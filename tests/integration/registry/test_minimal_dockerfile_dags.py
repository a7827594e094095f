"""88_10_02 carries docker/task-images/minimal inline (so the DAG copies alone): the two must not drift."""

from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_inline_dockerfile_matches_the_shipped_one() -> None:
    spec = importlib.util.spec_from_file_location(
        "dag_88_10_02", REPO / "dags/88_10_02_minimal_dockerfile.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    shipped = REPO / "docker/task-images/minimal"
    assert (shipped / "Dockerfile").read_text() == module.DOCKERFILE
    assert (shipped / "requirements.txt").read_text() == module.REQUIREMENTS
    assert str(shipped) == module.CONTEXT_DIR  # found next to the DAG folder in this repo
