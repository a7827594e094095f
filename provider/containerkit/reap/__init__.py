"""Reap task containers and pods whose Airflow task instance is no longer running.

A worker killed with ``kill -9``, a lost node or a task marked failed in the UI can leave its container
or pod running; the next try of the same task instance removes what earlier tries left, but a task that
is never tried again (success marked by hand, DAG run deleted, no retries) leaves it forever. The
reaper lists every containerkit task container (and, given a cluster, every KubernetesPodOperator pod),
asks Airflow's REST API which task instances are live, and removes the rest:

- a container or pod whose task instance is running, deferred, queued, scheduled or restarting is kept
  (a Docker container only for the try that is current; a pod for any try, because the stock
  ``reattach_on_restart`` re-attaches a later try to it);
- one younger than ``min_age`` is kept (it may belong to a try the API does not show yet);
- one whose DAG the API does not know is kept unless ``include_unknown_dags`` (another Airflow
  deployment may share the engine or namespace);
- every other one is removed, after its evidence (exit code, OOM flag, last log line) is read.

A container or pod kept on purpose (``auto_remove="never"``/``"success"``, ``on_finish_action=
"keep_pod"``, for debugging) counts as left behind too once its task instance has finished: raise
``min_age`` to keep those longer.

:func:`reap` decides and acts; the ``containerkit reap`` command and the ``88_11_07`` reference DAG
call it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from containerkit.reap.api import LIVE_STATES, AirflowApi, AirflowApiError, ApiSettings
from containerkit.reap.workloads import (
    DockerWorkloads,
    PodWorkloads,
    Workload,
    WorkloadSourceError,
    kubernetes_core_v1,
    parse_labels,
)

__all__ = [
    "LIVE_STATES",
    "AirflowApi",
    "AirflowApiError",
    "ApiSettings",
    "DockerWorkloads",
    "PodWorkloads",
    "ReapReport",
    "Verdict",
    "Workload",
    "WorkloadSourceError",
    "decide",
    "kubernetes_core_v1",
    "parse_duration",
    "parse_labels",
    "reap",
]


class Source(Protocol):
    def list(self, labels: Sequence[str] = ()) -> Iterable[Workload]: ...

    def evidence(self, workload: Workload) -> str: ...

    def remove(self, workload: Workload) -> None: ...


@dataclass
class Verdict:
    """What the reaper decided for one workload, and why; ``error`` when its removal failed."""

    workload: Workload
    remove: bool
    reason: str
    removed: bool = False
    evidence: str = ""
    error: str | None = None

    def line(self, *, dry_run: bool) -> str:
        if not self.remove:
            action = "kept"
        elif self.error:
            action = "FAILED to remove"
        else:
            action = "would remove" if dry_run else "removed"
        evidence = f" [{self.evidence}]" if self.evidence else ""
        error = f": {self.error}" if self.error else ""
        return f"{action} {self.workload.describe()}: {self.reason}{evidence}{error}"


@dataclass
class ReapReport:
    verdicts: list[Verdict] = field(default_factory=list)
    dry_run: bool = False

    @property
    def to_remove(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.remove]

    @property
    def removed(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.removed]

    @property
    def failed(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.error]

    def summary(self) -> str:
        kept = len(self.verdicts) - len(self.to_remove)
        if self.dry_run:
            return f"dry run: {len(self.to_remove)} would be removed, {kept} kept (nothing was removed)"
        failed = f", {len(self.failed)} failed" if self.failed else ""
        return f"{len(self.removed)} removed, {kept} kept{failed}"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary (the reference DAG's XCom): ids and reasons, no log lines."""
        return {
            "dry_run": self.dry_run,
            "removed" if not self.dry_run else "would_remove": [
                {"id": v.workload.name, "kind": v.workload.kind, "reason": v.reason} for v in self.to_remove
            ],
            "kept": len(self.verdicts) - len(self.to_remove),
            "failed": [{"id": v.workload.name, "error": v.error} for v in self.failed],
        }


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str | int | float) -> dt.timedelta:
    """``"90"``, ``"90s"``, ``"10m"``, ``"2h"``, ``"1d"`` -> a timedelta (for ``--min-age``)."""
    raw = str(text).strip().lower()
    number, unit = (raw[:-1], raw[-1]) if raw and raw[-1] in _UNITS else (raw, "s")
    try:
        value = float(number)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a duration: give seconds or a number with s, m, h or d (10m)"
        ) from None
    if value < 0:
        raise ValueError(f"{text!r}: a duration cannot be negative")
    return dt.timedelta(seconds=value * _UNITS[unit])


def _safe_label(value: str) -> str:
    from airflow.providers.cncf.kubernetes.pod_generator import make_safe_label_value

    return str(make_safe_label_value(str(value)))


class _LiveIndex:
    """The live task instances, by exact ids (containers) and by label-safe ids (pods)."""

    def __init__(self, items: Iterable[Mapping[str, Any]], *, need_safe: bool) -> None:
        self.exact: dict[tuple[str, str, str, int], Mapping[str, Any]] = {}
        self.safe: dict[tuple[str, str, str, int], Mapping[str, Any]] = {}
        for ti in items:
            key = (str(ti["dag_id"]), str(ti["dag_run_id"]), str(ti["task_id"]), int(ti.get("map_index", -1)))
            self.exact[key] = ti
            if need_safe:
                self.safe[(_safe_label(key[0]), _safe_label(key[1]), _safe_label(key[2]), key[3])] = ti

    def find(self, w: Workload) -> Mapping[str, Any] | None:
        key = (w.dag_id, w.run_id, w.task_id, w.map_index)
        return (self.exact if w.exact else self.safe).get(key)


def decide(
    workloads: Iterable[Workload],
    api: AirflowApi,
    *,
    min_age: dt.timedelta,
    include_unknown_dags: bool = False,
    now: dt.datetime | None = None,
) -> list[Verdict]:
    """One verdict per workload: keep (with why) or remove (with why). Asks the API, changes nothing."""
    items = list(workloads)
    if not items:
        return []
    now = now or dt.datetime.now(dt.UTC)
    live = _LiveIndex(api.live_task_instances(), need_safe=any(not w.exact for w in items))
    known_dags: dict[str, bool] = {}
    verdicts: list[Verdict] = []
    for w in items:
        age = now - w.created
        if age < min_age:
            verdicts.append(
                Verdict(w, False, f"younger than the minimum age ({_human(age)} < {_human(min_age)})")
            )
            continue
        ti = live.find(w)
        if ti is not None:
            current = ti.get("try_number")
            if w.kind == "container" and w.try_number is not None and current != w.try_number:
                verdicts.append(
                    Verdict(
                        w,
                        True,
                        f"the task instance is {ti['state']} with try {current}, not try {w.try_number}",
                    )
                )
            else:
                verdicts.append(Verdict(w, False, f"the task instance is {ti['state']} (try {current})"))
            continue
        verdicts.append(_dead(w, api, known_dags, include_unknown_dags))
    return verdicts


def _dead(w: Workload, api: AirflowApi, known_dags: dict[str, bool], include_unknown: bool) -> Verdict:
    """A workload no live task instance claims: say what the task instance is, or that it is gone."""
    ti = api.task_instance(w.dag_id, w.run_id, w.task_id, w.map_index) if w.exact else _by_label(w, api)
    if ti is not None:
        return Verdict(
            w,
            True,
            f"the task instance is {ti.get('state') or 'none (cleared)'} (try {ti.get('try_number')})",
        )
    if w.dag_id not in known_dags:
        known_dags[w.dag_id] = api.dag_exists(w.dag_id)
    if not known_dags[w.dag_id] and not include_unknown:
        return Verdict(
            w,
            False,
            f"this Airflow knows no DAG {w.dag_id!r} (another deployment's task?); pass "
            "--include-unknown-dags to remove such containers and pods too",
        )
    if w.exact:
        return Verdict(w, True, "no such task instance (its DAG run was deleted)")
    return Verdict(
        w, True, "no live task instance matches the pod's labels (finished, or its DAG run was deleted)"
    )


def _by_label(w: Workload, api: AirflowApi) -> Mapping[str, Any] | None:
    """The task instance a pod's label-safe ids name, found among its task's instances."""
    for ti in api.task_instances_of(w.dag_id, w.task_id):
        if int(ti.get("map_index", -1)) == w.map_index and _safe_label(str(ti["dag_run_id"])) == w.run_id:
            return ti
    return None


def reap(
    sources: Sequence[Source],
    api: AirflowApi,
    *,
    min_age: dt.timedelta,
    dry_run: bool = False,
    labels: Sequence[str] = (),
    include_unknown_dags: bool = False,
    report: Callable[[str], None] | None = None,
) -> ReapReport:
    """List, decide, and (unless ``dry_run``) remove; ``report`` gets one line per workload as it goes."""
    api.check()  # a wrong URL or bad credentials fail here, before anything is listed or removed
    result = ReapReport(dry_run=dry_run)
    for source in sources:
        workloads = list(source.list(labels))
        for verdict in decide(workloads, api, min_age=min_age, include_unknown_dags=include_unknown_dags):
            if verdict.remove:
                verdict.evidence = source.evidence(verdict.workload)
                if not dry_run:
                    try:
                        source.remove(verdict.workload)
                        verdict.removed = True
                    except WorkloadSourceError as exc:
                        verdict.error = str(exc)
            result.verdicts.append(verdict)
            if report:
                report(verdict.line(dry_run=dry_run))
    return result


def _human(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"
