"""Airflow provider metadata, read by Airflow's ProvidersManager through the entry point.

Kept import-light: Airflow calls this for every process that discovers providers.
"""

from __future__ import annotations

from typing import Any

from containerkit import __version__
from containerkit.hooks.registry_connection import CONNECTION_TYPE_INFO as REGISTRY_CONNECTION_TYPE


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-containerkit",
        "name": "containerkit",
        "description": (
            "Container best practices as the default for Airflow container tasks: hardened, sized, "
            "policy-checked Kubernetes pods and Docker containers with fast failure diagnostics."
        ),
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "containerkit",
                "external-doc-url": "https://github.com/containerkit/airflow-provider-containerkit",
                "tags": ["software"],
            }
        ],
        "operators": [
            {"integration-name": "containerkit", "python-modules": ["containerkit.operators.docker"]},
            {"integration-name": "containerkit", "python-modules": ["containerkit.operators.kubernetes"]},
        ],
        "hooks": [
            {
                "integration-name": "containerkit",
                "python-modules": [
                    "containerkit.hooks.registry",
                    "containerkit.hooks.image",
                    "containerkit.hooks.mirror",
                    "containerkit.hooks.preflight",
                ],
            }
        ],
        "triggers": [
            {"integration-name": "containerkit", "python-modules": ["containerkit.triggers.kubernetes"]}
        ],
        "connection-types": [REGISTRY_CONNECTION_TYPE],
        "task-decorators": [
            {"name": "secure_docker", "class-name": "containerkit.decorators.docker.secure_docker_task"},
            {
                "name": "secure_kubernetes",
                "class-name": "containerkit.decorators.kubernetes.secure_kubernetes_task",
            },
        ],
        "config": {
            "containerkit": {
                "description": "containerkit policy and defaults.",
                "options": {
                    "policy_mode": {
                        "description": (
                            "enforce: a container task that breaks an error-level rule fails DAG import; "
                            "warn: findings are logged; off: no check."
                        ),
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "warn",
                        "default": "enforce",
                    },
                    "usage_capture": {
                        "description": (
                            "Sample each container task's CPU and memory while it runs and record one "
                            "usage record per try (env CONTAINERKIT_USAGE_CAPTURE)."
                        ),
                        "version_added": "0.1.0",
                        "type": "boolean",
                        "example": "false",
                        "default": "true",
                    },
                    "usage_interval": {
                        "description": (
                            "Seconds between usage samples, bounded to 0.2-60 "
                            "(env CONTAINERKIT_USAGE_INTERVAL)."
                        ),
                        "version_added": "0.1.0",
                        "type": "float",
                        "example": "5",
                        "default": "1",
                    },
                    "usage_store": {
                        "description": (
                            "Where usage records are kept for `containerkit recommend`: a local path or an "
                            "object-storage URL (env CONTAINERKIT_USAGE_STORE); "
                            "default $AIRFLOW_HOME/containerkit/usage."
                        ),
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "s3://airflow-usage/containerkit",
                        "default": None,
                    },
                },
            }
        },
    }
