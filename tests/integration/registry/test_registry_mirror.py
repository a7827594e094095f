"""Air-gapped mirroring between two real registries and through an OCI archive: digests survive."""

from __future__ import annotations

import json
import tarfile

from containerkit.hooks.manifest import OCI_INDEX
from containerkit.hooks.mirror import copy_image, export_oci_archive, import_oci_archive, mirror_images
from containerkit.hooks.registry import RegistryHook


def test_mirror_to_a_second_registry_keeps_digests(pushed_app, mirror_registry, auth_registry) -> None:
    results = mirror_images(
        ["ck/app:1.0.0", f"ck/app@{pushed_app.digest}"],
        source_conn_id=auth_registry.conn_id,
        target_conn_id=mirror_registry.conn_id,
        repository_prefix="mirror",
    )
    assert [r.digest for r in results] == [pushed_app.digest, pushed_app.digest]
    assert results[0].blobs_copied > 0 and results[1].blobs_copied == 0  # second copy moved nothing
    target = RegistryHook(mirror_registry.conn_id)
    assert target.resolve_digest("mirror/ck/app:1.0.0") == pushed_app.digest
    assert results[0].target == f"{mirror_registry.host}/mirror/ck/app@{pushed_app.digest}"
    assert target.get_config("mirror/ck/app:1.0.0").labels["containerkit.test"] == "registry"


def test_mirror_copies_a_multi_arch_index_with_its_platforms(pushed_app, mirror_registry) -> None:
    source = RegistryHook(None)
    app = source.get_manifest(f"{pushed_app.plain}@{pushed_app.digest}")
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": app.media_type,
                "digest": app.digest,
                "size": len(app.raw),
                "platform": {"os": "linux", "architecture": "amd64"},
            }
        ],
    }
    index_digest = source.put_manifest(f"{pushed_app.plain}:index", json.dumps(index).encode(), OCI_INDEX)
    target = RegistryHook(None, registry=mirror_registry.host)
    copied = copy_image(f"{pushed_app.plain}:index", source, target)
    assert copied.digest == index_digest
    assert target.resolve_digest("ck/app:index") == index_digest
    assert target.resolve_digest("ck/app:index", platform="linux/amd64") == pushed_app.digest


def test_oci_archive_round_trip_keeps_digests(pushed_app, mirror_registry, tmp_path) -> None:
    archive = tmp_path / "airgap.tar"
    exported = export_oci_archive([f"{pushed_app.plain}:1.0.2"], archive, hook=RegistryHook(None))
    assert exported[0].digest == pushed_app.digest
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        index = json.load(tar.extractfile("index.json"))
    assert {"oci-layout", "index.json", f"blobs/sha256/{pushed_app.digest.split(':')[1]}"} <= names
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "1.0.2"

    target = RegistryHook(None, registry=mirror_registry.host)
    imported = import_oci_archive(archive, hook=target, repository_prefix="airgap")
    assert imported[0].target == f"{mirror_registry.host}/airgap/ck/app@{pushed_app.digest}"
    assert target.resolve_digest("airgap/ck/app:1.0.2") == pushed_app.digest
    assert imported[0].blobs_copied + imported[0].blobs_present == exported[0].blobs_copied


def test_copy_within_one_registry_mounts_blobs(pushed_app) -> None:
    hook = RegistryHook(None)
    copied = copy_image(f"{pushed_app.plain}:1.0.0", hook, hook, repository_prefix="mounted")
    assert copied.digest == pushed_app.digest and copied.blobs_copied > 0
    assert hook.resolve_digest(copied.target) == pushed_app.digest
