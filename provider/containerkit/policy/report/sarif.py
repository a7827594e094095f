"""SARIF 2.1.0 for code-scanning UIs: rules with help and fix, results with file/line and object path.

Results carry a ``physicalLocation`` (artifact URI relative to the repository root, found from ``.git``
or given with ``--project-root``, under ``uriBaseId: %SRCROOT%``; a file outside the root gets an
absolute ``file:`` URI and no base id, as SARIF requires) and a ``logicalLocation`` naming the object,
container and field. Each result's ``partialFingerprints["containerkit/v2"]`` hashes the rule id, the
file (relative), the object, the container and the field path, not the line, so an alert survives
unrelated edits; it is unique within a run (a repeat gets ``#2``, ``#3`` ... in its key).

``security-severity`` (what GitHub ranks alerts by, 0-10): 7.0 for an error, 4.0 for a warning, 1.0 for
info, plus 2.0 for ``pss-baseline`` rules (a node escape), 1.0 for ``pss-restricted``, and 1.5 for rules
about literal secrets (a leaked credential), capped at 10. ``precision`` is ``very-high`` for the Pod
Security Standards (the admission controller's own semantics), ``medium`` for the secret rules (they
judge names and entropy), ``high`` otherwise.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

from containerkit import __version__
from containerkit.policy.lint import LintResult
from containerkit.policy.model import PSS_BASELINE, PSS_RESTRICTED, Finding, Rule, Severity
from containerkit.policy.report.common import artifact_uri, object_key, project_root, region

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
INFORMATION_URI = "https://github.com/containerkit/airflow-provider-containerkit/blob/main/docs/rules.md"
SRCROOT = "%SRCROOT%"
AUTOMATION_ID = "containerkit/lint/"
_BASE_SEVERITY = {Severity.ERROR: 7.0, Severity.WARNING: 4.0, Severity.INFO: 1.0}
_SET_BONUS = {PSS_BASELINE: 2.0, PSS_RESTRICTED: 1.0}
SECRET_RULES = frozenset({"HRD-009", "HRD-014", "DKR-012", "DF-004", "CMP-008", "HLM-005"})


def security_severity(r: Rule) -> float:
    score = _BASE_SEVERITY[r.severity] + _SET_BONUS.get(r.rule_set, 0.0)
    if r.id in SECRET_RULES:
        score += 1.5
    return min(10.0, score)


def precision(r: Rule) -> str:
    if r.rule_set.startswith("pss-"):
        return "very-high"
    return "medium" if r.id in SECRET_RULES else "high"


def rule_descriptor(r: Rule) -> dict[str, Any]:
    tags = ["security", r.rule_set, *(t.lower() for t in r.targets)]
    props: dict[str, Any] = {
        "tags": tags,
        "rule_set": r.rule_set,
        "security-severity": f"{security_severity(r):.1f}",
        "precision": precision(r),
        "problem.severity": {"error": "error", "warning": "warning", "info": "recommendation"}[
            r.severity.value
        ],
    }
    if r.psa_check:
        props["psa_check"] = r.psa_check
    if r.peers:
        props["peers"] = dict(r.peers)
    return {
        "id": r.id,
        "name": r.title,
        "shortDescription": {"text": r.title},
        "fullDescription": {"text": r.rationale},
        "help": {
            "text": f"{r.rationale}\nFix: {r.fix}",
            "markdown": f"{r.rationale}\n\n**Fix:** {r.fix}",
        },
        "helpUri": f"{INFORMATION_URI}#{r.id.lower()}",
        "defaultConfiguration": {"level": LEVELS[r.severity]},
        "properties": props,
    }


def fingerprint_key(f: Finding, root: Path) -> str:
    """What identifies a problem across commits: rule, file, object, container, field path (no line)."""
    file = artifact_uri(f.obj.file, root)[0] if f.obj.file else ""
    return "|".join([f.rule_id, file, object_key(f.obj), f.obj.container or "", f.path])


def _location(file: str, line: int | None, root: Path, path: str = "") -> dict[str, Any]:
    uri, relative = artifact_uri(file, root)
    artifact: dict[str, Any] = {"uri": uri}
    if relative:
        artifact["uriBaseId"] = SRCROOT
    physical: dict[str, Any] = {"artifactLocation": artifact}
    where = region(file, line, path)
    if where:
        physical["region"] = where
    return physical


def result_entry(f: Finding, index: dict[str, int], root: Path, fingerprint: str) -> dict[str, Any]:
    label = f.obj.label()  # names the container where the path is pod-level
    location: dict[str, Any] = {
        "logicalLocations": [
            {"fullyQualifiedName": f"{object_key(f.obj)}:{f.path}", "name": f.path, "kind": "member"}
        ]
    }
    if f.obj.file:
        location["physicalLocation"] = _location(f.obj.file, f.obj.line, root, f.path)
    props: dict[str, Any] = {"object": object_key(f.obj), "path": f.path}
    for key in ("container", "dag_id", "task_id"):
        value = getattr(f.obj, key)
        if value:
            props[key] = value
    entry: dict[str, Any] = {
        "ruleId": f.rule_id,
        "level": LEVELS[f.severity],
        "message": {"text": f"{label}: {f.message}. Fix: {f.fix}"},
        "locations": [location],
        "partialFingerprints": {"containerkit/v2": fingerprint},
        "properties": props,
    }
    if f.rule_id in index:
        entry["ruleIndex"] = index[f.rule_id]
    return entry


def _fingerprints(findings: list[Finding], root: Path) -> list[str]:
    seen: Counter[str] = Counter()
    out: list[str] = []
    for f in findings:
        key = fingerprint_key(f, root)
        seen[key] += 1
        if seen[key] > 1:
            key = f"{key}#{seen[key]}"
        out.append(hashlib.sha256(key.encode()).hexdigest()[:32])
    return out


def render(result: LintResult, *, color: bool = False, fail_on: Severity = Severity.ERROR) -> str:
    root = project_root(result)
    rules = result.rules()
    index = {r.id: i for i, r in enumerate(rules)}
    notifications: list[dict[str, Any]] = []
    for e in result.errors:
        note: dict[str, Any] = {"level": "error", "message": {"text": str(e)}}
        if e.file:
            note["locations"] = [{"physicalLocation": _location(e.file, e.line, root)}]
        notifications.append(note)
    for n in result.not_linted:
        notifications.append(
            {
                "level": "warning" if not n.known else "note",
                "message": {"text": f"{n.file}: {n.label()} not linted"},
                "locations": [{"physicalLocation": _location(n.file, n.line, root)}],
            }
        )
    for skipped in result.skipped:
        notifications.append(
            {
                "level": "note",
                "message": {"text": f"{skipped}: skipped (not a kind lint reads)"},
                "locations": [{"physicalLocation": _location(skipped, None, root)}],
            }
        )
    prints = _fingerprints(result.findings, root)
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "containerkit",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": [rule_descriptor(r) for r in rules],
                    }
                },
                "automationDetails": {"id": AUTOMATION_ID},
                "originalUriBaseIds": {SRCROOT: {"uri": root.as_uri() + "/"}},
                "invocations": [
                    {"executionSuccessful": not result.errors, "toolExecutionNotifications": notifications}
                ],
                "results": [
                    result_entry(f, index, root, p) for f, p in zip(result.findings, prints, strict=True)
                ],
            }
        ],
    }
    return json.dumps(doc, indent=2) + "\n"
