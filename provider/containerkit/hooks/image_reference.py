"""Image references as the distribution reference grammar reads them (``host/path:tag@digest``).

The hooks need the registry host, the repository path as the API names it (``library/`` added for
Docker Hub) and the tag or digest; the name as the user wrote it is kept for the pinned result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from containerkit.errors import SpecError
from containerkit.spec.image import split_reference

DOCKER_HUB = "docker.io"
DOCKER_HUB_API_HOST = "registry-1.docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}

SHA256_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def _is_registry_host(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost" or component.startswith("[")


@dataclass(frozen=True)
class ImageName:
    """A parsed image reference.

    ``name`` is the part before ``:tag``/``@digest`` as written; ``registry`` is the host[:port]
    (``docker.io`` when none is written); ``repository`` is the API path.
    """

    name: str
    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, image: str, *, field: str = "image") -> ImageName:
        parts = split_reference(image.strip()) if isinstance(image, str) else None
        if parts is None:
            raise SpecError(
                field,
                image,
                "not a valid image reference",
                "write [registry[:port]/]repository[:tag][@sha256:<64 hex>], lower-case repository",
            )
        if parts.domain is not None and not _is_registry_host(parts.domain):
            # Upper case made the grammar read the first component as a host: it was a path.
            raise SpecError(field, image, "repository paths are lower-case", f"write {image.lower()!r}")
        name = parts.name
        registry, path = parts.domain or DOCKER_HUB, parts.path
        if registry.lower() in _HUB_ALIASES:
            registry = DOCKER_HUB
            if "/" not in path:
                path = f"library/{path}"
        digest = parts.digest
        if digest is not None and digest.startswith("sha256:") and not SHA256_DIGEST.match(digest):
            raise SpecError(
                field, image, "a sha256 digest has exactly 64 lower-case hex digits", "copy it again"
            )
        return cls(name=name, registry=registry, repository=path, tag=parts.tag, digest=digest)

    @property
    def reference(self) -> str:
        """What the manifest endpoint is asked for: the digest when pinned, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def api_host(self) -> str:
        return DOCKER_HUB_API_HOST if self.registry == DOCKER_HUB else self.registry

    def pinned(self, digest: str) -> str:
        return f"{self.name}@{digest}"

    def with_tag(self, tag: str) -> str:
        return f"{self.name}:{tag}"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def is_loopback_host(registry: str) -> bool:
    """Docker trusts plain HTTP to these registries by default; so does the anonymous hook."""
    host = registry.rsplit(":", 1)[0] if not registry.startswith("[") else registry.split("]")[0] + "]"
    return host in {"localhost", "[::1]"} or host.startswith("127.")
