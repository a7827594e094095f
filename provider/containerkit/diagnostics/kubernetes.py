"""Why a Kubernetes pod failed, from its status, its events and the last lines of its logs.

Pure functions: they read evidence and never call the API, so the operator, the trigger, the
``containerkit diagnose`` CLI and the unit tests (which feed recorded API objects) share them.
Inputs are either ``kubernetes`` / ``kubernetes_asyncio`` model objects or plain dicts in API
field names (camelCase, as ``kubectl get -o json`` prints them).

The ``cause`` ids are stable and matched on by callers: ``OOMKilled``, ``NonZeroExit``,
``CrashLoopBackOff``, ``ImagePullBackOff:not-found`` / ``:unauthorized`` / ``:rate-limited`` /
``:unreachable`` / ``:unknown`` (the first four suffixes are the Docker diagnostics' and the
registry pre-flight's ``ImagePull:*`` ones), ``InvalidImageName``, ``ErrImageNeverPull``,
``CreateContainerConfigError:secret-missing`` / ``:secret-key-missing`` / ``:configmap-missing`` /
``:configmap-key-missing`` / ``:run-as-root`` / ``CreateContainerConfigError``,
``CreateContainerError``, ``Unschedulable:insufficient-resources`` / ``:taints`` /
``:node-selector`` / ``:volume-binding`` / ``Unschedulable``, ``Evicted:ephemeral-storage`` /
``:memory-pressure`` / ``:disk-pressure`` / ``Evicted``, ``DeadlineExceeded``,
``PermissionDenied:volume``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from containerkit.diagnostics.model import Diagnosis

__all__ = ["LOG_TAIL_LINES", "diagnose_pod", "is_fatal_startup", "to_api_dict"]

LOG_TAIL_LINES = 20
"""How many trailing log lines a diagnosis quotes as evidence."""

SIGNALS = {1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 6: "SIGABRT", 9: "SIGKILL", 11: "SIGSEGV", 15: "SIGTERM"}

_IMAGE_PULL_REASONS = ("ErrImagePull", "ImagePullBackOff")
_RATE_LIMIT = re.compile(r"toomanyrequests|too many requests|rate limit|pull qps exceeded|\b429\b", re.I)
_UNAUTHORIZED = re.compile(
    r"unauthorized|authentication required|authorization failed|pull access denied|denied: |"
    r"\b401\b|\b403\b|forbidden|no basic auth credentials|insufficient_scope",
    re.I,
)
_NOT_FOUND = re.compile(r"not found|manifest unknown|name unknown|code = NotFound|does not exist", re.I)
_UNREACHABLE = re.compile(
    r"i/o timeout|timeout|connection refused|connection reset|no such host|temporarily unavailable|"
    r"service unavailable|bad gateway|gateway timeout|\b50[234]\b|tls handshake",
    re.I,
)
_SECRET_MISSING = re.compile(r'secret "(?P<name>[^"]+)" not found', re.I)
_CONFIGMAP_MISSING = re.compile(r'configmap "(?P<name>[^"]+)" not found', re.I)
_KEY_MISSING = re.compile(
    r"couldn't find key (?P<key>\S+) in (?P<kind>Secret|ConfigMap) (?P<ns>[^/\s]+)/(?P<name>\S+)", re.I
)
_RUN_AS_ROOT = re.compile(r"runAsNonRoot and image (will run as root|has non-numeric user)", re.I)
_CREATE_TRANSIENT = re.compile(r"context deadline exceeded|is reserved for|name is reserved", re.I)
_PATH_IN_LINE = re.compile(r"(/[\w.\-/]+)")


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
    for check in (_evicted, _deadline_exceeded):
        if found := check(data, status):
            return found
    statuses = _container_statuses(status, container)
    for cs in statuses:
        if found := _waiting(data, cs, event_list, logs):
            return found
    for cs in statuses:
        if found := _terminated(data, cs, logs, container):
            return found
    return _unschedulable(data, event_list)


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


def _spec_container(pod: Mapping[str, Any], name: str | None) -> Mapping[str, Any]:
    spec = pod.get("spec") or {}
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        if c.get("name") == name:
            return c
    return {}


def _pod_label(pod: Mapping[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace') or 'default'}/{meta.get('name') or '?'}"


def _tail(logs: str | None) -> tuple[str, ...]:
    if not logs:
        return ()
    lines = [line for line in logs.splitlines() if line.strip()]
    return tuple(f"log: {line}" for line in lines[-LOG_TAIL_LINES:])


def _event_messages(events: Iterable[Mapping[str, Any]], *reasons: str) -> list[str]:
    def when(e: Mapping[str, Any]) -> str:
        return str(e.get("lastTimestamp") or e.get("eventTime") or e.get("firstTimestamp") or "")

    picked = [e for e in events if e.get("reason") in reasons]
    return [str(e.get("message") or "") for e in sorted(picked, key=when)]


# --- pod-level failures -------------------------------------------------------------------------


def _evicted(pod: Mapping[str, Any], status: Mapping[str, Any]) -> Diagnosis | None:
    if status.get("reason") != "Evicted":
        return None
    message = str(status.get("message") or "")
    lowered = message.lower()
    evidence = (f"pod {_pod_label(pod)} evicted: {message}",)
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


def _deadline_exceeded(pod: Mapping[str, Any], status: Mapping[str, Any]) -> Diagnosis | None:
    if status.get("reason") != "DeadlineExceeded":
        return None
    deadline = (pod.get("spec") or {}).get("activeDeadlineSeconds")
    return Diagnosis(
        cause="DeadlineExceeded",
        summary=f"the pod ran longer than activeDeadlineSeconds={deadline}",
        fix="raise active_deadline_seconds, or make the task finish sooner (split the work)",
        evidence=(f"pod {_pod_label(pod)}: {status.get('message') or 'DeadlineExceeded'}",),
        details={"active_deadline_seconds": str(deadline)},
    )


# --- waiting containers -------------------------------------------------------------------------


def _waiting(
    pod: Mapping[str, Any], cs: Mapping[str, Any], events: list[Mapping[str, Any]], logs: str | None
) -> Diagnosis | None:
    waiting = (cs.get("state") or {}).get("waiting") or {}
    reason = waiting.get("reason")
    if not reason:
        return None
    name = cs.get("name")
    message = str(waiting.get("message") or "")
    evidence = (f"container {name} waiting: {reason}: {message}".rstrip(": "),)
    if reason in _IMAGE_PULL_REASONS:
        return _image_pull(pod, cs, message, events)
    if reason in ("InvalidImageName", "ErrImageNeverPull"):
        image = _spec_container(pod, name).get("image") or cs.get("image")
        fix = (
            "use a valid reference: [registry/]repository[:tag][@sha256:digest], lowercase repository"
            if reason == "InvalidImageName"
            else "the image is not on the node and imagePullPolicy is Never: use IfNotPresent, or "
            "preload the image"
        )
        return Diagnosis(
            cause=reason,
            summary=f"image {image!r} of container {name} cannot be used",
            fix=fix,
            evidence=evidence,
            container=name,
            details={"image": str(image)},
        )
    if reason == "CreateContainerConfigError":
        return _config_error(pod, name, message, evidence)
    if reason == "CreateContainerError":
        transient = bool(_CREATE_TRANSIENT.search(message))
        return Diagnosis(
            cause="CreateContainerError",
            summary=f"the container runtime could not create container {name}",
            fix="read the runtime message: a bad command/workingDir, a missing mount source, or a "
            "securityContext the runtime rejects",
            evidence=evidence,
            container=name,
            transient=transient,
        )
    if reason == "CrashLoopBackOff":
        last = (cs.get("lastState") or {}).get("terminated") or {}
        restarts = cs.get("restartCount", 0)
        code = last.get("exitCode")
        last_reason = last.get("reason") or "Error"
        more: tuple[str, ...] = ()
        if last_reason == "OOMKilled":
            limit = _memory_limit(pod, name)
            more = (f"last exit: OOMKilled at memory limit {limit}",)
        return Diagnosis(
            cause="CrashLoopBackOff",
            summary=f"container {name} keeps crashing: {restarts} restarts, last exit code {code} "
            f"({last_reason})",
            fix="fix the crash shown by the last log lines; task pods should use restartPolicy Never",
            evidence=evidence + more + _tail(logs),
            container=name,
            exit_code=code,
            details={"restarts": str(restarts), "last_reason": str(last_reason)},
        )
    return None


def _image_pull(
    pod: Mapping[str, Any], cs: Mapping[str, Any], message: str, events: list[Mapping[str, Any]]
) -> Diagnosis:
    name = cs.get("name")
    image = _spec_container(pod, name).get("image") or cs.get("image") or "?"
    pull_errors = [m for m in _event_messages(events, "Failed") if m.startswith("Failed to pull image")]
    # The Failed event carries the registry's answer; the BackOff waiting message often does not.
    text = "\n".join([message, *pull_errors])
    evidence = tuple(dict.fromkeys([f"container {name} waiting: {message}", *pull_errors[-2:]]))
    secrets = [s.get("name") for s in (pod.get("spec") or {}).get("imagePullSecrets") or []]
    details = {"image": str(image), "image_pull_secrets": ",".join(str(s) for s in secrets)}

    def diagnosis(kind: str, summary: str, fix: str, transient: bool = False) -> Diagnosis:
        return Diagnosis(
            cause=f"ImagePullBackOff:{kind}",
            summary=summary,
            fix=fix,
            evidence=evidence,
            container=name,
            transient=transient,
            details=details,
        )

    if _RATE_LIMIT.search(text):
        return diagnosis(
            "rate-limited",
            f"the registry rate-limited the pull of {image}",
            "authenticate pulls (imagePullSecrets), mirror the image to your own registry, or pin by digest "
            "with imagePullPolicy IfNotPresent",
            transient=True,
        )
    if _UNAUTHORIZED.search(text):
        secret_note = f"image_pull_secrets={secrets}" if secrets else "no image_pull_secrets set"
        return diagnosis(
            "unauthorized",
            f"the registry refused to serve {image} ({secret_note})",
            "give the pod an imagePullSecret (kubernetes.io/dockerconfigjson) with read access to the "
            "repository; on Docker Hub this also means the repository name may be wrong",
        )
    if _NOT_FOUND.search(text):
        return diagnosis(
            "not-found",
            f"image {image} does not exist in the registry",
            "check the repository, tag or digest spelling; push the image before running the task",
        )
    if _UNREACHABLE.search(text):
        return diagnosis(
            "unreachable",
            f"the node could not reach the registry for {image}",
            "check the registry host name and the node's network path (proxy, DNS, firewall); "
            "the kubelet keeps retrying",
            transient=True,
        )
    return diagnosis(
        "unknown",
        f"the image {image} cannot be pulled",
        "read the pull error in the pod events; check the image reference and pull credentials",
    )


def _config_error(
    pod: Mapping[str, Any], name: str | None, message: str, evidence: tuple[str, ...]
) -> Diagnosis:
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    if m := _KEY_MISSING.search(message):
        kind, obj, key = m["kind"], m["name"], m["key"]
        slug = "secret" if kind.lower() == "secret" else "configmap"
        return Diagnosis(
            cause=f"CreateContainerConfigError:{slug}-key-missing",
            summary=f"{kind} {m['ns']}/{obj} has no key {key!r} that container {name} references",
            fix=f"add key {key} to the {kind} (kubectl -n {m['ns']} edit {slug} {obj}), or fix the key name "
            "in the task's secret/env reference",
            evidence=evidence,
            container=name,
            details={"kind": kind, "name": obj, "namespace": m["ns"], "key": key},
        )
    for pattern, kind, slug in (
        (_SECRET_MISSING, "Secret", "secret"),
        (_CONFIGMAP_MISSING, "ConfigMap", "configmap"),
    ):
        if m := pattern.search(message):
            return Diagnosis(
                cause=f"CreateContainerConfigError:{slug}-missing",
                summary=f"{kind} {namespace}/{m['name']} referenced by container {name} does not exist",
                fix=f"create the {kind} in namespace {namespace} before the task runs "
                f"(kubectl -n {namespace} create {slug} {m['name']} ...), or fix its name in the task",
                evidence=evidence,
                container=name,
                details={"kind": kind, "name": m["name"], "namespace": namespace},
            )
    if _RUN_AS_ROOT.search(message):
        return Diagnosis(
            cause="CreateContainerConfigError:run-as-root",
            summary=f"container {name} must run as non-root but its image runs as root or a named user",
            fix="set a numeric non-root USER in the image (e.g. USER 50000) or runAsUser in the security "
            "profile",
            evidence=evidence,
            container=name,
        )
    return Diagnosis(
        cause="CreateContainerConfigError",
        summary=f"the kubelet could not build the configuration of container {name}",
        fix="read the message: a missing Secret, ConfigMap, key or service account token",
        evidence=evidence,
        container=name,
    )


# --- terminated containers ----------------------------------------------------------------------


def _memory_limit(pod: Mapping[str, Any], name: str | None) -> str:
    resources = _spec_container(pod, name).get("resources") or {}
    return str((resources.get("limits") or {}).get("memory") or "none (node memory)")


def _terminated(
    pod: Mapping[str, Any], cs: Mapping[str, Any], logs: str | None, main: str
) -> Diagnosis | None:
    term = (cs.get("state") or {}).get("terminated") or {}
    if not term:
        return None
    code = term.get("exitCode")
    reason = term.get("reason") or ""
    name = cs.get("name")
    if reason != "OOMKilled" and code in (0, None):
        return None
    # A sidecar killed by Airflow after the main container finished is not the failure.
    if name != main and code in (0, 130, 137, 143) and reason != "OOMKilled":
        return None
    tail = _tail(logs) if name == main else ()
    evidence: tuple[str, ...] = (f"container {name} terminated: reason={reason or '-'} exitCode={code}",)
    if term.get("message"):
        evidence += (f"termination message: {str(term['message']).strip()[:500]}",)
    if reason == "OOMKilled":
        limit = _memory_limit(pod, name)
        return Diagnosis(
            cause="OOMKilled",
            summary=f"container {name} was killed for exceeding its memory limit {limit} (exit code {code})",
            fix="raise the memory limit (a larger resource preset) to the task's peak, or make the task use "
            "less memory (stream data instead of loading it whole)",
            evidence=evidence + tail,
            container=name,
            exit_code=code,
            details={"memory_limit": limit},
        )
    if perm := _permission_denied(pod, name, logs):
        return perm
    signal = SIGNALS.get(code - 128) if isinstance(code, int) and code > 128 else None
    summary = f"container {name} exited with code {code}"
    if signal:
        summary += f" (killed by {signal})"
    return Diagnosis(
        cause="NonZeroExit",
        summary=summary,
        fix="read the last log lines; the command failed inside the container",
        evidence=evidence + tail,
        container=name,
        exit_code=code,
        details={"signal": signal} if signal else {},
    )


def _run_as_user(pod: Mapping[str, Any], name: str | None) -> int | None:
    container_ctx = _spec_container(pod, name).get("securityContext") or {}
    pod_ctx = (pod.get("spec") or {}).get("securityContext") or {}
    user = container_ctx.get("runAsUser", pod_ctx.get("runAsUser"))
    return int(user) if user is not None else None


def _permission_denied(pod: Mapping[str, Any], name: str | None, logs: str | None) -> Diagnosis | None:
    """A write to a mounted volume refused because the volume is owned by root and the user is not."""
    if not logs:
        return None
    user = _run_as_user(pod, name)
    if user is None or user == 0:
        return None
    mounts = [m.get("mountPath", "") for m in _spec_container(pod, name).get("volumeMounts") or []]
    for line in reversed(logs.splitlines()):
        if "permission denied" not in line.lower():
            continue
        paths = _PATH_IN_LINE.findall(line)
        mount = next(
            (m for p in paths for m in mounts if m and (p == m or p.startswith(m.rstrip("/") + "/"))), None
        )
        if mount is None:
            continue
        fs_group = ((pod.get("spec") or {}).get("securityContext") or {}).get("fsGroup")
        return Diagnosis(
            cause="PermissionDenied:volume",
            summary=f"container {name} runs as uid {user} and may not write to volume mount {mount}",
            fix="set the pod securityContext fsGroup (the volume becomes group-writable for it), or an init "
            "step that chowns the volume; do not run the task as root",
            evidence=(f"log: {line.strip()}", f"runAsUser={user} fsGroup={fs_group}"),
            container=name,
            details={"mount_path": mount, "run_as_user": str(user)},
        )
    return None


# --- scheduling ---------------------------------------------------------------------------------


def _unschedulable(pod: Mapping[str, Any], events: list[Mapping[str, Any]]) -> Diagnosis | None:
    status = pod.get("status") or {}
    if status.get("phase") not in (None, "Pending"):
        return None
    conditions = status.get("conditions") or []
    unscheduled = any(
        c.get("type") == "PodScheduled" and c.get("status") == "False" and c.get("reason") == "Unschedulable"
        for c in conditions
    )
    messages = _event_messages(events, "FailedScheduling")
    if not messages and not unscheduled:
        return None
    if not messages:
        messages = [str(c.get("message") or "") for c in conditions if c.get("type") == "PodScheduled"]
    latest = messages[-1]
    scale_up = _event_messages(events, "TriggeredScaleUp")
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
