"""JUnit XML for CI test reports: one test case per checked object, failing on findings at ``--fail-on``."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict

from containerkit.policy.lint import LintResult
from containerkit.policy.model import Finding, Severity
from containerkit.policy.report.common import object_key


def _case_name(file: str | None, label: str) -> tuple[str, str]:
    return (file or "containerkit", label)


def render(result: LintResult, *, color: bool = False, fail_on: Severity = Severity.ERROR) -> str:
    by_object: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for t in result.targets:
        by_object.setdefault(_case_name(t.obj.file, object_key(t.obj)), [])
    for f in result.findings:
        by_object[_case_name(f.obj.file, object_key(f.obj))].append(f)

    suite = ET.Element("testsuite", name="containerkit lint")
    failures = 0
    for (classname, name), findings in sorted(by_object.items()):
        case = ET.SubElement(suite, "testcase", classname=classname, name=name)
        failing = [f for f in findings if f.severity.rank >= fail_on.rank]
        if failing:
            failures += 1
            text = "\n".join(
                f"[{f.rule_id}] {f.severity.value} {f.path}"
                + (f" (line {f.obj.line})" if f.obj.line else "")
                + f": {f.message}. Fix: {f.fix}"
                for f in failing
            )
            ET.SubElement(
                case,
                "failure",
                message=f"{len(failing)} finding(s) at or above {fail_on.value}",
                type=failing[0].severity.value,
            ).text = text
        rest = [f for f in findings if f not in failing]
        if rest:
            ET.SubElement(case, "system-out").text = "\n".join(
                f"[{f.rule_id}] {f.severity.value} {f.path}: {f.message}" for f in rest
            )
    for e in result.errors:
        case = ET.SubElement(suite, "testcase", classname=e.file or "containerkit", name="parse")
        ET.SubElement(case, "error", message=e.problem, type="parse").text = str(e)
    skipped = 0
    for n in result.not_linted:  # reported, never counted as passing
        case = ET.SubElement(suite, "testcase", classname=n.file, name=f"{n.label()} (line {n.line or 1})")
        ET.SubElement(case, "skipped", message=f"{n.label()}: no checks for this kind")
        skipped += 1
    for path in result.skipped:
        case = ET.SubElement(suite, "testcase", classname=path, name="file")
        ET.SubElement(case, "skipped", message="not a kind lint reads")
        skipped += 1
    suite.set("tests", str(len(suite)))
    suite.set("failures", str(failures))
    suite.set("errors", str(len(result.errors)))
    suite.set("skipped", str(skipped))
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
