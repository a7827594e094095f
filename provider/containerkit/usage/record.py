"""One usage record per task try: what the container really used, next to what it was given.

A record is plain data (JSON-able through :meth:`UsageRecord.to_dict`), so it travels through XCom, a
file store and the CLI unchanged. A measurement the runtime could not give is ``None`` and the record
says why in ``unavailable``; nothing is estimated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

SCHEMA_VERSION = 1
MI = 1024 * 1024
GI = 1024 * MI
ALERT_RATIO = 0.9
"""A try whose peak reaches this share of its memory limit is within 10 % of it: the capture warns."""


def format_bytes(value: float | None) -> str:
    """``412Mi``, ``1.5Gi``, ``900Ki``: the Kubernetes binary suffixes people read in pod specs."""
    if value is None:
        return "?"
    if value >= GI:
        text = f"{value / GI:.1f}".rstrip("0").rstrip(".")
        return f"{text}Gi"
    if value >= MI:
        return f"{round(value / MI)}Mi"
    if value >= 1024:
        return f"{round(value / 1024)}Ki"
    return f"{int(value)}"


def bytes_quantity(value: int) -> str:
    """An exact Kubernetes quantity for ``value`` bytes: ``2Gi``, ``1229Mi``, ``512Ki`` or plain bytes."""
    for suffix, unit in (("Gi", GI), ("Mi", MI), ("Ki", 1024)):
        if value and value % unit == 0:
            return f"{value // unit}{suffix}"
    return str(int(value))


def format_cpu(cores: float | None) -> str:
    """A CPU quantity as Kubernetes writes it: ``250m`` below one core, else cores (``1.5``)."""
    if cores is None:
        return "?"
    millis = math.ceil(round(cores * 1000, 6))
    if millis % 1000 == 0:
        return str(millis // 1000)
    if millis < 1000:
        return f"{millis}m"
    return f"{millis / 1000:g}"


@dataclass(frozen=True)
class UsageRecord:
    """What one try of one container task used.

    :param runtime: ``docker`` or ``kubernetes``.
    :param requests: the rendered requests (``{"cpu": "250m", "memory": "512Mi"}``).
    :param limits: the rendered limits.
    :param peak_memory_bytes: the highest memory charge seen: the cgroup's own peak counter where the
        runtime exposes it (Docker on cgroup v1: ``memory.max_usage_in_bytes``, page cache included),
        else the highest sampled working set.
    :param memory_limit_bytes: the limit the runtime enforced (read from the engine, not the spec).
    :param cpu_seconds: CPU time used up to the last sample taken while the container ran (the engine
        drops the counters when the container exits: the last ``interval`` of a run is not observed).
    :param cpu_peak_cores: the highest CPU rate between two samples.
    :param throttled_seconds: time the CFS quota held the container back (Docker).
    :param throttled_periods: CFS periods in which it was throttled, of ``periods``.
    :param oom_killed: the kernel killed the container for exceeding its memory limit.
    :param unavailable: why measurements are missing (e.g. no ``metrics.k8s.io`` API); ``None`` if not.
    """

    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    try_number: int
    runtime: str
    started_at: str
    ended_at: str
    duration_seconds: float
    requests: Mapping[str, str] = field(default_factory=dict)
    limits: Mapping[str, str] = field(default_factory=dict)
    container: str | None = None
    peak_memory_bytes: int | None = None
    memory_limit_bytes: int | None = None
    cpu_seconds: float | None = None
    cpu_peak_cores: float | None = None
    throttled_seconds: float | None = None
    throttled_periods: int | None = None
    periods: int | None = None
    peak_pids: int | None = None
    samples: int = 0
    interval_seconds: float | None = None
    oom_killed: bool = False
    exit_code: int | None = None
    restarts: int | None = None
    unavailable: str | None = None
    sampler_errors: tuple[str, ...] = ()
    version: int = SCHEMA_VERSION

    # ------------------------------------------------------------------ derived facts

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0 and not self.oom_killed

    @property
    def measured(self) -> bool:
        """Memory and CPU were observed (at least one sample or a peak counter)."""
        return self.unavailable is None and self.peak_memory_bytes is not None

    @property
    def memory_ratio(self) -> float | None:
        if not self.peak_memory_bytes or not self.memory_limit_bytes:
            return None
        return self.peak_memory_bytes / self.memory_limit_bytes

    @property
    def throttled_ratio(self) -> float | None:
        if self.periods is None or self.throttled_periods is None:
            return None
        return self.throttled_periods / self.periods if self.periods else 0.0

    @property
    def near_memory_limit(self) -> bool:
        """Within 10 % of the memory limit (or OOM-killed): the next input may not fit."""
        ratio = self.memory_ratio
        return self.oom_killed or (ratio is not None and ratio >= ALERT_RATIO)

    @property
    def key(self) -> tuple[str, str, str, int, int]:
        return (self.dag_id, self.task_id, self.run_id, self.map_index, self.try_number)

    def summary(self) -> str:
        """The one line for the task log."""
        if self.unavailable is not None and self.peak_memory_bytes is None:
            head = f"usage unavailable: {self.unavailable}"
            return f"{head}; OOMKilled" if self.oom_killed else head
        limit = self.memory_limit_bytes
        if self.peak_memory_bytes is not None and limit:
            memory = (
                f"peak {format_bytes(self.peak_memory_bytes)} of {format_bytes(limit)} limit "
                f"({round(100 * self.peak_memory_bytes / limit)} %)"
            )
        else:
            memory = f"peak {format_bytes(self.peak_memory_bytes)} (no memory limit)"
        parts = [memory]
        if self.cpu_seconds is not None:
            parts.append(f"cpu {self.cpu_seconds:.1f} s of {self.duration_seconds:.1f} s wall")
        ratio = self.throttled_ratio
        if ratio is not None:
            parts.append(f"throttled {round(100 * ratio)} %")
        if self.oom_killed:
            parts.append(f"OOMKilled at {format_bytes(limit)}")
        if self.restarts:
            parts.append(f"{self.restarts} restarts")
        return ", ".join(parts)

    # ------------------------------------------------------------------ (de)serialization

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["requests"] = dict(self.requests)
        data["limits"] = dict(self.limits)
        data["sampler_errors"] = list(self.sampler_errors)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UsageRecord:
        """Read a stored record; unknown keys (a newer writer) are ignored, missing optional ones default."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        missing = [
            f.name
            for f in fields(cls)
            if f.name not in values and f.default is MISSING and f.default_factory is MISSING
        ]
        if missing:
            raise ValueError(f"usage record is missing {', '.join(missing)}: {dict(data)!r:.200}")
        values["sampler_errors"] = tuple(values.get("sampler_errors") or ())
        values["requests"] = dict(values.get("requests") or {})
        values["limits"] = dict(values.get("limits") or {})
        return cls(**values)
