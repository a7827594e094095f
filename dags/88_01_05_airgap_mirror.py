"""Pattern 88_01_05: mirror images for an air-gapped site, digests unchanged.

First pin every source image to a digest (a mirror of a moving tag is not reproducible). Then copy
them registry to registry over the distribution API, and write them into an OCI image-layout tar
(``oci-layout``, ``index.json``, ``blobs/sha256``) that crosses the air gap and is pushed into the
inner registry. Blobs move byte for byte and manifests keep their exact bytes, so
``repo@sha256:...`` references stay valid on the other side; ``docker save``/``load`` would not
keep them. By default the source and target are the same registry (prefixes ``mirror/`` and
``airgap/``), so the pattern runs with one registry connection.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from containerkit_examples import REGISTRY_EXAMPLE_REPOSITORY, REGISTRY_EXAMPLE_VERSION


@dag(
    dag_id="88_01_05_airgap_mirror",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["containerkit", "pattern:airgap-mirror", "needs:registry"],
    params={
        "source_conn_id": Param("containerkit_registry_default", type="string"),
        "target_conn_id": Param("containerkit_registry_default", type="string"),
        "images": Param(
            [f"{REGISTRY_EXAMPLE_REPOSITORY}:{REGISTRY_EXAMPLE_VERSION}"],
            type="array",
            description="Source images (tags are pinned to digests first).",
        ),
    },
    doc_md=__doc__,
)
def airgap_mirror() -> None:
    @task
    def pin_sources() -> list[str]:
        from containerkit.hooks.preflight import pin_image

        params = get_current_context()["params"]
        return [pin_image(image, params["source_conn_id"]) for image in params["images"]]

    @task
    def mirror(pinned: list[str]) -> list[dict[str, Any]]:
        from dataclasses import asdict

        from containerkit.hooks.mirror import mirror_images

        params = get_current_context()["params"]
        copied = mirror_images(
            pinned,
            source_conn_id=params["source_conn_id"],
            target_conn_id=params["target_conn_id"],
            repository_prefix="mirror",
        )
        return [asdict(item) for item in copied]

    @task
    def through_archive(pinned: list[str]) -> list[dict[str, Any]]:
        """Export to an OCI archive and import it on the far side, then compare digests."""
        from dataclasses import asdict

        from containerkit.hooks.mirror import export_oci_archive, import_oci_archive
        from containerkit.hooks.registry import RegistryHook

        params = get_current_context()["params"]
        with tempfile.TemporaryDirectory(prefix="ck-airgap-") as tmp:
            archive = Path(tmp) / "images.oci.tar"
            exported = export_oci_archive(pinned, archive, hook=RegistryHook(params["source_conn_id"]))
            imported = import_oci_archive(
                archive, hook=RegistryHook(params["target_conn_id"]), repository_prefix="airgap"
            )
        changed = [
            (e.source, e.digest, i.digest)
            for e, i in zip(exported, imported, strict=True)
            if e.digest != i.digest
        ]
        if changed:
            raise AssertionError(f"digests changed across the archive: {changed}")
        return [asdict(item) for item in imported]

    pinned = pin_sources()
    mirror(pinned)
    through_archive(pinned)


airgap_mirror()
