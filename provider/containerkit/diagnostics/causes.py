"""The one failure vocabulary: image-pull cause ids and the one classifier of a pull error.

The Kubernetes diagnoser (a pod's pull events), the Docker diagnoser (the engine's pull error) and
the registry pre-flight (:mod:`containerkit.hooks.errors`) all name a failed pull with the same
suffix and the same transient flag, so a DAG author matches on one word whichever runs the task.
The prefixes differ on purpose: ``ImagePullBackOff:`` is the pod's state, ``ImagePull:`` the
engine's pull or the pre-flight.

This module is pure (no docker-py, no kubernetes client) and sits at the bottom of diagnostics, so
hooks can read it too.
"""

from __future__ import annotations

import re
from enum import StrEnum

__all__ = [
    "ENGINE_PULL",
    "NOT_FOUND_OR_UNAUTHORIZED",
    "POD_PULL",
    "PullFailure",
    "classify_pull_error",
    "is_ambiguous_denial",
    "pull_cause",
    "pull_failure_for_status",
]

ENGINE_PULL = "ImagePull"
"""Prefix of a pull the Docker engine or the registry pre-flight made."""

POD_PULL = "ImagePullBackOff"
"""Prefix of a pull the kubelet made (the pod's waiting reason)."""


class PullFailure(StrEnum):
    """Why an image could not be pulled; the value is the cause id's suffix."""

    NOT_FOUND = "not-found"
    UNAUTHORIZED = "unauthorized"
    RATE_LIMITED = "rate-limited"
    UNREACHABLE = "unreachable"

    @property
    def transient(self) -> bool:
        """Waiting or retrying can help: the registry throttles, or the network path is down."""
        return self in (PullFailure.RATE_LIMITED, PullFailure.UNREACHABLE)


def pull_cause(failure: PullFailure, prefix: str = ENGINE_PULL) -> str:
    """``ImagePull:not-found``, ``ImagePullBackOff:rate-limited`` …: the stable id callers match on."""
    return f"{prefix}:{failure.value}"


NOT_FOUND_OR_UNAUTHORIZED = f"{ENGINE_PULL}:not-found-or-unauthorized"
"""Docker Hub's "pull access denied": the repository does not exist, or it needs credentials."""


def is_ambiguous_denial(text: str) -> bool:
    """The engine's "pull access denied", which a registry says for both a missing and a private repo."""
    return "pull access denied" in text.lower()


# What registries, the Docker engine, containerd and the kubelet say, in the order they are tried:
# a throttled or refused request often also says "not found" (registries hide private repositories).
_PATTERNS: tuple[tuple[PullFailure, re.Pattern[str]], ...] = (
    (
        PullFailure.RATE_LIMITED,
        re.compile(r"toomanyrequests|too many requests|rate limit|pull qps exceeded|\b429\b", re.I),
    ),
    (
        PullFailure.UNAUTHORIZED,
        re.compile(
            r"unauthorized|authentication required|authorization failed|pull access denied|denied: |"
            r"\b401\b|\b403\b|forbidden|no basic auth credentials|insufficient_scope|"
            r"incorrect username or password",
            re.I,
        ),
    ),
    (
        PullFailure.UNREACHABLE,
        re.compile(
            r"dial tcp|i/o timeout|timeout|context deadline exceeded|connection refused|connection reset|"
            r"no such host|network is unreachable|server misbehaving|temporarily unavailable|"
            r"service unavailable|bad gateway|gateway timeout|\b50[234]\b|tls handshake",
            re.I,
        ),
    ),
    (
        PullFailure.NOT_FOUND,
        re.compile(
            r"not found|manifest unknown|name unknown|code = NotFound|does not exist|no such image", re.I
        ),
    ),
)

_STATUS = {401: PullFailure.UNAUTHORIZED, 403: PullFailure.UNAUTHORIZED, 404: PullFailure.NOT_FOUND}


def pull_failure_for_status(status: int | None) -> PullFailure | None:
    """The failure an HTTP status from a registry means by itself (401/403, 404, 429), else None."""
    if status == 429:
        return PullFailure.RATE_LIMITED
    return _STATUS.get(status or 0)


def classify_pull_error(text: str, status: int | None = None) -> PullFailure | None:
    """The one classifier of a failed pull: the registry's or engine's message, and its HTTP status.

    Each failure is matched by its words or its status, in the order rate-limited, unauthorized,
    unreachable, not-found; ``None`` when nothing says why (the caller names it ``unknown``).
    """
    by_status = pull_failure_for_status(status)
    for failure, pattern in _PATTERNS:
        if pattern.search(text) or by_status is failure:
            return failure
    return None
