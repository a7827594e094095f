"""The schema checks themselves can fail: a broken report is rejected, with format checking on."""

from __future__ import annotations

import json

import pytest
from report_schemas import junit_errors, sarif_errors

MINIMAL = {
    "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
    "version": "2.1.0",
    "runs": [{"tool": {"driver": {"name": "containerkit"}}, "results": []}],
}


def test_a_minimal_sarif_log_is_valid() -> None:
    assert sarif_errors(MINIMAL) == []


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda d: d.update(version="2.0.0"), "version"),
        (lambda d: d["runs"][0]["tool"]["driver"].update(informationUri="not a uri"), "informationUri"),
        (
            lambda d: d["runs"][0].update(
                invocations=[{"executionSuccessful": True, "endTimeUtc": "yesterday"}]
            ),
            "endTimeUtc",
        ),
        (lambda d: d["runs"][0]["results"].append({"message": {"text": "x"}, "level": "critical"}), "level"),
        (lambda d: d["runs"][0].update(bogus=1), "bogus"),
    ],
    ids=["version", "uri-format", "date-time-format", "level-enum", "additional-property"],
)
def test_sarif_schema_rejects_what_code_scanning_would(change, where: str) -> None:  # type: ignore[no-untyped-def]
    doc = json.loads(json.dumps(MINIMAL))
    change(doc)
    errors = sarif_errors(doc)
    assert len(errors) == 1 and where in errors[0], errors


def test_junit_schema_accepts_the_common_shape_and_rejects_a_suite_without_counts() -> None:
    good = (
        '<testsuites tests="1" failures="1" errors="0" time="0.1">'
        '<testsuite name="pods.yaml" tests="1" failures="1" errors="0" skipped="0" time="0.1">'
        '<testcase name="Pod/p: HRD-013" classname="pods.yaml" time="0"><failure message="m" type="error">t'
        "</failure></testcase></testsuite></testsuites>"
    )
    assert junit_errors(good) == []
    bad = good.replace(' failures="1" errors="0" skipped', " skipped")
    errors = junit_errors(bad)
    assert errors and all("testsuite" in e for e in errors), errors
