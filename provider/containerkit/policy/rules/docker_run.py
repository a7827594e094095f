"""The ``hardened`` tier for containers started on a Docker engine (``DockerRun`` targets).

The data is what ``containerkit.docker.run_settings`` renders and the DAG linter reads off a stock
``DockerOperator``: docker-py ``create_host_config`` keyword arguments (``read_only``, ``cap_drop``,
``security_opt``, ``mem_limit``, ``nano_cpus``, ``pids_limit``, ``network_mode``, ``binds``, ``mounts`` ...)
plus ``image``, ``user`` and ``environment``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from containerkit.facts.secrets import secret_literal
from containerkit.policy.image_pinning import image_parts
from containerkit.policy.model import HARDENED, IMAGE, Severity, Violation, rule

RUN = ("DockerRun",)
DOCKER_SOCKET = "docker.sock"


def _truthy_limit(value: Any) -> bool:
    return value not in (None, "", 0, "0", -1)


@rule(
    "DKR-001",
    title="non-root-user",
    severity=Severity.ERROR,
    rule_set=HARDENED,
    targets=RUN,
    rationale="Without a user the container runs as the image's USER, which is root for most images; root "
    "in a container is root on the host's files it can reach.",
    fix='Set user="50000:0" (Airflow images) or another non-root UID.',
)
def non_root_user(data: Mapping[str, Any]) -> Iterator[Violation]:
    user = str(data.get("user") or "").strip()
    name = user.split(":", 1)[0]
    if not name:
        yield Violation("user", "no user set: runs as the image's default user (often root)")
    elif name in ("root", "0"):
        yield Violation("user", f"runs as {user!r}")


@rule(
    "DKR-002",
    title="read-only-rootfs",
    severity=Severity.ERROR,
    rule_set=HARDENED,
    targets=RUN,
    rationale="A read-only root filesystem stops a task from modifying its image; writes go to tmpfs.",
    fix='Set read_only=True and tmpfs={"/tmp": "size=64m"} for scratch space.',
)
def read_only_rootfs(data: Mapping[str, Any]) -> Iterator[Violation]:
    if data.get("read_only") is not True:
        yield Violation("read_only", "root filesystem is writable")


@rule(
    "DKR-003",
    title="drop-all-capabilities",
    severity=Severity.ERROR,
    rule_set=HARDENED,
    targets=RUN,
    rationale="Docker's default capability set includes NET_RAW, MKNOD and others no task needs; drop all "
    "and add back only NET_BIND_SERVICE when binding a port below 1024.",
    fix='Set cap_drop=["ALL"]; cap_add at most ["NET_BIND_SERVICE"].',
)
def drop_all_capabilities(data: Mapping[str, Any]) -> Iterator[Violation]:
    dropped = [str(c).upper().removeprefix("CAP_") for c in data.get("cap_drop") or ()]
    if "ALL" not in dropped:
        yield Violation("cap_drop", "does not drop ALL capabilities")
    for i, cap in enumerate(data.get("cap_add") or ()):
        if str(cap).upper().removeprefix("CAP_") != "NET_BIND_SERVICE":
            yield Violation(f"cap_add[{i}]", f"adds capability {cap}")


def _security_opts(data: Mapping[str, Any]) -> list[str]:
    return [str(o).replace(" ", "").lower() for o in data.get("security_opt") or ()]


@rule(
    "DKR-004",
    title="no-new-privileges",
    severity=Severity.ERROR,
    rule_set=HARDENED,
    targets=RUN,
    rationale="no-new-privileges stops setuid binaries from raising privileges (Kubernetes: "
    "allowPrivilegeEscalation: false).",
    fix='Add "no-new-privileges:true" to security_opt.',
)
def no_new_privileges(data: Mapping[str, Any]) -> Iterator[Violation]:
    opts = _security_opts(data)
    if not any(o in ("no-new-privileges", "no-new-privileges:true", "no-new-privileges=true") for o in opts):
        yield Violation("security_opt", "no-new-privileges is not set")


@rule(
    "DKR-005",
    title="unconfined-profiles",
    severity=Severity.ERROR,
    rule_set=HARDENED,
    targets=RUN,
    rationale="seccomp=unconfined or apparmor=unconfined removes the engine's default syscall and MAC "
    "confinement.",
    fix="Remove the unconfined security_opt entry (the engine default profiles apply).",
)
def unconfined_profiles(data: Mapping[str, Any]) -> Iterator[Violation]:
    for i, o in enumerate(_security_opts(data)):
        if o.replace(":", "=") in ("seccomp=unconfined", "apparmor=unconfined"):
            yield Violation(f"security_opt[{i}]", f"{o}")


@rule(
    "DKR-006",
    title="privileged",
    severity=Severity.ERROR,
    rule_set=HARDENED,
    targets=RUN,
    rationale="A privileged container has all capabilities and host devices: root on the host.",
    fix="Remove privileged=True; add the single capability or device needed.",
)
def privileged(data: Mapping[str, Any]) -> Iterator[Violation]:
    if data.get("privileged") is True:
        yield Violation("privileged", "privileged=True")


@rule(
    "DKR-007",
    title="memory-limit",
    severity=Severity.ERROR,
    rule_set=HARDENED,
    targets=RUN,
    rationale="Without mem_limit one task can exhaust the host; with it the task is OOM-killed at a known "
    "size and containerkit diagnoses it.",
    fix='Set mem_limit (e.g. "512m"; a containerkit resource preset does).',
)
def memory_limit(data: Mapping[str, Any]) -> Iterator[Violation]:
    if not _truthy_limit(data.get("mem_limit")):
        yield Violation("mem_limit", "no memory limit")


@rule(
    "DKR-008",
    title="cpu-limit",
    severity=Severity.WARNING,
    rule_set=HARDENED,
    targets=RUN,
    rationale="Docker has no scheduler: without a CPU limit one task can starve every other container on "
    "the host (unlike Kubernetes, where requests suffice).",
    fix="Set nano_cpus (e.g. 1_000_000_000 for one CPU) or cpu_quota with cpu_period.",
)
def cpu_limit(data: Mapping[str, Any]) -> Iterator[Violation]:
    if not (_truthy_limit(data.get("nano_cpus")) or _truthy_limit(data.get("cpu_quota"))):
        yield Violation("nano_cpus", "no CPU limit")


@rule(
    "DKR-009",
    title="pids-limit",
    severity=Severity.WARNING,
    rule_set=HARDENED,
    targets=RUN,
    rationale="A fork bomb or thread leak in one task exhausts the host's PID space without pids_limit.",
    fix="Set pids_limit (e.g. 512).",
)
def pids_limit(data: Mapping[str, Any]) -> Iterator[Violation]:
    if not _truthy_limit(data.get("pids_limit")):
        yield Violation("pids_limit", "no PID limit")


@rule(
    "DKR-010",
    title="host-namespaces",
    severity=Severity.ERROR,
    rule_set=HARDENED,
    targets=RUN,
    rationale="Host network, PID, IPC or user namespaces let the container see and reach host processes "
    "and interfaces.",
    fix="Remove network_mode/pid_mode/ipc_mode/userns_mode='host'; use a user-defined bridge network.",
)
def host_namespaces(data: Mapping[str, Any]) -> Iterator[Violation]:
    for key in ("network_mode", "pid_mode", "ipc_mode", "userns_mode", "uts_mode"):
        if str(data.get(key) or "").lower() == "host":
            yield Violation(key, f"{key}='host'")


def _mount_sources(data: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    binds = data.get("binds") or data.get("volumes") or ()
    if isinstance(binds, Mapping):
        for host in binds:
            yield f"binds[{host!r}]", str(host)
    else:
        for i, b in enumerate(binds):
            yield f"binds[{i}]", str(b).split(":", 1)[0]
    for i, m in enumerate(data.get("mounts") or ()):
        if isinstance(m, Mapping):
            yield f"mounts[{i}]", str(m.get("Source") or m.get("source") or "")
        else:
            yield f"mounts[{i}]", str(getattr(m, "source", "") or "")


@rule(
    "DKR-011",
    title="docker-socket",
    severity=Severity.ERROR,
    rule_set=HARDENED,
    targets=RUN,
    rationale="Mounting the Docker socket hands the container full control of the engine, i.e. root on "
    "the host.",
    fix="Remove the docker.sock mount; if a task truly drives Docker, suppress with the reason.",
)
def docker_socket(data: Mapping[str, Any]) -> Iterator[Violation]:
    for path, source in _mount_sources(data):
        if source.rstrip("/").endswith(DOCKER_SOCKET):
            yield Violation(path, f"mounts the Docker socket {source}")


@rule(
    "DKR-012",
    title="literal-secret-env",
    severity=Severity.ERROR,
    rule_set=HARDENED,
    targets=RUN,
    rationale="A secret in environment is stored in the DAG, the container config (docker inspect) and "
    "task logs of the rendered settings.",
    fix="Pass secrets as a mounted file, or read them from an Airflow connection at run time.",
)
def literal_secret_env(data: Mapping[str, Any]) -> Iterator[Violation]:
    env = data.get("environment") or {}
    items = (
        env.items()
        if isinstance(env, Mapping)
        else (tuple(str(e).split("=", 1)) if "=" in str(e) else (str(e), None) for e in env)
    )
    params = data.get("env_params") or {}  # the operator parameter each name came from
    for name, value in items:
        why = secret_literal(str(name), value)
        if why:
            yield Violation(f"{params.get(name, 'environment')}[{name!r}]", f"env {name}: {why}")


@rule(
    "DKR-013",
    title="image-tag-pinned",
    severity=Severity.ERROR,
    rule_set=HARDENED,
    targets=RUN,
    about=(IMAGE,),
    rationale="An untagged or :latest image is a different program on every pull.",
    fix="Reference an immutable version tag (best with its digest).",
)
def image_tag_pinned(data: Mapping[str, Any]) -> Iterator[Violation]:
    image = str(data.get("image") or "")
    if not image:
        yield Violation("image", "no image set")
    elif image_parts(image).floating:
        yield Violation("image", f"image {image!r} is untagged or :latest")


@rule(
    "DKR-014",
    title="secret-ref-env",
    severity=Severity.ERROR,
    rule_set=HARDENED,
    targets=RUN,
    rationale="Docker has no secret store: a SecretRef delivered as env= is written into the container "
    "config, so its value is shown by docker inspect and readable in /proc/*/environ, exactly like a "
    "literal secret env (DKR-012).",
    fix="Deliver the secret as a read-only file: SecretRef(secret=..., key=..., path='/run/secrets/...'); "
    'if the program can only read env, exempt the task: policy_exemptions={"DKR-014": "<why>"}.',
)
def secret_ref_env(data: Mapping[str, Any]) -> Iterator[Violation]:
    for name in data.get("secret_env") or ():
        yield Violation(
            f"secret_refs[env={name!r}]",
            f"secret env {name}: its value would be visible in docker inspect and /proc/*/environ",
        )
