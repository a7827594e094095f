"""Every reference DAG parses, follows the naming scheme, and runs to success where its needs are met.

The same selection logic as the main job (``scripts/run_reference_dags.py``): a DAG's ``needs:*``
tags say what it must have to run; under ``CONTAINERKIT_REQUIRE_DOCKER=1`` a ``needs:docker`` DAG
may not be skipped.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
NAME = re.compile(r"^88_\d{2}_\d{2}_[a-z0-9_]+\.py$")
KNOWN_NEEDS = {"docker", "kubernetes", "registry"}


def _runner() -> Any:
    path = REPO / "scripts/run_reference_dags.py"
    spec = importlib.util.spec_from_file_location("run_reference_dags", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


RUNNER = _runner()
DAG_FILES = sorted(p.name for p in DAGS.glob("*.py"))


@pytest.fixture(scope="module")
def bag(airflow_db: Path) -> Any:
    RUNNER._docker_status()  # points CONTAINERKIT_*_IMAGE at the local air-gapped bases when present
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(str(DAGS))


def test_dag_files_are_named_per_pattern() -> None:
    assert DAG_FILES, "no reference DAGs in dags/"
    bad = [f for f in DAG_FILES if not NAME.match(f)]
    assert not bad, f"reference DAG files must be named 88_AA_BB_<pattern>.py: {bad}"


def test_every_dag_file_imports_cleanly_with_one_dag(bag: Any) -> None:
    assert not bag.import_errors, bag.import_errors
    per_file: dict[str, list[str]] = {}
    for dag in bag.dags.values():
        per_file.setdefault(Path(dag.fileloc).name, []).append(dag.dag_id)
    assert sorted(per_file) == DAG_FILES
    assert all(len(ids) == 1 for ids in per_file.values()), per_file


def test_needs_tags_are_known(bag: Any) -> None:
    for dag in bag.dags.values():
        needs = {t.split(":", 1)[1] for t in dag.tags or () if t.startswith("needs:")}
        assert needs <= KNOWN_NEEDS, (dag.dag_id, needs)


@pytest.mark.parametrize("dag_file", DAG_FILES)
def test_reference_dag_runs(bag: Any, dag_file: str) -> None:
    dag = next(d for d in bag.dags.values() if Path(d.fileloc).name == dag_file)
    status = RUNNER._needs_status()
    missing = [
        status[t.split(":", 1)[1]][1]
        for t in dag.tags or ()
        if t.startswith("needs:") and not status[t.split(":", 1)[1]][0]
    ]
    if missing:
        require_docker = os.environ.get("CONTAINERKIT_REQUIRE_DOCKER") == "1"
        if "needs:docker" in (dag.tags or ()) and require_docker and not status["docker"][0]:
            pytest.fail(f"CONTAINERKIT_REQUIRE_DOCKER=1 but {status['docker'][1]}")
        pytest.skip("; ".join(missing))
    dagrun = dag.test()
    states = {ti.task_id: str(ti.state) for ti in dagrun.get_task_instances()}
    assert str(dagrun.state) == "success", states
