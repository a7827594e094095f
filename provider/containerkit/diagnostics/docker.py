"""Diagnose a failed Docker container from its ``inspect`` result and log tail, or a Docker API error.

Pure functions over plain data: the operator calls them with what it read from the engine before
removing the container, ``containerkit diagnose`` with a saved ``docker inspect`` JSON. They never
import docker-py, so API errors are read by their attributes (``status_code``, ``explanation``).

Stable ``cause`` ids (match on these, not on the summary text; shared names and suffixes with
:mod:`containerkit.diagnostics.kubernetes` where the cause is the same):

- ``OOMKilled``: the kernel OOM killer ended the container at its memory limit
- ``ReadOnlyFilesystem``: a write to the read-only root filesystem
- ``PermissionDenied:volume``: a write refused on a mounted volume (ownership vs. the container uid)
- ``PermissionDenied``: a file operation refused elsewhere for the container user
- ``CommandNotFound``: exit 127 / exec of a missing file
- ``CommandNotExecutable``: exit 126: the file exists but cannot be executed
- ``KilledBySignal:<SIGNAME>``: exit 128+N without the OOM flag (``SIGKILL``, ``SIGTERM``, ``SIGSEGV``…)
- ``NonZeroExit``: any other non-zero exit code
- ``StartError``: the engine could not start the process (``State.Error``)
- ``ImageNotFound``: the image is not present on the engine (create failed)
- ``ImagePull:not-found``: the registry has no such repository or tag
- ``ImagePull:unauthorized``: the registry refused the credentials (or none were sent)
- ``ImagePull:not-found-or-unauthorized``: Docker Hub's "pull access denied", which means either
- ``ImagePull:rate-limited``: the registry's pull rate limit (transient)
- ``ImagePull:unreachable``: DNS / TCP / TLS failure reaching the registry (transient)
- ``InvalidImageName``: the reference does not parse
- ``DockerEngineUnreachable``: the Docker daemon did not answer (transient)
- ``DockerAPIError``: any other API error, with the engine's explanation
"""

from __future__ import annotations

import re
import signal
from collections.abc import Mapping, Sequence
from typing import Any

from containerkit.diagnostics.causes import (
    NOT_FOUND_OR_UNAUTHORIZED,
    PullFailure,
    classify_pull_error,
    is_ambiguous_denial,
    pull_cause,
)
from containerkit.diagnostics.model import Diagnosis

LOG_TAIL_LINES = 10
"""How many trailing log lines a diagnosis quotes as evidence."""

_EXIT_SIGNAL_BASE = 128
_READ_ONLY_RE = re.compile(r"read-only file system(?::\s*'?(?P<path>/[^'\s\"]*))?", re.IGNORECASE)
_PERMISSION_RE = re.compile(r"permission denied(?::\s*'?(?P<path>/[^'\s\"]*))?", re.IGNORECASE)


# --------------------------------------------------------------------------------------------- helpers


def human_bytes(value: int) -> str:
    """``16777216`` -> ``16Mi``: binary units, the way Kubernetes and ``docker stats`` show limits."""
    for unit, size in (("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)):
        if value >= size:
            scaled = value / size
            return f"{scaled:.0f}{unit}" if scaled == int(scaled) else f"{scaled:.1f}{unit}"
    return f"{value}B"


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def log_tail(logs: str | None, lines: int = LOG_TAIL_LINES) -> tuple[str, ...]:
    if not logs:
        return ()
    kept = [line.rstrip() for line in logs.splitlines() if line.strip()]
    return tuple(kept[-lines:])


def _container_name(inspect: Mapping[str, Any]) -> str | None:
    name = inspect.get("Name") or (inspect.get("Id") or "")[:12]
    return str(name).lstrip("/") or None


def _user(inspect: Mapping[str, Any]) -> str:
    """The user the process ran as: ``Config.User`` (set by the run or the image); empty means root."""
    return str((inspect.get("Config") or {}).get("User") or "0")


def _is_root(user: str) -> bool:
    return user.split(":", 1)[0] in ("0", "root", "")


def _mount_for(inspect: Mapping[str, Any], path: str) -> Mapping[str, Any] | None:
    """The mount (volume, bind, tmpfs) a path lies on, deepest first; None for the root filesystem."""
    mounts: list[Mapping[str, Any]] = [
        *(inspect.get("Mounts") or []),
        *(
            {"Type": "tmpfs", "Destination": dest, "RW": True}
            for dest in ((inspect.get("HostConfig") or {}).get("Tmpfs") or {})
        ),
    ]
    best: Mapping[str, Any] | None = None
    for mount in mounts:
        dest = str(mount.get("Destination") or "").rstrip("/")
        covers = bool(dest) and (path == dest or path.startswith(dest + "/"))
        if covers and (best is None or len(dest) > len(str(best.get("Destination") or ""))):
            best = mount
    return best


def _describe_mount(mount: Mapping[str, Any]) -> str:
    kind = mount.get("Type", "mount")
    source = mount.get("Name") or mount.get("Source") or ""
    label = f"{kind} {source}".strip() if kind != "tmpfs" else "tmpfs"
    return f"{label} mounted at {mount.get('Destination')}" + (
        "" if mount.get("RW", True) else " (read-only)"
    )


def _find(pattern: re.Pattern[str], lines: Sequence[str]) -> tuple[str, str | None] | None:
    """The last log line matching ``pattern`` and the path it names, if any."""
    for line in reversed(lines):
        match = pattern.search(line)
        if match:
            return line.strip(), match.group("path")
    return None


# ------------------------------------------------------------------------------------- containers


def diagnose_container(inspect: Mapping[str, Any], logs: str | None = None) -> Diagnosis | None:
    """Why a finished container failed, or ``None`` when it exited 0 (or has not finished).

    :param inspect: the engine's ``inspect`` document (``docker inspect`` JSON, or docker-py's
        ``APIClient.inspect_container``), read before the container was removed.
    :param logs: the container's log output (a tail is enough), used for the evidence lines and
        for read-only / permission errors the exit code alone cannot show.
    """
    state: Mapping[str, Any] = inspect.get("State") or {}
    host: Mapping[str, Any] = inspect.get("HostConfig") or {}
    name = _container_name(inspect)
    image = str((inspect.get("Config") or {}).get("Image") or inspect.get("Image") or "")
    exit_code = int(state.get("ExitCode") or 0)
    tail = log_tail(logs)
    tail_evidence = tuple(f"log: {line}" for line in tail)

    if state.get("OOMKilled"):
        return _oom(name, exit_code, int(host.get("Memory") or 0), int(host.get("MemorySwap") or 0), tail)
    if state.get("Running") or state.get("Status") in ("running", "paused", "restarting"):
        return None
    start_error = str(state.get("Error") or "")
    if start_error:
        return Diagnosis(
            cause="StartError",
            summary=f"the engine could not start the process of image {image}",
            fix="Check the image's entrypoint and command exist and are executable for the container user.",
            evidence=(f"engine: {start_error}", *tail_evidence),
            container=name,
            exit_code=exit_code,
        )
    if exit_code == 0:
        return None

    if exit_code == 127:
        return Diagnosis(
            cause="CommandNotFound",
            summary=f"the command was not found in image {image} (exit 127)",
            fix="Use a command that exists in the image (check PATH and the absolute path).",
            evidence=(f"command: {_command(inspect)}", *tail_evidence),
            container=name,
            exit_code=exit_code,
        )
    if exit_code == 126:
        return Diagnosis(
            cause="CommandNotExecutable",
            summary=f"the command exists but could not be executed (exit 126) as user {_user(inspect)}",
            fix="Make the file executable for the container user (chmod 0755 in the image) and check its "
            "interpreter line; a noexec mount (tmpfs /tmp is noexec) cannot run programs.",
            evidence=(f"command: {_command(inspect)}", *tail_evidence),
            container=name,
            exit_code=exit_code,
        )
    if _EXIT_SIGNAL_BASE < exit_code <= _EXIT_SIGNAL_BASE + 64:
        return _signal(name, exit_code, tail_evidence)

    read_only = _find(_READ_ONLY_RE, tail)
    if read_only:
        return _read_only(inspect, name, exit_code, read_only, tail_evidence)
    denied = _find(_PERMISSION_RE, tail)
    if denied:
        return _permission(inspect, name, exit_code, denied, tail_evidence)
    return Diagnosis(
        cause="NonZeroExit",
        summary=f"the container exited with code {exit_code}",
        fix="Read the last log lines above for the task's own error; the container itself ran as configured.",
        evidence=(f"exit code {exit_code}", *tail_evidence),
        container=name,
        exit_code=exit_code,
    )


def _command(inspect: Mapping[str, Any]) -> str:
    config = inspect.get("Config") or {}
    parts = [*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]
    return " ".join(str(p) for p in parts) or str(inspect.get("Path") or "")


def _oom(name: str | None, exit_code: int, memory: int, memswap: int, tail: Sequence[str]) -> Diagnosis:
    if memory:
        limit = human_bytes(memory)
        summary = f"killed by the OOM killer at its memory limit of {limit} (exit {exit_code})"
        evidence = [f"State.OOMKilled=true, HostConfig.Memory={memory} ({limit})"]
        if memswap and memswap != memory:
            evidence.append(f"HostConfig.MemorySwap={memswap}: the container could also use swap")
        fix = (
            f"Raise the memory limit above {limit} (a larger `resources` preset, or `mem_limit`), "
            "or make the task use less memory (stream or chunk the data)."
        )
    else:
        summary = f"killed by the OOM killer with no container memory limit set (exit {exit_code})"
        evidence = ["State.OOMKilled=true, HostConfig.Memory=0 (unlimited): the host ran out of memory"]
        fix = "Set a memory limit (a `resources` preset) sized for the task so it cannot exhaust the host."
    return Diagnosis(
        cause="OOMKilled",
        summary=summary,
        fix=fix,
        evidence=(*evidence, *(f"log: {line}" for line in tail)),
        container=name,
        exit_code=exit_code,
        details={"memory_limit": limit if memory else "unlimited", "memory_limit_bytes": str(memory)},
    )


_SIGNAL_FIXES = {
    "SIGKILL": (
        "killed by SIGKILL without the OOM flag: `docker kill`, the end of `docker stop`'s grace period, "
        "the task's on_kill or execution_timeout, or an OOM kill outside the container's own limit",
        "If nobody stopped the task on purpose, check the host's memory (dmesg) and the task's "
        "execution_timeout; otherwise this is the expected end of a killed task.",
    ),
    "SIGTERM": (
        "stopped by SIGTERM: `docker stop`, the task's on_kill or its execution_timeout",
        "If the task was not stopped on purpose, raise execution_timeout or find who stopped the container.",
    ),
    "SIGSEGV": (
        "crashed with a segmentation fault in native code",
        "Look for a native extension or library mismatch in the image (rebuild wheels for the image's "
        "platform); the Python traceback, if any, is in the log lines.",
    ),
    "SIGABRT": (
        "aborted (SIGABRT), usually a failed assertion in native code",
        "Read the log lines for the abort message; check native libraries in the image.",
    ),
}


def _signal(container: str | None, exit_code: int, tail_evidence: tuple[str, ...]) -> Diagnosis:
    name = signal_name(exit_code - _EXIT_SIGNAL_BASE)
    summary, fix = _SIGNAL_FIXES.get(
        name, (f"ended by {name}", "Find out what sent the signal; the task itself did not exit on its own.")
    )
    return Diagnosis(
        cause=f"KilledBySignal:{name}",
        summary=f"{summary} (exit {exit_code} = 128 + {exit_code - _EXIT_SIGNAL_BASE})",
        fix=fix,
        evidence=(f"exit code {exit_code}, State.OOMKilled=false", *tail_evidence),
        details={"signal": name},
        container=container,
        exit_code=exit_code,
    )


def _read_only(
    inspect: Mapping[str, Any],
    container: str | None,
    exit_code: int,
    found: tuple[str, str | None],
    tail_evidence: tuple[str, ...],
) -> Diagnosis:
    line, path = found
    read_only_root = bool((inspect.get("HostConfig") or {}).get("ReadonlyRootfs"))
    mount = _mount_for(inspect, path) if path else None
    target = path or "a path"
    where = _describe_mount(mount) if mount else ("the read-only root filesystem" if read_only_root else "")
    directory = (path.rsplit("/", 1)[0] or "/") if path else "<dir>"
    return Diagnosis(
        cause="ReadOnlyFilesystem",
        summary=f"the task wrote to {target} on {where or 'a read-only filesystem'}",
        fix=(
            "The root filesystem is read-only by design. Write scratch files to /tmp (a tmpfs, or set "
            f"TMPDIR), or mount a writable volume at {directory} for data that must persist."
            if not mount
            else f"Mount {mount.get('Destination')} read-write, or write to /tmp instead."
        ),
        evidence=(
            f"log: {line}",
            f"HostConfig.ReadonlyRootfs={str(read_only_root).lower()}",
            *(e for e in tail_evidence if e != f"log: {line}"),
        ),
        details={"path": path or ""},
        container=container,
        exit_code=exit_code,
    )


def _permission(
    inspect: Mapping[str, Any],
    container: str | None,
    exit_code: int,
    found: tuple[str, str | None],
    tail_evidence: tuple[str, ...],
) -> Diagnosis:
    line, path = found
    user = _user(inspect)
    uid = user.split(":", 1)[0]
    mount = _mount_for(inspect, path) if path else None
    caps = (inspect.get("HostConfig") or {}).get("CapDrop") or []
    evidence = [f"log: {line}", f"Config.User={user} (uid {uid})"]
    if mount:
        evidence.append(_describe_mount(mount))
    if _is_root(user):
        summary = f"permission denied for root on {path or 'a file'}"
        fix = (
            "Root without capabilities (cap_drop ALL drops DAC_OVERRIDE) cannot bypass file permissions: "
            "run as the file's owner, or fix the ownership/mode of the file or volume."
        )
        if caps:
            evidence.append(f"HostConfig.CapDrop={list(caps)}")
    else:
        summary = f"permission denied for the non-root user uid {uid} on {path or 'a file'}" + (
            f" ({_describe_mount(mount)})" if mount else ""
        )
        fix = (
            f"Make the path writable for uid {uid} or its group: chown/chmod the volume or host directory "
            f"(e.g. chown -R {uid}:0 and chmod g+rwX), create the directory in the image owned by the user, "
            "or on Kubernetes set securityContext.fsGroup so volumes are group-writable."
        )
    return Diagnosis(
        cause="PermissionDenied:volume" if mount else "PermissionDenied",
        summary=summary,
        fix=fix,
        evidence=(*evidence, *(e for e in tail_evidence if e != f"log: {line}")),
        details={"path": path or "", "uid": uid},
        container=container,
        exit_code=exit_code,
    )


# ------------------------------------------------------------------------------------- API errors

_PULL_TEXT = {
    PullFailure.RATE_LIMITED: (
        "the registry rate-limited the pull of {ref}",
        "Retry later, authenticate the pull (docker_conn_id) for a higher limit, or use a mirror/cache.",
    ),
    PullFailure.UNAUTHORIZED: (
        "the registry refused the credentials for {ref}",
        "Set docker_conn_id (or registry_conn_id) to a connection whose user can pull this repository; "
        "check the password/token has not expired.",
    ),
    PullFailure.UNREACHABLE: (
        "the engine could not reach the registry of {ref}",
        "Check the registry host name, the engine's DNS/proxy settings and its network path to it.",
    ),
    PullFailure.NOT_FOUND: (
        "the registry has no {ref}",
        "Check the repository name and tag (or digest) exist in the registry.",
    ),
}
"""Summary (with ``{ref}``) and fix per pull failure; the cause id and transience come from causes."""


def diagnose_docker_error(exc: BaseException, *, image: str | None = None, where: str = "") -> Diagnosis:
    """Diagnose an error raised by docker-py at pull, create or start.

    :param exc: the exception (``docker.errors.APIError`` and subclasses, ``requests`` connection
        errors, ``docker.errors.DockerException``); read by attributes, so any similar object works.
    :param image: the image reference the task used, named in the summary.
    :param where: the step that failed (``pull``, ``create``, ``start``), named in the evidence.
    """
    explanation = str(getattr(exc, "explanation", None) or exc)
    text = explanation.lower()
    status = getattr(exc, "status_code", None)
    cls = type(exc).__name__
    ref = image or "the image"
    evidence = (f"{where or 'docker'}: {cls}" + (f" {status}" if status else "") + f": {explanation}",)

    def make(cause: str, summary: str, fix: str, transient: bool = False) -> Diagnosis:
        return Diagnosis(cause=cause, summary=summary, fix=fix, evidence=evidence, transient=transient)

    if getattr(exc, "response", None) is None and _is_connection_error(exc, text):
        return make(
            "DockerEngineUnreachable",
            "the Docker engine did not answer",
            "Check the docker_url / DOCKER_HOST the worker uses, and that the daemon runs and is reachable.",
            transient=True,
        )
    if "invalid reference format" in text or cls == "InvalidRepository":
        return make(
            "InvalidImageName",
            f"{ref} is not a valid image reference",
            "Use registry/repository:tag or repository@sha256:digest in lowercase (no spaces or schemes).",
        )
    if is_ambiguous_denial(text):
        return make(
            NOT_FOUND_OR_UNAUTHORIZED,
            f"the registry refused to pull {ref}: the repository does not exist or needs credentials",
            "Check the repository name and tag; for a private repository set docker_conn_id to a Docker "
            "connection with pull access.",
        )
    if cls == "ImageNotFound" or (where == "create" and "no such image" in text):
        return make(
            "ImageNotFound",
            f"{ref} is not present on the Docker engine and was not pulled",
            "Build or load the image on the engine, or let the task pull it (force_pull=True / a registry "
            "the engine can reach); check the tag for typos.",
        )
    if where == "start" or "oci runtime" in text:
        if "no such file or directory" in text or "executable file not found" in text:
            return make(
                "CommandNotFound",
                f"the entrypoint or command does not exist in {ref}",
                "Use a command that exists in the image (check the absolute path and PATH).",
            )
        if "permission denied" in text:
            return make(
                "CommandNotExecutable",
                f"the entrypoint or command in {ref} is not executable",
                "chmod 0755 the file in the image and check its interpreter line.",
            )
        return make("StartError", f"the engine could not start {ref}", "Read the engine's explanation above.")
    failure = classify_pull_error(text, status)
    if failure is not None:
        summary, fix = _PULL_TEXT[failure]
        return make(pull_cause(failure), summary.format(ref=ref), fix, transient=failure.transient)
    return make(
        "DockerAPIError",
        "the Docker engine refused the request",
        "Read the engine's explanation above; it names the setting it rejected.",
    )


def _is_connection_error(exc: BaseException, text: str) -> bool:
    names = {t.__name__ for t in type(exc).__mro__}
    return bool(names & {"ConnectionError", "ConnectTimeout", "ReadTimeout"}) or (
        "error while fetching server api version" in text
    )
