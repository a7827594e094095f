"""The README's GitHub Actions step and the repository's pre-commit hook run exactly as written."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml
from report_schemas import assert_valid_sarif

REPO = Path(__file__).resolve().parents[2]
EXE = Path(sys.executable).with_name("containerkit")
BAD_POD = (
    "apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec:\n  containers:\n  - name: app\n"
    "    image: busybox:1.36\n    securityContext: {privileged: true}\n"
)


def _workflow_lint_command() -> str:
    readme = (REPO / "README.md").read_text()
    block = re.search(r"<!-- lint-ci-snippet -->\n```yaml\n(.*?)```", readme, re.S)
    assert block, "README lint section lost its GitHub Actions snippet"
    steps = yaml.safe_load(block.group(1))["jobs"]["containerkit-lint"]["steps"]
    assert any(str(s.get("uses", "")).startswith("github/codeql-action/upload-sarif") for s in steps)
    (command,) = [s["run"] for s in steps if str(s.get("run", "")).startswith("containerkit lint")]
    return str(command)


def test_github_actions_step(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "k8s").mkdir()
    (tmp_path / "k8s" / "pod.yaml").write_text(BAD_POD)
    argv = shlex.split(_workflow_lint_command())
    proc = subprocess.run([str(EXE), *argv[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr  # findings: the step's continue-on-error keeps the upload
    sarif = json.loads((tmp_path / "containerkit.sarif").read_text())
    assert_valid_sarif(sarif)  # a subprocess: the conftest wrapper does not see this report
    results = sarif["runs"][0]["results"]
    assert {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results} == {
        "k8s/pod.yaml"
    }
    assert any(r["ruleId"] == "PSS-B-002" for r in results)


def test_pre_commit_hook(tmp_path: Path) -> None:
    (hook,) = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "containerkit-lint" and hook["language"] == "python"
    (tmp_path / "pod.yaml").write_text(BAD_POD)
    (tmp_path / "mkdocs.yml").write_text("site_name: docs\n")
    (tmp_path / "helper.py").write_text("print('not a DAG')\n")
    (tmp_path / "Dockerfile").write_text("FROM debian:12.8-slim\nUSER 10001\n")
    files = ["pod.yaml", "mkdocs.yml", "helper.py", "Dockerfile"]  # what pre-commit passes
    argv = shlex.split(hook["entry"])
    proc = subprocess.run(
        [str(EXE), *argv[1:], *files], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "PSS-B-002" in proc.stdout and "2 file(s) skipped" in proc.stdout
    (tmp_path / "pod.yaml").write_text(BAD_POD.replace("privileged: true", "privileged: false"))
    clean = subprocess.run(
        [str(EXE), *argv[1:], "--rules", "pss-baseline", "mkdocs.yml", "pod.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert clean.returncode == 0, clean.stdout
