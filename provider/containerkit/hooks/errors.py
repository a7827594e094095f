"""Typed registry failures: each names the image, what the registry said, and the fix.

``cause`` is the stable identifier a Diagnosis carries (``ImagePull:not-found`` …), so the pre-flight
check and the operators' diagnostics speak the same words.
"""

from __future__ import annotations

from containerkit.errors import ContainerkitError


class RegistryError(ContainerkitError):
    """A registry request failed; the message names the image and the fix (never a credential)."""

    cause = "ImagePull:error"
    transient = False

    def __init__(self, image: str, problem: str, fix: str, *, status: int | None = None) -> None:
        self.image = image
        self.problem = problem
        self.fix = fix
        self.status = status
        super().__init__(f"{image}: {problem}. Fix: {fix}")


class ImageNotFound(RegistryError):
    """The repository, tag, digest or platform does not exist in the registry."""

    cause = "ImagePull:not-found"


class RegistryUnauthorized(RegistryError):
    """The registry refused the credentials (or anonymous access) for this repository."""

    cause = "ImagePull:unauthorized"


class RegistryRateLimited(RegistryError):
    """HTTP 429; ``retry_after`` is the registry's Retry-After in seconds when it sent one."""

    cause = "ImagePull:rate-limited"
    transient = True

    def __init__(self, image: str, problem: str, fix: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(image, problem, fix, status=429)


class RegistryUnreachable(RegistryError):
    """No HTTP answer: DNS, refused connection, timeout or a TLS handshake failure."""

    cause = "ImagePull:unreachable"
    transient = True
