"""Why a pod cannot be placed or was put off its node: no node fits, or the kubelet evicted it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from containerkit.diagnostics.kubernetes_fields import event_messages, pod_label
from containerkit.diagnostics.model import Diagnosis


def evicted(pod: Mapping[str, Any], status: Mapping[str, Any]) -> Diagnosis | None:
    if status.get("reason") != "Evicted":
        return None
    message = str(status.get("message") or "")
    lowered = message.lower()
    evidence = (f"pod {pod_label(pod)} evicted: {message}",)
    if "ephemeral" in lowered:
        return Diagnosis(
            cause="Evicted:ephemeral-storage",
            summary="the kubelet evicted the pod for using too much local ephemeral storage",
            fix="set resources.limits/requests ephemeral-storage to what the task writes (a larger "
            "resource preset), or write large data to a volume instead of the container filesystem or /tmp",
            evidence=evidence,
        )
    if "resource: memory" in lowered or "memorypressure" in lowered:
        return Diagnosis(
            cause="Evicted:memory-pressure",
            summary="the node ran low on memory and evicted the pod (its usage was above its request)",
            fix="raise the memory request to the task's real peak (requests == limits gives Guaranteed QoS, "
            "evicted last)",
            evidence=evidence,
            transient=True,
        )
    if "resource: nodefs" in lowered or "resource: imagefs" in lowered or "diskpressure" in lowered:
        return Diagnosis(
            cause="Evicted:disk-pressure",
            summary="the node ran low on disk and evicted the pod",
            fix="set an ephemeral-storage request so the scheduler places the pod on a node with room; "
            "retrying lands it on another node",
            evidence=evidence,
            transient=True,
        )
    return Diagnosis(
        cause="Evicted",
        summary="the kubelet evicted the pod",
        fix="read the eviction message; size the pod's requests to its real usage",
        evidence=evidence,
        transient=True,
    )


def unschedulable(pod: Mapping[str, Any], events: list[Mapping[str, Any]]) -> Diagnosis | None:
    status = pod.get("status") or {}
    if status.get("phase") not in (None, "Pending"):
        return None
    conditions = status.get("conditions") or []
    unscheduled = any(
        c.get("type") == "PodScheduled" and c.get("status") == "False" and c.get("reason") == "Unschedulable"
        for c in conditions
    )
    messages = event_messages(events, "FailedScheduling")
    if not messages and not unscheduled:
        return None
    if not messages:
        messages = [str(c.get("message") or "") for c in conditions if c.get("type") == "PodScheduled"]
    latest = messages[-1]
    scale_up = event_messages(events, "TriggeredScaleUp")
    reasons = _scheduling_reasons(latest)
    evidence = (f"FailedScheduling: {latest}", *(f"autoscaler: {m}" for m in scale_up[-1:]))
    insufficient = sorted({r.split("Insufficient ", 1)[1] for r in reasons if "Insufficient " in r})
    requests = _requests(pod)
    transient = bool(scale_up)
    if insufficient:
        asked = ", ".join(f"{r}={requests.get(r, '?')}" for r in insufficient)
        return Diagnosis(
            cause="Unschedulable:insufficient-resources",
            summary=f"no node has enough free {', '.join(insufficient)} for the pod (requests: {asked})",
            fix="lower the requests (a smaller resource preset) or add node capacity / a node pool that fits",
            evidence=evidence,
            transient=transient,
            details={"resources": ",".join(insufficient)},
        )
    if any("taint" in r for r in reasons):
        taints = re.findall(r"taint \{([^}]*)\}", latest)
        return Diagnosis(
            cause="Unschedulable:taints",
            summary=f"every node has a taint the pod does not tolerate ({'; '.join(taints) or 'see events'})",
            fix="add a matching toleration to the task, or schedule it on a node pool without the taint",
            evidence=evidence,
            transient=transient,
        )
    if any("affinity" in r or "selector" in r for r in reasons):
        selector = (pod.get("spec") or {}).get("nodeSelector") or {}
        return Diagnosis(
            cause="Unschedulable:node-selector",
            summary=f"no node matches the pod's node selector/affinity {selector or ''}".rstrip(),
            fix="fix the node_selector / affinity labels, or label a node pool to match",
            evidence=evidence,
            transient=transient,
        )
    if any("persistentvolumeclaim" in r.lower() or "volume" in r.lower() for r in reasons):
        return Diagnosis(
            cause="Unschedulable:volume-binding",
            summary="the pod's PersistentVolumeClaims are not bound to a volume yet",
            fix="create the PVC / check its StorageClass provisioner",
            evidence=evidence,
            transient=True,
        )
    return Diagnosis(
        cause="Unschedulable",
        summary="the scheduler found no node for the pod",
        fix="read the FailedScheduling event",
        evidence=evidence,
        transient=True,
    )


def _scheduling_reasons(message: str) -> list[str]:
    """The per-node reasons of ``0/3 nodes are available: 1 a, 2 b. preemption: ...``."""
    head = message.split(" preemption:", 1)[0]
    m = re.search(r"nodes are available: (.*)", head)
    body = (m.group(1) if m else head).rstrip(".")
    return [re.sub(r"^\d+\s+", "", part.strip()) for part in re.split(r",\s*(?=\d+\s)", body) if part.strip()]


def _requests(pod: Mapping[str, Any]) -> dict[str, str]:
    totals: dict[str, str] = {}
    for c in (pod.get("spec") or {}).get("containers") or []:
        for key, value in ((c.get("resources") or {}).get("requests") or {}).items():
            if key not in totals:
                totals[key] = str(value)
            else:
                totals[key] = f"{totals[key]}+{value}"
    return totals
