"""Pattern 88_01_01: run Airflow from the official image (extended with containerkit), and check its contract.

The containerkit image (``docker/Dockerfile``) extends ``apache/airflow:3.3.2-python3.11`` (or the
air-gapped base with the same contract). The contract that DAGs, mounts and ``user:`` settings rely on:

* the process is not root and its primary group is 0 (any uid works: ``user: "${AIRFLOW_UID}:0"``);
* ``AIRFLOW_HOME`` is ``/opt/airflow`` and writable by that user (logs, config);
* the interpreter is Python 3.11 and the containerkit provider is installed and importable.

``report_contract`` collects the facts as XCom; ``check_contract`` fails the run when a fact breaks the
contract. The image-only facts (uid, gid, home) are enforced when the task runs in the image
(``AIRFLOW_HOME=/opt/airflow``) or when the run sets ``require_image`` (the compose e2e test does), so the
same DAG also runs on a developer's embedded Airflow, where only the portable facts are checked.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

IMAGE_AIRFLOW_HOME = "/opt/airflow"
PYTHON_VERSION = (3, 11)


@dag(
    dag_id="88_01_01_official_docker_image",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["containerkit", "pattern:official-image"],
    params={
        "require_image": Param(
            False, type="boolean", description="Fail unless the task runs inside the Airflow image."
        ),
    },
    doc_md=__doc__,
)
def official_docker_image() -> None:
    @task
    def report_contract() -> dict[str, Any]:
        """What this worker process is: user, group, home, interpreter and provider version."""
        from importlib.metadata import version

        import containerkit

        home = os.environ.get("AIRFLOW_HOME", "")
        return {
            "uid": os.getuid(),
            "gid": os.getgid(),
            "airflow_home": home,
            "airflow_home_writable": bool(home) and os.access(home, os.W_OK),
            "python": list(sys.version_info[:2]),
            "containerkit": version("airflow-provider-containerkit"),
            "containerkit_module": containerkit.__name__,
            "airflow": version("apache-airflow-core"),
        }

    @task
    def check_contract(facts: dict[str, Any]) -> list[str]:
        """Raise with every broken promise listed; return the checks that ran."""
        in_image = facts["airflow_home"] == IMAGE_AIRFLOW_HOME
        require_image = bool(get_current_context()["params"]["require_image"])
        problems: list[str] = []
        checks = ["python", "containerkit", "airflow_home_writable"]
        if tuple(facts["python"]) != PYTHON_VERSION:
            problems.append(f"python {facts['python']} is not {list(PYTHON_VERSION)}")
        if not facts["containerkit"]:
            problems.append("containerkit is not installed")
        if not facts["airflow_home_writable"]:
            problems.append(f"AIRFLOW_HOME {facts['airflow_home']!r} is not writable by uid {facts['uid']}")
        if require_image and not in_image:
            problems.append(f"AIRFLOW_HOME {facts['airflow_home']!r} is not {IMAGE_AIRFLOW_HOME}")
        if in_image or require_image:
            checks += ["uid", "gid"]
            if facts["uid"] == 0:
                problems.append("runs as root (uid 0): the image's user is airflow (50000) or AIRFLOW_UID")
            if facts["gid"] != 0:
                problems.append(f"primary gid is {facts['gid']}, the image contract is gid 0")
        if problems:
            raise AssertionError("Airflow image contract broken: " + "; ".join(problems))
        print(f"contract holds ({', '.join(checks)}): {facts}")
        return checks

    check_contract(report_contract())


official_docker_image()
