"""Rule tests that can fail: every rule id in the registry fires on a fixture and is quiet on a clean one.

The registry is the only list of rules, so this test reads it: a new rule without a fixture that
triggers it, or a rule that fires on the clean objects the renderers produce, fails here. The
Dockerfile, Compose and Helm-values rules have their own failing and passing case per rule (their
``test_every_*_rule_has_a_failing_and_a_passing_case``); this test checks that those modules and the
fixtures below together cover every id.
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from containerkit.docker.run_settings import render_docker
from containerkit.docker.run_view import StockArgs, docker_run
from containerkit.kubernetes.pod import render_pod
from containerkit.policy.engine import evaluate, load_rules, pod_target
from containerkit.policy.model import CORE, PSS_BASELINE, REGISTRY, ObjectRef, Target
from containerkit.policy.podspec import WORKLOAD_KEY
from containerkit.spec import ContainerSpec

DIGEST = "sha256:" + "a" * 64
CLEAN_SPEC = ContainerSpec(f"python:3.11-slim@{DIGEST}")
KINDS = ("Pod", "DockerRun", "ConfigMap", "Dockerfile", "Compose", "HelmValues")
FILE_KINDS = {"Dockerfile": "dockerfile", "Compose": "compose", "HelmValues": "helm_values"}
UNIT = Path(__file__).resolve().parent


def _clean_pod() -> dict[str, Any]:
    data: dict[str, Any] = pod_target(render_pod(CLEAN_SPEC, name="clean")).data
    return data


def _pod_with(container: dict[str, Any], **spec: Any) -> dict[str, Any]:
    pod = _clean_pod()
    pod["spec"]["containers"][0].update(container)
    pod["spec"].update(spec)
    return pod


def _bad_pods() -> list[dict[str, Any]]:
    root = _pod_with(
        {
            "image": "python:latest",
            "imagePullPolicy": "Always",
            "securityContext": {
                "privileged": True,
                "allowPrivilegeEscalation": True,
                "runAsUser": 0,
                "runAsNonRoot": False,
                "capabilities": {"add": ["SYS_ADMIN"]},
                "procMount": "Unmasked",
                "seLinuxOptions": {"type": "spc_t"},
                "appArmorProfile": {"type": "Unconfined"},
                "seccompProfile": {"type": "Unconfined"},
                "windowsOptions": {"hostProcess": True},
            },
            "resources": {},
            "ports": [{"containerPort": 80, "hostPort": 80}],
            "env": [{"name": "DB_PASSWORD", "value": "hunter2-secret"}],
            "livenessProbe": {"httpGet": {"host": "10.0.0.1", "port": 80, "path": "/"}},
            "volumeMounts": [{"name": "host", "mountPath": "/host"}],
        },
        hostNetwork=True,
        automountServiceAccountToken=True,
        volumes=[{"name": "host", "hostPath": {"path": "/"}}],
        securityContext={"sysctls": [{"name": "kernel.msgmax", "value": "1"}]},
    )
    # A privileged container makes the finer baseline checks redundant (policy.overrides): those fire
    # on an unprivileged one.
    low_uid = _pod_with(
        {
            "image": "python:3.11",
            "imagePullPolicy": "IfNotPresent",
            "securityContext": {
                "runAsUser": 1000,
                "runAsNonRoot": True,
                "capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]},
                "procMount": "Unmasked",
                "seccompProfile": {"type": "Unconfined"},
            },
            "volumeMounts": [{"name": "host", "mountPath": "/host"}],
        },
        volumes=[{"name": "host", "hostPath": {"path": "/srv"}}],
    )
    service = _clean_pod()
    service[WORKLOAD_KEY] = {"kind": "Deployment", "replicas": 3, "podPath": "spec.template"}
    service["spec"]["restartPolicy"] = "Always"
    for container in service["spec"]["containers"]:
        container.pop("livenessProbe", None)
        container.pop("readinessProbe", None)
    return [root, low_uid, service]


def _docker_fixtures() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    clean = render_docker(CLEAN_SPEC).as_policy_data()
    stock = docker_run(
        StockArgs(
            image="python",
            privileged=True,
            network_mode="host",
            private_environment={"API_TOKEN": "abc123-secret-token"},
            mounts=({"Target": "/var/run/docker.sock", "Source": "/var/run/docker.sock", "Type": "bind"},),
            cpus=1.0,
        )
    ).policy
    unconfined = {**copy.deepcopy(clean), "security_opt": ["seccomp=unconfined"]}
    secret_env = {**copy.deepcopy(clean), "secret_env": ["API_TOKEN"]}
    return clean, [stock, unconfined, secret_env]


def _fired(
    kind: str, data: Any, suppressions: dict[str, str] | None = None, rule_sets: list[str] | None = None
) -> set[str]:
    target = Target(kind, ObjectRef(kind=kind, name="fixture"), data, suppressions or {})
    return {f.rule_id for f in evaluate(target, rule_sets)}


def _ids(kind: str) -> set[str]:
    load_rules(kind)
    return {r.id for r in REGISTRY if kind in r.targets and r.rule_set != CORE}


def _file_kind_cases(kind: str) -> tuple[set[str], set[str]]:
    """The rule ids the per-kind test module has a failing and a passing case for."""
    name = f"test_rules_{FILE_KINDS[kind]}"
    spec = importlib.util.spec_from_file_location(f"_ck_{name}", UNIT / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cases = module.CASES
    return {c[0] for c in cases if c[2]}, {c[0] for c in cases if not c[2]}


def test_clean_objects_are_quiet() -> None:
    assert _fired("Pod", _clean_pod()) == set()
    clean, _ = _docker_fixtures()
    assert _fired("DockerRun", clean) == set()
    assert _fired("ConfigMap", _config_map({"LOG_LEVEL": "info"})) == set()


def test_every_pod_rule_fires_on_a_fixture() -> None:
    # pss-restricted rules replace their baseline twins when both sets run (policy.overrides), so the
    # baseline set is also evaluated on its own, as `--rule-set pss-baseline` does.
    fired = set().union(*(_fired("Pod", pod) for pod in _bad_pods()))
    baseline = set().union(*(_fired("Pod", pod, rule_sets=[PSS_BASELINE]) for pod in _bad_pods()))
    assert fired | baseline == _ids("Pod")
    assert _fired("Pod", _clean_pod(), rule_sets=[PSS_BASELINE]) == set()


def test_every_docker_run_rule_fires_on_a_fixture() -> None:
    _, bad = _docker_fixtures()
    fired = set().union(*(_fired("DockerRun", data) for data in bad))
    assert fired == _ids("DockerRun")


def _config_map(data: dict[str, str]) -> SimpleNamespace:
    """A ConfigMap as the manifest loader hands it to rules (``data`` / ``binary_data``)."""
    return SimpleNamespace(data=data, binary_data=None)


def test_the_config_map_rule_fires() -> None:
    assert _fired("ConfigMap", _config_map({"DB_PASSWORD": "hunter2-secret"})) == _ids("ConfigMap")


def test_the_core_rules_fire_on_bad_suppressions() -> None:
    load_rules("Pod")
    core = {r.id for r in REGISTRY if r.rule_set == CORE}
    fired = _fired("Pod", _clean_pod(), {"HRD-001": "", "NOPE-999": "typo"})
    assert fired == core == {"CK001", "CK002"}
    assert _fired("Pod", _clean_pod(), {"HRD-001": "scratch image, checked elsewhere"}) == set()


@pytest.mark.parametrize("kind", list(FILE_KINDS))
def test_file_kind_rules_each_have_a_failing_and_a_passing_case(kind: str) -> None:
    failing, passing = _file_kind_cases(kind)
    ids = _ids(kind)
    assert failing <= ids and passing <= ids
    # Helm's HLM-006 is proven on the chart's own values file (test_rules_helm_values).
    missing = ids - failing - ({"HLM-006"} if kind == "HelmValues" else set())
    assert missing == set()


def test_every_registered_id_is_covered_by_one_of_the_tests_above() -> None:
    for kind in KINDS:
        load_rules(kind)
    covered_kinds = {"Pod", "DockerRun", "ConfigMap", *FILE_KINDS}
    assert {r.id for r in REGISTRY if not set(r.targets) & covered_kinds} == set()
