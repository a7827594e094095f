"""Cross-check: checkov (offline) finds nothing on the shipped manifests, rendered pods and Dockerfiles.

checkov runs from its own venv (``make tools``: it cannot share one with Airflow) in ONE process for both
frameworks (its start-up dominates). A failed check passes only if ``tests/crosscheck/checkov-skips.yaml``
names it with a reason; a skip that matches no failure fails the test, so the list stays short and true.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from containerkit.policy.sources.detect import KUBERNETES, kind_of_file

REPO = Path(__file__).resolve().parents[2]
CHECKOV = REPO / ".venv-tools" / "bin" / "checkov"
SKIPS_FILE = REPO / "tests" / "crosscheck" / "checkov-skips.yaml"
PINNED_IMAGE = "containerkit/task:1.0@sha256:" + "0" * 64


def _skips() -> dict[str, str]:
    skips = yaml.safe_load(SKIPS_FILE.read_text()) or {}
    assert isinstance(skips, dict)
    for check_id, reason in skips.items():
        assert isinstance(reason, str) and len(reason.split()) >= 5, f"{check_id}: give a real reason"
    return {str(k): str(v) for k, v in skips.items()}


def _dockerfiles() -> list[Path]:
    pats = ("Dockerfile", "Dockerfile.*", "*.Dockerfile")
    return sorted({p for pat in pats for p in (REPO / "docker").rglob(pat) if p.is_file()})


def _manifests() -> list[Path]:
    root = REPO / "helm-values"
    return sorted(
        p for p in root.rglob("*.y*ml") if p.is_file() and kind_of_file(p, explicit=True) == KUBERNETES
    )


def _rendered_pods(directory: Path) -> list[Path]:
    """Reference pods (restricted profile, every preset) and the executor templates, one file each.

    One document per file: checkov silently drops a whole file when one document still holds a Helm
    expression (the chart podTemplate keeps ``{{ .Release.Name }}``), so such a document is left out
    here; HLM-003 checks it with containerkit's own pod rules.
    """
    from kubernetes.client import ApiClient

    from containerkit.kubernetes.helm import standalone_pod_template
    from containerkit.kubernetes.pod import render_pod
    from containerkit.policy.rules.helm_values import render_known_templates
    from containerkit.spec import RESOURCE_PRESETS, ContainerSpec

    docs: dict[str, str] = {}
    for preset in RESOURCE_PRESETS:
        spec = ContainerSpec(image=PINNED_IMAGE, command=["python", "-c", "pass"], resources=preset)
        pod = ApiClient().sanitize_for_serialization(render_pod(spec, name=f"ref-{preset}", namespace="t"))
        docs[f"pod-{preset}"] = yaml.safe_dump(pod)
    docs["pod-template-standalone"] = standalone_pod_template(PINNED_IMAGE, namespace="airflow")
    values = yaml.safe_load((REPO / "helm-values" / "values.yaml").read_text()) or {}
    if values.get("podTemplate"):
        docs["pod-template-chart"] = render_known_templates(values["podTemplate"], values)
    out = []
    for name, text in docs.items():
        if "{{" in text:
            continue
        path = directory / f"{name}.yaml"
        path.write_text(text)
        out.append(path)
    return out


def _reports(report: Any) -> list[dict[str, Any]]:
    return report if isinstance(report, list) else [report]


def _failed(report: Any) -> list[dict[str, Any]]:
    out = []
    for r in _reports(report):
        if r.get("summary", {}).get("parsing_errors"):
            raise AssertionError(f"checkov could not parse: {r['results'].get('parsing_errors')}")
        out += r.get("results", {}).get("failed_checks", [])
    return out


def test_checkov_finds_nothing_outside_the_skip_list(tmp_path: Path) -> None:
    if not CHECKOV.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHECKOV} missing in CI: run `make tools`")
        pytest.skip(f"{CHECKOV} missing: run `make tools`")
    skips = _skips()
    dockerfiles = _dockerfiles()
    assert dockerfiles, "no Dockerfile under docker/"
    pods = _rendered_pods(tmp_path)
    files = [*pods, *_manifests(), *dockerfiles]
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    run = subprocess.run(
        [
            str(CHECKOV),
            "--skip-download",
            "--quiet",
            "-o",
            "json",
            "--framework",
            "kubernetes",
            "dockerfile",
            "-f",
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert run.returncode in (0, 1), f"checkov failed to run ({run.returncode}): {run.stderr[-2000:]}"
    reports = json.loads(run.stdout)
    scanned = {r.get("check_type"): r.get("summary", {}).get("resource_count", 0) for r in _reports(reports)}
    assert scanned.get("kubernetes", 0) >= len(pods), f"checkov did not scan every rendered pod: {scanned}"
    assert scanned.get("dockerfile", 0) == len(dockerfiles), (
        f"checkov did not scan every Dockerfile: {scanned}"
    )
    failed = _failed(reports)
    unexpected = [
        f"{f['check_id']} {f['file_path']} {f['resource']}: {f['check_name']}"
        for f in failed
        if f["check_id"] not in skips
    ]
    assert unexpected == [], "checkov failures not in tests/crosscheck/checkov-skips.yaml:\n" + "\n".join(
        unexpected
    )
    stale = sorted(set(skips) - {f["check_id"] for f in failed})
    assert stale == [], f"skips that match no failure any more (remove them): {stale}"
