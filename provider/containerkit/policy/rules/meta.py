"""Findings about suppressions themselves; the engine emits them, these entries document them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from containerkit.policy.model import CORE, Severity, Violation, rule

ALL_KINDS = ("Pod", "DockerRun", "Dockerfile", "Compose", "HelmValues", "ConfigMap")


def _emitted_by_engine(data: Any) -> Iterable[Violation]:
    return ()


rule(
    "CK001",
    title="suppression-without-reason",
    severity=Severity.ERROR,
    rule_set=CORE,
    targets=ALL_KINDS,
    rationale=(
        "Every weakening must be explicit and explained. A suppression without a reason hides a finding "
        "from reviewers with no record of why, so it is not honoured and the finding stays."
    ),
    fix=(
        'Write the reason after the rule id: containerkit.io/ignore: "HRD-001: writes to / at start-up" '
        "or # containerkit: ignore=DF-003 <reason>."
    ),
)(_emitted_by_engine)

rule(
    "CK002",
    title="suppression-of-unknown-rule",
    severity=Severity.WARNING,
    rule_set=CORE,
    targets=ALL_KINDS,
    rationale="A suppression naming a rule id that does not exist is usually a typo and suppresses nothing.",
    fix="Use an id listed by `containerkit rules`, or remove the suppression.",
)(_emitted_by_engine)
