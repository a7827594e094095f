"""Fixtures for the Kubernetes operator tests: the local Docker-backed test double (containerkit.testing).

The cluster is session-scoped (``local_cluster`` from the ``containerkit`` pytest plugin); each test
gets its own namespace and ``kubernetes_default`` pointing at the cluster.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from containerkit.testing.cluster import LocalCluster


@pytest.fixture
def cluster(kubernetes_default: LocalCluster, python_image: str) -> LocalCluster:
    """The local cluster, with ``kubernetes_default`` set and the python base image on the engine."""
    return kubernetes_default


@pytest.fixture
def kubeconfig(cluster: LocalCluster) -> Path:
    return Path(cluster.kubeconfig)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    os.environ.setdefault("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False")
