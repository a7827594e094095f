"""The namespace a task pod runs in: Pod Security Admission labels, a ResourceQuota, a LimitRange and RBAC.

The LimitRange defaults are the resource presets (:data:`containerkit.spec.resources.RESOURCE_PRESETS`):
a container created without resources (a stock ``KubernetesPodOperator`` task, a ``kubectl run``) gets
exactly what a containerkit task gets by default, and no container may exceed the largest preset. The
quota is sized as a number of concurrent default-sized tasks, so it changes when the presets do.

RBAC (:func:`task_namespace_rbac`) comes from :func:`containerkit.kubernetes.rbac.render_rbac`, bound to the
ServiceAccounts the official chart creates in the Airflow namespace.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kubernetes.client import (
    V1LimitRange,
    V1LimitRangeItem,
    V1LimitRangeSpec,
    V1Namespace,
    V1ObjectMeta,
    V1ResourceQuota,
    V1ResourceQuotaSpec,
    V1ServiceAccount,
)

from containerkit.errors import SpecError
from containerkit.spec.names import check_dns_label
from containerkit.spec.quantity import parse_quantity
from containerkit.spec.resources import DEFAULT_PRESET, RESOURCE_PRESETS, Resources

PSA_PREFIX = "pod-security.kubernetes.io"
# Enforce the oldest Kubernetes minor containerkit supports, so a cluster upgrade never starts rejecting
# running workloads; audit and warn follow "latest" so a stricter future standard shows up first as a warning.
ENFORCE_VERSION = "v1.29"
MAX_PRESET = "xl"
DEFAULT_CONCURRENT_TASKS = 20
_LEVELS = ("privileged", "baseline", "restricted")
_RESOURCES = ("cpu", "memory", "ephemeral-storage")
_MANAGED_BY = {"app.kubernetes.io/managed-by": "containerkit"}


def render_namespace(
    name: str, *, level: str = "restricted", enforce_version: str = ENFORCE_VERSION
) -> V1Namespace:
    """A Namespace whose Pod Security Admission labels enforce, audit and warn at ``level``."""
    check_dns_label("namespace", name, what="namespace name")
    if level not in _LEVELS:
        raise SpecError(
            "level", level, "unknown Pod Security Standards level", f"use one of {', '.join(_LEVELS)}"
        )
    labels = dict(_MANAGED_BY)
    labels["kubernetes.io/metadata.name"] = name
    for mode, version in (("enforce", enforce_version), ("audit", "latest"), ("warn", "latest")):
        labels[f"{PSA_PREFIX}/{mode}"] = level
        labels[f"{PSA_PREFIX}/{mode}-version"] = version
    return V1Namespace(api_version="v1", kind="Namespace", metadata=V1ObjectMeta(name=name, labels=labels))


def render_limit_range(
    namespace: str, *, preset: str = DEFAULT_PRESET, max_preset: str = MAX_PRESET
) -> V1LimitRange:
    """Per-container defaults from ``preset`` (requests and limits) and a maximum from ``max_preset``."""
    check_dns_label("namespace", namespace, what="namespace name")
    default = Resources.preset(preset)
    largest = Resources.preset(max_preset)
    for key in _RESOURCES:
        if _amount(key, default.limits[key]) > _amount(key, largest.limits[key]):
            raise SpecError(
                "max_preset",
                max_preset,
                f"its {key} limit is below the default preset {preset!r}",
                "pick a larger one",
            )
    item = V1LimitRangeItem(
        type="Container",
        default=_only(default.limits),
        default_request=_only(default.requests),
        max=_only(largest.limits),
    )
    return V1LimitRange(
        api_version="v1",
        kind="LimitRange",
        metadata=V1ObjectMeta(
            name="containerkit-task-defaults", namespace=namespace, labels=dict(_MANAGED_BY)
        ),
        spec=V1LimitRangeSpec(limits=[item]),
    )


def render_resource_quota(
    namespace: str, *, concurrent_tasks: int = DEFAULT_CONCURRENT_TASKS, preset: str = DEFAULT_PRESET
) -> V1ResourceQuota:
    """A quota for ``concurrent_tasks`` pods of ``preset`` size (or fewer, larger ones)."""
    check_dns_label("namespace", namespace, what="namespace name")
    if isinstance(concurrent_tasks, bool) or not isinstance(concurrent_tasks, int) or concurrent_tasks < 1:
        raise SpecError("concurrent_tasks", concurrent_tasks, "must be a whole number >= 1", "use e.g. 20")
    size = Resources.preset(preset)
    hard = {"pods": str(concurrent_tasks)}
    for section, values in (("requests", size.requests), ("limits", size.limits)):
        for key in _RESOURCES:
            hard[f"{section}.{key}"] = _times(key, values[key], concurrent_tasks)
    return V1ResourceQuota(
        api_version="v1",
        kind="ResourceQuota",
        metadata=V1ObjectMeta(name="containerkit-tasks", namespace=namespace, labels=dict(_MANAGED_BY)),
        spec=V1ResourceQuotaSpec(hard=hard),
    )


def task_namespace_rbac(
    namespace: str, *, airflow_namespace: str = "airflow", release: str = "airflow"
) -> list[Any]:
    """Roles in ``namespace`` for the chart's worker (launches task pods) and triggerer (watches them).

    The chart creates those ServiceAccounts (``<release>-worker``, ``<release>-triggerer``) in
    ``airflow_namespace``, so they are bound, not created. The namespace's ``default`` ServiceAccount, which
    task pods without a ``serviceAccountName`` get, stops mounting a token.
    """
    from containerkit.kubernetes.rbac import render_rbac

    check_dns_label("release", release, what="Helm release name")
    default_account = V1ServiceAccount(
        api_version="v1",
        kind="ServiceAccount",
        metadata=V1ObjectMeta(name="default", namespace=namespace, labels=dict(_MANAGED_BY)),
        automount_service_account_token=False,
    )
    worker = render_rbac(
        namespace,
        service_account=f"{release}-worker",
        service_account_namespace=airflow_namespace,
        create_service_account=False,
    )
    triggerer = render_rbac(
        namespace,
        service_account=f"{release}-triggerer",
        service_account_namespace=airflow_namespace,
        for_triggerer=True,
        create_service_account=False,
    )
    return [default_account, *worker, *triggerer]


def _only(values: dict[str, str]) -> dict[str, str]:
    return {key: values[key] for key in _RESOURCES}


def _amount(key: str, quantity: str) -> Decimal:
    return parse_quantity(key, quantity, kind="cpu" if key == "cpu" else "bytes")


def _times(key: str, quantity: str, count: int) -> str:
    total = _amount(key, quantity) * count
    if key == "cpu":
        millis = int(total * 1000)
        return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"
    return _bytes_text(int(total))


def _bytes_text(count: int) -> str:
    for suffix, factor in (("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
        if count % factor == 0:
            return f"{count // factor}{suffix}"
    return str(count)


__all__ = [
    "ENFORCE_VERSION",
    "RESOURCE_PRESETS",
    "render_limit_range",
    "render_namespace",
    "render_resource_quota",
    "task_namespace_rbac",
]
