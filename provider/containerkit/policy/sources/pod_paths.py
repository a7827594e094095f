"""Where each kind of object keeps its pods: built-in workloads, and a configurable list for custom resources.

Built-in kinds (:data:`BUILTIN`) match by kind alone, whatever their ``apiVersion``. Custom resources
(:data:`CUSTOM_DEFAULTS`) match by kind *and* API group, so a Knative ``Service`` is linted as a pod and a
core ``Service`` is not. Users add or replace entries with ``containerkit lint --pod-paths FILE``, a YAML
list in the same form::

    - kind: Notebook                 # the object's kind
      group: kubeflow.org            # its API group (the part of apiVersion before "/"); omit: any group
      path: spec.template            # where the pod template (metadata + spec) sits; [*] = every item
    - kind: Workflow
      group: argoproj.io
      path: spec.templates[*]
      style: argo                    # an Argo template: container/script/containerSet + sidecars

``style: template`` (the default) reads a ``PodTemplateSpec`` (``metadata`` + ``spec``); ``style: argo``
builds the pod Argo would run for a template and maps finding paths back to the template's fields.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from containerkit.policy.sources.located import SourceError

TEMPLATE = "template"
ARGO = "argo"
STYLES = (TEMPLATE, ARGO)


@dataclass(frozen=True)
class PodPath:
    """``kind`` (in API ``group``, ``None`` = any) holds pods at ``path`` in ``style`` form."""

    kind: str
    path: str
    group: str | None = None
    style: str = TEMPLATE

    def matches(self, kind: str, api_version: str) -> bool:
        return kind == self.kind and (self.group is None or group_of(api_version) == self.group)


# kind -> where its pod template sits ("" = the object is the pod)
BUILTIN: dict[str, str] = {
    "Pod": "",
    "Deployment": "spec.template",
    "StatefulSet": "spec.template",
    "DaemonSet": "spec.template",
    "ReplicaSet": "spec.template",
    "ReplicationController": "spec.template",
    "Job": "spec.template",
    "CronJob": "spec.jobTemplate.spec.template",
    "PodTemplate": "template",
}

CUSTOM_DEFAULTS: tuple[PodPath, ...] = (
    # OpenShift: apps.openshift.io/v1, and the legacy group-less "v1" DeploymentConfig.
    PodPath("DeploymentConfig", "spec.template"),
    PodPath("Service", "spec.template", group="serving.knative.dev"),
    PodPath("Configuration", "spec.template", group="serving.knative.dev"),
    PodPath("Revision", "", group="serving.knative.dev"),
    PodPath("Rollout", "spec.template", group="argoproj.io"),
    PodPath("Workflow", "spec.templates[*]", group="argoproj.io", style=ARGO),
    PodPath("WorkflowTemplate", "spec.templates[*]", group="argoproj.io", style=ARGO),
    PodPath("ClusterWorkflowTemplate", "spec.templates[*]", group="argoproj.io", style=ARGO),
    PodPath("CronWorkflow", "spec.workflowSpec.templates[*]", group="argoproj.io", style=ARGO),
    PodPath("ScaledJob", "spec.jobTargetRef.template", group="keda.sh"),
)

# Built-in kinds that hold no pod: known, nothing for pod rules to check (ConfigMaps are linted for
# secrets). Any other kind is "unknown" for --fail-on-unknown: it may hide a pod lint cannot see.
NO_POD_KINDS = frozenset(
    {
        "APIService",
        "CertificateSigningRequest",
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "CSIDriver",
        "CSINode",
        "CustomResourceDefinition",
        "Endpoints",
        "EndpointSlice",
        "Event",
        "HorizontalPodAutoscaler",
        "Ingress",
        "IngressClass",
        "Lease",
        "LimitRange",
        "MutatingWebhookConfiguration",
        "Namespace",
        "NetworkPolicy",
        "PersistentVolume",
        "PersistentVolumeClaim",
        "PodDisruptionBudget",
        "PriorityClass",
        "ResourceQuota",
        "Role",
        "RoleBinding",
        "RuntimeClass",
        "Secret",
        "Service",
        "ServiceAccount",
        "StorageClass",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration",
        "VolumeAttachment",
    }
)
_CORE_GROUPS = frozenset(
    {
        "",
        "apps",
        "batch",
        "rbac.authorization.k8s.io",
        "networking.k8s.io",
        "policy",
        "storage.k8s.io",
        "scheduling.k8s.io",
        "autoscaling",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "node.k8s.io",
        "apiextensions.k8s.io",
        "apiregistration.k8s.io",
        "admissionregistration.k8s.io",
        "certificates.k8s.io",
        "events.k8s.io",
        "extensions",
    }
)


def group_of(api_version: str) -> str:
    """``apps.openshift.io/v1`` -> ``apps.openshift.io``; ``v1`` -> ``""`` (the core group)."""
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def known_without_pods(kind: str, api_version: str) -> bool:
    """A built-in kind that holds no pod (a ``Service``, a ``Role``): not "unknown"."""
    return kind in NO_POD_KINDS and group_of(api_version) in _CORE_GROUPS


def find(kind: str, api_version: str, extra: Iterable[PodPath] = ()) -> PodPath | None:
    """The pod path for an object: user entries first, then built-ins, then the custom defaults."""
    for entry in extra:
        if entry.matches(kind, api_version):
            return entry
    if kind in BUILTIN and (group_of(api_version) in _CORE_GROUPS or not api_version):
        return PodPath(kind, BUILTIN[kind])
    for entry in CUSTOM_DEFAULTS:
        if entry.matches(kind, api_version):
            return entry
    return None


def expand(doc: Any, path: str) -> list[tuple[str, Any]]:
    """``(concrete path, value)`` for a dotted path whose ``[*]`` segments mean every list item."""
    found: list[tuple[str, Any]] = [("", doc)]
    for part in path.split(".") if path else ():
        star = part.endswith("[*]")
        key = part[:-3] if star else part
        nxt: list[tuple[str, Any]] = []
        for where, value in found:
            if not isinstance(value, Mapping) or key not in value:
                continue
            here = f"{where}.{key}" if where else key
            child = value[key]
            if star:
                if isinstance(child, list):
                    nxt += [(f"{here}[{i}]", item) for i, item in enumerate(child)]
            else:
                nxt.append((here, child))
        found = nxt
    return found


def load_config(path: str | Path) -> list[PodPath]:
    """Read a ``--pod-paths`` file; errors name the entry and the field."""
    from containerkit.policy.sources.yaml_lines import load_yaml, read_text

    file = str(path)
    doc = load_yaml(read_text(path, what="pod paths file"), file)
    if not isinstance(doc.value, list):
        raise SourceError(file, 1, "a pod paths file must be a list of {kind, path, group?, style?}")
    out: list[PodPath] = []
    for i, entry in enumerate(doc.value):
        line = doc.lines.get(f"[{i}]")
        if not isinstance(entry, Mapping):
            raise SourceError(file, line, f"entry {i}: expected a mapping with kind and path")
        kind, where = entry.get("kind"), entry.get("path", "")
        group, style = entry.get("group"), entry.get("style", TEMPLATE)
        if not isinstance(kind, str) or not kind:
            raise SourceError(file, line, f"entry {i}: `kind` must be a non-empty string")
        if not isinstance(where, str):
            raise SourceError(file, line, f"entry {i}: `path` must be a dotted path such as spec.template")
        if group is not None and not isinstance(group, str):
            raise SourceError(file, line, f"entry {i}: `group` must be a string such as argoproj.io")
        if style not in STYLES:
            raise SourceError(
                file, line, f"entry {i}: `style` must be one of {', '.join(STYLES)}, not {style!r}"
            )
        unknown = sorted(set(map(str, entry)) - {"kind", "path", "group", "style"})
        if unknown:
            raise SourceError(file, line, f"entry {i}: unknown field(s) {', '.join(unknown)}")
        out.append(PodPath(kind, where, group, style))
    return out
