"""Sample a running pod's container through the ``metrics.k8s.io/v1beta1`` PodMetrics API.

PodMetrics (metrics-server, or the local test double) report per container a CPU *rate* (cores over
the metrics ``window``) and the memory *working set* (usage minus inactive file pages): there is no
peak counter and no cumulative CPU counter. So peak memory is the highest sampled working set, and
CPU seconds are the sum of rate x window over the samples: CPU used before the first or after the last
sample is not counted, and a real metrics-server refreshes only every 15-60 s, so a short task may have
no sample at all. Then the record says "unavailable" with the reason; nothing is estimated.

Whether the API is served is asked once: API discovery of ``metrics.k8s.io/v1beta1``, else a list of
the namespace's PodMetrics.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from containerkit.usage.docker_sampler import DEFAULT_INTERVAL, bounded_interval

GROUP, VERSION = "metrics.k8s.io", "v1beta1"
NOT_SERVED = "metrics.k8s.io/v1beta1 is not served by this cluster (install metrics-server)"
NO_SAMPLE = "no PodMetrics for the pod while it ran (metrics-server refreshes every 15-60 s)"
MAX_FAILURES = 5
"""Consecutive failed reads (API errors, connection refused) after which a sampler gives up."""
MAX_MISSING = 180
"""Consecutive 404s (no PodMetrics yet, or the pod is gone) after which it gives up: metrics-server can
take up to a minute to report a new pod, and a killed task's pod is deleted without a stop call."""
_DURATION = re.compile(r"^(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?$")


def _window_seconds(text: object) -> float | None:
    match = _DURATION.match(str(text or ""))
    if not match or not (match["m"] or match["s"]):
        return None
    return float(match["m"] or 0) * 60 + float(match["s"] or 0)


def _quantity(text: object, kind: str) -> float:
    from containerkit.spec.quantity import parse_quantity

    return float(parse_quantity(f"PodMetrics.usage.{kind}", str(text), kind=kind))


@dataclass
class PodUsage:
    samples: int = 0
    peak_memory_bytes: int | None = None
    cpu_seconds: float | None = None
    cpu_peak_cores: float | None = None
    served: bool | None = None
    errors: list[str] = field(default_factory=list)
    _seen: set[tuple[str, str]] = field(default_factory=set)

    def add(self, metrics: dict[str, Any], container: str, elapsed: float | None) -> bool:
        """Fold one PodMetrics object in (``False`` if it has no entry for ``container``)."""
        entry = next((c for c in metrics.get("containers") or [] if c.get("name") == container), None)
        if entry is None:
            return False
        # metrics-server answers every read between two scrapes with the same sample: count it once.
        stamp = (str(metrics.get("timestamp")), str(metrics.get("window")))
        if stamp in self._seen:
            return False
        self._seen.add(stamp)
        usage = entry.get("usage") or {}
        memory = int(_quantity(usage.get("memory", "0"), "bytes"))
        cores = _quantity(usage.get("cpu", "0"), "cpu")
        window = _window_seconds(metrics.get("window"))
        span = window if window is not None else elapsed
        self.peak_memory_bytes = max(self.peak_memory_bytes or 0, memory)
        self.cpu_peak_cores = max(self.cpu_peak_cores or 0.0, cores)
        if span is not None:
            self.cpu_seconds = (self.cpu_seconds or 0.0) + cores * span
        self.samples += 1
        return True


class PodMetricsSampler:
    """Samples one pod's container in a daemon thread; never raises into the task."""

    def __init__(
        self,
        api_client: Any,
        namespace: str,
        pod: str,
        container: str,
        *,
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self.api_client = api_client
        self.namespace, self.pod, self.container = namespace, pod, container
        self.interval = bounded_interval(interval)
        self.usage = PodUsage()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"containerkit-usage-{pod}", daemon=True)

    def served(self) -> bool:
        """Is PodMetrics served? API discovery first; on 404 a list of the namespace's PodMetrics (some
        servers answer the resource without serving discovery). 404 on both means no."""
        from kubernetes.client import CustomObjectsApi
        from kubernetes.client.exceptions import ApiException

        api = CustomObjectsApi(self.api_client)
        try:
            api.get_api_resources(GROUP, VERSION)
            return True
        except ApiException as exc:
            if exc.status not in (404, 503):
                raise
        try:
            api.list_namespaced_custom_object(GROUP, VERSION, self.namespace, "pods", limit=1)
        except ApiException as exc:
            if exc.status in (404, 503):
                return False
            raise
        return True

    def sample(self) -> dict[str, Any]:
        from kubernetes.client import CustomObjectsApi

        found = CustomObjectsApi(self.api_client).get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "pods", self.pod
        )
        return found if isinstance(found, dict) else {}

    def _run(self) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            served = self.served()
        except Exception as exc:
            self._note(f"discovery: {type(exc).__name__}: {exc}")
            served = True  # unknown: try the metrics themselves
        with self._lock:
            self.usage.served = served
        if not served:
            return
        last: float | None = None
        missing = failures = 0
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                metrics = self.sample()
                with self._lock:
                    self.usage.add(metrics, self.container, None if last is None else began - last)
                last = began
                missing = failures = 0
            except ApiException as exc:
                if exc.status == 404:  # not scraped yet, or the pod is gone (killed): bounded wait
                    missing += 1
                    if missing >= MAX_MISSING:
                        return
                else:
                    failures += 1
                    self._note(f"ApiException {exc.status}: {exc.reason}")
            except Exception as exc:
                failures += 1
                self._note(f"{type(exc).__name__}: {exc}")
            if failures >= MAX_FAILURES:
                self._note(f"stopped sampling after {failures} failed reads in a row")
                return
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - began)))

    def _note(self, message: str) -> None:
        with self._lock:
            if len(self.usage.errors) < 5:
                self.usage.errors.append(message[:300])

    def start(self) -> PodMetricsSampler:
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> PodUsage:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        with self._lock:
            return self.usage
