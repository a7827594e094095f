"""The task-namespace manifests in helm-values/manifests: rendered, valid, least privilege, one sizing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from containerkit.cli import main
from containerkit.cli.render import MANIFEST_FILES
from containerkit.errors import SpecError
from containerkit.kubernetes.manifests import to_dict
from containerkit.kubernetes.namespace import render_limit_range, render_namespace, render_resource_quota
from containerkit.kubernetes.pod import render_pod
from containerkit.policy.engine import evaluate
from containerkit.policy.sources import kubernetes as kubernetes_source
from containerkit.spec import ContainerSpec
from containerkit.spec.quantity import parse_quantity
from containerkit.spec.resources import DEFAULT_PRESET, RESOURCE_PRESETS

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "helm-values" / "manifests"
# The arguments the committed manifests were rendered with (README.md shows the same command).
RENDER_ARGS = ("--namespace", "airflow-tasks", "--airflow-namespace", "airflow", "--release", "airflow")
KUBERNETES_VERSIONS = ("1.29", "1.37")


def _docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((MANIFESTS / name).read_text()) if d]


def _all_docs() -> list[dict[str, Any]]:
    return [d for name in MANIFEST_FILES for d in _docs(name)]


def test_committed_manifests_are_the_render_output(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["render", "manifests", *RENDER_ARGS, "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(MANIFEST_FILES)
    for name in MANIFEST_FILES:
        assert (tmp_path / name).read_text() == (MANIFESTS / name).read_text(), (
            f"helm-values/manifests/{name} is stale: rerun the command in helm-values/README.md"
        )


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_passes_strict_schema_validation(version: str) -> None:
    docs = _all_docs()
    assert {d["kind"] for d in docs} >= {"Namespace", "ResourceQuota", "LimitRange", "ServiceAccount", "Role"}
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)


def test_manifests_are_policy_clean() -> None:
    """What lint sees in the folder (no pod-bearing objects) is clean for pss-restricted and hardened."""
    for name in MANIFEST_FILES:
        targets = kubernetes_source.load(MANIFESTS / name)
        findings = [f for t in targets for f in evaluate(t, rule_sets=["pss-restricted", "hardened"])]
        assert findings == [], name


def test_namespace_enforces_restricted_pod_security() -> None:
    (namespace,) = [d for d in _docs("namespace.yaml") if d["kind"] == "Namespace"]
    labels = namespace["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        assert labels[f"pod-security.kubernetes.io/{mode}-version"]
    assert labels["pod-security.kubernetes.io/enforce-version"] == "v1.29"


def test_limit_range_defaults_are_the_default_preset() -> None:
    """A container without resources in the task namespace gets what a containerkit task gets."""
    (limits,) = [d for d in _docs("namespace.yaml") if d["kind"] == "LimitRange"]
    (item,) = limits["spec"]["limits"]
    task = to_dict(render_pod(ContainerSpec(image="example.com/t:1.0"), name="t"))["spec"]["containers"][0]
    assert item["type"] == "Container"
    assert item["default"] == task["resources"]["limits"]
    assert item["defaultRequest"] == task["resources"]["requests"]
    assert item["max"] == RESOURCE_PRESETS["xl"].limits


def test_limit_range_follows_the_presets() -> None:
    spec = to_dict(render_limit_range("t", preset="m", max_preset="l"))["spec"]["limits"][0]
    assert spec["defaultRequest"] == RESOURCE_PRESETS["m"].requests
    assert spec["max"] == RESOURCE_PRESETS["l"].limits
    with pytest.raises(SpecError, match="max_preset='xs'"):
        render_limit_range("t", preset="m", max_preset="xs")


def test_quota_is_concurrent_tasks_times_the_default_preset() -> None:
    (quota,) = [d for d in _docs("namespace.yaml") if d["kind"] == "ResourceQuota"]
    hard = quota["spec"]["hard"]
    tasks = int(hard["pods"])
    size = RESOURCE_PRESETS[DEFAULT_PRESET]
    for key in ("cpu", "memory", "ephemeral-storage"):
        kind = "cpu" if key == "cpu" else "bytes"
        assert parse_quantity(key, hard[f"requests.{key}"], kind=kind) == tasks * parse_quantity(
            key, size.requests[key], kind=kind
        )
        assert parse_quantity(key, hard[f"limits.{key}"], kind=kind) == tasks * parse_quantity(
            key, size.limits[key], kind=kind
        )


def test_bad_namespace_input_names_the_field() -> None:
    with pytest.raises(SpecError, match="namespace='Tasks_1'"):
        render_namespace("Tasks_1")
    with pytest.raises(SpecError, match="level='strict'"):
        render_namespace("tasks", level="strict")
    with pytest.raises(SpecError, match="concurrent_tasks=True"):
        render_resource_quota("tasks", concurrent_tasks=True)


def test_rbac_is_namespaced_least_privilege() -> None:
    docs = _docs("rbac.yaml")
    kinds = [d["kind"] for d in docs]
    assert "ClusterRole" not in kinds and "ClusterRoleBinding" not in kinds
    for doc in docs:
        if doc["kind"] in ("Role", "RoleBinding", "ServiceAccount"):
            assert doc["metadata"]["namespace"] == "airflow-tasks", doc["metadata"]["name"]
    for role in (d for d in docs if d["kind"] == "Role"):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), rule
            assert "secrets" not in rule["resources"], rule
    subjects = [s for d in docs if d["kind"] == "RoleBinding" for s in d["subjects"]]
    assert subjects and all(s["kind"] == "ServiceAccount" for s in subjects)
    assert {s["namespace"] for s in subjects} <= {"airflow", "airflow-tasks"}


# Checkov checks the worker pod templates fail by containerkit's decision, with the reason. Manifests: none.
CHECKOV_DISAGREEMENTS = {
    "CKV_K8S_8": "run-to-completion task pods have no liveness probe: their exit is the signal (HRD-010)",
    "CKV_K8S_9": "run-to-completion task pods have no readiness probe: nothing routes traffic to them",
    "CKV_K8S_21": "a pod template has no namespace: the executor sets it per task",
    "CKV_K8S_35": "git-sync reads its username and password from env; the values come from a Secret",
    "CKV_K8S_38": "worker pods launch KubernetesPodOperator pods: they mount a token (HRD-008 suppression)",
    "CKV_K8S_43": "the chart names git-sync by tag; the Airflow image is pinned by digest",
    "CKV2_K8S_6": "the chart's NetworkPolicies are in the release, not in the template file checkov sees",
}
CHECKOV = ROOT / ".venv-tools" / "bin" / "checkov"


@pytest.mark.skipif(not CHECKOV.exists(), reason="checkov tool venv missing (make tools)")
def test_checkov_cross_check(tmp_path: Path) -> None:
    """One checkov run over the manifests and both worker pod templates (standalone and chart form)."""
    import json
    import os
    import subprocess

    from containerkit.kubernetes import helm

    manifests = tmp_path / "manifests"
    manifests.mkdir()
    for name in MANIFEST_FILES:
        (manifests / name).write_text((MANIFESTS / name).read_text())
    pods = tmp_path / "pods"
    pods.mkdir()
    chart_template = yaml.safe_load((ROOT / "helm-values" / "values.yaml").read_text())["podTemplate"]
    (pods / "chart.yaml").write_text(helm.resolve_pod_template(chart_template))
    pinned = "registry.example.com/data/airflow:3.3.2@sha256:" + "c" * 64
    (pods / "standalone.yaml").write_text(helm.standalone_pod_template(pinned))
    result = subprocess.run(
        [str(CHECKOV), "-d", str(tmp_path), "--framework", "kubernetes", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},
        timeout=240,
    )
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    assert report["summary"]["parsing_errors"] == 0
    failed = report["results"]["failed_checks"]
    on_manifests = [(f["check_id"], f["resource"]) for f in failed if "/manifests/" in f["file_path"]]
    assert on_manifests == []
    on_pods = {f["check_id"] for f in failed if "/pods/" in f["file_path"]}
    assert on_pods <= set(CHECKOV_DISAGREEMENTS), on_pods - set(CHECKOV_DISAGREEMENTS)
    passed = {(p["check_id"], p["file_path"]) for p in report["results"]["passed_checks"]}
    for check in ("CKV_K8S_20", "CKV_K8S_23", "CKV_K8S_28", "CKV_K8S_37", "CKV_K8S_22", "CKV_K8S_13"):
        assert (check, "/pods/standalone.yaml") in passed, check  # hardening checkov also sees
    assert any(check == "CKV_K8S_157" for check, _ in passed), "checkov did not check the Roles"
