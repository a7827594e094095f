"""The one Docker run view: rendered settings merged with stock ``DockerOperator`` arguments.

Three callers need to know what a Docker task would really start: ``SecureDockerOperator`` (to create
the container, and to check policy at parse and at run time), ``containerkit lint`` of a DAG folder
and Airflow's ``task_policy`` (for stock ``DockerOperator`` tasks too). They all call
:func:`docker_run` and policy sees only its :attr:`DockerRun.policy`, so what is checked is what runs.

Pure: :func:`stock_args` reads attributes off any ``DockerOperator``-like object (no Airflow import),
:func:`docker_run` builds dicts (docker-py ``Mount`` / ``LogConfig`` objects in the host kwargs, plain
data in the policy view). Merge order: rendered settings first, then each stock argument the task
passed explicitly; a stock task (no rendered settings) gets exactly what the stock operator sends.

Stock ``cpus`` becomes ``cpu_shares=round(cpus * 1024)`` as the stock operator sends it: a relative
weight under contention, not a limit, so it never stands in for ``nano_cpus`` (DKR-008 still fires).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from containerkit.docker.labels import MANAGED_LABEL

if TYPE_CHECKING:
    from containerkit.docker.run_settings import DockerRunSettings


STOCK_PARAMS = (
    *("image", "user", "command", "entrypoint", "working_dir", "environment", "private_environment"),
    *("labels", "container_name", "tty", "hostname", "mounts", "cpus", "mem_limit", "network_mode", "dns"),
    *("dns_search", "extra_hosts", "ipc_mode", "shm_size", "port_bindings", "ulimits", "device_requests"),
    *("privileged", "cap_add", "log_opts_max_size", "log_opts_max_file"),
)
"""The ``DockerOperator`` parameters that shape the container (the others steer the operator)."""

_HOST_PASSTHROUGH = ("network_mode", "dns", "dns_search", "extra_hosts", "ipc_mode", "shm_size")


@dataclass(frozen=True)
class StockArgs:
    """The stock ``DockerOperator`` arguments of one task, as the operator holds them.

    ``explicit`` names the parameters the author passed: for a ``SecureDockerOperator`` only those
    replace a rendered setting (a stock default such as ``mem_limit=None`` must not erase the preset).
    """

    image: str | None = None
    user: str | int | None = None
    command: Any = None
    entrypoint: Any = None
    working_dir: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    private_environment: Mapping[str, str] = field(default_factory=dict)
    env_file: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] | list[str] | None = None
    container_name: str | None = None
    tty: bool = False
    hostname: str | None = None
    mounts: tuple[Any, ...] = ()
    cpus: float | None = None
    mem_limit: Any = None
    network_mode: str | None = None
    dns: Any = None
    dns_search: Any = None
    extra_hosts: Any = None
    ipc_mode: str | None = None
    shm_size: Any = None
    port_bindings: Mapping[Any, Any] = field(default_factory=dict)
    ulimits: Any = None
    device_requests: Any = None
    privileged: bool = False
    cap_add: Any = None
    log_opts_max_size: str | None = None
    log_opts_max_file: str | int | None = None
    explicit: frozenset[str] = frozenset(STOCK_PARAMS)


def format_command(command: Any) -> Any:
    """The stock operator's reading of a command: a string starting with ``[`` is a Python list literal."""
    if isinstance(command, str) and command.strip().startswith("["):
        return ast.literal_eval(command)
    return command


def as_mount(mount: Any) -> Any:
    """A stock ``mounts`` entry as docker-py sends it: ``Mount`` objects and engine-form dicts as they are."""
    from docker.types import Mount

    return mount if isinstance(mount, Mount) or "Target" in mount else Mount(**mount)


def stock_args(
    task: Any,
    *,
    image: str | None = None,
    mounts: Iterable[Any] | None = None,
    env_file: Mapping[str, str] | None = None,
    explicit: Iterable[str] | None = None,
) -> StockArgs:
    """Read a task's stock arguments (duck-typed: any ``DockerOperator`` or lookalike).

    :param image: the image to run instead of ``task.image`` (a pinned digest, a parse-time placeholder).
    :param mounts: the mounts the stock ``execute`` hands on (adds the tmp-dir mount); default
        ``task.mounts``.
    :param env_file: the unpacked ``env_file`` (read at run time only).
    :param explicit: the parameters the author passed (``SecureDockerOperator``); default all.
    """
    cpus = getattr(task, "cpus", None)
    given_mounts = (getattr(task, "mounts", None) or ()) if mounts is None else mounts
    private = getattr(task, "_private_environment", None) or getattr(task, "private_environment", None)
    return StockArgs(
        image=image if image is not None else getattr(task, "image", None),
        user=getattr(task, "user", None),
        command=format_command(getattr(task, "command", None)),
        entrypoint=format_command(getattr(task, "entrypoint", None)),
        working_dir=getattr(task, "working_dir", None),
        environment=dict(getattr(task, "environment", None) or {}),
        private_environment=dict(private or {}),
        env_file=dict(env_file or {}),
        labels=getattr(task, "labels", None),
        container_name=getattr(task, "container_name", None),
        tty=bool(getattr(task, "tty", False)),
        hostname=getattr(task, "hostname", None),
        mounts=tuple(as_mount(m) for m in given_mounts),
        cpus=float(cpus) if isinstance(cpus, int | float) and not isinstance(cpus, bool) else None,
        mem_limit=getattr(task, "mem_limit", None),
        **{name: getattr(task, name, None) for name in _HOST_PASSTHROUGH},
        port_bindings=dict(getattr(task, "port_bindings", None) or {}),
        ulimits=getattr(task, "ulimits", None),
        device_requests=getattr(task, "device_requests", None),
        privileged=bool(getattr(task, "privileged", False)),
        cap_add=getattr(task, "cap_add", None),
        log_opts_max_size=getattr(task, "log_opts_max_size", None),
        log_opts_max_file=getattr(task, "log_opts_max_file", None),
        explicit=frozenset(STOCK_PARAMS if explicit is None else explicit),
    )


class DockerRun(NamedTuple):
    """What one Docker task starts: ``create_container`` and ``create_host_config`` kwargs, and the
    ``DockerRun`` policy target (plain data, secret values redacted) that policy reads.

    Read it by name (``.create``, ``.host``, ``.policy``); it is a tuple only so that older callers
    that unpack it keep working."""

    create: dict[str, Any]
    host: dict[str, Any]
    policy: dict[str, Any]


def docker_run(
    stock: StockArgs,
    settings: DockerRunSettings | None = None,
    *,
    rendered_environment: Mapping[str, str] | None = None,
    run_labels: Mapping[str, str] | None = None,
    staging_dir: str | None = None,
) -> DockerRun:
    """Merge rendered ``settings`` (None for a stock task) with the stock arguments.

    :param rendered_environment: the rendered env with secret values read (run time); default the
        literal env with each secret env ``<redacted>`` (parse time, lint: no file is read).
    :param run_labels: labels naming this try (dag/task/run/try/map index), applied last.
    :param staging_dir: a path to give an anonymous volume (staged files), if any.
    """
    host = _host(stock, settings)
    create = _create(stock, settings, rendered_environment, run_labels)
    if staging_dir:
        create["volumes"] = [staging_dir]
    return DockerRun(create, host, _policy(stock, settings, create, host))


def _secret_environment(settings: DockerRunSettings | None) -> dict[str, str]:
    from containerkit.docker.run_settings import REDACTED

    return {s.name: REDACTED for s in settings.secret_environment} if settings else {}


def _create(
    stock: StockArgs,
    settings: DockerRunSettings | None,
    rendered_environment: Mapping[str, str] | None,
    run_labels: Mapping[str, str] | None,
) -> dict[str, Any]:
    stock_env = {**stock.env_file, **stock.environment, **stock.private_environment}
    common = {
        "name": stock.container_name,
        "ports": list(stock.port_bindings),
        "tty": stock.tty,
        "hostname": stock.hostname,
    }
    if settings is None:  # exactly what the stock operator sends
        return {
            "image": stock.image,
            "command": stock.command,
            "entrypoint": stock.entrypoint,
            "user": stock.user,
            "working_dir": stock.working_dir,
            "environment": stock_env,
            "labels": stock.labels,
            **common,
        }
    if rendered_environment is None:
        rendered_environment = {**settings.environment, **_secret_environment(settings)}
    labels: dict[str, str] = {MANAGED_LABEL: "true", **settings.labels}
    if isinstance(stock.labels, Mapping):
        labels.update(stock.labels)
    elif stock.labels:
        labels.update({name: "" for name in stock.labels})
    labels.update(run_labels or {})
    explicit_user = "user" in stock.explicit and stock.user is not None
    return {
        "image": stock.image if stock.image is not None else settings.image,
        "command": stock.command if stock.command is not None else settings.command,
        "entrypoint": stock.entrypoint if stock.entrypoint is not None else settings.entrypoint,
        "user": stock.user if explicit_user else settings.user,
        "working_dir": stock.working_dir or settings.working_dir,
        "environment": {**rendered_environment, **stock_env},
        "labels": labels,
        **common,
        "healthcheck": settings.healthcheck,
        "stop_timeout": settings.stop_timeout,
    }


def _host(stock: StockArgs, settings: DockerRunSettings | None) -> dict[str, Any]:
    from docker.types import LogConfig

    cpu_shares = round(stock.cpus * 1024) if stock.cpus is not None else None
    log_opts = {
        key: value
        for key, value in (("max-size", stock.log_opts_max_size), ("max-file", stock.log_opts_max_file))
        if value is not None
    }
    if settings is None:  # exactly what the stock operator sends
        return {
            "auto_remove": False,
            "mounts": list(stock.mounts),
            **{name: getattr(stock, name) for name in _HOST_PASSTHROUGH},
            "cpu_shares": cpu_shares,
            "port_bindings": dict(stock.port_bindings),
            "mem_limit": stock.mem_limit,
            "cap_add": stock.cap_add,
            "privileged": stock.privileged,
            "device_requests": stock.device_requests,
            "log_config": LogConfig(config=log_opts),
            "ulimits": stock.ulimits,
        }
    host = settings.host_config_kwargs()
    host["mounts"] = [*host["mounts"], *stock.mounts]
    host["auto_remove"] = False
    if cpu_shares is not None:
        host["cpu_shares"] = cpu_shares
    for name in _HOST_PASSTHROUGH:
        if getattr(stock, name):
            host[name] = getattr(stock, name)
    for name in ("port_bindings", "ulimits", "device_requests"):
        if getattr(stock, name):
            host[name] = getattr(stock, name)
    if stock.privileged:
        host["privileged"] = True
    if stock.cap_add:
        host["cap_add"] = sorted({*host.get("cap_add", ()), *stock.cap_add})
    if "mem_limit" in stock.explicit and stock.mem_limit is not None:
        host["mem_limit"] = host["memswap_limit"] = stock.mem_limit
        host.pop("mem_reservation", None)
    if log_opts:
        config = {**host["log_config"]["Config"], **{k: str(v) for k, v in log_opts.items()}}
        host["log_config"] = LogConfig(type=LogConfig.types.JSON, config=config)
    return host


def _plain(value: Any) -> Any:
    """Tuples as lists: the policy view is JSON-like data."""
    return list(value) if isinstance(value, tuple) else value


def _policy(
    stock: StockArgs, settings: DockerRunSettings | None, create: Mapping[str, Any], host: Mapping[str, Any]
) -> dict[str, Any]:
    """The ``DockerRun`` policy target: plain data; secret env values are ``<redacted>``, always."""
    log = host["log_config"]
    policy: dict[str, Any] = {
        **{k: v for k, v in host.items() if k not in ("mounts", "log_config", "device_requests")},
        "mounts": [dict(m) for m in host["mounts"]],
        "log_config": {"Type": log["Type"], "Config": dict(log["Config"])},
        **{k: create[k] for k in ("image", "user", "working_dir", "labels")},
        **{k: _plain(create[k]) for k in ("entrypoint", "command")},
        "environment": {**create["environment"], **_secret_environment(settings)},
        "secret_env": [s.name for s in settings.secret_environment if s.secret] if settings else [],
        "env_params": {name: "private_environment" for name in stock.private_environment},
    }
    if host.get("device_requests"):
        policy["device_requests"] = [dict(d) for d in host["device_requests"]]
    if settings is not None:
        policy["stop_timeout"] = settings.stop_timeout
    return {k: v for k, v in policy.items() if v is not None}
