"""The Helm values files: chart key paths, regeneration from the overlay, lint, yamllint.

The official chart's JSON schema refuses unknown keys inside its sections, so a misspelt or dropped key
fails the install; this test finds it without a cluster or the chart, against the chart's default values
(vendored under tests/fixtures/helm).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HELM = ROOT / "helm-values"
CHART_DEFAULTS = ROOT / "tests/fixtures/helm/airflow-chart-values.yaml"
VALUES_FILES = ("values.yaml", "values-production.yaml")

# Paths the chart accepts although its default values do not spell them out, with the reason.
ALLOWED_EXTRA_PATHS: dict[str, str] = {
    "dags.gitSync.credentialsSecret": "documented (commented out) in the chart's values and defined in its schema",
    "dags.gitSync.sshKeySecret": "documented (commented out) in the chart's values and defined in its schema",
    "dags.gitSync.knownHosts": "documented (commented out) in the chart's values and defined in its schema",
    "logs.emptyDirConfig": "documented (commented out) in the chart's values and defined in its schema",
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


@pytest.mark.parametrize("name", (*VALUES_FILES, "overlay.yaml"))
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
    assert used & set(ALLOWED_EXTRA_PATHS), "no allow-listed path is used any more"


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
    result = subprocess.run(
        [sys.executable, "-m", "yamllint", "-c", str(ROOT / ".yamllint.yaml"), "-s", "helm-values", ".yamllint.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
