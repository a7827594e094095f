"""The ``hardened`` tier for pods: what containerkit renders by default, beyond the Pod Security Standards.

Where peer tools disagree the decision is written into the rule's rationale and pinned by a test:
UID >= 10000 (kube-score, checkov) is advice (info), not an error, because the standard only forbids 0
and the Airflow images run as 50000 by convention, while many distribution images use 1000; group 0 is
not flagged because Airflow's images deliberately run with gid 0 (arbitrary-UID platforms).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Mapping
from typing import Any

from containerkit.facts.secrets import secret_literal, secrets_in_text
from containerkit.policy.image_pinning import image_parts
from containerkit.policy.model import HARDENED, IMAGE, Severity, Violation, rule
from containerkit.policy.podspec import (
    ContainerRef,
    containers,
    pod_security_context,
    restart_policy,
    spec,
    workload,
)

POD = ("Pod",)
HIGH_UID = 10000


def _resource_containers(pod: Mapping[str, Any]) -> Iterator[ContainerRef]:
    """Containers that can carry resources (ephemeral containers cannot)."""
    return (c for c in containers(pod) if c.field != "ephemeralContainers")


def _long_running(pod: Mapping[str, Any]) -> bool:
    """Pods restarted forever (Deployments, StatefulSets, DaemonSets, bare Always pods), not tasks."""
    return restart_policy(pod) == "Always"


@rule(
    "HRD-001",
    title="read-only-root-filesystem",
    severity=Severity.ERROR,
    rule_set=HARDENED,
    targets=POD,
    peers={
        "checkov": "CKV_K8S_22",
        "kube-linter": "no-read-only-root-fs",
        "polaris": "notReadOnlyRootFilesystem",
        "kube-score": "container-security-context-readonlyrootfilesystem",
    },
    rationale="A writable root filesystem lets an attacker or a bug modify the image's binaries and "
    "hides state in the container layer; writes belong in an emptyDir mounted where they are needed.",
    fix="Set securityContext.readOnlyRootFilesystem: true and mount an emptyDir at /tmp (and any other "
    "path the program writes).",
)
def read_only_root_filesystem(pod: Mapping[str, Any]) -> Iterator[Violation]:
    for c in containers(pod):
        if c.security_context.get("readOnlyRootFilesystem") is not True:
            yield Violation(
                f"{c.path}.securityContext.readOnlyRootFilesystem", "root filesystem is writable", c.name
            )


def _resources(c: ContainerRef) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    res = c.container.get("resources") or {}
    return res.get("requests") or {}, res.get("limits") or {}


@rule(
    "HRD-002",
    title="cpu-memory-requests",
    severity=Severity.WARNING,
    rule_set=HARDENED,
    targets=POD,
    peers={
        "checkov": "CKV_K8S_10,CKV_K8S_12",
        "kube-linter": "unset-cpu-requirements,unset-memory-requirements",
        "polaris": "cpuRequestsMissing,memoryRequestsMissing",
        "kube-score": "container-resources",
    },
    rationale="Without requests the scheduler packs pods blindly and the pod is first to be evicted "
    "(BestEffort QoS). A request equal to a measured peak keeps tasks predictable. A limit given without a "
    "request counts (the API server copies the limit into the request).",
    fix="Set resources.requests.cpu and resources.requests.memory (a containerkit resource preset does).",
)
def cpu_memory_requests(pod: Mapping[str, Any]) -> Iterator[Violation]:
    for c in _resource_containers(pod):
        requests, limits = _resources(c)
        for res in ("cpu", "memory"):
            if res not in requests and res not in limits:
                yield Violation(f"{c.path}.resources.requests.{res}", f"no {res} request", c.name)


@rule(
    "HRD-003",
    title="memory-limit",
    severity=Severity.ERROR,
    rule_set=HARDENED,
    targets=POD,
    peers={
        "checkov": "CKV_K8S_13",
        "kube-linter": "unset-memory-requirements",
        "polaris": "memoryLimitsMissing",
        "kube-score": "container-resources",
    },
    rationale="Without a memory limit one task can exhaust the node and get other pods OOM-killed; with "
    "one, the task itself is OOMKilled at a known size and containerkit diagnoses it. CPU limits are not "
    "required (throttling rather than protection; peers disagree), only CPU requests.",
    fix="Set resources.limits.memory (a containerkit resource preset does).",
)
def memory_limit(pod: Mapping[str, Any]) -> Iterator[Violation]:
    for c in _resource_containers(pod):
        _, limits = _resources(c)
        if "memory" not in limits:
            yield Violation(f"{c.path}.resources.limits.memory", "no memory limit", c.name)


@rule(
    "HRD-004",
    title="ephemeral-storage",
    severity=Severity.WARNING,
    rule_set=HARDENED,
    targets=POD,
    peers={"kube-score": "container-ephemeral-storage-request-and-limit"},
    rationale="Logs, emptyDir and the writable layer count against node disk; without a request the "
    "scheduler ignores them and without a limit a runaway task evicts its neighbours (DiskPressure).",
    fix="Set resources.requests.ephemeral-storage and resources.limits.ephemeral-storage.",
)
def ephemeral_storage(pod: Mapping[str, Any]) -> Iterator[Violation]:
    for c in _resource_containers(pod):
        requests, limits = _resources(c)
        if "ephemeral-storage" not in requests and "ephemeral-storage" not in limits:
            yield Violation(
                f"{c.path}.resources.requests.ephemeral-storage", "no ephemeral-storage request", c.name
            )
        if "ephemeral-storage" not in limits:
            yield Violation(
                f"{c.path}.resources.limits.ephemeral-storage", "no ephemeral-storage limit", c.name
            )


@rule(
    "HRD-005",
    title="image-tag-pinned",
    severity=Severity.ERROR,
    rule_set=HARDENED,
    targets=POD,
    about=(IMAGE,),
    peers={"checkov": "CKV_K8S_14", "kube-linter": "latest-tag", "polaris": "tagNotSpecified"},
    rationale="An untagged or :latest image is a different program on every pull: runs are not "
    "reproducible and a bad push reaches production unnoticed.",
    fix="Reference an immutable version tag, best with its digest (name:1.2.3@sha256:...).",
)
def image_tag_pinned(pod: Mapping[str, Any]) -> Iterator[Violation]:
    for c in containers(pod):
        image = str(c.container.get("image") or "")
        if not image:
            yield Violation(f"{c.path}.image", "no image set", c.name)
        elif image_parts(image).floating:
            yield Violation(f"{c.path}.image", f"image {image!r} is untagged or :latest", c.name)


@rule(
    "HRD-006",
    title="image-digest",
    severity=Severity.INFO,
    rule_set=HARDENED,
    targets=POD,
    about=(IMAGE,),
    peers={"checkov": "CKV_K8S_43"},
    rationale="A tag can be moved; a digest cannot. Pinning by digest makes the run reproducible and "
    "immune to a re-pushed tag (containerkit's pin_image does this at run time).",
    fix="Append the digest: name:tag@sha256:<digest> (see `containerkit.hooks.preflight.pin_image`).",
)
def image_digest(pod: Mapping[str, Any]) -> Iterator[Violation]:
    for c in containers(pod):
        image = str(c.container.get("image") or "")
        parts = image_parts(image)
        if image and parts.mutable and not parts.floating:
            yield Violation(f"{c.path}.image", f"image {image!r} is not pinned by digest", c.name)


@rule(
    "HRD-007",
    title="image-pull-policy",
    severity=Severity.WARNING,
    rule_set=HARDENED,
    targets=POD,
    about=(IMAGE,),
    peers={
        "checkov": "CKV_K8S_15",
        "polaris": "pullPolicyNotAlways",
        "kube-score": "container-image-pull-policy",
    },
    rationale="With a mutable tag, IfNotPresent (the implicit default for non-latest tags) lets each node "
    "run whatever copy it cached first. Digest-pinned images may use any policy; peers that demand Always "
    "even for digests cost a registry round-trip per start for nothing.",
    fix="Pin the image by digest, or set imagePullPolicy: Always for a tag.",
)
def image_pull_policy(pod: Mapping[str, Any]) -> Iterator[Violation]:
    for c in containers(pod):
        image = str(c.container.get("image") or "")
        parts = image_parts(image)
        policy = c.container.get("imagePullPolicy")
        if image and parts.mutable and not parts.floating and policy != "Always":
            yield Violation(
                f"{c.path}.imagePullPolicy",
                f"mutable tag {parts.tag!r} with imagePullPolicy {policy or 'unset (IfNotPresent)'}",
                c.name,
            )


@rule(
    "HRD-008",
    title="service-account-token",
    severity=Severity.WARNING,
    rule_set=HARDENED,
    targets=POD,
    peers={"checkov": "CKV_K8S_38", "polaris": "automountServiceAccountToken"},
    rationale="A mounted service-account token is a credential for the Kubernetes API in every container; "
    "a task that does not call the API should not carry one. Tasks that do should say so with a "
    "suppression and its reason.",
    fix='Set spec.automountServiceAccountToken: false, or suppress with "HRD-008: <why the API is needed>".',
)
def service_account_token(pod: Mapping[str, Any]) -> Iterator[Violation]:
    if spec(pod).get("automountServiceAccountToken") is not False:
        yield Violation("spec.automountServiceAccountToken", "service-account token is mounted")


@rule(
    "HRD-009",
    title="literal-secret-env",
    severity=Severity.ERROR,
    rule_set=HARDENED,
    targets=POD,
    peers={"kube-linter": "env-var-secret", "checkov": "CKV_K8S_35"},
    rationale="A secret written as an env value is stored in the DAG, the pod spec, the API server and "
    "every log of the rendered pod. Secrets belong in a Secret referenced by secretKeyRef or a mounted file.",
    fix="Use env[].valueFrom.secretKeyRef (containerkit: a secret env reference) or a Secret volume.",
)
def literal_secret_env(pod: Mapping[str, Any]) -> Iterator[Violation]:
    for c in containers(pod):
        for i, env in enumerate(c.container.get("env") or ()):
            why = secret_literal(str((env or {}).get("name") or ""), (env or {}).get("value"))
            if why:
                yield Violation(f"{c.path}.env[{i}].value", f"env {env.get('name')}: {why}", c.name)


@rule(
    "HRD-010",
    title="probes",
    severity=Severity.WARNING,
    rule_set=HARDENED,
    targets=POD,
    peers={
        "checkov": "CKV_K8S_8,CKV_K8S_9",
        "kube-linter": "no-liveness-probe,no-readiness-probe",
        "polaris": "livenessProbeMissing,readinessProbeMissing",
    },
    rationale="Long-running containers (pods with restartPolicy Always, i.e. Deployments and the like, "
    "and native sidecars) need probes so a hung process is restarted and traffic waits for readiness. "
    "Run-to-completion task pods (restartPolicy Never/OnFailure) are exempt: their exit is the signal.",
    fix="Add livenessProbe and readinessProbe (sidecars: a startupProbe or readinessProbe).",
)
def probes(pod: Mapping[str, Any]) -> Iterator[Violation]:
    long_running = _long_running(pod)
    for c in containers(pod):
        if c.is_sidecar:
            if not any(c.container.get(p) for p in ("startupProbe", "readinessProbe", "livenessProbe")):
                yield Violation(f"{c.path}.startupProbe", "sidecar has no probe", c.name)
        elif c.field == "containers" and long_running:
            for p in ("livenessProbe", "readinessProbe"):
                if not c.container.get(p):
                    yield Violation(f"{c.path}.{p}", f"long-running container has no {p}", c.name)


@rule(
    "HRD-011",
    title="replica-spread",
    severity=Severity.WARNING,
    rule_set=HARDENED,
    targets=POD,
    peers={"kube-linter": "no-anti-affinity"},
    rationale="Replicas of one workload that may land on the same node fail together; pod anti-affinity "
    "or a topology spread constraint keeps them apart. Only multi-replica workloads are checked.",
    fix="Add spec.topologySpreadConstraints (topologyKey kubernetes.io/hostname) or podAntiAffinity.",
)
def replica_spread(pod: Mapping[str, Any]) -> Iterator[Violation]:
    replicas = workload(pod).get("replicas")
    if not isinstance(replicas, int) or replicas < 2:
        return
    s = spec(pod)
    if not (s.get("affinity") or {}).get("podAntiAffinity") and not s.get("topologySpreadConstraints"):
        yield Violation(
            "spec.affinity.podAntiAffinity", f"{replicas} replicas with no anti-affinity or spread"
        )


@rule(
    "HRD-012",
    title="priority-class",
    severity=Severity.INFO,
    rule_set=HARDENED,
    targets=POD,
    peers={"polaris": "priorityClassNotSet"},
    rationale="Long-running services without a priority class are preempted like any batch task when the "
    "cluster is full. Task pods are exempt: the executor's priority is the right default for them.",
    fix="Set spec.priorityClassName for long-running workloads.",
)
def priority_class(pod: Mapping[str, Any]) -> Iterator[Violation]:
    if _long_running(pod) and not spec(pod).get("priorityClassName"):
        yield Violation("spec.priorityClassName", "long-running pod has no priority class")


@rule(
    "HRD-013",
    title="high-uid",
    severity=Severity.INFO,
    rule_set=HARDENED,
    targets=POD,
    peers={"checkov": "CKV_K8S_40", "kube-score": "container-security-context-user-group-id"},
    rationale="Decision where peers disagree: the Pod Security Standards require only runAsUser != 0 "
    "(PSS-R-004, an error); kube-score and checkov want UID >= 10000 so an escaped process does not map "
    "to a real host account. That is advice, reported as info for explicit UIDs 1-9999: Airflow images "
    "use 50000, but many distribution images use 1000 legitimately. Group 0 is not flagged: Airflow "
    "images run with gid 0 on purpose.",
    fix=f"Run as a UID >= {HIGH_UID} (Airflow images: 50000).",
)
def high_uid(pod: Mapping[str, Any]) -> Iterator[Violation]:
    pod_uid = pod_security_context(pod).get("runAsUser")
    for c in containers(pod):
        uid = c.security_context.get("runAsUser", pod_uid)
        where = (
            f"{c.path}.securityContext.runAsUser"
            if "runAsUser" in c.security_context
            else ("spec.securityContext.runAsUser")
        )
        if isinstance(uid, int) and 0 < uid < HIGH_UID:
            yield Violation(where, f"runs as UID {uid} (< {HIGH_UID})", c.name)


# ---------------------------------------------------------------- ConfigMaps
# ConfigMap targets come from the manifest loader (``data``/``binaryData`` with lines). The rule lives in
# this module, not one of its own, so the registry's order (and docs/rules.md) does not depend on which
# target kind a process evaluates first.
CONFIG_MAP = ("ConfigMap",)


def _decoded(value: str) -> str | None:
    try:
        return base64.b64decode(value, validate=False).decode("utf-8")
    except (binascii.Error, ValueError):
        return None


@rule(
    "HRD-014",
    title="config-map-secret",
    severity=Severity.ERROR,
    rule_set=HARDENED,
    targets=CONFIG_MAP,
    peers={"checkov": "CKV_SECRET_*", "kube-linter": "(none)"},
    rationale="ConfigMaps are readable by anyone allowed to `get configmaps` in the namespace, are not "
    "encrypted at rest, and show in `kubectl describe`: a password, token or private key in `data` or "
    "`binaryData` is public inside the cluster.",
    fix="Move the value into a Secret (or an external secret store) and reference it with secretKeyRef or "
    "a Secret volume; keep only non-secret settings in the ConfigMap.",
)
def config_map_secret(cm: Any) -> Iterator[Violation]:
    for key, value in sorted((getattr(cm, "data", None) or {}).items()):
        for offset, why in secrets_in_text(str(key), str(value)):
            where = f" (line {offset + 1} of the value)" if offset else ""
            yield Violation(f"data.{key}", f"data key {key!r}{where}: {why}")
    for key, value in sorted((getattr(cm, "binary_data", None) or {}).items()):
        text = _decoded(str(value))
        if text is None:
            continue
        for offset, why in secrets_in_text(str(key), text):
            where = f" (line {offset + 1} of the decoded value)" if offset else ""
            yield Violation(f"binaryData.{key}", f"binaryData key {key!r}{where}: {why}")
