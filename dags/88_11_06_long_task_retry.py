"""A long task that survives losing its worker: idempotent work plus retries (containerkit 88_11_06).

When a Celery worker dies mid-task (OOM-killed node, ``docker kill``, a redeploy without a warm
shutdown), the task stops heartbeating; after ``[scheduler] task_instance_heartbeat_timeout`` the
scheduler fails that try and, because the task has ``retries``, queues the next try on whichever worker
is alive. The task is written to be safely re-run from the start (idempotent): that, plus retries, is
what makes a worker loss a delay instead of a failed run.

``duration_seconds`` (DAG param, default short so the embedded test run stays quick) sets how long the
task works; the compose e2e test triggers it with a longer duration and kills the worker midway.

**Needs.** Nothing beyond Airflow for the embedded run; the worker-loss behaviour it exists for needs a
scheduler and more than one Celery worker (the compose stack), with ``retries`` left on.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, get_current_context, task


@dag(
    dag_id="88_11_06_long_task_retry",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "containerkit"],
    params={
        "duration_seconds": Param(3, type="integer", minimum=0, maximum=3600, description="Work time."),
    },
    default_args={"retries": 2, "retry_delay": timedelta(seconds=5)},
    doc_md=__doc__,
)
def long_task_retry() -> None:
    @task(execution_timeout=timedelta(hours=1))
    def long_running() -> dict[str, int]:
        """Work for ``duration_seconds`` in one-second steps; report which try finished."""
        context = get_current_context()
        duration = int(context["params"]["duration_seconds"])
        try_number = int(context["ti"].try_number)
        print(f"try {try_number}: working for {duration}s")
        for second in range(1, duration + 1):
            time.sleep(1)
            if second % 5 == 0 or second == duration:
                print(f"try {try_number}: {second}/{duration}s")
        return {"try_number": try_number, "duration_seconds": duration}

    long_running()


long_task_retry()
