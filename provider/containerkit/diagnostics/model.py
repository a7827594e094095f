"""The Diagnosis value and the one exception type operators raise on a failed container."""

from __future__ import annotations

from dataclasses import dataclass, field

from airflow.exceptions import AirflowException


@dataclass(frozen=True)
class Diagnosis:
    """Why a container failed, the evidence that shows it, and how to fix it.

    ``cause`` is a stable short identifier (``OOMKilled``, ``ImagePullBackOff:unauthorized`` …) that
    callers and tests can match on; ``summary`` is the one line a user reads first.
    """

    cause: str
    summary: str
    fix: str
    evidence: tuple[str, ...] = ()
    container: str | None = None
    exit_code: int | None = None
    transient: bool = False
    details: dict[str, str] = field(default_factory=dict)

    def render(self) -> str:
        lines = [f"{self.cause}: {self.summary}"]
        lines += [f"  evidence: {line}" for line in self.evidence]
        lines.append(f"  fix: {self.fix}")
        return "\n".join(lines)


class ContainerTaskFailed(AirflowException):
    """A containerized task failed; ``diagnosis`` says why and how to fix it."""

    def __init__(self, diagnosis: Diagnosis, *, where: str = "") -> None:
        self.diagnosis = diagnosis
        prefix = f"{where}: " if where else ""
        super().__init__(prefix + diagnosis.render())
