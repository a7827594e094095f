"""A Docker task that is hardened and sized without saying so.

``SecureDockerOperator`` takes the stock ``DockerOperator`` arguments; what it adds comes from the
spec defaults (``containerkit.spec``): the ``restricted`` profile (uid 50000:0, read-only root
filesystem with a tmpfs ``/tmp``, ``cap_drop=ALL``, ``no-new-privileges``, an init process) and the
``xs`` resource preset here (hard 128Mi memory without swap, 250m CPU, a pids limit). Policy checks
the final container settings when the DAG is parsed. A failure raises ``ContainerTaskFailed`` naming
the cause (OOMKilled at 128Mi, read-only filesystem, exit code and last log lines); the container is
removed afterwards in every case.

``measure`` prints what the container sees of itself as its last line (the XCom); ``check`` fails the
run if any of the defaults did not reach the container.

Copying: set ``CONTAINERKIT_PYTHON_IMAGE`` (or edit ``PYTHON_IMAGE``) to your pinned task image; the
resource preset and security profile are the two knobs to change. Needs: a Docker engine the worker
can reach (``needs:docker``).
"""

from __future__ import annotations

import json
import os
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.docker import SecureDockerOperator
from airflow.sdk import dag, task

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")

# Runs in the container: report uid, capabilities, writable paths and cgroup limits as one JSON line.
SELF_REPORT = """
import json, os
status = dict(line.split(":\\t", 1) for line in open("/proc/self/status") if ":\\t" in line)
def writable(path):
    try:
        open(path, "w").close()
        return True
    except OSError:
        return False
def read(path):
    try:
        return open(path).read().strip()
    except OSError:
        return None
print(json.dumps({
    "uid": os.getuid(),
    "effective_capabilities": status["CapEff"].strip(),
    "no_new_privileges": status["NoNewPrivs"].strip() == "1",
    "root_writable": writable("/probe"),
    "tmp_writable": writable("/tmp/probe"),
    "memory_limit": read("/sys/fs/cgroup/memory/memory.limit_in_bytes") or read("/sys/fs/cgroup/memory.max"),
}))
"""


@dag(
    dag_id="88_11_01_secure_docker_operator",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "containerkit", "needs:docker"],
    doc_md=__doc__,
)
def secure_docker_operator() -> None:
    measure = SecureDockerOperator(
        task_id="measure",
        image=PYTHON_IMAGE,
        command=["python", "-c", SELF_REPORT],
        resources="xs",
    )

    @task
    def check(report: Any) -> dict[str, Any]:
        """Fail unless the container ran non-root, read-only, without capabilities and within 128Mi."""
        facts = report if isinstance(report, dict) else json.loads(report)
        problems = []
        if facts["uid"] == 0:
            problems.append("ran as root")
        if int(facts["effective_capabilities"], 16) != 0:
            problems.append(f"kept capabilities {facts['effective_capabilities']}")
        if not facts["no_new_privileges"]:
            problems.append("no-new-privileges is off")
        if facts["root_writable"] or not facts["tmp_writable"]:
            problems.append("root filesystem writable or /tmp not writable")
        if facts["memory_limit"] != str(128 * 1024 * 1024):
            problems.append(f"memory limit {facts['memory_limit']} is not the xs preset's 128Mi")
        if problems:
            raise AssertionError("hardening did not reach the container: " + "; ".join(problems))
        return facts

    check(measure.output)


secure_docker_operator()
