"""Lint reports as CI systems take them: SARIF locations, fingerprints, URIs, rule metadata; JUnit counts.

Properties asserted on a DAG folder (every finding at its operator call's line), generated manifests
with several containers per pod (fingerprints unique, stable across unrelated edits) and a run started
from another directory (URIs relative to the git root, absolute ones without a base id).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from containerkit.cli import main

DAG = """\
import pendulum
from airflow.sdk import DAG
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.docker.operators.docker import DockerOperator

with DAG("ci_dag", start_date=pendulum.datetime(2025, 1, 1), schedule=None):
    KubernetesPodOperator(task_id="extract", image="python:latest")

    DockerOperator(
        task_id="transform",
        image="python:3.11",
    )
"""


def multi_container_pods(n: int) -> str:
    docs = []
    for i in range(n):
        containers = "".join(
            f"  - name: c{j}\n    image: busybox:1.36\n    securityContext: {{runAsUser: 1000}}\n"
            for j in range(3)
        )
        docs.append(
            f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}}}\nspec:\n"
            f"  securityContext: {{runAsUser: 1000}}\n  containers:\n{containers}"
        )
    return "---\n".join(docs)


def lint_json(*args: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(main, ["lint", "--format", "sarif", *args], catch_exceptions=False)
    return result.exit_code, json.loads(result.stdout)


def test_dag_findings_carry_the_operator_call_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "ci_dag.py").write_text(DAG)
    code, doc = lint_json("dags")
    results = doc["runs"][0]["results"]
    assert code == 1 and results
    lines = {}
    for r in results:
        loc = r["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"] == {"uri": "dags/ci_dag.py", "uriBaseId": "%SRCROOT%"}
        lines.setdefault(r["properties"]["task_id"], set()).add(loc["region"]["startLine"])
        assert loc["region"]["startColumn"] == 5 and loc["region"]["endLine"] == loc["region"]["startLine"]
        assert r["properties"]["dag_id"] == "ci_dag"
        assert "dag=ci_dag task=" in r["message"]["text"]
    assert lines == {"extract": {7}, "transform": {9}}


def test_fingerprints_unique_and_stable_across_unrelated_edits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pods.yaml").write_text(multi_container_pods(20))
    _, before = lint_json("pods.yaml")
    (tmp_path / "pods.yaml").write_text("# a comment\n# and another\n" + multi_container_pods(20))
    _, after = lint_json("pods.yaml")

    def prints(doc: dict[str, Any]) -> list[str]:
        return [r["partialFingerprints"]["containerkit/v2"] for r in doc["runs"][0]["results"]]

    assert len(prints(before)) == len(set(prints(before))) > 20 * 3
    assert set(prints(before)) == set(prints(after))
    high_uid = [r for r in before["runs"][0]["results"] if r["ruleId"] == "HRD-013"]
    assert len(high_uid) == 60  # one per container, each message naming its container
    assert len({r["message"]["text"] for r in high_uid}) == 60
    assert all("container=c" in r["message"]["text"] for r in high_uid)
    starts = {
        r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in after["runs"][0]["results"]
    }
    assert min(starts) > 2  # the lines moved, the fingerprints did not


def test_regions_have_columns_at_the_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  hostNetwork: true\n  containers:\n"
        "  - name: app\n    image: busybox:1.36\n    securityContext: {privileged: true}\n"
    )
    _, doc = lint_json("pod.yaml")
    regions = {
        r["ruleId"]: r["locations"][0]["physicalLocation"]["region"]
        for r in doc["runs"][0]["results"]
        if r["ruleId"] in {"PSS-B-001", "PSS-B-002"}
    }
    assert regions == {
        "PSS-B-001": {"startLine": 5, "startColumn": 3, "endLine": 5, "endColumn": 20},
        "PSS-B-002": {"startLine": 9, "startColumn": 23, "endLine": 9, "endColumn": 40},
    }
    assert all(
        "startColumn" in r["locations"][0]["physicalLocation"]["region"] for r in doc["runs"][0]["results"]
    )


def test_helm_fixture_results_are_located_and_unique() -> None:
    repo = Path(__file__).resolve().parents[2]
    fixture = repo / "tests" / "fixtures" / "helm" / "airflow-chart-values.yaml"
    _, doc = lint_json(str(fixture), "--project-root", str(repo))
    results = doc["runs"][0]["results"]
    prints = [r["partialFingerprints"]["containerkit/v2"] for r in results]
    assert results and len(prints) == len(set(prints))
    for r in results:
        loc = r["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"] == {
            "uri": "tests/fixtures/helm/airflow-chart-values.yaml",
            "uriBaseId": "%SRCROOT%",
        }
        assert loc["region"]["startLine"] >= 1


def test_uris_relative_to_the_git_root_from_another_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "k8s").mkdir()
    (repo / "k8s" / "pod.yaml").write_text(multi_container_pods(1))
    outside = tmp_path / "outside.yaml"
    outside.write_text(multi_container_pods(1))
    monkeypatch.chdir(repo / "k8s")
    _, doc = lint_json(str(repo / "k8s" / "pod.yaml"), str(outside))
    run = doc["runs"][0]
    assert run["originalUriBaseIds"] == {"%SRCROOT%": {"uri": repo.resolve().as_uri() + "/"}}
    artifacts = {
        json.dumps(r["locations"][0]["physicalLocation"]["artifactLocation"]) for r in run["results"]
    }
    assert artifacts == {
        json.dumps({"uri": "k8s/pod.yaml", "uriBaseId": "%SRCROOT%"}),
        json.dumps({"uri": outside.resolve().as_uri()}),
    }
    monkeypatch.chdir(tmp_path)
    _, doc = lint_json(str(outside), "--project-root", str(tmp_path))
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in doc["runs"][0]["results"]
    }
    assert uris == {"outside.yaml"}


def test_rules_and_run_metadata(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pods.yaml").write_text(multi_container_pods(1))
    _, doc = lint_json("pods.yaml")
    run = doc["runs"][0]
    driver = run["tool"]["driver"]
    assert (
        driver["semanticVersion"] == driver["version"]
        and run["automationDetails"]["id"] == "containerkit/lint/"
    )
    for rule in driver["rules"]:
        props = rule["properties"]
        assert 0.0 <= float(props["security-severity"]) <= 10.0
        assert props["precision"] in {"very-high", "high", "medium"} and "security" in props["tags"]
        assert rule["help"]["text"] and rule["help"]["markdown"]
    by_id = {r["id"]: r["properties"] for r in driver["rules"]}
    assert float(by_id["PSS-R-004"]["security-severity"]) > float(by_id["HRD-013"]["security-severity"])


def test_junit_counts_errors_and_skips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pods.yaml").write_text(multi_container_pods(2))
    (tmp_path / "broken.yaml").write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: [x\n")
    (tmp_path / "crd.yaml").write_text("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
    out = CliRunner().invoke(main, ["lint", "--format", "junit", "."], catch_exceptions=False).stdout
    root = ET.fromstring(out)
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"pods.yaml", "broken.yaml", "crd.yaml"}
    for s in suites.values():
        assert set(s.attrib) == {"name", "tests", "failures", "errors", "skipped", "time"}, s.attrib
    assert set(root.attrib) == {"name", "tests", "failures", "errors", "time"}  # junit-10.xsd: no skipped
    assert suites["broken.yaml"].get("errors") == "1" and suites["crd.yaml"].get("skipped") == "1"
    cases = suites["pods.yaml"].findall("testcase")
    rules = ["HRD-001", "HRD-002", "HRD-003", "HRD-004", "HRD-006", "HRD-007", "HRD-008", "HRD-010"]
    rules += ["HRD-012", "HRD-013", "PSS-R-002", "PSS-R-003", "PSS-R-005", "PSS-R-006"]
    assert sorted(c.get("name") for c in cases) == [f"Pod/{p}: {r}" for p in ("p0", "p1") for r in rules]
    assert all(c.get("classname") == "pods.yaml" and c.get("time") is not None for c in cases)
    assert int(root.get("tests") or 0) == sum(int(s.get("tests") or 0) for s in suites.values())
    assert int(root.get("failures") or 0) == sum(len(s.findall("testcase/failure")) for s in suites.values())
