"""SARIF 2.1.0 for code-scanning UIs: rules with help and fix, results with file/line and object path.

Results carry a ``physicalLocation`` (artifact URI relative to the checkout, ``startLine`` when known) so
code scanning can annotate the line, and a ``logicalLocation`` naming the Kubernetes object and field.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from containerkit import __version__
from containerkit.policy.lint import LintResult
from containerkit.policy.model import Finding, Rule, Severity
from containerkit.policy.report.common import object_key, relative_uri

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
INFORMATION_URI = "https://github.com/containerkit/airflow-provider-containerkit/blob/main/docs/rules.md"


def rule_descriptor(r: Rule) -> dict[str, Any]:
    props: dict[str, Any] = {"tags": ["security", r.rule_set], "rule_set": r.rule_set}
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


def _fingerprint(f: Finding) -> str:
    key = "|".join([f.rule_id, f.obj.file or "", object_key(f.obj), f.path])
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def result_entry(f: Finding, index: dict[str, int]) -> dict[str, Any]:
    location: dict[str, Any] = {
        "logicalLocations": [
            {"fullyQualifiedName": f"{object_key(f.obj)}:{f.path}", "name": f.path, "kind": "member"}
        ]
    }
    if f.obj.file:
        physical: dict[str, Any] = {
            "artifactLocation": {"uri": relative_uri(f.obj.file), "uriBaseId": "%SRCROOT%"}
        }
        if f.obj.line:
            physical["region"] = {"startLine": f.obj.line}
        location["physicalLocation"] = physical
    entry: dict[str, Any] = {
        "ruleId": f.rule_id,
        "level": LEVELS[f.severity],
        "message": {"text": f"{object_key(f.obj)}: {f.message}. Fix: {f.fix}"},
        "locations": [location],
        "partialFingerprints": {"containerkit/v1": _fingerprint(f)},
    }
    if f.rule_id in index:
        entry["ruleIndex"] = index[f.rule_id]
    return entry


def render(result: LintResult, *, color: bool = False, fail_on: Severity = Severity.ERROR) -> str:
    rules = result.rules()
    index = {r.id: i for i, r in enumerate(rules)}
    notifications = []
    for e in result.errors:
        note: dict[str, Any] = {"level": "error", "message": {"text": str(e)}}
        if e.file:
            loc: dict[str, Any] = {"artifactLocation": {"uri": relative_uri(e.file)}}
            if e.line:
                loc["region"] = {"startLine": e.line}
            note["locations"] = [{"physicalLocation": loc}]
        notifications.append(note)
    for n in result.not_linted:
        notifications.append(
            {
                "level": "warning" if not n.known else "note",
                "message": {"text": f"{n.file}: {n.label()} not linted"},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {"uri": relative_uri(n.file)},
                            **({"region": {"startLine": n.line}} if n.line else {}),
                        }
                    }
                ],
            }
        )
    for skipped in result.skipped:
        notifications.append(
            {
                "level": "note",
                "message": {"text": f"{skipped}: skipped (not a kind lint reads)"},
                "locations": [{"physicalLocation": {"artifactLocation": {"uri": relative_uri(skipped)}}}],
            }
        )
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "containerkit",
                        "version": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": [rule_descriptor(r) for r in rules],
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"uri": "./"}},
                "invocations": [
                    {"executionSuccessful": not result.errors, "toolExecutionNotifications": notifications}
                ],
                "results": [result_entry(f, index) for f in result.findings],
            }
        ],
    }
    return json.dumps(doc, indent=2) + "\n"
