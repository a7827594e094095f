"""JUnit XML for CI test tabs: a suite per input, a test case per object and rule.

Decision (see ``docs/lint-reports.md``): one ``<testcase>`` per (object, rule that found something),
failing when a finding is at or above ``--fail-on`` and listing every finding of that rule on the
object (one per container); plus one passing ``<testcase>`` per object no rule faulted. Per finding would
split one problem over several rows (HRD-001 once per container); per object would hide how many rules
failed. Parse errors are ``<error>`` cases; documents of kinds lint does not check and skipped files are
``<skipped>`` cases, never counted as passing. Every suite carries ``tests``, ``failures``, ``errors``,
``skipped`` and ``time`` (seconds spent loading and linting that input); the root carries the same totals
but ``skipped``, which the Jenkins/Surefire schema (``junit-10.xsd``) does not allow on ``<testsuites>``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict

from containerkit.policy.lint import LintResult
from containerkit.policy.model import Finding, Severity
from containerkit.policy.report.common import artifact_uri, object_key, project_root

ROOT_NAME = "containerkit lint"


def _describe(f: Finding) -> str:
    where = f" (line {f.obj.line})" if f.obj.line else ""
    who = f" [{f.obj.container}]" if f.obj.container else ""
    return f"[{f.rule_id}] {f.severity.value}{who} {f.path}{where}: {f.message}. Fix: {f.fix}"


class _Suite:
    def __init__(self, name: str, seconds: float) -> None:
        self.element = ET.Element("testsuite", name=name)
        self.seconds = seconds
        self.counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}

    def case(self, classname: str, name: str) -> ET.Element:
        self.counts["tests"] += 1
        return ET.SubElement(self.element, "testcase", classname=classname, name=name, time="0")

    def close(self) -> None:
        for key, value in self.counts.items():
            self.element.set(key, str(value))
        self.element.set("time", f"{self.seconds:.3f}")


def render(result: LintResult, *, color: bool = False, fail_on: Severity = Severity.ERROR) -> str:
    root_dir = project_root(result)

    def rel(file: str | None) -> str:
        return artifact_uri(file, root_dir)[0] if file else "containerkit"

    suites: dict[str, _Suite] = {}
    owner: dict[str, str] = {}  # file -> suite name (a DAG folder's files share its suite)
    for path, _kind, seconds in result.inputs:
        suites[rel(path)] = _Suite(rel(path), seconds)
    for t in result.targets:
        if t.obj.file:
            here = rel(t.obj.file)
            owner[here] = (
                here if here in suites else next((s for s in suites if here.startswith(s + "/")), here)
            )

    def suite_of(file: str | None) -> _Suite:
        here = rel(file)
        name = owner.get(here) or (
            here if here in suites else next((s for s in suites if here.startswith(s + "/")), here)
        )
        if name not in suites:
            suites[name] = _Suite(name, 0.0)
        return suites[name]

    by_object: dict[tuple[str | None, str], dict[str, list[Finding]]] = defaultdict(lambda: defaultdict(list))
    objects: dict[tuple[str | None, str], None] = {}
    for t in result.targets:
        objects.setdefault((t.obj.file, object_key(t.obj)), None)
    for f in result.findings:
        key = (f.obj.file, object_key(f.obj))
        objects.setdefault(key, None)
        by_object[key][f.rule_id].append(f)
    for key in objects:
        file, label = key
        suite = suite_of(file)
        rules = by_object.get(key, {})
        if not rules:
            suite.case(rel(file), f"{label}: all rules pass")
            continue
        for rule_id, findings in sorted(rules.items()):
            case = suite.case(rel(file), f"{label}: {rule_id}")
            text = "\n".join(_describe(f) for f in findings)
            if any(f.severity.rank >= fail_on.rank for f in findings):
                suite.counts["failures"] += 1
                ET.SubElement(
                    case,
                    "failure",
                    message=f"{rule_id}: {findings[0].message}"
                    + (f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""),
                    type=findings[0].severity.value,
                ).text = text
            else:
                ET.SubElement(case, "system-out").text = text
    for e in result.errors:
        suite = suite_of(e.file)
        case = suite.case(rel(e.file), f"parse{f' line {e.line}' if e.line else ''}")
        suite.counts["errors"] += 1
        ET.SubElement(case, "error", message=e.problem, type="parse").text = str(e)
    for n in result.not_linted:
        suite = suite_of(n.file)
        case = suite.case(rel(n.file), f"{n.label()} (line {n.line or 1}): not linted")
        suite.counts["skipped"] += 1
        ET.SubElement(case, "skipped", message=f"{n.label()}: lint has no checks for this kind")
    for path in result.skipped:
        suite = suite_of(path)
        case = suite.case(rel(path), "file: not linted")
        suite.counts["skipped"] += 1
        ET.SubElement(case, "skipped", message="not a kind lint reads")
    top = ET.Element("testsuites", name=ROOT_NAME)
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    seconds = 0.0
    for name in sorted(suites):
        suite = suites[name]
        if not suite.counts["tests"]:
            continue
        suite.close()
        top.append(suite.element)
        seconds += suite.seconds
        for k in totals:
            totals[k] += suite.counts[k]
    for k, v in totals.items():
        if k != "skipped":  # junit-10.xsd: <testsuites> has no skipped attribute; each suite has it
            top.set(k, str(v))
    top.set("time", f"{seconds:.3f}")
    ET.indent(top)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(top, encoding="unicode") + "\n"
