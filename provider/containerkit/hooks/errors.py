"""Typed registry failures: each names the image, what the registry said, and the fix.

``cause`` is the stable identifier a Diagnosis carries (``ImagePull:not-found`` …), taken from the
one vocabulary in :mod:`containerkit.diagnostics.causes`, so the pre-flight check and the operators'
diagnostics speak the same words.
"""

from __future__ import annotations

from containerkit.diagnostics.causes import ENGINE_PULL, PullFailure, pull_cause
from containerkit.errors import ContainerkitError


class RegistryError(ContainerkitError):
    """A registry request failed; the message names the image and the fix (never a credential)."""

    failure: PullFailure | None = None
    cause = f"{ENGINE_PULL}:error"
    transient = False

    def __init__(self, image: str, problem: str, fix: str, *, status: int | None = None) -> None:
        self.image = image
        self.problem = problem
        self.fix = fix
        self.status = status
        super().__init__(f"{image}: {problem}. Fix: {fix}")


class ImageNotFound(RegistryError):
    """The repository, tag, digest or platform does not exist in the registry."""

    failure = PullFailure.NOT_FOUND
    cause = pull_cause(failure)
    transient = failure.transient


class RegistryUnauthorized(RegistryError):
    """The registry refused the credentials (or anonymous access) for this repository."""

    failure = PullFailure.UNAUTHORIZED
    cause = pull_cause(failure)
    transient = failure.transient


class RegistryRateLimited(RegistryError):
    """HTTP 429; ``retry_after`` is the registry's Retry-After in seconds when it sent one."""

    failure = PullFailure.RATE_LIMITED
    cause = pull_cause(failure)
    transient = failure.transient

    def __init__(self, image: str, problem: str, fix: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(image, problem, fix, status=429)


class RegistryUnreachable(RegistryError):
    """No HTTP answer: DNS, refused connection, timeout or a TLS handshake failure."""

    failure = PullFailure.UNREACHABLE
    cause = pull_cause(failure)
    transient = failure.transient


PULL_ERRORS: dict[PullFailure, type[RegistryError]] = {
    PullFailure.NOT_FOUND: ImageNotFound,
    PullFailure.UNAUTHORIZED: RegistryUnauthorized,
    PullFailure.RATE_LIMITED: RegistryRateLimited,
    PullFailure.UNREACHABLE: RegistryUnreachable,
}
"""The registry error raised for each pull failure of the shared vocabulary."""
