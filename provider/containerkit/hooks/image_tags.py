"""Image tags from a versioning scheme: immutable version/commit tags, moving environment tags.

A deployment pins an immutable tag (better: its digest); ``latest`` names nothing in particular, so
it is refused here, in the one place tags are made.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from containerkit.errors import SpecError
from containerkit.spec.image import TAG

SEMVER = re.compile(
    r"^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)
GIT_SHA = re.compile(r"^[0-9a-f]{7,40}$")
ENVIRONMENT = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
SHORT_SHA = 12
REFUSED_TAGS = frozenset({"latest"})


def check_tag(tag: str, *, field: str = "tag") -> str:
    """A valid Docker tag that is not ``latest``."""
    if not isinstance(tag, str) or not TAG.fullmatch(tag):
        raise SpecError(field, tag, "not a valid image tag", "use letters, digits, '_', '.', '-' (max 128)")
    if tag.lower() in REFUSED_TAGS:
        raise SpecError(
            field, tag, "'latest' is never used for deployment", "tag a version, a git SHA or an environment"
        )
    return tag


@dataclass(frozen=True)
class ImageTags:
    """The tags of one build: ``immutable`` ones identify it, ``moving`` ones point at it for now."""

    immutable: tuple[str, ...]
    moving: tuple[str, ...] = ()

    @property
    def deployment_tag(self) -> str:
        """The tag a deployment should name (and then pin by digest)."""
        return self.immutable[0]

    @property
    def all(self) -> tuple[str, ...]:
        return self.immutable + self.moving


def version_tags(
    *,
    version: str | None = None,
    git_sha: str | None = None,
    environments: Iterable[str] = (),
    minor_aliases: bool = False,
) -> ImageTags:
    """Tags for a build from a semantic version, a git commit and environment names.

    :param version: ``MAJOR.MINOR.PATCH[-pre][+build]`` (a leading ``v`` is dropped; ``+`` becomes
        ``_`` because tags cannot hold ``+``).
    :param git_sha: the commit; tagged ``sha-<first 12 hex>``.
    :param environments: moving tags such as ``staging``, ``prod``.
    :param minor_aliases: also move ``MAJOR.MINOR`` and ``MAJOR`` to this build (releases only).
    """
    immutable: list[str] = []
    moving: list[str] = []
    if version is not None:
        match = SEMVER.match(version.strip())
        if match is None:
            raise SpecError(
                "version", version, "not a semantic version", "write MAJOR.MINOR.PATCH, e.g. 1.4.2"
            )
        immutable.append(version.strip().removeprefix("v").replace("+", "_"))
        if minor_aliases and not match.group(4):
            moving += [f"{match.group(1)}.{match.group(2)}", match.group(1)]
    if git_sha is not None:
        sha = git_sha.strip().lower()
        if not GIT_SHA.match(sha):
            raise SpecError(
                "git_sha", git_sha, "not a git commit hash", "pass 7-40 hex digits (git rev-parse HEAD)"
            )
        immutable.append(f"sha-{sha[:SHORT_SHA]}")
    for env in environments:
        if not ENVIRONMENT.match(env):
            raise SpecError(
                "environments", env, "not an environment name", "use lower-case letters, digits, '-'"
            )
        moving.append(check_tag(env, field="environments"))
    if not immutable:
        raise SpecError(
            "version",
            None,
            "a build needs an immutable tag",
            "pass version= and/or git_sha= (environments move)",
        )
    for tag in immutable:
        check_tag(tag)
    return ImageTags(tuple(immutable), tuple(dict.fromkeys(moving)))
