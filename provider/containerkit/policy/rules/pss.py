"""Kubernetes Pod Security Standards, ``baseline`` and ``restricted`` levels, as of Kubernetes 1.37.

One rule per Pod Security Admission check (``psa_check`` is its id in
``k8s.io/pod-security-admission/policy``), with the admission controller's semantics: init, regular
and ephemeral containers alike; pod-level and container-level fields combined as it combines them
(pod ``runAsNonRoot: true`` covers containers that leave it unset, pod-level ``false`` fails even when
every container says ``true``; seccomp ``Localhost`` passes); user-namespace (``hostUsers: false``) and
Windows (``spec.os.name: windows``) relaxations where the controller applies them; and the restricted
checks that replace a baseline check (``OverrideCheckIDs``) replace the matching rule here.

The rules report one finding per offending field (the controller reports one message per check), so a
pod is admitted at a level exactly when the rules of that level report nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from containerkit.facts.pss import BASELINE_CAPABILITIES, RESTRICTED_CAPABILITIES
from containerkit.policy.model import PSS_BASELINE as BASELINE
from containerkit.policy.model import PSS_RESTRICTED as RESTRICTED
from containerkit.policy.model import Severity, Violation, rule
from containerkit.policy.overrides import overrides
from containerkit.policy.podspec import (
    containers,
    is_windows,
    metadata,
    pod_security_context,
    spec,
    user_namespaced,
)

PSS_VERSION = "1.37"
POD = ("Pod",)

# sysctls: namespaced and isolated per pod (1.0 set + 1.27, 1.29, 1.32 and 1.37 additions).
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",
        "net.ipv4.tcp_slow_start_after_idle",
        "net.ipv4.tcp_notsent_lowat",
    }
)
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})
APPARMOR_TYPES = frozenset({"RuntimeDefault", "Localhost"})
APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
SECCOMP_TYPES = frozenset({"RuntimeDefault", "Localhost"})
# restrictedVolumes: inline sources allowed under restricted (``image`` since 1.33).
RESTRICTED_VOLUME_SOURCES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "image",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)


def _docs(check: str) -> str:
    return f"Pod Security Standards {PSS_VERSION}, admission check `{check}`."


# ---------------------------------------------------------------- baseline


@rule(
    "PSS-B-001",
    title="host-namespaces",
    severity=Severity.ERROR,
    rule_set=BASELINE,
    targets=POD,
    psa_check="hostNamespaces",
    peers={"checkov": "CKV_K8S_17,CKV_K8S_18,CKV_K8S_19", "kube-linter": "host-network,host-pid,host-ipc"},
    rationale="Sharing the node's network, PID or IPC namespace lets a container see and reach host "
    "processes and interfaces. " + _docs("hostNamespaces"),
    fix="Remove spec.hostNetwork, spec.hostPID and spec.hostIPC (or set them to false).",
)
def host_namespaces(pod: Mapping[str, Any]) -> Iterator[Violation]:
    s = spec(pod)
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if s.get(key) is True:
            yield Violation(f"spec.{key}", f"{key}=true shares the node's namespace")


@rule(
    "PSS-B-002",
    title="privileged",
    severity=Severity.ERROR,
    rule_set=BASELINE,
    targets=POD,
    psa_check="privileged",
    peers={"checkov": "CKV_K8S_16", "kube-linter": "privileged-container", "polaris": "runAsPrivileged"},
    rationale="A privileged container has every capability and all host devices: it is root on the node. "
    + _docs("privileged"),
    fix="Remove securityContext.privileged (or set it to false); add the one capability needed instead.",
)
def privileged(pod: Mapping[str, Any]) -> Iterator[Violation]:
    for c in containers(pod):
        if c.security_context.get("privileged") is True:
            yield Violation(f"{c.path}.securityContext.privileged", "privileged=true", c.name)


@rule(
    "PSS-B-003",
    title="capabilities-baseline",
    severity=Severity.ERROR,
    rule_set=BASELINE,
    targets=POD,
    psa_check="capabilities_baseline",
    peers={"checkov": "CKV_K8S_25", "polaris": "dangerousCapabilities"},
    rationale="Capabilities beyond the container runtime's default set (e.g. SYS_ADMIN, NET_RAW, "
    "NET_ADMIN) grant kernel privileges that enable escapes. " + _docs("capabilities_baseline"),
    fix="Remove the capability from securityContext.capabilities.add; allowed: "
    + ", ".join(sorted(BASELINE_CAPABILITIES))
    + ".",
)
def capabilities_baseline(pod: Mapping[str, Any]) -> Iterator[Violation]:
    for c in containers(pod):
        added = (c.security_context.get("capabilities") or {}).get("add") or ()
        for i, cap in enumerate(added):
            if cap not in BASELINE_CAPABILITIES:
                yield Violation(
                    f"{c.path}.securityContext.capabilities.add[{i}]", f"adds capability {cap}", c.name
                )


@rule(
    "PSS-B-004",
    title="host-path-volumes",
    severity=Severity.ERROR,
    rule_set=BASELINE,
    targets=POD,
    psa_check="hostPathVolumes",
    peers={"kube-linter": "host-mounts"},
    rationale="A hostPath volume exposes the node's filesystem (kubelet credentials, container runtime "
    "socket) to the pod. " + _docs("hostPathVolumes"),
    fix="Use emptyDir, a PersistentVolumeClaim, a ConfigMap/Secret or a CSI volume instead of hostPath.",
)
def host_path_volumes(pod: Mapping[str, Any]) -> Iterator[Violation]:
    for i, v in enumerate(spec(pod).get("volumes") or ()):
        if (v or {}).get("hostPath") is not None:
            yield Violation(f"spec.volumes[{i}].hostPath", f"volume {v.get('name')!r} is a hostPath volume")


@rule(
    "PSS-B-005",
    title="host-ports",
    severity=Severity.ERROR,
    rule_set=BASELINE,
    targets=POD,
    psa_check="hostPorts",
    peers={"checkov": "CKV_K8S_26", "polaris": "hostPortSet"},
    rationale="A hostPort binds the node's interface, bypassing network policy and limiting scheduling. "
    + _docs("hostPorts"),
    fix="Remove ports[].hostPort (or set it to 0); expose the port through a Service.",
)
def host_ports(pod: Mapping[str, Any]) -> Iterator[Violation]:
    for c in containers(pod):
        for j, p in enumerate(c.container.get("ports") or ()):
            if (p or {}).get("hostPort") not in (None, 0):
                yield Violation(f"{c.path}.ports[{j}].hostPort", f"hostPort={p['hostPort']}", c.name)


def _apparmor_violations(pod: Mapping[str, Any]) -> Iterator[Violation]:
    profile = pod_security_context(pod).get("appArmorProfile")
    if profile is not None and profile.get("type") not in APPARMOR_TYPES:
        yield Violation(
            "spec.securityContext.appArmorProfile.type", f"AppArmor profile {profile.get('type')}"
        )
    for c in containers(pod):
        profile = c.security_context.get("appArmorProfile")
        if profile is not None and profile.get("type") not in APPARMOR_TYPES:
            yield Violation(
                f"{c.path}.securityContext.appArmorProfile.type",
                f"AppArmor profile {profile.get('type')}",
                c.name,
            )
    for key, value in (metadata(pod).get("annotations") or {}).items():
        if key.startswith(APPARMOR_ANNOTATION_PREFIX):
            v = "" if value is None else str(value)
            if not (v == "" or v == "runtime/default" or v.startswith("localhost/")):
                yield Violation(f'metadata.annotations["{key}"]', f"AppArmor annotation {v!r}")


@rule(
    "PSS-B-006",
    title="apparmor",
    severity=Severity.ERROR,
    rule_set=BASELINE,
    targets=POD,
    psa_check="appArmorProfile",
    rationale="Overriding the runtime's default AppArmor profile with Unconfined removes a mandatory access "
    "control layer. Both the securityContext field and the deprecated annotation are checked. "
    + _docs("appArmorProfile"),
    fix="Use appArmorProfile.type RuntimeDefault or Localhost (annotation runtime/default, localhost/*).",
)
def apparmor(pod: Mapping[str, Any]) -> Iterator[Violation]:
    yield from _apparmor_violations(pod)


def _selinux_problems(opts: Mapping[str, Any]) -> list[str]:
    problems = []
    if (opts.get("type") or "") not in SELINUX_TYPES:
        problems.append(f"type {opts.get('type')!r}")
    if opts.get("user"):
        problems.append("user set")
    if opts.get("role"):
        problems.append("role set")
    return problems


@rule(
    "PSS-B-007",
    title="selinux",
    severity=Severity.ERROR,
    rule_set=BASELINE,
    targets=POD,
    psa_check="seLinuxOptions",
    rationale="A custom SELinux type, user or role can lift the container out of its confinement. "
    + _docs("seLinuxOptions"),
    fix="Leave seLinuxOptions.user and .role empty; type may only be container_t, container_init_t, "
    "container_kvm_t or container_engine_t.",
)
def selinux(pod: Mapping[str, Any]) -> Iterator[Violation]:
    opts = pod_security_context(pod).get("seLinuxOptions")
    if opts is not None and (problems := _selinux_problems(opts)):
        yield Violation("spec.securityContext.seLinuxOptions", "seLinuxOptions " + ", ".join(problems))
    for c in containers(pod):
        opts = c.security_context.get("seLinuxOptions")
        if opts is not None and (problems := _selinux_problems(opts)):
            yield Violation(
                f"{c.path}.securityContext.seLinuxOptions", "seLinuxOptions " + ", ".join(problems), c.name
            )


def _proc_mount_violations(pod: Mapping[str, Any]) -> Iterator[Violation]:
    for c in containers(pod):
        value = c.security_context.get("procMount")
        if value is not None and value != "Default":
            yield Violation(f"{c.path}.securityContext.procMount", f"procMount={value}", c.name)


@rule(
    "PSS-B-008",
    title="proc-mount",
    severity=Severity.ERROR,
    rule_set=BASELINE,
    targets=POD,
    psa_check="procMount",
    rationale="The default /proc masks hide kernel interfaces; Unmasked exposes them. Since 1.35 baseline "
    "allows it for pods in a user namespace (spec.hostUsers: false). " + _docs("procMount"),
    fix="Remove securityContext.procMount (or set Default), or run the pod with spec.hostUsers: false.",
)
def proc_mount_baseline(pod: Mapping[str, Any]) -> Iterator[Violation]:
    if user_namespaced(pod):
        return
    yield from _proc_mount_violations(pod)


@rule(
    "PSS-B-009",
    title="seccomp-baseline",
    severity=Severity.ERROR,
    rule_set=BASELINE,
    targets=POD,
    psa_check="seccompProfile_baseline",
    rationale="seccomp Unconfined exposes every system call to the container. "
    + _docs("seccompProfile_baseline"),
    fix="Set seccompProfile.type RuntimeDefault (or Localhost), or leave it unset.",
)
def seccomp_baseline(pod: Mapping[str, Any]) -> Iterator[Violation]:
    prof = pod_security_context(pod).get("seccompProfile")
    if prof is not None and prof.get("type") not in SECCOMP_TYPES:
        yield Violation("spec.securityContext.seccompProfile.type", f"seccomp profile {prof.get('type')}")
    for c in containers(pod):
        prof = c.security_context.get("seccompProfile")
        if prof is not None and prof.get("type") not in SECCOMP_TYPES:
            yield Violation(
                f"{c.path}.securityContext.seccompProfile.type", f"seccomp profile {prof.get('type')}", c.name
            )


@rule(
    "PSS-B-010",
    title="sysctls",
    severity=Severity.ERROR,
    rule_set=BASELINE,
    targets=POD,
    psa_check="sysctls",
    rationale="Only sysctls namespaced to the pod and isolated from other pods are safe; others change the "
    "node for everyone. " + _docs("sysctls"),
    fix="Remove the sysctl; the safe set is " + ", ".join(sorted(SAFE_SYSCTLS)) + ".",
)
def sysctls(pod: Mapping[str, Any]) -> Iterator[Violation]:
    for i, s in enumerate(pod_security_context(pod).get("sysctls") or ()):
        if (s or {}).get("name") not in SAFE_SYSCTLS:
            yield Violation(f"spec.securityContext.sysctls[{i}].name", f"unsafe sysctl {s.get('name')}")


@rule(
    "PSS-B-011",
    title="windows-host-process",
    severity=Severity.ERROR,
    rule_set=BASELINE,
    targets=POD,
    psa_check="windowsHostProcess",
    rationale="A Windows HostProcess container has full access to the Windows node. "
    + _docs("windowsHostProcess"),
    fix="Remove windowsOptions.hostProcess (or set it to false).",
)
def windows_host_process(pod: Mapping[str, Any]) -> Iterator[Violation]:
    if (pod_security_context(pod).get("windowsOptions") or {}).get("hostProcess") is True:
        yield Violation("spec.securityContext.windowsOptions.hostProcess", "hostProcess=true")
    for c in containers(pod):
        if (c.security_context.get("windowsOptions") or {}).get("hostProcess") is True:
            yield Violation(
                f"{c.path}.securityContext.windowsOptions.hostProcess", "hostProcess=true", c.name
            )


@rule(
    "PSS-B-012",
    title="probe-lifecycle-host",
    severity=Severity.ERROR,
    rule_set=BASELINE,
    targets=POD,
    psa_check="hostProbesAndHostLifecycle",
    rationale="A probe or lifecycle hook with a host field makes the kubelet connect to an arbitrary "
    "address on the pod's behalf (server-side request forgery from the node). "
    + _docs("hostProbesAndHostLifecycle"),
    fix="Remove .host from httpGet/tcpSocket probes and lifecycle handlers (the pod IP is used).",
)
def probe_lifecycle_host(pod: Mapping[str, Any]) -> Iterator[Violation]:
    for c in containers(pod):
        handlers = [(p, c.container.get(p)) for p in ("livenessProbe", "readinessProbe", "startupProbe")]
        lifecycle = c.container.get("lifecycle") or {}
        handlers += [(f"lifecycle.{h}", lifecycle.get(h)) for h in ("postStart", "preStop")]
        for where, handler in handlers:
            for action in ("httpGet", "tcpSocket"):
                host = ((handler or {}).get(action) or {}).get("host")
                if host:
                    yield Violation(
                        f"{c.path}.{where}.{action}.host", f"{where} {action} host {host!r}", c.name
                    )


# ---------------------------------------------------------------- restricted


@rule(
    "PSS-R-001",
    title="volume-types",
    severity=Severity.ERROR,
    rule_set=RESTRICTED,
    targets=POD,
    psa_check="restrictedVolumes",
    rationale="Restricted allows only volume types that carry no node or network storage credentials "
    "inline: " + ", ".join(sorted(RESTRICTED_VOLUME_SOURCES)) + ". " + _docs("restrictedVolumes"),
    fix="Use one of the allowed volume types; reach other storage through a PersistentVolumeClaim.",
)
def volume_types(pod: Mapping[str, Any]) -> Iterator[Violation]:
    for i, v in enumerate(spec(pod).get("volumes") or ()):
        sources = [k for k, val in (v or {}).items() if k != "name" and val is not None]
        if not sources:  # the API server defaults a source-less volume to emptyDir before admission
            continue
        bad = [k for k in sources if k not in RESTRICTED_VOLUME_SOURCES]
        if bad:
            yield Violation(f"spec.volumes[{i}].{bad[0]}", f"volume {v.get('name')!r} uses type {bad[0]}")


overrides("PSS-R-001", "PSS-B-004")


@rule(
    "PSS-R-002",
    title="privilege-escalation",
    severity=Severity.ERROR,
    rule_set=RESTRICTED,
    targets=POD,
    psa_check="allowPrivilegeEscalation",
    peers={
        "checkov": "CKV_K8S_20",
        "kube-linter": "privilege-escalation-container",
        "polaris": "privilegeEscalationAllowed",
    },
    rationale="Unless set to false, a process can gain privileges through setuid binaries. Unset counts as "
    "allowed. Windows pods are exempt. " + _docs("allowPrivilegeEscalation"),
    fix="Set securityContext.allowPrivilegeEscalation: false on every container.",
)
def privilege_escalation(pod: Mapping[str, Any]) -> Iterator[Violation]:
    if is_windows(pod):
        return
    for c in containers(pod):
        if c.security_context.get("allowPrivilegeEscalation") is not False:
            yield Violation(
                f"{c.path}.securityContext.allowPrivilegeEscalation",
                "allowPrivilegeEscalation is not false",
                c.name,
            )


@rule(
    "PSS-R-003",
    title="run-as-non-root",
    severity=Severity.ERROR,
    rule_set=RESTRICTED,
    targets=POD,
    psa_check="runAsNonRoot",
    peers={"checkov": "CKV_K8S_23", "kube-linter": "run-as-non-root", "polaris": "runAsRootAllowed"},
    rationale="runAsNonRoot: true makes the kubelet refuse to start a container whose user is root. A "
    "pod-level true covers containers that leave it unset; false anywhere fails. Skipped for pods in a "
    "user namespace (spec.hostUsers: false), where root is unprivileged on the node. "
    + _docs("runAsNonRoot"),
    fix="Set spec.securityContext.runAsNonRoot: true and remove any container-level runAsNonRoot: false.",
)
def run_as_non_root(pod: Mapping[str, Any]) -> Iterator[Violation]:
    if user_namespaced(pod):
        return
    pod_value = pod_security_context(pod).get("runAsNonRoot")
    if pod_value is False:
        yield Violation("spec.securityContext.runAsNonRoot", "pod sets runAsNonRoot=false")
    for c in containers(pod):
        value = c.security_context.get("runAsNonRoot")
        if value is False:
            yield Violation(f"{c.path}.securityContext.runAsNonRoot", "runAsNonRoot=false", c.name)
        elif value is None and pod_value is not True:
            yield Violation(
                f"{c.path}.securityContext.runAsNonRoot",
                "runAsNonRoot is not true at container or pod level",
                c.name,
            )


@rule(
    "PSS-R-004",
    title="run-as-user",
    severity=Severity.ERROR,
    rule_set=RESTRICTED,
    targets=POD,
    psa_check="runAsUser",
    rationale="runAsUser: 0 runs the container as root; with runAsNonRoot: true the kubelet then refuses "
    "to start it, so both must be fixed. Any non-zero UID satisfies the standard (see HRD-013 for the "
    "high-UID recommendation). Skipped for pods in a user namespace. " + _docs("runAsUser"),
    fix="Set runAsUser to the image's non-root UID (e.g. 50000 for Airflow images), or leave it unset.",
)
def run_as_user(pod: Mapping[str, Any]) -> Iterator[Violation]:
    if user_namespaced(pod):
        return
    if pod_security_context(pod).get("runAsUser") == 0:
        yield Violation("spec.securityContext.runAsUser", "pod sets runAsUser=0")
    for c in containers(pod):
        if c.security_context.get("runAsUser") == 0:
            yield Violation(f"{c.path}.securityContext.runAsUser", "runAsUser=0", c.name)


@rule(
    "PSS-R-005",
    title="seccomp-restricted",
    severity=Severity.ERROR,
    rule_set=RESTRICTED,
    targets=POD,
    psa_check="seccompProfile_restricted",
    peers={"checkov": "CKV_K8S_31"},
    rationale="A seccomp profile must be set explicitly: RuntimeDefault or Localhost (a node-local profile "
    "is accepted, as by the admission controller; some peers wrongly accept only RuntimeDefault). A valid "
    "pod-level profile covers containers that set none. Windows pods are exempt. "
    + _docs("seccompProfile_restricted"),
    fix="Set spec.securityContext.seccompProfile.type: RuntimeDefault.",
)
def seccomp_restricted(pod: Mapping[str, Any]) -> Iterator[Violation]:
    if is_windows(pod):
        return
    pod_profile = pod_security_context(pod).get("seccompProfile")
    pod_set = False
    if pod_profile is not None:
        if pod_profile.get("type") in SECCOMP_TYPES:
            pod_set = True
        else:
            yield Violation(
                "spec.securityContext.seccompProfile.type", f"seccomp profile {pod_profile.get('type')}"
            )
    for c in containers(pod):
        prof = c.security_context.get("seccompProfile")
        if prof is not None:
            if prof.get("type") not in SECCOMP_TYPES:
                yield Violation(
                    f"{c.path}.securityContext.seccompProfile.type",
                    f"seccomp profile {prof.get('type')}",
                    c.name,
                )
        elif not pod_set:
            yield Violation(
                f"{c.path}.securityContext.seccompProfile",
                "no seccomp profile at container or pod level",
                c.name,
            )


overrides("PSS-R-005", "PSS-B-009")


@rule(
    "PSS-R-006",
    title="capabilities-restricted",
    severity=Severity.ERROR,
    rule_set=RESTRICTED,
    targets=POD,
    psa_check="capabilities_restricted",
    peers={"checkov": "CKV_K8S_28,CKV_K8S_37", "polaris": "insecureCapabilities"},
    rationale="Containers must drop ALL capabilities and may add back only NET_BIND_SERVICE. Windows pods "
    "are exempt. " + _docs("capabilities_restricted"),
    fix='Set securityContext.capabilities.drop: ["ALL"]; add at most NET_BIND_SERVICE.',
)
def capabilities_restricted(pod: Mapping[str, Any]) -> Iterator[Violation]:
    if is_windows(pod):
        return
    for c in containers(pod):
        caps = c.security_context.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or ()):
            yield Violation(
                f"{c.path}.securityContext.capabilities.drop", "does not drop ALL capabilities", c.name
            )
        for i, cap in enumerate(caps.get("add") or ()):
            if cap not in RESTRICTED_CAPABILITIES:
                yield Violation(
                    f"{c.path}.securityContext.capabilities.add[{i}]", f"adds capability {cap}", c.name
                )


overrides("PSS-R-006", "PSS-B-003")


@rule(
    "PSS-R-007",
    title="proc-mount-restricted",
    severity=Severity.ERROR,
    rule_set=RESTRICTED,
    targets=POD,
    psa_check="procMount_restricted",
    rationale="Restricted allows only the default /proc mount, even in a user namespace (since 1.35). "
    + _docs("procMount_restricted"),
    fix="Remove securityContext.procMount (or set Default).",
)
def proc_mount_restricted(pod: Mapping[str, Any]) -> Iterator[Violation]:
    yield from _proc_mount_violations(pod)


overrides("PSS-R-007", "PSS-B-008")
