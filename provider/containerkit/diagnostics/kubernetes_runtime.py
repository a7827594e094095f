"""Why a pod's container stopped: OOM kill, a write the filesystem refused, a non-zero exit, a deadline.

The cause ids are the Docker diagnoser's where the cause is the same (``OOMKilled``,
``ReadOnlyFilesystem``, ``PermissionDenied:volume``, ``NonZeroExit``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from containerkit.diagnostics.kubernetes_fields import (
    SIGNALS,
    memory_limit,
    pod_label,
    run_as_user,
    spec_container,
    tail,
)
from containerkit.diagnostics.model import Diagnosis

_PATH_IN_LINE = re.compile(r"(/[\w.\-/]+)")
_READ_ONLY = re.compile(r"read-only file system(?::\s*'?(?P<path>/[^'\s\"]*))?", re.IGNORECASE)


def deadline_exceeded(pod: Mapping[str, Any], status: Mapping[str, Any]) -> Diagnosis | None:
    if status.get("reason") != "DeadlineExceeded":
        return None
    deadline = (pod.get("spec") or {}).get("activeDeadlineSeconds")
    return Diagnosis(
        cause="DeadlineExceeded",
        summary=f"the pod ran longer than activeDeadlineSeconds={deadline}",
        fix="raise active_deadline_seconds, or make the task finish sooner (split the work)",
        evidence=(f"pod {pod_label(pod)}: {status.get('message') or 'DeadlineExceeded'}",),
        details={"active_deadline_seconds": str(deadline)},
    )


def terminated(
    pod: Mapping[str, Any], cs: Mapping[str, Any], logs: str | None, main: str
) -> Diagnosis | None:
    """The diagnosis of one container status in state ``terminated``, or None for a clean stop."""
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
    log_tail = tail(logs) if name == main else ()
    evidence: tuple[str, ...] = (f"container {name} terminated: reason={reason or '-'} exitCode={code}",)
    if term.get("message"):
        evidence += (f"termination message: {str(term['message']).strip()[:500]}",)
    if reason == "OOMKilled":
        limit = memory_limit(pod, name)
        return Diagnosis(
            cause="OOMKilled",
            summary=f"container {name} was killed for exceeding its memory limit {limit} (exit code {code})",
            fix="raise the memory limit (a larger resource preset) to the task's peak, or make the task use "
            "less memory (stream data instead of loading it whole)",
            evidence=evidence + log_tail,
            container=name,
            exit_code=code,
            details={"memory_limit": limit},
        )
    if name == main and (found := read_only_write(pod, name, logs, code)):
        return found
    if perm := permission_denied(pod, name, logs):
        return perm
    signal = SIGNALS.get(code - 128) if isinstance(code, int) and code > 128 else None
    summary = f"container {name} exited with code {code}"
    if signal:
        summary += f" (killed by {signal})"
    return Diagnosis(
        cause="NonZeroExit",
        summary=summary,
        fix="read the last log lines; the command failed inside the container",
        evidence=evidence + log_tail,
        container=name,
        exit_code=code,
        details={"signal": signal} if signal else {},
    )


def _mount_for(pod: Mapping[str, Any], name: str | None, path: str) -> Mapping[str, Any] | None:
    """The volume mount ``path`` is on (the longest matching mount path), if any."""
    best: Mapping[str, Any] | None = None
    for mount in spec_container(pod, name).get("volumeMounts") or []:
        where = str(mount.get("mountPath") or "").rstrip("/") or "/"
        if (path == where or path.startswith(where + "/") or where == "/") and (
            best is None or len(where) > len(str(best.get("mountPath") or ""))
        ):
            best = mount
    return best


def read_only_write(
    pod: Mapping[str, Any], name: str | None, logs: str | None, code: int | None
) -> Diagnosis | None:
    """A write refused with EROFS: outside the writable mounts under ``readOnlyRootFilesystem``, or to a
    read-only mount."""
    if not logs:
        return None
    for line in reversed(logs.splitlines()):
        match = _READ_ONLY.search(line)
        if not match:
            continue
        path = match.group("path")
        context = spec_container(pod, name).get("securityContext") or {}
        read_only_root = bool(context.get("readOnlyRootFilesystem"))
        mount = _mount_for(pod, name, path) if path else None
        writable = sorted(
            str(m.get("mountPath"))
            for m in spec_container(pod, name).get("volumeMounts") or []
            if not m.get("readOnly")
        )
        target = path or "a path"
        if mount is not None and mount.get("readOnly"):
            where = f"volume mount {mount.get('mountPath')} (readOnly: true, volume {mount.get('name')})"
            fix = f"mount {mount.get('mountPath')} read-write, or write to /tmp instead"
        else:
            where = "the read-only root filesystem"
            directory = (path.rsplit("/", 1)[0] or "/") if path else "<dir>"
            fix = (
                "The root filesystem is read-only by design. Write scratch files to /tmp (an emptyDir, or "
                f"set TMPDIR), or mount a writable volume at {directory} for data that must persist."
            )
        return Diagnosis(
            cause="ReadOnlyFilesystem",
            summary=f"container {name} wrote to {target} on {where}",
            fix=fix,
            evidence=(
                f"log: {line.strip()}",
                f"securityContext.readOnlyRootFilesystem={str(read_only_root).lower()}",
                f"writable mounts: {', '.join(writable) or 'none'}",
            ),
            container=name,
            exit_code=code,
            details={"path": path or ""},
        )
    return None


def permission_denied(pod: Mapping[str, Any], name: str | None, logs: str | None) -> Diagnosis | None:
    """A write to a mounted volume refused because the volume is owned by root and the user is not."""
    if not logs:
        return None
    user = run_as_user(pod, name)
    if user is None or user == 0:
        return None
    mounts = [m.get("mountPath", "") for m in spec_container(pod, name).get("volumeMounts") or []]
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
