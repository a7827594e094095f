"""Air-gapped mirroring: copy images between registries and through OCI archives, digests intact.

Digests survive because nothing is rebuilt: blobs move byte for byte (verified against their
digest) and manifests are PUT as the exact bytes the source served. An OCI image-layout tar
(``oci-layout``, ``index.json``, ``blobs/sha256/...``) carries the same bytes across an air gap.

Not digest-preserving, and therefore not here: ``docker save``/``docker load`` (the engine stores
layers uncompressed and a later push recompresses them into new blobs and a new manifest); see
:meth:`containerkit.hooks.image.ImageHook.save` for that format.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import tarfile
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from containerkit.errors import SpecError
from containerkit.hooks.errors import RegistryError
from containerkit.hooks.image_reference import ImageName
from containerkit.hooks.manifest import Descriptor, Manifest
from containerkit.hooks.registry import RegistryHook

log = logging.getLogger(__name__)

OCI_LAYOUT = json.dumps({"imageLayoutVersion": "1.0.0"}).encode()
REF_NAME = "org.opencontainers.image.ref.name"
IMAGE_NAME = "io.containerd.image.name"  # the full source reference, as containerd/nerdctl write it
_SPOOL_BYTES = 32 << 20


@dataclass(frozen=True)
class MirroredImage:
    """One copied image: where from, where to, its (unchanged) digest and how many blobs moved."""

    source: str
    target: str
    digest: str
    blobs_copied: int
    blobs_present: int


@dataclass
class _Tally:
    copied: int = 0
    present: int = 0


def _target_for(source: ImageName, target_hook: RegistryHook, repository_prefix: str) -> ImageName:
    repository = (
        f"{repository_prefix.strip('/')}/{source.repository}" if repository_prefix else source.repository
    )
    ref = f"{target_hook.bound_registry() or source.registry}/{repository}"
    if source.tag:
        ref += f":{source.tag}"
    if source.digest:
        ref += f"@{source.digest}"
    return target_hook.parse_image(ref)


def _child(image: ImageName, digest: str) -> ImageName:
    return ImageName(name=image.name, registry=image.registry, repository=image.repository, digest=digest)


@contextmanager
def _spooled_blob(
    hook: RegistryHook, image: ImageName, descriptor: Descriptor
) -> Iterator[tuple[IO[bytes], int]]:
    """The blob in a spooled temp file, verified against its digest before anyone uses it."""
    sha = hashlib.sha256()
    size = 0
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
        for chunk in hook.iter_blob(image, descriptor.digest):
            sha.update(chunk)
            spool.write(chunk)
            size += len(chunk)
        if descriptor.digest.startswith("sha256:") and f"sha256:{sha.hexdigest()}" != descriptor.digest:
            raise RegistryError(
                str(image),
                f"blob {descriptor.digest} arrived with a different digest",
                "retry; if it persists the source registry or a proxy corrupts content",
            )
        spool.seek(0)
        yield spool, size


def _copy_blob(
    source_hook: RegistryHook,
    source: ImageName,
    target_hook: RegistryHook,
    target: ImageName,
    desc: Descriptor,
    tally: _Tally,
) -> None:
    if target_hook.blob_exists(target, desc.digest):
        tally.present += 1
        return
    same_registry = source_hook is target_hook and source.registry == target.registry
    if same_registry and target_hook.mount_blob(target, desc.digest, source.repository):
        tally.copied += 1
        return
    with _spooled_blob(source_hook, source, desc) as (data, size):
        target_hook.upload_blob(target, desc.digest, data, size)
    tally.copied += 1


def _copy_manifest(
    source_hook: RegistryHook, source: ImageName, target_hook: RegistryHook, target: ImageName, tally: _Tally
) -> Manifest:
    manifest = source_hook.get_manifest(source)
    if manifest.is_index:
        for entry in manifest.manifests:
            _copy_manifest(
                source_hook, _child(source, entry.digest), target_hook, _child(target, entry.digest), tally
            )
    else:
        for desc in (d for d in (manifest.config, *manifest.layers) if d is not None):
            _copy_blob(source_hook, source, target_hook, target, desc, tally)
    target_hook.put_manifest(target, manifest.raw, manifest.media_type)
    return manifest


def copy_image(
    source: str, source_hook: RegistryHook, target_hook: RegistryHook, *, repository_prefix: str = ""
) -> MirroredImage:
    """Copy one image (a tag, or better a digest) to the target hook's registry, same repository path.

    Multi-arch indexes are copied with every platform manifest they list. The target gets the
    source tag when there is one, else the manifest is stored by digest only.
    """
    src = source_hook.parse_image(source)
    dst = _target_for(src, target_hook, repository_prefix)
    tally = _Tally()
    manifest = _copy_manifest(source_hook, src, target_hook, dst, tally)
    if src.digest and manifest.digest != src.digest:  # get_manifest already verified; belt and braces
        raise RegistryError(str(src), f"copied {manifest.digest}, asked for {src.digest}", "retry the copy")
    log.info("Mirrored %s to %s (%d blobs copied, %d present)", src, dst, tally.copied, tally.present)
    return MirroredImage(str(src), dst.pinned(manifest.digest), manifest.digest, tally.copied, tally.present)


def mirror_images(
    images: Iterable[str],
    *,
    source_conn_id: str | None,
    target_conn_id: str | None,
    target_registry: str | None = None,
    repository_prefix: str = "",
) -> list[MirroredImage]:
    """Copy a list of images from one registry to another (connections, or anonymous + host).

    :param images: references; pin them by digest (``repo@sha256:...``) so the copy is exact.
    :param source_conn_id: ``containerkit_registry`` connection of the source, None for anonymous.
    :param target_conn_id: connection of the target registry (push rights), None for anonymous.
    :param target_registry: ``host[:port]`` of the target when ``target_conn_id`` is None.
    :param repository_prefix: prepended to each repository path on the target (``mirror/…``).
    """
    source_hook = RegistryHook(source_conn_id) if source_conn_id else RegistryHook(None)
    if target_conn_id:
        target_hook = RegistryHook(target_conn_id)
    elif target_registry:
        target_hook = RegistryHook(None, registry=target_registry)
    else:
        raise SpecError(
            "target_conn_id", None, "no target registry", "pass target_conn_id or target_registry"
        )
    return [
        copy_image(image, source_hook, target_hook, repository_prefix=repository_prefix) for image in images
    ]


# --- OCI image-layout archives ---


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _blob_path(digest: str) -> str:
    algorithm, _, hexdigest = digest.partition(":")
    return f"blobs/{algorithm}/{hexdigest}"


def export_oci_archive(
    images: Sequence[str], archive: str | Path, *, hook: RegistryHook
) -> list[MirroredImage]:
    """Write the images (with every platform of an index) into one OCI image-layout tar."""
    written: set[str] = set()
    entries: list[dict[str, Any]] = []
    results: list[MirroredImage] = []
    with tarfile.open(archive, "w") as tar:
        _add_bytes(tar, "oci-layout", OCI_LAYOUT)

        def add_manifest(image: ImageName, tally: _Tally) -> Manifest:
            manifest = hook.get_manifest(image)
            if manifest.is_index:
                for entry in manifest.manifests:
                    add_manifest(_child(image, entry.digest), tally)
            else:
                for desc in (d for d in (manifest.config, *manifest.layers) if d is not None):
                    if desc.digest in written:
                        tally.present += 1
                        continue
                    with _spooled_blob(hook, image, desc) as (data, size):
                        info = tarfile.TarInfo(_blob_path(desc.digest))
                        info.size, info.mode = size, 0o644
                        tar.addfile(info, data)
                    written.add(desc.digest)
                    tally.copied += 1
            if manifest.digest not in written:
                _add_bytes(tar, _blob_path(manifest.digest), manifest.raw)
                written.add(manifest.digest)
            return manifest

        for source in images:
            image = hook.parse_image(source)
            tally = _Tally()
            manifest = add_manifest(image, tally)
            annotations = {IMAGE_NAME: str(image)}
            if image.tag:
                annotations[REF_NAME] = image.tag
            entries.append(
                {
                    "mediaType": manifest.media_type,
                    "digest": manifest.digest,
                    "size": len(manifest.raw),
                    "annotations": annotations,
                }
            )
            results.append(
                MirroredImage(str(image), str(archive), manifest.digest, tally.copied, tally.present)
            )
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": entries,
        }
        _add_bytes(tar, "index.json", json.dumps(index, indent=2).encode())
    return results


def import_oci_archive(
    archive: str | Path, *, hook: RegistryHook, repository_prefix: str = ""
) -> list[MirroredImage]:
    """Push every image of an OCI image-layout tar to the hook's registry, digests unchanged.

    Each image keeps its repository path (from the ``io.containerd.image.name`` annotation) and
    tag (``org.opencontainers.image.ref.name``) under the hook's registry.
    """
    results: list[MirroredImage] = []
    with tarfile.open(archive, "r") as tar:

        def read(name: str) -> bytes:
            member = tar.extractfile(name)
            if member is None:
                raise SpecError("archive", str(archive), f"{name} is missing", "export the archive again")
            return member.read()

        try:
            index = json.loads(read("index.json"))
        except KeyError:
            raise SpecError(
                "archive", str(archive), "not an OCI image layout (no index.json)", "use export_oci_archive"
            ) from None

        def push(desc: Descriptor, target: ImageName, tally: _Tally) -> None:
            raw = read(_blob_path(desc.digest))
            manifest = Manifest(image=target, digest=desc.digest, media_type=desc.media_type, raw=raw)
            if manifest.is_index:
                for entry in manifest.manifests:
                    push(entry, _child(target, entry.digest), tally)
            else:
                for blob in (d for d in (manifest.config, *manifest.layers) if d is not None):
                    if hook.blob_exists(target, blob.digest):
                        tally.present += 1
                        continue
                    member = tar.getmember(_blob_path(blob.digest))
                    data = tar.extractfile(member)
                    assert data is not None
                    hook.upload_blob(target, blob.digest, data, member.size)
                    tally.copied += 1
            hook.put_manifest(target, raw, desc.media_type)

        for entry in index.get("manifests", []):
            desc = Descriptor.from_json(entry)
            source_name = desc.annotations.get(IMAGE_NAME)
            if not source_name:
                raise SpecError(
                    "archive",
                    str(archive),
                    f"entry {desc.digest} has no {IMAGE_NAME} annotation",
                    "name the image",
                )
            source = ImageName.parse(source_name)
            tag = desc.annotations.get(REF_NAME) or source.tag
            repository = (
                f"{repository_prefix.strip('/')}/{source.repository}"
                if repository_prefix
                else source.repository
            )
            target = hook.parse_image(
                f"{hook.registry}/{repository}" + (f":{tag}" if tag else f"@{desc.digest}")
            )
            tally = _Tally()
            push(desc, target, tally)
            results.append(
                MirroredImage(
                    source_name, target.pinned(desc.digest), desc.digest, tally.copied, tally.present
                )
            )
    return results
