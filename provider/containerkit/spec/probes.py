"""Health probes, for long-running sidecars and services (batch task containers rarely need them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from containerkit.errors import SpecError


@dataclass(frozen=True)
class Probe:
    """One probe: exactly one of ``command`` (exec), ``http_path`` (+``port``), ``tcp`` (``port``), ``grpc``.

    Build with :meth:`exec`, :meth:`http`, :meth:`tcp` or :meth:`grpc_check`.
    """

    kind: Literal["exec", "http", "tcp", "grpc"]
    command: tuple[str, ...] = ()
    port: int | None = None
    http_path: str = "/"
    http_scheme: Literal["HTTP", "HTTPS"] = "HTTP"
    initial_delay_seconds: int = 0
    period_seconds: int = 10
    timeout_seconds: int = 2
    failure_threshold: int = 3
    success_threshold: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "command", tuple(self.command))
        if self.kind not in ("exec", "http", "tcp", "grpc"):
            raise SpecError("probe.kind", self.kind, "unknown probe kind", "use exec, http, tcp or grpc")
        if self.kind == "exec" and not self.command:
            raise SpecError("probe.command", (), "an exec probe needs a command", "e.g. ['pg_isready']")
        if self.kind != "exec" and (
            isinstance(self.port, bool) or not isinstance(self.port, int) or not 1 <= self.port <= 65535
        ):
            raise SpecError("probe.port", self.port, "a port must be 1..65535", "use the container's port")
        if self.kind == "http" and not self.http_path.startswith("/"):
            raise SpecError("probe.http_path", self.http_path, "must start with '/'", "use e.g. '/healthz'")
        for name in ("initial_delay_seconds", "period_seconds", "timeout_seconds", "failure_threshold"):
            value = getattr(self, name)
            minimum = 0 if name == "initial_delay_seconds" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise SpecError(
                    f"probe.{name}", value, f"must be an int >= {minimum}", "use a small whole number"
                )
        if self.success_threshold < 1:
            raise SpecError("probe.success_threshold", self.success_threshold, "must be >= 1", "use 1")

    @classmethod
    def exec(cls, *command: str, **timing: int) -> Probe:
        return cls("exec", command=tuple(command), **timing)  # type: ignore[arg-type]

    @classmethod
    def http(cls, path: str, port: int, **timing: int) -> Probe:
        return cls("http", http_path=path, port=port, **timing)  # type: ignore[arg-type]

    @classmethod
    def tcp(cls, port: int, **timing: int) -> Probe:
        return cls("tcp", port=port, **timing)  # type: ignore[arg-type]

    @classmethod
    def grpc_check(cls, port: int, **timing: int) -> Probe:
        return cls("grpc", port=port, **timing)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Probes:
    liveness: Probe | None = None
    readiness: Probe | None = None
    startup: Probe | None = None

    def __post_init__(self) -> None:
        for name in ("liveness", "readiness", "startup"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Probe):
                raise SpecError(f"probes.{name}", value, "not a Probe", "use Probe.http('/healthz', 8080)")
        if self.liveness is not None and self.liveness.success_threshold != 1:
            raise SpecError(
                "probes.liveness.success_threshold", self.liveness.success_threshold, "must be 1", "use 1"
            )
