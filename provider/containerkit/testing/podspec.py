"""From a pod's spec to what the engine runs: refusals, env, user, limits and the engine's create options.

Pure functions over the pod as the API stored it (dicts in API field names), so each mapping can be
read, and tested, on its own. The wording of errors is the kubelet's, so that
``containerkit.diagnostics`` sees on this test double what it sees on a real node.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from kubernetes.utils import parse_quantity

__all__ = [
    "DANGEROUS_CAPABILITIES",
    "ConfigError",
    "effective_requests",
    "engine_limits",
    "refusals",
    "resolve_env",
    "run_user",
]

Lookup = Callable[[str, str, str], Mapping[str, Any] | None]
"""``lookup(kind, namespace, name)``: a stored Secret or ConfigMap, or None."""

DANGEROUS_CAPABILITIES = frozenset(
    {
        "ALL",
        "SYS_ADMIN",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_BOOT",
        "SYS_TIME",
        "NET_ADMIN",
        "BPF",
        "PERFMON",
        "DAC_READ_SEARCH",
        "SYS_PTRACE",
        "MAC_ADMIN",
        "MAC_OVERRIDE",
        "SYSLOG",
    }
)
"""Capabilities that reach the host kernel or other containers: the test double does not grant them."""


class ConfigError(Exception):
    """A container that cannot be created (the kubelet's ``CreateContainerConfigError``)."""


def _containers(pod: Mapping[str, Any]) -> Iterable[tuple[str, Mapping[str, Any]]]:
    spec = pod.get("spec") or {}
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(kind) or []:
            yield f"spec.{kind}[{c.get('name')}]", c


def refusals(pod: Mapping[str, Any], host_path_allow: Iterable[str]) -> list[str]:
    """What in the pod would expose the host; each entry names the field and the fix."""
    spec = pod.get("spec") or {}
    out: list[str] = []
    for field in ("hostNetwork", "hostPID", "hostIPC", "hostUsers"):
        if spec.get(field) is True and field != "hostUsers":
            out.append(f"spec.{field}=true shares the host's namespace: remove it")
    allowed = [str(p).rstrip("/") for p in host_path_allow]
    for volume in spec.get("volumes") or []:
        path = (volume.get("hostPath") or {}).get("path")
        if path is None:
            continue
        norm = re.sub(r"/+", "/", str(path)).rstrip("/") or "/"
        if ".." in norm.split("/") or not any(norm == a or norm.startswith(a + "/") for a in allowed):
            out.append(
                f"spec.volumes[{volume.get('name')}].hostPath.path={path!r} is outside the allow-list "
                f"{allowed or '(empty)'}: use an emptyDir or PVC, or allow the path with "
                "LocalCluster(host_path_allow=[...])"
            )
    pod_seccomp = ((spec.get("securityContext") or {}).get("seccompProfile") or {}).get("type")
    if pod_seccomp == "Localhost":
        out.append("spec.securityContext.seccompProfile.type=Localhost reads a host file: use RuntimeDefault")
    for where, c in _containers(pod):
        ctx = c.get("securityContext") or {}
        if ctx.get("privileged") is True:
            out.append(f"{where}.securityContext.privileged=true gives the host's devices: remove it")
        if (ctx.get("seccompProfile") or {}).get("type") == "Localhost":
            out.append(f"{where}.securityContext.seccompProfile.type=Localhost reads a host file")
        added = {
            str(a).upper().removeprefix("CAP_") for a in (ctx.get("capabilities") or {}).get("add") or []
        }
        if bad := sorted(added & DANGEROUS_CAPABILITIES):
            out.append(f"{where}.securityContext.capabilities.add={bad} reaches the host kernel: drop them")
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                out.append(f"{where}.ports[{port.get('containerPort')}].hostPort binds the host: remove it")
    return out


# --- env ----------------------------------------------------------------------------------------


def _decoded(obj: Mapping[str, Any], kind: str) -> dict[str, str]:
    """The string values of a Secret (``data`` base64, ``stringData``) or ConfigMap."""
    if kind == "Secret":
        data = {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}
        data.update({k: str(v) for k, v in (obj.get("stringData") or {}).items()})
        return data
    return {k: str(v) for k, v in (obj.get("data") or {}).items()}


def source_bytes(obj: Mapping[str, Any], kind: str) -> dict[str, bytes]:
    """The files a Secret or ConfigMap volume holds, one per key."""
    if kind == "Secret":
        out = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        out.update({k: str(v).encode() for k, v in (obj.get("stringData") or {}).items()})
        return out
    out = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
    out.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return out


def _key_ref(ref: Mapping[str, Any], kind: str, namespace: str, lookup: Lookup) -> str | None:
    name, key = ref.get("name", ""), ref.get("key", "")
    obj = lookup(kind, namespace, name)
    label = "secret" if kind == "Secret" else "configmap"
    if obj is None:
        if ref.get("optional"):
            return None
        raise ConfigError(f'{label} "{name}" not found')
    values = _decoded(obj, kind)
    if key not in values:
        if ref.get("optional"):
            return None
        raise ConfigError(f"couldn't find key {key} in {kind} {namespace}/{name}")
    return values[key]


def _field_ref(path: str, pod: Mapping[str, Any], pod_ip: str) -> str:
    meta = pod.get("metadata") or {}
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": (pod.get("spec") or {}).get("nodeName"),
        "spec.serviceAccountName": (pod.get("spec") or {}).get("serviceAccountName", "default"),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": "127.0.0.1",
    }
    if path in simple:
        return str(simple[path] or "")
    if m := re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path):
        return str((meta.get(m[1]) or {}).get(m[2], ""))
    raise ConfigError(f"unsupported fieldRef fieldPath {path!r}")


def _resource_ref(ref: Mapping[str, Any], container: Mapping[str, Any], pod: Mapping[str, Any]) -> str:
    target = container
    if ref.get("containerName"):
        spec = pod.get("spec") or {}
        target = next(
            (
                c
                for c in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]
                if c.get("name") == ref["containerName"]
            ),
            container,
        )
    kind, _, resource = str(ref.get("resource", "")).partition(".")
    value = ((target.get("resources") or {}).get(kind) or {}).get(resource)
    if value is None:
        return "0"
    divisor = parse_quantity(ref.get("divisor") or "1")
    return str(int(-(-parse_quantity(value) // divisor)))  # the API rounds up


def _expand(value: str, env: Mapping[str, str]) -> str:
    """``$(VAR)`` references to earlier variables; ``$$(VAR)`` stays literal, as in Kubernetes."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0).startswith("$$"):
            return m.group(0)[1:]
        return env.get(m.group(1), m.group(0))

    return re.sub(r"\$?\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", sub, value)


def resolve_env(
    container: Mapping[str, Any], pod: Mapping[str, Any], lookup: Lookup, pod_ip: str = ""
) -> dict[str, str]:
    """``envFrom`` then ``env``, with ``valueFrom`` read from the stored Secrets and ConfigMaps."""
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix") or ""
        for kind, field in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
            ref = source.get(field)
            if ref is None:
                continue
            obj = lookup(kind, namespace, ref.get("name", ""))
            if obj is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(
                    f'{"secret" if kind == "Secret" else "configmap"} "{ref.get("name")}" not found'
                )
            env.update({prefix + k: v for k, v in _decoded(obj, kind).items()})
    for item in container.get("env") or []:
        name = item["name"]
        source = item.get("valueFrom")
        if source is None:
            env[name] = _expand(str(item.get("value") or ""), env)
            continue
        value: str | None
        if "secretKeyRef" in source:
            value = _key_ref(source["secretKeyRef"], "Secret", namespace, lookup)
        elif "configMapKeyRef" in source:
            value = _key_ref(source["configMapKeyRef"], "ConfigMap", namespace, lookup)
        elif "fieldRef" in source:
            value = _field_ref(source["fieldRef"].get("fieldPath", ""), pod, pod_ip)
        elif "resourceFieldRef" in source:
            value = _resource_ref(source["resourceFieldRef"], container, pod)
        else:
            raise ConfigError(f"unsupported valueFrom for env {name}: {sorted(source)}")
        if value is not None:
            env[name] = value
    return env


def expand_args(args: Iterable[str] | None, env: Mapping[str, str]) -> list[str] | None:
    """``command``/``args`` with ``$(VAR)`` expanded; empty means unset (the image's), as in Kubernetes."""
    values = list(args or [])
    return [_expand(str(a), env) for a in values] if values else None


# --- security context ---------------------------------------------------------------------------


def merged_context(container: Mapping[str, Any], pod: Mapping[str, Any]) -> dict[str, Any]:
    """The container's securityContext over the pod's (the fields both may set)."""
    pod_ctx = dict((pod.get("spec") or {}).get("securityContext") or {})
    ctx = {
        k: pod_ctx[k] for k in ("runAsUser", "runAsGroup", "runAsNonRoot", "seccompProfile") if k in pod_ctx
    }
    ctx.update(container.get("securityContext") or {})
    return ctx


def run_user(container: Mapping[str, Any], pod: Mapping[str, Any], image_user: str, where: str) -> str | None:
    """The engine's ``user`` (``uid[:gid]``), after the kubelet's ``runAsNonRoot`` check."""
    ctx = merged_context(container, pod)
    uid, gid = ctx.get("runAsUser"), ctx.get("runAsGroup")
    image_uid, _, image_gid = (image_user or "").partition(":")
    if ctx.get("runAsNonRoot"):
        if uid is None:
            if image_uid in ("", "root", "0"):
                raise ConfigError(f"container has runAsNonRoot and image will run as root ({where})")
            if not image_uid.isdigit():
                raise ConfigError(
                    f"container has runAsNonRoot and image has non-numeric user ({image_uid}), "
                    f"cannot verify user is non-root ({where})"
                )
        elif int(uid) == 0:
            raise ConfigError(f"container's runAsUser breaks non-root policy ({where})")
    if uid is None and gid is None:
        return None
    user = str(uid) if uid is not None else (image_uid or "0")
    group = str(gid) if gid is not None else image_gid
    return f"{user}:{group}" if group else user


def groups(pod: Mapping[str, Any]) -> list[str]:
    ctx = (pod.get("spec") or {}).get("securityContext") or {}
    out = [str(g) for g in ctx.get("supplementalGroups") or []]
    if ctx.get("fsGroup") is not None:
        out.insert(0, str(ctx["fsGroup"]))
    return list(dict.fromkeys(out))


def security_options(container: Mapping[str, Any], pod: Mapping[str, Any]) -> dict[str, Any]:
    """read-only root, capabilities, no-new-privileges and seccomp as engine create options."""
    ctx = merged_context(container, pod)
    caps = ctx.get("capabilities") or {}
    opts: list[str] = []
    if ctx.get("allowPrivilegeEscalation") is False:
        opts.append("no-new-privileges:true")
    if (ctx.get("seccompProfile") or {}).get("type") == "Unconfined":
        opts.append("seccomp=unconfined")  # RuntimeDefault and unset: the engine's default profile
    return {
        "read_only": bool(ctx.get("readOnlyRootFilesystem")),
        "cap_drop": [str(c).upper().removeprefix("CAP_") for c in caps.get("drop") or []] or None,
        "cap_add": [str(c).upper().removeprefix("CAP_") for c in caps.get("add") or []] or None,
        "security_opt": opts or None,
        "group_add": groups(pod) or None,
    }


# --- resources ----------------------------------------------------------------------------------


def engine_limits(container: Mapping[str, Any]) -> dict[str, Any]:
    """``limits`` as hard engine limits: memory without swap (a real OOM kill), cpu as a CFS quota."""
    limits = (container.get("resources") or {}).get("limits") or {}
    out: dict[str, Any] = {}
    if "memory" in limits:
        memory = int(parse_quantity(limits["memory"]))
        out.update(mem_limit=memory, memswap_limit=memory)
    if "cpu" in limits:
        out["nano_cpus"] = int(parse_quantity(limits["cpu"]) * Decimal(1_000_000_000))
    return out


def _container_requests(c: Mapping[str, Any]) -> dict[str, Decimal]:
    res = c.get("resources") or {}
    merged = {**(res.get("limits") or {}), **(res.get("requests") or {})}  # requests default to limits
    return {k: parse_quantity(v) for k, v in merged.items() if k in ("cpu", "memory")}


def effective_requests(pod: Mapping[str, Any]) -> dict[str, Decimal]:
    """What the scheduler reserves: max(any init container, sum of the containers and sidecars)."""
    spec = pod.get("spec") or {}
    total: dict[str, Decimal] = {"cpu": Decimal(0), "memory": Decimal(0)}
    peak_init: dict[str, Decimal] = {"cpu": Decimal(0), "memory": Decimal(0)}
    for c in spec.get("initContainers") or []:
        req = _container_requests(c)
        if c.get("restartPolicy") == "Always":
            for k, v in req.items():
                total[k] += v
        else:
            for k, v in req.items():
                peak_init[k] = max(peak_init[k], v)
    for c in spec.get("containers") or []:
        for k, v in _container_requests(c).items():
            total[k] += v
    return {k: max(total[k], peak_init[k]) for k in total}
