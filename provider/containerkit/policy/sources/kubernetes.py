"""Kubernetes manifests -> pod targets: Pods, workload pod templates, KubernetesExecutor pod templates.

Multi-document YAML; every document that holds a pod (Pod, Deployment, StatefulSet, DaemonSet,
ReplicaSet, ReplicationController, Job, CronJob, PodTemplate, or a bare pod template file without
``kind``) becomes one ``Pod`` target whose findings are rooted at the object the user wrote
(``spec.jobTemplate.spec.template.spec.containers[0]...``) and carry the line they point at.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from containerkit.policy.model import ObjectRef, Target
from containerkit.policy.podspec import WORKLOAD_KEY
from containerkit.policy.sources.located import SourceError
from containerkit.policy.suppressions import pod_suppressions

try:  # libyaml's parser when present: several times faster on large manifest folders
    _Loader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _Loader = yaml.SafeLoader

# kind -> where its pod template sits ("" = the object is the pod)
POD_PATHS: dict[str, str] = {
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
_STR_TAG = "tag:yaml.org,2002:str"


class PodDocument(dict[str, Any]):
    """A pod in API form that also knows the source line of each field path of its object."""

    lines: dict[str, int]

    def line_of(self, path: str) -> int | None:
        probe = path
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            cut = max(probe.rfind("."), probe.rfind("["))
            probe = probe[:cut] if cut > 0 else ""
        return self.lines.get("")


class _Builder:
    """Node graph -> Python values, recording ``path -> line`` (PyYAML drops marks after construction)."""

    def __init__(self, loader: yaml.SafeLoader) -> None:
        self.loader = loader
        self.lines: dict[str, int] = {}

    def build(self, node: yaml.Node, path: str) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _STR_TAG:
                return node.value
            return self.loader.construct_object(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            self.loader.flatten_mapping(node)
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = key_node.value if key_node.tag == _STR_TAG else self.loader.construct_object(key_node)
                child = f"{path}.{key}" if path else str(key)
                self.lines.setdefault(child, key_node.start_mark.line + 1)
                out[key] = self.build(value_node, child)
            return out
        return None


def parse_documents(text: str, file: str) -> Iterator[tuple[Any, dict[str, int]]]:
    """Each YAML document with its ``path -> line`` map; a syntax error names file and line."""
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            builder = _Builder(loader)
            value = builder.build(node, "")
            yield value, builder.lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise SourceError(
            file, mark.line + 1 if mark else None, f"invalid YAML: {exc.problem or exc.context}"
        ) from None
    except yaml.YAMLError as exc:
        raise SourceError(file, None, f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()


def _get(obj: Any, dotted: str) -> Any:
    for part in dotted.split(".") if dotted else ():
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(part)
    return obj


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _pod_kind(doc: Mapping[str, Any]) -> str | None:
    kind = doc.get("kind")
    if isinstance(kind, str):
        return kind if kind in POD_PATHS else None
    # A KubernetesExecutor pod_template_file may omit apiVersion/kind.
    spec = doc.get("spec")
    if isinstance(spec, Mapping) and isinstance(spec.get("containers"), list):
        return "Pod"
    return None


def targets_from_document(doc: Any, lines: Mapping[str, int], file: str | None) -> list[Target]:
    """The pod target of one manifest document (``[]`` for kinds that hold no pod)."""
    if not isinstance(doc, Mapping):
        return []
    if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
        out: list[Target] = []
        for i, item in enumerate(doc["items"]):
            prefix = f"items[{i}]"
            sub = {k[len(prefix) + 1 :]: v for k, v in lines.items() if k.startswith(prefix + ".")}
            sub[""] = lines.get(prefix, lines.get("", 1))
            out += targets_from_document(item, sub, file)
        return out
    kind = _pod_kind(doc)
    if kind is None:
        return []
    pod_path = POD_PATHS[kind]
    template = _get(doc, pod_path) if pod_path else doc
    if not isinstance(template, Mapping):
        return []
    meta = _mapping(doc.get("metadata"))
    pod = PodDocument(
        apiVersion="v1",
        kind="Pod",
        metadata=template.get("metadata") or {},
        spec=template.get("spec") or {},
    )
    spec = _mapping(doc.get("spec"))
    replicas = spec.get("replicas", 1) if kind in ("Deployment", "StatefulSet", "ReplicaSet") else None
    pod[WORKLOAD_KEY] = {"kind": kind, "replicas": replicas, "podPath": pod_path}
    pod.lines = dict(lines)
    suppressions = pod_suppressions(doc)
    if pod_path:
        suppressions.update(pod_suppressions(pod))
    ref = ObjectRef(
        kind=kind,
        name=str(meta.get("name") or meta.get("generateName") or "<unnamed>"),
        namespace=meta.get("namespace"),
        file=file,
        line=lines.get("", 1),
    )
    return [Target(kind="Pod", obj=ref, data=pod, suppressions=suppressions)]


def load_text(text: str, file: str) -> list[Target]:
    targets: list[Target] = []
    for doc, lines in parse_documents(text, file):
        targets += targets_from_document(doc, lines, file)
    return targets


def load(path: str | Path) -> list[Target]:
    """Every pod target in a manifest file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(str(p), None, f"cannot read: {exc}") from None
    return load_text(text, str(p))
