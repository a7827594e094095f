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
