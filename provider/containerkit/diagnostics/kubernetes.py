"""Why a Kubernetes pod failed, from its status, its events and the last lines of its logs.

Pure functions: they read evidence and never call the API, so the operator, the trigger, the
``containerkit diagnose`` CLI and the unit tests (which feed recorded API objects) share them.
Inputs are either ``kubernetes`` / ``kubernetes_asyncio`` model objects or plain dicts in API
field names (camelCase, as ``kubectl get -o json`` prints them). Reading that evidence from a live
cluster is :mod:`containerkit.diagnostics.kubernetes_evidence`.

One concept per module: :mod:`~containerkit.diagnostics.kubernetes_startup` (image pulls, container
configuration, creation, crash loops), :mod:`~containerkit.diagnostics.kubernetes_scheduling`
(no node fits, evictions), :mod:`~containerkit.diagnostics.kubernetes_runtime` (OOM, read-only or
refused writes, exit codes, ``activeDeadlineSeconds``).

The ``cause`` ids are stable and matched on by callers: ``OOMKilled``, ``NonZeroExit``,
``ReadOnlyFilesystem``, ``CrashLoopBackOff``, ``ImagePullBackOff:not-found`` / ``:unauthorized`` /
``:rate-limited`` / ``:unreachable`` / ``:unknown`` (the suffixes of
:mod:`containerkit.diagnostics.causes`, shared with the Docker diagnostics and the registry pre-flight),
``InvalidImageName``, ``ErrImageNeverPull``, ``CreateContainerConfigError:secret-missing`` /
``:secret-key-missing`` / ``:configmap-missing`` / ``:configmap-key-missing`` / ``:run-as-root`` /
``CreateContainerConfigError``, ``CreateContainerError``, ``Unschedulable:insufficient-resources`` /
``:taints`` / ``:node-selector`` / ``:volume-binding`` / ``Unschedulable``,
``Evicted:ephemeral-storage`` / ``:memory-pressure`` / ``:disk-pressure`` / ``Evicted``,
``DeadlineExceeded``, ``PermissionDenied:volume``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from containerkit.diagnostics.kubernetes_fields import LOG_TAIL_LINES, to_api_dict
from containerkit.diagnostics.kubernetes_runtime import deadline_exceeded, terminated
from containerkit.diagnostics.kubernetes_scheduling import evicted, unschedulable
from containerkit.diagnostics.kubernetes_startup import waiting
from containerkit.diagnostics.model import Diagnosis

__all__ = ["LOG_TAIL_LINES", "diagnose_pod", "is_fatal_startup", "to_api_dict"]


def diagnose_pod(
    pod: Any,
    events: Sequence[Any] = (),
    logs: str | None = None,
    *,
    container: str = "base",
) -> Diagnosis | None:
    """Why ``pod`` failed or cannot start, or None when its status shows no failure.

    :param pod: the pod as read from the API (``V1Pod`` or a dict in API field names).
    :param events: the pod's events (``CoreV1Event`` objects or dicts), any order.
    :param logs: the tail of the main container's log, when it could be read.
    :param container: the main container (the operator's ``base_container_name``).
    """
    data = to_api_dict(pod) or {}
    event_list = [to_api_dict(e) for e in events]
    status = data.get("status") or {}
    for check in (evicted, deadline_exceeded):
        if found := check(data, status):
            return found
    statuses = _container_statuses(status, container)
    for cs in statuses:
        if found := waiting(data, cs, event_list, logs):
            return found
    for cs in statuses:
        if found := terminated(data, cs, logs, container):
            return found
    return unschedulable(data, event_list)


def is_fatal_startup(pod: Any, events: Sequence[Any] = ()) -> Diagnosis | None:
    """A diagnosis when a starting pod can never start by waiting longer, else None.

    Fatal: config errors, non-transient pull errors, a failed container create, a pod whose
    scheduling events say no node fits, or a pod that already failed. Transient pull errors
    (rate limits, network) and scheduling that a cluster autoscaler is resolving are not fatal.
    """
    found = diagnose_pod(pod, events)
    if found is None or found.transient:
        return None
    return found


def _container_statuses(status: Mapping[str, Any], main: str) -> list[Mapping[str, Any]]:
    """Init containers first (they block the rest), then the main container, then sidecars."""
    regular = list(status.get("containerStatuses") or [])
    regular.sort(key=lambda cs: cs.get("name") != main)
    return [*(status.get("initContainerStatuses") or []), *regular]
