"""Lint treats a .py file as a DAG file only by Airflow's own heuristic (mentions airflow and dag)."""

from __future__ import annotations

from pathlib import Path

from containerkit.policy.sources.detect import DAGS, discover, kind_of_file


def test_helper_script_mentioning_airflow_is_not_a_dag_file(tmp_path: Path) -> None:
    script = tmp_path / "wait.py"
    script.write_text("from airflow.configuration import conf\nprint(conf.get('core', 'executor'))\n")
    assert kind_of_file(script, explicit=False) is None
    inputs, errors = discover([tmp_path])
    assert not errors
    assert all(i.kind != DAGS for i in inputs)


def test_dag_file_makes_its_folder_a_dag_folder(tmp_path: Path) -> None:
    (tmp_path / "etl.py").write_text("from airflow.sdk import DAG\nwith DAG('etl'):\n    pass\n")
    inputs, _ = discover([tmp_path])
    assert [(i.kind, i.path) for i in inputs] == [(DAGS, str(tmp_path))]
