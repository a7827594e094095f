"""The exception types containerkit raises to users.

One type per audience: ``SpecError`` for a bad container description (raised at DAG parse time),
``PolicyViolation`` for a rendered object that breaks an enforced rule, ``ContainerTaskFailed``
(in :mod:`containerkit.diagnostics.model`) for a container that failed at run time.
"""

from __future__ import annotations

from typing import Any


class ContainerkitError(Exception):
    """Base of every error containerkit raises on purpose."""


class SpecError(ContainerkitError, ValueError):
    """An invalid container spec field: the message names the field, the bad value and the fix."""

    def __init__(self, field: str, value: Any, problem: str, fix: str) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        self.fix = fix
        super().__init__(f"{field}={value!r}: {problem}. Fix: {fix}")
