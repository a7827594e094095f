"""Fail-fast pod start-up, shared by the synchronous operator and its deferrable trigger.

Stock KubernetesPodOperator waits ``startup_timeout_seconds`` (120 s) for a pod that can never start
(a missing Secret key, an unschedulable request) and only fails early on some image pull messages.
:func:`await_pod_start` reads the pod's events whenever its status looks wrong and stops at the first
*fatal* :class:`~containerkit.diagnostics.model.Diagnosis` (see
:func:`containerkit.diagnostics.kubernetes.is_fatal_startup`); transient problems (registry rate
limits, network errors, a cluster autoscaler adding a node) keep waiting within the stock timeouts.
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
    PodLaunchFailedException,
    PodLaunchTimeoutException,
)
from airflow.triggers.base import TriggerEvent

from containerkit.diagnostics.kubernetes import diagnose_pod, is_fatal_startup
from containerkit.diagnostics.model import Diagnosis

__all__ = ["FatalStartup", "SecureKubernetesPodTrigger", "await_pod_start", "diagnosis_from_dict"]

_BENIGN_WAITING = {"ContainerCreating", "PodInitializing"}


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


class _FailFastAsyncPodManager(AsyncPodManager):
    async def await_pod_start(
        self, pod: Any, schedule_timeout: int = 120, startup_timeout: int = 120, check_interval: float = 1
    ) -> None:
        async def events() -> Sequence[Any]:
            return (await self.read_pod_events(pod)).items or []

        try:
            await await_pod_start(
                read_pod=lambda: self.read_pod(pod),
                read_events=events,
                log=self.log,
                schedule_timeout=schedule_timeout,
                startup_timeout=startup_timeout,
                check_interval=check_interval,
            )
        finally:
            self.stop_watching_events = True


class SecureKubernetesPodTrigger(KubernetesPodTrigger):
    """KubernetesPodTrigger that fails fast on pods that cannot start and ships the diagnosis.

    The ``failed`` event of a fail-fast stop carries ``diagnosis`` (a dict) for
    :meth:`SecureKubernetesPodOperator.trigger_reentry`.
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
            return _FailFastAsyncPodManager(async_hook=self.hook)
        return AsyncPodManager(async_hook=self.hook)

    async def _wait_for_pod_start(self) -> ContainerState:
        try:
            return await super()._wait_for_pod_start()
        except FatalStartup as exc:
            self._fatal = exc.diagnosis
            return ContainerState.FAILED

    async def run(self) -> AsyncIterator[TriggerEvent]:
        async for event in super().run():
            if self._fatal is not None and event.payload.get("status") == "failed":
                event = TriggerEvent(
                    {
                        **event.payload,
                        "message": self._fatal.render(),
                        "diagnosis": diagnosis_to_dict(self._fatal),
                    }
                )
            yield event
