"""Lint paths: discover inputs, load targets, evaluate them, and collect findings and parse errors.

This is what ``containerkit lint`` runs; it imports a loader only when a path of its kind is present
(Airflow only for DAG files).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from containerkit.policy.engine import evaluate, select
from containerkit.policy.model import Finding, Rule, Severity, Target
from containerkit.policy.sources.detect import DAGS, discover
from containerkit.policy.sources.located import SourceError

SEVERITY_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


@dataclass
class LintResult:
    findings: list[Finding] = field(default_factory=list)
    errors: list[SourceError] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    rule_sets: Sequence[str] | None = None

    def rules(self) -> list[Rule]:
        """The rules that ran on at least one target kind seen (for report metadata)."""
        kinds = {t.kind for t in self.targets}
        seen: dict[str, Rule] = {}
        for kind in sorted(kinds):
            for r in select(kind, self.rule_sets):
                seen.setdefault(r.id, r)
        from containerkit.policy.model import REGISTRY

        for f in self.findings:
            if f.rule_id in REGISTRY:
                seen.setdefault(f.rule_id, REGISTRY.get(f.rule_id))
        return sorted(seen.values(), key=lambda r: r.id)

    def at_or_above(self, severity: Severity) -> list[Finding]:
        return [f for f in self.findings if f.severity.rank >= severity.rank]


def _with_line(target: Target, finding: Finding) -> Finding:
    line_of = getattr(target.data, "line_of", None)
    line = line_of(finding.path) if callable(line_of) else None
    file = finding.obj.file or getattr(target.data, "file", None)
    if line is None and file == finding.obj.file:
        return finding
    return dataclasses.replace(
        finding, obj=dataclasses.replace(finding.obj, line=line or finding.obj.line, file=file)
    )


def _load(kind: str, path: str) -> tuple[list[Target], list[SourceError]]:
    module = importlib.import_module(f"containerkit.policy.sources.{kind}")
    loaded: Any = module.load(path)
    if kind == DAGS:
        targets, errors = loaded
        return list(targets), list(errors)
    return list(loaded), []


def lint_targets(targets: Iterable[Target], rule_sets: Sequence[str] | None = None) -> list[Finding]:
    findings: list[Finding] = []
    for t in targets:
        findings += [_with_line(t, f) for f in evaluate(t, rule_sets)]
    return findings


def lint_paths(paths: Iterable[str | Path], rule_sets: Sequence[str] | None = None) -> LintResult:
    inputs, errors = discover(paths)
    result = LintResult(errors=list(errors), rule_sets=rule_sets)
    for item in inputs:
        try:
            targets, load_errors = _load(item.kind, item.path)
        except SourceError as exc:
            result.errors.append(exc)
            continue
        except ModuleNotFoundError as exc:
            result.errors.append(
                SourceError(item.path, None, f"no loader for {item.kind} files ({exc.name})")
            )
            continue
        except Exception as exc:  # a loader bug must not hide the rest of the report
            result.errors.append(SourceError(item.path, None, f"cannot load: {type(exc).__name__}: {exc}"))
            continue
        result.errors += load_errors
        result.targets += targets
        result.findings += lint_targets(targets, rule_sets)
    result.findings.sort(
        key=lambda f: (
            f.obj.file or "",
            f.obj.line or 0,
            f.obj.label(),
            SEVERITY_ORDER[f.severity],
            f.rule_id,
        )
    )
    return result
