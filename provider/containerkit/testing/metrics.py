"""``metrics.k8s.io/v1beta1`` PodMetrics of the test double, from the engine's container stats.

cpu is a rate in nanocores (``"<n>n"``) over the time since the previous sample of the same container
(the first read of a container samples twice, 0.5 s apart; the window runs between the engine's own read
stamps); memory is the working set (usage minus
inactive file pages, as metrics-server reports it) in ``Ki``.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from typing import TYPE_CHECKING, Any

import aiohttp.web

from containerkit.testing.selectors import label_selector_matches
from containerkit.testing.streams import status_response

if TYPE_CHECKING:
    from containerkit.testing.kubelet import Kubelet

__all__ = ["pod_metrics", "usage"]

_SAMPLES: dict[str, tuple[float, int]] = {}  # container id -> (engine read time, cpu usage ns)


def _stamp() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _working_set(stats: dict[str, Any]) -> int:
    memory = stats.get("memory_stats") or {}
    detail = memory.get("stats") or {}
    inactive = detail.get("total_inactive_file", detail.get("inactive_file", 0))
    return max(0, int(memory.get("usage") or 0) - int(inactive or 0))


def _read_time(stats: dict[str, Any]) -> float:
    """When the engine read the counters (its ``read`` stamp, ns precision), as epoch seconds."""
    stamp = str(stats.get("read") or "")
    head, _, frac = stamp.rstrip("Z").partition(".")
    try:
        base = datetime.datetime.fromisoformat(head).replace(tzinfo=datetime.UTC).timestamp()
    except ValueError:
        return time.time()
    return base + float(f"0.{frac or 0}")


def _cpu_ns(stats: dict[str, Any]) -> int:
    return int(((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage") or 0)


async def usage(kubelet: Kubelet, cid: str) -> tuple[int, int, float]:
    """(nanocores, working set bytes, window seconds) of one running container."""

    def sample() -> dict[str, Any]:
        return dict(kubelet.client.api.stats(cid, stream=False, one_shot=True))

    stats = await kubelet.docker(sample)
    t, cpu = _read_time(stats), _cpu_ns(stats)
    previous = _SAMPLES.get(cid)
    if previous is None or t - previous[0] > 60:
        await asyncio.sleep(0.5)
        first_t, first_cpu = t, cpu
        stats = await kubelet.docker(sample)
        t, cpu = _read_time(stats), _cpu_ns(stats)
    else:
        first_t, first_cpu = previous
    _SAMPLES[cid] = (t, cpu)
    window = max(t - first_t, 1e-3)
    return int(max(0, cpu - first_cpu) / window), _working_set(stats), window


async def _one(kubelet: Kubelet, worker: Any) -> dict[str, Any] | None:
    running = [
        (name, cid)
        for name, cid in worker.ids.items()
        if "running" in (worker.statuses.get(name, {}).get("state") or {})
    ]
    if not running:
        return None
    samples = await asyncio.gather(*(usage(kubelet, cid) for _, cid in running), return_exceptions=True)
    containers = []
    window = 0.0
    for (name, _), s in zip(running, samples, strict=True):
        if isinstance(s, BaseException):
            continue
        cpu, memory, window = s
        containers.append({"name": name, "usage": {"cpu": f"{cpu}n", "memory": f"{memory // 1024}Ki"}})
    if not containers:
        return None
    ns, name = worker.key
    return {
        "kind": "PodMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {
            "name": name,
            "namespace": ns,
            "creationTimestamp": _stamp(),
            "labels": dict(worker.pod["metadata"].get("labels") or {}),
        },
        "timestamp": _stamp(),
        "window": f"{window:.3f}s",
        "containers": containers,
    }


async def pod_metrics(
    kubelet: Kubelet, namespace: str | None, name: str | None, label_selector: str | None
) -> aiohttp.web.Response:
    workers = [
        w
        for (ns, n), w in list(kubelet.workers.items())
        if (namespace is None or ns == namespace)
        and (name is None or n == name)
        and label_selector_matches(label_selector, w.pod["metadata"].get("labels") or {})
    ]
    found = [m for m in await asyncio.gather(*(_one(kubelet, w) for w in workers)) if m is not None]
    if name is not None:
        if not found:
            return status_response(404, "NotFound", f'podmetrics.metrics.k8s.io "{name}" not found')
        return aiohttp.web.json_response(found[0])
    return aiohttp.web.json_response(
        {"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {}, "items": found}
    )
