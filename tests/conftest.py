"""Shared fixtures: the Docker engine gate and an isolated Airflow home for in-process DAG tests."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# An isolated, SQLite-backed Airflow for the whole pytest process (set before airflow is imported).
_AIRFLOW_HOME = Path(
    os.environ.get("CONTAINERKIT_TEST_AIRFLOW_HOME") or tempfile.mkdtemp(prefix="ck-airflow-")
)
os.environ.setdefault("AIRFLOW_HOME", str(_AIRFLOW_HOME))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_AIRFLOW_HOME}/airflow.db")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(Path(__file__).resolve().parents[1] / "dags"))

REPO_ROOT = Path(__file__).resolve().parents[1]
# Airflow's dag-processor puts the DAGs folder on sys.path; the reference DAGs' shared settings rely on it.
sys.path.insert(0, str(REPO_ROOT / "dags"))
BASE_PYTHON_IMAGE = os.environ.get("CONTAINERKIT_TEST_PYTHON_IMAGE", "containerkit/base-python:3.11")
BASE_DEBIAN_IMAGE = os.environ.get("CONTAINERKIT_TEST_DEBIAN_IMAGE", "containerkit/base-debian:12")
# Tests never pull: the reference DAGs' images (CONTAINERKIT_*_IMAGE, read by each DAG) are the local
# air-gapped bases, set before any test imports a DAG file (each module reads them once).
os.environ.setdefault("CONTAINERKIT_PYTHON_IMAGE", BASE_PYTHON_IMAGE)
os.environ.setdefault("CONTAINERKIT_DEBIAN_IMAGE", BASE_DEBIAN_IMAGE)
os.environ.setdefault("CONTAINERKIT_AIRFLOW_IMAGE", "containerkit/base-airflow:3.3.2-python3.11")
os.environ.setdefault("CONTAINERKIT_POSTGRES_IMAGE", "containerkit/postgres:15")
os.environ.setdefault("CONTAINERKIT_REDIS_IMAGE", "containerkit/redis:7")


def docker_required() -> bool:
    return os.environ.get("CONTAINERKIT_REQUIRE_DOCKER") == "1"


def _docker_unavailable_reason() -> str | None:
    try:
        import docker

        client = docker.from_env(timeout=5)
        client.ping()
        client.close()
    except Exception as exc:  # any failure means "no engine" for gating purposes
        return f"no Docker engine reachable ({type(exc).__name__}: {exc})"
    return None


@pytest.fixture(scope="session")
def docker_client() -> Iterator[object]:
    """A docker-py client; skips (or fails under CONTAINERKIT_REQUIRE_DOCKER=1) without an engine."""
    reason = _docker_unavailable_reason()
    if reason:
        if docker_required():
            pytest.fail(f"CONTAINERKIT_REQUIRE_DOCKER=1 but {reason}")
        pytest.skip(reason)
    import docker

    client = docker.from_env(timeout=120)
    yield client
    client.close()


@pytest.fixture(scope="session")
def python_image(docker_client: object) -> str:
    """The local python:3.11-slim stand-in (docker/airgap/build-bases.sh builds it)."""
    import docker

    assert isinstance(docker_client, docker.DockerClient)
    try:
        docker_client.images.get(BASE_PYTHON_IMAGE)
    except docker.errors.ImageNotFound:
        msg = f"{BASE_PYTHON_IMAGE} missing: run docker/airgap/build-bases.sh python"
        if docker_required():
            pytest.fail(msg)
        pytest.skip(msg)
    return BASE_PYTHON_IMAGE


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Migrate the SQLite metadata DB once per process so dag.test() can run."""
    from airflow.utils import db

    db.resetdb() if os.environ.get("CONTAINERKIT_RESET_DB") else db.initdb()
    return _AIRFLOW_HOME


@pytest.fixture(scope="session")
def reference_dagbag(airflow_db: Path) -> object:
    """The DagBag of ``dags/``, parsed once per session (56 files, 30-60 s here): the contract tests and
    the run tests read the same DAG objects."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(str(REPO_ROOT / "dags"))


def sync_dag(dag: object) -> None:
    """Serialize a DAG defined outside the dags folder into the metadata DB.

    Airflow 3.3's ``dag.test()`` only runs DAGs it can find in a configured bundle; a DAG built
    inside a test module is not in one, so it is written to the ``dags-folder`` bundle directly.
    """
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(collect_dags=False)
    bag.bag_dag(dag)  # type: ignore[arg-type]
    sync_bag_to_db(bag, "dags-folder", None)


@pytest.fixture
def run_dag(airflow_db: Path):  # type: ignore[no-untyped-def]
    """``run_dag(dag, **test_kwargs) -> DagRun``: ``dag.test()`` for a DAG built inside a test."""

    def _run(dag, **kwargs):  # type: ignore[no-untyped-def]
        sync_dag(dag)
        return dag.test(**kwargs)

    return _run


def pytest_configure(config: pytest.Config) -> None:
    """Hold every SARIF and JUnit report rendered in this process to its schema.

    Wrapping the two renderers once, here, covers every test that lints in-process (CLI runner or
    API) without each remembering to validate; subprocess runs validate with ``report_schemas``.
    """
    import functools

    from report_schemas import assert_valid_junit, assert_valid_sarif

    from containerkit.policy.report import junit, sarif

    for module, check in ((sarif, assert_valid_sarif), (junit, assert_valid_junit)):
        original = module.render

        @functools.wraps(original)
        def checked(*args: object, _render=original, _check=check, **kwargs: object) -> str:  # type: ignore[no-untyped-def]
            out: str = _render(*args, **kwargs)
            _check(out)
            return out

        module.render = checked  # type: ignore[assignment]
