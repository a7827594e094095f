"""Every reference DAG parses, follows the naming scheme, and runs to success where its needs are met.

The same selection logic as the main job (``scripts/run_reference_dags.py``): a DAG's ``needs:*``
tags say what it must have to run; under ``CONTAINERKIT_REQUIRE_DOCKER=1`` a ``needs:docker`` DAG
may not be skipped. ``needs:kubernetes`` DAGs run on the session's local Docker-backed Kubernetes test
double (``containerkit.testing``, fixture ``local_cluster``) unless ``AIRFLOW_CONN_KUBERNETES_DEFAULT``
names a cluster. Task-level needs (compose, helm, trivy, cluster, internet) never skip the DAG; the
tasks that skipped themselves are printed with the DAG id, so CI output lists them.
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
KNOWN_NEEDS = {"docker", "kubernetes", "registry", "compose", "helm", "trivy", "cluster", "internet"}


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
def bag(reference_dagbag: Any) -> Any:
    # The DAG files read CONTAINERKIT_*_IMAGE at import: tests/conftest.py points them at the local
    # air-gapped bases before any DAG is parsed, as the runner's _docker_status() does for the main job.
    return reference_dagbag


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


def _local_kubernetes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point ``kubernetes_default`` at the session's local cluster (a test double), unless one is set."""
    if "AIRFLOW_CONN_KUBERNETES_DEFAULT" in os.environ or not RUNNER._docker_status()[0]:
        return
    cluster = request.getfixturevalue("local_cluster")
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", cluster.airflow_connection())


# Run by tests/integration/registry against a TLS registry with login (and, for 88_04_04, a moved base).
RUN_ELSEWHERE = {
    "88_04_01_image_registry.py": "tests/integration/registry/test_registry_dags.py",
    "88_04_02_image_versioning.py": "tests/integration/registry/test_registry_dags.py",
    "88_04_04_base_image_updates.py": "tests/integration/registry/test_registry_dags.py",
    "88_10_05_air_gapped.py": "tests/integration/registry/test_registry_dags.py",
}


@pytest.fixture(scope="module")
def local_registry() -> Any:
    """The main job's throwaway registry (Debian's distribution registry on 127.0.0.1) for this module."""
    with RUNNER._local_registry(True) as note:
        yield note


@pytest.mark.parametrize("dag_file", DAG_FILES)
def test_reference_dag_runs(
    bag: Any,
    dag_file: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dag = next(d for d in bag.dags.values() if Path(d.fileloc).name == dag_file)
    if dag_file in RUN_ELSEWHERE:
        pytest.skip(f"runs end to end in {RUN_ELSEWHERE[dag_file]}")
    if "needs:kubernetes" in (dag.tags or ()):
        _local_kubernetes(request, monkeypatch)
    if "needs:registry" in (dag.tags or ()) and RUNNER._docker_status()[0]:
        request.getfixturevalue("local_registry")
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
    skipped = sorted(t for t, state in states.items() if state == "skipped")
    if skipped:
        with capsys.disabled():  # in the CI log even when the test passes
            print(f"\n{dag.dag_id}: tasks skipped: {', '.join(skipped)}")
    assert str(dagrun.state) == "success", states
    # A teardown or all_done leaf can leave the run green over a failed task: every task must have
    # succeeded or skipped itself (a demonstrated failure is caught inside its task, by design).
    assert {t: state for t, state in states.items() if state not in ("success", "skipped")} == {}
