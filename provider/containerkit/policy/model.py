"""The rule and finding types, and the registry that is the only list of rules.

Check logic lives in small pure functions; the ``Rule`` metadata (id, severity, rationale, fix,
peer ids) sits next to each one through the :func:`rule` decorator, and every consumer (engine,
``containerkit rules``, SARIF, docs) reads it from :data:`REGISTRY`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

# The rule-set names, one constant each (``Rule.rule_set``, ``--rule-set``, reports, docs).
CORE = "core"
PSS_BASELINE = "pss-baseline"
PSS_RESTRICTED = "pss-restricted"
HARDENED = "hardened"
DOCKERFILE = "dockerfile"
COMPOSE = "compose"
HELM_VALUES = "helm-values"

IMAGE = "image"
"""``Rule.about`` topic: the rule reads the image reference or how it is pulled. An operator whose image
is only known after templating selects these by this metadata (never by words in a title)."""


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 3, "warning": 2, "info": 1}[self.value]


@dataclass(frozen=True)
class ObjectRef:
    """What a finding is about: a Kubernetes object, a file, a DAG task."""

    kind: str
    name: str
    namespace: str | None = None
    container: str | None = None
    file: str | None = None
    line: int | None = None
    dag_id: str | None = None
    task_id: str | None = None

    def label(self) -> str:
        parts = [self.kind + "/" + (f"{self.namespace}/" if self.namespace else "") + self.name]
        if self.dag_id:
            parts.append(f"dag={self.dag_id}" + (f" task={self.task_id}" if self.task_id else ""))
        if self.container:
            parts.append(f"container={self.container}")
        return " ".join(parts)


@dataclass(frozen=True)
class Target:
    """One object to check: what it is (``kind`` matches ``Rule.targets``), where it came from, its data.

    Kinds: ``Pod`` (a pod as a plain dict in API field names, i.e. ``ApiClient().sanitize_for_serialization``
    output), ``DockerRun`` (docker run settings), ``Dockerfile``, ``Compose``, ``HelmValues``.
    ``suppressions`` maps a rule id to the reason given (empty string when the reason is missing).
    """

    kind: str
    obj: ObjectRef
    data: Any
    suppressions: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    rule_id: str
    severity: Severity
    obj: ObjectRef
    path: str
    message: str
    fix: str


@dataclass(frozen=True)
class Violation:
    """What a check function yields: the field path and a one-line message (rule metadata adds the rest)."""

    path: str
    message: str
    container: str | None = None


CheckFn = Callable[[Any], Iterable[Violation]]


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: Severity
    rule_set: str
    targets: tuple[str, ...]
    rationale: str
    fix: str
    check: CheckFn = field(compare=False, repr=False)
    psa_check: str | None = None
    peers: dict[str, str] = field(default_factory=dict)
    about: frozenset[str] = frozenset()


def _documentation_rank(rule: Rule) -> int:
    """The rule's module's place in ``rules.MODULES`` (documentation order); others after them."""
    from containerkit.policy.rules import MODULES

    module = rule.check.__module__.rpartition(".")[2]
    return MODULES.index(module) if module in MODULES else len(MODULES)


class Registry:
    """Rules by id, in documentation order whatever order their modules were imported in; the only
    list of rules. (Operators load only the modules a kind needs, so import order varies by process;
    ``containerkit rules``, SARIF rule indexes and rule-set lists must not.)"""

    def __init__(self) -> None:
        self._rules: dict[str, Rule] = {}

    def add(self, rule: Rule) -> None:
        if rule.id in self._rules:
            raise ValueError(f"duplicate rule id {rule.id!r}")
        last = next(reversed(self._rules.values()), None)
        self._rules[rule.id] = rule
        if last is not None and _documentation_rank(rule) < _documentation_rank(last):
            ordered = sorted(self._rules.values(), key=_documentation_rank)  # stable within a module
            self._rules = {r.id: r for r in ordered}

    def get(self, rule_id: str) -> Rule:
        return self._rules[rule_id]

    def __contains__(self, rule_id: object) -> bool:
        return rule_id in self._rules

    def __iter__(self) -> Iterator[Rule]:
        return iter(self._rules.values())

    def in_set(self, *rule_sets: str) -> list[Rule]:
        return [r for r in self._rules.values() if r.rule_set in rule_sets]

    def about(self, topic: str, kind: str) -> list[Rule]:
        """The loaded rules for targets of ``kind`` whose metadata names ``topic`` (e.g. :data:`IMAGE`)."""
        return [r for r in self._rules.values() if topic in r.about and kind in r.targets]


REGISTRY = Registry()


def rule(
    id: str,
    *,
    title: str,
    severity: Severity,
    rule_set: str,
    targets: tuple[str, ...],
    rationale: str,
    fix: str,
    psa_check: str | None = None,
    peers: dict[str, str] | None = None,
    about: Iterable[str] = (),
) -> Callable[[CheckFn], CheckFn]:
    """Register ``fn`` as the check of a rule with this metadata."""

    def register(fn: CheckFn) -> CheckFn:
        REGISTRY.add(
            Rule(
                id=id,
                title=title,
                severity=severity,
                rule_set=rule_set,
                targets=targets,
                rationale=rationale,
                fix=fix,
                check=fn,
                psa_check=psa_check,
                peers=dict(peers or {}),
                about=frozenset(about),
            )
        )
        return fn

    return register
