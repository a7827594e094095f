"""``containerkit.testing``: a local Kubernetes *test double* whose kubelet runs pods on the Docker engine.

For tests of KubernetesPodOperator DAGs without a cluster (this repository's and users' own)::

    from containerkit.testing import LocalCluster

    with LocalCluster() as cluster:
        os.environ["AIRFLOW_CONN_KUBERNETES_DEFAULT"] = cluster.airflow_connection()
        cluster.create_secret("airflow-tasks", "etl-api", {"token": "t0ken"})
        dag.test()

The pytest plugin (``containerkit.testing.plugin``, registered as a ``pytest11`` entry point) gives the
same as fixtures. It is a test double, not a Kubernetes: see :mod:`containerkit.testing.cluster` for what
is real and what is not. Install with ``pip install 'airflow-provider-containerkit[testing]'``.
No runtime module of containerkit imports this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from containerkit.testing.cluster import LocalCluster

__all__ = ["LocalCluster"]


def __getattr__(name: str) -> Any:
    if name == "LocalCluster":
        from containerkit.testing.cluster import LocalCluster

        return LocalCluster
    raise AttributeError(name)
