"""The containerkit parameters both secure operators share, mapped onto ``ContainerSpec`` fields.

One place, so ``SecureKubernetesPodOperator`` and ``SecureDockerOperator`` keep one vocabulary: a
task moves between them by changing the class name. Import-light: no spec import at parse start.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from typing import Any

MAPPED_RESOURCES = "spec_resources"
"""Where ``resources`` travels in a mapped task's ``partial_kwargs``. ``BaseOperator`` has a
``resources`` of its own (executor resources) and the scheduler deserializes
``partial_kwargs["resources"]`` as one, so a preset name or a mapping of overrides there breaks the DAG."""


def for_mapping(kwargs: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """``kwargs`` of ``partial()`` / a decorator with ``resources`` moved to :data:`MAPPED_RESOURCES`."""
    if "resources" in kwargs:
        kwargs[MAPPED_RESOURCES] = kwargs.pop("resources")
    return kwargs


def one_resources(resources: Any, spec_resources: Any) -> Any:
    """The container's resources from ``resources=`` or its mapped form; both at once is refused."""
    if spec_resources is None:
        return resources
    if resources is not None:
        from containerkit.errors import SpecError

        raise SpecError(
            MAPPED_RESOURCES, spec_resources, "given together with resources", "pass only resources="
        )
    return spec_resources


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
