"""Image references, parsed per the distribution reference grammar (``distribution/reference``).

::

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [domain "/"] remote-name
    domain     := host [ ":" port ]           # first component with '.', ':' or 'localhost'
    remote     := path-component [ "/" path-component ]*
    path-comp  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
    tag        := [\\w][\\w.-]{0,127}
    digest     := algorithm ":" hex           # sha256 needs 64 hex characters

An image must be pinned: a digest (preferred: immutable) or a tag other than ``latest``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from containerkit.errors import SpecError

_PATH_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
TAG = re.compile(r"[\w][\w.-]{0,127}")
# The encoded part is matched leniently here and checked per algorithm afterwards, so a bad digest gets
# a message that says what is wrong with it rather than "not a valid image reference".
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[a-zA-Z0-9=_-]{32,}"
_PATH = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_REFERENCE = re.compile(
    rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    rf"(?::(?P<tag>{TAG.pattern}))?(?:@(?P<digest>{_DIGEST}))?$"
)
_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
DEFAULT_REGISTRY = "docker.io"


_FIX = "write an image reference like 'registry.example.com/team/app:1.2.3' or 'app@sha256:<64 hex>'"


@dataclass(frozen=True)
class ImageRef:
    """A parsed, pinned image reference.

    :param repository: the path, e.g. ``apache/airflow`` (``library/`` is not added for Docker Hub).
    :param registry: the registry host[:port] as written, or ``None`` for Docker Hub.
    :param tag: the tag, or ``None`` when only a digest pins the image.
    :param digest: ``algorithm:hex``; when present it decides what runs and the tag is informative.
    """

    repository: str
    registry: str | None = None
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        text = str(self)
        if not _PATH.fullmatch(self.repository or ""):
            problem = "not a valid image repository"
            if self.repository and self.repository != self.repository.lower():
                problem += " (repository names must be lower case)"
            raise SpecError("image", text, problem, _FIX)
        if self.registry is not None and not re.fullmatch(_DOMAIN, self.registry):
            raise SpecError("image", text, "not a valid registry host[:port]", _FIX)
        if len(self._name()) > 255:
            raise SpecError("image", text, "the image name is longer than 255 characters", _FIX)
        if self.tag is not None and not TAG.fullmatch(self.tag):
            raise SpecError("image", text, "not a valid tag (letters, digits, '_', '.', '-'; <= 128)", _FIX)
        if self.digest is not None:
            _check_digest(text, self.digest)
        if self.tag is None and self.digest is None:
            raise SpecError(
                "image",
                text,
                "the image is not pinned: without a tag or digest the runtime pulls ':latest'",
                f"pin a tag or (better) a digest, e.g. '{self._name()}:1.2.3' or "
                f"'{self._name()}@sha256:<64 hex>'",
            )
        if self.tag == "latest" and self.digest is None:
            raise SpecError(
                "image",
                text,
                "':latest' is a moving tag: the same task can run different code on each retry",
                f"pin a version tag or (better) a digest, e.g. '{self._name()}:1.2.3' or "
                f"'{self._name()}@sha256:<64 hex>'",
            )

    @classmethod
    def parse(cls, reference: str) -> ImageRef:
        return parse_image(reference)

    @property
    def pinned_by_digest(self) -> bool:
        return self.digest is not None

    @property
    def domain(self) -> str:
        """The registry host the runtime contacts (Docker Hub when none is written)."""
        return self.registry or DEFAULT_REGISTRY

    def _name(self) -> str:
        return f"{self.registry}/{self.repository}" if self.registry else self.repository

    def __str__(self) -> str:
        return (
            self._name() + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")
        )


@dataclass(frozen=True)
class ReferenceParts:
    """A reference split by the grammar alone (no pinning or digest-length checks).

    ``domain`` is the registry host[:port] as written, or ``None`` when the first component is part
    of the path (the grammar's rule: a registry has '.', ':', is 'localhost' or is not lower case).
    """

    domain: str | None
    path: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}" if self.domain else self.path


def split_reference(reference: str) -> ReferenceParts | None:
    """Split ``reference`` per the distribution grammar; ``None`` when it is not a reference.

    The one implementation of the grammar: the spec adds the pinning rules on top, the registry hooks
    the Docker Hub normalisation.
    """
    match = _REFERENCE.match(reference)
    if not match:
        return None
    domain, path = match.group("domain"), match.group("path")
    if domain is not None and not (
        "." in domain or ":" in domain or domain == "localhost" or domain != domain.lower()
    ):
        path, domain = f"{domain}/{path}", None
    return ReferenceParts(domain, path, match.group("tag"), match.group("digest"))


def parse_image(reference: object, *, field: str = "image") -> ImageRef:
    """Parse and check a reference string; raise :class:`SpecError` for bad or unpinned references."""
    if isinstance(reference, ImageRef):
        return reference
    if not isinstance(reference, str) or not reference.strip():
        raise SpecError(field, reference, "an image reference must be a non-empty string", _FIX)
    if reference != reference.strip():
        raise SpecError(
            field, reference, "the image reference has leading or trailing whitespace", "strip it"
        )
    parts = split_reference(reference)
    if parts is None:
        problem = "not a valid image reference"
        name = reference.split("@")[0].rsplit(":", 1)[0]
        if name != name.lower() and "/" not in name:
            problem += " (repository names must be lower case)"
        raise SpecError(field, reference, problem, _FIX)
    try:
        return ImageRef(repository=parts.path, registry=parts.domain, tag=parts.tag, digest=parts.digest)
    except SpecError as exc:
        raise SpecError(field, reference, exc.problem, exc.fix) from None


def _check_digest(text: str, digest: str) -> None:
    if not re.fullmatch(_DIGEST, digest):
        raise SpecError(
            "image", text, "not a valid digest (algorithm:hex)", "copy the full digest from the registry"
        )
    algorithm, _, encoded = digest.partition(":")
    expected = _DIGEST_LENGTHS.get(algorithm)
    if expected is not None and (len(encoded) != expected or not re.fullmatch(r"[a-f0-9]+", encoded)):
        raise SpecError(
            "image",
            text,
            f"a {algorithm} digest is {expected} lower-case hex characters",
            "copy the full digest from the registry or `docker buildx imagetools inspect`",
        )
