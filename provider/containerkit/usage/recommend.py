"""Requests and limits from recorded usage: a per-task recommendation with the evidence behind it.

The rules (each number is an option of :class:`RecommendOptions`):

* **history**: per task (``dag_id``, ``task_id``; mapped instances pooled), the tries that succeeded and
  were measured. With fewer than ``min_history`` (default 5) the answer is "not enough history", with
  no numbers. Each try weighs ``0.5 ** (age / half_life_days)`` (default 7 days, age counted from the
  task's newest try), so a task that changed recently is sized by its recent tries.
* **memory** (request = limit): the weighted ``memory_percentile`` (90) of per-try peaks plus
  ``memory_margin`` (15 %), as the Kubernetes VPA does with daily peaks; never below the highest
  successful peak; after an OOM kill at least ``max(peak + 100Mi, 1.2 x limit)`` of that try (VPA's OOM
  bump). Rounded up to a whole Mi.
* **cpu request**: the weighted ``cpu_percentile`` (90) of per-try average cores (cpu seconds / wall
  seconds) plus ``cpu_margin`` (15 %), rounded up to a millicore (at least 10m). **cpu limit**: none on
  Kubernetes (the hardened policy requires none; a limit only throttles); a hard one on Docker, where
  the engine has no request: the weighted 95th percentile of per-try peak rates plus the margin, at
  least the request, and raised by 50 % when the task was throttled (its observed peak was the limit).
* **preset**: the smallest ``containerkit.spec`` preset that holds the recommendation; the suggestion is
  the bare preset when its memory is within 25 % of the recommendation and its cpu request within 2x,
  else the preset with explicit values on top.
* **flags**: ``oom-killed`` (any try), ``throttled`` (more than 10 % of CFS periods throttled over the
  history), ``oversized`` (the highest peak under 50 % of the current memory request).
* **cost**: the monthly over-request, ``(current request - recommended) x hours run per month`` in
  cpu-hours and GiB-hours, where hours per month = mean successful duration x runs per month and runs
  per month = 30 days x (tries - 1) / the span between the first and last try, the span counted as at
  least one day (just ``tries`` if they all started together). A platform team sorts by these to know
  what to fix first.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from containerkit.usage.record import GI, MI, UsageRecord, bytes_quantity, format_bytes, format_cpu

NOT_ENOUGH_HISTORY = "not-enough-history"
OK = "ok"
FLAG_OOM = "oom-killed"
FLAG_THROTTLED = "throttled"
FLAG_OVERSIZED = "oversized"


@dataclass(frozen=True)
class RecommendOptions:
    memory_percentile: float = 90.0
    memory_margin: float = 0.15
    cpu_percentile: float = 90.0
    cpu_margin: float = 0.15
    cpu_limit_percentile: float = 95.0
    min_history: int = 5
    half_life_days: float = 7.0
    oom_bump_bytes: int = 100 * MI
    oom_bump_ratio: float = 1.2
    throttled_threshold: float = 0.10
    throttle_bump_ratio: float = 1.5
    oversized_ratio: float = 0.5
    preset_memory_tolerance: float = 1.25
    preset_cpu_tolerance: float = 2.0
    days_per_month: float = 30.0

    def __post_init__(self) -> None:
        for name in ("memory_percentile", "cpu_percentile", "cpu_limit_percentile"):
            value = getattr(self, name)
            if not 0 < value <= 100:
                raise ValueError(f"{name}={value!r}: a percentile is in (0, 100]; use e.g. 90")
        if self.min_history < 1:
            raise ValueError(f"min_history={self.min_history!r}: needs at least 1 try; use e.g. 5")
        if self.half_life_days <= 0:
            raise ValueError(f"half_life_days={self.half_life_days!r}: must be > 0; use e.g. 7")
        for name in ("memory_margin", "cpu_margin"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)!r}: a margin cannot be negative; use 0.15")


@dataclass(frozen=True)
class Recommendation:
    """The answer for one task; ``status`` is ``ok`` or ``not-enough-history`` (then no sizes)."""

    dag_id: str
    task_id: str
    runtime: str
    status: str
    reason: str
    tries: int
    successful: int
    oom_kills: int
    current_requests: Mapping[str, str]
    current_limits: Mapping[str, str]
    flags: tuple[str, ...] = ()
    memory_bytes: int | None = None
    cpu_request_cores: float | None = None
    cpu_limit_cores: float | None = None
    preset: str | None = None
    resources: Any = None
    over_request_cpu_hours: float = 0.0
    over_request_gib_hours: float = 0.0
    basis: Mapping[str, Any] = field(default_factory=dict)
    series: tuple[Mapping[str, Any], ...] = ()

    @property
    def memory(self) -> str | None:
        return None if self.memory_bytes is None else bytes_quantity(self.memory_bytes)

    @property
    def cpu_request(self) -> str | None:
        return None if self.cpu_request_cores is None else format_cpu(self.cpu_request_cores)

    @property
    def cpu_limit(self) -> str | None:
        return None if self.cpu_limit_cores is None else format_cpu(self.cpu_limit_cores)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(memory=self.memory, cpu_request=self.cpu_request, cpu_limit=self.cpu_limit)
        data["flags"] = list(self.flags)
        data["series"] = [dict(s) for s in self.series]
        return data


def weighted_percentile(values: Sequence[float], weights: Sequence[float], percentile: float) -> float:
    """The smallest value whose cumulative weight reaches ``percentile`` % of the total (no interpolation:
    the answer is always an observed value)."""
    if not values:
        raise ValueError("no values")
    pairs = sorted(zip(values, weights, strict=True))
    total = sum(w for _, w in pairs)
    target = total * percentile / 100
    running = 0.0
    for value, weight in pairs:
        running += weight
        if running >= target - 1e-12 * total:
            return value
    return pairs[-1][0]


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _ceil_mi(value: float) -> int:
    return math.ceil(round(value / MI, 9)) * MI


def _ceil_millicores(cores: float) -> float:
    return max(10, math.ceil(round(cores * 1000, 6))) / 1000


def _quantity(text: object, kind: str) -> float | None:
    if text is None:
        return None
    from containerkit.spec.quantity import parse_quantity

    try:
        return float(parse_quantity(f"requests.{kind}", text, kind=kind))
    except ValueError:
        return None


def _presets() -> dict[str, Any]:
    from containerkit.spec.resources import RESOURCE_PRESETS

    return dict(RESOURCE_PRESETS)


def _bytes_of(quantity: str) -> float:
    return float(_quantity(quantity, "bytes") or 0)


def _cores_of(quantity: str) -> float:
    return float(_quantity(quantity, "cpu") or 0)


def group(records: Iterable[UsageRecord]) -> dict[tuple[str, str], list[UsageRecord]]:
    """Records per task, each list oldest first."""
    out: dict[tuple[str, str], list[UsageRecord]] = {}
    for record in records:
        out.setdefault((record.dag_id, record.task_id), []).append(record)
    for tries in out.values():
        tries.sort(key=lambda r: (r.started_at, r.run_id, r.map_index, r.try_number))
    return out


def recommend(
    records: Iterable[UsageRecord],
    *,
    dag_id: str | None = None,
    task_id: str | None = None,
    options: RecommendOptions | None = None,
) -> list[Recommendation]:
    """One :class:`Recommendation` per task in ``records`` (optionally one DAG / one task), sorted by
    monthly over-request (largest first), then by name."""
    opts = options or RecommendOptions()
    chosen = [
        r
        for r in records
        if (dag_id is None or r.dag_id == dag_id) and (task_id is None or r.task_id == task_id)
    ]
    out = [recommend_task(tries, opts) for tries in group(chosen).values()]
    return sorted(
        out, key=lambda r: (-(r.over_request_gib_hours + r.over_request_cpu_hours), r.dag_id, r.task_id)
    )


def recommend_stored(
    sources: Sequence[str] | None = None,
    *,
    dag_id: str | None = None,
    task_id: str | None = None,
    options: RecommendOptions | None = None,
) -> list[Recommendation]:
    """:func:`recommend` over stored history: usage stores (paths / URLs) and exported JSON-lines
    files; default the store tasks write to (:func:`containerkit.usage.store.store_location`)."""
    from containerkit.usage.store import read_history, store_location

    records = read_history(list(sources) if sources else [store_location()])
    return recommend(records, dag_id=dag_id, task_id=task_id, options=options)


def _series(tries: Sequence[UsageRecord]) -> tuple[dict[str, Any], ...]:
    return tuple(
        {
            "run_id": r.run_id,
            "map_index": r.map_index,
            "try_number": r.try_number,
            "started_at": r.started_at,
            "peak_memory_bytes": r.peak_memory_bytes,
            "memory_limit_bytes": r.memory_limit_bytes,
            "memory_request_bytes": _quantity(r.requests.get("memory"), "bytes"),
            "cpu_cores": (r.cpu_seconds / r.duration_seconds)
            if r.cpu_seconds and r.duration_seconds
            else None,
            "cpu_request_cores": _quantity(r.requests.get("cpu"), "cpu"),
            "cpu_limit_cores": _quantity(r.limits.get("cpu"), "cpu"),
            "oom_killed": r.oom_killed,
            "succeeded": r.succeeded,
        }
        for r in tries
    )


def recommend_task(tries: Sequence[UsageRecord], opts: RecommendOptions) -> Recommendation:
    """The recommendation for one task's tries (oldest first)."""
    newest = tries[-1]
    good = [r for r in tries if r.succeeded and r.measured]
    ooms = [r for r in tries if r.oom_killed]
    throttled = sum(r.throttled_periods or 0 for r in tries)
    periods = sum(r.periods or 0 for r in tries)
    flags: list[str] = []
    if ooms:
        flags.append(FLAG_OOM)
    if periods and throttled / periods > opts.throttled_threshold:
        flags.append(FLAG_THROTTLED)
    current_memory = _quantity(newest.requests.get("memory"), "bytes")
    peaks = [float(r.peak_memory_bytes or 0) for r in good]
    if current_memory and peaks and max(peaks) < opts.oversized_ratio * current_memory:
        flags.append(FLAG_OVERSIZED)
    base = dict(
        dag_id=newest.dag_id,
        task_id=newest.task_id,
        runtime=newest.runtime,
        tries=len(tries),
        successful=len(good),
        oom_kills=len(ooms),
        current_requests=dict(newest.requests),
        current_limits=dict(newest.limits),
        flags=tuple(flags),
        series=_series(tries),
    )
    if len(good) < opts.min_history:
        return Recommendation(
            status=NOT_ENOUGH_HISTORY,
            reason=f"not enough history: {len(good)} successful measured tries, need {opts.min_history}",
            **base,  # type: ignore[arg-type]
        )

    newest_time = max(_time(r.started_at) for r in good)
    weights = [
        0.5 ** (((newest_time - _time(r.started_at)).total_seconds() / 86400) / opts.half_life_days)
        for r in good
    ]
    memory_p = weighted_percentile(peaks, weights, opts.memory_percentile)
    memory = max(memory_p * (1 + opts.memory_margin), max(peaks))
    oom_floor = 0.0
    for r in ooms:
        limit = float(r.memory_limit_bytes or _quantity(r.limits.get("memory"), "bytes") or 0)
        oom_floor = max(
            oom_floor, float(r.peak_memory_bytes or 0) + opts.oom_bump_bytes, opts.oom_bump_ratio * limit
        )
    memory_bytes = _ceil_mi(max(memory, oom_floor))

    averages = [(r.cpu_seconds or 0.0) / r.duration_seconds if r.duration_seconds else 0.0 for r in good]
    cpu_p = weighted_percentile(averages, weights, opts.cpu_percentile)
    cpu_request = _ceil_millicores(cpu_p * (1 + opts.cpu_margin))
    cpu_limit: float | None = None
    if newest.runtime == "docker":
        rates = [
            r.cpu_peak_cores if r.cpu_peak_cores is not None else a
            for r, a in zip(good, averages, strict=True)
        ]
        peak_p = weighted_percentile(rates, weights, opts.cpu_limit_percentile)
        limit = peak_p * (1 + opts.cpu_margin)
        if FLAG_THROTTLED in flags:
            current_limit = _quantity(newest.limits.get("cpu"), "cpu") or 0.0
            limit = max(limit, current_limit * opts.throttle_bump_ratio)
        cpu_limit = _ceil_millicores(max(limit, cpu_request))

    preset, resources = _suggest(memory_bytes, cpu_request, cpu_limit, opts)
    hours = _monthly_hours(tries, good, opts)
    current_cpu = _quantity(newest.requests.get("cpu"), "cpu")
    over_cpu = max(0.0, (current_cpu or 0.0) - cpu_request) * hours if current_cpu else 0.0
    over_gib = max(0.0, (current_memory or 0.0) - memory_bytes) / GI * hours if current_memory else 0.0
    reason = (
        f"memory: p{opts.memory_percentile:g} of {len(good)} peaks {format_bytes(memory_p)} "
        f"+ {round(opts.memory_margin * 100)} %"
    )
    if max(peaks) > memory_p * (1 + opts.memory_margin):
        reason += f", raised to the highest peak {format_bytes(max(peaks))}"
    if oom_floor > memory:
        reason += f", raised after {len(ooms)} OOM kill(s) to {format_bytes(oom_floor)}"
    reason += (
        f"; cpu: p{opts.cpu_percentile:g} of per-try average {format_cpu(cpu_p)} "
        f"+ {round(opts.cpu_margin * 100)} %"
    )
    return Recommendation(
        status=OK,
        reason=reason,
        memory_bytes=memory_bytes,
        cpu_request_cores=cpu_request,
        cpu_limit_cores=cpu_limit,
        preset=preset,
        resources=resources,
        over_request_cpu_hours=round(over_cpu, 3),
        over_request_gib_hours=round(over_gib, 3),
        basis={
            "memory_percentile_bytes": memory_p,
            "max_peak_bytes": max(peaks),
            "oom_floor_bytes": oom_floor or None,
            "cpu_percentile_cores": round(cpu_p, 6),
            "weights": [round(w, 6) for w in weights],
            "monthly_hours": round(hours, 6),
        },
        **base,  # type: ignore[arg-type]
    )


def _monthly_hours(
    tries: Sequence[UsageRecord], good: Sequence[UsageRecord], opts: RecommendOptions
) -> float:
    starts = sorted(_time(r.started_at) for r in tries)
    span_days = (starts[-1] - starts[0]).total_seconds() / 86400
    # A span under a day says nothing about the schedule: count it as a day (at most the runs seen per day).
    runs = (
        opts.days_per_month * (len(tries) - 1) / max(span_days, 1.0) if span_days > 0 else float(len(tries))
    )
    mean_hours = sum(r.duration_seconds for r in good) / len(good) / 3600
    return runs * mean_hours


def _suggest(
    memory_bytes: int, cpu_request: float, cpu_limit: float | None, opts: RecommendOptions
) -> tuple[str | None, Any]:
    """``(preset, resources=...)``: the bare preset name, or the preset with explicit values on top."""
    presets = _presets()
    fitting = [
        (name, p)
        for name, p in presets.items()
        if _bytes_of(p.memory_request) >= memory_bytes and _cores_of(p.cpu_request) >= cpu_request
    ]
    if fitting:
        name, p = min(
            fitting, key=lambda item: (_bytes_of(item[1].memory_request), _cores_of(item[1].cpu_request))
        )
    else:
        name, p = max(presets.items(), key=lambda item: _bytes_of(item[1].memory_request))
    p_memory, p_cpu, p_limit = _bytes_of(p.memory_request), _cores_of(p.cpu_request), _cores_of(p.cpu_limit)
    overrides: dict[str, Any] = {}
    if not (memory_bytes <= p_memory <= opts.preset_memory_tolerance * memory_bytes):
        overrides["memory"] = bytes_quantity(memory_bytes)
    if not (cpu_request <= p_cpu <= opts.preset_cpu_tolerance * cpu_request):
        overrides["requests"] = {"cpu": format_cpu(cpu_request)}
    wanted_limit = max(cpu_limit or 0.0, cpu_request)
    if wanted_limit > p_limit:
        overrides["limits"] = {"cpu": format_cpu(wanted_limit)}
    if not overrides:
        return name, name
    return (name if fitting else None), {"preset": name, **overrides}


def resources_literal(resources: Any) -> str:
    """The ``resources=`` argument as Python source (JSON is valid Python for these values)."""
    import json

    return json.dumps(resources)


def check_sizes(recommendation: Recommendation) -> None:
    """Prove the suggestion is a valid spec (the same validation a DAG file runs)."""
    from containerkit.spec.resources import Resources

    if recommendation.resources is not None:
        Resources.coerce(recommendation.resources)


__all__ = [
    "FLAG_OOM",
    "FLAG_OVERSIZED",
    "FLAG_THROTTLED",
    "NOT_ENOUGH_HISTORY",
    "RecommendOptions",
    "Recommendation",
    "recommend",
    "recommend_stored",
    "recommend_task",
    "resources_literal",
    "weighted_percentile",
]
