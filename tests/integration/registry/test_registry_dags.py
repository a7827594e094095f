"""The image reference DAGs (88_01_03..05) run to success with dag.test() against a real registry."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

DAGS = Path(__file__).resolve().parents[3] / "dags"
BASE_IMAGE = os.environ.get("CONTAINERKIT_TEST_DEBIAN_IMAGE", "containerkit/base-debian:12")


def _dag(file: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(DAGS / file))
    assert not bag.import_errors, bag.import_errors
    (dag,) = bag.dags.values()
    return dag


def _xcom(dagrun: Any, task_id: str) -> Any:
    (ti,) = [ti for ti in dagrun.get_task_instances() if ti.task_id == task_id]
    return ti.xcom_pull(task_ids=task_id)


@pytest.fixture
def default_registry(auth_registry, monkeypatch) -> Any:
    """``containerkit_registry_default`` pointing at the TLS + htpasswd registry, as a site sets it."""
    conn = json.loads(os.environ[f"AIRFLOW_CONN_{auth_registry.conn_id.upper()}"])
    monkeypatch.setenv("AIRFLOW_CONN_CONTAINERKIT_REGISTRY_DEFAULT", json.dumps(conn))
    monkeypatch.syspath_prepend(str(DAGS))  # Airflow puts the dags folder on sys.path; so does this test
    return auth_registry


def test_build_pin_and_mirror_dags_run(airflow_db, default_registry, test_images, docker_client) -> None:
    from airflow.utils.state import DagRunState

    build = _dag("88_01_03_build_tag_push_image.py").test(
        run_conf={"base_image": BASE_IMAGE, "repository": "ck-dags/hello", "git_sha": "abcdef1234567"}
    )
    assert build.state == DagRunState.SUCCESS
    result = _xcom(build, "read_back")
    assert result["deploy"].startswith(f"{default_registry.host}/ck-dags/hello@sha256:")
    assert result["user"] == "65532:65532" and result["version_label"] == "1.0.0"
    assert not docker_client.images.list(filters={"label": "containerkit.example=88_01_03"})  # tags removed

    pin = _dag("88_01_04_pin_image_digest.py").test(run_conf={"image": "ck-dags/hello:sha-abcdef123456"})
    assert pin.state == DagRunState.SUCCESS
    assert _xcom(pin, "pin") == result["deploy"]

    missing = _dag("88_01_04_pin_image_digest.py").test(run_conf={"image": "ck-dags/hello:9.9.9"})
    assert missing.state == DagRunState.FAILED

    mirror = _dag("88_01_05_airgap_mirror.py").test(run_conf={"images": ["ck-dags/hello:dev"]})
    assert mirror.state == DagRunState.SUCCESS
    digest = result["deploy"].split("@", 1)[1]
    assert [m["digest"] for m in _xcom(mirror, "mirror")] == [digest]
    assert [m["target"] for m in _xcom(mirror, "through_archive")] == [
        f"{default_registry.host}/airgap/ck-dags/hello@{digest}"
    ]
