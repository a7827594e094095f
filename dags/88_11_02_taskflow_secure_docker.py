"""TaskFlow in a hardened container, with arguments and results that stay private.

``@task.secure_docker`` runs the function in a ``SecureDockerOperator`` container (same defaults:
non-root, read-only root, no capabilities, sized). Unlike the stock ``@task.docker``, which passes the
pickled arguments and script base64-encoded in environment variables (readable by anyone who can
``docker inspect``), the script and arguments are copied into a private volume of the container
before it starts, and the return value is read back from it before the container is removed. The
result arrives as XCom; ``multiple_outputs=True`` splits a dict into one XCom per key.

The image needs Python of the worker's minor version (the default serializer is pickle).

Copying: set ``CONTAINERKIT_PYTHON_IMAGE`` (or edit ``PYTHON_IMAGE``) to your pinned task image; the
resource preset and security profile are the two knobs to change. Needs: a Docker engine the worker
can reach (``needs:docker``).
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.sdk import dag, task

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")


@dag(
    dag_id="88_11_02_taskflow_secure_docker",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "containerkit", "needs:docker"],
    doc_md=__doc__,
)
def taskflow_secure_docker() -> None:
    @task
    def extract() -> list[dict[str, Any]]:
        return [{"sku": "A-1", "qty": 3, "price": 2.5}, {"sku": "B-7", "qty": 1, "price": 10.0}]

    @task.secure_docker(image=PYTHON_IMAGE, resources="xs", multiple_outputs=True)
    def price(rows: list[dict[str, Any]], currency: str) -> dict[str, Any]:
        """Runs in the container: plain Python, no Airflow needed there."""
        total = sum(row["qty"] * row["price"] for row in rows)
        return {"total": round(total, 2), "currency": currency, "lines": len(rows)}

    @task
    def report(total: float, currency: str) -> str:
        if total != 17.5:
            raise AssertionError(f"expected 17.5, got {total}")
        return f"{total:.2f} {currency}"

    priced = price(extract(), "EUR")
    report(priced["total"], priced["currency"])


taskflow_secure_docker()
