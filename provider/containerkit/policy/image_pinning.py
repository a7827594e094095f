"""Image references as policy judges them: pinned by digest, tagged, or floating (``latest`` / no tag).

A lenient split (lint must never raise on what it reads); the strict grammar: ``containerkit.spec.image``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImageParts:
    repository: str
    tag: str | None
    digest: str | None

    @property
    def mutable(self) -> bool:
        """True unless pinned by digest."""
        return self.digest is None

    @property
    def floating(self) -> bool:
        """No tag, or ``latest``, and no digest: a different image on every pull."""
        return self.digest is None and (self.tag is None or self.tag == "latest")


def image_parts(ref: str) -> ImageParts:
    """Split ``registry:5000/ns/name:tag@sha256:...`` without validating it."""
    ref = (ref or "").strip()
    digest = None
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    tag = None
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        tag = last.split(":", 1)[1]
        ref = ref[: len(ref) - len(tag) - 1]
    return ImageParts(ref, tag or None, digest or None)
