"""Sample a running container's cgroup counters through the Docker engine's stats API.

One daemon thread per container asks for a one-shot stats reading every ``interval`` seconds (the
engine itself refreshes them about once a second, so a shorter interval buys nothing) and keeps only
running maxima and the last cumulative counters: memory is bounded however long the task runs.

Peak memory also covers the time between samples where the cgroup keeps its own peak counter
(cgroup v1 ``memory.max_usage_in_bytes``, reported as ``memory_stats.max_usage``); on cgroup v2 the
engine does not report one, and the peak is the highest sample. CPU and throttling counters are
cumulative, so the last reading taken while the container ran holds the whole run up to that moment.
The engine drops the counters when the container exits: the last interval of a run is not observed.

A failed reading is counted and remembered, never raised: sampling must not change a task's outcome.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

DEFAULT_INTERVAL = 1.0
MIN_INTERVAL = 0.2
MAX_INTERVAL = 60.0
_MAX_ERRORS_KEPT = 5
_ZERO_TIME = "0001-01-01T00:00:00Z"


class StatsClient(Protocol):
    """The part of docker-py's ``APIClient`` the sampler uses."""

    def stats(
        self, container: str, decode: bool | None = ..., stream: bool = ..., one_shot: bool | None = ...
    ) -> Any: ...


@dataclass
class DockerUsage:
    """Running maxima and last counters of one container (mutable: the sampler thread fills it)."""

    samples: int = 0
    peak_memory_bytes: int | None = None
    memory_limit_bytes: int | None = None
    cpu_ns: int | None = None
    cpu_peak_cores: float | None = None
    throttled_ns: int | None = None
    throttled_periods: int | None = None
    periods: int | None = None
    peak_pids: int | None = None
    peak_counter: bool = False
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    _last_cpu: tuple[float, int] | None = None

    def add(self, stats: dict[str, Any]) -> bool:
        """Fold one stats reading in; ``False`` when the container is gone (an all-zero reading)."""
        if not stats or stats.get("read", _ZERO_TIME).startswith("0001-"):
            return False
        memory = stats.get("memory_stats") or {}
        usage = memory.get("usage")
        if usage is None:
            return False  # not running (yet or any more): the engine reports no memory cgroup
        peak = max(int(usage), int(memory.get("max_usage") or 0))
        self.peak_counter = self.peak_counter or "max_usage" in memory
        self.peak_memory_bytes = max(self.peak_memory_bytes or 0, peak)
        if memory.get("limit"):
            self.memory_limit_bytes = int(memory["limit"])
        cpu = stats.get("cpu_stats") or {}
        total = (cpu.get("cpu_usage") or {}).get("total_usage")
        if total is not None:
            total = int(total)
            when = _read_time(stats.get("read")) or time.time()
            if self._last_cpu is not None and when > self._last_cpu[0]:
                rate = (total - self._last_cpu[1]) / 1e9 / (when - self._last_cpu[0])
                self.cpu_peak_cores = max(self.cpu_peak_cores or 0.0, rate)
            self._last_cpu = (when, total)
            self.cpu_ns = max(self.cpu_ns or 0, total)
        throttling = cpu.get("throttling_data") or {}
        if throttling:
            self.throttled_ns = int(throttling.get("throttled_time") or 0)
            self.throttled_periods = int(throttling.get("throttled_periods") or 0)
            self.periods = int(throttling.get("periods") or 0)
        pids = (stats.get("pids_stats") or {}).get("current")
        if pids is not None:
            self.peak_pids = max(self.peak_pids or 0, int(pids))
        self.samples += 1
        return True

    def note_error(self, exc: BaseException) -> None:
        self.error_count += 1
        if len(self.errors) < _MAX_ERRORS_KEPT:
            self.errors.append(f"{type(exc).__name__}: {exc}"[:300])


def _read_time(text: object) -> float | None:
    """The engine's RFC 3339 timestamp (nanoseconds) as epoch seconds."""
    if not isinstance(text, str) or text.startswith("0001-"):
        return None
    head, _, rest = text.rstrip("Z").partition(".")
    fraction = "".join(ch for ch in rest if ch.isdigit())[:6]
    try:
        moment = datetime.fromisoformat(f"{head}.{fraction or '0'}+00:00")
    except ValueError:
        return None
    return moment.timestamp()


def bounded_interval(value: object) -> float:
    """An interval within [MIN_INTERVAL, MAX_INTERVAL]; bad values fall back to the default."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return DEFAULT_INTERVAL
    if seconds != seconds:  # NaN
        return DEFAULT_INTERVAL
    return min(MAX_INTERVAL, max(MIN_INTERVAL, seconds))


class DockerStatsSampler:
    """Samples one container in a daemon thread from :meth:`start` until :meth:`stop`."""

    def __init__(self, client: StatsClient, container_id: str, *, interval: float = DEFAULT_INTERVAL) -> None:
        self.client = client
        self.container_id = container_id
        self.interval = bounded_interval(interval)
        self.usage = DockerUsage()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._run, name=f"containerkit-usage-{container_id[:12]}", daemon=True
        )

    def sample(self) -> dict[str, Any]:
        """One reading (docker-py returns the decoded JSON for ``stream=False``)."""
        stats = self.client.stats(self.container_id, stream=False, one_shot=True)
        return stats if isinstance(stats, dict) else {}

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                stats = self.sample()
                with self._lock:
                    running = self.usage.add(stats)
                if not running and self.usage.samples:
                    return  # the container exited: later readings are all zero
            except Exception as exc:  # a sampler must never raise into the task
                with self._lock:
                    self.usage.note_error(exc)
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - began)))

    def start(self) -> DockerStatsSampler:
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> DockerUsage:
        """Stop sampling (waits at most ``timeout`` for an in-flight reading) and return the usage."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        with self._lock:
            return self.usage
