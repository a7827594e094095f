"""Image references as the distribution reference grammar reads them (``host/path:tag@digest``).

The hooks need the registry host, the repository path as the API names it (``library/`` added for
Docker Hub) and the tag or digest; the name as the user wrote it is kept for the pinned result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from containerkit.errors import SpecError

DOCKER_HUB = "docker.io"
DOCKER_HUB_API_HOST = "registry-1.docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_NAME = rf"(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_PATH = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_REFERENCE = re.compile(rf"^(?P<name>{_NAME})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$")
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
        match = _REFERENCE.match(image.strip()) if isinstance(image, str) else None
        if match is None:
            raise SpecError(
                field,
                image,
                "not a valid image reference",
                "write [registry[:port]/]repository[:tag][@sha256:<64 hex>], lower-case repository",
            )
        name = match["name"]
        first, _, rest = name.partition("/")
        if rest and _is_registry_host(first):
            registry, path = first, rest
        elif _PATH.match(name):
            registry, path = DOCKER_HUB, name
        else:
            raise SpecError(field, image, "repository paths are lower-case", f"write {image.lower()!r}")
        if registry.lower() in _HUB_ALIASES:
            registry = DOCKER_HUB
            if "/" not in path:
                path = f"library/{path}"
        digest = match["digest"]
        if digest is not None and digest.startswith("sha256:") and not SHA256_DIGEST.match(digest):
            raise SpecError(
                field, image, "a sha256 digest has exactly 64 lower-case hex digits", "copy it again"
            )
        return cls(name=name, registry=registry, repository=path, tag=match["tag"], digest=digest)

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
