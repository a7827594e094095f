"""Policy enforcement inside Airflow: fail DAG import on error-level findings, or log them.

``[containerkit] policy_mode`` (env ``AIRFLOW__CONTAINERKIT__POLICY_MODE``) is ``enforce`` (default),
``warn`` or ``off``; a task may override it (operator argument ``policy_mode``) and exempt single rules
with a reason each (``policy_exemptions={"HRD-001": "writes its cache to /"}``). Operators call
:func:`check_pod` / :func:`check_docker_run` with what they *rendered*, so an override that weakens the
pod is caught.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from containerkit.errors import ContainerkitError, SpecError
from containerkit.policy.model import Finding, ObjectRef, Severity

log = logging.getLogger(__name__)

PolicyMode = Literal["enforce", "warn", "off"]
MODES: tuple[str, ...] = ("enforce", "warn", "off")
DEFAULT_MODE: PolicyMode = "enforce"
CONFIG_SECTION = "containerkit"
CONFIG_KEY = "policy_mode"
ENV_VAR = "AIRFLOW__CONTAINERKIT__POLICY_MODE"


class PolicyViolation(ContainerkitError):
    """A rendered pod or container breaks an enforced rule; the message lists every finding and its fix."""

    def __init__(self, where: str, findings: Sequence[Finding]) -> None:
        self.where = where
        self.findings = list(findings)
        super().__init__(_violation_message(where, self.findings))


def _format(f: Finding) -> str:
    who = f" container={f.obj.container}" if f.obj.container else ""
    return f"  - [{f.rule_id}] {f.severity.value}{who} {f.path}: {f.message}. Fix: {f.fix}"


def _violation_message(where: str, findings: Sequence[Finding]) -> str:
    lines = [f"containerkit policy: {where} breaks {len(findings)} enforced rule(s):"]
    lines += [_format(f) for f in findings]
    lines.append(
        "Fix the fields above, or exempt a rule for this task with "
        'policy_exemptions={"<rule-id>": "<reason>"}, or set policy_mode="warn".'
    )
    return "\n".join(lines)


def resolve_mode(mode: str | None = None) -> PolicyMode:
    """The effective mode: the per-task value, else the env var, else Airflow config, else ``enforce``."""
    value = mode
    if value is None:
        value = os.environ.get(ENV_VAR)
    if value is None:
        value = configured_mode()
    value = (value or DEFAULT_MODE).strip().lower()
    if value not in MODES:
        raise SpecError("policy_mode", value, "unknown policy mode", f"use one of {', '.join(MODES)}")
    return value  # type: ignore[return-value]


@functools.cache
def configured_mode() -> str:
    """``[containerkit] policy_mode`` from Airflow's config, read once per process.

    Every task resolves its mode at DAG parse, and ``conf.get`` costs as much as evaluating a rule set,
    so the config value is cached like Airflow's own settings; the env var is still read per call.
    ``configured_mode.cache_clear()`` re-reads it (after ``conf.set`` in a test).
    """
    try:
        from airflow.configuration import conf

        return str(conf.get(CONFIG_SECTION, CONFIG_KEY, fallback=DEFAULT_MODE))
    except Exception:  # Airflow absent or unconfigured: the safe default applies
        return DEFAULT_MODE


def validate_exemptions(exemptions: Mapping[str, str] | None) -> dict[str, str]:
    """Exemptions must name real rules and give a reason; anything else is a spec error at parse time."""
    from containerkit.policy.engine import known_rule

    out: dict[str, str] = {}
    for rule_id, reason in (exemptions or {}).items():
        if not known_rule(rule_id):
            raise SpecError(
                f"policy_exemptions[{rule_id!r}]",
                reason,
                "no such rule",
                "use an id from `containerkit rules`",
            )
        if not isinstance(reason, str) or not reason.strip():
            raise SpecError(
                f"policy_exemptions[{rule_id!r}]",
                reason,
                "an exemption needs a reason",
                f'write why, e.g. {{"{rule_id}": "image writes its cache to /root; tracked in TICKET-1"}}',
            )
        out[rule_id] = reason.strip()
    return out


def enforce_findings(
    findings: Iterable[Finding],
    *,
    mode: str | None = None,
    where: str,
    exemptions: Mapping[str, str] | None = None,
) -> list[Finding]:
    """Apply exemptions and the mode to findings: raise under ``enforce`` on any error, else log.

    Returns the findings that remain after exemptions (warnings and infos included).
    """
    effective = resolve_mode(mode)
    exempt = validate_exemptions(exemptions)
    remaining: list[Finding] = []
    exempted: list[str] = []
    for f in findings:
        if f.rule_id in exempt:
            exempted.append(f.rule_id)
        else:
            remaining.append(f)
    if effective == "off":
        return remaining
    errors = [f for f in remaining if f.severity is Severity.ERROR]
    if errors and effective == "enforce":
        raise PolicyViolation(where, errors)
    from containerkit.policy.parse_log import current_dag_id, hold

    dag_id = current_dag_id()
    if dag_id is not None:  # at DAG parse: one summary line per DAG (policy.parse_log), not one per task
        hold(dag_id, where, remaining, exempted)
        return remaining
    for rule_id in exempted:
        log.info("containerkit policy: %s: %s exempted (%s)", where, rule_id, exempt[rule_id])
    for f in remaining:
        level = logging.WARNING if f.severity is not Severity.INFO else logging.INFO
        log.log(level, "containerkit policy: %s:\n%s", where, _format(f))
    return remaining


def check_pod(
    pod: Any,
    *,
    mode: str | None = None,
    exemptions: Mapping[str, str] | None = None,
    where: str,
    obj: ObjectRef | None = None,
    rule_sets: Sequence[str] | None = None,
) -> list[Finding]:
    """Evaluate a rendered ``V1Pod`` (or pod dict) and enforce the result; see :func:`enforce_findings`."""
    effective = resolve_mode(mode)
    if effective == "off":
        validate_exemptions(exemptions)
        return []
    from containerkit.policy.engine import evaluate_pod

    return enforce_findings(
        evaluate_pod(pod, obj=obj, rule_sets=rule_sets), mode=effective, where=where, exemptions=exemptions
    )


def check_docker_run(
    data: Mapping[str, Any],
    *,
    mode: str | None = None,
    exemptions: Mapping[str, str] | None = None,
    where: str,
    obj: ObjectRef | None = None,
    rule_sets: Sequence[str] | None = None,
    about: str | None = None,
) -> list[Finding]:
    """Evaluate rendered docker run settings and enforce the result; see :func:`enforce_findings`.

    :param about: only the rules whose metadata names this topic (``Rule.about``, e.g. ``IMAGE``).
    """
    effective = resolve_mode(mode)
    if effective == "off":
        validate_exemptions(exemptions)
        return []
    from containerkit.policy.engine import evaluate_docker_run
    from containerkit.policy.model import REGISTRY

    findings = evaluate_docker_run(data, obj=obj, rule_sets=rule_sets)
    if about is not None:
        wanted = {r.id for r in REGISTRY.about(about, "DockerRun")}
        findings = [f for f in findings if f.rule_id in wanted]
    return enforce_findings(
        findings,
        mode=effective,
        where=where,
        exemptions=exemptions,
    )
