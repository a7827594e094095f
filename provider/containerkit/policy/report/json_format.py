"""Machine-readable report: every finding with its object, path, line and fix, plus rule metadata."""

from __future__ import annotations

import json
from typing import Any

from containerkit.policy.lint import LintResult
from containerkit.policy.model import Finding, Rule, Severity
from containerkit.policy.report.common import summary

SCHEMA_VERSION = 1


def finding_dict(f: Finding) -> dict[str, Any]:
    o = f.obj
    obj = {
        k: v
        for k, v in {
            "kind": o.kind,
            "name": o.name,
            "namespace": o.namespace,
            "container": o.container,
            "dag_id": o.dag_id,
            "task_id": o.task_id,
        }.items()
        if v is not None
    }
    return {
        "rule_id": f.rule_id,
        "severity": f.severity.value,
        "object": obj,
        "file": o.file,
        "line": o.line,
        "path": f.path,
        "message": f.message,
        "fix": f.fix,
    }


def rule_dict(r: Rule) -> dict[str, Any]:
    return {
        "id": r.id,
        "title": r.title,
        "severity": r.severity.value,
        "rule_set": r.rule_set,
        "targets": list(r.targets),
        "psa_check": r.psa_check,
        "peers": dict(r.peers),
        "rationale": r.rationale,
        "fix": r.fix,
    }


def render(result: LintResult, *, color: bool = False, fail_on: Severity = Severity.ERROR) -> str:
    doc = {
        "version": SCHEMA_VERSION,
        "summary": summary(result),
        "findings": [finding_dict(f) for f in result.findings],
        "errors": [{"file": e.file, "line": e.line, "message": e.problem} for e in result.errors],
        "not_linted": [
            {"file": n.file, "line": n.line, "kind": n.kind, "apiVersion": n.api_version, "known": n.known}
            for n in result.not_linted
        ],
        "skipped": list(result.skipped),
        "rules": [rule_dict(r) for r in result.rules()],
    }
    return json.dumps(doc, indent=2) + "\n"
