"""What every report format says the same way: object labels, counts, artifact URIs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from containerkit.policy.lint import LintResult
from containerkit.policy.model import Finding, ObjectRef, Severity


def object_key(obj: ObjectRef) -> str:
    """The object a finding belongs to, without the container (findings group by object)."""
    ref = ObjectRef(
        kind=obj.kind, name=obj.name, namespace=obj.namespace, dag_id=obj.dag_id, task_id=obj.task_id
    )
    return ref.label()


def counts(findings: list[Finding]) -> dict[str, int]:
    c = Counter(f.severity.value for f in findings)
    return {s.value: c.get(s.value, 0) for s in Severity}


def summary(result: LintResult) -> dict[str, int]:
    objects = {(f.obj.file, object_key(f.obj)) for f in result.findings}
    return {
        **counts(result.findings),
        "objects_checked": len(result.targets),
        "objects_with_findings": len(objects),
        "parse_errors": len(result.errors),
    }


def relative_uri(file: str) -> str:
    """Relative to the working directory when inside it (what code scanning expects), else a file URI."""
    p = Path(file).resolve()
    try:
        return p.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return p.as_uri()
