"""The containerkit parameters both secure operators share, mapped onto ``ContainerSpec`` fields.

One place, so ``SecureKubernetesPodOperator`` and ``SecureDockerOperator`` keep one vocabulary: a
task moves between them by changing the class name. Import-light: no spec import at parse start.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def spec_changes(
    *,
    resources: Any = None,
    security: Any = None,
    secret_refs: Sequence[Any] | None = None,
    config_map_refs: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """The ``ContainerSpec`` fields the operator arguments set (only those given)."""
    changes: dict[str, Any] = {}
    if resources is not None:
        changes["resources"] = resources
    if security is not None:
        changes["security"] = security
    if secret_refs is not None:
        changes["secrets"] = tuple(secret_refs)
    if config_map_refs is not None:
        changes["config_maps"] = tuple(config_map_refs)
    return changes
