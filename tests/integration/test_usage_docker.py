"""Usage capture of SecureDockerOperator on the real Docker engine, run through Airflow's ``dag.test()``.

The truth each record is checked against comes from inside the container: the kernel's own peak RSS of
the process (``VmHWM``) and its CPU time (``time.process_time``). Containers carry
``containerkit.test=usage``; the module fixture fails if one is left behind.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import docker
import pytest

from containerkit.usage import capture
from containerkit.usage.docker_sampler import DockerStatsSampler
from containerkit.usage.record import MI, UsageRecord
from containerkit.usage.store import UsageStore

LABELS = {"containerkit.test": "usage"}

# Touch ALLOC_MIB of memory, burn BURN_S of CPU in one thread, report the kernel's view, then idle
# long enough for the engine's 1 s stats tick to see the final counters (the engine drops them at exit).
WORKLOAD = """
import json, sys, time
alloc_mib, burn_s, idle_s = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
block = bytearray(alloc_mib * 1024 * 1024)
for i in range(0, len(block), 4096):
    block[i] = 1
x = 0
while time.process_time() < burn_s:
    x += 1
status = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
print(json.dumps({"hwm_kib": int(status["VmHWM"].split()[0]), "cpu_s": time.process_time()}), flush=True)
time.sleep(idle_s)
"""


@pytest.fixture(scope="module", autouse=True)
def no_leftovers(docker_client: docker.DockerClient) -> Iterator[None]:
    yield
    left = docker_client.containers.list(all=True, filters={"label": "containerkit.test=usage"})
    for container in left:
        container.remove(force=True, v=True)
    assert not left, f"containers left behind: {[c.name for c in left]}"


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> UsageStore:
    monkeypatch.setenv("CONTAINERKIT_USAGE_STORE", str(tmp_path / "usage"))
    monkeypatch.setenv("CONTAINERKIT_USAGE_CAPTURE", "true")
    return UsageStore(tmp_path / "usage")


@pytest.fixture
def records(monkeypatch: pytest.MonkeyPatch) -> list[UsageRecord]:
    """Every record published in this test, in order (an extra sink next to log, XCom and store)."""
    seen: list[UsageRecord] = []
    monkeypatch.setattr(capture, "EXTRA_SINKS", [seen.append])
    return seen


def build_dag(dag_id: str, *, retries: int = 0, **task_kwargs: Any) -> Any:
    from airflow.sdk import DAG

    from containerkit.operators.docker import SecureDockerOperator

    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        SecureDockerOperator(
            task_id="run", labels=LABELS, retries=retries, retry_delay=timedelta(0), **task_kwargs
        )
    return dag


def xcom(dag_run: Any, key: str) -> Any:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = session.scalars(
            XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids="run", key=key)
        ).first()
        return XComModel.deserialize_value(row) if row else None


def test_known_memory_and_cpu_are_recorded_within_10_and_15_percent(
    python_image: str, run_dag: Callable[..., Any], store: UsageStore, records: list[UsageRecord]
) -> None:
    dag = build_dag(
        "ck_usage_known",
        image=python_image,
        command=["python", "-c", WORKLOAD, "200", "3", "2.5"],
        resources={"preset": "m", "memory": "512Mi"},
    )
    dag_run = run_dag(dag)
    assert dag_run.state == "success"
    truth = xcom(dag_run, "return_value")
    truth = truth if isinstance(truth, dict) else json.loads(truth)
    [record] = records
    peak_truth = truth["hwm_kib"] * 1024
    assert peak_truth >= 200 * MI
    assert record.peak_memory_bytes is not None and record.cpu_seconds is not None
    assert abs(record.peak_memory_bytes - peak_truth) / peak_truth <= 0.10, (record, truth)
    assert abs(record.cpu_seconds - truth["cpu_s"]) / truth["cpu_s"] <= 0.15, (record, truth)
    assert record.memory_limit_bytes == 512 * MI
    assert (record.exit_code, record.oom_killed, record.runtime) == (0, False, "docker")
    assert record.limits == {"cpu": "1", "memory": "512Mi"}
    assert record.requests == {"cpu": "500m", "memory": "512Mi"}
    assert record.samples >= 3 and record.peak_pids is not None and record.periods
    assert record.duration_seconds >= 5.5
    assert (record.dag_id, record.task_id, record.map_index, record.try_number) == (
        "ck_usage_known",
        "run",
        -1,
        1,
    )
    # The same record in XCom (latest try) and in the durable store (every try).
    assert UsageRecord.from_dict(xcom(dag_run, capture.XCOM_KEY)) == record
    assert store.read("ck_usage_known") == [record]
    summary = record.summary()
    assert summary.startswith(f"peak {round(record.peak_memory_bytes / MI)}Mi of 512Mi limit (")
    assert "cpu " in summary and "s wall, throttled" in summary


def test_cpu_burnt_until_exit_loses_at_most_one_engine_tick(
    python_image: str, run_dag: Callable[..., Any], store: UsageStore, records: list[UsageRecord]
) -> None:
    """The documented limit: counters vanish at exit, so the last engine tick (~1 s, longer on a loaded
    engine) of a busy run is not seen; what is recorded is never more than was used."""
    dag = build_dag(
        "ck_usage_tail",
        image=python_image,
        command=["python", "-c", WORKLOAD, "16", "3", "0"],
        resources={"preset": "m"},
    )
    dag_run = run_dag(dag)
    assert dag_run.state == "success"
    truth = xcom(dag_run, "return_value")
    truth = truth if isinstance(truth, dict) else json.loads(truth)
    [record] = records
    assert record.cpu_seconds is not None
    assert truth["cpu_s"] - 2.0 <= record.cpu_seconds <= truth["cpu_s"] * 1.05, (record, truth)


def test_oom_killed_try_keeps_its_record_after_the_retry_succeeds(
    python_image: str, run_dag: Callable[..., Any], store: UsageStore, records: list[UsageRecord]
) -> None:
    # Try 1 allocates 200 MiB under a 64Mi limit (OOM-killed); try 2 allocates 8 MiB and succeeds.
    code = (
        "import sys, time; b = bytearray(int(sys.argv[1]) << 20); "
        "b[::4096] = b'x' * len(b[::4096]); time.sleep(1.2)"
    )
    dag = build_dag(
        "ck_usage_oom_retry",
        retries=1,
        image=python_image,
        command=["python", "-c", code, "{{ 200 if ti.try_number == 1 else 8 }}"],
        resources={"preset": "xs", "memory": "64Mi"},
    )
    dag_run = run_dag(dag)
    assert dag_run.state == "success"
    stored = store.read("ck_usage_oom_retry", "run")
    assert [(r.try_number, r.oom_killed, r.exit_code) for r in stored] == [(1, True, 137), (2, False, 0)]
    oom = stored[0]
    assert oom.memory_limit_bytes == 64 * MI and oom.limits["memory"] == "64Mi"
    assert oom.summary().endswith("OOMKilled at 64Mi")
    assert stored == records
    # XCom holds only the latest try: the store is what keeps the OOM-killed one.
    assert UsageRecord.from_dict(xcom(dag_run, capture.XCOM_KEY)).try_number == 2


class _BrokenSampler(DockerStatsSampler):
    """A sampler whose every reading fails (the engine's stats endpoint erroring)."""

    def sample(self) -> dict[str, Any]:
        raise RuntimeError("stats endpoint broke")


def test_sampler_and_store_failures_leave_the_task_result_unchanged(
    python_image: str,
    run_dag: Callable[..., Any],
    records: list[UsageRecord],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the store directory should be")
    monkeypatch.setenv("CONTAINERKIT_USAGE_STORE", str(blocker))
    monkeypatch.setitem(
        capture.SAMPLERS, "docker", lambda client, cid, interval: _BrokenSampler(client, cid, interval=0.2)
    )
    code = "import time; time.sleep(1); print('result-42')"
    dag = build_dag("ck_usage_broken", image=python_image, command=["python", "-c", code])
    dag_run = run_dag(dag)
    assert dag_run.state == "success"
    assert xcom(dag_run, "return_value") == "result-42"
    [record] = records
    assert record.samples == 0 and record.peak_memory_bytes is None
    assert record.unavailable == "no stats reading while the container ran"
    assert record.sampler_errors and record.sampler_errors[0] == "RuntimeError: stats endpoint broke"
    assert record.exit_code == 0 and not record.oom_killed
    assert blocker.read_text() == "a file where the store directory should be"


def test_capture_off_records_nothing(
    python_image: str,
    run_dag: Callable[..., Any],
    store: UsageStore,
    records: list[UsageRecord],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONTAINERKIT_USAGE_CAPTURE", "false")
    dag = build_dag("ck_usage_off", image=python_image, command=["python", "-c", "print('ok')"])
    dag_run = run_dag(dag)
    assert dag_run.state == "success"
    assert records == [] and store.read() == []
    assert xcom(dag_run, capture.XCOM_KEY) is None


def test_taskflow_secure_docker_records_usage_too(
    python_image: str, run_dag: Callable[..., Any], store: UsageStore, records: list[UsageRecord]
) -> None:
    from airflow.sdk import DAG, task

    with DAG("ck_usage_taskflow", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:

        @task.secure_docker(image=python_image, labels=LABELS, resources="xs")
        def crunch() -> int:
            block = bytearray(48 * 1024 * 1024)
            block[::4096] = b"x" * len(block[::4096])
            import time

            time.sleep(1.2)
            return len(block)

        crunch()

    dag_run = run_dag(dag)
    assert dag_run.state == "success"
    [record] = records
    assert (record.task_id, record.exit_code, record.limits["memory"]) == ("crunch", 0, "128Mi")
    assert record.peak_memory_bytes is not None and record.peak_memory_bytes >= 48 * MI
    assert store.read("ck_usage_taskflow") == [record]
