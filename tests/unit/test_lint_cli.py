"""``containerkit lint`` / ``containerkit rules``: every format, every exit code, SARIF structure, docs."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from containerkit.cli import main
from containerkit.cli.rules import markdown

REPO = Path(__file__).resolve().parents[2]
DIGEST = "sha256:" + "b" * 64

CLEAN_JOB = f"""\
apiVersion: batch/v1
kind: Job
metadata: {{name: clean, namespace: etl}}
spec:
  template:
    spec:
      restartPolicy: Never
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 50000
        seccompProfile: {{type: RuntimeDefault}}
      containers:
      - name: base
        image: registry.local/etl:1.0@{DIGEST}
        securityContext:
          readOnlyRootFilesystem: true
          allowPrivilegeEscalation: false
          capabilities: {{drop: [ALL]}}
        resources:
          requests: {{cpu: 100m, memory: 128Mi, ephemeral-storage: 1Gi}}
          limits: {{memory: 256Mi, ephemeral-storage: 1Gi}}
"""

BAD_POD = """\
apiVersion: v1
kind: Pod
metadata: {name: bad, namespace: etl}
spec:
  restartPolicy: Never
  hostNetwork: true
  containers:
  - name: app
    image: python:latest
"""

# The parts of SARIF 2.1.0 that code-scanning uploads (GitHub, GitLab, Azure DevOps) depend on.
SARIF_SUBSET = {
    "type": "object",
    "required": ["version", "runs", "$schema"],
    "properties": {
        "version": {"const": "2.1.0"},
        "runs": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["tool", "results"],
                "properties": {
                    "tool": {
                        "type": "object",
                        "required": ["driver"],
                        "properties": {
                            "driver": {
                                "type": "object",
                                "required": ["name", "rules"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "rules": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["id", "shortDescription", "fullDescription", "help"],
                                            "properties": {
                                                "id": {"type": "string"},
                                                "shortDescription": {"$ref": "#/$defs/message"},
                                                "fullDescription": {"$ref": "#/$defs/message"},
                                                "help": {"$ref": "#/$defs/message"},
                                                "defaultConfiguration": {
                                                    "type": "object",
                                                    "properties": {"level": {"$ref": "#/$defs/level"}},
                                                },
                                            },
                                        },
                                    },
                                },
                            }
                        },
                    },
                    "results": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["ruleId", "message", "locations", "level"],
                            "properties": {
                                "ruleId": {"type": "string"},
                                "ruleIndex": {"type": "integer", "minimum": 0},
                                "level": {"$ref": "#/$defs/level"},
                                "message": {"$ref": "#/$defs/message"},
                                "locations": {
                                    "type": "array",
                                    "minItems": 1,
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "physicalLocation": {
                                                "type": "object",
                                                "required": ["artifactLocation"],
                                                "properties": {
                                                    "artifactLocation": {
                                                        "type": "object",
                                                        "required": ["uri"],
                                                        "properties": {
                                                            "uri": {"type": "string", "minLength": 1}
                                                        },
                                                    },
                                                    "region": {
                                                        "type": "object",
                                                        "required": ["startLine"],
                                                        "properties": {
                                                            "startLine": {"type": "integer", "minimum": 1}
                                                        },
                                                    },
                                                },
                                            },
                                            "logicalLocations": {
                                                "type": "array",
                                                "items": {
                                                    "type": "object",
                                                    "required": ["fullyQualifiedName"],
                                                },
                                            },
                                        },
                                    },
                                },
                                "partialFingerprints": {"type": "object"},
                            },
                        },
                    },
                },
            },
        },
    },
    "$defs": {
        "message": {
            "type": "object",
            "required": ["text"],
            "properties": {"text": {"type": "string", "minLength": 1}},
        },
        "level": {"enum": ["none", "note", "warning", "error"]},
    },
}


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clean.yaml").write_text(CLEAN_JOB)
    (tmp_path / "bad.yaml").write_text(BAD_POD)
    (tmp_path / "broken.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: [x\n")
    return tmp_path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["lint", *args], catch_exceptions=False)
    return result.exit_code, result.output


def test_clean_exits_zero(files: Path) -> None:
    code, out = run("clean.yaml")
    assert code == 0 and out.startswith("OK") and "0 of 1 object" in out


def test_findings_exit_one_and_text_groups_by_object(files: Path) -> None:
    code, out = run("bad.yaml", "clean.yaml", "--no-color")
    assert code == 1
    assert "bad.yaml  Pod/etl/bad" in out and "clean" not in out.split("FAIL")[0]
    assert "PSS-B-001" in out and "spec.hostNetwork:6" in out and "fix:" in out
    assert "\x1b[" not in out


def test_fail_on_threshold(files: Path) -> None:
    (files / "warn.yaml").write_text(CLEAN_JOB.replace("automountServiceAccountToken: false", "priority: 0"))
    assert run("warn.yaml")[0] == 0
    assert run("warn.yaml", "--fail-on", "warning")[0] == 1
    assert run("clean.yaml", "--fail-on", "info")[0] == 0


def test_rule_set_selection(files: Path) -> None:
    code, out = run("bad.yaml", "--rules", "pss-baseline", "--format", "json")
    assert code == 1
    assert {f["rule_id"] for f in json.loads(out)["findings"]} == {"PSS-B-001"}


def test_usage_and_parse_errors_exit_two(files: Path) -> None:
    code, out = run("broken.yaml", "bad.yaml")
    assert (
        code == 2 and "broken.yaml:4: invalid YAML" in out and "PSS-B-001" in out
    )  # the rest is still reported
    assert run("bad.yaml", "--rules", "nope")[0] == 2
    assert run("does-not-exist.yaml")[0] == 2
    assert CliRunner().invoke(main, ["lint"]).exit_code == 2


def test_json_format(files: Path) -> None:
    code, out = run("bad.yaml", "--format", "json")
    doc = json.loads(out)
    assert code == 1 and doc["summary"]["error"] >= 2 and doc["summary"]["objects_checked"] == 1
    f = next(f for f in doc["findings"] if f["rule_id"] == "PSS-B-001")
    assert f["object"] == {"kind": "Pod", "name": "bad", "namespace": "etl"}
    assert (f["file"].endswith("bad.yaml"), f["line"], f["path"]) == (True, 6, "spec.hostNetwork")
    assert {r["id"] for r in doc["rules"]} >= {f["rule_id"] for f in doc["findings"]}


def test_sarif_format_has_the_structure_code_scanning_needs(files: Path) -> None:
    code, out = run("bad.yaml", "broken.yaml", "--format", "sarif")
    doc = json.loads(out)
    jsonschema.validate(doc, SARIF_SUBSET)
    run_ = doc["runs"][0]
    rules = run_["tool"]["driver"]["rules"]
    results = run_["results"]
    assert code == 2 and results
    for r in results:
        assert rules[r["ruleIndex"]]["id"] == r["ruleId"]
        loc = r["locations"][0]
        assert loc["physicalLocation"]["artifactLocation"]["uri"] == "bad.yaml"  # relative to the checkout
        assert loc["logicalLocations"][0]["fullyQualifiedName"].startswith("Pod/etl/bad:spec.")
    host = next(r for r in results if r["ruleId"] == "PSS-B-001")
    assert host["locations"][0]["physicalLocation"]["region"]["startLine"] == 6
    assert next(x for x in rules if x["id"] == "PSS-B-001")["properties"]["psa_check"] == "hostNamespaces"
    assert run_["invocations"][0]["executionSuccessful"] is False
    assert "broken.yaml" in run_["invocations"][0]["toolExecutionNotifications"][0]["message"]["text"]


def test_junit_format(files: Path) -> None:
    code, out = run("bad.yaml", "clean.yaml", "--format", "junit", "--output", "report.xml")
    assert code == 1 and out == ""
    root = ET.parse(files / "report.xml").getroot()
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {"bad.yaml", "clean.yaml"}
    bad = {c.get("name"): c for c in suites["bad.yaml"].iter("testcase")}
    clean = [c.get("name") for c in suites["clean.yaml"].iter("testcase")]
    assert clean == ["Job/etl/clean: all rules pass"]
    assert bad["Pod/etl/bad: PSS-B-001"].find("failure") is not None
    assert bad["Pod/etl/bad: HRD-002"].find("failure") is None  # a warning, below --fail-on
    failures = sum(1 for c in bad.values() if c.find("failure") is not None)
    assert suites["bad.yaml"].get("failures") == str(failures) and failures >= 5
    assert suites["bad.yaml"].get("tests") == str(len(bad))
    assert root.get("tests") == str(len(bad) + 1) and root.get("failures") == str(failures)
    assert all(float(s.get("time")) >= 0 for s in (root, *suites.values()))


def test_rules_command_and_docs_are_current() -> None:
    runner = CliRunner()
    text = runner.invoke(main, ["rules"]).output
    assert "PSS-R-003" in text and "HRD-013" in text
    listed = json.loads(runner.invoke(main, ["rules", "--format", "json", "--set", "pss-restricted"]).output)
    assert {r["rule_set"] for r in listed} == {"pss-restricted"}
    assert (REPO / "docs" / "rules.md").read_text() == markdown(), (
        "docs/rules.md is stale: run `containerkit rules --format markdown > docs/rules.md`"
    )


def test_console_script_subprocess_and_lazy_imports(files: Path) -> None:
    exe = Path(sys.executable).with_name("containerkit")
    proc = subprocess.run([str(exe), "lint", "bad.yaml", "--format", "json"], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["summary"]["error"] >= 2
    probe = (
        "import sys\nfrom containerkit.cli import main\n"
        "try:\n    main(['lint', 'clean.yaml'])\nexcept SystemExit as e:\n    code = e.code\n"
        "print(code, 'airflow' in sys.modules, 'kubernetes' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split()[-3:] == ["0", "False", "False"]
