"""Multi-arch images: per-platform images combined into an OCI index, inspected, scheduled where they run.

**Problem.** A cluster with ARM64 nodes (Graviton, Ampere, Apple-silicon laptops with kind) pulls the
manifest for the node's architecture. An image built only for ``amd64`` lands on an ``arm64`` node as
``exec format error`` (or an ``ErrImagePull: no matching manifest``) long after the DAG was deployed.

**Practice.**

* *Buildx usage / CI/CD integration* (``push_platform_images``, ``assemble_index``): the CI pattern is one
  job per architecture pushing ``<version>-<arch>`` tags (native runners are faster than QEMU), then one
  step that combines them into the multi-arch tag, which is what ``docker buildx imagetools create -t
  repo:1.0 repo:1.0-amd64 repo:1.0-arm64`` does. Here the ``amd64`` (this machine's) image is built and
  pushed with ``ImageHook``; this machine has no ARM64 builder or emulator, so the ``arm64`` image is
  assembled with the OCI distribution API (a data-only layer and a config saying ``linux/arm64/v8``),
  blob by blob, through ``RegistryHook``. The index is then written from the two manifests' digests,
  sizes and the platform their configs declare, exactly as ``imagetools create`` writes it.
* *Manifest lists* (``inspect_index``): reads the index back, resolves each platform's manifest digest
  (``RegistryHook.resolve_digest(platform=...)``), reads each config's architecture and the compressed
  pull size, and fails if a descriptor's platform and its config disagree.
* *ARM64 support* (``preflight_architecture``): before a pod is created, the nodes the task may land on
  (their ``kubernetes.io/arch`` label or ``nodeInfo.architecture``, narrowed by the pod's
  ``nodeSelector``) are checked against the index: an architecture the image lacks is refused with the
  platforms it has and the fix (asserted with ``linux/s390x``); otherwise the task is pinned to the
  per-platform digest it will run.
* ``run_on_matching_node``: ``SecureKubernetesPodOperator`` runs the pinned digest with
  ``nodeSelector: kubernetes.io/arch`` and prints ``uname -m``; ``check_machine`` asserts it.

**Copying.** Set the registry connection ``containerkit_registry_default`` (push rights), the
repository (``CONTAINERKIT_MULTIARCH_REPOSITORY``), ``CONTAINERKIT_DEBIAN_IMAGE`` and
``CONTAINERKIT_NAMESPACE``. On a CI runner with buildx, replace the hand-assembled ``arm64`` image with
``docker buildx build --platform linux/arm64 --push -t repo:1.0-arm64 .`` and keep ``assemble_index``
(or call ``imagetools create``). The tags stay in the registry: they are the product.

**Needs.** A Docker engine, a registry connection, a Kubernetes cluster (the local test double in CI; the
local kubelet never pulls, so ``stage_for_local_node`` pulls the pinned digest onto its engine).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.kubernetes import SecureKubernetesPodOperator
from airflow.sdk import dag, task, teardown

DEBIAN_IMAGE = os.environ.get("CONTAINERKIT_DEBIAN_IMAGE", "debian:12.8-slim")
NAMESPACE = os.environ.get("CONTAINERKIT_NAMESPACE", "airflow-tasks")
REPOSITORY = os.environ.get("CONTAINERKIT_MULTIARCH_REPOSITORY", "containerkit-reference/multi-arch")
REGISTRY_CONN_ID = "containerkit_registry_default"
DAG_ID = "88_09_04_multi_arch"
RUN_LABEL = "containerkit.reference"
VERSION = "1.0.0"
MISSING_PLATFORM = "linux/s390x"
MACHINE = {"amd64": "x86_64", "arm64": "aarch64"}
TARGET_ARCH = os.environ.get("CONTAINERKIT_TARGET_ARCH", "amd64")
"""The node architecture the task is meant for (the pod's ``nodeSelector``)."""
# Print the machine and hand it to XCom (KubernetesPodOperator reads /airflow/xcom/return.json).
PRINT_MACHINE = 'm="$(uname -m)"; echo "$m"; printf \'"%s"\' "$m" > /airflow/xcom/return.json'

DOCKERFILE = """\
ARG BASE_IMAGE=debian:12.8-slim
FROM ${BASE_IMAGE}
USER 50000:0
CMD ["uname", "-m"]
"""


def _labels(context: dict[str, Any]) -> dict[str, str]:
    return {RUN_LABEL: f"{DAG_ID}:{context['run_id']}"[:250]}


def _sha(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


def _hand_built_image(architecture: str, variant: str | None) -> tuple[bytes, bytes, bytes]:
    """(layer.tar.gz, config JSON, manifest JSON) of a data-only image for ``linux/<architecture>``."""
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w") as tar:
        content = f"linux/{architecture}{'/' + variant if variant else ''}\n".encode()
        info = tarfile.TarInfo("etc/containerkit-platform")
        info.size, info.mode, info.mtime = len(content), 0o644, 0
        tar.addfile(info, io.BytesIO(content))
    raw_tar = tar_bytes.getvalue()
    layer = gzip.compress(raw_tar, mtime=0)
    config_doc: dict[str, Any] = {
        "architecture": architecture,
        "os": "linux",
        "created": "2025-01-01T00:00:00Z",
        "config": {"User": "50000:0", "Cmd": ["uname", "-m"]},
        "rootfs": {"type": "layers", "diff_ids": [_sha(raw_tar)]},
    }
    if variant:
        config_doc["variant"] = variant
    config = json.dumps(config_doc, sort_keys=True).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _sha(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": _sha(layer),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    return layer, config, manifest


def _node_architectures(node_selector: dict[str, str]) -> dict[str, str]:
    """node name -> architecture for the nodes ``node_selector`` allows (real nodes carry both fields)."""
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
    from kubernetes.client import CoreV1Api

    api = CoreV1Api(KubernetesHook(conn_id="kubernetes_default").api_client)
    out: dict[str, str] = {}
    # Raw JSON: only the two fields matter, and a partial nodeInfo must not break the read.
    nodes = json.loads(api.list_node(_preload_content=False).data)["items"]
    for node in nodes:
        labels = node["metadata"].get("labels") or {}
        arch = labels.get("kubernetes.io/arch") or node.get("status", {}).get("nodeInfo", {}).get(
            "architecture"
        )
        others = all(labels.get(k) == v for k, v in node_selector.items() if k != "kubernetes.io/arch")
        if others and arch and arch == node_selector.get("kubernetes.io/arch", arch):
            out[node["metadata"]["name"]] = arch
    return out


def require_platform(registry: Any, image: str, platforms: list[str]) -> dict[str, str]:
    """Refuse unless the index has a manifest for every platform; return platform -> pinned reference."""
    from containerkit.errors import SpecError
    from containerkit.hooks.manifest import Platform

    index = registry.get_manifest(image)
    available = [str(p) for p in index.platforms] if index.is_index else []
    pinned: dict[str, str] = {}
    for wanted in platforms:
        if not any(Platform.parse(wanted).matches(p) for p in index.platforms):
            raise SpecError(
                "image",
                image,
                f"has no {wanted} manifest (platforms: {', '.join(available) or 'a single-platform image'}); "
                f"a pod on a {wanted} node would fail with exec format error / no matching manifest",
                f"build and push {wanted} (docker buildx build --platform {wanted}) and add it to the index, "
                "or keep the task off those nodes with nodeSelector kubernetes.io/arch",
            )
        pinned[wanted] = index.image.pinned(registry.resolve_digest(image, platform=wanted))
    return pinned


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=[
        "reference",
        "patterns",
        "advanced",
        "success",
        "needs:docker",
        "needs:registry",
        "needs:kubernetes",
    ],
    doc_md=__doc__,
)
def multi_arch() -> None:
    @task
    def push_platform_images(**context: Any) -> dict[str, str]:
        """One image per platform under ``<version>-<arch>``: built and pushed (amd64), assembled (arm64)."""
        from containerkit.hooks.image import ImageHook
        from containerkit.hooks.manifest import OCI_MANIFEST, default_platform
        from containerkit.hooks.registry import RegistryHook

        images = ImageHook(registry_conn_id=REGISTRY_CONN_ID)
        registry = RegistryHook(REGISTRY_CONN_ID)
        host = default_platform().architecture
        repository = registry.parse_image(REPOSITORY)
        tags: dict[str, str] = {}
        with tempfile.TemporaryDirectory(prefix="ck-multiarch-") as ctx:
            Path(ctx, "Dockerfile").write_text(DOCKERFILE)
            images.build(
                ctx,
                repository=repository.name,
                tags=[f"{VERSION}-{host}"],
                build_args={"BASE_IMAGE": DEBIAN_IMAGE},
                labels=_labels(context),
            )
        digest = images.push(repository.name, [f"{VERSION}-{host}"])
        tags[f"linux/{host}"] = f"{repository.name}:{VERSION}-{host}"
        print(f"pushed {tags[f'linux/{host}']} ({digest})")
        for arch, variant in (("arm64", "v8"), ("amd64", None)):
            if arch == host:
                continue
            layer, config, manifest = _hand_built_image(arch, variant)
            ref = f"{repository.name}:{VERSION}-{arch}"
            for blob in (layer, config):
                if not registry.blob_exists(ref, _sha(blob)):
                    registry.upload_blob(ref, _sha(blob), io.BytesIO(blob), len(blob))
            stored = registry.put_manifest(ref, manifest, OCI_MANIFEST)
            tags[f"linux/{arch}/{variant}" if variant else f"linux/{arch}"] = ref
            print(f"assembled {ref} ({stored}) from a data-only layer: no {arch} builder here")
        return tags

    @task
    def assemble_index(tags: dict[str, str]) -> str:
        """``imagetools create``: an OCI index over the per-platform manifests, each with its platform."""
        from containerkit.hooks.manifest import OCI_INDEX
        from containerkit.hooks.registry import RegistryHook

        registry = RegistryHook(REGISTRY_CONN_ID)
        entries = []
        for ref in tags.values():
            manifest = registry.get_manifest(ref)
            if manifest.config is None:
                raise AssertionError(f"{ref} has no config")
            # The platform is what the image's config says (os, architecture, variant), read raw.
            config = json.loads(registry.read_blob(ref, manifest.config.digest))
            platform = {"architecture": config["architecture"], "os": config["os"]}
            if config.get("variant"):
                platform["variant"] = config["variant"]
            descriptor = {
                "mediaType": manifest.media_type,
                "digest": manifest.digest,
                "size": len(manifest.raw),
                "platform": platform,
            }
            entries.append(descriptor)
        index = json.dumps(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}, indent=2
        ).encode()
        target = f"{registry.parse_image(REPOSITORY).name}:{VERSION}"
        digest = registry.put_manifest(target, index, OCI_INDEX)
        print(f"index {target}@{digest}:\n{index.decode()}")
        return target

    @task
    def inspect_index(image: str, tags: dict[str, str]) -> dict[str, Any]:
        """Platforms, per-platform digests, config architecture and pull size, cross-checked."""
        from containerkit.hooks.registry import RegistryHook

        registry = RegistryHook(REGISTRY_CONN_ID)
        index = registry.get_manifest(image)
        if not index.is_index:
            raise AssertionError(f"{image} is not an index ({index.media_type})")
        report: dict[str, Any] = {"index": index.pinned, "platforms": {}}
        for entry in index.manifests:
            platform = str(entry.platform)
            digest = registry.resolve_digest(image, platform=platform)
            config = registry.get_config(image, platform=platform)
            size = registry.compressed_size(image, platform=platform)
            print(f"{platform:18} {digest}  config {config.platform}  pull {size} bytes")
            if digest != entry.digest or not entry.platform.matches(config.platform):
                raise AssertionError(
                    f"{platform}: descriptor {entry.digest} vs resolved {digest} / {config.platform}"
                )
            if digest != registry.resolve_digest(tags[platform]):
                raise AssertionError(f"{platform}: the index does not point at {tags[platform]}")
            report["platforms"][platform] = {"digest": digest, "pull_bytes": size}
        if sorted(report["platforms"]) != sorted(tags):
            raise AssertionError(f"index platforms {sorted(report['platforms'])} != pushed {sorted(tags)}")
        return report

    @task
    def preflight_architecture(image: str) -> str:
        """Refuse an architecture the index lacks; pin the digest for the nodes the pod may land on."""
        from containerkit.errors import SpecError
        from containerkit.hooks.registry import RegistryHook

        registry = RegistryHook(REGISTRY_CONN_ID)
        try:
            require_platform(registry, image, [MISSING_PLATFORM])
        except SpecError as exc:
            print(f"refused as designed: {exc}")
            if "s390x" not in str(exc) or "linux/arm64/v8" not in str(exc):
                raise AssertionError(f"the refusal does not name the platforms: {exc}") from None
        else:
            raise AssertionError(f"{MISSING_PLATFORM} was not refused")
        arch = TARGET_ARCH
        nodes = _node_architectures({"kubernetes.io/arch": arch})
        if not nodes:
            raise SpecError(
                "node_selector",
                {"kubernetes.io/arch": arch},
                "no node has this architecture: the pod would stay Pending (FailedScheduling)",
                f"add {arch} nodes, or build the image for an architecture the cluster has",
            )
        pinned = require_platform(registry, image, sorted({f"linux/{a}" for a in nodes.values()}))
        print(f"nodes {nodes}: run {pinned}")
        return pinned[f"linux/{arch}"]

    @task
    def stage_for_local_node(pinned: str) -> str:
        """The local test double's kubelet never pulls: pull the pinned digest onto its engine."""
        from containerkit.hooks.image import ImageHook

        if os.environ.get("CONTAINERKIT_REAL_CLUSTER") == "1":
            return pinned  # a real kubelet pulls it itself
        info = ImageHook(registry_conn_id=REGISTRY_CONN_ID).pull(pinned)
        print(f"pulled {pinned} ({info.architecture}) onto the engine of the local test cluster")
        return pinned

    @task
    def check_machine(machine: str) -> str:
        expected = MACHINE.get(TARGET_ARCH, TARGET_ARCH)
        if machine != expected:
            raise AssertionError(f"pod ran on {machine!r}, expected {expected!r}")
        return machine

    @teardown
    def remove_local_images(**context: Any) -> list[str]:
        from docker.errors import APIError

        from containerkit.hooks.image import ImageHook

        deadline = time.monotonic() + 60
        while True:  # the pod's container is removed after a graceful stop: until then it holds the image
            try:
                removed = ImageHook().remove_labeled(_labels(context))
                break
            except APIError as exc:
                if exc.status_code != 409 or time.monotonic() > deadline:
                    raise
                time.sleep(1)
        print(f"removed {len(removed)} local images (the registry keeps the tags and the index)")
        return removed

    tags = push_platform_images()
    image = assemble_index(tags)
    report = inspect_index(image, tags)
    pinned = stage_for_local_node(preflight_architecture(image))
    run = SecureKubernetesPodOperator(
        task_id="run_on_matching_node",
        name="multi-arch",
        namespace=NAMESPACE,
        image="{{ ti.xcom_pull(task_ids='stage_for_local_node') }}",
        cmds=["sh", "-c", PRINT_MACHINE],
        node_selector={"kubernetes.io/arch": TARGET_ARCH},
        # Lint sees only the template; the pod runs the per-platform digest the pre-flight pinned.
        policy_exemptions={"HRD-005": "image is the repo@sha256 digest pinned by preflight_architecture"},
        resources="xs",
        get_logs=True,
        do_xcom_push=True,
    )
    pinned >> run
    checked = check_machine(run.output)
    [checked, report] >> remove_local_images().as_teardown(setups=tags)


multi_arch()
