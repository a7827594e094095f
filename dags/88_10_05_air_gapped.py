"""Air-gapped delivery: mirror images keeping digests, carry an OCI archive, build from a wheelhouse, verify.

**Problem.** A site without internet needs the same images and Python packages as the connected
side, provably the same bytes, and a repeatable way to bring in updates. ``docker save``/``load``
and re-tagging lose the registry digests that deployments pin, and ``pip install`` reaches for PyPI.

**Practice.** Pin every source image to a digest first (a mirror of a moving tag proves nothing).
Copy registry to registry over the distribution API, blobs byte for byte, manifests as the exact
bytes served (``containerkit.hooks.mirror``); across a real air gap, write an OCI image-layout tar
(``oci-layout``, ``index.json``, ``blobs/sha256``) with a checksum, and push it into the inner
registry on the far side. Python packages come from a wheelhouse (``pip install --no-index
--find-links``, pinned by a constraints file) mounted into the build, never from an index. Every
image is verified by digest on the inner side, and updates are incremental re-mirrors.

**Where each sub-point is covered.**

- private registry: ``seed`` (the upstream image on the source registry) and every push through the
  ``target_conn_id`` connection;
- image mirroring: ``pin_sources`` then ``mirror`` (registry to registry, digests unchanged) and
  ``through_archive`` (export to an OCI tar, sha256 of the tar, import on the far side);
- offline dependencies: ``build_from_wheelhouse`` (a wheel built on the connected side into a
  wheelhouse, a constraints file, ``pip --no-index``; the wheels are bind-mounted into the build, so
  they never land in a layer) on the Python base already inside the gap (``python_base``);
  ``run_offline`` runs the result with ``network_mode=none`` and checks the pinned version;
- update procedures: ``update`` publishes a patched upstream tag and re-mirrors: only the new blobs
  move, the rest are found present;
- verification: ``verify_by_digest`` resolves every inner image and pulls it by digest (the engine
  checks content against the digest); the local build is checked by its image id.

**Copying.** Set ``source_conn_id`` to your upstream registry (Docker Hub, a vendor registry) and
``target_conn_id`` to the inner registry, list ``images`` (set ``seed_from`` to null), and run
``through_archive``'s export on the connected side and its import on the air-gapped side as two
DAGs if no host sees both. Put your wheels in ``wheelhouse_dir`` (``pip download -d``/``pip wheel -w``
on the connected side). **Needs** a Docker engine and a registry (``needs:docker``, ``needs:registry``);
by default source and target are one registry under the prefixes ``mirror/`` and ``airgap/``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.docker import SecureDockerOperator
from airflow.sdk import Param, dag, get_current_context, task, teardown

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
DEBIAN_IMAGE = os.environ.get("CONTAINERKIT_DEBIAN_IMAGE", "debian:12.8-slim")
REGISTRY_CONN_ID = "containerkit_registry_default"
DAG_ID = "88_10_05_air_gapped"
LABELS = {"containerkit.reference": DAG_ID}
UPSTREAM = "upstream/containerkit-examples/debian"
UPSTREAM_TAG = "12"
APP_REPOSITORY = "airgap/containerkit-examples/offline-app"
APP_TAG = "1.0.0"
PACKAGE, PACKAGE_VERSION = "ck_offline_hello", "1.2.0"

# pip runs with --no-index: the wheelhouse is the only source; a missing wheel fails the build.
DOCKERFILE = """\
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
USER 0:0
RUN --mount=type=bind,source=wheelhouse,target=/wheelhouse \\
    --mount=type=bind,source=requirements.txt,target=/tmp/requirements.txt \\
    --mount=type=bind,source=constraints.txt,target=/tmp/constraints.txt \\
    python -m venv /opt/venv \\
 && /opt/venv/bin/pip install --no-index --find-links /wheelhouse --no-cache-dir \\
      --disable-pip-version-check -r /tmp/requirements.txt -c /tmp/constraints.txt \\
 && /opt/venv/bin/pip uninstall --yes pip setuptools
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
USER 50000:0
CMD ["python", "-m", "ck_offline_hello"]
"""


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(directory: Path) -> Path:
    """A small pure-Python wheel (the site's own package), written with the standard library only."""
    dist = f"{PACKAGE}-{PACKAGE_VERSION}"
    files = {
        f"{PACKAGE}/__init__.py": f'__version__ = "{PACKAGE_VERSION}"\n'.encode(),
        f"{PACKAGE}/__main__.py": b"from ck_offline_hello import __version__\nprint(__version__)\n",
        f"{dist}.dist-info/METADATA": (
            f"Metadata-Version: 2.1\nName: {PACKAGE.replace('_', '-')}\nVersion: {PACKAGE_VERSION}\n"
        ).encode(),
        f"{dist}.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: containerkit\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in files.items())
    record += f"{dist}.dist-info/RECORD,,\n"
    wheel = directory / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in [*files.items(), (f"{dist}.dist-info/RECORD", record.encode())]:
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return wheel


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "example", "advanced", "success", "needs:docker", "needs:registry"],
    params={
        "source_conn_id": Param(REGISTRY_CONN_ID, type="string", description="Upstream registry."),
        "target_conn_id": Param(REGISTRY_CONN_ID, type="string", description="Inner (air-gapped) registry."),
        "images": Param(
            [f"{UPSTREAM}:{UPSTREAM_TAG}"],
            type="array",
            description="Source images to mirror (the first is the one seed_from publishes).",
        ),
        "seed_from": Param(
            DEBIAN_IMAGE,
            type=["null", "string"],
            description="Local image pushed as the first source image first (null: it exists upstream).",
        ),
        "python_base": Param(
            PYTHON_IMAGE,
            type="string",
            description="The Python base inside the gap the wheelhouse build uses (already mirrored).",
        ),
        "wheelhouse_dir": Param(
            os.environ.get("CONTAINERKIT_WHEELHOUSE"),
            type=["null", "string"],
            description="Extra wheels to carry (the site's pip download/pip wheel output).",
        ),
    },
    doc_md=__doc__,
)
def air_gapped() -> None:
    @task
    def seed() -> str | None:
        """Publish the upstream image on the source registry (a stand-in for Docker Hub here)."""
        from containerkit.hooks.image import ImageHook

        params = get_current_context()["params"]
        if not params["seed_from"]:
            return None
        hook = ImageHook(params["source_conn_id"])
        repository, _, tag = params["images"][0].rpartition(":")
        (reference,) = hook.tag(params["seed_from"], repository, [tag])
        try:
            return hook.push(repository, [tag])
        finally:
            hook.remove(reference, only_built_by_hook=False)  # the tag only; the local base stays

    @task
    def pin_sources(seeded: str | None) -> list[str]:
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
        changed = [c.source for c, p in zip(copied, pinned, strict=True) if not p.endswith(c.digest)]
        if changed:
            raise AssertionError(f"digests changed in the mirror: {changed}")
        return [asdict(item) for item in copied]

    @task
    def through_archive(pinned: list[str]) -> dict[str, Any]:
        """Export to an OCI layout tar (with its sha256), import it on the far side, compare digests."""
        from dataclasses import asdict

        from containerkit.hooks.mirror import export_oci_archive, import_oci_archive
        from containerkit.hooks.registry import RegistryHook

        params = get_current_context()["params"]
        with tempfile.TemporaryDirectory(prefix="ck-airgap-") as tmp:
            archive = Path(tmp) / "images.oci.tar"
            exported = export_oci_archive(pinned, archive, hook=RegistryHook(params["source_conn_id"]))
            sha = hashlib.sha256()
            with archive.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    sha.update(block)
            size = archive.stat().st_size
            # ... the tar crosses the gap; the far side checks the sha256 before importing ...
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
        print(f"archive {size} bytes, sha256 {sha.hexdigest()}")
        return {
            "archive_bytes": size,
            "archive_sha256": sha.hexdigest(),
            "imported": [asdict(i) for i in imported],
        }

    @task
    def build_from_wheelhouse() -> dict[str, Any]:
        """Build with pip --no-index from a wheelhouse: no package index, no network in the build."""
        import shutil

        from containerkit.hooks.image import ImageHook

        params = get_current_context()["params"]
        hook = ImageHook(params["target_conn_id"])
        with tempfile.TemporaryDirectory(prefix="ck-wheelhouse-") as context:
            wheelhouse = Path(context) / "wheelhouse"
            wheelhouse.mkdir()
            build_wheel(wheelhouse)
            if params["wheelhouse_dir"]:
                for wheel in Path(params["wheelhouse_dir"]).glob("*.whl"):
                    shutil.copy2(wheel, wheelhouse)
            (Path(context) / "requirements.txt").write_text(f"{PACKAGE.replace('_', '-')}\n")
            (Path(context) / "constraints.txt").write_text(
                f"{PACKAGE.replace('_', '-')}=={PACKAGE_VERSION}\n"
            )
            (Path(context) / "Dockerfile").write_text(DOCKERFILE)
            wheels = sorted(p.name for p in wheelhouse.glob("*.whl"))
            built = hook.build(
                context,
                repository=APP_REPOSITORY,
                tags=[APP_TAG],
                build_args={"BASE_IMAGE": params["python_base"]},
                labels=LABELS,
                buildkit=True,
            )
        return {"reference": built.references[0], "image_id": built.id, "wheels": wheels}

    run_offline = SecureDockerOperator(
        task_id="run_offline",
        image="{{ ti.xcom_pull(task_ids='build_from_wheelhouse')['reference'] }}",
        command=["python", "-c", "import ck_offline_hello as m, sys; print(m.__version__, sys.prefix)"],
        network_mode="none",
        resources="xs",
    )

    @task
    def verify_by_digest(
        mirrored: list[dict[str, Any]], archive: dict[str, Any], app: dict[str, Any], output: Any
    ) -> list[str]:
        """Every inner image resolves to its digest and pulls by digest; the offline run printed the pin."""
        from containerkit.hooks.image import ImageHook
        from containerkit.hooks.registry import RegistryHook

        params = get_current_context()["params"]
        if not str(output).startswith(f"{PACKAGE_VERSION} /opt/venv"):
            raise AssertionError(f"the offline image printed {output!r}, not the pinned {PACKAGE_VERSION}")
        registry = RegistryHook(params["target_conn_id"])
        engine = ImageHook(params["target_conn_id"])
        inner = [m["target"] for m in mirrored] + [i["target"] for i in archive["imported"]]
        verified = []
        for reference in inner:
            name, _, digest = reference.partition("@")
            resolved = registry.check_pullable(reference)
            if resolved != digest:
                raise AssertionError(f"{reference} resolves to {resolved}")
            info = engine.pull(reference)  # the engine verifies every blob against its digest
            if digest not in [d.partition("@")[2] for d in info.repo_digests]:
                raise AssertionError(f"the engine did not record {digest} for {name}: {info.repo_digests}")
            verified.append(reference)
        # The local build is identified by its image id (the digest of its config).
        if engine.inspect(app["reference"]).id != app["image_id"]:
            raise AssertionError(f"{app['reference']} is not the image the build produced")
        verified.append(f"{app['reference']} (image id {app['image_id']})")
        print("\n".join(f"verified {r}" for r in verified))
        return verified

    @task
    def update(pinned: list[str]) -> dict[str, Any]:
        """An upstream patch release, re-mirrored incrementally: only what changed is copied."""
        from dataclasses import asdict

        from containerkit.hooks.image import ImageHook
        from containerkit.hooks.mirror import mirror_images

        params = get_current_context()["params"]
        if not params["seed_from"]:
            return {"skipped": "no seeded upstream to patch; re-run mirror with the new digests instead"}
        hook = ImageHook(params["source_conn_id"])
        repository = params["images"][0].rpartition(":")[0]
        with tempfile.TemporaryDirectory(prefix="ck-build-") as context:
            (Path(context) / "Dockerfile").write_text(
                'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nLABEL org.opencontainers.image.version="12-p1"\n'
            )
            hook.build(
                context,
                repository=repository,
                tags=[f"{UPSTREAM_TAG}-p1"],
                build_args={"BASE_IMAGE": params["seed_from"]},
                labels=LABELS,
            )
        digest = hook.push(repository, [f"{UPSTREAM_TAG}-p1"])
        (copied,) = mirror_images(
            [hook.registry_hook.parse_image(repository).pinned(digest)],
            source_conn_id=params["source_conn_id"],
            target_conn_id=params["target_conn_id"],
            repository_prefix="mirror",
        )
        if copied.blobs_present == 0 or copied.blobs_copied > 1:
            raise AssertionError(f"the update was not incremental: {copied}")
        print(f"update {digest}: {copied.blobs_copied} blob copied, {copied.blobs_present} already present")
        return asdict(copied)

    @teardown
    def cleanup() -> list[str]:
        from containerkit.hooks.image import ImageHook

        params = get_current_context()["params"]
        hook = ImageHook(params["target_conn_id"])
        removed = hook.remove_labeled(LABELS)
        # The verification pulls left digest references of the base (same image id as the local base):
        # remove those references by name, never the image by id.
        for prefix in ("mirror", "airgap"):
            for image in params["images"]:
                name = hook.registry_hook.parse_image(f"{prefix}/{image}").name
                for record in hook.api.images(name=name):
                    for ref in [*(record.get("RepoTags") or ()), *(record.get("RepoDigests") or ())]:
                        if ref.startswith((f"{name}:", f"{name}@")):
                            hook.api.remove_image(ref)
                            removed.append(ref)
        return removed

    seeded = seed()
    pinned = pin_sources(seeded)
    mirrored = mirror(pinned)
    archive = through_archive(pinned)
    app = build_from_wheelhouse()
    app >> run_offline
    verified = verify_by_digest(mirrored, archive, app, run_offline.output)
    patched = update(pinned)
    verified >> patched
    [seeded, verified, patched] >> cleanup()


air_gapped()
