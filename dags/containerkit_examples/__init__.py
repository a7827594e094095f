"""Settings shared by the reference DAGs (not a DAG file: `.airflowignore` skips this package).

Images default to the public tags a user with Docker Hub would pull; sites without a registry (and
this project's tests) point them at the air-gapped bases from ``docker/airgap`` through env vars.
"""

from __future__ import annotations

import os

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
DEBIAN_IMAGE = os.environ.get("CONTAINERKIT_DEBIAN_IMAGE", "debian:12.8-slim")
KUBERNETES_NAMESPACE = os.environ.get("CONTAINERKIT_NAMESPACE", "airflow-tasks")
# The repository (on the containerkit_registry_default registry) that 88_01_03 pushes and 88_01_04 pins.
REGISTRY_EXAMPLE_REPOSITORY = os.environ.get(
    "CONTAINERKIT_REGISTRY_EXAMPLE_REPOSITORY", "containerkit-examples/hello"
)
REGISTRY_EXAMPLE_VERSION = os.environ.get("CONTAINERKIT_REGISTRY_EXAMPLE_VERSION", "1.0.0")
# The Airflow image a KubernetesExecutor worker pod runs (pod_override / pod_template_file examples).
AIRFLOW_IMAGE = os.environ.get("CONTAINERKIT_AIRFLOW_IMAGE", "apache/airflow:3.3.2-python3.11")
