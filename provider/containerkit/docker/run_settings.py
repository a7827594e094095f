"""Render a :class:`~containerkit.spec.ContainerSpec` to docker-py run settings.

:func:`render_docker` returns a frozen :class:`DockerRunSettings`. Its two views:

* :meth:`DockerRunSettings.host_config_kwargs`: keyword arguments for docker-py
  ``APIClient.create_host_config`` (``docker.types.Mount`` / ``LogConfig`` / ``DeviceRequest`` objects).
* :meth:`DockerRunSettings.as_policy_data`: the ``DockerRun`` policy target, a plain JSON-able dict,
  built by :func:`containerkit.docker.run_view.docker_run` (which also merges stock ``DockerOperator``
  arguments on top; policy sees only its result). Keys (docker-py ``create_host_config`` names, plus
  the container-level ones):

  ``image`` (str), ``user`` ("uid:gid" or None), ``environment`` ({name: value}; values of Secret/ConfigMap
  references are ``"<redacted>"``), ``entrypoint``/``command`` (lists or None), ``working_dir``,
  ``labels``, ``stop_timeout``, ``read_only`` (bool), ``tmpfs`` ({path: options}), ``cap_drop``,
  ``cap_add`` (lists), ``security_opt`` (list, ``no-new-privileges`` and the seccomp choice),
  ``privileged`` (bool), ``pids_limit`` (int), ``mem_limit``/``memswap_limit``/``mem_reservation``
  (bytes), ``nano_cpus`` (int), ``init`` (bool), ``mounts`` (list of docker Mount dicts: ``Type``,
  ``Source``, ``Target``, ``ReadOnly``, ...), ``log_config`` ({"Type", "Config"}), ``device_requests``
  (list of dicts), ``network_mode``/``pid_mode``/``ipc_mode`` ("host" only for an unrestricted profile
  that asks for it, else absent).

Mapping choices (Docker has no pod): emptyDir volumes become tmpfs mounts with mode 1777 (a non-root
user cannot write to a fresh root-owned named volume, and Docker has no fsGroup); PVCs become named
volumes; Secret and ConfigMap keys become read-only bind mounts of ``<secrets_dir>/<secret>/<key>``
(``<config_dir>/<configmap>/<key>``) that the caller provides, and env-form references are read from
those files only at run time by :meth:`DockerRunSettings.runtime_environment`. Scheduling, service
accounts and pull policy have no Docker meaning and are not rendered; sidecars, init containers,
projected volumes and non-exec probes cannot run on a single Docker container and are refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from containerkit.docker.run_view import StockArgs, docker_run
from containerkit.errors import SpecError
from containerkit.spec.container import ContainerSpec, references
from containerkit.spec.key_refs import ConfigMapRef, SecretRef
from containerkit.spec.quantity import parse_quantity
from containerkit.spec.security import TMP_DIR
from containerkit.spec.volumes import (
    ConfigMapVolume,
    EmptyDir,
    PersistentVolumeClaimVolume,
    ProjectedVolume,
    SecretVolume,
)

REDACTED = "<redacted>"
NO_NEW_PRIVILEGES = "no-new-privileges"


@dataclass(frozen=True)
class MountSetting:
    """One docker mount (``docker.types.Mount`` fields)."""

    target: str
    source: str | None
    type: str  # "bind" | "volume" | "tmpfs"
    read_only: bool = False
    tmpfs_size: int | None = None
    tmpfs_mode: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The engine's JSON shape (what ``docker.types.Mount`` holds)."""
        out: dict[str, Any] = {
            "Target": self.target,
            "Source": self.source,
            "Type": self.type,
            "ReadOnly": self.read_only,
        }
        if self.type == "tmpfs":
            options: dict[str, int] = {}
            if self.tmpfs_size is not None:
                options["SizeBytes"] = self.tmpfs_size
            if self.tmpfs_mode is not None:
                options["Mode"] = self.tmpfs_mode
            out["TmpfsOptions"] = options
        return out


@dataclass(frozen=True)
class SecretEnv:
    """An env var whose value is read from ``host_path`` when the container starts, never earlier.

    ``secret`` tells a Secret's key from a ConfigMap's (DKR-014 is about Secrets only).
    """

    name: str
    host_path: str
    secret: bool = True


@dataclass(frozen=True)
class DockerRunSettings:
    image: str
    user: str | None
    entrypoint: tuple[str, ...] | None
    command: tuple[str, ...] | None
    working_dir: str | None
    environment: Mapping[str, str]
    secret_environment: tuple[SecretEnv, ...]
    labels: Mapping[str, str]
    read_only: bool
    tmpfs: Mapping[str, str]
    cap_drop: tuple[str, ...]
    cap_add: tuple[str, ...]
    security_opt: tuple[str, ...]
    privileged: bool
    pids_limit: int | None
    mem_limit: int
    memswap_limit: int
    mem_reservation: int | None
    nano_cpus: int
    init: bool
    mounts: tuple[MountSetting, ...]
    log_max_size: str
    log_max_files: int
    gpus: int
    healthcheck: Mapping[str, Any] | None
    stop_timeout: int | None
    host_modes: Mapping[str, str] = field(default_factory=dict)

    def host_config_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``docker.APIClient().create_host_config(**kwargs)``."""
        from docker.types import DeviceRequest, LogConfig, Mount

        kwargs: dict[str, Any] = {
            "read_only": self.read_only,
            "tmpfs": dict(self.tmpfs),
            "cap_drop": list(self.cap_drop),
            "security_opt": list(self.security_opt),
            "privileged": self.privileged,
            "mem_limit": self.mem_limit,
            "memswap_limit": self.memswap_limit,
            "nano_cpus": self.nano_cpus,
            "init": self.init,
            "mounts": [
                Mount(
                    target=m.target,
                    source=m.source,
                    type=m.type,
                    read_only=m.read_only,
                    tmpfs_size=m.tmpfs_size,
                    tmpfs_mode=m.tmpfs_mode,
                )
                for m in self.mounts
            ],
            "log_config": LogConfig(
                type=LogConfig.types.JSON,
                config={"max-size": self.log_max_size, "max-file": str(self.log_max_files)},
            ),
            **self.host_modes,
        }
        if self.cap_add:
            kwargs["cap_add"] = list(self.cap_add)
        if self.pids_limit is not None:
            kwargs["pids_limit"] = self.pids_limit
        if self.mem_reservation is not None:
            kwargs["mem_reservation"] = self.mem_reservation
        if self.gpus:
            kwargs["device_requests"] = [DeviceRequest(count=self.gpus, capabilities=[["gpu"]])]
        return kwargs

    def as_policy_data(self) -> dict[str, Any]:
        """The ``DockerRun`` policy target of these settings alone (no stock arguments on top).

        The same view :func:`containerkit.docker.run_view.docker_run` gives every caller; see there.
        """
        return docker_run(StockArgs(), self).policy

    def runtime_environment(self) -> dict[str, str]:
        """Literal env plus Secret/ConfigMap env values read from their files now (call at execute time)."""
        env = dict(self.environment)
        for secret in self.secret_environment:
            try:
                env[secret.name] = Path(secret.host_path).read_text().rstrip("\n")
            except OSError as exc:
                raise SpecError(
                    f"secrets[{secret.name}]",
                    secret.host_path,
                    f"cannot read the secret file ({exc.strerror})",
                    "create the file (one secret value per <secrets_dir>/<secret>/<key>) or fix secrets_dir",
                ) from None
        return env


def render_docker(
    spec: ContainerSpec, *, secrets_dir: str | Path | None = None, config_dir: str | Path | None = None
) -> DockerRunSettings:
    """The docker-py settings for ``spec``.

    :param secrets_dir: host directory holding ``<secret>/<key>`` files for the spec's Secret references.
    :param config_dir: host directory holding ``<configmap>/<key>`` files for its ConfigMap references.
    """
    for attr in ("sidecars", "init_containers"):
        if getattr(spec, attr):
            raise SpecError(
                attr,
                [c.name for c in getattr(spec, attr)],
                "a Docker task is one container",
                "run it on Kubernetes (SecureKubernetesPodOperator) or drop the extra containers",
            )
    profile = spec.security
    resources = spec.resources
    memory = resources.memory_limit_bytes
    request = int(parse_quantity("resources.requests.memory", resources.memory_request, kind="bytes"))
    security_opt = [NO_NEW_PRIVILEGES] if not profile.allow_privilege_escalation else []
    if profile.seccomp == "Unconfined":
        security_opt.append("seccomp=unconfined")
    user = None
    if profile.run_as_user is not None:
        user = str(profile.run_as_user) + (
            f":{profile.run_as_group}" if profile.run_as_group is not None else ""
        )
    tmpfs: dict[str, str] = {}
    if profile.tmp_size_limit is not None:
        size = int(parse_quantity("security.tmp_size_limit", profile.tmp_size_limit, kind="bytes"))
        tmpfs[TMP_DIR] = f"rw,nosuid,nodev,size={size},mode=1777"
    secret_env: list[SecretEnv] = []
    for ref in references(spec):
        if ref.env:
            path = str(_ref_file(ref, secrets_dir, config_dir))
            secret_env.append(SecretEnv(ref.env, path, secret=isinstance(ref, SecretRef)))
    host_modes = {
        key: "host"
        for key, on in (
            ("network_mode", profile.host_network),
            ("pid_mode", profile.host_pid),
            ("ipc_mode", profile.host_ipc),
        )
        if on
    }
    return DockerRunSettings(
        image=str(spec.image),
        user=user,
        entrypoint=tuple(spec.command) if spec.command else None,
        command=tuple(spec.args) or None,
        working_dir=spec.working_dir,
        environment={e.name: e.value for e in spec.env},
        secret_environment=tuple(secret_env),
        labels=dict(spec.labels),
        read_only=profile.read_only_root_filesystem,
        tmpfs=tmpfs,
        cap_drop=tuple(profile.drop_capabilities),
        cap_add=tuple(profile.add_capabilities),
        security_opt=tuple(security_opt),
        privileged=profile.privileged,
        pids_limit=resources.pids,
        mem_limit=memory,
        memswap_limit=memory,
        mem_reservation=request if request < memory else None,
        nano_cpus=resources.cpu_limit_nano,
        init=spec.init_process,
        mounts=tuple(_mounts(spec, secrets_dir, config_dir)),
        log_max_size=spec.log_rotation.max_size,
        log_max_files=spec.log_rotation.max_files,
        gpus=resources.gpu,
        healthcheck=_healthcheck(spec),
        stop_timeout=spec.termination_grace_seconds,
        host_modes=host_modes,
    )


def _ref_file(
    ref: SecretRef | ConfigMapRef, secrets_dir: str | Path | None, config_dir: str | Path | None
) -> Path:
    if isinstance(ref, SecretRef):
        return _under("secrets_dir", secrets_dir, ref.secret, ref.key)
    return _under("config_dir", config_dir, ref.config_map, ref.key)


def _under(param: str, root: str | Path | None, name: str, key: str | None = None) -> Path:
    if root is None:
        what = "Secret" if param == "secrets_dir" else "ConfigMap"
        raise SpecError(
            param,
            None,
            f"Docker has no {what} store: the spec references {what} {name!r}",
            f"pass {param}= a host directory holding {name}/{key or '<key>'} files",
        )
    base = Path(root)
    if not base.is_absolute():
        raise SpecError(param, str(root), "must be an absolute host path", "pass an absolute directory")
    return base / name / key if key else base / name


def _mounts(
    spec: ContainerSpec, secrets_dir: str | Path | None, config_dir: str | Path | None
) -> list[MountSetting]:
    out: list[MountSetting] = []
    for mount in spec.mounts:
        volume = spec.volume(mount.volume)
        read_only = mount.is_read_only(volume)
        if isinstance(volume, EmptyDir):
            size = None
            if volume.size_limit is not None:
                size = int(
                    parse_quantity(f"volumes[{volume.name}].size_limit", volume.size_limit, kind="bytes")
                )
            out.append(MountSetting(mount.path, None, "tmpfs", read_only, tmpfs_size=size, tmpfs_mode=0o1777))
        elif isinstance(volume, PersistentVolumeClaimVolume):
            out.append(MountSetting(mount.path, volume.claim, "volume", read_only))
        elif isinstance(volume, SecretVolume | ConfigMapVolume):
            param, root = (
                ("secrets_dir", secrets_dir)
                if isinstance(volume, SecretVolume)
                else ("config_dir", config_dir)
            )
            name = volume.secret if isinstance(volume, SecretVolume) else volume.config_map
            if volume.items:
                for key, rel in volume.items.items():
                    out.append(
                        MountSetting(
                            f"{mount.path.rstrip('/')}/{rel}",
                            str(_under(param, root, name, key)),
                            "bind",
                            True,
                        )
                    )
            else:
                out.append(MountSetting(mount.path, str(_under(param, root, name)), "bind", True))
        elif isinstance(volume, ProjectedVolume):
            raise SpecError(
                f"volumes[{volume.name}]",
                volume.name,
                "projected volumes have no Docker equivalent",
                "mount Secret/ConfigMap volumes separately for Docker tasks",
            )
    for ref in references(spec):
        if ref.path:
            out.append(MountSetting(ref.path, str(_ref_file(ref, secrets_dir, config_dir)), "bind", True))
    return out


def _healthcheck(spec: ContainerSpec) -> dict[str, Any] | None:
    probes = spec.probes
    for name in ("readiness", "startup"):
        if getattr(probes, name) is not None:
            raise SpecError(
                f"probes.{name}",
                getattr(probes, name).kind,
                "Docker has only a liveness-style healthcheck",
                "use liveness",
            )
    probe = probes.liveness
    if probe is None:
        return None
    if probe.kind != "exec":
        raise SpecError(
            "probes.liveness.kind",
            probe.kind,
            "Docker healthchecks run a command inside the container",
            "use Probe.exec(...) for Docker tasks",
        )
    second = 1_000_000_000
    return {
        "test": ["CMD", *probe.command],
        "interval": probe.period_seconds * second,
        "timeout": probe.timeout_seconds * second,
        "retries": probe.failure_threshold,
        "start_period": probe.initial_delay_seconds * second,
    }
