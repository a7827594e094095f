"""A bundle of sidecars, init containers, volumes and ``base`` mounts that a factory adds to a spec.

Factories (:mod:`containerkit.kubernetes.sidecars`, :mod:`containerkit.kubernetes.init_containers`)
return a :class:`PodExtension`; :meth:`PodExtension.apply` (or ``spec.extend(...)``) merges it into a
:class:`~containerkit.spec.ContainerSpec`, which validates the result again (duplicate names, mounts
of unknown volumes ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from containerkit.spec.container import Container
from containerkit.spec.env import EnvVar
from containerkit.spec.key_refs import SecretRef
from containerkit.spec.volumes import Volume, VolumeMount

if TYPE_CHECKING:
    from containerkit.spec.container import ContainerSpec


@dataclass(frozen=True)
class PodExtension:
    """What a factory adds. ``base_*`` fields go to the task's ``base`` container.

    :param needs_fs_group: the extension relies on the pod's fsGroup to make its volumes writable.
    """

    sidecars: tuple[Container, ...] = ()
    init_containers: tuple[Container, ...] = ()
    volumes: tuple[Volume, ...] = ()
    base_mounts: tuple[VolumeMount, ...] = ()
    base_env: tuple[EnvVar, ...] = ()
    base_secrets: tuple[SecretRef, ...] = ()
    needs_fs_group: bool = False
    notes: tuple[str, ...] = field(default=(), compare=False)

    def apply(self, spec: ContainerSpec) -> ContainerSpec:
        from containerkit.errors import SpecError

        if self.needs_fs_group and spec.security.fs_group is None:
            raise SpecError(
                "security.fs_group",
                None,
                "this extension shares a volume between containers and needs fsGroup to make it writable",
                "use a profile with fs_group set (the restricted profile sets it to the image's gid)",
            )
        return spec.replace(
            sidecars=(*spec.sidecars, *self.sidecars),
            init_containers=(*spec.init_containers, *self.init_containers),
            volumes=(*spec.volumes, *self.volumes),
            mounts=(*spec.mounts, *self.base_mounts),
            env=(*spec.env, *self.base_env),
            secrets=(*spec.secrets, *self.base_secrets),
        )


def extend(spec: ContainerSpec, *extensions: PodExtension) -> ContainerSpec:
    """``spec`` with every extension applied in order."""
    for extension in extensions:
        spec = extension.apply(spec)
    return spec
