"""Pattern 88_01_04: pin an image tag to its digest before launch, and fail fast when it cannot be pulled.

A tag moves; a digest does not. ``pin_image`` asks the registry (with the ``containerkit_registry``
connection's credentials) for the digest behind the tag, checks the image can be pulled, and
returns ``repo@sha256:...``. The container operators do this themselves with
``pin_image_digest=True``; this DAG shows the step on its own, followed by a look at the pinned
image's config (user, size). A missing tag or refused credentials fail the task in about a second
with ``ImagePull:not-found`` / ``ImagePull:unauthorized`` and the fix, instead of an
ImagePullBackOff timeout later. By default it pins the image pattern 88_01_03 pushes.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from containerkit_examples import REGISTRY_EXAMPLE_REPOSITORY, REGISTRY_EXAMPLE_VERSION


@dag(
    dag_id="88_01_04_pin_image_digest",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["containerkit", "pattern:image-pinning", "needs:registry"],
    params={
        "registry_conn_id": Param("containerkit_registry_default", type="string"),
        "image": Param(
            f"{REGISTRY_EXAMPLE_REPOSITORY}:{REGISTRY_EXAMPLE_VERSION}",
            type="string",
            description="A tag to pin; without a registry host it means the connection's registry.",
        ),
        "platform": Param(None, type=["null", "string"], description="os/arch to pin one platform."),
    },
    doc_md=__doc__,
)
def pin_image_digest() -> None:
    @task
    def pin() -> str:
        from containerkit.hooks.preflight import pin_image

        params = get_current_context()["params"]
        return pin_image(params["image"], params["registry_conn_id"], platform=params["platform"])

    @task
    def describe(pinned: str) -> dict[str, Any]:
        from containerkit.hooks.registry import RegistryHook

        hook = RegistryHook(get_current_context()["params"]["registry_conn_id"])
        config = hook.get_config(pinned)
        return {
            "image": pinned,
            "user": config.user or "root",
            "runs_as_root": config.runs_as_root,
            "compressed_bytes": hook.compressed_size(pinned),
            "created": config.created,
        }

    describe(pin())


pin_image_digest()
