"""Parse-time checks both secure operators run on the arguments a DAG author passed, before any stock code.

One place, so ``SecureDockerOperator`` and ``SecureKubernetesPodOperator`` refuse the same bad input
with the same message, and every message names the parameter the user set (``private_environment``,
``secret_refs``), not the spec field it maps onto. Import-light: no spec import at parse start.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from containerkit.errors import SpecError
from containerkit.operators.templating import is_templated

if TYPE_CHECKING:
    from containerkit.diagnostics.model import Diagnosis

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_templated = is_templated


def env_items(env: object) -> list[tuple[str, Any]]:
    """``(name, value)`` of a ``{name: value}`` mapping or a list of ``V1EnvVar``-like objects/dicts."""
    if env is None:
        return []
    if isinstance(env, Mapping):
        return [(k, v) for k, v in env.items()]
    out: list[tuple[str, Any]] = []
    for item in env if isinstance(env, Iterable) and not isinstance(env, str | bytes) else ():
        if isinstance(item, Mapping):
            out.append((str(item.get("name")), item.get("value")))
        else:
            out.append((str(getattr(item, "name", item)), getattr(item, "value", None)))
    return out


def check_env(param: str, env: object) -> None:
    """Env var names follow the Kubernetes rule on both runtimes (a Docker task can move to a pod)."""
    from containerkit.spec.names import check_env_name

    if env is not None and (isinstance(env, str | bytes) or not isinstance(env, Mapping | Iterable)):
        raise SpecError(
            param, env, "expected a mapping of env var names to values", f"use {param}={{'NAME': 'value'}}"
        )
    for name, _ in env_items(env):
        check_env_name(f"{param}[{name!r}]", name)


def check_docker_mounts(param: str, mounts: object) -> None:
    """Stock ``mounts`` takes docker-py ``Mount`` objects (or their dict form), never a containerkit
    ``VolumeMount``: that one needs its volume, so it goes in ``spec=``."""
    if mounts is None:
        return
    if isinstance(mounts, str | bytes | Mapping) or not isinstance(mounts, Iterable):
        raise SpecError(param, mounts, "expected a list of docker.types.Mount", f"use {param}=[Mount(...)]")
    for i, mount in enumerate(mounts):
        if isinstance(mount, Mapping):  # docker.types.Mount is a dict
            continue
        if type(mount).__name__ == "VolumeMount":
            raise SpecError(
                f"{param}[{i}]",
                mount,
                "a containerkit VolumeMount needs its volume, which stock mounts cannot carry",
                "pass spec=ContainerSpec(image, volumes=[...], mounts=[VolumeMount(...)]), or use "
                "docker.types.Mount(target='/data', source='name', type='volume')",
            )
        raise SpecError(
            f"{param}[{i}]",
            mount,
            f"not a docker.types.Mount (got {type(mount).__name__})",
            "use docker.types.Mount(target='/data', source='name', type='volume')",
        )


def check_timeout(param: str, value: object) -> None:
    """A timeout must be a positive number of seconds (or a positive ``timedelta``); ``None`` means unset."""
    if value is None:
        return
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise SpecError(param, value, "a timeout must be a number of seconds", f"use {param}=60")
    if seconds <= 0:
        example = "timedelta(minutes=30)" if isinstance(value, timedelta) else "60"
        raise SpecError(
            param,
            value,
            "a timeout must be positive (zero or negative would stop the task at once, or never)",
            f"use {param}={example}, or leave it unset for no limit",
        )


def check_refs(param: str, refs: object, kind: type, example: str) -> None:
    """``secret_refs``/``config_map_refs`` must be a list of ``kind``, not a string or a single ref."""
    if refs is None:
        return
    name = kind.__name__
    if isinstance(refs, kind):
        raise SpecError(
            param, refs, f"expected a list of {name}, got a single {name}", f"wrap it: {param}=[{example}]"
        )
    if isinstance(refs, str | bytes | Mapping) or not isinstance(refs, Iterable):
        raise SpecError(
            param, refs, f"expected a list of {name}, got {type(refs).__name__}", f"use {param}=[{example}]"
        )
    for i, ref in enumerate(refs):
        if not isinstance(ref, kind):
            raise SpecError(f"{param}[{i}]", ref, f"not a {name}", f"use {example}")


def check_unique_targets(refs: Mapping[str, Iterable[Any] | None]) -> None:
    """No two references mount the same path or set the same env var; the message names both entries."""
    seen: dict[tuple[str, str], str] = {}
    for param, entries in refs.items():
        for i, ref in enumerate(entries or ()):
            for attr in ("path", "env"):
                target = getattr(ref, attr, None)
                if not target:
                    continue
                here = f"{param}[{i}] {ref!r}"
                first = seen.setdefault((attr, target), here)
                if first != here:
                    what = "mount path" if attr == "path" else "env var"
                    raise SpecError(
                        f"{param}[{i}].{attr}",
                        target,
                        f"duplicate {what}: {first} and {here} both use it",
                        f"give each entry its own {attr}=",
                    )


def check_image_digest(image: object) -> None:
    """A digest, when given, must be ``sha256:`` and 64 lower-case hex characters."""
    if not isinstance(image, str) or _templated(image) or "@" not in image:
        return
    digest = image.rsplit("@", 1)[1]
    if not _DIGEST.match(digest):
        raise SpecError(
            "image",
            image,
            f"the digest {digest!r} is malformed: it must be 'sha256:' followed by 64 lower-case hex "
            "characters",
            "copy the full digest (docker buildx imagetools inspect <image>), or drop '@...' and use a tag",
        )


def check_common(*, image: object, secret_refs: object, config_map_refs: object) -> None:
    """The checks of the parameters both operators take, in the order a reader fixes them."""
    from containerkit.spec import ConfigMapRef, SecretRef

    check_image_digest(image)
    check_refs(
        "secret_refs",
        secret_refs,
        SecretRef,
        "SecretRef(secret='db', key='password', path='/run/secrets/pw')",
    )
    check_refs(
        "config_map_refs",
        config_map_refs,
        ConfigMapRef,
        "ConfigMapRef(config_map='cfg', key='k', path='/etc/k')",
    )
    check_unique_targets({"secret_refs": secret_refs, "config_map_refs": config_map_refs})  # type: ignore[dict-item]


def unreadable_by(path: Path, uid: int, gid: int) -> str | None:
    """Why ``uid:gid`` cannot read ``path`` (its owner and mode), or None when it can."""
    info = path.stat()
    mode = stat.S_IMODE(info.st_mode)
    readable = (
        uid == 0
        or (info.st_uid == uid and mode & 0o400)
        or (info.st_gid == gid and mode & 0o040)
        or mode & 0o004
    )
    return None if readable else f"owner {info.st_uid}:{info.st_gid}, mode {mode:04o}"


def secret_file_diagnosis(files: Mapping[str, str], uid: int, gid: int) -> Diagnosis:
    """Pre-flight: secret files (host path -> owner/mode) the container's user could not read."""
    from containerkit.diagnostics.model import Diagnosis

    first = next(iter(files))
    return Diagnosis(
        cause="SecretFile:unreadable",
        summary=f"{len(files)} secret file(s) not readable by the container's uid {uid} (gid {gid}): "
        + "; ".join(f"{path} ({why})" for path, why in files.items()),
        fix=f"Make each file readable by uid {uid}: chown {uid} {first} && chmod 0400 "
        f"{first}, or keep the owner and make it group {gid} readable: chgrp {gid} {first} && chmod 0440 "
        f"{first}. Nothing needs write access.",
        evidence=tuple(f"{path}: {why}" for path, why in files.items()),
    )
