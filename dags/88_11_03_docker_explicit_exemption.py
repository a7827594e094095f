"""A legacy Docker task that needs one weakening, made explicit and named.

Some tools write scratch data to ``/var/tmp`` (on the root filesystem, unlike the tmpfs ``/tmp``)
and cannot be told otherwise, so they cannot run on a read-only root filesystem yet. Instead of
dropping to the stock operator, keep every other default and turn off only that one setting in the
profile. The rule it breaks (``DKR-002`` read-only-rootfs) would fail this DAG's import under
``policy_mode=enforce``, so the task exempts exactly that rule, with the reason; the policy check
logs the exemption and its reason every time it runs, so the debt stays visible.

Copying: set ``CONTAINERKIT_PYTHON_IMAGE`` (or edit ``PYTHON_IMAGE``) to your pinned task image; the
resource preset and security profile are the two knobs to change. Needs: a Docker engine the worker
can reach (``needs:docker``).
"""

from __future__ import annotations

import os

import pendulum
from airflow.providers.containerkit.operators.docker import SecureDockerOperator
from airflow.sdk import dag

from containerkit.spec import SecurityProfile

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")

LEGACY_JOB = """
import os
path = "/var/tmp/legacy-cache/lookup.txt"
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path, "w") as f:
    f.write("warm")
print(f"uid={os.getuid()} wrote {path}")
"""


@dag(
    dag_id="88_11_03_docker_explicit_exemption",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "containerkit", "needs:docker"],
    doc_md=__doc__,
)
def docker_explicit_exemption() -> None:
    SecureDockerOperator(
        task_id="legacy_cache_writer",
        image=PYTHON_IMAGE,
        command=["python", "-c", LEGACY_JOB],
        security=SecurityProfile.restricted(read_only_root_filesystem=False),
        policy_exemptions={
            "DKR-002": "legacy tool caches in /var/tmp; read-only migration tracked in DATA-142"
        },
        resources="xs",
    )


docker_explicit_exemption()
