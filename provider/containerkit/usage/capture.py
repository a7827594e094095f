"""Hook-in points the secure operators call: start sampling after the container starts, record before
cleanup. Every function here swallows its own failures (logged as warnings): usage capture never
changes a task's outcome.

Settings (env wins over ``[containerkit]`` in airflow.cfg):

* ``CONTAINERKIT_USAGE_CAPTURE`` / ``usage_capture``: ``true`` (default) or ``false``;
* ``CONTAINERKIT_USAGE_INTERVAL`` / ``usage_interval``: seconds between samples (default 1, bounded
  to 0.2 .. 60);
* ``CONTAINERKIT_USAGE_STORE`` / ``usage_store``: the durable sink (:mod:`containerkit.usage.store`).

Where a record goes: the task log (one summary line; a warning within 10 % of the memory limit), XCom
key :data:`XCOM_KEY` (the latest try, for downstream tasks), the store (every try) and, when Airflow
metrics are on, StatsD / OpenTelemetry gauges ``containerkit.usage.*`` tagged with dag_id and task_id.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from containerkit.usage.record import ALERT_RATIO, UsageRecord, bytes_quantity, format_bytes, format_cpu

XCOM_KEY = "containerkit_usage"
ENV_CAPTURE = "CONTAINERKIT_USAGE_CAPTURE"
ENV_INTERVAL = "CONTAINERKIT_USAGE_INTERVAL"
_FALSE = {"0", "false", "no", "off"}


def _setting(env: str, key: str, default: str) -> str:
    value = os.environ.get(env)
    if value is not None and value != "":
        return value
    try:
        from airflow.configuration import conf

        return str(conf.get("containerkit", key, fallback=default))
    except Exception:
        return default


def capture_enabled() -> bool:
    return _setting(ENV_CAPTURE, "usage_capture", "true").strip().lower() not in _FALSE


def capture_interval() -> float:
    from containerkit.usage.docker_sampler import bounded_interval

    return bounded_interval(_setting(ENV_INTERVAL, "usage_interval", "1"))


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _log(operator: Any) -> Any:
    return getattr(operator, "log", None)


def _warn(operator: Any, message: str, *args: Any) -> None:
    log = _log(operator)
    if log is not None:
        log.warning(message, *args)


@dataclass
class TaskIdentity:
    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    try_number: int


def task_identity(operator: Any) -> TaskIdentity:
    """Who this try is, from the running task instance (falls back to the operator outside a run)."""
    ti: Any = None
    try:
        from airflow.sdk import get_current_context

        ti = get_current_context().get("ti")
    except Exception:
        ti = None

    def pick(name: str, default: Any) -> Any:
        value = getattr(ti, name, None) if ti is not None else None
        return default if value is None else value

    map_index = pick("map_index", -1)
    try_number = pick("try_number", 1)
    return TaskIdentity(
        dag_id=str(pick("dag_id", getattr(operator, "dag_id", "") or "")),
        task_id=str(pick("task_id", getattr(operator, "task_id", ""))),
        run_id=str(pick("run_id", "") or "manual"),
        map_index=int(map_index) if isinstance(map_index, int) else -1,
        try_number=int(try_number) if isinstance(try_number, int) else 1,
    )


# ------------------------------------------------------------------------------ publishing

# Where a finished record goes; tests and platform teams may add sinks (e.g. a warehouse loader).
EXTRA_SINKS: list[Callable[[UsageRecord], None]] = []


def publish(operator: Any, record: UsageRecord) -> None:
    """Log, XCom, store and gauges; each channel fails on its own, with a warning."""
    log = _log(operator)
    if log is not None:
        log.info("containerkit usage: %s", record.summary())
        if record.near_memory_limit and not record.oom_killed:
            log.warning(
                "containerkit usage: %s.%s peaked at %s, within %d %% of its %s memory limit: the next "
                "larger input may be OOM-killed; raise resources (containerkit recommend --dag-id %s)",
                record.dag_id,
                record.task_id,
                format_bytes(record.peak_memory_bytes),
                round(100 * (1 - ALERT_RATIO)),
                format_bytes(record.memory_limit_bytes),
                record.dag_id,
            )
        for error in record.sampler_errors:
            log.warning("containerkit usage: sampler error: %s", error)
    try:
        from airflow.sdk import get_current_context

        ti = get_current_context().get("ti")
        if ti is not None:
            ti.xcom_push(key=XCOM_KEY, value=record.to_dict())
    except Exception as exc:
        _warn(operator, "containerkit usage: not pushed to XCom: %s", exc)
    try:
        from containerkit.usage.store import UsageStore

        store = UsageStore()
        where = store.write(record)
        if log is not None:
            log.info("containerkit usage: record stored at %s", where)
    except Exception as exc:
        _warn(operator, "containerkit usage: not stored (%s): %s", type(exc).__name__, exc)
    _gauges(operator, record)
    for sink in EXTRA_SINKS:
        try:
            sink(record)
        except Exception as exc:
            _warn(operator, "containerkit usage: sink %r failed: %s", sink, exc)


def _gauges(operator: Any, record: UsageRecord) -> None:
    values = {
        "peak_memory_bytes": record.peak_memory_bytes,
        "memory_limit_bytes": record.memory_limit_bytes,
        "cpu_seconds": record.cpu_seconds,
        "throttled_ratio": record.throttled_ratio,
        "duration_seconds": record.duration_seconds,
        "oom_killed": int(record.oom_killed),
    }
    try:
        from airflow.sdk.observability.stats import Stats

        tags = {"dag_id": record.dag_id, "task_id": record.task_id, "runtime": record.runtime}
        for name, value in values.items():
            if value is not None:
                Stats.gauge(f"containerkit.usage.{name}", value, tags=tags)
    except Exception as exc:
        _warn(operator, "containerkit usage: gauges not sent: %s", exc)


# ------------------------------------------------------------------------------ Docker


@dataclass
class DockerCapture:
    sampler: Any
    identity: TaskIdentity
    started_at: str
    began: float


def _docker_sampler(client: Any, container_id: str, interval: float) -> Any:
    from containerkit.usage.docker_sampler import DockerStatsSampler

    return DockerStatsSampler(client, container_id, interval=interval)


# The sampler factory per runtime: one place to swap it (tests use a sampler that fails on purpose).
SAMPLERS: dict[str, Callable[..., Any]] = {"docker": _docker_sampler}


def start_docker_usage(operator: Any, container_id: str) -> DockerCapture | None:
    """Start sampling ``container_id`` (just started by ``operator``); ``None`` when capture is off."""
    try:
        if not capture_enabled():
            return None
        sampler = SAMPLERS["docker"](operator.cli, container_id, capture_interval())
        sampler.start()
        return DockerCapture(sampler, task_identity(operator), _now(), time.monotonic())
    except Exception as exc:
        _warn(operator, "containerkit usage: sampling not started: %s", exc)
        return None


def _docker_times(state: Mapping[str, Any]) -> float | None:
    from containerkit.usage.docker_sampler import _read_time

    started, finished = _read_time(state.get("StartedAt")), _read_time(state.get("FinishedAt"))
    if started is None or finished is None or finished < started:
        return None
    return finished - started


def record_docker_usage(
    operator: Any, capture: DockerCapture | None, container_id: str
) -> UsageRecord | None:
    """Stop sampling, read the exit state, build and publish the record. Call before the container is
    removed (the OOM flag and exit code live in ``inspect``)."""
    if capture is None:
        return None
    try:
        usage = capture.sampler.stop()
        state: Mapping[str, Any] = {}
        host: Mapping[str, Any] = {}
        try:
            inspect = operator.cli.inspect_container(container_id)
            state, host = inspect.get("State") or {}, inspect.get("HostConfig") or {}
        except Exception as exc:  # removed by on_kill: the samples still count
            usage.note_error(exc)
        duration = _docker_times(state) if not state.get("Running") else None
        if duration is None:
            duration = time.monotonic() - capture.began
        record = UsageRecord(
            **capture.identity.__dict__,
            runtime="docker",
            started_at=capture.started_at,
            ended_at=_now(),
            duration_seconds=round(duration, 3),
            requests=_docker_requests(operator),
            limits=_docker_limits(host, usage.memory_limit_bytes),
            container=container_id[:12],
            peak_memory_bytes=usage.peak_memory_bytes,
            memory_limit_bytes=int(host.get("Memory") or 0) or usage.memory_limit_bytes,
            cpu_seconds=None if usage.cpu_ns is None else round(usage.cpu_ns / 1e9, 3),
            cpu_peak_cores=None if usage.cpu_peak_cores is None else round(usage.cpu_peak_cores, 3),
            throttled_seconds=None if usage.throttled_ns is None else round(usage.throttled_ns / 1e9, 3),
            throttled_periods=usage.throttled_periods,
            periods=usage.periods,
            peak_pids=usage.peak_pids,
            samples=usage.samples,
            interval_seconds=getattr(capture.sampler, "interval", None),
            oom_killed=bool(state.get("OOMKilled")),
            exit_code=None
            if state.get("ExitCode") is None or state.get("Running")
            else int(state["ExitCode"]),
            unavailable=None if usage.samples else "no stats reading while the container ran",
            sampler_errors=tuple(usage.errors),
        )
        publish(operator, record)
        return record
    except Exception as exc:
        _warn(operator, "containerkit usage: not recorded: %s", exc)
        return None


def _docker_requests(operator: Any) -> dict[str, str]:
    try:
        resources = operator.container_spec.resources
        return {"cpu": resources.cpu_request, "memory": resources.memory_request}
    except Exception:
        return {}


def _docker_limits(host: Mapping[str, Any], observed_memory: int | None) -> dict[str, str]:
    limits: dict[str, str] = {}
    if host.get("NanoCpus"):
        limits["cpu"] = format_cpu(int(host["NanoCpus"]) / 1e9)
    memory = int(host.get("Memory") or 0) or observed_memory
    if memory:
        limits["memory"] = bytes_quantity(memory)
    return limits


# ------------------------------------------------------------------------------ Kubernetes

DEFERRED = "deferrable mode: no worker runs while the pod runs, so nothing was sampled"
_POD_ATTR = "_containerkit_usage"


@dataclass
class PodCapture:
    sampler: Any
    identity: TaskIdentity
    started_at: str
    began: float


def _pod_sampler(api_client: Any, namespace: str, pod: str, container: str, interval: float) -> Any:
    from containerkit.usage.kubernetes_sampler import PodMetricsSampler

    return PodMetricsSampler(api_client, namespace, pod, container, interval=interval)


SAMPLERS["kubernetes"] = _pod_sampler


def start_pod_usage(operator: Any, pod: Any) -> None:
    """Start sampling ``pod``'s base container (it has just started); kept on the operator."""
    try:
        if not capture_enabled():
            return
        sampler = SAMPLERS["kubernetes"](
            operator.client.api_client,
            pod.metadata.namespace,
            pod.metadata.name,
            operator.base_container_name,
            capture_interval(),
        )
        sampler.start()
        setattr(operator, _POD_ATTR, PodCapture(sampler, task_identity(operator), _now(), time.monotonic()))
    except Exception as exc:
        _warn(operator, "containerkit usage: pod sampling not started: %s", exc)


def _base(items: Any, name: str) -> Any:
    return next((item for item in items or () if getattr(item, "name", None) == name), None)


def _k8s_quantities(values: Mapping[str, Any] | None) -> dict[str, str]:
    return {k: str(v) for k, v in (values or {}).items() if k in ("cpu", "memory")}


def record_pod_usage(operator: Any, remote_pod: Any) -> UsageRecord | None:
    """Stop sampling and record the try from the pod's final status. Call before the pod is deleted."""
    capture: PodCapture | None = getattr(operator, _POD_ATTR, None)
    try:
        setattr(operator, _POD_ATTR, None)
        if remote_pod is None or (capture is None and not capture_enabled()):
            return None
        from containerkit.usage.kubernetes_sampler import NO_SAMPLE, NOT_SERVED, PodUsage

        usage: PodUsage = capture.sampler.stop() if capture is not None else PodUsage()
        name = operator.base_container_name
        container = _base(getattr(remote_pod.spec, "containers", None), name)
        resources = getattr(container, "resources", None)
        requests = _k8s_quantities(getattr(resources, "requests", None))
        limits = _k8s_quantities(getattr(resources, "limits", None))
        status = _base(getattr(remote_pod.status, "container_statuses", None), name)
        terminated = getattr(getattr(status, "state", None), "terminated", None)
        last = getattr(getattr(status, "last_state", None), "terminated", None)
        oom = any(getattr(t, "reason", None) == "OOMKilled" for t in (terminated, last))
        duration: float | None = None
        if terminated is not None and terminated.started_at and terminated.finished_at:
            duration = (terminated.finished_at - terminated.started_at).total_seconds()
        if capture is None and terminated is None:
            return None  # the container never ran (e.g. the image could not be pulled): no usage
        if duration is None:
            duration = time.monotonic() - capture.began if capture is not None else 0.0
        if capture is None:
            unavailable: str | None = DEFERRED if operator.deferrable else NO_SAMPLE
        elif usage.served is False:
            unavailable = NOT_SERVED
        elif not usage.samples:
            unavailable = NO_SAMPLE
        else:
            unavailable = None
        memory_limit = None
        if "memory" in limits:
            from containerkit.spec.quantity import parse_quantity

            memory_limit = int(parse_quantity("limits.memory", limits["memory"], kind="bytes"))
        identity = capture.identity if capture is not None else task_identity(operator)
        started = capture.started_at if capture is not None else _now()
        record = UsageRecord(
            **identity.__dict__,
            runtime="kubernetes",
            started_at=started,
            ended_at=_now(),
            duration_seconds=round(duration, 3),
            requests=requests,
            limits=limits,
            container=f"{remote_pod.metadata.namespace}/{remote_pod.metadata.name}/{name}",
            peak_memory_bytes=usage.peak_memory_bytes,
            memory_limit_bytes=memory_limit,
            cpu_seconds=None if usage.cpu_seconds is None else round(usage.cpu_seconds, 3),
            cpu_peak_cores=None if usage.cpu_peak_cores is None else round(usage.cpu_peak_cores, 3),
            samples=usage.samples,
            interval_seconds=getattr(capture.sampler, "interval", None) if capture is not None else None,
            oom_killed=oom,
            exit_code=None if terminated is None else int(terminated.exit_code),
            restarts=None if status is None else int(status.restart_count or 0),
            unavailable=unavailable,
            sampler_errors=tuple(usage.errors),
        )
        publish(operator, record)
        return record
    except Exception as exc:
        _warn(operator, "containerkit usage: pod usage not recorded: %s", exc)
        return None
