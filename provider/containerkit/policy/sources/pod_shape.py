"""The field types a pod template must have before rules read it, checked so a wrong type is an error.

Rules read pods in API form and trust the API's types (``containers`` is a list of mappings,
``securityContext.privileged`` a bool ...). A hand-written manifest can say anything, so the loader checks
every field a rule reads (and the containers around them) against this table first; a mismatch is a
parse error naming the field path, what the API expects and what was found, as ``kubectl apply`` would
refuse it. The table follows the ``kubernetes`` client's ``openapi_types`` for these models (a unit test
compares them), written out here because importing the client costs ~2 s, more than linting a folder.
Fields not listed are not checked; ``null`` is always accepted (the API treats it as unset).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

# Leaf type names, as the API documents them.
STR = "string"
INT = "integer"
BOOL = "boolean"
QUANTITY = "quantity"  # int-or-string
INT_OR_STR = "int-or-string"
OBJECT = "object"  # a mapping, contents not checked here

Shape = str | dict[str, Any] | list[Any]
"""A leaf name, a mapping of field -> shape, a one-item list ``[item shape]``, or ``{"*": shape}`` for a
map with free keys."""

STR_MAP: dict[str, Any] = {"*": STR}
QUANTITIES: dict[str, Any] = {"*": QUANTITY}
_SELINUX = {"user": STR, "role": STR, "type": STR, "level": STR}
_PROFILE = {"type": STR, "localhostProfile": STR}

SECURITY_CONTEXT: dict[str, Any] = {
    "privileged": BOOL,
    "allowPrivilegeEscalation": BOOL,
    "readOnlyRootFilesystem": BOOL,
    "runAsNonRoot": BOOL,
    "runAsUser": INT,
    "runAsGroup": INT,
    "procMount": STR,
    "capabilities": {"add": [STR], "drop": [STR]},
    "seccompProfile": _PROFILE,
    "appArmorProfile": _PROFILE,
    "seLinuxOptions": _SELINUX,
    "windowsOptions": OBJECT,
}
POD_SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": BOOL,
    "runAsUser": INT,
    "runAsGroup": INT,
    "fsGroup": INT,
    "fsGroupChangePolicy": STR,
    "supplementalGroups": [INT],
    "supplementalGroupsPolicy": STR,
    "sysctls": [{"name": STR, "value": STR}],
    "seccompProfile": _PROFILE,
    "appArmorProfile": _PROFILE,
    "seLinuxOptions": _SELINUX,
    "seLinuxChangePolicy": STR,
    "windowsOptions": OBJECT,
}
PROBE: dict[str, Any] = {
    "exec": {"command": [STR]},
    "httpGet": {"path": STR, "port": INT_OR_STR, "host": STR, "scheme": STR},
    "tcpSocket": {"port": INT_OR_STR, "host": STR},
    "grpc": {"port": INT, "service": STR},
    "initialDelaySeconds": INT,
    "periodSeconds": INT,
    "timeoutSeconds": INT,
    "failureThreshold": INT,
    "successThreshold": INT,
    "terminationGracePeriodSeconds": INT,
}
CONTAINER: dict[str, Any] = {
    "name": STR,
    "image": STR,
    "imagePullPolicy": STR,
    "command": [STR],
    "args": [STR],
    "workingDir": STR,
    "restartPolicy": STR,
    "env": [{"name": STR, "value": STR, "valueFrom": OBJECT}],
    "envFrom": [OBJECT],
    "ports": [{"name": STR, "containerPort": INT, "hostPort": INT, "hostIP": STR, "protocol": STR}],
    "resources": {"requests": QUANTITIES, "limits": QUANTITIES, "claims": [OBJECT]},
    "securityContext": SECURITY_CONTEXT,
    "livenessProbe": PROBE,
    "readinessProbe": PROBE,
    "startupProbe": PROBE,
    "lifecycle": OBJECT,
    "volumeMounts": [{"name": STR, "mountPath": STR, "readOnly": BOOL, "subPath": STR}],
    "stdin": BOOL,
    "tty": BOOL,
}
VOLUME: dict[str, Any] = {
    "name": STR,
    "hostPath": {"path": STR, "type": STR},
    "emptyDir": {"medium": STR, "sizeLimit": QUANTITY},
    "secret": OBJECT,
    "configMap": OBJECT,
    "projected": OBJECT,
    "persistentVolumeClaim": OBJECT,
    "downwardAPI": OBJECT,
    "ephemeral": OBJECT,
    "csi": OBJECT,
    "image": OBJECT,
    "*volume-source": OBJECT,  # any other volume source key: a mapping
}
POD_SPEC: dict[str, Any] = {
    "containers": [CONTAINER],
    "initContainers": [CONTAINER],
    "ephemeralContainers": [CONTAINER],
    "securityContext": POD_SECURITY_CONTEXT,
    "volumes": [VOLUME],
    "hostNetwork": BOOL,
    "hostPID": BOOL,
    "hostIPC": BOOL,
    "hostUsers": BOOL,
    "shareProcessNamespace": BOOL,
    "automountServiceAccountToken": BOOL,
    "serviceAccountName": STR,
    "restartPolicy": STR,
    "priorityClassName": STR,
    "priority": INT,
    "nodeName": STR,
    "nodeSelector": STR_MAP,
    "os": {"name": STR},
    "affinity": {"podAntiAffinity": OBJECT, "podAffinity": OBJECT, "nodeAffinity": OBJECT},
    "topologySpreadConstraints": [OBJECT],
    "tolerations": [OBJECT],
    "imagePullSecrets": [OBJECT],
    "dnsPolicy": STR,
    "runtimeClassName": STR,
    "terminationGracePeriodSeconds": INT,
    "activeDeadlineSeconds": INT,
}
METADATA: dict[str, Any] = {
    "name": STR,
    "generateName": STR,
    "namespace": STR,
    "labels": STR_MAP,
    "annotations": STR_MAP,
}
POD_TEMPLATE: dict[str, Any] = {"metadata": METADATA, "spec": POD_SPEC}


def describe(value: Any) -> str:
    """What was found, for an error message: the type and a short preview."""
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value})"
    if isinstance(value, str):
        preview = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({preview!r})"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def _expected(shape: Shape) -> str:
    if isinstance(shape, list):
        return "a list"
    if isinstance(shape, dict):
        return "a mapping"
    return {
        STR: "a string",
        INT: "an integer",
        BOOL: "a boolean (true/false)",
        QUANTITY: "a quantity (a number or a string such as 500m or 1Gi)",
        INT_OR_STR: "an integer or a string",
        OBJECT: "a mapping",
    }[shape]


def _leaf_ok(shape: str, value: Any) -> bool:
    if shape == STR:
        return isinstance(value, str)
    if shape == INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if shape == BOOL:
        return isinstance(value, bool)
    if shape in (QUANTITY, INT_OR_STR):
        ok_number = shape == QUANTITY and isinstance(value, float)
        return (isinstance(value, int | str) and not isinstance(value, bool)) or ok_number
    return isinstance(value, Mapping)


def mismatches(value: Any, shape: Shape, path: str) -> Iterator[tuple[str, str, str]]:
    """``(field path, expected, found)`` for every field of ``value`` whose type does not fit ``shape``."""
    if value is None:
        return
    if isinstance(shape, str):
        if not _leaf_ok(shape, value):
            yield path, _expected(shape), describe(value)
        return
    if isinstance(shape, list):
        if not isinstance(value, list):
            yield path, f"a list{_of(shape[0])}", describe(value)
            return
        for i, item in enumerate(value):
            yield from mismatches(item, shape[0], f"{path}[{i}]")
        return
    if not isinstance(value, Mapping):
        yield path, "a mapping", describe(value)
        return
    free = shape.get("*")
    for key, sub in value.items():
        child = f"{path}.{key}" if path else str(key)
        if free is not None:
            yield from mismatches(sub, free, child)
        elif key in shape:
            yield from mismatches(sub, shape[key], child)
        elif "*volume-source" in shape and sub is not None and not isinstance(sub, Mapping):
            yield child, "a mapping (a volume source)", describe(sub)


def _of(item: Shape) -> str:
    if isinstance(item, dict):
        return " of mappings"
    if isinstance(item, str) and item != OBJECT:
        return f" of {_expected(item).removeprefix('a ').removeprefix('an ')}s"
    return " of mappings" if item == OBJECT else ""
