"""Kubernetes manifests -> targets: pods (workloads, pod templates, custom resources) and ConfigMaps.

YAML or JSON, any number of documents (see :mod:`.yaml_lines` for the limits and what a bad document
does). Every document that holds a pod (a built-in workload, a bare executor pod template without
``kind``, or a custom resource listed in :mod:`.pod_paths`) becomes one ``Pod`` target per pod, whose
findings are rooted at the object the user wrote (``spec.jobTemplate.spec.template.spec.containers[0]``)
and carry the line they point at. A ``ConfigMap`` becomes a ``ConfigMap`` target (literal secrets in
``data``/``binaryData``). Every other document is recorded as not linted, so the summary can name it.

Before a pod is linted its fields are checked against the API types (:mod:`.pod_shape`); a wrong type
is an error for that document, naming the field path, line, expected and found, and its pod is skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from containerkit.policy.model import ObjectRef, Target
from containerkit.policy.podspec import WORKLOAD_KEY
from containerkit.policy.sources import pod_paths
from containerkit.policy.sources.located import SourceError
from containerkit.policy.sources.pod_paths import ARGO, PodPath
from containerkit.policy.sources.pod_shape import POD_TEMPLATE, STR_MAP, describe, mismatches
from containerkit.policy.sources.yaml_lines import DEFAULT_LIMITS, Limits, YamlDocument, parse_stream
from containerkit.policy.suppressions import pod_suppressions

CONFIG_MAP = "ConfigMap"
# Kept for callers of the earlier module: built-in kind -> pod template path.
POD_PATHS = pod_paths.BUILTIN
MAX_TYPE_ERRORS = 20
"""Per document: past this many wrong types, one more error says how many were left out."""


class PodDocument(dict[str, Any]):
    """A pod in API form that also knows the source line of each field path of its object.

    ``path_map`` roots pod-relative paths at the source object when that is not a plain prefix (an Argo
    template's ``container`` is the pod's ``spec.containers[0]``): ``(pod prefix, source prefix)`` pairs,
    longest first.
    """

    lines: dict[str, int]
    path_map: tuple[tuple[str, str], ...] = ()

    def line_of(self, path: str) -> int | None:
        probe = path
        while probe:
            if probe in self.lines:
                return self.lines[probe]
            cut = max(probe.rfind("."), probe.rfind("["))
            probe = probe[:cut] if cut > 0 else ""
        return self.lines.get("")

    def source_path(self, path: str) -> str:
        for pod_prefix, source in self.path_map:
            if path == pod_prefix or path.startswith((pod_prefix + ".", pod_prefix + "[")):
                return source + path[len(pod_prefix) :]
        return path


@dataclass(frozen=True)
class ConfigMapDocument:
    """A ConfigMap's ``data`` and ``binaryData`` with their lines (what the secret rule reads)."""

    file: str | None
    data: Mapping[str, str]
    binary_data: Mapping[str, str]
    lines: Mapping[str, int] = field(default_factory=dict, repr=False)

    def line_of(self, path: str) -> int | None:
        return self.lines.get(path) or self.lines.get(path.rsplit(".", 1)[0]) or self.lines.get("")


@dataclass(frozen=True)
class NotLinted:
    """A document lint holds no checks for; ``known`` = a built-in kind without pods (a ``Service``)."""

    file: str
    line: int | None
    kind: str
    api_version: str
    known: bool

    def label(self) -> str:
        return self.kind if self.known or not self.api_version else f"{self.kind} ({self.api_version})"


@dataclass
class Loaded:
    targets: list[Target] = field(default_factory=list)
    errors: list[SourceError] = field(default_factory=list)
    not_linted: list[NotLinted] = field(default_factory=list)


def _get(obj: Any, dotted: str) -> Any:
    for part in dotted.split(".") if dotted else ():
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(part)
    return obj


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _sub_lines(lines: Mapping[str, int], prefix: str) -> dict[str, int]:
    """The line map of a sub-document, re-rooted at ``prefix``."""
    if not prefix:
        return dict(lines)
    out = {k[len(prefix) + 1 :]: v for k, v in lines.items() if k.startswith(prefix + ".")}
    out[""] = lines.get(prefix, lines.get("", 1))
    return out


def _str(value: Any, default: str) -> str:
    return value if isinstance(value, str) and value else default


def _ref(doc: Mapping[str, Any], kind: str, file: str | None, line: int, suffix: str = "") -> ObjectRef:
    meta = _mapping(doc.get("metadata"))
    name = _str(meta.get("name"), _str(meta.get("generateName"), "<unnamed>"))
    ns = meta.get("namespace")
    return ObjectRef(
        kind=kind,
        name=name + suffix,
        namespace=ns if isinstance(ns, str) and ns else None,
        file=file,
        line=line,
    )


def _type_errors(
    value: Any, shape: Any, root: str, lines: Mapping[str, int], file: str | None, what: str
) -> list[SourceError]:
    found = list(mismatches(value, shape, root))
    errors: list[SourceError] = []
    for path, expected, got in found[:MAX_TYPE_ERRORS]:
        errors.append(
            SourceError(
                file or "<input>", _line(lines, path), f"{what}: {path}: expected {expected}, found {got}"
            )
        )
    if len(found) > MAX_TYPE_ERRORS:
        errors.append(
            SourceError(
                file or "<input>", lines.get(""), f"{what}: {len(found) - MAX_TYPE_ERRORS} more wrong types"
            )
        )
    return errors


def _line(lines: Mapping[str, int], path: str) -> int | None:
    probe = path
    while probe:
        if probe in lines:
            return lines[probe]
        cut = max(probe.rfind("."), probe.rfind("["))
        probe = probe[:cut] if cut > 0 else ""
    return lines.get("")


def _pod_target(
    doc: Mapping[str, Any],
    kind: str,
    template: Mapping[str, Any],
    pod_path: str,
    lines: Mapping[str, int],
    file: str | None,
    *,
    path_map: tuple[tuple[str, str], ...] = (),
    suffix: str = "",
) -> Target:
    pod = PodDocument(
        apiVersion="v1",
        kind="Pod",
        metadata=_mapping(template.get("metadata")),
        spec=_mapping(template.get("spec")),
    )
    spec = _mapping(doc.get("spec"))
    replicas = (
        spec.get("replicas", 1)
        if kind in ("Deployment", "StatefulSet", "ReplicaSet", "DeploymentConfig")
        else None
    )
    pod[WORKLOAD_KEY] = {"kind": kind, "replicas": replicas, "podPath": pod_path}
    pod.lines = dict(lines)
    pod.path_map = path_map
    suppressions = pod_suppressions(doc)
    if pod_path or path_map:
        suppressions.update(pod_suppressions(pod))
    return Target(
        kind="Pod", obj=_ref(doc, kind, file, lines.get("", 1), suffix), data=pod, suppressions=suppressions
    )


def _argo_pods(
    doc: Mapping[str, Any], entry: PodPath, lines: Mapping[str, int], file: str | None
) -> tuple[list[Target], list[SourceError]]:
    """One pod per Argo template that runs a container (``container``, ``script`` or ``containerSet``)."""
    targets: list[Target] = []
    errors: list[SourceError] = []
    wf_spec_path = entry.path.rsplit(".templates", 1)[0] if ".templates" in entry.path else "spec"
    wf_spec = _mapping(_get(doc, wf_spec_path))
    for where, tmpl in pod_paths.expand(doc, entry.path):
        if not isinstance(tmpl, Mapping):
            errors.append(
                SourceError(
                    file or "<input>",
                    _line(lines, where),
                    f"{where}: expected a mapping, found {describe(tmpl)}",
                )
            )
            continue
        main = "container" if "container" in tmpl else "script" if "script" in tmpl else None
        containers: list[Any] = []
        mapping: list[tuple[str, str]] = []
        if main is not None:
            c = tmpl.get(main)
            containers.append({"name": "main", **c} if isinstance(c, Mapping) else c)
            mapping.append(("spec.containers[0]", f"{where}.{main}"))
            sidecars = tmpl.get("sidecars")
            for i, s in enumerate(sidecars if isinstance(sidecars, list) else ()):
                containers.append(s)
                mapping.append((f"spec.containers[{i + 1}]", f"{where}.sidecars[{i}]"))
        elif isinstance(tmpl.get("containerSet"), Mapping):
            containers = tmpl["containerSet"].get("containers") or []
            mapping.append(("spec.containers", f"{where}.containerSet.containers"))
        else:
            continue  # steps, dag, resource, suspend: Argo starts no container of the template's own
        spec: dict[str, Any] = {"restartPolicy": "Never", "containers": containers}
        if tmpl.get("initContainers") is not None:
            spec["initContainers"] = tmpl["initContainers"]
            mapping.append(("spec.initContainers", f"{where}.initContainers"))
        for key in (
            "securityContext",
            "automountServiceAccountToken",
            "serviceAccountName",
            "volumes",
            "hostNetwork",
        ):
            source = tmpl if key in tmpl else wf_spec if key in wf_spec else None
            if source is not None:
                spec[key] = source[key]
                mapping.append((f"spec.{key}", f"{where if source is tmpl else wf_spec_path}.{key}"))
        mapping.append(("spec", where))
        mapping.append(("metadata", f"{where}.metadata"))
        template = {"metadata": _mapping(tmpl.get("metadata")), "spec": spec}
        mapping.sort(key=lambda pair: len(pair[0]), reverse=True)
        name = tmpl.get("name")
        suffix = f"[{name}]" if isinstance(name, str) and name else f"[{where}]"
        what = f"{doc.get('kind')} {_ref(doc, '', file, 1).name}{suffix}"
        pod_errors = _type_errors(template, POD_TEMPLATE, "", {}, file, what)
        if pod_errors:
            mapped = PodDocument()
            mapped.path_map = tuple(mapping)
            errors += [
                SourceError(e.file, e.line, e.problem) for e in _remap_errors(pod_errors, mapped, lines)
            ]
            continue
        targets.append(
            _pod_target(
                doc, str(doc.get("kind")), template, "", lines, file, path_map=tuple(mapping), suffix=suffix
            )
        )
    return targets, errors


def _remap_errors(
    errors: list[SourceError], pod: PodDocument, lines: Mapping[str, int]
) -> Iterable[SourceError]:
    for e in errors:
        what, _, rest = e.problem.partition(": ")
        path, _, tail = rest.partition(": ")
        source = pod.source_path(path)
        yield SourceError(e.file, _line(lines, source), f"{what}: {source}: {tail}")


def _config_map(
    doc: Mapping[str, Any], lines: Mapping[str, int], file: str | None
) -> tuple[list[Target], list[SourceError]]:
    what = f"ConfigMap {_ref(doc, '', file, 1).name}"
    shape = {"data": STR_MAP, "binaryData": STR_MAP}
    errors = _type_errors({k: doc.get(k) for k in shape}, shape, "", lines, file, what)
    if errors:
        return [], errors
    data = ConfigMapDocument(
        file=file,
        data=dict(_mapping(doc.get("data"))),
        binary_data=dict(_mapping(doc.get("binaryData"))),
        lines=dict(lines),
    )
    return [
        Target(CONFIG_MAP, _ref(doc, CONFIG_MAP, file, lines.get("", 1)), data, pod_suppressions(doc))
    ], []


def targets_from_document(
    doc: Any,
    lines: Mapping[str, int],
    file: str | None,
    *,
    extra_paths: Iterable[PodPath] = (),
    out: Loaded | None = None,
) -> list[Target]:
    """The targets of one manifest document (``[]`` for kinds lint does not check).

    With ``out``, type errors and not-linted documents are recorded there (and targets appended).
    """
    sink = out if out is not None else Loaded()
    before = len(sink.targets)
    _collect(doc, lines, file, tuple(extra_paths), sink)
    return sink.targets[before:]


def _collect(
    doc: Any, lines: Mapping[str, int], file: str | None, extra: tuple[PodPath, ...], out: Loaded
) -> None:
    where = file or "<input>"
    if doc is None:
        return
    if not isinstance(doc, Mapping):
        out.errors.append(
            SourceError(
                where,
                lines.get(""),
                f"a manifest must be a mapping with apiVersion and kind, found {describe(doc)}",
            )
        )
        return
    kind, api_version = doc.get("kind"), doc.get("apiVersion", "")
    if kind is not None and not isinstance(kind, str):
        out.errors.append(
            SourceError(where, _line(lines, "kind"), f"kind: expected a string, found {describe(kind)}")
        )
        return
    if not isinstance(api_version, str):
        out.errors.append(
            SourceError(
                where,
                _line(lines, "apiVersion"),
                f"apiVersion: expected a string, found {describe(api_version)}",
            )
        )
        return
    if kind is not None and kind.endswith("List") and "items" in doc:
        items = doc.get("items")
        if not isinstance(items, list):
            out.errors.append(
                SourceError(where, _line(lines, "items"), f"items: expected a list, found {describe(items)}")
            )
            return
        for i, item in enumerate(items):
            _collect(item, _sub_lines(lines, f"items[{i}]"), file, extra, out)
        return
    if kind is None:
        # A KubernetesExecutor pod_template_file may omit apiVersion/kind.
        if isinstance(doc.get("spec"), Mapping) and "containers" in doc["spec"]:
            kind = "Pod"
        else:
            out.errors.append(SourceError(where, lines.get(""), "a manifest needs `kind` (and `apiVersion`)"))
            return
    if kind == CONFIG_MAP and pod_paths.known_without_pods(kind, api_version):
        targets, errors = _config_map(doc, lines, file)
        out.targets += targets
        out.errors += errors
        return
    entry = pod_paths.find(kind, api_version, extra)
    if entry is None:
        out.not_linted.append(
            NotLinted(
                where, lines.get(""), kind, api_version, pod_paths.known_without_pods(kind, api_version)
            )
        )
        return
    if entry.style == ARGO:
        targets, errors = _argo_pods(doc, entry, lines, file)
        out.targets += targets
        out.errors += errors
        return
    found = pod_paths.expand(doc, entry.path) if entry.path else [("", doc)]
    if not found:
        out.errors.append(
            SourceError(
                where,
                lines.get(""),
                f"{kind} {_ref(doc, kind, file, 1).name}: no pod template at {entry.path}",
            )
        )
        return
    for pod_path, template in found:
        what = f"{kind} {_ref(doc, kind, file, 1).name}"
        check = template
        shape_root = pod_path
        if not isinstance(check, Mapping):
            out.errors.append(
                SourceError(
                    where,
                    _line(lines, pod_path),
                    f"{what}: {pod_path}: expected a pod template mapping, found {describe(check)}",
                )
            )
            continue
        subset = {"metadata": check.get("metadata"), "spec": check.get("spec")}
        rooted = {f"{shape_root}.{k}" if shape_root else k: v for k, v in subset.items()}
        errors = []
        for key, value in rooted.items():
            errors += _type_errors(value, POD_TEMPLATE[key.rsplit(".", 1)[-1]], key, lines, file, what)
        if errors:
            out.errors += errors
            continue
        out.targets.append(_pod_target(doc, kind, check, pod_path, lines, file))


def load_documents(
    text: str, file: str, *, limits: Limits = DEFAULT_LIMITS, extra_paths: Iterable[PodPath] = ()
) -> Loaded:
    """Every target, error and not-linted document of a manifest text."""
    out = Loaded()
    extra = tuple(extra_paths)
    for item in parse_stream(text, file, limits):
        if isinstance(item, SourceError):
            out.errors.append(item)
        else:
            _document(item, file, extra, out)
    return out


def _document(item: YamlDocument, file: str, extra: tuple[PodPath, ...], out: Loaded) -> None:
    _collect(item.value, item.lines, file, extra, out)


def load_text(text: str, file: str) -> list[Target]:
    """Targets of a manifest text; the first error is raised (for callers that want all or nothing)."""
    loaded = load_documents(text, file)
    if loaded.errors:
        raise loaded.errors[0]
    return loaded.targets


def load_file(
    path: str | Path, *, limits: Limits = DEFAULT_LIMITS, extra_paths: Iterable[PodPath] = ()
) -> Loaded:
    from containerkit.policy.sources.yaml_lines import read_text

    p = Path(path)
    try:
        text = read_text(p, limits, what="manifest")
    except SourceError as exc:
        return Loaded(errors=[exc])
    return load_documents(text, str(p), limits=limits, extra_paths=extra_paths)


def load(path: str | Path) -> list[Target]:
    """Every pod target in a manifest file (raises the first error)."""
    loaded = load_file(path)
    if loaded.errors:
        raise loaded.errors[0]
    return loaded.targets
