"""Validation of lint reports against the official SARIF 2.1.0 schema and a JUnit XML schema.

Why here and not a hand-written subset: code-scanning uploads reject a SARIF file that breaks the
official schema, and CI test tabs drop a JUnit file their schema rejects, so the tests hold the
reports to the same documents (``tests/fixtures/schemas/README.md`` says where each comes from).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SCHEMAS = Path(__file__).resolve().parent / "fixtures" / "schemas"


@cache
def _sarif_validator() -> Any:
    import jsonschema

    schema = json.loads((SCHEMAS / "sarif-schema-2.1.0.json").read_text())
    checker = jsonschema.Draft4Validator.FORMAT_CHECKER
    # Without rfc3986-validator / rfc3339-validator jsonschema skips these formats silently.
    missing = {"uri", "date-time"} - set(checker.checkers)
    if missing:
        raise RuntimeError(f"format checking is off for {sorted(missing)}: install the dev extra")
    return jsonschema.Draft4Validator(schema, format_checker=checker)


@cache
def _junit_schema() -> Any:
    import xmlschema

    return xmlschema.XMLSchema10(str(SCHEMAS / "junit-10.xsd"))


def sarif_errors(doc: Any) -> list[str]:
    """Each way ``doc`` breaks the SARIF 2.1.0 schema (formats checked), as ``path: message``."""
    errors = sorted(_sarif_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors]


def junit_errors(xml: str) -> list[str]:
    """Each way ``xml`` breaks the JUnit XML schema."""
    return [f"{e.path}: {e.reason}" for e in _junit_schema().iter_errors(xml)]


def assert_valid_sarif(text_or_doc: str | dict[str, Any]) -> None:
    doc = json.loads(text_or_doc) if isinstance(text_or_doc, str) else text_or_doc
    errors = sarif_errors(doc)
    assert not errors, "SARIF breaks the 2.1.0 schema:\n" + "\n".join(errors[:20])


def assert_valid_junit(xml: str) -> None:
    errors = junit_errors(xml)
    assert not errors, "JUnit XML breaks junit-10.xsd:\n" + "\n".join(errors[:20])
