"""Sidecar factories: git-sync, log shipping, a local proxy, secrets rendered to a file.

Each returns a :class:`~containerkit.spec.PodExtension` to apply to a spec
(``spec.extend(git_sync(...))``). The containers are native sidecars (init containers with
``restartPolicy: Always``): they start before ``base`` and are stopped after it, so the pod completes when
the task does. They run with the task's security profile (restricted: non-root, read-only root
filesystem, no capabilities) and the ``xs`` preset unless told otherwise. Images are parameters; the
defaults below are the upstream images at a pinned version.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from typing import Any

from containerkit.errors import SpecError
from containerkit.spec.container import Container
from containerkit.spec.env import EnvVar
from containerkit.spec.extension import PodExtension
from containerkit.spec.key_refs import SecretRef
from containerkit.spec.names import check_absolute_path, check_env_name
from containerkit.spec.probes import Probe, Probes
from containerkit.spec.resources import SIDECAR_PRESET
from containerkit.spec.security import TMP_DIR
from containerkit.spec.volumes import ConfigMapVolume, EmptyDir, VolumeMount

GIT_SYNC_IMAGE = "registry.k8s.io/git-sync/git-sync:v4.4.0"
FLUENT_BIT_IMAGE = "cr.fluentbit.io/fluent/fluent-bit:3.1.9"
HELPER_IMAGE = "python:3.11-slim-bookworm"
GIT_SYNC_HEALTH_PORT = 2020


def git_sync(
    repo: str,
    *,
    ref: str = "main",
    path: str = "/git",
    link: str = "repo",
    period_seconds: int = 60,
    one_time: bool = False,
    credentials_secret: str | None = None,
    ssh_key_secret: str | None = None,
    image: str = GIT_SYNC_IMAGE,
    resources: Any = SIDECAR_PRESET,
    size_limit: str = "1Gi",
) -> PodExtension:
    """Keep a git checkout at ``{path}/{link}`` in ``base`` (read-only there).

    :param one_time: clone once in an init container instead of syncing in a sidecar.
    :param credentials_secret: Secret with ``username`` and ``password`` keys (HTTPS).
    :param ssh_key_secret: Secret with ``ssh-privatekey`` and ``known_hosts`` keys (host keys are verified).
    """
    check_absolute_path("git_sync.path", path)
    if not repo or not isinstance(repo, str) or repo.startswith("-"):
        raise SpecError(
            "git_sync.repo", repo, "not a repository URL", "use e.g. 'https://github.com/org/dags.git'"
        )
    if isinstance(period_seconds, bool) or not isinstance(period_seconds, int) or period_seconds < 5:
        raise SpecError("git_sync.period_seconds", period_seconds, "must be >= 5", "use e.g. 60")
    args = [f"--repo={repo}", f"--ref={ref}", "--root=/git", f"--link={link}", "--depth=1"]
    args += (
        ["--one-time"]
        if one_time
        else [f"--period={period_seconds}s", f"--http-bind=:{GIT_SYNC_HEALTH_PORT}"]
    )
    secrets: list[SecretRef] = []
    if credentials_secret:
        secrets += [
            SecretRef(credentials_secret, "username", env="GITSYNC_USERNAME"),
            SecretRef(credentials_secret, "password", env="GITSYNC_PASSWORD"),
        ]
    if ssh_key_secret:
        secrets += [
            SecretRef(ssh_key_secret, "ssh-privatekey", path="/etc/git-secret/ssh"),
            SecretRef(ssh_key_secret, "known_hosts", path="/etc/git-secret/known_hosts"),
        ]
        args += ["--ssh-key-file=/etc/git-secret/ssh", "--ssh-known-hosts-file=/etc/git-secret/known_hosts"]
    container = Container(
        "git-sync",
        image,
        args=args,
        env={"HOME": TMP_DIR},
        secrets=secrets,
        mounts=[VolumeMount("git-sync", "/git", read_only=False)],
        resources=resources,
        probes=Probes()
        if one_time
        else Probes(liveness=Probe.http("/", GIT_SYNC_HEALTH_PORT, period_seconds=30)),
    )
    return PodExtension(
        sidecars=() if one_time else (container,),
        init_containers=(container,) if one_time else (),
        volumes=(EmptyDir("git-sync", size_limit=size_limit),),
        base_mounts=(VolumeMount("git-sync", path, read_only=True),),
        needs_fs_group=True,
    )


def log_shipper(
    config_map: str,
    *,
    log_dir: str = "/var/log/task",
    config_key: str = "fluent-bit.conf",
    image: str = FLUENT_BIT_IMAGE,
    resources: Any = SIDECAR_PRESET,
    size_limit: str = "512Mi",
) -> PodExtension:
    """Ship files the task writes under ``log_dir`` with Fluent Bit, configured by ConfigMap ``config_map``.

    The task writes to ``log_dir`` (an emptyDir, writable in ``base``); the shipper reads it read-only and
    keeps its tail offsets in ``/tmp``. When ``base`` ends the kubelet stops the shipper with SIGTERM,
    on which Fluent Bit flushes.
    """
    check_absolute_path("log_shipper.log_dir", log_dir)
    container = Container(
        "log-shipper",
        image,
        command=["/fluent-bit/bin/fluent-bit", "-c", f"/fluent-bit/etc/{config_key}"],
        mounts=[
            VolumeMount("task-logs", log_dir, read_only=True),
            VolumeMount("log-shipper-config", "/fluent-bit/etc"),
        ],
        resources=resources,
    )
    return PodExtension(
        sidecars=(container,),
        volumes=(
            EmptyDir("task-logs", size_limit=size_limit),
            ConfigMapVolume("log-shipper-config", config_map, items={config_key: config_key}),
        ),
        base_mounts=(VolumeMount("task-logs", log_dir, read_only=False),),
        needs_fs_group=True,
    )


def local_proxy(
    name: str,
    image: str,
    *,
    port: int,
    command: Sequence[str] | None = None,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    secrets: Sequence[SecretRef] = (),
    resources: Any = SIDECAR_PRESET,
) -> PodExtension:
    """A proxy the task reaches on ``localhost:{port}`` (database auth proxy, egress proxy, mesh-less mTLS).

    A startup probe on ``port`` holds ``base`` back until the proxy listens: the task never races it.
    """
    probe = Probe.tcp(port, period_seconds=1, failure_threshold=60)
    container = Container(
        name,
        image,
        command=command,
        args=args,
        env=env or {},
        secrets=secrets,
        ports=[port],
        resources=resources,
        probes=Probes(startup=probe, readiness=Probe.tcp(port)),
    )
    return PodExtension(sidecars=(container,))


_RENDER_SCRIPT = """\
import os, string, sys
path = os.environ["CK_TARGET"]
names = os.environ["CK_NAMES"].split(",")
try:
    text = string.Template(os.environ["CK_TEMPLATE"]).substitute({n: os.environ[n] for n in names})
except (KeyError, ValueError) as exc:
    sys.exit(f"template refers to a variable that is not one of its secrets: {exc}")
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o440)
with os.fdopen(fd, "w") as f:
    f.write(text)
print(f"wrote {path} ({len(text)} bytes)")
"""


def secrets_to_file(
    path: str,
    template: str,
    secrets: Sequence[SecretRef],
    *,
    image: str = HELPER_IMAGE,
    resources: Any = SIDECAR_PRESET,
) -> PodExtension:
    """Render a file that mixes Secret values into a template (``.pgpass``, ``.netrc``, a DSN config).

    An init container substitutes ``${NAME}`` placeholders with the Secret keys given as env refs and
    writes ``path`` (mode 0440) to a memory-backed emptyDir that ``base`` mounts read-only. The template
    itself is not secret (it is plain pod env); the values never touch a disk or the pod spec.

    :param secrets: :class:`SecretRef` s with ``env=`` names used as ``${NAME}`` in ``template``.
    """
    check_absolute_path("secrets_to_file.path", path)
    directory, filename = posixpath.split(path)
    if not filename or directory in ("", "/"):
        raise SpecError(
            "secrets_to_file.path", path, "needs a directory and a file name", "use /run/ck/.pgpass"
        )
    if not secrets or any(s.env is None for s in secrets):
        raise SpecError(
            "secrets_to_file.secrets",
            secrets,
            "needs Secret refs delivered as env",
            "SecretRef(s, k, env='PW')",
        )
    names = [check_env_name("secrets_to_file.secrets", s.env) for s in secrets]
    container = Container(
        "render-secret-file",
        image,
        command=["python", "-c", _RENDER_SCRIPT],
        env=[
            EnvVar("CK_TEMPLATE", template, not_secret=True),
            EnvVar("CK_TARGET", f"/out/{filename}"),
            EnvVar("CK_NAMES", ",".join(names)),
        ],
        secrets=secrets,
        mounts=[VolumeMount("rendered-secrets", "/out", read_only=False)],
        resources=resources,
    )
    return PodExtension(
        init_containers=(container,),
        volumes=(EmptyDir("rendered-secrets", memory=True, size_limit="1Mi"),),
        base_mounts=(VolumeMount("rendered-secrets", directory, read_only=True),),
        needs_fs_group=True,
    )
