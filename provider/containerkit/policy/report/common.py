"""What every report format says the same way: object labels, counts, artifact URIs."""

from __future__ import annotations

import functools
import re
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
        "documents_not_linted": len(result.not_linted),
        "documents_of_unknown_kinds": sum(1 for n in result.not_linted if not n.known),
        "files_skipped": len(result.skipped),
    }


def not_linted_line(result: LintResult) -> str | None:
    """``3 documents not linted: CustomResourceDefinition, Service x2`` (unknown kinds marked), or None."""
    if not result.not_linted:
        return None
    by_label = Counter(n.label() for n in result.not_linted)
    unknown = {n.label() for n in result.not_linted if not n.known}
    names = ", ".join(
        f"{label}{f' x{count}' if count > 1 else ''}{' (unknown kind)' if label in unknown else ''}"
        for label, count in sorted(by_label.items())
    )
    n = len(result.not_linted)
    return f"{n} document{'s' if n != 1 else ''} not linted: {names}"


def skipped_line(result: LintResult) -> str | None:
    if not result.skipped:
        return None
    shown = ", ".join(result.skipped[:5]) + (
        f", ... ({len(result.skipped) - 5} more)" if len(result.skipped) > 5 else ""
    )
    return f"{len(result.skipped)} file(s) skipped (not a kind lint reads): {shown}"


_MAX_SOURCE_BYTES = 16 * 1024 * 1024


@functools.lru_cache(maxsize=512)
def _source_lines(file: str) -> tuple[str, ...]:
    try:
        p = Path(file)
        if p.stat().st_size > _MAX_SOURCE_BYTES:
            return ()
        return tuple(p.read_text(encoding="utf-8", errors="replace").splitlines())
    except OSError:
        return ()


def region(file: str | None, line: int | None, path: str = "") -> dict[str, int] | None:
    """A SARIF region for a finding: its line, the column of the field it names (or of the line's first
    character), and the end of that line; ``None`` without a line.

    Columns are read from the source text: the last segment of ``path`` found on the line (the key a
    finding is about, or the nearest ancestor written there), else where the line's text starts, which
    is the operator call for a DAG task and the instruction for a Dockerfile.
    """
    if not line:
        return None
    text = _source_lines(file)[line - 1] if file and 0 < line <= len(_source_lines(file)) else ""
    start = len(text) - len(text.lstrip()) + 1 if text.strip() else 1
    for segment in reversed([s for s in re.split(r"\.|\[\d+\]", path) if s]):
        found = re.search(rf"(?<![\w-])[\"']?{re.escape(segment)}[\"']?\s*:", text)
        if found:
            start = found.start() + 1
            break
    out = {"startLine": line, "startColumn": start}
    if text:
        out["endLine"] = line
        out["endColumn"] = max(len(text) + 1, start + 1)
    return out


def git_root(start: Path | None = None) -> Path | None:
    """The repository root above ``start`` (a ``.git`` folder or file, as in worktrees), or ``None``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder
    return None


def project_root(result: LintResult) -> Path:
    """What report URIs are relative to: ``--project-root``, else the git root, else the working folder."""
    if result.project_root:
        return Path(result.project_root).resolve()
    return git_root() or Path.cwd().resolve()


def artifact_uri(file: str, root: Path) -> tuple[str, bool]:
    """``(uri, relative)``: a POSIX path relative to ``root`` when the file is inside it, else a file URI."""
    p = Path(file).resolve()
    try:
        return p.relative_to(root).as_posix(), True
    except ValueError:
        return p.as_uri(), False


def relative_uri(file: str) -> str:
    """Relative to the git root (else the working folder) when inside it, else a file URI."""
    return artifact_uri(file, git_root() or Path.cwd().resolve())[0]
