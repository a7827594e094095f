"""Pod Security Standards rules: verdicts must match the admission controller's, field for field.

Each case states the verdict the Kubernetes 1.37 PodSecurity admission controller gives (from the
``k8s.io/pod-security-admission/policy`` check semantics) as the set of rule ids that must fire.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes.client import models as k8s

from containerkit.policy.engine import evaluate_pod

BOTH = ["pss-baseline", "pss-restricted"]


def restricted_pod() -> dict[str, Any]:
    """A minimal pod that the restricted level admits."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "c",
                    "image": "img:1",
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                }
            ],
        },
    }


def _ids(pod: dict[str, Any], sets: list[str]) -> set[str]:
    return {f.rule_id for f in evaluate_pod(pod, rule_sets=sets)}


def sc(pod: dict[str, Any]) -> dict[str, Any]:
    return pod["spec"]["securityContext"]


def c0(pod: dict[str, Any]) -> dict[str, Any]:
    return pod["spec"]["containers"][0]


def csc(pod: dict[str, Any]) -> dict[str, Any]:
    return c0(pod)["securityContext"]


def add_container(field: str, **security: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(pod: dict[str, Any]) -> None:
        ctx = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, **security}
        for k in [k for k, v in ctx.items() if v is None]:
            del ctx[k]
        entry = {"name": f"{field}-x", "image": "img:1", "securityContext": ctx}
        pod["spec"].setdefault(field, []).append(entry)

    return mutate


Mutation = Callable[[dict[str, Any]], None]

# (case id, mutation, rule ids expected with both levels selected)
CASES: list[tuple[str, Mutation, set[str]]] = [
    ("clean", lambda p: None, set()),
    # --- run as non-root / run as user: the cases peers get wrong
    ("runAsNonRoot true + pod runAsUser 0 fails", lambda p: sc(p).update(runAsUser=0), {"PSS-R-004"}),
    ("container runAsUser 0 fails", lambda p: csc(p).update(runAsUser=0, runAsNonRoot=True), {"PSS-R-004"}),
    (
        "pod runAsUser 0 fails even if containers override",
        lambda p: (sc(p).update(runAsUser=0), csc(p).update(runAsUser=1000)),
        {"PSS-R-004"},
    ),
    ("pod true covers containers", lambda p: None, set()),
    ("pod true, container false fails", lambda p: csc(p).update(runAsNonRoot=False), {"PSS-R-003"}),
    (
        "pod false fails even if containers true",
        lambda p: (sc(p).update(runAsNonRoot=False), csc(p).update(runAsNonRoot=True)),
        {"PSS-R-003"},
    ),
    (
        "pod unset, container true passes",
        lambda p: (sc(p).pop("runAsNonRoot"), csc(p).update(runAsNonRoot=True)),
        set(),
    ),
    ("pod unset, container unset fails", lambda p: sc(p).pop("runAsNonRoot"), {"PSS-R-003"}),
    (
        "user namespace relaxes runAsNonRoot/runAsUser",
        lambda p: (p["spec"].update(hostUsers=False), sc(p).update(runAsNonRoot=False, runAsUser=0)),
        set(),
    ),
    # --- seccomp
    (
        "seccomp Localhost at pod level passes",
        lambda p: sc(p).update(seccompProfile={"type": "Localhost", "localhostProfile": "p.json"}),
        set(),
    ),
    (
        "seccomp Localhost at container level passes",
        lambda p: (
            sc(p).pop("seccompProfile"),
            csc(p).update(seccompProfile={"type": "Localhost", "localhostProfile": "p.json"}),
        ),
        set(),
    ),
    ("seccomp unset everywhere fails", lambda p: sc(p).pop("seccompProfile"), {"PSS-R-005"}),
    (
        "seccomp Unconfined container fails (restricted overrides baseline)",
        lambda p: csc(p).update(seccompProfile={"type": "Unconfined"}),
        {"PSS-R-005"},
    ),
    (
        "pod Unconfined fails even if container RuntimeDefault",
        lambda p: (
            sc(p).update(seccompProfile={"type": "Unconfined"}),
            csc(p).update(seccompProfile={"type": "RuntimeDefault"}),
        ),
        {"PSS-R-005"},
    ),
    # --- capabilities
    ("add NET_BIND_SERVICE passes", lambda p: csc(p)["capabilities"].update(add=["NET_BIND_SERVICE"]), set()),
    (
        "add CHOWN: baseline yes, restricted no",
        lambda p: csc(p)["capabilities"].update(add=["CHOWN"]),
        {"PSS-R-006"},
    ),
    (
        "add SYS_ADMIN: one finding from the overriding check",
        lambda p: csc(p)["capabilities"].update(add=["SYS_ADMIN"]),
        {"PSS-R-006"},
    ),
    ("drop without ALL fails", lambda p: csc(p)["capabilities"].update(drop=["NET_RAW"]), {"PSS-R-006"}),
    ("no capabilities block fails", lambda p: csc(p).pop("capabilities"), {"PSS-R-006"}),
    # --- privilege escalation
    ("allowPrivilegeEscalation unset fails", lambda p: csc(p).pop("allowPrivilegeEscalation"), {"PSS-R-002"}),
    (
        "allowPrivilegeEscalation true fails",
        lambda p: csc(p).update(allowPrivilegeEscalation=True),
        {"PSS-R-002"},
    ),
    # --- init and ephemeral containers are checked like the others
    ("init container without drop ALL", add_container("initContainers", capabilities=None), {"PSS-R-006"}),
    ("ephemeral container privileged", add_container("ephemeralContainers", privileged=True), {"PSS-B-002"}),
    (
        "ephemeral container runAsNonRoot false",
        add_container("ephemeralContainers", runAsNonRoot=False),
        {"PSS-R-003"},
    ),
    (
        "init container allowPrivilegeEscalation unset",
        add_container("initContainers", allowPrivilegeEscalation=None),
        {"PSS-R-002"},
    ),
    (
        "native sidecar is an init container to PSA",
        lambda p: (
            add_container("initContainers", privileged=True)(p),
            p["spec"]["initContainers"][0].update(restartPolicy="Always"),
        ),
        {"PSS-B-002"},
    ),
    # --- Windows pods are exempt from the Linux-only restricted checks
    (
        "windows pod exempt from seccomp/caps/escalation",
        lambda p: (p["spec"].update(os={"name": "windows"}), sc(p).pop("seccompProfile"), csc(p).clear()),
        set(),
    ),
    # --- volumes
    (
        "hostPath: restricted check overrides baseline",
        lambda p: p["spec"].update(volumes=[{"name": "h", "hostPath": {"path": "/"}}]),
        {"PSS-R-001"},
    ),
    (
        "nfs volume fails restricted",
        lambda p: p["spec"].update(volumes=[{"name": "n", "nfs": {"server": "s", "path": "/"}}]),
        {"PSS-R-001"},
    ),
    (
        "image, csi, projected, ephemeral volumes pass",
        lambda p: p["spec"].update(
            volumes=[
                {"name": "i", "image": {"reference": "x:1"}},
                {"name": "c", "csi": {"driver": "d"}},
                {"name": "p", "projected": {"sources": []}},
                {"name": "e", "ephemeral": {}},
            ]
        ),
        set(),
    ),
    ("source-less volume defaults to emptyDir", lambda p: p["spec"].update(volumes=[{"name": "x"}]), set()),
    # --- procMount
    (
        "procMount Unmasked fails (restricted overrides baseline)",
        lambda p: csc(p).update(procMount="Unmasked"),
        {"PSS-R-007"},
    ),
    (
        "procMount Unmasked still fails restricted in a user namespace",
        lambda p: (p["spec"].update(hostUsers=False), csc(p).update(procMount="Unmasked")),
        {"PSS-R-007"},
    ),
]


@pytest.mark.parametrize(("mutate", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_restricted_verdicts(mutate: Mutation, expected: set[str]) -> None:
    pod = restricted_pod()
    mutate(pod)
    assert _ids(pod, BOTH) == expected


def baseline_pod() -> dict[str, Any]:
    """The minimally specified pod: baseline admits it."""
    return {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "img:1"}]}}


def bsc(pod: dict[str, Any]) -> dict[str, Any]:
    return pod["spec"].setdefault("securityContext", {})


def bcsc(pod: dict[str, Any]) -> dict[str, Any]:
    return pod["spec"]["containers"][0].setdefault("securityContext", {})


BASELINE_CASES: list[tuple[str, Mutation, set[str]]] = [
    ("default pod", lambda p: None, set()),
    ("hostNetwork", lambda p: p["spec"].update(hostNetwork=True), {"PSS-B-001"}),
    ("hostPID false is fine", lambda p: p["spec"].update(hostPID=False), set()),
    ("hostIPC", lambda p: p["spec"].update(hostIPC=True), {"PSS-B-001"}),
    ("privileged", lambda p: bcsc(p).update(privileged=True), {"PSS-B-002"}),
    ("privileged false", lambda p: bcsc(p).update(privileged=False), set()),
    (
        "add default-set capability",
        lambda p: bcsc(p).update(capabilities={"add": ["CHOWN", "KILL", "SYS_CHROOT"]}),
        set(),
    ),
    ("add NET_RAW", lambda p: bcsc(p).update(capabilities={"add": ["NET_RAW"]}), {"PSS-B-003"}),
    (
        "hostPath volume",
        lambda p: p["spec"].update(volumes=[{"name": "h", "hostPath": {"path": "/var/run"}}]),
        {"PSS-B-004"},
    ),
    (
        "hostPort",
        lambda p: p["spec"]["containers"][0].update(ports=[{"containerPort": 80, "hostPort": 8080}]),
        {"PSS-B-005"},
    ),
    (
        "hostPort 0 and containerPort only",
        lambda p: p["spec"]["containers"][0].update(
            ports=[{"containerPort": 80, "hostPort": 0}, {"containerPort": 81}]
        ),
        set(),
    ),
    (
        "AppArmor Unconfined field",
        lambda p: bsc(p).update(appArmorProfile={"type": "Unconfined"}),
        {"PSS-B-006"},
    ),
    (
        "AppArmor Localhost field",
        lambda p: bcsc(p).update(appArmorProfile={"type": "Localhost", "localhostProfile": "x"}),
        set(),
    ),
    (
        "AppArmor unconfined annotation",
        lambda p: p["metadata"].update(
            annotations={"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}
        ),
        {"PSS-B-006"},
    ),
    (
        "AppArmor localhost annotation",
        lambda p: p["metadata"].update(
            annotations={"container.apparmor.security.beta.kubernetes.io/c": "localhost/prof"}
        ),
        set(),
    ),
    (
        "SELinux container_engine_t (1.31+)",
        lambda p: bsc(p).update(seLinuxOptions={"type": "container_engine_t"}),
        set(),
    ),
    ("SELinux spc_t", lambda p: bcsc(p).update(seLinuxOptions={"type": "spc_t"}), {"PSS-B-007"}),
    ("SELinux user", lambda p: bsc(p).update(seLinuxOptions={"user": "system_u"}), {"PSS-B-007"}),
    ("SELinux level only", lambda p: bsc(p).update(seLinuxOptions={"level": "s0:c123,c456"}), set()),
    ("procMount Unmasked", lambda p: bcsc(p).update(procMount="Unmasked"), {"PSS-B-008"}),
    (
        "procMount Unmasked in user namespace (1.35+)",
        lambda p: (p["spec"].update(hostUsers=False), bcsc(p).update(procMount="Unmasked")),
        set(),
    ),
    (
        "seccomp Unconfined container",
        lambda p: bcsc(p).update(seccompProfile={"type": "Unconfined"}),
        {"PSS-B-009"},
    ),
    ("seccomp Unconfined pod", lambda p: bsc(p).update(seccompProfile={"type": "Unconfined"}), {"PSS-B-009"}),
    (
        "seccomp Localhost",
        lambda p: bsc(p).update(seccompProfile={"type": "Localhost", "localhostProfile": "x"}),
        set(),
    ),
    (
        "safe sysctls incl. 1.32 and 1.37 additions",
        lambda p: bsc(p).update(
            sysctls=[
                {"name": "net.ipv4.tcp_rmem", "value": "1"},
                {"name": "net.ipv4.tcp_notsent_lowat", "value": "1"},
                {"name": "net.ipv4.ip_local_reserved_ports", "value": "1"},
            ]
        ),
        set(),
    ),
    (
        "unsafe sysctl",
        lambda p: bsc(p).update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]),
        {"PSS-B-010"},
    ),
    ("windows hostProcess", lambda p: bcsc(p).update(windowsOptions={"hostProcess": True}), {"PSS-B-011"}),
    (
        "probe host",
        lambda p: p["spec"]["containers"][0].update(
            livenessProbe={"httpGet": {"host": "10.0.0.1", "port": 80}}
        ),
        {"PSS-B-012"},
    ),
    (
        "lifecycle tcpSocket host",
        lambda p: p["spec"]["containers"][0].update(
            lifecycle={"preStop": {"tcpSocket": {"host": "metadata", "port": 80}}}
        ),
        {"PSS-B-012"},
    ),
    (
        "probe host empty",
        lambda p: p["spec"]["containers"][0].update(readinessProbe={"httpGet": {"host": "", "port": 80}}),
        set(),
    ),
]


@pytest.mark.parametrize(
    ("mutate", "expected"), [c[1:] for c in BASELINE_CASES], ids=[c[0] for c in BASELINE_CASES]
)
def test_baseline_verdicts(mutate: Mutation, expected: set[str]) -> None:
    pod = baseline_pod()
    mutate(pod)
    assert _ids(pod, ["pss-baseline"]) == expected


def test_overridden_baseline_rule_fires_when_baseline_runs_alone() -> None:
    pod = restricted_pod()
    csc(pod)["capabilities"]["add"] = ["SYS_ADMIN"]
    pod["spec"]["volumes"] = [{"name": "h", "hostPath": {"path": "/"}}]
    assert _ids(pod, ["pss-baseline"]) == {"PSS-B-003", "PSS-B-004"}


def test_paths_and_containers_point_at_the_offending_field() -> None:
    pod = restricted_pod()
    add_container("initContainers", allowPrivilegeEscalation=None)(pod)
    add_container("ephemeralContainers", capabilities=None)(pod)
    by_rule = {f.rule_id: f for f in evaluate_pod(pod, rule_sets=BOTH)}
    assert by_rule["PSS-R-002"].path == "spec.initContainers[0].securityContext.allowPrivilegeEscalation"
    assert by_rule["PSS-R-002"].obj.container == "initContainers-x"
    assert by_rule["PSS-R-006"].path == "spec.ephemeralContainers[0].securityContext.capabilities.drop"


def test_v1pod_model_is_evaluated_like_its_dict() -> None:
    pod = k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="m"),
        spec=k8s.V1PodSpec(
            security_context=k8s.V1PodSecurityContext(run_as_non_root=True, run_as_user=0),
            containers=[k8s.V1Container(name="c", image="i:1")],
        ),
    )
    ids = {f.rule_id for f in evaluate_pod(pod, rule_sets=BOTH)}
    assert {"PSS-R-004", "PSS-R-005", "PSS-R-006", "PSS-R-002"} <= ids
    assert "PSS-R-003" not in ids  # pod-level true covers the container


def test_mutation_cases_do_not_leak_between_runs() -> None:
    pod = restricted_pod()
    before = copy.deepcopy(pod)
    evaluate_pod(pod)
    assert pod == before  # rules never modify what they read
