"""A pod's volumes as engine volumes: what to create, which files the kubelet writes, with which modes.

Every kind the kubelet fills itself (Secret, ConfigMap, projected, downwardAPI) becomes a per-pod
engine volume whose files are written, as one tar archive, through the pod's sandbox container before
any of the pod's containers starts; ``emptyDir`` is an empty per-pod volume (``medium: Memory``: a
tmpfs volume); a PVC is a named engine volume that outlives the pod. Modes and owners follow the
kubelet: files ``defaultMode`` (0644) owned by root, and with ``fsGroup`` group-owned by it and made
group-readable; ``emptyDir`` directories 0777.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from containerkit.testing.podspec import Lookup, source_bytes

__all__ = ["MountError", "PodVolume", "archive", "plan_volumes", "pvc_volume_name"]

SERVICE_ACCOUNT_TOKEN = b"containerkit-testing-fake-service-account-token"


class MountError(Exception):
    """A volume the kubelet cannot set up yet (``FailedMount``); it retries."""


@dataclass
class PodVolume:
    name: str
    kind: str
    engine_name: str | None = None  # None: a bind of an allow-listed host path
    host_path: str | None = None
    driver_opts: dict[str, str] | None = None
    keep: bool = False  # a PVC's volume outlives the pod
    read_only: bool = False  # the kubelet mounts Secret/ConfigMap/projected/downwardAPI read-only
    dir_mode: int = 0o755
    gid: int | None = None  # the pod's fsGroup: group owner of every file and directory
    files: list[tuple[str, bytes, int]] = field(default_factory=list)


def pvc_volume_name(cluster: str, namespace: str, claim: str) -> str:
    return f"ck-{cluster}-pvc-{namespace}-{claim}"[:200]


def _items(
    data: Mapping[str, bytes],
    items: list[Mapping[str, Any]] | None,
    default_mode: int,
    volume: str,
    what: str,
) -> list[tuple[str, bytes, int]]:
    if not items:
        return [(key, value, default_mode) for key, value in sorted(data.items())]
    out = []
    for item in items:
        key = item.get("key", "")
        if key not in data:
            raise MountError(
                f'MountVolume.SetUp failed for volume "{volume}" : references non-existent {what} key: {key}'
            )
        out.append((item.get("path") or key, data[key], int(item.get("mode", default_mode))))
    return out


def _source(
    ref: Mapping[str, Any], kind: str, namespace: str, lookup: Lookup, volume: str, default_mode: int
) -> list[tuple[str, bytes, int]]:
    name = ref.get("secretName") if kind == "Secret" else ref.get("name")
    obj = lookup(kind, namespace, str(name or ""))
    what = "secret" if kind == "Secret" else "configmap"
    if obj is None:
        if ref.get("optional"):
            return []
        raise MountError(f'MountVolume.SetUp failed for volume "{volume}" : {what} "{name}" not found')
    return _items(source_bytes(obj, kind), ref.get("items"), default_mode, volume, what)


def _downward(
    items: list[Mapping[str, Any]], pod: Mapping[str, Any], mode: int
) -> list[tuple[str, bytes, int]]:
    meta = pod.get("metadata") or {}
    out = []
    for item in items:
        path = (item.get("fieldRef") or {}).get("fieldPath", "")
        if path in ("metadata.labels", "metadata.annotations"):
            pairs = meta.get(path.split(".")[1]) or {}
            value = "\n".join(f"{k}={json.dumps(str(v))}" for k, v in sorted(pairs.items()))
        else:
            value = str(meta.get(path.removeprefix("metadata."), ""))
        out.append((item["path"], value.encode(), int(item.get("mode", mode))))
    return out


def plan_volumes(pod: Mapping[str, Any], lookup: Lookup, cluster: str) -> list[PodVolume]:
    """Every volume of ``pod``; raises :class:`MountError` with the kubelet's wording."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    namespace = meta.get("namespace") or "default"
    uid = str(meta.get("uid", ""))[:8]
    fs_group = (spec.get("securityContext") or {}).get("fsGroup")
    gid = int(fs_group) if fs_group is not None else None
    volumes: list[PodVolume] = []
    for v in spec.get("volumes") or []:
        name = v["name"]
        engine = f"ck-{cluster}-{uid}-{name}"[:200]
        if "emptyDir" in v:
            opts = None
            if (v["emptyDir"] or {}).get("medium") == "Memory":
                size = (v["emptyDir"] or {}).get("sizeLimit") or "64Mi"
                from kubernetes.utils import parse_quantity

                opts = {
                    "type": "tmpfs",
                    "device": "tmpfs",
                    "o": f"size={int(parse_quantity(size))},mode=0777",
                }
            volumes.append(PodVolume(name, "emptyDir", engine, driver_opts=opts, dir_mode=0o777, gid=gid))
        elif "secret" in v or "configMap" in v:
            kind = "Secret" if "secret" in v else "ConfigMap"
            ref = v["secret"] if kind == "Secret" else v["configMap"]
            mode = int(ref.get("defaultMode", 0o644))
            files = _source(ref, kind, namespace, lookup, name, mode)
            volumes.append(PodVolume(name, kind, engine, read_only=True, gid=gid, files=files))
        elif "projected" in v:
            mode = int(v["projected"].get("defaultMode", 0o644))
            files = []
            for src in v["projected"].get("sources") or []:
                if "secret" in src:
                    ref = {**src["secret"], "secretName": src["secret"].get("name")}
                    files += _source(ref, "Secret", namespace, lookup, name, mode)
                elif "configMap" in src:
                    files += _source(src["configMap"], "ConfigMap", namespace, lookup, name, mode)
                elif "downwardAPI" in src:
                    files += _downward(src["downwardAPI"].get("items") or [], pod, mode)
                elif "serviceAccountToken" in src:
                    files.append(
                        (src["serviceAccountToken"].get("path", "token"), SERVICE_ACCOUNT_TOKEN, mode)
                    )
            volumes.append(PodVolume(name, "projected", engine, read_only=True, gid=gid, files=files))
        elif "downwardAPI" in v:
            mode = int(v["downwardAPI"].get("defaultMode", 0o644))
            files = _downward(v["downwardAPI"].get("items") or [], pod, mode)
            volumes.append(PodVolume(name, "downwardAPI", engine, read_only=True, gid=gid, files=files))
        elif "persistentVolumeClaim" in v:
            claim = v["persistentVolumeClaim"].get("claimName", "")
            volumes.append(
                PodVolume(
                    name,
                    "persistentVolumeClaim",
                    pvc_volume_name(cluster, namespace, claim),
                    keep=True,
                    read_only=bool(v["persistentVolumeClaim"].get("readOnly")),
                    dir_mode=0o777,
                    gid=gid,
                )
            )
        elif "hostPath" in v:
            volumes.append(PodVolume(name, "hostPath", host_path=v["hostPath"]["path"]))
        else:
            kinds = sorted(set(v) - {"name"})
            raise MountError(
                f'MountVolume.SetUp failed for volume "{name}" : containerkit.testing (a test double) '
                f"does not support volume type {kinds}: use emptyDir, Secret, ConfigMap, projected, "
                "downwardAPI or a PVC"
            )
    return volumes


def archive(volumes: list[PodVolume], sub_dirs: Mapping[str, list[str]]) -> bytes | None:
    """The tar of every kubelet-written file, rooted at the sandbox's ``/ck/volumes``."""
    buf = io.BytesIO()
    count = 0
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for v in volumes:
            if v.engine_name is None:
                continue
            if v.driver_opts and not v.files and not sub_dirs.get(v.name):
                continue  # tmpfs: mode from the mount options, nothing survives the write anyway
            gid = v.gid or 0
            d = tarfile.TarInfo(v.name)
            setgid = 0o2000 if v.gid is not None and not v.read_only else 0
            d.type, d.mode, d.gid = tarfile.DIRTYPE, v.dir_mode | setgid, gid
            tar.addfile(d)
            count += 1
            for sub_dir in sub_dirs.get(v.name, []):
                s = tarfile.TarInfo(f"{v.name}/{sub_dir}")
                s.type, s.mode, s.gid = tarfile.DIRTYPE, 0o777, gid
                tar.addfile(s)
                count += 1
            for path, data, mode in v.files:
                parts = path.strip("/").split("/")
                for i in range(1, len(parts)):
                    sub = tarfile.TarInfo(f"{v.name}/{'/'.join(parts[:i])}")
                    sub.type, sub.mode, sub.gid = tarfile.DIRTYPE, 0o755, gid
                    tar.addfile(sub)
                info = tarfile.TarInfo(f"{v.name}/{path.strip('/')}")
                info.size = len(data)
                info.mode = mode | (0o440 if v.gid is not None else 0)
                info.gid = gid
                tar.addfile(info, io.BytesIO(data))
                count += 1
    return buf.getvalue() if count else None
