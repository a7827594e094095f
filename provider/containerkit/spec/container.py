"""The container task description: :class:`ContainerSpec` (the task's ``base`` container and its pod)
and :class:`Container` (a sidecar or init container inside that pod).

Both are frozen and validated on construction; convenient input forms (``image="repo:tag"``,
``resources="m"``, ``env={...}``, ``security="baseline"``) are normalised to the typed forms, so a
renderer only ever sees checked, typed data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from containerkit.errors import SpecError
from containerkit.spec.env import EnvVar, coerce_env
from containerkit.spec.image import ImageRef, parse_image
from containerkit.spec.key_refs import ConfigMapRef, SecretRef
from containerkit.spec.logs import LogRotation
from containerkit.spec.names import (
    check_absolute_path,
    check_annotations,
    check_dns_label,
    check_dns_subdomain,
    check_labels,
    check_unique,
)
from containerkit.spec.probes import Probes
from containerkit.spec.resources import SIDECAR_PRESET, Resources
from containerkit.spec.scheduling import Scheduling
from containerkit.spec.security import TMP_DIR, SecurityProfile
from containerkit.spec.volumes import VOLUME_TYPES, EmptyDir, Volume, VolumeMount, coerce_mounts

BASE_CONTAINER = "base"
TMP_VOLUME = "tmp"
PullPolicy = Literal["IfNotPresent", "Always", "Never"]


def _coerce_argv(field_path: str, value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise SpecError(
            field_path,
            value,
            "a command is a list of arguments, not one string (it would run as one program name)",
            f"use {value.split()!r}, or ['sh', '-c', {value!r}] for shell syntax",
        )
    if not isinstance(value, Iterable) or not all(isinstance(a, str) for a in value):
        raise SpecError(field_path, value, "must be a list of strings", "use e.g. ['python', '-m', 'job']")
    return tuple(value)


def _coerce_tuple(field_path: str, value: object, types: tuple[type, ...], example: str) -> tuple[Any, ...]:
    if value is None:
        return ()
    if isinstance(value, types):
        value = (value,)
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise SpecError(field_path, value, "must be a list", f"use e.g. [{example}]")
    items = tuple(value)
    for item in items:
        if not isinstance(item, types):
            raise SpecError(
                field_path, item, f"not a {' or '.join(t.__name__ for t in types)}", f"use {example}"
            )
    return items


def derived_volume_name(prefix: str, name: str) -> str:
    """A stable DNS-label volume name for a Secret/ConfigMap delivered as files.

    Names that must be changed to fit ('.' or > 63 characters) get a hash suffix, so ``a.b`` and ``a-b``
    never share a volume.
    """
    candidate = f"{prefix}-{name}"
    if len(candidate) <= 63 and "." not in name:
        return candidate
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{candidate.replace('.', '-')[: 63 - 11].rstrip('-')}-{digest}"


@dataclass(frozen=True)
class Container:
    """A sidecar or init container in a task's pod. It runs with the task's security profile.

    ``security`` overrides the pod's profile for this container only (e.g. a root ``chown`` init container
    where fsGroup cannot work); a weaker override needs a ``reason``, and policy reports it.

    In :attr:`ContainerSpec.sidecars` it renders as a native sidecar (an init container with
    ``restartPolicy: Always``, Kubernetes >= 1.29): it starts before and stops after the ``base``
    container, so the pod completes when the task does. Sizing defaults to the ``xs`` preset.
    """

    name: str
    image: ImageRef | str
    command: Sequence[str] | None = None
    args: Sequence[str] = ()
    env: Any = ()
    secrets: Sequence[SecretRef] = ()
    config_maps: Sequence[ConfigMapRef] = ()
    mounts: Any = ()
    resources: Any = SIDECAR_PRESET
    probes: Probes = field(default_factory=Probes)
    ports: Sequence[int] = ()
    working_dir: str | None = None
    security: SecurityProfile | None = None

    def __post_init__(self) -> None:
        _normalise_container(self, self.name)
        if self.security is not None:
            if not isinstance(self.security, SecurityProfile):
                raise SpecError(
                    f"containers[{self.name}].security",
                    self.security,
                    "not a SecurityProfile",
                    "pass one or None",
                )
            if self.security.level != "restricted" and not (self.security.reason or "").strip():
                raise SpecError(
                    f"containers[{self.name}].security.reason",
                    self.security.reason,
                    "a container that runs below the pod's restricted profile needs a reason",
                    "pass a profile with reason='why this container needs it', or drop the override",
                )
        if self.name == BASE_CONTAINER:
            raise SpecError(
                f"containers[{self.name}].name",
                self.name,
                "'base' is the task container's name",
                "pick another",
            )


def _normalise_container(obj: Container | ContainerSpec, name: str) -> None:
    prefix = f"containers[{name}]" if isinstance(obj, Container) else "spec"
    check_dns_label(f"{prefix}.name" if isinstance(obj, Container) else "name", name, what="container name")
    set_ = object.__setattr__
    set_(
        obj,
        "image",
        parse_image(obj.image, field=f"{prefix}.image" if isinstance(obj, Container) else "image"),
    )
    set_(obj, "command", _coerce_argv(_path(obj, "command"), obj.command))
    set_(obj, "args", _coerce_argv(_path(obj, "args"), obj.args) or ())
    set_(obj, "env", coerce_env(obj.env))
    set_(obj, "secrets", _coerce_tuple(_path(obj, "secrets"), obj.secrets, (SecretRef,), "SecretRef(...)"))
    set_(
        obj,
        "config_maps",
        _coerce_tuple(_path(obj, "config_maps"), obj.config_maps, (ConfigMapRef,), "ConfigMapRef"),
    )
    set_(obj, "mounts", coerce_mounts(obj.mounts, _path(obj, "mounts")))
    set_(obj, "resources", Resources.coerce(obj.resources))
    if not isinstance(obj.probes, Probes):
        raise SpecError(
            _path(obj, "probes"), obj.probes, "not a Probes", "use Probes(readiness=Probe.http(...))"
        )
    if obj.working_dir is not None:
        check_absolute_path(_path(obj, "working_dir"), obj.working_dir)
    ports = tuple(obj.ports)
    for port in ports:
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise SpecError(_path(obj, "ports"), port, "a port must be 1..65535", "use e.g. 8080")
    set_(obj, "ports", ports)
    refs = [
        (f"{_path(obj, attr)}[{i}]", r)
        for attr in ("secrets", "config_maps")
        for i, r in enumerate(getattr(obj, attr))
    ]
    env_names = [(f"{_path(obj, 'env')}[{i}].name", e.name) for i, e in enumerate(obj.env)]
    env_names += [(f"{label}.env", r.env) for label, r in refs if r.env]
    check_unique(env_names, what="environment variable")
    file_paths = [(f"{label}.path", r.path) for label, r in refs if r.path]
    check_unique(file_paths, what="file path")
    mounts = [(f"{_path(obj, 'mounts')}[{i}].path", m.path) for i, m in enumerate(obj.mounts)]
    check_unique(mounts + file_paths, what="mount path")


def references(c: Container | ContainerSpec) -> list[SecretRef | ConfigMapRef]:
    """The container's Secret and ConfigMap references, in spec order."""
    refs: list[SecretRef | ConfigMapRef] = [*c.secrets, *c.config_maps]
    return refs


def _path(obj: Container | ContainerSpec, attr: str) -> str:
    return f"containers[{obj.name}].{attr}" if isinstance(obj, Container) else attr


@dataclass(frozen=True)
class ContainerSpec:
    """One containerized task: its ``base`` container and everything about the pod it runs in.

    Only ``image`` is required; sizing comes from :data:`~containerkit.spec.RESOURCE_PRESETS` (``"s"``)
    and hardening from :class:`~containerkit.spec.SecurityProfile` (``restricted``).

    :param image: a pinned reference (``"repo:1.2"`` or ``"repo@sha256:..."``) or an :class:`ImageRef`.
    :param command: entrypoint override, a list of strings; ``args``: arguments.
    :param env: literal non-secret variables: ``{"NAME": "value"}`` or a list of :class:`EnvVar`.
    :param secrets: :class:`SecretRef` keys as env vars or files.
    :param config_maps: :class:`ConfigMapRef` keys as env vars or files.
    :param volumes: pod volumes; ``mounts``: where the ``base`` container sees them.
    :param resources: a preset name (``"xs"`` .. ``"xl"``), a mapping of overrides or :class:`Resources`.
    :param security: ``"restricted"`` (default), ``"baseline"`` or a :class:`SecurityProfile`.
    :param probes: liveness/readiness/startup of the ``base`` container (for service-like tasks).
    :param sidecars: native sidecar :class:`Container` s; ``init_containers`` run to completion first.
    :param scheduling: node selection, affinity, tolerations, spread, priority and runtime class.
    :param service_account: the pod's ServiceAccount (its token is still not mounted unless the profile says).
    :param labels: pod labels; ``annotations``: pod annotations.
    :param termination_grace_seconds: SIGTERM-to-SIGKILL time; ``active_deadline_seconds``: pod time limit.
    :param image_pull_policy: Kubernetes pull policy; default ``IfNotPresent`` for a digest, ``Always`` for
        a tag (tags can move). ``image_pull_secrets``: registry Secret names.
    :param init_process: Docker: run a tiny init as PID 1 that forwards signals and reaps zombies.
    :param log_rotation: Docker: json-file log rotation (Kubernetes: the kubelet rotates).
    """

    image: ImageRef | str
    command: Sequence[str] | None = None
    args: Sequence[str] = ()
    working_dir: str | None = None
    env: Any = ()
    secrets: Sequence[SecretRef] = ()
    config_maps: Sequence[ConfigMapRef] = ()
    volumes: Sequence[Volume] = ()
    mounts: Any = ()
    resources: Any = None
    security: Any = None
    probes: Probes = field(default_factory=Probes)
    ports: Sequence[int] = ()
    sidecars: Sequence[Container] = ()
    init_containers: Sequence[Container] = ()
    scheduling: Scheduling = field(default_factory=Scheduling)
    service_account: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    termination_grace_seconds: int | None = None
    active_deadline_seconds: int | None = None
    image_pull_policy: PullPolicy | None = None
    image_pull_secrets: Sequence[str] = ()
    init_process: bool = True
    log_rotation: LogRotation = field(default_factory=LogRotation)

    name = BASE_CONTAINER

    def __post_init__(self) -> None:
        _normalise_container(self, BASE_CONTAINER)
        set_ = object.__setattr__
        set_(self, "security", SecurityProfile.coerce(self.security))
        set_(self, "volumes", _coerce_tuple("volumes", self.volumes, VOLUME_TYPES, "EmptyDir('scratch')"))
        set_(self, "sidecars", _coerce_tuple("sidecars", self.sidecars, (Container,), "Container(...)"))
        set_(
            self,
            "init_containers",
            _coerce_tuple("init_containers", self.init_containers, (Container,), "Container"),
        )
        set_(self, "image_pull_secrets", tuple(self.image_pull_secrets))
        if not isinstance(self.scheduling, Scheduling):
            raise SpecError(
                "scheduling", self.scheduling, "not a Scheduling", "use Scheduling(node_selector={...})"
            )
        set_(self, "labels", check_labels("labels", self.labels))
        set_(self, "annotations", check_annotations("annotations", self.annotations))
        if self.service_account is not None:
            check_dns_subdomain("service_account", self.service_account, what="ServiceAccount name")
        for secret in self.image_pull_secrets:
            check_dns_subdomain("image_pull_secrets", secret, what="Secret name")
        if not isinstance(self.log_rotation, LogRotation):
            raise SpecError(
                "log_rotation", self.log_rotation, "not a LogRotation", "use LogRotation('10m', 3)"
            )
        if self.image_pull_policy is None:
            # A digest never changes, so the node's copy is the image; a tag can move, so ask the registry.
            pinned = isinstance(self.image, ImageRef) and self.image.pinned_by_digest
            set_(self, "image_pull_policy", "IfNotPresent" if pinned else "Always")
        if self.image_pull_policy not in ("IfNotPresent", "Always", "Never"):
            raise SpecError(
                "image_pull_policy", self.image_pull_policy, "unknown pull policy", "use IfNotPresent"
            )
        for name in ("termination_grace_seconds", "active_deadline_seconds"):
            value = getattr(self, name)
            minimum = 0 if name == "termination_grace_seconds" else 1
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < minimum
            ):
                raise SpecError(name, value, f"must be a whole number of seconds >= {minimum}", "use e.g. 60")
        self._check_pod()

    def _check_pod(self) -> None:
        check_unique(
            [
                ("the task container", BASE_CONTAINER),
                *((f"sidecars[{i}].name", c.name) for i, c in enumerate(self.sidecars)),
                *((f"init_containers[{i}].name", c.name) for i, c in enumerate(self.init_containers)),
            ],
            what="container name",
        )
        reserved = [v for v, _ in self.file_volumes()]
        if self.security.writable_tmp:
            reserved.append(TMP_VOLUME)
        for volume in self.volumes:
            if volume.name in reserved:
                raise SpecError(
                    f"volumes[{volume.name}].name",
                    volume.name,
                    "reserved for a volume containerkit adds (writable /tmp, Secret/ConfigMap files)",
                    "rename the volume",
                )
        check_unique([(f"volumes[{i}].name", v.name) for i, v in enumerate(self.volumes)], what="volume name")
        known = {v.name for v in self.volumes}
        for container in self.containers():
            for mount in container.mounts:
                if mount.volume not in known:
                    raise SpecError(
                        f"{_path(container, 'mounts')}[{mount.path}].volume",
                        mount.volume,
                        "no volume with this name in the spec",
                        f"add it to volumes (known: {', '.join(sorted(known)) or 'none'})",
                    )
                if self.security.writable_tmp and mount.path == TMP_DIR:
                    raise SpecError(
                        f"{_path(container, 'mounts')}[/tmp]",
                        mount.volume,
                        "the security profile already mounts a writable /tmp",
                        "mount elsewhere or set the profile's tmp_size_limit=None",
                    )

    def containers(self) -> list[ContainerSpec | Container]:
        """``base``, then the sidecars, then the init containers."""
        out: list[ContainerSpec | Container] = [self, *self.sidecars, *self.init_containers]
        return out

    def volume(self, name: str) -> Volume | None:
        return next((v for v in self.volumes if v.name == name), None)

    def file_volumes(self) -> list[tuple[str, SecretRef | ConfigMapRef]]:
        """(volume name, reference) for every Secret/ConfigMap key delivered as a file, in spec order."""
        out: list[tuple[str, SecretRef | ConfigMapRef]] = []
        for container in self.containers():
            for ref in references(container):
                if ref.path is None:
                    continue
                if isinstance(ref, SecretRef):
                    out.append((derived_volume_name("secret", ref.secret), ref))
                else:
                    out.append((derived_volume_name("configmap", ref.config_map), ref))
        return out

    def extend(self, *extensions: Any) -> ContainerSpec:
        """A copy with :class:`~containerkit.spec.extension.PodExtension` s (sidecar factories) applied."""
        from containerkit.spec.extension import extend

        return extend(self, *extensions)

    def replace(self, **changes: Any) -> ContainerSpec:
        """A copy with ``changes`` applied and validated again."""
        return replace(self, **changes)

    @property
    def tmp_volume(self) -> EmptyDir | None:
        """The writable /tmp the profile asks for (memory-backed only in Docker, where it is a tmpfs)."""
        if not self.security.writable_tmp:
            return None
        return EmptyDir(TMP_VOLUME, size_limit=self.security.tmp_size_limit)


__all__ = ["BASE_CONTAINER", "Container", "ContainerSpec", "EnvVar", "VolumeMount"]
