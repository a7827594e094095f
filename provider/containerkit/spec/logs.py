"""Container log rotation for the Docker engine (on Kubernetes the kubelet rotates container logs)."""

from __future__ import annotations

from dataclasses import dataclass

from containerkit.errors import SpecError
from containerkit.spec.quantity import parse_quantity


@dataclass(frozen=True)
class LogRotation:
    """``json-file`` rotation: keep ``max_files`` files of ``max_size`` each (Docker size units: 10m, 1g)."""

    max_size: str = "10m"
    max_files: int = 3

    def __post_init__(self) -> None:
        text = str(self.max_size)
        if not text[:-1].isdigit() or text[-1] not in "kmg":
            raise SpecError("log_rotation.max_size", self.max_size, "not a Docker log size", "use e.g. '10m'")
        parse_quantity("log_rotation.max_size", text[:-1] + text[-1].upper(), kind="bytes")
        if isinstance(self.max_files, bool) or not isinstance(self.max_files, int) or self.max_files < 1:
            raise SpecError("log_rotation.max_files", self.max_files, "must be a whole number >= 1", "use 3")
