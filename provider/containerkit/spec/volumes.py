"""Volumes and the mounts that place them in a container.

Kinds: :class:`EmptyDir` (disk or memory-backed scratch), :class:`PersistentVolumeClaimVolume`,
:class:`ConfigMapVolume`, :class:`SecretVolume` and :class:`ProjectedVolume` (several ConfigMaps,
Secrets and a bound service-account token in one directory).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

from containerkit.errors import SpecError
from containerkit.spec.names import check_absolute_path, check_dns_label, check_dns_subdomain
from containerkit.spec.quantity import canonical, parse_quantity

# Secret files are readable by the owner and (through fsGroup/gid 0) the group, never by others.
SECRET_FILE_MODE = 0o440
CONFIG_FILE_MODE = 0o444


def _check_mode(field_path: str, mode: int) -> None:
    if isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode <= 0o777:
        raise SpecError(field_path, mode, "file mode must be an int between 0 and 0o777", "use e.g. 0o440")


def _check_items(field_path: str, items: Mapping[str, str]) -> None:
    for key, path in items.items():
        if not isinstance(path, str) or not path or path.startswith("/") or ".." in path.split("/"):
            raise SpecError(
                f"{field_path}.items[{key!r}]",
                path,
                "must be a relative path inside the volume",
                "use 'conf.yaml'",
            )


@dataclass(frozen=True)
class EmptyDir:
    """Scratch space that lives as long as the pod; ``memory=True`` is tmpfs and counts against memory."""

    name: str
    memory: bool = False
    size_limit: str | None = None

    def __post_init__(self) -> None:
        check_dns_label(f"volumes[{self.name}].name", self.name, what="volume name")
        if self.size_limit is not None:
            parse_quantity(f"volumes[{self.name}].size_limit", self.size_limit, kind="bytes")
            object.__setattr__(self, "size_limit", canonical(self.size_limit))
        elif self.memory:
            raise SpecError(
                f"volumes[{self.name}].size_limit",
                None,
                "a memory-backed emptyDir without a size limit can take the whole memory limit",
                "set size_limit, e.g. EmptyDir('scratch', memory=True, size_limit='64Mi')",
            )


@dataclass(frozen=True)
class PersistentVolumeClaimVolume:
    name: str
    claim: str
    read_only: bool = False

    def __post_init__(self) -> None:
        check_dns_label(f"volumes[{self.name}].name", self.name, what="volume name")
        check_dns_subdomain(f"volumes[{self.name}].claim", self.claim, what="PersistentVolumeClaim name")


@dataclass(frozen=True)
class ConfigMapVolume:
    """A ConfigMap as files; ``items`` maps keys to relative file names (default: every key)."""

    name: str
    config_map: str
    items: Mapping[str, str] = field(default_factory=dict)
    default_mode: int = CONFIG_FILE_MODE
    optional: bool = False

    def __post_init__(self) -> None:
        check_dns_label(f"volumes[{self.name}].name", self.name, what="volume name")
        check_dns_subdomain(f"volumes[{self.name}].config_map", self.config_map, what="ConfigMap name")
        _check_items(f"volumes[{self.name}]", self.items)
        _check_mode(f"volumes[{self.name}].default_mode", self.default_mode)
        object.__setattr__(self, "items", dict(self.items))


@dataclass(frozen=True)
class SecretVolume:
    """A Secret as files (mode 0440 by default); ``items`` maps keys to relative file names."""

    name: str
    secret: str
    items: Mapping[str, str] = field(default_factory=dict)
    default_mode: int = SECRET_FILE_MODE
    optional: bool = False

    def __post_init__(self) -> None:
        check_dns_label(f"volumes[{self.name}].name", self.name, what="volume name")
        check_dns_subdomain(f"volumes[{self.name}].secret", self.secret, what="Secret name")
        _check_items(f"volumes[{self.name}]", self.items)
        _check_mode(f"volumes[{self.name}].default_mode", self.default_mode)
        object.__setattr__(self, "items", dict(self.items))


@dataclass(frozen=True)
class ServiceAccountToken:
    """A bound, audience-scoped, expiring token: the safe replacement for the automounted one."""

    path: str = "token"
    audience: str | None = None
    expiration_seconds: int = 3600

    def __post_init__(self) -> None:
        if not 600 <= self.expiration_seconds <= 2**32:
            raise SpecError(
                "volumes.projected.token.expiration_seconds",
                self.expiration_seconds,
                "Kubernetes requires at least 600 seconds",
                "use 600..86400",
            )


ProjectedSource: TypeAlias = "ConfigMapVolume | SecretVolume | ServiceAccountToken"


@dataclass(frozen=True)
class ProjectedVolume:
    """Several sources in one directory; ConfigMap/Secret sources reuse their volume types (name ignored)."""

    name: str
    sources: tuple[ConfigMapVolume | SecretVolume | ServiceAccountToken, ...]
    default_mode: int = SECRET_FILE_MODE

    def __post_init__(self) -> None:
        check_dns_label(f"volumes[{self.name}].name", self.name, what="volume name")
        object.__setattr__(self, "sources", tuple(self.sources))
        if not self.sources:
            raise SpecError(
                f"volumes[{self.name}].sources", (), "a projected volume needs sources", "add one"
            )
        for source in self.sources:
            if not isinstance(source, ConfigMapVolume | SecretVolume | ServiceAccountToken):
                raise SpecError(
                    f"volumes[{self.name}].sources",
                    source,
                    "unsupported projected source",
                    "use ConfigMapVolume, SecretVolume or ServiceAccountToken",
                )
        _check_mode(f"volumes[{self.name}].default_mode", self.default_mode)


Volume: TypeAlias = EmptyDir | PersistentVolumeClaimVolume | ConfigMapVolume | SecretVolume | ProjectedVolume
VOLUME_TYPES = (EmptyDir, PersistentVolumeClaimVolume, ConfigMapVolume, SecretVolume, ProjectedVolume)


@dataclass(frozen=True)
class VolumeMount:
    """Mount volume ``volume`` at ``path``; read-only unless said otherwise (except scratch emptyDirs)."""

    volume: str
    path: str
    read_only: bool | None = None
    sub_path: str | None = None

    def __post_init__(self) -> None:
        check_dns_label(f"mounts[{self.path}].volume", self.volume, what="volume name")
        check_absolute_path(f"mounts[{self.volume}].path", self.path)
        if self.sub_path is not None and (self.sub_path.startswith("/") or ".." in self.sub_path.split("/")):
            raise SpecError(
                f"mounts[{self.volume}].sub_path", self.sub_path, "must be a relative path", "use 'dir/file'"
            )

    def is_read_only(self, volume: Volume | None) -> bool:
        """Explicit ``read_only`` wins; else emptyDirs and writable PVCs are writable, the rest read-only."""
        if self.read_only is not None:
            return self.read_only
        if isinstance(volume, EmptyDir):
            return False
        if isinstance(volume, PersistentVolumeClaimVolume):
            return volume.read_only
        return True


def coerce_mounts(value: object, field_path: str = "mounts") -> tuple[VolumeMount, ...]:
    """Accept VolumeMounts or a ``{volume_name: path}`` mapping."""
    if value is None:
        return ()
    if isinstance(value, Mapping):
        return tuple(VolumeMount(str(k), str(v)) for k, v in value.items())
    if isinstance(value, list | tuple) and all(isinstance(m, VolumeMount) for m in value):
        return tuple(value)
    raise SpecError(field_path, value, "mounts must be VolumeMounts", "use [VolumeMount('data', '/data')]")
