"""Linting a DAG folder written only with stock operators: findings carry DAG and task ids."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from containerkit.cli import main
from containerkit.policy.lint import lint_paths

STOCK_DAG = """
import pendulum
from airflow.sdk import DAG
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.docker.operators.docker import DockerOperator
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG("stock_etl", start_date=pendulum.datetime(2025, 1, 1), schedule=None):
    KubernetesPodOperator(
        task_id="extract",
        image="python:latest",
        env_vars={"DB_PASSWORD": "hunter2"},
        annotations={"containerkit.io/ignore": "HRD-008: calls the API to read a ConfigMap"},
    )
    DockerOperator(task_id="transform", image="python:3.11", privileged=True, network_mode="host")
    EmptyOperator(task_id="done")
"""

BROKEN_DAG = """
from airflow.sdk import DAG
import module_that_does_not_exist
"""


def test_stock_operator_dag_folder(tmp_path: Path) -> None:
    (tmp_path / "etl.py").write_text(STOCK_DAG)
    result = lint_paths([tmp_path])
    assert result.errors == []
    by_task = {(t.kind, t.obj.dag_id, t.obj.task_id) for t in result.targets}
    assert by_task == {("Pod", "stock_etl", "extract"), ("DockerRun", "stock_etl", "transform")}
    ids = {(f.obj.task_id, f.rule_id) for f in result.findings}
    assert {("extract", "HRD-005"), ("extract", "HRD-009"), ("extract", "PSS-R-003")} <= ids
    assert {("transform", "DKR-006"), ("transform", "DKR-010"), ("transform", "DKR-001")} <= ids
    assert ("extract", "HRD-008") not in ids  # honoured pod annotation suppression
    assert all(f.obj.dag_id == "stock_etl" and f.obj.file.endswith("etl.py") for f in result.findings)


def test_import_errors_are_parse_errors(tmp_path: Path) -> None:
    (tmp_path / "etl.py").write_text(STOCK_DAG)
    (tmp_path / "broken.py").write_text(BROKEN_DAG)
    out = CliRunner().invoke(main, ["lint", str(tmp_path), "--format", "json"]).stdout
    result = CliRunner().invoke(main, ["lint", str(tmp_path / "broken.py")])
    assert result.exit_code == 2 and "module_that_does_not_exist" in result.output
    doc = json.loads(out)
    assert any("broken.py" in e["file"] and e["line"] == 3 for e in doc["errors"])
    assert any(f["object"].get("task_id") == "extract" for f in doc["findings"])
