"""The registry reference DAGs (88_04_01, 88_04_02, 88_10_05) run to success with dag.test().

``containerkit_registry_default`` points at the TLS + htpasswd registry, as a site sets it, so the
credentialed paths (the pull Secret rendered and used) run too. Each test also checks what the DAG
left behind: no local image carrying its ``containerkit.reference`` label.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

DAGS = Path(__file__).resolve().parents[3] / "dags"
BASE_IMAGE = os.environ.get("CONTAINERKIT_TEST_DEBIAN_IMAGE", "containerkit/base-debian:12")
PYTHON_IMAGE = os.environ.get("CONTAINERKIT_TEST_PYTHON_IMAGE", "containerkit/base-python:3.11")


def _dag(file: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(DAGS / file))
    assert not bag.import_errors, bag.import_errors
    (dag,) = bag.dags.values()
    return dag


def _states(dagrun: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dagrun.get_task_instances()}


def _xcom(dagrun: Any, task_id: str) -> Any:
    (ti,) = [ti for ti in dagrun.get_task_instances() if ti.task_id == task_id]
    return ti.xcom_pull(task_ids=task_id)


def _leftovers(docker_client: Any, dag_id: str) -> list[str]:
    return [i.id for i in docker_client.images.list(filters={"label": f"containerkit.reference={dag_id}"})]


@pytest.fixture
def default_registry(auth_registry, monkeypatch) -> Any:
    """``containerkit_registry_default`` pointing at the TLS + htpasswd registry."""
    conn = json.loads(os.environ[f"AIRFLOW_CONN_{auth_registry.conn_id.upper()}"])
    monkeypatch.setenv("AIRFLOW_CONN_CONTAINERKIT_REGISTRY_DEFAULT", json.dumps(conn))
    return auth_registry


def test_image_versioning_builds_once_and_promotes_by_digest(
    airflow_db, default_registry, test_images, docker_client
) -> None:
    sha = "abcdef1234567890abcdef1234567890abcdef12"
    run = _dag("88_04_02_image_versioning.py").test(
        run_conf={
            "base_image": BASE_IMAGE,
            "repository": "ck-dags/versioned",
            "git_sha": sha,
            "version": "2.1.0",
        }
    )
    states = _states(run)
    assert set(states.values()) == {"success"} and str(run.state) == "success", states
    verified, promoted = _xcom(run, "verify_tags"), _xcom(run, "promote")
    digest = verified["deploy"].split("@", 1)[1]
    assert verified["deploy"] == f"{default_registry.host}/ck-dags/versioned@{digest}"
    assert verified["tags"] == ["2.1.0", "dev", "sha-abcdef123456"]
    assert (promoted["environment"], promoted["digest"]) == ("prod", digest)
    assert len(_xcom(run, "refuse_latest")) == 2
    assert not _leftovers(docker_client, "88_04_02_image_versioning")


def test_image_registry_pins_and_uses_the_pull_secret(
    airflow_db, default_registry, test_images, docker_client
) -> None:
    image = "ck-dags/registry-demo:1.0.0"
    run = _dag("88_04_01_image_registry.py").test(run_conf={"image": image, "seed_from": BASE_IMAGE})
    states = _states(run)
    assert str(run.state) == "success" and set(states.values()) == {"success"}, states
    facts = _xcom(run, "tags_and_digest")
    assert facts["pinned"] == f"{default_registry.host}/ck-dags/registry-demo@{_xcom(run, 'seed')}"
    assert facts["tags"] == ["1.0.0"] and facts["user"] == "65532:65532" and not facts["runs_as_root"]
    assert facts["missing_tag"]["cause"] == "ImagePull:not-found" and facts["missing_tag"]["seconds"] < 5
    assert _xcom(run, "platforms")["platforms"] == ["linux/amd64"]
    secret = _xcom(run, "pull_secret")
    assert secret["secret"]["type"] == "kubernetes.io/dockerconfigjson"
    assert secret["pulled_image_id"].startswith("sha256:")
    assert default_registry.password not in json.dumps(secret)
    assert not _leftovers(docker_client, "88_04_01_image_registry")


def test_image_registry_skips_the_pull_secret_for_an_anonymous_registry(
    airflow_db, plain_registry, test_images, docker_client, monkeypatch
) -> None:
    conn = json.loads(os.environ[f"AIRFLOW_CONN_{plain_registry.conn_id.upper()}"])
    monkeypatch.setenv("AIRFLOW_CONN_CONTAINERKIT_REGISTRY_DEFAULT", json.dumps(conn))
    run = _dag("88_04_01_image_registry.py").test(
        run_conf={"image": "ck-dags/registry-anon:1.0.0", "seed_from": BASE_IMAGE}
    )
    states = _states(run)
    assert str(run.state) == "success", states
    assert states.pop("pull_secret") == "skipped" and set(states.values()) == {"success"}, states
    assert not _leftovers(docker_client, "88_04_01_image_registry")


def test_air_gapped_mirrors_archives_and_verifies_by_digest(
    airflow_db, default_registry, test_images, docker_client
) -> None:
    run = _dag("88_10_05_air_gapped.py").test(
        run_conf={
            "images": ["ck-dags/upstream/debian:12"],
            "seed_from": BASE_IMAGE,
            "python_base": PYTHON_IMAGE,
        }
    )
    states = _states(run)
    assert set(states.values()) == {"success"} and str(run.state) == "success", states
    seeded = _xcom(run, "seed")
    host = default_registry.host
    assert [m["digest"] for m in _xcom(run, "mirror")] == [seeded]
    archive = _xcom(run, "through_archive")
    assert [i["target"] for i in archive["imported"]] == [f"{host}/airgap/ck-dags/upstream/debian@{seeded}"]
    assert len(archive["archive_sha256"]) == 64 and archive["archive_bytes"] > 1_000_000
    assert _xcom(run, "build_from_wheelhouse")["wheels"] == ["ck_offline_hello-1.2.0-py3-none-any.whl"]
    assert _xcom(run, "verify_by_digest")[:2] == [
        f"{host}/mirror/ck-dags/upstream/debian@{seeded}",
        f"{host}/airgap/ck-dags/upstream/debian@{seeded}",
    ]
    update = _xcom(run, "update")
    assert update["blobs_copied"] == 1 and update["blobs_present"] >= 1  # only the new config moved
    assert not _leftovers(docker_client, "88_10_05_air_gapped")
    assert not docker_client.images.list(name=f"{host}/mirror/ck-dags/upstream/debian")
    docker_client.images.get(BASE_IMAGE)  # the local base survived the cleanup


def test_base_image_updates_rebuild_only_when_the_base_digest_moves(
    airflow_db, default_registry, test_images, docker_client
) -> None:
    """Run 1 builds, run 2 short-circuits, a new base digest is pushed, run 3 rebuilds on it."""
    from containerkit.hooks.image import ImageHook

    dag = _dag("88_04_04_base_image_updates.py")
    conf = {
        "base_image": "ck-dags/base/debian:12",
        "seed_base_from": BASE_IMAGE,
        "repository": "ck-dags/base-watch-app",
    }
    first = dag.test(run_conf=conf)
    states = _states(first)
    assert set(states.values()) == {"success"} and str(first.state) == "success", states
    built_on = _xcom(first, "publish")["base_digest"]
    assert _xcom(first, "check_base")["recorded_base_digest"] is None

    second = dag.test(run_conf=conf)
    states = _states(second)
    assert str(second.state) == "success", states
    assert {t: s for t, s in states.items() if s != "success"} == {
        "rebuild": "skipped",
        "package_changes": "skipped",
        "smoke_test": "skipped",
        "publish": "skipped",
    }
    assert _xcom(second, "check_base")["recorded_base_digest"] == built_on

    # A "security patch": a new base image (one more layer on the same Debian) pushed under the same tag.
    import io

    patched, _ = docker_client.images.build(
        fileobj=io.BytesIO(f"FROM {BASE_IMAGE}\nRUN echo deb12u99 > /etc/ck-patch-level\n".encode()),
        rm=True,
        labels={"containerkit.test": "registry"},
    )
    test_images.created.append(patched.id)
    hook = ImageHook("containerkit_registry_default")
    new_digest = test_images.push(
        patched.id,
        f"{default_registry.host}/ck-dags/base/debian",
        "12",
        auth_config={"username": default_registry.username, "password": default_registry.password},
    )
    assert new_digest != built_on
    third = dag.test(run_conf=conf)
    states = _states(third)
    assert set(states.values()) == {"success"} and str(third.state) == "success", states
    published = _xcom(third, "publish")
    assert published["base_digest"] == new_digest
    assert published["tag"] == f"1.0.0-base.{new_digest.split(':', 1)[1][:12]}"
    assert hook.registry_hook.resolve_digest("ck-dags/base-watch-app:current") == published["digest"]
    changes = _xcom(third, "package_changes")
    assert changes["packages"] > 50 and changes["removed"] == [] and changes["upgraded"] == []
    assert not _leftovers(docker_client, "88_04_04_base_image_updates")
