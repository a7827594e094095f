"""Read-only walking of a pod in API form (a plain dict, camelCase), shared by every Pod rule.

Rules see a pod exactly as the API server would receive it; these helpers only save each rule from
re-spelling the traversal (init, regular and ephemeral containers, in the admission controller's
order) and the field paths findings point at.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# Sources that unwrap a workload (Deployment, CronJob ...) into a pod record where the pod came from
# under this key: {"kind": "Deployment", "replicas": 3, "podPath": "spec.template"}. It is never an API
# field, so rules and the API server ignore it; the engine uses ``podPath`` to root finding paths at the
# object the user wrote.
WORKLOAD_KEY = "x-containerkit-workload"

CONTAINER_FIELDS = ("initContainers", "containers", "ephemeralContainers")


@dataclass(slots=True)
class ContainerRef:
    """One container of a pod and where it sits (``spec.initContainers[0]``); treat it as read-only.

    Not ``frozen``: every Pod rule walks the containers, so this is built ~40 times per evaluated pod
    (at DAG parse, per task) and a frozen dataclass's ``__init__`` costs three times as much.
    """

    field: str
    index: int
    container: Mapping[str, Any]

    @property
    def path(self) -> str:
        return f"spec.{self.field}[{self.index}]"

    @property
    def name(self) -> str:
        return str(self.container.get("name") or f"{self.field}[{self.index}]")

    @property
    def security_context(self) -> Mapping[str, Any]:
        return _mapping(self.container.get("securityContext"))

    @property
    def is_sidecar(self) -> bool:
        """A native sidecar: an init container that keeps running (``restartPolicy: Always``)."""
        return self.field == "initContainers" and self.container.get("restartPolicy") == "Always"


def _mapping(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a mapping, else ``{}``: rules never fail on a wrong type (sources report those)."""
    return value if type(value) is dict or isinstance(value, Mapping) else {}


def spec(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(pod.get("spec"))


def metadata(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(pod.get("metadata"))


def pod_security_context(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(spec(pod).get("securityContext"))


def containers(pod: Mapping[str, Any]) -> Iterator[ContainerRef]:
    """Every container in admission order: init containers, containers, ephemeral containers.

    Entries that are not mappings are skipped (the manifest loader reports them as type errors).
    """
    s = spec(pod)
    for field in CONTAINER_FIELDS:
        items = s.get(field)
        if not isinstance(items, list | tuple):
            continue
        for i, c in enumerate(items):
            if c is None or isinstance(c, Mapping):
                yield ContainerRef(field, i, c or {})


def workload(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(pod.get(WORKLOAD_KEY))


def is_windows(pod: Mapping[str, Any]) -> bool:
    """``spec.os.name == windows``: the admission controller exempts such pods from Linux-only checks."""
    return _mapping(spec(pod).get("os")).get("name") == "windows"


def user_namespaced(pod: Mapping[str, Any]) -> bool:
    """``spec.hostUsers: false``: the pod runs in a user namespace (KEP-127 relaxations apply)."""
    return spec(pod).get("hostUsers") is False


def restart_policy(pod: Mapping[str, Any]) -> str:
    """Effective pod restart policy (the API default is ``Always``)."""
    return str(spec(pod).get("restartPolicy") or "Always")


def rebase(path: str, pod_path: str) -> str:
    """Root a pod-relative path (``spec.containers[0]``) at the object the user wrote (a workload)."""
    if not pod_path:
        return path
    return f"{pod_path}.{path}" if path else pod_path
