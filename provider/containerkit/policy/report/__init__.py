"""Lint report formats: ``text`` for people, ``json`` for scripts, ``sarif`` for code scanning, ``junit``."""

from __future__ import annotations

import importlib

from containerkit.policy.lint import LintResult
from containerkit.policy.model import Severity

FORMATS: dict[str, str] = {
    "text": "containerkit.policy.report.text",
    "json": "containerkit.policy.report.json_format",
    "sarif": "containerkit.policy.report.sarif",
    "junit": "containerkit.policy.report.junit",
}


def render(result: LintResult, fmt: str, *, color: bool = False, fail_on: Severity = Severity.ERROR) -> str:
    """The report of ``result`` in format ``fmt`` (one of :data:`FORMATS`)."""
    module = importlib.import_module(FORMATS[fmt])
    out: str = module.render(result, color=color, fail_on=fail_on)
    return out
