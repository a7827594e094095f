"""Reading a pod's evidence from the cluster before it is deleted, and the diagnosis of a failed task.

The one module of diagnostics that calls the Kubernetes API (a ``CoreV1Api``, sync): the operator
reads the pod, its events and the tail of its log here once, before ``on_finish_action`` deletes the
pod, and turns that evidence plus the exception the task ends with into one
:class:`~containerkit.diagnostics.model.Diagnosis` (:func:`diagnose_failure`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from kubernetes.client.exceptions import ApiException

from containerkit.diagnostics.kubernetes import diagnose_pod
from containerkit.diagnostics.kubernetes_fields import LOG_TAIL_LINES, base_container_state
from containerkit.diagnostics.model import Diagnosis
from containerkit.diagnostics.timeouts import execution_timeout_diagnosis

__all__ = [
    "PodEvidence",
    "diagnose_failure",
    "evidence_of",
    "exception_chain",
    "finish_action_outcome",
    "read_events",
    "read_evidence",
    "read_log_tail",
    "read_pod",
    "timeout_diagnosis",
]

_log = logging.getLogger(__name__)

STARTUP_TIMEOUT = "StartupTimeout"


@dataclass(frozen=True)
class PodEvidence:
    """What a pod showed when it was read: its state, events, log tail and what they diagnose."""

    pod: Any
    events: tuple[Any, ...] = ()
    logs: str | None = None
    diagnosis: Diagnosis | None = None
    container: str = "base"
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.pod.metadata.namespace}/{self.pod.metadata.name}"

    @property
    def phase(self) -> str:
        return str(self.pod.status.phase) if self.pod.status and self.pod.status.phase else "Unknown"

    @property
    def succeeded(self) -> bool:
        return self.phase == "Succeeded"

    def base_state(self) -> tuple[int | None, bool, str]:
        """The base container's exit code, OOMKilled flag and state word (``running``, ``terminated`` …)."""
        return base_container_state(self.pod, self.container)

    def event_lines(self, last: int = 5) -> tuple[str, ...]:
        return tuple(f"event {e.reason}: {e.message}" for e in self.events[-last:])

    def describe(self) -> str:
        """One paragraph for the task log: phase, exit code, OOM flag, events, last log lines."""
        code, oom, state = self.base_state()
        lines = [
            f"pod {self.name}: phase {self.phase}, container {self.container} {state}, "
            f"exit code {code if code is not None else '-'}, OOMKilled {oom}"
        ]
        lines += [f"  {line}" for line in self.event_lines()]
        tail = [line for line in (self.logs or "").splitlines() if line.strip()][-LOG_TAIL_LINES:]
        lines.append("  last log lines:" if tail else "  last log lines: (none)")
        lines += [f"    {line}" for line in tail]
        if self.diagnosis is not None:
            lines.append(f"  diagnosis: {self.diagnosis.cause}: {self.diagnosis.summary}")
        return "\n".join(lines)


def read_pod(client: Any, pod: Any) -> Any | None:
    """The pod as the API has it now, or None when it is gone (or was never created)."""
    if pod is None or pod.metadata is None or not pod.metadata.name:
        return None
    try:
        return client.read_namespaced_pod(pod.metadata.name, pod.metadata.namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def read_events(client: Any, pod: Any) -> list[Any]:
    """The pod's events, best effort (an empty list when they cannot be read)."""
    try:
        found = client.list_namespaced_event(
            namespace=pod.metadata.namespace, field_selector=f"involvedObject.name={pod.metadata.name}"
        )
        return list(found.items or [])
    except Exception as exc:
        _log.warning("Could not read the events of pod %s: %s", pod.metadata.name, exc)
        return []


def read_log_tail(client: Any, pod: Any, container: str, lines: int = LOG_TAIL_LINES) -> str | None:
    """The last ``lines`` of ``container``'s log as text, or None when there is none to read.

    ``_preload_content=False``: with preloading, the client turns the body into ``str(bytes)``
    (``"b'...'"``) for this text endpoint; the raw body is decoded here instead.
    """
    try:
        response = client.read_namespaced_pod_log(
            pod.metadata.name,
            pod.metadata.namespace,
            container=container,
            tail_lines=lines,
            _preload_content=False,
        )
        try:
            data = response.data if hasattr(response, "data") else response.read()
        finally:
            release = getattr(response, "release_conn", None)
            if release is not None:
                release()
    except Exception as exc:
        _log.debug("No log tail for pod %s: %s", pod.metadata.name, exc)
        return None
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return data if isinstance(data, str) else None


def read_evidence(client: Any, pod: Any, *, container: str = "base") -> PodEvidence | None:
    """Read the pod again, then its events and log tail; None when the pod is gone."""
    remote = read_pod(client, pod)
    return evidence_of(client, remote, container=container) if remote is not None else None


def evidence_of(client: Any, remote: Any, *, container: str = "base") -> PodEvidence:
    """The events and log tail of ``remote`` (a pod just read from the API), and what they diagnose."""
    events = read_events(client, remote)
    logs = read_log_tail(client, remote, container)
    return PodEvidence(
        pod=remote,
        events=tuple(events),
        logs=logs,
        diagnosis=diagnose_pod(remote, events, logs, container=container),
        container=container,
        labels=dict(remote.metadata.labels or {}),
    )


def finish_action_outcome(pod: Any, on_finish_action: Any) -> tuple[list[str], list[str]]:
    """What ``on_finish_action`` does to a pod stopped while running: (cleaned up, left behind)."""
    if pod is None or pod.metadata is None:
        return ["no pod had been created yet"], []
    action = str(getattr(on_finish_action, "value", on_finish_action))
    name = f"pod {pod.metadata.namespace}/{pod.metadata.name}"
    if action in ("delete_pod", "delete_active_pod"):
        return [f"{name} deleted (on_finish_action={action})"], []
    return [], [f"{name} kept (on_finish_action={action})"]


def exception_chain(error: BaseException | None) -> Iterable[BaseException]:
    """``error`` and the exceptions it was raised from or during, most recent first."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def timeout_diagnosis(
    error: BaseException | None,
    *,
    event_status: str | None,
    event_message: str | None = None,
    execution_timeout: timedelta | None,
    startup_timeout_seconds: float,
    pod: Any,
    on_finish_action: Any,
) -> Diagnosis | None:
    """``DeadlineExceeded:execution_timeout`` or ``StartupTimeout`` when a deadline ended the task."""
    from airflow.providers.cncf.kubernetes.utils.pod_manager import PodLaunchTimeoutException
    from airflow.sdk.exceptions import AirflowTaskTimeout, TaskDeferralTimeout

    chain = list(exception_chain(error))
    # The trigger's "timeout" event is the execution deadline, or a pod that did not start in time.
    deferred_start = event_status == "timeout" and "execution_timeout" not in (event_message or "")
    if (event_status == "timeout" and not deferred_start) or any(
        isinstance(e, AirflowTaskTimeout | TaskDeferralTimeout) for e in chain
    ):
        cleaned, left = finish_action_outcome(pod, on_finish_action)
        return execution_timeout_diagnosis(execution_timeout, cleaned_up=cleaned, left_behind=left)
    if deferred_start or any(isinstance(e, PodLaunchTimeoutException) for e in chain):
        return Diagnosis(
            cause=STARTUP_TIMEOUT,
            summary=f"the pod did not start within {startup_timeout_seconds}s",
            fix="read the pod events; raise startup_timeout_seconds if image pulls are slow",
        )
    return None


def diagnose_failure(
    evidence: PodEvidence | None,
    error: BaseException | None,
    *,
    timeout: Diagnosis | None = None,
    known: Diagnosis | None = None,
) -> Diagnosis:
    """One diagnosis for a failed task: a fail-fast one, a deadline, the pod's evidence, else the error.

    :param evidence: what the pod showed before it was deleted (None: no pod, or it was gone).
    :param error: the exception the task is ending with.
    :param timeout: :func:`timeout_diagnosis` of ``error``.
    :param known: a diagnosis made earlier (the trigger's fail-fast stop, the trigger's final event).
    """
    for e in exception_chain(error):
        carried = getattr(e, "diagnosis", None)
        if isinstance(carried, Diagnosis):
            return carried
    if known is not None:
        return known
    found = evidence.diagnosis if evidence is not None else None
    lines: Sequence[str] = evidence.event_lines() if evidence is not None else ()
    if timeout is not None and (found is None or found.transient):
        state = f" ({found.cause}: {found.summary})" if found else ""
        return Diagnosis(
            cause=timeout.cause,
            summary=timeout.summary + state,
            fix=timeout.fix,
            evidence=tuple(lines),
            details=dict(timeout.details),
        )
    if found is not None:
        return found
    message = str(error) if error else "the pod did not succeed"
    phase = evidence.phase if evidence is not None else "gone"
    return Diagnosis(
        cause="PodFailed",
        summary=f"pod phase {phase}: {message.splitlines()[0] if message else ''}".strip(),
        fix="read the pod events and task log above",
        evidence=tuple(lines),
    )
