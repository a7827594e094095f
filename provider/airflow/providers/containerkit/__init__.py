"""containerkit under Airflow's provider namespace: import DAG-facing classes from here.

``from airflow.providers.containerkit.operators.kubernetes import SecureKubernetesPodOperator`` names an
``airflow.*`` module, which the dag-processor manager imports once before it forks each parse child
(``[dag_processor] parsing_pre_import_modules``). Importing the same class from ``containerkit.operators``
works too, but every parse child then imports the operator and its dependencies again (seconds per file).
The classes are the same objects either way.
"""

from __future__ import annotations

from containerkit import __version__

__all__ = ["__version__"]
