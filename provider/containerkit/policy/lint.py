"""Lint paths: discover inputs, load targets, evaluate them, and collect findings and parse errors.

This is what ``containerkit lint`` runs; it imports a loader only when a path of its kind is present
(Airflow only for DAG files). Nothing a file says may stop the run: a loader's or a rule's failure on one
file or object is an error for that file, and every other file and object is still linted.
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from containerkit.policy.engine import evaluate, select
from containerkit.policy.model import Finding, Rule, Severity, Target
from containerkit.policy.sources.detect import DAGS, KUBERNETES, discover_all
from containerkit.policy.sources.located import SourceError
from containerkit.policy.sources.pod_paths import PodPath
from containerkit.policy.sources.yaml_lines import DEFAULT_LIMITS, Limits

if TYPE_CHECKING:  # the manifest loader is imported only when a manifest is linted
    from containerkit.policy.sources.kubernetes import NotLinted

SEVERITY_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


@dataclass(frozen=True)
class LintOptions:
    """What ``containerkit lint`` lets a user tune: input limits, custom-resource pod paths, strictness."""

    limits: Limits = DEFAULT_LIMITS
    pod_paths: tuple[PodPath, ...] = ()
    fail_on_unknown: bool = False
    """Documents of unknown kinds (custom resources without a pod path) are errors, not just counted."""
    skip_unknown_files: bool = False
    """Files named explicitly that lint cannot read are skipped and reported, not errors (pre-commit)."""


@dataclass
class LintResult:
    findings: list[Finding] = field(default_factory=list)
    errors: list[SourceError] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    rule_sets: Sequence[str] | None = None
    not_linted: list[NotLinted] = field(default_factory=list)
    """Manifest documents of kinds lint has no checks for (named in every report's summary)."""
    skipped: list[str] = field(default_factory=list)
    inputs: list[tuple[str, str, float]] = field(default_factory=list)
    """``(path, loader kind, seconds to load and lint)`` of each input, in order (JUnit suites)."""
    project_root: str | None = None
    """Where report URIs are relative to (the git root by default; ``--project-root``)."""
    """Files under a directory argument that look like manifests (``.yaml``/``.json``) but are none of
    the kinds lint reads: reported, never counted as passing."""

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
    source_path = getattr(target.data, "source_path", None)
    path = source_path(finding.path) if callable(source_path) else finding.path
    line_of = getattr(target.data, "line_of", None)
    line = line_of(path) if callable(line_of) else None
    file = finding.obj.file or getattr(target.data, "file", None)
    if line is None and file == finding.obj.file and path == finding.path:
        return finding
    return dataclasses.replace(
        finding,
        path=path,
        obj=dataclasses.replace(finding.obj, line=line or finding.obj.line, file=file),
    )


def _load(kind: str, path: str, options: LintOptions) -> tuple[list[Target], list[SourceError], list[Any]]:
    module = importlib.import_module(f"containerkit.policy.sources.{kind}")
    if kind == KUBERNETES:
        loaded = module.load_file(path, limits=options.limits, extra_paths=options.pod_paths)
        return loaded.targets, loaded.errors, loaded.not_linted
    if kind == DAGS:
        targets, errors = module.load(path)
        return list(targets), list(errors), []
    load_all = getattr(module, "load_all", None)
    if callable(load_all):  # loaders that report per-object errors and keep the rest
        targets, errors = load_all(path, limits=options.limits)
        return list(targets), list(errors), []
    return list(module.load(path, limits=options.limits)), [], []


def lint_targets(targets: Iterable[Target], rule_sets: Sequence[str] | None = None) -> list[Finding]:
    findings: list[Finding] = []
    for t in targets:
        findings += [_with_line(t, f) for f in evaluate(t, rule_sets)]
    return findings


def _lint_each(targets: Iterable[Target], rule_sets: Sequence[str] | None, result: LintResult) -> None:
    """Evaluate target by target, so one that breaks a rule becomes an error of its file, not a crash."""
    for t in targets:
        try:
            result.findings += lint_targets([t], rule_sets)
        except Exception as exc:
            result.errors.append(
                SourceError(
                    t.obj.file or "<input>",
                    t.obj.line,
                    f"{t.obj.label()}: cannot be checked ({type(exc).__name__}: {exc}); "
                    "please report this with the file",
                )
            )
        else:
            result.targets.append(t)


def _lint_input(
    kind: str, path: str, opts: LintOptions, rule_sets: Sequence[str] | None, result: LintResult
) -> None:
    try:
        targets, load_errors, not_linted = _load(kind, path, opts)
    except SourceError as exc:
        result.errors.append(exc)
        return
    except ModuleNotFoundError as exc:
        result.errors.append(SourceError(path, None, f"no loader for {kind} files ({exc.name})"))
        return
    except RecursionError:
        result.errors.append(SourceError(path, None, "nested too deeply to read"))
        return
    except Exception as exc:  # a loader bug must not hide the rest of the report
        result.errors.append(SourceError(path, None, f"cannot load: {type(exc).__name__}: {exc}"))
        return
    result.errors += load_errors
    result.not_linted += not_linted
    _lint_each(targets, rule_sets, result)


def lint_paths(
    paths: Iterable[str | Path],
    rule_sets: Sequence[str] | None = None,
    options: LintOptions | None = None,
) -> LintResult:
    opts = options or LintOptions()
    found = discover_all(paths, opts.limits, skip_unknown_files=opts.skip_unknown_files)
    result = LintResult(
        errors=[*found.errors, *found.empty], rule_sets=rule_sets, skipped=list(found.skipped)
    )
    for item in found.inputs:
        started = time.perf_counter()
        _lint_input(item.kind, item.path, opts, rule_sets, result)
        result.inputs.append((item.path, item.kind, time.perf_counter() - started))
    if opts.fail_on_unknown:
        result.errors += [
            SourceError(
                n.file,
                n.line,
                f"{n.label()} is not linted: no pod path is configured for this kind "
                "(add one with --pod-paths, or drop --fail-on-unknown)",
            )
            for n in result.not_linted
            if not n.known
        ]
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
