"""Reading a pod, its events and its log tail in API field names, for the Kubernetes diagnosers.

The diagnosers take ``kubernetes`` / ``kubernetes_asyncio`` model objects or plain dicts (camelCase,
as ``kubectl get -o json`` prints them); everything below works on the plain form.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

LOG_TAIL_LINES = 20
"""How many trailing log lines a diagnosis quotes as evidence."""

SIGNALS = {1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 6: "SIGABRT", 9: "SIGKILL", 11: "SIGSEGV", 15: "SIGTERM"}


def to_api_dict(obj: Any) -> Any:
    """A model object (sync or asyncio client) or plain data as JSON-like data in API field names."""
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if isinstance(obj, Mapping):
        return {k: to_api_dict(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_api_dict(v) for v in obj]
    attribute_map = getattr(obj, "attribute_map", None)
    if isinstance(attribute_map, Mapping):
        out = {}
        for attr, key in attribute_map.items():
            value = getattr(obj, attr, None)
            if value is not None:
                out[key] = to_api_dict(value)
        return out
    return obj


def spec_container(pod: Mapping[str, Any], name: str | None) -> Mapping[str, Any]:
    spec = pod.get("spec") or {}
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        if c.get("name") == name:
            return c
    return {}


def pod_label(pod: Mapping[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace') or 'default'}/{meta.get('name') or '?'}"


def tail(logs: str | None) -> tuple[str, ...]:
    if not logs:
        return ()
    lines = [line for line in logs.splitlines() if line.strip()]
    return tuple(f"log: {line}" for line in lines[-LOG_TAIL_LINES:])


def event_messages(events: Iterable[Mapping[str, Any]], *reasons: str) -> list[str]:
    def when(e: Mapping[str, Any]) -> str:
        return str(e.get("lastTimestamp") or e.get("eventTime") or e.get("firstTimestamp") or "")

    picked = [e for e in events if e.get("reason") in reasons]
    return [str(e.get("message") or "") for e in sorted(picked, key=when)]


def memory_limit(pod: Mapping[str, Any], name: str | None) -> str:
    resources = spec_container(pod, name).get("resources") or {}
    return str((resources.get("limits") or {}).get("memory") or "none (node memory)")


def run_as_user(pod: Mapping[str, Any], name: str | None) -> int | None:
    container_ctx = spec_container(pod, name).get("securityContext") or {}
    pod_ctx = (pod.get("spec") or {}).get("securityContext") or {}
    user = container_ctx.get("runAsUser", pod_ctx.get("runAsUser"))
    return int(user) if user is not None else None


def base_container_state(pod: Any, container: str) -> tuple[int | None, bool, str]:
    """``container``'s exit code, OOMKilled flag and state (``running``, ``terminated``, ``waiting (..)``)."""
    data = to_api_dict(pod) or {}
    for cs in (data.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") != container:
            continue
        state = cs.get("state") or {}
        if term := state.get("terminated"):
            return term.get("exitCode"), term.get("reason") == "OOMKilled", "terminated"
        if state.get("running") is not None:
            return None, False, "running"
        if waiting := state.get("waiting"):
            return None, False, f"waiting ({waiting.get('reason')})"
    return None, False, "not started"
