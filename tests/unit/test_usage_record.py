"""The usage record, the Docker stats folding and the durable store (no engine needed)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from containerkit.usage.docker_sampler import DockerUsage, bounded_interval
from containerkit.usage.record import MI, UsageRecord, bytes_quantity, format_bytes, format_cpu
from containerkit.usage.store import UsageStore, read_history, store_location, write_lines


def record(**changes: Any) -> UsageRecord:
    base: dict[str, Any] = dict(
        dag_id="etl",
        task_id="load",
        run_id="manual__2026-12-01T00:00:00+00:00",
        map_index=-1,
        try_number=1,
        runtime="docker",
        started_at="2026-12-01T00:00:00+00:00",
        ended_at="2026-12-01T00:00:02+00:00",
        duration_seconds=2.0,
        requests={"cpu": "250m", "memory": "512Mi"},
        limits={"cpu": "500m", "memory": "512Mi"},
        peak_memory_bytes=412 * MI,
        memory_limit_bytes=512 * MI,
        cpu_seconds=1.8,
        throttled_periods=0,
        periods=20,
        samples=2,
        exit_code=0,
    )
    base.update(changes)
    return UsageRecord(**base)


def test_summary_is_the_one_line_the_issue_asks_for() -> None:
    assert record().summary() == "peak 412Mi of 512Mi limit (80 %), cpu 1.8 s of 2.0 s wall, throttled 0 %"
    oom = record(peak_memory_bytes=64 * MI, memory_limit_bytes=64 * MI, oom_killed=True, exit_code=137)
    assert oom.summary().endswith(", OOMKilled at 64Mi")
    unavailable = record(peak_memory_bytes=None, cpu_seconds=None, unavailable="metrics.k8s.io not served")
    assert unavailable.summary() == "usage unavailable: metrics.k8s.io not served"


def test_near_limit_is_within_10_percent() -> None:
    assert not record(peak_memory_bytes=460 * MI).near_memory_limit  # 89.8 %
    assert record(peak_memory_bytes=461 * MI).near_memory_limit  # 90.0 %
    assert record(oom_killed=True).near_memory_limit


def test_quantities() -> None:
    assert [format_bytes(v) for v in (412 * MI, 1536 * MI, 900 * 1024, None)] == [
        "412Mi",
        "1.5Gi",
        "900Ki",
        "?",
    ]
    assert [bytes_quantity(v) for v in (2048 * MI, 1229 * MI, 1025)] == ["2Gi", "1229Mi", "1025"]
    assert [format_cpu(v) for v in (0.2875, 1.0, 1.5, 0.001)] == ["288m", "1", "1.5", "1m"]


def test_record_round_trips_and_ignores_unknown_keys() -> None:
    data = record().to_dict()
    assert UsageRecord.from_dict({**data, "from_a_newer_writer": 1}) == record()
    del data["task_id"]
    with pytest.raises(ValueError, match="missing task_id"):
        UsageRecord.from_dict(data)


# Two readings as dockerd 20.10 (cgroup v1) returned them for a container burning one core.
READING: dict[str, Any] = {
    "read": "2026-12-01T21:25:28.055777782Z",
    "pids_stats": {"current": 2},
    "cpu_stats": {
        "cpu_usage": {"total_usage": 1009557829},
        "throttling_data": {"periods": 5, "throttled_periods": 1, "throttled_time": 29350180},
    },
    "memory_stats": {"usage": 35639296, "max_usage": 35651584, "limit": 134217728},
}


def test_docker_readings_fold_into_peaks_and_last_counters() -> None:
    later = copy.deepcopy(READING)
    later["read"] = "2026-12-01T21:25:29.063021712Z"
    later["cpu_stats"]["cpu_usage"]["total_usage"] = 2003500599
    later["memory_stats"].update(usage=30000000, max_usage=40000000)
    later["pids_stats"]["current"] = 1
    usage = DockerUsage()
    assert usage.add(READING) and usage.add(later)
    assert usage.samples == 2 and usage.peak_counter
    assert usage.peak_memory_bytes == 40000000  # the cgroup's own peak, above both sampled values
    assert usage.memory_limit_bytes == 134217728
    assert usage.cpu_ns == 2003500599
    assert usage.cpu_peak_cores == pytest.approx(0.994 / 1.0072, rel=1e-3)
    assert (usage.throttled_periods, usage.periods, usage.peak_pids) == (1, 5, 2)


def test_a_reading_of_an_exited_container_is_not_a_sample() -> None:
    usage = DockerUsage()
    gone = {
        "read": "0001-01-01T00:00:00Z",
        "memory_stats": {},
        "cpu_stats": {"cpu_usage": {"total_usage": 0}},
    }
    assert not usage.add(gone)
    assert usage.samples == 0 and usage.peak_memory_bytes is None


def test_interval_is_bounded() -> None:
    assert [bounded_interval(v) for v in (0.01, 5, 3600, "x", None, float("nan"))] == [
        0.2,
        5.0,
        60.0,
        1.0,
        1.0,
        1.0,
    ]


def test_store_keeps_every_try_in_its_own_file(tmp_path: Path) -> None:
    store = UsageStore(tmp_path)
    first = record(oom_killed=True, exit_code=137)
    second = record(try_number=2, started_at="2026-12-01T00:01:00+00:00")
    where = store.write(first)
    store.write(second)
    assert where == str(tmp_path / "etl" / "load" / "manual__2026-12-01T00%3A00%3A00%2B00%3A00.-1.1.json")
    assert store.read() == [first, second] == store.read("etl", "load")
    assert store.read("other") == [] and UsageStore(tmp_path / "missing").read() == []
    assert UsageStore(f"file://{tmp_path}").read() == [first, second]
    exported = tmp_path / "history.jsonl"
    write_lines([second], exported)
    assert read_history([tmp_path, exported]) == [first, second]  # de-duplicated by try


def test_store_location_env_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CONTAINERKIT_USAGE_STORE", "s3://bucket/usage")
    assert store_location() == "s3://bucket/usage"
    monkeypatch.delenv("CONTAINERKIT_USAGE_STORE")
    monkeypatch.setenv("AIRFLOW__CONTAINERKIT__USAGE_STORE", str(tmp_path / "cfg"))
    assert store_location() == str(tmp_path / "cfg")


def test_pod_metrics_fold_into_peak_working_set_and_cpu_seconds() -> None:
    from containerkit.usage.kubernetes_sampler import PodUsage

    def metrics(stamp: str, window: str, cpu: str, memory: str) -> dict[str, Any]:
        return {
            "timestamp": stamp,
            "window": window,
            "containers": [
                {"name": "airflow-xcom-sidecar", "usage": {"cpu": "1m", "memory": "900Mi"}},
                {"name": "base", "usage": {"cpu": cpu, "memory": memory}},
            ],
        }

    usage = PodUsage()
    assert usage.add(metrics("t1", "0.2s", "500000000n", "102400Ki"), "base", None)
    assert usage.add(metrics("t2", "1.5s", "1", "204800Ki"), "base", 1.0)
    # metrics-server answers reads between two scrapes with the same sample: counted once
    assert not usage.add(metrics("t2", "1.5s", "1", "204800Ki"), "base", 1.0)
    assert usage.add(metrics("t3", "1m30s", "250m", "150Mi"), "base", 1.0)
    assert not usage.add({"containers": []}, "base", 1.0)
    assert usage.samples == 3
    assert usage.peak_memory_bytes == 200 * MI  # the sidecar's 900Mi is not the task's
    assert usage.cpu_peak_cores == 1.0
    assert usage.cpu_seconds == pytest.approx(0.5 * 0.2 + 1 * 1.5 + 0.25 * 90)
