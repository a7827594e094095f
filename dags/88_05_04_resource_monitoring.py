"""Resource monitoring: what each container task really used, its peak against its limit, and an alert.

**Problem.** A task that peaks at 95 % of its memory limit succeeds today and is OOM-killed by
tomorrow's slightly larger input; nobody notices until it fails, because nothing recorded how close
it came. CPU throttling is just as invisible: the task is "slow", not failing.

**Practice.**

* *CPU/memory usage* (``comfortable``, ``near_limit``): ``SecureDockerOperator`` tasks sample their
  container through the Docker stats API while it runs (a daemon thread, one reading per second, the
  cgroup's own peak counter for memory between readings) and log one line per try, e.g.
  ``containerkit usage: peak 119Mi of 128Mi limit (93 %), cpu 0.6 s of 2.4 s wall, throttled 0 %``.
  ``near_limit`` is sized on purpose so its working set lands within 10 % of its 128Mi limit: the
  capture itself logs a warning for it.
* *container metrics* (``usage_report``): each try's record (peak memory, limit, CPU seconds,
  throttled periods, peak pids, OOM flag, exit code, requests and limits) is in XCom
  ``containerkit_usage`` and in the durable usage store (``CONTAINERKIT_USAGE_STORE``; Airflow 3
  workers have no database access, and XCom keeps only the latest try). The task prints them as a
  table of peak against limit.
* *cAdvisor integration* (``export_prometheus``): the records as a Prometheus text exposition with
  cAdvisor's metric names (``container_memory_max_usage_bytes``, ``container_spec_memory_limit_bytes``,
  ``container_cpu_usage_seconds_total``, ``container_cpu_cfs_throttled_periods_total``) labelled by DAG
  and task, written for the node-exporter textfile collector, so task-level usage sits next to the
  cAdvisor series the cluster already scrapes (cAdvisor itself cannot tell which Airflow task a
  short-lived container was). Airflow's own metrics (StatsD / OpenTelemetry) also get the gauges
  ``containerkit.usage.*`` when ``[metrics]`` is enabled.
* *resource alerts* (``memory_alert``): every task within 10 % of its memory limit (or OOM-killed) is
  an alert; DAG param ``alert_mode`` chooses ``warn`` (log a warning, the run stays green) or ``fail``
  (the check fails). The check asserts that ``near_limit`` is caught and ``comfortable`` is not.

**Copying.** Keep the two worker tasks' pattern (any ``SecureDockerOperator`` or
``SecureKubernetesPodOperator`` records usage by default; ``CONTAINERKIT_USAGE_CAPTURE=false`` turns it
off), point ``CONTAINERKIT_USAGE_STORE`` at storage every worker can write (a shared path or an
``s3://`` / ``gs://`` URL), set ``alert_mode`` to ``fail`` where a near miss should page someone, and
set ``PROMETHEUS_TEXTFILE_DIR`` to your node-exporter textfile directory. ``CONTAINERKIT_PYTHON_IMAGE``
sets the image.

**Needs.** A Docker engine (``needs:docker``).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.docker import SecureDockerOperator
from airflow.sdk import Param, dag, task

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
DAG_ID = "88_05_04_resource_monitoring"
LABEL = {"containerkit.reference": DAG_ID}
ALERT_RATIO = 0.9  # within 10 % of the memory limit
TEXTFILE_DIR = os.environ.get("PROMETHEUS_TEXTFILE_DIR") or str(Path(tempfile.gettempdir()) / "node-exporter")
WATCHED = ("comfortable", "near_limit")

# Holds ``size`` MiB (pages touched, so they count), burns a little CPU, then waits a moment.
HOLD = """
import sys, time
size = int(sys.argv[1])
block = bytearray(size * 1024 * 1024)
for i in range(0, len(block), 4096):
    block[i] = 1
deadline = time.process_time() + 0.3
while time.process_time() < deadline:
    pass
time.sleep(1.5)
print(f"held {size} MiB")
"""


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "core", "intermediate", "success", "needs:docker"],
    params={
        "alert_mode": Param("warn", enum=["warn", "fail"], description="warn: log; fail: fail the check."),
    },
    doc_md=__doc__,
)
def resource_monitoring() -> None:
    comfortable = SecureDockerOperator(
        task_id="comfortable",
        image=PYTHON_IMAGE,
        command=["python", "-c", HOLD, "32"],
        resources="xs",
        labels=LABEL,
    )
    # 116 MiB of payload + ~3 MiB interpreter: within 10 % of the 128Mi xs limit, not over it.
    near_limit = SecureDockerOperator(
        task_id="near_limit",
        image=PYTHON_IMAGE,
        command=["python", "-c", HOLD, "116"],
        resources="xs",
        labels=LABEL,
    )

    @task
    def usage_report(**context: Any) -> list[dict[str, Any]]:
        """Peak against limit per task, from the usage records (XCom ``containerkit_usage``)."""
        from containerkit.usage.record import UsageRecord, format_bytes

        records = []
        for task_id in WATCHED:
            data = context["ti"].xcom_pull(task_ids=task_id, key="containerkit_usage")
            if not data:
                raise AssertionError(f"{task_id} recorded no usage (is CONTAINERKIT_USAGE_CAPTURE off?)")
            records.append(UsageRecord.from_dict(data))
        print(
            f"{'task':12s} {'peak':>8s} {'limit':>8s} {'use':>5s} {'cpu s':>6s} {'wall s':>6s} {'thr %':>5s}"
        )
        for r in records:
            ratio = r.memory_ratio or 0.0
            throttled = r.throttled_ratio or 0.0
            print(
                f"{r.task_id:12s} {format_bytes(r.peak_memory_bytes):>8s} "
                f"{format_bytes(r.memory_limit_bytes):>8s} "
                f"{ratio:5.0%} {r.cpu_seconds or 0:6.2f} {r.duration_seconds:6.2f} {throttled:5.0%}"
            )
            if not r.samples or r.peak_memory_bytes is None or r.memory_limit_bytes != 128 * 1024 * 1024:
                raise AssertionError(f"{r.task_id}: incomplete record {r}")
        return [r.to_dict() for r in records]

    @task
    def export_prometheus(records: list[dict[str, Any]]) -> str:
        """Write the records in Prometheus text format with cAdvisor's metric names."""
        from containerkit.usage.record import UsageRecord

        series = {
            "container_memory_max_usage_bytes": (
                "gauge",
                "Peak memory of the task's container.",
                "peak_memory_bytes",
            ),
            "container_spec_memory_limit_bytes": (
                "gauge",
                "Memory limit the engine enforced.",
                "memory_limit_bytes",
            ),
            "container_cpu_usage_seconds_total": (
                "counter",
                "CPU seconds the container used.",
                "cpu_seconds",
            ),
            "container_cpu_cfs_throttled_periods_total": (
                "counter",
                "CFS periods throttled.",
                "throttled_periods",
            ),
        }
        lines: list[str] = []
        parsed = [UsageRecord.from_dict(r) for r in records]
        for metric, (kind, help_text, attr) in series.items():
            lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} {kind}"]
            for r in parsed:
                value = getattr(r, attr)
                if value is None:
                    continue
                labels = (
                    f'dag_id="{r.dag_id}",task_id="{r.task_id}",'
                    f'try_number="{r.try_number}",runtime="{r.runtime}"'
                )
                lines.append(f"{metric}{{{labels}}} {value}")
        text = "\n".join(lines) + "\n"
        sample = re.compile(r'^[a-z_]+\{([a-z_]+="[^"]*",?)+\} [0-9.e+-]+$')
        bad = [line for line in text.splitlines() if not line.startswith("#") and not sample.match(line)]
        if bad:
            raise AssertionError(f"not Prometheus text format: {bad}")
        folder = Path(TEXTFILE_DIR)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{DAG_ID}.prom"
        tmp = target.with_suffix(".prom.tmp")
        tmp.write_text(text)
        tmp.replace(target)  # the textfile collector must never read a half-written file
        print(text)
        return str(target)

    @task
    def memory_alert(records: list[dict[str, Any]], **context: Any) -> list[str]:
        """Alert on tasks within 10 % of their memory limit: a warning or a failed check (alert_mode)."""
        from airflow.sdk.exceptions import AirflowFailException

        from containerkit.usage.record import UsageRecord, format_bytes

        mode = context["params"]["alert_mode"]
        alerts = []
        for r in (UsageRecord.from_dict(d) for d in records):
            ratio = r.memory_ratio or 0.0
            if r.oom_killed or ratio >= ALERT_RATIO:
                alerts.append(r.task_id)
                message = (
                    f"ALERT {r.dag_id}.{r.task_id} try {r.try_number}: "
                    f"peak {format_bytes(r.peak_memory_bytes)} "
                    f"is {ratio:.0%} of its {format_bytes(r.memory_limit_bytes)} limit"
                    + (" (OOMKilled)" if r.oom_killed else "")
                    + ": raise its memory (containerkit recommend --dag-id "
                    + r.dag_id
                    + ")"
                )
                print(message)
        if alerts != ["near_limit"]:
            raise AssertionError(f"expected exactly near_limit to alert, got {alerts}")
        if mode == "fail":
            raise AirflowFailException(f"tasks within 10 % of their memory limit: {', '.join(alerts)}")
        return alerts

    records = usage_report()
    [comfortable, near_limit] >> records
    export_prometheus(records)
    memory_alert(records)


resource_monitoring()
