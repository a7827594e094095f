"""The Kubernetes QoS class a pod's resources give it, by the rules the API server applies.

Why it matters for sizing: under node memory pressure the kubelet evicts BestEffort pods first, then
Burstable ones using more than they requested; Guaranteed pods (every container with cpu and memory
limits equal to its requests) go last. containerkit's presets set memory request = limit, so a task
is Burstable only for CPU; ``resources={"preset": ..., "cpu": X, "memory": Y}`` (request = limit for
both) makes it Guaranteed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

GUARANTEED, BURSTABLE, BEST_EFFORT = "Guaranteed", "Burstable", "BestEffort"
_COMPUTE = ("cpu", "memory")


def _same(a: object, b: object) -> bool:
    from containerkit.spec.quantity import parse_quantity

    kind = "cpu"
    return parse_quantity("requests", a, kind=kind) == parse_quantity("limits", b, kind=kind)


def qos_class(pod: Mapping[str, Any]) -> str:
    """The QoS class of an API-shaped pod (``containerkit.kubernetes.manifests.to_dict`` of a V1Pod).

    Init containers count like the others; a request left out defaults to the limit (as the API
    server defaults it).
    """
    spec = pod.get("spec") or {}
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    requests_seen = False
    guaranteed = True
    for container in containers:
        resources = container.get("resources") or {}
        limits = {k: v for k, v in (resources.get("limits") or {}).items() if k in _COMPUTE}
        requests = {k: v for k, v in (resources.get("requests") or {}).items() if k in _COMPUTE}
        requests = {**limits, **requests}
        if requests or limits:
            requests_seen = True
        for key in _COMPUTE:
            if key not in limits or key not in requests or not _same(requests[key], limits[key]):
                guaranteed = False
    if not requests_seen:
        return BEST_EFFORT
    return GUARANTEED if guaranteed else BURSTABLE
