"""Usage capture of SecureKubernetesPodOperator on the local Docker-backed cluster (containerkit.testing),
whose PodMetrics come from the engine's stats, and on an API that serves no metrics at all.

PodMetrics carry a working set and a CPU rate, no peak or cumulative counter: the workload waits a
moment after start (so sampling has begun) and holds its memory for a few samples.
"""

from __future__ import annotations

import datetime
import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("containerkit.testing.cluster", reason="containerkit.testing (the local cluster) missing")

from containerkit.usage import capture
from containerkit.usage.kubernetes_sampler import NOT_SERVED, PodMetricsSampler
from containerkit.usage.record import MI, UsageRecord
from containerkit.usage.store import UsageStore

WORKLOAD = """
import json, pathlib, sys, time
alloc_mib, burn_s = int(sys.argv[1]), float(sys.argv[2])
time.sleep(2)
block = bytearray(alloc_mib * 1024 * 1024)
for i in range(0, len(block), 4096):
    block[i] = 1
start = time.process_time()
x = 0
while time.process_time() - start < burn_s:
    x += 1
status = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
truth = {"hwm_kib": int(status["VmHWM"].split()[0]), "cpu_s": time.process_time() - start}
time.sleep(3)
pathlib.Path("/airflow/xcom/return.json").write_text(json.dumps(truth))
"""


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> UsageStore:
    monkeypatch.setenv("CONTAINERKIT_USAGE_STORE", str(tmp_path / "usage"))
    monkeypatch.setenv("CONTAINERKIT_USAGE_CAPTURE", "true")
    return UsageStore(tmp_path / "usage")


@pytest.fixture
def records(monkeypatch: pytest.MonkeyPatch) -> list[UsageRecord]:
    seen: list[UsageRecord] = []
    monkeypatch.setattr(capture, "EXTRA_SINKS", [seen.append])
    return seen


def make_dag(dag_id: str, namespace: str, image: str, args: list[str], **op_kwargs: Any) -> Any:
    from airflow.sdk import DAG

    from containerkit.operators.kubernetes import SecureKubernetesPodOperator

    with DAG(dag_id, schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False) as dag:
        SecureKubernetesPodOperator(
            task_id="run",
            namespace=namespace,
            image=image,
            cmds=["python", "-c", WORKLOAD],
            arguments=args,
            startup_check_interval_seconds=1,
            base_container_status_polling_interval=0.2,
            retry_delay=datetime.timedelta(0),
            **op_kwargs,
        )
    return dag


def test_known_memory_and_cpu_from_pod_metrics_within_10_and_15_percent(
    kubernetes_default: Any,
    k8s_namespace: str,
    python_image: str,
    run_dag: Callable[..., Any],
    store: UsageStore,
    records: list[UsageRecord],
) -> None:
    dag = make_dag(
        "ck_usage_k8s_known",
        k8s_namespace,
        python_image,
        ["200", "6"],  # 6 s of cpu: the ~0.5 s before the first and after the last sample is < 15 %
        resources={"preset": "m", "memory": "512Mi"},
        do_xcom_push=True,
    )
    dag_run = run_dag(dag)
    ti = next(t for t in dag_run.get_task_instances() if t.task_id == "run")
    assert ti.state == "success"
    truth = ti.xcom_pull(task_ids="run")
    [record] = records
    assert record.runtime == "kubernetes" and record.unavailable is None, record
    peak_truth = truth["hwm_kib"] * 1024
    assert record.peak_memory_bytes is not None and record.cpu_seconds is not None
    assert abs(record.peak_memory_bytes - peak_truth) / peak_truth <= 0.10, (record, truth)
    assert abs(record.cpu_seconds - truth["cpu_s"]) / truth["cpu_s"] <= 0.15, (record, truth)
    assert record.memory_limit_bytes == 512 * MI
    assert record.requests == {"cpu": "500m", "memory": "512Mi"}
    assert record.limits == {"cpu": "1", "memory": "512Mi"}
    assert (record.exit_code, record.oom_killed, record.restarts) == (0, False, 0)
    assert record.container and record.container.startswith(f"{k8s_namespace}/")
    assert store.read("ck_usage_k8s_known") == [record]
    assert ti.xcom_pull(task_ids="run", key=capture.XCOM_KEY) == record.to_dict()


def test_oom_killed_pod_is_recorded_with_its_limit_and_kept_after_the_retry(
    kubernetes_default: Any,
    k8s_namespace: str,
    python_image: str,
    run_dag: Callable[..., Any],
    store: UsageStore,
    records: list[UsageRecord],
) -> None:
    dag = make_dag(
        "ck_usage_k8s_oom",
        k8s_namespace,
        python_image,
        ["{{ 200 if ti.try_number == 1 else 8 }}", "0.1"],
        resources={"preset": "xs", "memory": "64Mi"},
        retries=1,
        do_xcom_push=True,
    )
    dag_run = run_dag(dag)
    assert dag_run.state == "success"
    stored = store.read("ck_usage_k8s_oom", "run")
    assert [(r.try_number, r.oom_killed, r.exit_code) for r in stored] == [(1, True, 137), (2, False, 0)]
    assert stored[0].memory_limit_bytes == 64 * MI and stored[0].limits["memory"] == "64Mi"
    assert stored == records


class _NoMetricsAPI(http.server.BaseHTTPRequestHandler):
    """An API server without metrics.k8s.io: every path is 404, as a cluster without metrics-server."""

    def do_GET(self) -> None:
        body = b'{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}'
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def no_metrics_api() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NoMetricsAPI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_without_a_metrics_api_the_record_says_unavailable(no_metrics_api: str) -> None:
    from kubernetes.client import ApiClient, Configuration

    configuration = Configuration(host=no_metrics_api)
    configuration.retries = 0
    sampler = PodMetricsSampler(
        ApiClient(configuration), "airflow-tasks", "etl-1", "base", interval=0.2
    ).start()
    sampler._thread.join(10)  # discovery answers at once: the thread ends without sampling
    usage = sampler.stop()
    assert usage.served is False and usage.samples == 0 and usage.peak_memory_bytes is None
    assert usage.errors == []


def test_pod_record_without_metrics_is_unavailable_not_guessed(
    no_metrics_api: str, store: UsageStore
) -> None:
    from kubernetes.client import ApiClient, Configuration, V1Pod

    configuration = Configuration(host=no_metrics_api)
    configuration.retries = 0
    from kubernetes.client import (
        V1Container,
        V1ContainerState,
        V1ContainerStateTerminated,
        V1ContainerStatus,
        V1ObjectMeta,
        V1PodSpec,
        V1PodStatus,
        V1ResourceRequirements,
    )

    started = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
    terminated = V1ContainerStateTerminated(
        exit_code=0,
        reason="Completed",
        started_at=started,
        finished_at=started + datetime.timedelta(seconds=4),
    )
    pod = V1Pod(
        metadata=V1ObjectMeta(name="etl-1", namespace="airflow-tasks"),
        spec=V1PodSpec(
            containers=[
                V1Container(
                    name="base",
                    image="x",
                    resources=V1ResourceRequirements(
                        requests={"cpu": "250m", "memory": "512Mi"}, limits={"cpu": "500m", "memory": "512Mi"}
                    ),
                )
            ]
        ),
        status=V1PodStatus(
            container_statuses=[
                V1ContainerStatus(
                    name="base",
                    image="x",
                    image_id="",
                    ready=False,
                    restart_count=0,
                    state=V1ContainerState(terminated=terminated),
                )
            ]
        ),
    )
    seen: list[UsageRecord] = []

    class Operator:
        """The operator attributes the capture reads (a real API client, no Airflow run)."""

        base_container_name = "base"
        deferrable = False
        task_id = "load"
        dag_id = "etl"
        client = type("Client", (), {"api_client": ApiClient(configuration)})()
        log = None

    operator = Operator()
    original = list(capture.EXTRA_SINKS)
    capture.EXTRA_SINKS[:] = [seen.append]
    try:
        capture.start_pod_usage(operator, pod)
        operator._containerkit_usage.sampler._thread.join(10)
        record = capture.record_pod_usage(operator, pod)
    finally:
        capture.EXTRA_SINKS[:] = original
    assert record is not None and seen == [record]
    assert record.unavailable == NOT_SERVED
    assert (record.peak_memory_bytes, record.cpu_seconds, record.samples) == (None, None, 0)
    assert (record.exit_code, record.oom_killed, record.restarts, record.duration_seconds) == (
        0,
        False,
        0,
        4.0,
    )
    assert record.memory_limit_bytes == 512 * MI
    assert record.summary() == f"usage unavailable: {NOT_SERVED}"
