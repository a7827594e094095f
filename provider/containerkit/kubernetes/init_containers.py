"""Init-container factories: wait for a dependency, run a migration, fix volume permissions.

Each returns a :class:`~containerkit.spec.PodExtension`. Waits are bounded: the init container exits
non-zero with a message naming the dependency after ``timeout_seconds``, so a missing database fails
the task in minutes with a clear reason instead of hanging until the task timeout.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from containerkit.errors import SpecError
from containerkit.kubernetes.sidecars import HELPER_IMAGE
from containerkit.spec.container import Container
from containerkit.spec.extension import PodExtension
from containerkit.spec.key_refs import SecretRef
from containerkit.spec.names import check_absolute_path, check_dns_label
from containerkit.spec.resources import SIDECAR_PRESET
from containerkit.spec.security import SecurityProfile
from containerkit.spec.volumes import VolumeMount

_WAIT_SCRIPT = """\
import os, socket, sys, time, urllib.request
kind, target = os.environ["CK_KIND"], os.environ["CK_TARGET"]
timeout = float(os.environ["CK_TIMEOUT"])
deadline = time.monotonic() + timeout
last = "no attempt"
while time.monotonic() < deadline:
    try:
        if kind == "tcp":
            host, _, port = target.rpartition(":")
            socket.create_connection((host.strip("[]"), int(port)), timeout=2).close()
        else:
            with urllib.request.urlopen(target, timeout=2) as response:
                if response.status >= 400:
                    raise OSError(f"HTTP {response.status}")
        print(f"{target} is ready")
        sys.exit(0)
    except Exception as exc:
        last = f"{type(exc).__name__}: {exc}"
    time.sleep(1)
sys.exit(f"{target} not ready after {timeout:g}s (last error: {last})")
"""


def _check_timeout(timeout_seconds: object) -> float:
    if (
        isinstance(timeout_seconds, bool)
        or not isinstance(timeout_seconds, int | float)
        or not 1 <= timeout_seconds <= 3600
    ):
        raise SpecError("timeout_seconds", timeout_seconds, "must be 1..3600 seconds", "use e.g. 120")
    return float(timeout_seconds)


def _wait(
    name: str, kind: str, target: str, timeout_seconds: float, image: str, resources: Any
) -> PodExtension:
    check_dns_label("name", name, what="container name")
    container = Container(
        name,
        image,
        command=["python", "-c", _WAIT_SCRIPT],
        env={"CK_KIND": kind, "CK_TARGET": target, "CK_TIMEOUT": f"{timeout_seconds:g}"},
        resources=resources,
    )
    return PodExtension(init_containers=(container,))


def wait_for_tcp(
    host: str,
    port: int,
    *,
    timeout_seconds: float = 120,
    name: str | None = None,
    image: str = HELPER_IMAGE,
    resources: Any = SIDECAR_PRESET,
) -> PodExtension:
    """Hold the task until ``host:port`` accepts a TCP connection, at most ``timeout_seconds``."""
    if not host or not isinstance(host, str) or any(c.isspace() for c in host):
        raise SpecError("wait_for_tcp.host", host, "not a host name", "use e.g. 'postgres.db.svc'")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise SpecError("wait_for_tcp.port", port, "a port must be 1..65535", "use e.g. 5432")
    default = f"wait-for-{host.split('.')[0].lower()}-{port}"[:63].strip("-")
    return _wait(name or default, "tcp", f"{host}:{port}", _check_timeout(timeout_seconds), image, resources)


def wait_for_http(
    url: str,
    *,
    timeout_seconds: float = 120,
    name: str | None = None,
    image: str = HELPER_IMAGE,
    resources: Any = SIDECAR_PRESET,
) -> PodExtension:
    """Hold the task until ``url`` answers with a status below 400, at most ``timeout_seconds``."""
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise SpecError(
            "wait_for_http.url", url, "not an http(s) URL", "use e.g. 'http://api.svc:8080/healthz'"
        )
    if parts.password:
        raise SpecError(
            "wait_for_http.url", "<redacted>", "the URL holds a password", "use an unauthenticated health URL"
        )
    default = f"wait-for-{parts.hostname.split('.')[0].lower()}"[:63].strip("-")
    return _wait(name or default, "http", url, _check_timeout(timeout_seconds), image, resources)


def migration_runner(
    image: str,
    command: Sequence[str],
    *,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    secrets: Sequence[SecretRef] = (),
    name: str = "migrate",
    resources: Any = "s",
) -> PodExtension:
    """Run a schema migration (``alembic upgrade head``, ``flyway migrate``) to completion before ``base``.

    A failing migration fails the pod before the task starts; its exit code and log tail are in the
    pod status the diagnostics read.
    """
    container = Container(
        name, image, command=command, args=args, env=env or {}, secrets=secrets, resources=resources
    )
    return PodExtension(init_containers=(container,))


def volume_permissions(
    volume: str,
    path: str,
    *,
    uid: int,
    gid: int,
    fs_group_works: bool = True,
    reason: str | None = None,
    image: str = HELPER_IMAGE,
    resources: Any = SIDECAR_PRESET,
) -> PodExtension:
    """Make ``volume`` writable for ``uid:gid``: fsGroup first, an init container only where fsGroup fails.

    With ``fs_group_works`` (emptyDir, most block-storage PVCs, CSI drivers with ``fsGroupPolicy: File``)
    nothing is added except the requirement that the pod sets fsGroup: the kubelet does the chown.
    Otherwise (hostPath, NFS without fsGroup support) an init container runs ``chown`` as root with only
    CHOWN and FOWNER: that container is PSS *baseline*, not restricted, so it needs ``reason`` and the
    restricted rules report it.
    """
    check_dns_label("volume_permissions.volume", volume, what="volume name")
    check_absolute_path("volume_permissions.path", path)
    for label, value in (("uid", uid), ("gid", gid)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SpecError(
                f"volume_permissions.{label}", value, "must be a numeric id >= 0", "use e.g. 50000"
            )
    if fs_group_works:
        return PodExtension(needs_fs_group=True)
    if not (reason or "").strip():
        raise SpecError(
            "volume_permissions.reason",
            reason,
            "a root chown init container weakens the pod to PSS baseline and needs a reason",
            "say why fsGroup cannot work for this volume (e.g. 'NFS export without fsGroup support')",
        )
    profile = SecurityProfile.baseline(
        run_as_user=0,
        run_as_group=0,
        read_only_root_filesystem=True,
        add_capabilities=("CHOWN", "FOWNER"),
        reason=reason,
    )
    script = f"chown -R {uid}:{gid} {shlex.quote(path)} && chmod -R u+rwX,g+rwX {shlex.quote(path)}"
    container = Container(
        "volume-permissions",
        image,
        command=["sh", "-c", script],
        mounts=[VolumeMount(volume, path, read_only=False)],
        resources=resources,
        security=profile,
    )
    return PodExtension(init_containers=(container,))
