"""Human-readable report: findings grouped by file and object, worst first; colour only on a terminal."""

from __future__ import annotations

from itertools import groupby

import click

from containerkit.policy.lint import SEVERITY_ORDER, LintResult
from containerkit.policy.model import Severity
from containerkit.policy.report.common import not_linted_line, object_key, skipped_line, summary

_COLORS = {Severity.ERROR: "red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def render(result: LintResult, *, color: bool = False, fail_on: Severity = Severity.ERROR) -> str:
    def style(text: str, **kw: object) -> str:
        return click.style(text, **kw) if color else text  # type: ignore[arg-type]

    out: list[str] = []
    for err in result.errors:
        out.append(style("parse error", fg="magenta", bold=True) + f"  {err}")
    if result.errors:
        out.append("")

    def group(f):  # type: ignore[no-untyped-def]
        return (f.obj.file or "", object_key(f.obj))

    for (file, label), items in groupby(sorted(result.findings, key=group), key=group):
        findings = sorted(items, key=lambda f: (SEVERITY_ORDER[f.severity], f.obj.line or 0, f.rule_id))
        where = f"{file}  " if file else ""
        out.append(style(f"{where}{label}", bold=True))
        for f in findings:
            sev = style(f"{f.severity.value:<7}", fg=_COLORS[f.severity], bold=f.severity is Severity.ERROR)
            loc = f":{f.obj.line}" if f.obj.line else ""
            who = f" [{f.obj.container}]" if f.obj.container else ""
            out.append(f"  {sev} {f.rule_id:<10}{who} {f.message}")
            out.append(style(f"          {f.path}{loc}", dim=True))
            out.append(style(f"          fix: {f.fix}", dim=True))
        out.append("")
    s = summary(result)
    line = (
        f"{s['error']} error(s), {s['warning']} warning(s), {s['info']} info in "
        f"{s['objects_with_findings']} of {s['objects_checked']} object(s)"
    )
    if s["parse_errors"]:
        line += f"; {s['parse_errors']} parse error(s)"
    for note in (not_linted_line(result), skipped_line(result)):
        if note:
            out.append(style(note, dim=True))
    failing = [f for f in result.findings if f.severity.rank >= fail_on.rank]
    verdict = "FAIL" if failing or result.errors else "OK"
    out.append(style(verdict, fg="red" if verdict == "FAIL" else "green", bold=True) + f"  {line}")
    return "\n".join(out) + "\n"
