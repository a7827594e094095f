"""Hardened tier (pods and docker run settings): each rule passes a hardened object, fails a weakened one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from containerkit.facts.secrets import secret_literal
from containerkit.policy.engine import evaluate_docker_run, evaluate_pod
from containerkit.policy.image_pinning import image_parts
from containerkit.policy.model import Severity
from containerkit.policy.podspec import WORKLOAD_KEY

DIGEST = "sha256:" + "a" * 64


def hardened_pod() -> dict[str, Any]:
    """A run-to-completion task pod as containerkit renders it: no hardened finding at all."""
    return {
        "metadata": {"name": "task"},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 50000,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "base",
                    "image": f"registry.local/task:1.2.3@{DIGEST}",
                    "imagePullPolicy": "IfNotPresent",
                    "env": [
                        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}
                    ],
                    "securityContext": {
                        "readOnlyRootFilesystem": True,
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "resources": {
                        "requests": {"cpu": "250m", "memory": "256Mi", "ephemeral-storage": "1Gi"},
                        "limits": {"memory": "512Mi", "ephemeral-storage": "2Gi"},
                    },
                }
            ],
        },
    }


def _c(pod: dict[str, Any]) -> dict[str, Any]:
    return pod["spec"]["containers"][0]


def hardened_ids(pod: dict[str, Any]) -> set[str]:
    return {f.rule_id for f in evaluate_pod(pod, rule_sets=["hardened"])}


Mutation = Callable[[dict[str, Any]], Any]
POD_CASES: list[tuple[str, Mutation, set[str]]] = [
    ("clean", lambda p: None, set()),
    ("writable root fs", lambda p: _c(p)["securityContext"].pop("readOnlyRootFilesystem"), {"HRD-001"}),
    ("no cpu request", lambda p: _c(p)["resources"]["requests"].pop("cpu"), {"HRD-002"}),
    ("memory limit only counts as request", lambda p: _c(p)["resources"]["requests"].pop("memory"), set()),
    ("no memory limit", lambda p: _c(p)["resources"]["limits"].pop("memory"), {"HRD-003"}),
    (
        "no ephemeral-storage limit",
        lambda p: _c(p)["resources"]["limits"].pop("ephemeral-storage"),
        {"HRD-004"},
    ),
    ("latest tag", lambda p: _c(p).update(image="python:latest"), {"HRD-005"}),
    ("untagged", lambda p: _c(p).update(image="registry:5000/python"), {"HRD-005"}),
    (
        "tag without digest: info + pull policy",
        lambda p: _c(p).update(image="python:3.11"),
        {"HRD-006", "HRD-007"},
    ),
    ("tag with Always", lambda p: _c(p).update(image="python:3.11", imagePullPolicy="Always"), {"HRD-006"}),
    ("digest with any pull policy", lambda p: _c(p).update(imagePullPolicy="Never"), set()),
    ("token automounted", lambda p: p["spec"].pop("automountServiceAccountToken"), {"HRD-008"}),
    (
        "literal password",
        lambda p: _c(p)["env"].append({"name": "DB_PASSWORD", "value": "hunter2"}),
        {"HRD-009"},
    ),
    (
        "credential-shaped value",
        lambda p: _c(p)["env"].append({"name": "X", "value": "AKIAABCDEFGHIJKLMNOP"}),
        {"HRD-009"},
    ),
    (
        "templated secret is not literal",
        lambda p: _c(p)["env"].append({"name": "API_TOKEN", "value": "{{ var.value.t }}"}),
        set(),
    ),
    (
        "secret reference name is fine",
        lambda p: _c(p)["env"].append({"name": "TOKEN_FILE", "value": "/run/secrets/t"}),
        set(),
    ),
    ("task pod needs no probes", lambda p: None, set()),
    (
        "sidecar without probe",
        lambda p: p["spec"].update(initContainers=[{**_c(p), "name": "proxy", "restartPolicy": "Always"}]),
        {"HRD-010"},
    ),
    (
        "uid 1000 is info (peer disagreement)",
        lambda p: p["spec"]["securityContext"].update(runAsUser=1000),
        {"HRD-013"},
    ),
    ("container uid overrides pod uid", lambda p: _c(p)["securityContext"].update(runAsUser=10001), set()),
]


@pytest.mark.parametrize(("mutate", "expected"), [c[1:] for c in POD_CASES], ids=[c[0] for c in POD_CASES])
def test_hardened_pod_rules(mutate: Mutation, expected: set[str]) -> None:
    pod = hardened_pod()
    mutate(pod)
    assert hardened_ids(pod) == expected


def test_long_running_pods_need_probes_and_priority() -> None:
    pod = hardened_pod()
    pod["spec"]["restartPolicy"] = "Always"
    findings = evaluate_pod(pod, rule_sets=["hardened"])
    assert {(f.rule_id, f.path) for f in findings} == {
        ("HRD-010", "spec.containers[0].livenessProbe"),
        ("HRD-010", "spec.containers[0].readinessProbe"),
        ("HRD-012", "spec.priorityClassName"),
    }
    _c(pod).update(
        livenessProbe={"exec": {"command": ["true"]}}, readinessProbe={"exec": {"command": ["true"]}}
    )
    pod["spec"]["priorityClassName"] = "service"
    assert hardened_ids(pod) == set()


def test_multi_replica_workloads_need_spread() -> None:
    pod = hardened_pod()
    pod[WORKLOAD_KEY] = {"kind": "Deployment", "replicas": 3, "podPath": "spec.template"}
    assert "HRD-011" in hardened_ids(pod)
    pod["spec"]["topologySpreadConstraints"] = [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname"}]
    assert "HRD-011" not in hardened_ids(pod)
    pod[WORKLOAD_KEY]["replicas"] = 1
    pod["spec"].pop("topologySpreadConstraints")
    assert "HRD-011" not in hardened_ids(pod)


def test_uid_decision_pss_error_vs_hardened_info() -> None:
    """UID 0 is a PSS error; 1..9999 only hardened info; >= 10000 clean (decision documented in HRD-013)."""
    pod = hardened_pod()
    pod["spec"]["securityContext"]["runAsUser"] = 0
    sev = {f.rule_id: f.severity for f in evaluate_pod(pod)}
    assert sev.get("PSS-R-004") is Severity.ERROR and "HRD-013" not in sev
    pod["spec"]["securityContext"]["runAsUser"] = 1000
    sev = {f.rule_id: f.severity for f in evaluate_pod(pod)}
    assert "PSS-R-004" not in sev and sev["HRD-013"] is Severity.INFO


def test_secret_and_image_helpers() -> None:
    assert secret_literal("POSTGRES_URL", "postgresql://airflow:pw@db/airflow")
    assert secret_literal("LOG_LEVEL", "debug") is None
    assert secret_literal("AUTH_ENABLED", "true") is None
    assert image_parts("localhost:5000/a/b").tag is None
    assert image_parts("localhost:5000/a/b:1.0").tag == "1.0"
    assert image_parts(f"a@{DIGEST}").floating is False


def hardened_run() -> dict[str, Any]:
    return {
        "image": "containerkit/base-python:3.11",
        "user": "50000:0",
        "read_only": True,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "mem_limit": "512m",
        "nano_cpus": 1_000_000_000,
        "pids_limit": 256,
        "environment": {"LOG_LEVEL": "info"},
        "mounts": [{"Target": "/tmp", "Source": "", "Type": "tmpfs"}],
    }


RUN_CASES: list[tuple[str, Mutation, set[str]]] = [
    ("clean", lambda d: None, set()),
    ("no user", lambda d: d.pop("user"), {"DKR-001"}),
    ("root user", lambda d: d.update(user="root:root"), {"DKR-001"}),
    ("writable", lambda d: d.update(read_only=False), {"DKR-002"}),
    ("caps not dropped", lambda d: d.update(cap_drop=[]), {"DKR-003"}),
    ("cap_add SYS_ADMIN", lambda d: d.update(cap_add=["SYS_ADMIN"]), {"DKR-003"}),
    ("cap_add NET_BIND_SERVICE", lambda d: d.update(cap_add=["CAP_NET_BIND_SERVICE"]), set()),
    ("no no-new-privileges", lambda d: d.update(security_opt=[]), {"DKR-004"}),
    ("seccomp unconfined", lambda d: d["security_opt"].append("seccomp=unconfined"), {"DKR-005"}),
    ("privileged", lambda d: d.update(privileged=True), {"DKR-006"}),
    ("no memory limit", lambda d: d.pop("mem_limit"), {"DKR-007"}),
    ("cpu_quota counts as a limit", lambda d: (d.pop("nano_cpus"), d.update(cpu_quota=50000)), set()),
    ("no cpu limit", lambda d: d.pop("nano_cpus"), {"DKR-008"}),
    ("no pids limit", lambda d: d.pop("pids_limit"), {"DKR-009"}),
    ("host network", lambda d: d.update(network_mode="host"), {"DKR-010"}),
    (
        "docker socket bind",
        lambda d: d.update(binds=["/var/run/docker.sock:/var/run/docker.sock"]),
        {"DKR-011"},
    ),
    (
        "docker socket mount",
        lambda d: d["mounts"].append({"Source": "/run/docker.sock", "Target": "/s"}),
        {"DKR-011"},
    ),
    ("literal secret env", lambda d: d["environment"].update(AWS_SECRET_ACCESS_KEY="abc123"), {"DKR-012"}),
    ("latest image", lambda d: d.update(image="python"), {"DKR-013"}),
]


@pytest.mark.parametrize(("mutate", "expected"), [c[1:] for c in RUN_CASES], ids=[c[0] for c in RUN_CASES])
def test_docker_run_rules(mutate: Mutation, expected: set[str]) -> None:
    data = hardened_run()
    mutate(data)
    assert {f.rule_id for f in evaluate_docker_run(data)} == expected


def test_messages_never_echo_secret_values() -> None:
    data = hardened_run()
    data["environment"]["DB_PASSWORD"] = "s3cr3t-value"
    pod = hardened_pod()
    _c(pod)["env"].append({"name": "DB_PASSWORD", "value": "s3cr3t-value"})
    for f in [*evaluate_docker_run(data), *evaluate_pod(pod)]:
        assert "s3cr3t-value" not in f.message + f.path + f.fix
