"""Stock operators in a DAG folder are checked on what they would really launch: exact rule sets per task.

Stock ``DockerOperator`` always passes ``cpu_shares=round(cpus * 1024)`` (default ``cpus=1.0``): a weight
under contention, not a limit, so every stock Docker task lacks a CPU limit (DKR-008).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from containerkit.policy.lint import lint_paths
from containerkit.policy.sources.dags import docker_run_settings

DAG = """
import pendulum
from airflow.sdk import DAG
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.docker.operators.docker import DockerOperator

with DAG("stock_rules", start_date=pendulum.datetime(2025, 1, 1), schedule=None):
    KubernetesPodOperator(task_id="extract", image="python:latest", env_vars={"DB_PASSWORD": "hunter2"})
    DockerOperator(task_id="plain", image="python:3.11")
    DockerOperator(task_id="sized", image="python:3.11", cpus=2, mem_limit="512m", user="50000")
    DockerOperator(
        task_id="loose",
        image="python:3.11",
        privileged=True,
        network_mode="host",
        private_environment={"API_TOKEN": "abc123"},
        mounts=[],
    )
"""

EXPECTED = {
    "extract": {
        "HRD-001", "HRD-002", "HRD-003", "HRD-004", "HRD-005", "HRD-008", "HRD-009",
        "PSS-R-002", "PSS-R-003", "PSS-R-005", "PSS-R-006",
    },
    "plain": {"DKR-001", "DKR-002", "DKR-003", "DKR-004", "DKR-007", "DKR-008", "DKR-009"},
    "sized": {"DKR-002", "DKR-003", "DKR-004", "DKR-008", "DKR-009"},
    "loose": {
        "DKR-001", "DKR-002", "DKR-003", "DKR-004", "DKR-006", "DKR-007", "DKR-008", "DKR-009",
        "DKR-010", "DKR-012",
    },
}  # fmt: skip


def test_exact_rule_sets_per_stock_task(tmp_path: Path) -> None:
    (tmp_path / "stock_rules.py").write_text(DAG)
    result = lint_paths([tmp_path])
    assert result.errors == []
    by_task: dict[str, set[str]] = defaultdict(set)
    for f in result.findings:
        assert f.obj.dag_id == "stock_rules"
        by_task[str(f.obj.task_id)].add(f.rule_id)
    assert dict(by_task) == EXPECTED
    sized = next(t for t in result.targets if t.obj.task_id == "sized")
    assert sized.data["cpu_shares"] == 2048 and "nano_cpus" not in sized.data


class _Stock:
    """The attributes a stock DockerOperator carries, without Airflow."""

    image = "python:3.11"
    cpus = 0.5
    environment = {"A": "1"}
    _private_environment = {"B": "2"}


def test_docker_run_settings_reads_cpus_as_shares_and_private_env() -> None:
    settings = docker_run_settings(_Stock())
    assert settings["cpu_shares"] == 512 and "nano_cpus" not in settings
    assert settings["environment"] == {"A": "1", "B": "2"}
