"""A SecureDockerOperator with a templated image (an XCom of a build or pin task) renders before templating.

Lint and the parse-time views call ``container_config(runtime=False)`` before Jinja runs; the templated
string is not an image reference, so the spec's parse-time placeholder stands in for it there, and the
real image is checked at run time.
"""

from __future__ import annotations

from pathlib import Path

from containerkit.operators.docker import SecureDockerOperator
from containerkit.policy.lint import lint_paths

TEMPLATED = "{{ ti.xcom_pull(task_ids='pin') }}"
DAG_FILE = f'''
import pendulum
from airflow.sdk import DAG
from containerkit.operators.docker import SecureDockerOperator

with DAG("templated_image", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC")):
    SecureDockerOperator(task_id="run_pinned", image="{TEMPLATED}", resources="xs")
'''


def test_parse_time_settings_use_the_placeholder_not_the_template() -> None:
    op = SecureDockerOperator(task_id="run_pinned", image=TEMPLATED, resources="xs")
    policy = op.container_config([], runtime=False).policy
    assert op.image == TEMPLATED
    placeholder = "containerkit.invalid/templated-image:rendered-at-run-time"
    assert policy["image"] == str(op.container_spec.image) == placeholder


def test_lint_reports_no_parse_error_and_no_image_finding_for_a_templated_image(tmp_path: Path) -> None:
    (tmp_path / "templated_image.py").write_text(DAG_FILE)
    result = lint_paths([tmp_path])
    assert result.errors == []
    # Exact: the hardened xs task has no finding at all (the placeholder is a pinned reference).
    assert {(f.obj.task_id, f.rule_id) for f in result.findings} == set()
    assert [t.obj.task_id for t in result.targets] == ["run_pinned"]
