"""The Helm values files: chart key paths, regeneration from the overlay, lint, yamllint.

The official chart's JSON schema refuses unknown keys inside its sections, so a misspelt or dropped key
fails the install; this test finds it without a cluster or the chart, against the chart's default values
(vendored under tests/fixtures/helm).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from containerkit.cli import main
from containerkit.errors import SpecError
from containerkit.kubernetes import helm
from containerkit.kubernetes.manifests import to_dict
from containerkit.kubernetes.pod import render_pod
from containerkit.policy.engine import evaluate_pod
from containerkit.policy.model import Severity
from containerkit.spec import ContainerSpec, SecurityProfile

ROOT = Path(__file__).resolve().parents[2]
HELM = ROOT / "helm-values"
CHART_DEFAULTS = ROOT / "tests/fixtures/helm/airflow-chart-values.yaml"
VALUES_FILES = ("values.yaml", "values-production.yaml")

# Paths the chart accepts although its default values do not spell them out, with the reason.
ALLOWED_EXTRA_PATHS: dict[str, str] = {
    "dags.gitSync.credentialsSecret": "commented out in the chart's default values, defined in its schema",
}
# Subtrees whose keys are not chart keys at all, with the reason.
FREE_FORM_PATHS: dict[str, str] = {
    "config": "airflow.cfg sections and options: any Airflow configuration key",
}


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), path
    return data


def _unknown_paths(values: Mapping[str, Any], chart: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """Key paths of ``values`` that the chart's defaults do not have.

    A path descends while the chart's default there is a non-empty mapping; where the default is ``{}``,
    ``~``, a list or a scalar the value is the chart's to interpret (a Kubernetes object, a template
    string), so the walk stops.
    """
    for key, value in values.items():
        path = f"{prefix}{key}"
        if path in ALLOWED_EXTRA_PATHS or path in FREE_FORM_PATHS:
            continue
        if key not in chart:
            yield path
            continue
        default = chart[key]
        if isinstance(default, Mapping) and default:
            if not isinstance(value, Mapping):
                yield f"{path} (the chart expects a mapping)"
                continue
            yield from _unknown_paths(value, default, f"{path}.")


@pytest.fixture(scope="module")
def chart_defaults() -> dict[str, Any]:
    return _load(CHART_DEFAULTS)


def test_vendored_chart_defaults_keep_the_license_header() -> None:
    head = CHART_DEFAULTS.read_text()[:800]
    assert "Licensed to the Apache Software Foundation" in head
    assert "http://www.apache.org/licenses/LICENSE-2.0" in head


@pytest.mark.parametrize("name", (*VALUES_FILES, "values.yaml.in"))
def test_every_key_path_exists_in_the_chart(name: str, chart_defaults: dict[str, Any]) -> None:
    unknown = list(_unknown_paths(_load(HELM / name), chart_defaults))
    assert unknown == [], f"{name}: keys the chart does not define: {unknown}"


def test_the_key_path_check_catches_a_misspelt_key(chart_defaults: dict[str, Any]) -> None:
    wrong = {"scheduler": {"replica": 2, "securityContexts": {"pod": {"runAsUser": 1}}}, "logz": {}}
    assert list(_unknown_paths(wrong, chart_defaults)) == ["scheduler.replica", "logz"]


def test_allow_list_entries_are_still_needed(chart_defaults: dict[str, Any]) -> None:
    """An allow-listed path the chart has since gained (or we stopped using) must leave the list."""
    used = set()
    for name in VALUES_FILES:
        used |= set(_all_paths(_load(HELM / name)))
    for path in ALLOWED_EXTRA_PATHS:
        node: Any = chart_defaults
        for part in path.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        assert node is None, f"{path} is in the chart's defaults now: drop it from the allow-list"
    assert set(ALLOWED_EXTRA_PATHS) <= used, "an allow-listed path is not used any more: drop it"


def _all_paths(values: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in values.items():
        yield f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _all_paths(value, f"{prefix}{key}.")


def test_values_target_kubernetes_executor_with_kept_logs_and_cleanup() -> None:
    values = _load(HELM / "values.yaml")
    assert values["executor"] == "KubernetesExecutor"
    assert values["airflowVersion"].startswith("3.3.")
    assert values["logs"]["persistence"]["enabled"] is True
    assert values["cleanup"]["enabled"] is True
    assert values["networkPolicies"]["enabled"] is True
    assert values["imagePullSecrets"]
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", values["images"]["airflow"]["digest"])
    git = values["dags"]["gitSync"]
    assert git["enabled"] is True and git["credentialsSecret"]


def test_production_takes_every_credential_from_a_named_secret() -> None:
    prod = _load(HELM / "values-production.yaml")
    assert prod["postgresql"]["enabled"] is False
    assert prod["pgbouncer"]["enabled"] is True
    for key in ("fernetKeySecretName", "jwtSecretName", "apiSecretKeySecretName"):
        assert prod[key], key
    assert prod["data"]["metadataSecretName"]
    for key in ("fernetKey", "jwtSecret", "apiSecretKey", "webserverSecretKey"):
        assert key not in prod
    assert "metadataConnection" not in prod["data"]
    for component in ("scheduler", "apiServer", "triggerer", "dagProcessor", "pgbouncer"):
        section = prod[component]
        assert section["replicas"] >= 2, component
        assert section["topologySpreadConstraints"], component
        assert section["priorityClassName"] in {p["name"] for p in prod["priorityClasses"]}, component
    for component in ("scheduler", "apiServer", "pgbouncer"):
        assert prod[component]["podDisruptionBudget"]["enabled"] is True, component


def test_yamllint_is_clean_for_helm_values_and_manifests() -> None:
    from yamllint import linter
    from yamllint.config import YamlLintConfig

    config = YamlLintConfig(file=str(ROOT / ".yamllint.yaml"))
    paths = [
        p for p in sorted(HELM.rglob("*")) if p.is_file() and config.is_yaml_file(str(p.relative_to(ROOT)))
    ]
    assert {p.name for p in paths} >= {"values.yaml", "values.yaml.in", "values-production.yaml", "rbac.yaml"}
    problems = [
        f"{p.relative_to(ROOT)}:{problem.line}: {problem.desc} ({problem.rule})"
        for p in paths
        for problem in linter.run(p.read_text(), config, str(p.relative_to(ROOT)))
    ]
    assert problems == []


# --- generated part -----------------------------------------------------------------------------------

KUBERNETES_VERSIONS = ("1.29", "1.37")
POD_RULE_SETS = ["pss-restricted", "hardened"]
# Every workload the chart runs with these values, and the values path of its section.
CHART_COMPONENTS = (
    "scheduler",
    "apiServer",
    "dagProcessor",
    "triggerer",
    "migrateDatabaseJob",
    "cleanup",
    "statsd",
    "dags.gitSync",
)


def _get(values: Mapping[str, Any], path: str) -> Any:
    node: Any = values
    for part in path.split("."):
        node = node[part]
    return node


def test_values_yaml_is_exactly_what_render_produces() -> None:
    result = CliRunner().invoke(main, ["render", "helm-values", "--overlay", str(HELM / "values.yaml.in")])
    assert result.exit_code == 0, result.output
    committed = (HELM / "values.yaml").read_text()
    assert result.stdout == committed, (
        "helm-values/values.yaml is stale: run `containerkit render helm-values "
        "--overlay helm-values/values.yaml.in -o helm-values/values.yaml`"
    )


def test_values_are_the_overlay_plus_the_rendered_snippet() -> None:
    values = _load(HELM / "values.yaml")
    overlay = _load(HELM / "values.yaml.in")
    snippet = helm.render_values(image_pull_secrets=helm.overlay_pull_secrets(overlay))
    assert values == helm.merge_overlay(snippet, overlay)
    assert values["podTemplate"] == helm.chart_pod_template(image_pull_secrets=["airflow-registry"])


def test_overlay_may_not_set_a_rendered_path() -> None:
    overlay = {"scheduler": {"replicas": 2, "resources": {"limits": {"memory": "64Gi"}}}}
    with pytest.raises(SpecError) as err:
        helm.merge_overlay(helm.render_values(), overlay)
    assert "scheduler.resources" in str(err.value)
    assert "replicas" not in str(err.value)


def _chart_pod() -> dict[str, Any]:
    values = _load(HELM / "values.yaml")
    pod = yaml.safe_load(helm.resolve_pod_template(values["podTemplate"]))
    assert isinstance(pod, dict)
    return pod


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_pod_template_passes_strict_schema_validation(version: str) -> None:
    kubernetes_validate.validate(_chart_pod(), version, strict=True)


def test_pod_template_passes_pss_restricted_and_hardened() -> None:
    findings = evaluate_pod(_chart_pod(), rule_sets=POD_RULE_SETS)
    blocking = [f for f in findings if f.severity.rank >= Severity.WARNING.rank]
    assert blocking == []
    # The one piece of advice left is true: the chart names git-sync by tag, not digest.
    assert {(f.rule_id, f.message) for f in findings} <= {
        ("HRD-006", "image 'chart.invalid/git-sync:chart' is not pinned by digest")
    }


def test_pod_template_is_the_chart_form_of_the_factory_pod() -> None:
    template = _load(HELM / "values.yaml")["podTemplate"]
    pod = yaml.safe_load(template)  # YAML before the chart's tpl, too
    base = pod["spec"]["containers"][0]
    assert base["name"] == "base"
    assert base["image"] == '{{ include "airflow_image" . }}'
    assert pod["metadata"]["labels"]["release"] == "{{ .Release.Name }}"
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert (
        volumes["logs"]["persistentVolumeClaim"]["claimName"] == '{{ include "airflow_logs_volume_claim" . }}'
    )
    assert volumes["config"]["configMap"]["name"] == '{{ include "airflow_config" . }}'
    git = pod["spec"]["initContainers"][0]
    env = {e["name"]: e for e in git["env"]}
    assert (
        env["GITSYNC_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"]
        == "{{ .Values.dags.gitSync.credentialsSecret }}"
    )
    assert env["GITSYNC_DEPTH"]["value"] == "{{ .Values.dags.gitSync.depth }}"  # quoted: a string after tpl
    mounts = {m["name"]: m["mountPath"] for m in base["volumeMounts"]}
    assert mounts == {
        "logs": "/opt/airflow/logs",
        "config": "/opt/airflow/airflow.cfg",
        "dags": "/opt/airflow/dags",
        "tmp": "/tmp",
    }


def test_worker_pods_run_like_secure_kubernetes_pod_operator_pods() -> None:
    """Same factory, same profile: the template's security contexts are those of a task pod."""
    task = to_dict(
        render_pod(ContainerSpec(image="example.com/task:1.0", security=SecurityProfile()), name="t")
    )
    worker = _chart_pod()
    assert worker["spec"]["securityContext"] == task["spec"]["securityContext"]
    task_container = task["spec"]["containers"][0]["securityContext"]
    for container in (*worker["spec"]["containers"], *worker["spec"]["initContainers"]):
        assert container["securityContext"] == task_container, container["name"]
    assert worker["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi", "ephemeral-storage": "512Mi"},
        "limits": {"cpu": "1", "memory": "1Gi", "ephemeral-storage": "2Gi"},
    }


@pytest.mark.parametrize("path", CHART_COMPONENTS)
def test_every_component_is_sized_and_meets_pss_restricted(path: str) -> None:
    values = _load(HELM / "values.yaml")
    section = _get(values, path)
    assert section["resources"]["requests"] and section["resources"]["limits"]
    pod_context = section["securityContexts"].get("pod") or values["securityContexts"]["pod"]
    container = {
        "name": "c",
        "image": "example.com/c:1.0@sha256:" + "b" * 64,
        "securityContext": section["securityContexts"]["container"],
        "resources": section["resources"],
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "c"},
        "spec": {
            "securityContext": pod_context,
            "containers": [container],
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
        },
    }
    kubernetes_validate.validate(pod, "1.29", strict=True)
    assert evaluate_pod(pod, rule_sets=["pss-restricted"]) == []
    read_only = [f for f in evaluate_pod(pod, rule_sets=["hardened"]) if f.rule_id == "HRD-001"]
    assert read_only == [], path


def _lint(name: str) -> list[tuple[str, str, str]]:
    from containerkit.policy.engine import evaluate
    from containerkit.policy.sources import helm_values

    targets = helm_values.load(HELM / name)
    return [(f.rule_id, f.path, f.message) for t in targets for f in evaluate(t, rule_sets=["helm-values"])]


@pytest.mark.parametrize("name", VALUES_FILES)
def test_helm_values_lint_clean(name: str) -> None:
    """``containerkit lint`` on the values files: the helm-values rules find nothing to report."""
    assert _lint(name) == []
