"""Pre-flight for container operators: resolve an image to ``repo@sha256:...`` or fail fast.

A pod that cannot pull waits in ImagePullBackOff until a timeout; a container run with a moving tag
is not reproducible. Resolving the digest before launch fixes both: the task fails in a second with
a diagnosis, and it runs exactly the image that was checked.
"""

from __future__ import annotations

from containerkit.diagnostics.model import ContainerTaskFailed, Diagnosis
from containerkit.hooks.errors import RegistryError, RegistryRateLimited
from containerkit.hooks.image_reference import ImageName


def pin_image(image: str, registry_conn_id: str | None, *, platform: str | None = None) -> str:
    """Return ``<name>@sha256:...`` for ``image`` after checking it can be pulled.

    :param image: an image reference; a tag is resolved, a digest is verified to exist.
    :param registry_conn_id: a ``containerkit_registry`` connection, or None for anonymous access to
        the registry the image names. A reference without a registry host means the connection's.
    :param platform: ``os/arch[/variant]``: pin that platform's manifest instead of the multi-arch
        index (default: the index digest, so each node still picks its own platform).
    :raises ContainerTaskFailed: with cause ``ImagePull:not-found``, ``ImagePull:unauthorized``,
        ``ImagePull:rate-limited`` or ``ImagePull:unreachable``.
    :raises containerkit.errors.SpecError: for a malformed reference or platform.
    """
    from containerkit.hooks.registry import RegistryHook

    hook = RegistryHook(registry_conn_id) if registry_conn_id else RegistryHook(None)
    name = hook.parse_image(image)
    try:
        digest = hook.check_pullable(name, platform=platform)
    except RegistryError as exc:
        raise ContainerTaskFailed(_diagnosis(exc, name, registry_conn_id), where="pin_image") from None
    pinned = name.pinned(digest)
    hook.log.info("Pinned image %s to %s", image, pinned)
    return pinned


def preflight_image(image: str, *, pin_image_digest: bool, registry_conn_id: str | None, task_id: str) -> str:
    """The container operators' pre-flight step, shared so both behave the same way.

    Called at run time with the rendered image, before anything is pulled or created: with
    ``pin_image_digest`` off the image is returned unchanged; on, it is :func:`pin_image`'d and a
    failure is raised as the task's own :class:`ContainerTaskFailed` (named after ``task_id``).

    :param image: the rendered image reference the task would launch.
    :param pin_image_digest: the operator's ``pin_image_digest`` argument.
    :param registry_conn_id: the operator's ``registry_conn_id`` argument.
    :param task_id: the task, named in the error.
    :raises ContainerTaskFailed: the diagnosis of :func:`pin_image`.
    """
    if not pin_image_digest:
        return image
    try:
        return pin_image(image, registry_conn_id)
    except ContainerTaskFailed as exc:
        raise ContainerTaskFailed(exc.diagnosis, where=f"task {task_id} (pre-flight)") from None


def _diagnosis(exc: RegistryError, name: ImageName, registry_conn_id: str | None) -> Diagnosis:
    details = {"image": str(name), "registry": name.registry, "registry_conn_id": registry_conn_id or ""}
    if exc.status is not None:
        details["http_status"] = str(exc.status)
    if isinstance(exc, RegistryRateLimited) and exc.retry_after is not None:
        details["retry_after_seconds"] = f"{exc.retry_after:.0f}"
    return Diagnosis(
        cause=exc.cause,
        summary=f"image {name} cannot be pulled: {exc.problem}",
        fix=exc.fix,
        evidence=(str(exc),),
        transient=exc.transient,
        details=details,
    )
