"""The rule list reads the same whichever rule modules a process happened to import first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = """
from containerkit.policy.engine import load_rules, rule_sets
load_rules({kind!r})  # what an operator's parse does first: only the modules of one kind
load_rules()
from containerkit.cli.rules import markdown
print(",".join(rule_sets()))
print(markdown(), end="")
"""


@pytest.mark.parametrize("kind", ["DockerRun", "ConfigMap", "Pod"])
def test_rules_docs_and_rule_sets_do_not_depend_on_import_order(kind: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(kind=kind)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    sets, _, doc = out.partition("\n")
    assert sets.split(",") == [
        "pss-baseline",
        "pss-restricted",
        "hardened",
        "dockerfile",
        "compose",
        "helm-values",
    ]
    assert doc == (REPO / "docs" / "rules.md").read_text()
