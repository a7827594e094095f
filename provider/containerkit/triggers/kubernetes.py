"""Fail-fast pod start-up (sync and deferrable adapters in one place) and the deferrable trigger.

Stock KubernetesPodOperator waits ``startup_timeout_seconds`` (120 s) for a pod that can never start
(a missing Secret key, an unschedulable request) and only fails early on some image pull messages.
:func:`await_pod_start` reads the pod's events whenever its status looks wrong and stops at the first
*fatal* :class:`~containerkit.diagnostics.model.Diagnosis` (see
:func:`containerkit.diagnostics.kubernetes.is_fatal_startup`); transient problems (registry rate
limits, network errors, a cluster autoscaler adding a node) keep waiting within the stock timeouts.
:class:`FailFastPodManager` (the operator, sync) and :class:`FailFastAsyncPodManager` (the trigger)
are the two adapters of that one loop.

:class:`SecureKubernetesPodTrigger` also makes a deferred pod safe to lose track of: its final
``failed`` event carries the pod's diagnosis (so a reentry whose pod is already gone still says why),
and a user's cancel (mark failed / success, clear) logs the pod's evidence before it deletes the pod.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from functools import cached_property
from typing import Any

from airflow.providers.cncf.kubernetes.triggers.pod import ContainerState, KubernetesPodTrigger
from airflow.providers.cncf.kubernetes.utils.pod_manager import (
    AsyncPodManager,
    OnFinishAction,
    OnKillAction,
    PodLaunchFailedException,
    PodLaunchTimeoutException,
    PodManager,
)
from airflow.triggers.base import TriggerEvent

from containerkit.diagnostics.kubernetes import diagnose_pod, is_fatal_startup
from containerkit.diagnostics.kubernetes_fields import LOG_TAIL_LINES, base_container_state
from containerkit.diagnostics.model import Diagnosis

__all__ = [
    "FailFastAsyncPodManager",
    "FailFastPodManager",
    "FatalStartup",
    "SecureKubernetesPodTrigger",
    "await_pod_start",
    "diagnosis_from_dict",
    "diagnosis_to_dict",
]

_BENIGN_WAITING = {"ContainerCreating", "PodInitializing"}

FAIL_FAST_KEY = "diagnosis"
"""Event key of a fail-fast stop's diagnosis: the pod can never start."""

FINAL_KEY = "pod_diagnosis"
"""Event key of the diagnosis of a pod the trigger saw fail (used when the pod is gone at reentry)."""


class FatalStartup(PodLaunchFailedException):
    """The pod can never start; ``diagnosis`` says why."""

    def __init__(self, diagnosis: Diagnosis) -> None:
        self.diagnosis = diagnosis
        super().__init__(diagnosis.render())


def diagnosis_to_dict(diagnosis: Diagnosis) -> dict[str, Any]:
    data = dataclasses.asdict(diagnosis)
    data["evidence"] = list(diagnosis.evidence)
    return data


def diagnosis_from_dict(data: dict[str, Any]) -> Diagnosis:
    fields = {f.name for f in dataclasses.fields(Diagnosis)}
    values = {k: v for k, v in data.items() if k in fields}
    values["evidence"] = tuple(values.get("evidence") or ())
    values["details"] = dict(values.get("details") or {})
    return Diagnosis(**values)


def _looks_wrong(pod: Any) -> bool:
    """Only then are the pod's events worth an API call."""
    status = pod.status
    for cond in status.conditions or []:
        if cond.type == "PodScheduled" and cond.status == "False":
            return True
    for cs in [*(status.init_container_statuses or []), *(status.container_statuses or [])]:
        waiting = cs.state.waiting if cs.state else None
        if waiting and waiting.reason and waiting.reason not in _BENIGN_WAITING:
            return True
        if cs.state and cs.state.terminated and cs.state.terminated.exit_code:
            return True
    return False


async def await_pod_start(
    *,
    read_pod: Callable[[], Awaitable[Any]],
    read_events: Callable[[], Awaitable[Sequence[Any]]],
    log: Any,
    schedule_timeout: float,
    startup_timeout: float,
    check_interval: float,
) -> None:
    """Wait until the pod leaves ``Pending``; raise :class:`FatalStartup` as soon as it cannot.

    Keeps the stock contract: :class:`PodLaunchTimeoutException` after ``schedule_timeout`` unscheduled
    or ``startup_timeout`` scheduled but not started.
    """
    start = time.monotonic()
    scheduled = False
    while True:
        pod = await read_pod()
        status = pod.status
        if status.phase not in ("Pending", "Unknown", None):
            if status.phase == "Failed" and not status.container_statuses:
                events = await read_events()
                failed = diagnose_pod(pod, events) or Diagnosis(
                    cause="PodFailed",
                    summary="the pod failed before its containers started",
                    fix="read the pod events",
                    evidence=tuple(f"{e.reason}: {e.message}" for e in events),
                )
                raise FatalStartup(failed)
            log.info("Pod reached phase %s", status.phase)
            return
        if _looks_wrong(pod):
            events = await read_events()
            if fatal := is_fatal_startup(pod, events):
                raise FatalStartup(fatal)
            if transient := diagnose_pod(pod, events):
                log.warning("Pod not started yet (transient, still waiting): %s", transient.summary)
        is_scheduled = any(c.type == "PodScheduled" and c.status == "True" for c in status.conditions or [])
        if is_scheduled and not scheduled:
            scheduled, start = True, time.monotonic()
            log.info("Pod scheduled; waiting up to %ss for it to start", startup_timeout)
        limit = startup_timeout if scheduled else schedule_timeout
        if time.monotonic() - start >= limit:
            what = "start" if scheduled else "be scheduled"
            raise PodLaunchTimeoutException(f"Pod took more than {limit}s to {what}.")
        await asyncio.sleep(check_interval)


async def _stop_at_fatal(
    manager: Any,
    read_pod: Callable[[], Awaitable[Any]],
    read_events: Callable[[], Awaitable[Sequence[Any]]],
    timeouts: tuple[float, float, float],
) -> None:
    """Both adapters: :func:`await_pod_start` on ``manager``'s reads, then stop its event watch."""
    schedule_timeout, startup_timeout, check_interval = timeouts
    try:
        await await_pod_start(
            read_pod=read_pod,
            read_events=read_events,
            log=manager.log,
            schedule_timeout=schedule_timeout,
            startup_timeout=startup_timeout,
            check_interval=check_interval,
        )
    finally:
        manager.stop_watching_events = True


class FailFastPodManager(PodManager):
    """The synchronous operator's adapter of :func:`await_pod_start` (stock ``PodManager`` otherwise)."""

    async def await_pod_start(
        self, pod: Any, schedule_timeout: int = 120, startup_timeout: int = 120, check_interval: float = 1
    ) -> None:
        async def read() -> Any:
            return self.read_pod(pod)

        async def events() -> Sequence[Any]:
            return self.read_pod_events(pod).items or []

        await _stop_at_fatal(self, read, events, (schedule_timeout, startup_timeout, check_interval))


class FailFastAsyncPodManager(AsyncPodManager):
    """The trigger's adapter of :func:`await_pod_start` (stock ``AsyncPodManager`` otherwise)."""

    async def await_pod_start(
        self, pod: Any, schedule_timeout: int = 120, startup_timeout: int = 120, check_interval: float = 1
    ) -> None:
        async def read() -> Any:
            return await self.read_pod(pod)

        async def events() -> Sequence[Any]:
            return (await self.read_pod_events(pod)).items or []

        await _stop_at_fatal(self, read, events, (schedule_timeout, startup_timeout, check_interval))


class SecureKubernetesPodTrigger(KubernetesPodTrigger):
    """KubernetesPodTrigger that fails fast, ships its diagnosis, and deletes a cancelled pod with evidence.

    * The ``failed`` event of a fail-fast stop carries ``diagnosis``; the ``failed`` event of a pod
      that ran and failed carries ``pod_diagnosis`` (read by
      :meth:`SecureKubernetesPodOperator.trigger_reentry` when the pod is gone by then).
    * Cancelled by a user action (Airflow 3.3's triggerer calls :meth:`on_kill`): the pod's phase,
      exit code, events and last log lines are logged, then the pod is deleted unless
      ``on_kill_action`` or ``on_finish_action`` is ``keep_pod``.
    """

    def __init__(self, *args: Any, fail_fast: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fail_fast = fail_fast
        self._fatal: Diagnosis | None = None

    @classmethod
    def from_trigger(
        cls, trigger: KubernetesPodTrigger, *, fail_fast: bool = True
    ) -> SecureKubernetesPodTrigger:
        _, kwargs = trigger.serialize()
        return cls(**kwargs, fail_fast=fail_fast)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        _, kwargs = super().serialize()
        return (f"{type(self).__module__}.{type(self).__qualname__}", {**kwargs, "fail_fast": self.fail_fast})

    @cached_property
    def pod_manager(self) -> AsyncPodManager:
        if self.fail_fast:
            return FailFastAsyncPodManager(async_hook=self.hook)
        return AsyncPodManager(async_hook=self.hook)

    async def _wait_for_pod_start(self) -> ContainerState:
        try:
            return await super()._wait_for_pod_start()
        except FatalStartup as exc:
            self._fatal = exc.diagnosis
            return ContainerState.FAILED

    async def run(self) -> AsyncIterator[TriggerEvent]:
        async for event in super().run():
            if event.payload.get("status") == "failed":
                if self._fatal is not None:
                    extra = {"message": self._fatal.render(), FAIL_FAST_KEY: diagnosis_to_dict(self._fatal)}
                else:
                    found = await self._final_diagnosis()
                    extra = {FINAL_KEY: diagnosis_to_dict(found)} if found is not None else {}
                event = TriggerEvent({**event.payload, **extra})
            yield event

    async def _final_diagnosis(self) -> Diagnosis | None:
        """What the failed pod shows now (status and log tail), in case it is gone at reentry."""
        try:
            pod = await self._get_pod()
            logs = await self._log_tail()
            return diagnose_pod(pod, (), logs, container=self.base_container_name)
        except Exception as exc:  # the event goes out either way; the operator reads the pod itself
            self.log.debug("No final diagnosis for pod %s: %s", self.pod_name, exc)
            return None

    async def _log_tail(self) -> str | None:
        try:
            lines = await self.hook.read_logs(
                name=self.pod_name, namespace=self.pod_namespace, container_name=self.base_container_name
            )
        except Exception:
            return None
        # read_logs prefixes each line with its RFC 3339 timestamp.
        return "\n".join(line.split(" ", 1)[-1] for line in lines[-LOG_TAIL_LINES:])

    def _keeps_pod(self) -> str | None:
        if self.on_kill_action == OnKillAction.KEEP_POD:
            return "on_kill_action=keep_pod"
        if self.on_finish_action == OnFinishAction.KEEP_POD:
            return "on_finish_action=keep_pod"
        return None

    async def on_kill(self) -> None:
        """A user cancelled the deferred task: log the pod's evidence, then delete it (unless kept)."""
        if self._fired_event:
            self.log.debug("Skipping on_kill: the trigger already fired its event.")
            return
        name = f"{self.pod_namespace}/{self.pod_name}"
        try:
            pod = await self._get_pod()
            events = (await self.hook.get_pod_events(self.pod_name, self.pod_namespace)).items or []
            logs = await self._log_tail()
            code, oom, _ = base_container_state(pod, self.base_container_name)
            phase = pod.status.phase if pod.status and pod.status.phase else "Unknown"
            self.log.warning(
                "Deferred task cancelled; pod %s was %s (container %s exit code %s, OOMKilled %s)",
                name,
                phase,
                self.base_container_name,
                code if code is not None else "-",
                oom,
            )
            for e in events[-5:]:
                self.log.info("Pod Event: %s - %s", e.reason, e.message)
            self.log.info("Last log lines of pod %s:\n%s", name, logs or "(none)")
        except Exception as exc:
            self.log.warning("Could not read the evidence of pod %s before deleting it: %s", name, exc)
        if kept := self._keeps_pod():
            self.log.warning("Pod %s kept (%s): delete it yourself when done", name, kept)
            return
        self.log.info("Deleting pod %s (deferred task cancelled).", name)
        try:
            await self.hook.delete_pod(
                name=self.pod_name,
                namespace=self.pod_namespace,
                grace_period_seconds=self.termination_grace_period,
            )
        except Exception:
            self.log.exception("Unexpected error while deleting pod %s", name)
