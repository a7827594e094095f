"""Run the registered rules on a target and turn their violations into findings.

The engine is the only place that knows about rule selection, overrides and suppressions; rules stay
pure functions of the target data.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from containerkit.policy.model import CORE, REGISTRY, Finding, ObjectRef, Rule, Severity, Target
from containerkit.policy.overrides import OVERRIDES
from containerkit.policy.podspec import WORKLOAD_KEY, rebase
from containerkit.policy.suppressions import IGNORE_ANNOTATION, pod_suppressions

# Rule ids the engine itself emits about suppressions (registered in ``rules.meta``).
SUPPRESSION_WITHOUT_REASON = "CK001"
UNKNOWN_SUPPRESSION = "CK002"
CORE_RULE_SET = CORE

_loaded: set[str] = set()


def load_rules(kind: str | None = None) -> None:
    """Import the rule modules once so the registry is complete: every module, or for ``kind`` only
    the modules with rules for that kind (``rules.KIND_MODULES``), which is all evaluating it needs."""
    from containerkit.policy.rules import KIND_MODULES, MODULES

    names = KIND_MODULES.get(kind, MODULES) if kind is not None else MODULES
    for name in names:
        if name not in _loaded:
            module = f"containerkit.policy.rules.{name}"
            if importlib.util.find_spec(module) is not None:
                importlib.import_module(module)
            _loaded.add(name)


def known_rule(rule_id: str) -> bool:
    """Whether ``rule_id`` names a registered rule (loading every rule module if it is not yet found)."""
    if rule_id not in REGISTRY:
        load_rules()
    return rule_id in REGISTRY


def rule_sets() -> list[str]:
    """Every rule set name in the registry, in registration order (``core`` excluded: always on)."""
    load_rules()
    seen: dict[str, None] = {}
    for r in REGISTRY:
        if r.rule_set != CORE_RULE_SET:
            seen.setdefault(r.rule_set, None)
    return list(seen)


# (kind, rule sets, registry size, overrides size) -> selected rules. Rules only ever get added (at
# import), so the sizes tell a stale entry; operators evaluate every task's pod at DAG parse.
_SELECTED: dict[tuple[str, tuple[str, ...] | None, int, int], tuple[Rule, ...]] = {}


def select(kind: str, sets: Sequence[str] | None = None) -> list[Rule]:
    """The rules that run on a target of ``kind``, overridden rules dropped."""
    return list(_select(kind, sets))


def _select(kind: str, sets: Sequence[str] | None) -> tuple[Rule, ...]:
    load_rules(kind)
    key = (kind, None if sets is None else tuple(sets), len(REGISTRY._rules), len(OVERRIDES))
    found = _SELECTED.get(key)
    if found is None:
        wanted = None if sets is None else set(sets)
        chosen = [
            r
            for r in REGISTRY
            if kind in r.targets and r.rule_set != CORE_RULE_SET and (wanted is None or r.rule_set in wanted)
        ]
        ids = {r.id for r in chosen}
        replaced = {old for new, olds in OVERRIDES.items() if new in ids for old in olds}
        found = _SELECTED[key] = tuple(r for r in chosen if r.id not in replaced)
    return found


def _suppression_path(target: Target) -> str:
    if target.kind == "Pod":
        return f'metadata.annotations["{IGNORE_ANNOTATION}"]'
    return "# containerkit: ignore"


def _rebase_path(target: Target, path: str) -> str:
    if target.kind == "Pod" and isinstance(target.data, Mapping):
        pod_path = (target.data.get(WORKLOAD_KEY) or {}).get("podPath") or ""
        return rebase(path, pod_path) if pod_path else path
    return path


def evaluate(target: Target, rule_sets: Sequence[str] | None = None) -> list[Finding]:
    """Run every selected rule that applies to ``target.kind``; return findings, suppressions applied.

    A suppression needs a reason: one without is not honoured and is reported (``CK001``); one naming
    a rule id that does not exist is reported as a warning (``CK002``, usually a typo).
    """
    findings: list[Finding] = []
    honoured = {rid for rid, reason in target.suppressions.items() if reason.strip()}
    for r in _select(target.kind, rule_sets):
        if r.id in honoured:
            continue
        for v in r.check(target.data):
            obj = dataclasses.replace(target.obj, container=v.container) if v.container else target.obj
            findings.append(
                Finding(
                    rule_id=r.id,
                    severity=r.severity,
                    obj=obj,
                    path=_rebase_path(target, v.path),
                    message=v.message,
                    fix=r.fix,
                )
            )
    findings.extend(_suppression_findings(target))
    return findings


def _suppression_findings(target: Target) -> Iterable[Finding]:
    path = _rebase_path(target, _suppression_path(target))
    for rid, reason in target.suppressions.items():
        if not known_rule(rid):
            r = REGISTRY.get(UNKNOWN_SUPPRESSION)
            yield Finding(
                rule_id=r.id,
                severity=r.severity,
                obj=target.obj,
                path=path,
                message=f"suppression names unknown rule id {rid!r}",
                fix=r.fix,
            )
        elif not reason.strip():
            r = REGISTRY.get(SUPPRESSION_WITHOUT_REASON)
            yield Finding(
                rule_id=r.id,
                severity=r.severity,
                obj=target.obj,
                path=path,
                message=f"suppression of {rid} has no reason, so it is not applied",
                fix=r.fix,
            )


def pod_to_dict(pod: Any) -> dict[str, Any]:
    """A ``V1Pod`` (or an already-serialised dict) as the API-form dict rules read."""
    if isinstance(pod, Mapping):
        return dict(pod)
    from containerkit.kubernetes.manifests import to_dict

    data = to_dict(pod)
    if not isinstance(data, dict):
        raise TypeError(f"cannot serialise {type(pod).__name__} as a pod")
    return data


def pod_target(pod: Any, *, obj: ObjectRef | None = None) -> Target:
    data = pod_to_dict(pod)
    meta = data.get("metadata") or {}
    ref = obj or ObjectRef(
        kind=str(data.get("kind") or "Pod"),
        name=str(meta.get("name") or meta.get("generateName") or "<unnamed>"),
        namespace=meta.get("namespace"),
    )
    return Target(kind="Pod", obj=ref, data=data, suppressions=pod_suppressions(data))


def evaluate_pod(
    pod: Any, *, obj: ObjectRef | None = None, rule_sets: Sequence[str] | None = None
) -> list[Finding]:
    """Evaluate a ``V1Pod`` or pod dict; suppressions come from its ``containerkit.io/ignore`` annotation."""
    return evaluate(pod_target(pod, obj=obj), rule_sets)


def evaluate_docker_run(
    data: Mapping[str, Any],
    *,
    obj: ObjectRef | None = None,
    rule_sets: Sequence[str] | None = None,
    suppressions: Mapping[str, str] | None = None,
) -> list[Finding]:
    """Evaluate docker run settings: ``create_host_config`` kwargs plus image, user and environment."""
    ref = obj or ObjectRef(kind="DockerRun", name=str(data.get("name") or data.get("image") or "<container>"))
    return evaluate(Target("DockerRun", ref, dict(data), dict(suppressions or {})), rule_sets)


def worst(findings: Iterable[Finding]) -> Severity | None:
    top: Severity | None = None
    for f in findings:
        if top is None or f.severity.rank > top.rank:
            top = f.severity
    return top
