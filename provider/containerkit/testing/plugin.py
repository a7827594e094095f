"""pytest fixtures for the local Kubernetes test double (registered as the ``containerkit`` pytest11 plugin).

* ``local_cluster`` (session): one :class:`~containerkit.testing.LocalCluster` for the whole run; skips
  the test without a Docker engine (fails under ``CONTAINERKIT_REQUIRE_DOCKER=1``);
* ``k8s_namespace``: a fresh namespace per test, deleted afterwards with every pod in it;
* ``kubernetes_default``: the cluster, with ``AIRFLOW_CONN_KUBERNETES_DEFAULT`` pointing at it and
  ``CONTAINERKIT_NAMESPACE`` set to the test's namespace;
* ``k8s_secret`` / ``k8s_config_map``: ``k8s_secret(name, {"key": "value"})`` in the test's namespace.

Node capacity: ``CONTAINERKIT_TESTING_NODE_CPU`` / ``CONTAINERKIT_TESTING_NODE_MEMORY``. Nothing heavy
is imported until a fixture is used, so the plugin costs nothing to projects that do not use it.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from containerkit.testing.cluster import LocalCluster

CONN_ENV = "AIRFLOW_CONN_KUBERNETES_DEFAULT"


def _engine_unavailable() -> str | None:
    try:
        import docker

        client = docker.from_env(timeout=5)
        client.ping()
        client.close()
    except Exception as exc:  # any failure means "no engine" for gating purposes
        return f"containerkit.testing needs a Docker engine: {type(exc).__name__}: {exc}"
    return None


@pytest.fixture(scope="session")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """The session's local Kubernetes test double (pods run on the Docker engine)."""
    if reason := _engine_unavailable():
        if os.environ.get("CONTAINERKIT_REQUIRE_DOCKER") == "1":
            pytest.fail(f"CONTAINERKIT_REQUIRE_DOCKER=1 but {reason}")
        pytest.skip(reason)
    from containerkit.testing.cluster import LocalCluster

    cluster = LocalCluster(
        f"ck-pytest-{secrets.token_hex(2)}",
        node_cpu=os.environ.get("CONTAINERKIT_TESTING_NODE_CPU"),
        node_memory=os.environ.get("CONTAINERKIT_TESTING_NODE_MEMORY"),
        workdir=tmp_path_factory.mktemp("containerkit-cluster"),
    )
    with cluster:
        yield cluster


@pytest.fixture
def k8s_namespace(local_cluster: LocalCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace of its own for this test; its pods and objects are removed afterwards."""
    stem = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-") or "test"
    namespace = f"{stem}-{secrets.token_hex(2)}"
    local_cluster.create_namespace(namespace)
    yield namespace
    local_cluster.delete_namespace(namespace)


@pytest.fixture
def kubernetes_default(
    local_cluster: LocalCluster, k8s_namespace: str, monkeypatch: pytest.MonkeyPatch
) -> LocalCluster:
    """The cluster as Airflow's ``kubernetes_default`` connection (and ``CONTAINERKIT_NAMESPACE``)."""
    monkeypatch.setenv(CONN_ENV, local_cluster.airflow_connection())
    monkeypatch.setenv("CONTAINERKIT_NAMESPACE", k8s_namespace)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    return local_cluster


@pytest.fixture
def k8s_secret(local_cluster: LocalCluster, k8s_namespace: str) -> Callable[..., dict[str, Any]]:
    """``k8s_secret(name, data, namespace=None)``: a Secret (plain values) in the test's namespace."""

    def create(name: str, data: Mapping[str, str | bytes], namespace: str | None = None) -> dict[str, Any]:
        return local_cluster.create_secret(namespace or k8s_namespace, name, data)

    return create


@pytest.fixture
def k8s_config_map(local_cluster: LocalCluster, k8s_namespace: str) -> Callable[..., dict[str, Any]]:
    """``k8s_config_map(name, data, namespace=None)``: a ConfigMap in the test's namespace."""

    def create(name: str, data: Mapping[str, str], namespace: str | None = None) -> dict[str, Any]:
        return local_cluster.create_config_map(namespace or k8s_namespace, name, data)

    return create
