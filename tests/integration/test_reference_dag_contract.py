"""The contract every reference DAG keeps (issues 11-13): names, tags, doc_md, self-contained, policy, index.

Users copy these files, so the contract is checked on the files themselves: exactly the 50 pattern files
(plus ``88_11_*`` capability DAGs tagged ``containerkit``), each DAG's id its file stem, tags naming the
category, level and outcome the pattern lists, a ``doc_md`` that says what it needs, no import of a module
that is not installed with the provider, every task clean under ``enforce`` unless a rule is exempted with a
reason, and ``dags/README.md`` generated from the files.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
CAPABILITY = re.compile(r"^88_11_\d{2}_[a-z0-9_]+$")
NEEDS = {"docker", "kubernetes", "registry", "compose", "helm", "trivy", "cluster", "internet"}

# file stem -> (category, level, outcome), as the three reference-DAG issues list them.
EXPECTED: dict[str, tuple[str, str, str]] = {
    "88_01_01_official_docker_image": ("core", "beginner", "success"),
    "88_01_02_custom_dockerfile": ("core", "intermediate", "success"),
    "88_01_03_multi_stage_builds": ("patterns", "intermediate", "success"),
    "88_01_04_docker_compose_dev": ("core", "beginner", "success"),
    "88_01_05_docker_compose_prod": ("core", "intermediate", "success"),
    "88_02_01_env_configuration": ("core", "beginner", "success"),
    "88_02_02_container_secrets": ("core", "intermediate", "success"),
    "88_02_03_volume_configuration": ("core", "intermediate", "success"),
    "88_02_04_container_networking": ("core", "intermediate", "success"),
    "88_02_05_resource_limits": ("core", "intermediate", "success"),
    "88_03_01_helm_deployment": ("core", "intermediate", "success"),
    "88_03_02_k8s_manifests": ("core", "intermediate", "success"),
    "88_03_03_pod_templates": ("core", "intermediate", "success"),
    "88_03_04_service_accounts": ("core", "intermediate", "success"),
    "88_03_05_persistent_volumes": ("core", "intermediate", "success"),
    "88_04_01_image_registry": ("core", "intermediate", "success"),
    "88_04_02_image_versioning": ("patterns", "intermediate", "success"),
    "88_04_03_image_scanning": ("patterns", "intermediate", "success"),
    "88_04_04_base_image_updates": ("patterns", "intermediate", "success"),
    "88_04_05_image_optimization": ("patterns", "intermediate", "success"),
    "88_05_01_container_logs": ("core", "beginner", "success"),
    "88_05_02_container_shell": ("core", "beginner", "success"),
    "88_05_03_container_health": ("core", "intermediate", "success"),
    "88_05_04_resource_monitoring": ("core", "intermediate", "success"),
    "88_05_05_common_issues": ("core", "intermediate", "failure"),
    "88_06_01_running_as_root": ("anti-pattern", "intermediate", "failure"),
    "88_06_02_latest_tag": ("anti-pattern", "beginner", "failure"),
    "88_06_03_fat_images": ("anti-pattern", "intermediate", "failure"),
    "88_06_04_missing_probes": ("anti-pattern", "intermediate", "failure"),
    "88_06_05_hardcoded_config": ("anti-pattern", "beginner", "failure"),
    "88_07_01_build_testing": ("testing", "intermediate", "success"),
    "88_07_02_startup_testing": ("testing", "intermediate", "success"),
    "88_07_03_integration_testing": ("testing", "intermediate", "success"),
    "88_07_04_manifest_testing": ("testing", "intermediate", "success"),
    "88_07_05_helm_testing": ("testing", "intermediate", "success"),
    "88_08_01_startup_optimization": ("performance", "intermediate", "success"),
    "88_08_02_layer_optimization": ("performance", "intermediate", "success"),
    "88_08_03_resource_tuning": ("performance", "intermediate", "success"),
    "88_08_04_network_optimization": ("performance", "intermediate", "success"),
    "88_08_05_storage_optimization": ("performance", "intermediate", "success"),
    "88_09_01_sidecar_patterns": ("patterns", "advanced", "success"),
    "88_09_02_init_patterns": ("patterns", "intermediate", "success"),
    "88_09_03_minimal_images": ("patterns", "advanced", "success"),
    "88_09_04_multi_arch": ("patterns", "advanced", "success"),
    "88_09_05_rootless_containers": ("patterns", "advanced", "success"),
    "88_10_01_production_compose": ("example", "intermediate", "success"),
    "88_10_02_minimal_dockerfile": ("example", "intermediate", "success"),
    "88_10_03_enterprise_helm": ("example", "advanced", "success"),
    "88_10_04_gitops_pipeline": ("example", "advanced", "success"),
    "88_10_05_air_gapped": ("example", "advanced", "success"),
}


# The 88_11_* capability DAGs (tagged "containerkit"), by file stem.
CAPABILITY_DAGS = {
    "88_11_01_secure_docker_operator",
    "88_11_02_taskflow_secure_docker",
    "88_11_03_docker_explicit_exemption",
    "88_11_04_secure_kubernetes_pod_operator",
    "88_11_05_taskflow_secure_kubernetes",
    "88_11_06_long_task_retry",
    "88_11_07_reap_orphaned_containers",
}


def _stems() -> list[str]:
    return sorted(p.stem for p in DAGS.glob("88_*.py"))


@pytest.fixture(scope="module")
def dags(reference_dagbag: Any) -> dict[str, Any]:
    bag = reference_dagbag
    assert not bag.import_errors, bag.import_errors
    return {Path(d.fileloc).stem: d for d in bag.dags.values()}


def test_exactly_the_pattern_files_and_capability_dags() -> None:
    stems = set(_stems())
    assert stems - {s for s in stems if CAPABILITY.match(s)} == set(EXPECTED)
    assert {s for s in stems if CAPABILITY.match(s)} == CAPABILITY_DAGS


def test_dag_id_is_the_file_stem(dags: dict[str, Any]) -> None:
    assert {stem: dag.dag_id for stem, dag in dags.items() if stem != dag.dag_id} == {}


def test_tags_name_category_level_outcome_and_known_needs(dags: dict[str, Any]) -> None:
    wrong = {}
    for stem, dag in dags.items():
        tags = set(dag.tags or ())
        needs = {t.split(":", 1)[1] for t in tags if t.startswith("needs:")}
        required = {"reference", *EXPECTED[stem]} if stem in EXPECTED else {"reference", "containerkit"}
        if not required <= tags or not needs <= NEEDS:
            wrong[stem] = (sorted(required - tags), sorted(needs - NEEDS))
    assert wrong == {}


def test_doc_md_says_what_it_is_and_what_it_needs(dags: dict[str, Any]) -> None:
    """doc_md is the module docstring: a one-line description first, then the explanation."""
    short = {}
    for stem, dag in dags.items():
        doc = (dag.doc_md or "").strip()
        first = doc.splitlines()[0] if doc else ""
        if len(doc) < 400 or not first or len(first) > 160 or "need" not in doc.lower():
            short[stem] = (len(doc), first[:60])
    assert short == {}


def _top_level_modules(path: Path) -> set[str]:
    mods: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            mods.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            mods.add("." * node.level + (node.module or ""))
    return mods


def test_self_contained_no_repo_private_imports() -> None:
    """Every import resolves from what a user installs (stdlib, Airflow, the provider, its dependencies)."""
    private = {}
    for path in sorted(DAGS.glob("88_*.py")):
        bad = sorted(
            m
            for m in _top_level_modules(path)
            if m.startswith(".")
            or m.split(".")[0] == "containerkit_examples"
            or (DAGS / f"{m.split('.')[0]}.py").exists()
            or (DAGS / m.split(".")[0]).is_dir()
            or (
                m.split(".")[0] not in sys.stdlib_module_names
                and importlib.util.find_spec(m.split(".")[0]) is None
            )
        )
        if bad:
            private[path.name] = bad
    assert private == {}


def test_every_task_is_clean_under_enforce_unless_exempted_with_a_reason(dags: dict[str, Any]) -> None:
    from containerkit.policy.enforce import PolicyViolation, enforce_findings
    from containerkit.policy.engine import evaluate
    from containerkit.policy.sources.dags import task_exemptions, task_target

    violations = {}
    for stem, dag in dags.items():
        for task in dag.tasks:
            template = getattr(task, "pod_template_file", None)
            if template and not Path(template).exists():
                continue  # the template is rendered at run time: the operator checks the final pod then
            target = task_target(task, dag_id=dag.dag_id)
            if target is None:
                continue
            try:
                enforce_findings(
                    evaluate(target), mode="enforce", where=task.task_id, exemptions=task_exemptions(task)
                )
            except PolicyViolation as exc:
                violations[f"{stem}.{task.task_id}"] = sorted(f.rule_id for f in exc.findings)
    assert violations == {}


def test_no_task_switches_policy_off_or_to_warn(dags: dict[str, Any]) -> None:
    """A weakening is an exemption with a reason (visible in lint), not a silent mode change."""
    weakened = {
        f"{stem}.{t.task_id}": t.policy_mode
        for stem, dag in dags.items()
        for t in dag.tasks
        if getattr(t, "policy_mode", None) in ("warn", "off")
    }
    assert weakened == {}


def test_dags_readme_is_generated_from_the_files() -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "scripts/dags_index.py"), "--check"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    readme = (DAGS / "README.md").read_text()
    linked = set(re.findall(r"\]\((88_[0-9a-z_]+)\.py\)", readme))
    assert linked == set(_stems())
