"""Resource requests and limits: named presets (the one place sizing defaults live) and overrides.

Memory limit equals memory request in every preset, so the OOM limit is the number the scheduler
reserved and a task is never OOM-killed for a neighbour's burst. CPU may burst to its limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from containerkit.errors import SpecError
from containerkit.spec.quantity import canonical, parse_quantity

GPU_RESOURCE = "nvidia.com/gpu"
DEFAULT_PRESET = "s"
# Docker refuses memory limits below 6 MiB; below that no real process starts anyway.
_MIN_MEMORY = Decimal(6 * 1024 * 1024)
_KEYS = ("cpu", "memory", "ephemeral-storage")
_FIELD_KEYS = {"cpu": "cpu", "memory": "memory", "ephemeral_storage": "ephemeral-storage"}


@dataclass(frozen=True)
class Resources:
    """Requests and limits for one container, as Kubernetes quantity strings.

    Build one with :meth:`preset` (``Resources.preset("m", memory="3Gi")``) or pass a preset name,
    ``{"preset": "m", "memory": "3Gi"}`` or ``{"requests": {...}, "limits": {...}}`` where a spec takes
    resources. ``cpu=``/``memory=``/``ephemeral_storage=`` set request and limit to the same value.

    :param gpu: whole GPUs (request == limit, as Kubernetes requires for extended resources).
    :param pids: process limit (Docker ``pids_limit``; on Kubernetes the kubelet sets it per node).
    """

    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    ephemeral_storage_request: str
    ephemeral_storage_limit: str
    gpu: int = 0
    gpu_resource: str = GPU_RESOURCE
    pids: int | None = None

    def __post_init__(self) -> None:
        for key in _KEYS:
            attr = key.replace("-", "_")
            kind = "cpu" if key == "cpu" else "bytes"
            request = parse_quantity(f"resources.requests.{key}", getattr(self, f"{attr}_request"), kind=kind)
            limit = parse_quantity(f"resources.limits.{key}", getattr(self, f"{attr}_limit"), kind=kind)
            object.__setattr__(self, f"{attr}_request", canonical(getattr(self, f"{attr}_request")))
            object.__setattr__(self, f"{attr}_limit", canonical(getattr(self, f"{attr}_limit")))
            for section, amount in (("requests", request), ("limits", limit)):
                if amount == 0:
                    raise SpecError(
                        f"resources.{section}.{key}",
                        getattr(self, f"{attr}_{section[:-1]}"),
                        "must be greater than zero",
                        "size the container from its measured peak usage",
                    )
            if request > limit:
                raise SpecError(
                    f"resources.requests.{key}",
                    getattr(self, f"{attr}_request"),
                    f"the request is above the limit {getattr(self, f'{attr}_limit')!r}",
                    f"raise resources.limits.{key} or lower the request",
                )
        if self.memory_limit_bytes < _MIN_MEMORY:
            raise SpecError(
                "resources.limits.memory", self.memory_limit, "below 6Mi, too small to start", "use >= 64Mi"
            )
        if self.pids is not None and (
            isinstance(self.pids, bool) or not isinstance(self.pids, int) or self.pids < 1
        ):
            raise SpecError("resources.pids", self.pids, "must be a whole number >= 1", "use e.g. pids=512")
        if isinstance(self.gpu, bool) or not isinstance(self.gpu, int) or self.gpu < 0:
            raise SpecError(
                "resources.gpu", self.gpu, "must be a whole number of GPUs >= 0", "use e.g. gpu=1"
            )

    @classmethod
    def preset(
        cls,
        name: str,
        *,
        cpu: str | int | float | None = None,
        memory: str | int | None = None,
        ephemeral_storage: str | int | None = None,
        gpu: int | None = None,
        pids: int | None = None,
        requests: Mapping[str, Any] | None = None,
        limits: Mapping[str, Any] | None = None,
    ) -> Resources:
        """The preset ``name`` with overrides applied (short forms first, then explicit requests/limits)."""
        if name not in RESOURCE_PRESETS:
            raise SpecError(
                "resources",
                name,
                "unknown resource preset",
                f"use one of {', '.join(RESOURCE_PRESETS)} or explicit requests/limits",
            )
        base = RESOURCE_PRESETS[name]
        changes: dict[str, Any] = {}
        for attr, value in (("cpu", cpu), ("memory", memory), ("ephemeral_storage", ephemeral_storage)):
            if value is not None:
                changes[f"{attr}_request"] = value
                changes[f"{attr}_limit"] = value
        for section, values in (("request", requests), ("limit", limits)):
            for key, value in (values or {}).items():
                if key not in _KEYS:
                    raise SpecError(
                        f"resources.{section}s.{key}",
                        value,
                        "unknown resource name",
                        f"use {', '.join(_KEYS)} (GPUs: gpu=<count>)",
                    )
                changes[f"{key.replace('-', '_')}_{section}"] = value
        if gpu is not None:
            changes["gpu"] = gpu
        if pids is not None:
            changes["pids"] = pids
        return replace(base, **changes) if changes else base

    @classmethod
    def coerce(cls, value: object) -> Resources:
        """Accept a :class:`Resources`, a preset name, or a mapping of :meth:`preset` keywords."""
        if isinstance(value, Resources):
            return value
        if value is None:
            return RESOURCE_PRESETS[DEFAULT_PRESET]
        if isinstance(value, str):
            return cls.preset(value)
        if isinstance(value, Mapping):
            options = dict(value)
            name = options.pop("preset", DEFAULT_PRESET)
            for short, key in _FIELD_KEYS.items():
                if key != short and key in options:
                    options[short] = options.pop(key)
            allowed = {"cpu", "memory", "ephemeral_storage", "gpu", "pids", "requests", "limits"}
            unknown = sorted(set(options) - allowed)
            if unknown:
                raise SpecError(
                    f"resources.{unknown[0]}",
                    options[unknown[0]],
                    "unknown resources key",
                    f"use preset, {', '.join(sorted(allowed))}",
                )
            return cls.preset(name, **options)
        raise SpecError(
            "resources",
            value,
            "resources must be a preset name, a mapping or a Resources",
            f"use e.g. resources='m' (presets: {', '.join(RESOURCE_PRESETS)})",
        )

    @property
    def memory_limit_bytes(self) -> int:
        return int(parse_quantity("resources.limits.memory", self.memory_limit, kind="bytes"))

    @property
    def cpu_limit_nano(self) -> int:
        return int(parse_quantity("resources.limits.cpu", self.cpu_limit, kind="cpu") * 1_000_000_000)

    @property
    def requests(self) -> dict[str, str]:
        out = {
            "cpu": self.cpu_request,
            "memory": self.memory_request,
            "ephemeral-storage": self.ephemeral_storage_request,
        }
        if self.gpu:
            out[self.gpu_resource] = str(self.gpu)
        return out

    @property
    def limits(self) -> dict[str, str]:
        out = {
            "cpu": self.cpu_limit,
            "memory": self.memory_limit,
            "ephemeral-storage": self.ephemeral_storage_limit,
        }
        if self.gpu:
            out[self.gpu_resource] = str(self.gpu)
        return out


def _preset(cpu: tuple[str, str], memory: str, storage: tuple[str, str], pids: int) -> Resources:
    return Resources(cpu[0], cpu[1], memory, memory, storage[0], storage[1], pids=pids)


RESOURCE_PRESETS: dict[str, Resources] = {
    "xs": _preset(("100m", "250m"), "128Mi", ("128Mi", "256Mi"), 256),
    "s": _preset(("250m", "500m"), "512Mi", ("256Mi", "1Gi"), 512),
    "m": _preset(("500m", "1"), "1Gi", ("512Mi", "2Gi"), 1024),
    "l": _preset(("1", "2"), "4Gi", ("1Gi", "4Gi"), 2048),
    "xl": _preset(("2", "4"), "8Gi", ("2Gi", "8Gi"), 4096),
}
"""Named sizes; ``s`` is the default for a task, ``xs`` for sidecars and init containers."""
SIDECAR_PRESET = "xs"
WORKER_PRESET = "m"
"""The KubernetesExecutor worker pod: an Airflow task process plus the task itself."""
