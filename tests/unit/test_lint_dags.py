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
    by_rule: dict[str, set[str]] = {}
    for f in result.findings:
        by_rule.setdefault(str(f.obj.task_id), set()).add(f.rule_id)
    # Exact sets per task: HRD-008 is absent from extract (honoured pod annotation suppression); DKR-008
    # is present on transform (stock cpus is a cpu_shares weight, not a CPU limit).
    assert by_rule == {
        "extract": {
            "HRD-001", "HRD-002", "HRD-003", "HRD-004", "HRD-005", "HRD-009",
            "PSS-R-002", "PSS-R-003", "PSS-R-005", "PSS-R-006",
        },
        "transform": {
            "DKR-001", "DKR-002", "DKR-003", "DKR-004", "DKR-006", "DKR-007", "DKR-008", "DKR-009", "DKR-010",
        },
    }  # fmt: skip
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
