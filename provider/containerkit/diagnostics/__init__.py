"""Failure diagnostics: pure functions from evidence (pod status, events, Docker inspect) to a Diagnosis."""

from containerkit.diagnostics.model import ContainerTaskFailed, Diagnosis

__all__ = ["ContainerTaskFailed", "Diagnosis"]
