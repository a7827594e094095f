"""Fixtures for the Kubernetes operator tests: the fake cluster and an Airflow connection to it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from kube_harness import FakeCluster

CONN_ENV = "AIRFLOW_CONN_KUBERNETES_DEFAULT"


@pytest.fixture(scope="session")
def fake_cluster_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeCluster]:
    with FakeCluster(tmp_path_factory.mktemp("kube")) as cluster:
        yield cluster


@pytest.fixture
def fake_cluster(fake_cluster_session: FakeCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCluster]:
    """The fake cluster, emptied, with ``kubernetes_default`` pointing at it (not in cluster)."""
    fake_cluster_session.reset()
    conn = {
        "conn_type": "kubernetes",
        "extra": {"in_cluster": False, "kube_config_path": str(fake_cluster_session.kubeconfig)},
    }
    monkeypatch.setenv(CONN_ENV, json.dumps(conn))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    yield fake_cluster_session


@pytest.fixture
def kubeconfig(fake_cluster: FakeCluster) -> Path:
    return Path(fake_cluster.kubeconfig)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    os.environ.setdefault("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False")
