"""Manifest loading and kind detection: every workload kind, paths rooted at the object, lines, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from containerkit.policy.lint import lint_paths, lint_targets
from containerkit.policy.sources import detect
from containerkit.policy.sources.kubernetes import load_text
from containerkit.policy.sources.located import SourceError

POD_SPEC = """\
      containers:
      - name: app
        image: busybox:1.36
        securityContext:
          privileged: true
"""


MANIFESTS = {
    "Deployment": (
        "apps/v1",
        "spec:\n  replicas: 3\n  template:\n    spec:\n",
        "spec.template.spec.containers[0]",
    ),
    "StatefulSet": ("apps/v1", "spec:\n  template:\n    spec:\n", "spec.template.spec.containers[0]"),
    "DaemonSet": ("apps/v1", "spec:\n  template:\n    spec:\n", "spec.template.spec.containers[0]"),
    "ReplicaSet": ("apps/v1", "spec:\n  template:\n    spec:\n", "spec.template.spec.containers[0]"),
    "Job": ("batch/v1", "spec:\n  template:\n    spec:\n", "spec.template.spec.containers[0]"),
}


@pytest.mark.parametrize("kind", sorted(MANIFESTS))
def test_workload_templates_become_pod_targets(kind: str) -> None:
    api, head, prefix = MANIFESTS[kind]
    text = f"apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: w\n  namespace: ns\n{head}{POD_SPEC}"
    (target,) = load_text(text, "w.yaml")
    assert (target.obj.kind, target.obj.name, target.obj.namespace) == (kind, "w", "ns")
    result_paths = {f.path for f in lint_targets([target])}
    assert f"{prefix}.securityContext.privileged" in result_paths


def test_cronjob_paths_and_lines(tmp_path: Path) -> None:
    f = tmp_path / "cj.yaml"
    f.write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\n"
        "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: nightly\nspec:\n  schedule: '@daily'\n"
        "  jobTemplate:\n    spec:\n      template:\n        spec:\n          restartPolicy: Never\n"
        "          containers:\n          - name: app\n            image: busybox:1.36\n"
        "            securityContext:\n              privileged: true\n"
    )
    result = lint_paths([f], ["pss-baseline"])
    (finding,) = result.findings
    assert finding.path == "spec.jobTemplate.spec.template.spec.containers[0].securityContext.privileged"
    assert finding.obj.line == 20 and finding.obj.file == str(f) and finding.obj.container == "app"


def test_executor_pod_template_without_kind_and_annotation_suppression() -> None:
    text = (
        "metadata:\n  name: worker\n  annotations:\n    containerkit.io/ignore: 'PSS-B-001: metrics agent'\n"
        "spec:\n  hostNetwork: true\n  containers:\n  - name: base\n    image: apache/airflow:3.3.2\n"
    )
    (target,) = load_text(text, "pod_template.yaml")
    assert target.obj.kind == "Pod" and target.suppressions == {"PSS-B-001": "metrics agent"}


def test_yaml_syntax_error_names_file_and_line() -> None:
    with pytest.raises(SourceError) as info:
        load_text("apiVersion: v1\nkind: Pod\nmetadata: {name: [x\nspec: {}\n", "bad.yaml")
    assert info.value.file == "bad.yaml" and info.value.line == 4


def test_detect_by_name_and_content(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM debian:12\n")
    (tmp_path / "docker-compose.yaml").write_text("services: {}\n")
    (tmp_path / "k.yaml").write_text("apiVersion: v1\nkind: Pod\n")
    (tmp_path / "values.yaml").write_text("executor: KubernetesExecutor\nimages: {}\n")
    (tmp_path / "notes.yaml").write_text("hello: world\n")
    (tmp_path / "dag.py").write_text("from airflow.sdk import DAG\n")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "x.yaml").write_text("apiVersion: v1\nkind: Pod\n")
    inputs, errors = detect.discover([tmp_path])
    kinds = {(i.kind, Path(i.path).name) for i in inputs}
    assert kinds == {
        ("dockerfile", "Dockerfile"),
        ("compose", "docker-compose.yaml"),
        ("kubernetes", "k.yaml"),
        ("helm_values", "values.yaml"),
        ("dags", tmp_path.name),
    }
    assert errors == []
    _, errors = detect.discover([tmp_path / "notes.yaml", tmp_path / "missing.yaml"])
    assert [Path(e.file).name for e in errors] == ["notes.yaml", "missing.yaml"]
