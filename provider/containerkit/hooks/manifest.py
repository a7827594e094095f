"""What a registry serves, as values: platforms, descriptors, manifests and image configs.

Shared by the RegistryHook, the mirror and the pre-flight check; pure (no HTTP).
"""

from __future__ import annotations

import hashlib
import json
import platform as host_platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from containerkit.errors import SpecError
from containerkit.hooks.image_reference import ImageName

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_MEDIA_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
IMAGE_MEDIA_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
MANIFEST_ACCEPT = ", ".join([OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST])


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Platform:
    """``os/architecture[/variant]`` as in ``docker run --platform``."""

    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        parts = text.strip().lower().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise SpecError(
                "platform", text, "not os/arch[/variant]", "write e.g. linux/amd64 or linux/arm64/v8"
            )
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Platform:
        return cls(str(data.get("os", "")), str(data.get("architecture", "")), data.get("variant") or None)

    def matches(self, other: Platform) -> bool:
        """``self`` is the wanted platform; an unset variant accepts any (arm64's v8 is implied)."""
        if (self.os, self.architecture) != (other.os, other.architecture):
            return False
        if self.variant is None:
            return True
        default_variant = "v8" if self.architecture == "arm64" else None
        return self.variant == (other.variant or default_variant)

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


def default_platform() -> Platform:
    """The platform an engine on this machine would pull (linux, machine architecture)."""
    machine = host_platform.machine().lower()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)
    return Platform("linux", arch, "v7" if arch == "arm" else None)


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor (a manifest entry, the config, or a layer)."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Descriptor:
        plat = data.get("platform")
        return cls(
            media_type=str(data.get("mediaType", "")),
            digest=str(data["digest"]),
            size=int(data.get("size", 0)),
            platform=Platform.from_json(plat) if isinstance(plat, Mapping) else None,
            annotations=dict(data.get("annotations") or {}),
        )


@dataclass(frozen=True)
class Manifest:
    """A manifest exactly as the registry served it (``raw`` bytes hash to ``digest``)."""

    image: ImageName
    digest: str
    media_type: str
    raw: bytes = field(repr=False)

    @cached_property
    def document(self) -> dict[str, Any]:
        doc = json.loads(self.raw)
        if not isinstance(doc, dict):
            raise ValueError("manifest is not a JSON object")
        return doc

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_MEDIA_TYPES

    @property
    def manifests(self) -> tuple[Descriptor, ...]:
        """The per-platform entries of an index (empty for an image manifest)."""
        return tuple(Descriptor.from_json(d) for d in self.document.get("manifests", []))

    @property
    def platforms(self) -> tuple[Platform, ...]:
        return tuple(d.platform for d in self.manifests if d.platform is not None)

    @property
    def config(self) -> Descriptor | None:
        cfg = self.document.get("config")
        return Descriptor.from_json(cfg) if isinstance(cfg, Mapping) else None

    @property
    def layers(self) -> tuple[Descriptor, ...]:
        return tuple(Descriptor.from_json(d) for d in self.document.get("layers", []))

    @property
    def compressed_size(self) -> int:
        """Bytes a pull downloads for the layers (the sum of the layer descriptors' sizes)."""
        return sum(layer.size for layer in self.layers)

    @property
    def pinned(self) -> str:
        return self.image.pinned(self.digest)


@dataclass(frozen=True)
class ImageConfig:
    """What the image config blob says about how the container will run.

    ``Env`` is deliberately not exposed: images leak credentials there, and hooks' results end up in
    logs and XCom.
    """

    digest: str
    os: str
    architecture: str
    user: str
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    working_dir: str
    labels: Mapping[str, str]
    exposed_ports: tuple[str, ...]
    healthcheck: Mapping[str, Any] | None
    created: str | None

    @classmethod
    def from_blob(cls, digest: str, blob: Mapping[str, Any]) -> ImageConfig:
        cfg: Mapping[str, Any] = blob.get("config") or {}
        health = cfg.get("Healthcheck")
        return cls(
            digest=digest,
            os=str(blob.get("os", "")),
            architecture=str(blob.get("architecture", "")),
            user=str(cfg.get("User") or ""),
            entrypoint=tuple(cfg.get("Entrypoint") or ()),
            cmd=tuple(cfg.get("Cmd") or ()),
            working_dir=str(cfg.get("WorkingDir") or ""),
            labels=dict(cfg.get("Labels") or {}),
            exposed_ports=tuple(sorted(cfg.get("ExposedPorts") or {})),
            healthcheck=dict(health) if isinstance(health, Mapping) and health.get("Test") else None,
            created=blob.get("created"),
        )

    @property
    def runs_as_root(self) -> bool:
        """No user, ``root``, uid 0 (with or without a group) all mean root."""
        user = self.user.split(":", 1)[0]
        return user in ("", "root", "0")

    @property
    def platform(self) -> Platform:
        return Platform(self.os, self.architecture)
