"""Rule set ``compose`` (ids ``CMP-0xx``): each service of a compose file, merges resolved.

Rules read a :class:`~containerkit.policy.sources.compose.ComposeService`; finding paths are compose
paths (``services.airflow-worker.volumes[3]``), which the document maps to lines.

Values with compose interpolation are judged on what a plain ``docker compose up`` with an empty
environment would use: ``${VAR:-default}`` on its default; ``${VAR}`` has no value the file can vouch
for. Environment values that are only interpolations (``${AIRFLOW_FERNET_KEY}``) are not literal secrets.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from containerkit.facts.secrets import secret_literal
from containerkit.policy.image_pinning import image_parts
from containerkit.policy.model import COMPOSE as RULE_SET
from containerkit.policy.model import Severity, Violation
from containerkit.policy.sources.compose import KIND, ComposeService
from containerkit.policy.sources.located import scoped

_rule = functools.partial(scoped, rule_set=RULE_SET, target=KIND)

_INTERP = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<word>[^}]*))?\}|\$(?P<bare>[A-Za-z_]\w*)"
)
_ROOT = {"root", "0"}
_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock")
_LOOPBACK = ("127.0.0.1", "::1", "[::1]", "localhost")


def interpolate(value: str) -> str | None:
    """Compose interpolation with an empty environment; None when a variable has no default."""
    missing = False

    def sub(m: re.Match[str]) -> str:
        nonlocal missing
        if m.group(0) == "$$":
            return "$"
        op = m.group("op")
        if op in (":-", "-"):
            return m.group("word") or ""
        if op in (":+", "+"):
            return ""
        missing = True
        return ""

    out = _INTERP.sub(sub, value)
    return None if missing else out


@_rule(
    "CMP-001",
    title="image-pinned",
    severity=Severity.ERROR,
    rationale=(
        "An untagged or :latest image differs between machines and days. A service built from `build:` "
        "alone needs no image; `${VAR:-default}` is judged on its default."
    ),
    fix="Use image: name:<version> (or @sha256:<digest>), e.g. ${AIRFLOW_IMAGE:-containerkit/airflow:3.3.2}.",
    peers={"hadolint": "DL3007 (for FROM)"},
)
def image_pinned(svc: ComposeService) -> Iterable[Violation]:
    image = svc.config.get("image")
    if image is None:
        if "build" not in svc.config and "extends" not in svc.config:
            yield Violation(svc.path, "service has neither image nor build")
        return
    at = f"{svc.path}.image"
    value = interpolate(str(image))
    if value is None:
        yield Violation(at, f"image {image} comes from a variable without a default")
        return
    parts = image_parts(value)
    tag = parts.tag
    if parts.digest:
        return
    if tag is None:
        yield Violation(at, f"image {value} has no tag (means :latest)")
    elif tag == "latest":
        yield Violation(at, f"image {value} uses the moving :latest tag")


@_rule(
    "CMP-002",
    title="non-root-user",
    severity=Severity.ERROR,
    rationale=(
        "`user:` decides who the process is. Root (or no `user:`, which leaves most images on root) turns "
        "any bind mount or socket into host access. Set it even when the image has a non-root USER: the "
        "compose file is where reviewers look."
    ),
    fix='Set user: "${AIRFLOW_UID:-50000}:0" (or the image\'s non-root uid).',
    peers={"checkov": "CKV_DOCKER_3 (image level)"},
)
def non_root_user(svc: ComposeService) -> Iterable[Violation]:
    user = svc.config.get("user")
    if user is None:
        yield Violation(svc.path, "no user: set, the image's default user (often root) applies")
        return
    value = interpolate(str(user))
    at = f"{svc.path}.user"
    if value is None:
        yield Violation(at, f"user {user} comes from a variable without a default")
    elif value.split(":", 1)[0].strip() in _ROOT or not value.strip():
        yield Violation(at, f"user {user} is root")


@_rule(
    "CMP-003",
    title="no-privileged",
    severity=Severity.ERROR,
    rationale="A privileged container has every capability and every device: it is root on the host.",
    fix="Remove privileged: true; add the one capability or device the service needs.",
    peers={"checkov": "CKV_K8S_16 (pod equivalent)"},
)
def no_privileged(svc: ComposeService) -> Iterable[Violation]:
    if svc.config.get("privileged") in (True, "true", "True"):
        yield Violation(f"{svc.path}.privileged", "privileged: true")


@_rule(
    "CMP-004",
    title="no-host-namespaces",
    severity=Severity.ERROR,
    rationale=(
        "Host network, PID, IPC or UTS namespaces let the container see and reach host processes and ports."
    ),
    fix="Remove network_mode/pid/ipc/uts/userns_mode: host; publish ports or use a shared network instead.",
    peers={"checkov": "CKV_K8S_17,CKV_K8S_18,CKV_K8S_19 (pod equivalents)"},
)
def no_host_namespaces(svc: ComposeService) -> Iterable[Violation]:
    for key in ("network_mode", "pid", "ipc", "uts", "userns_mode"):
        if str(svc.config.get(key) or "").lower() == "host":
            yield Violation(f"{svc.path}.{key}", f"{key}: host shares the host's namespace")


def _volumes(svc: ComposeService) -> Iterator[tuple[str, str, str]]:
    """(path, source, target) of each volume entry, short or long syntax."""
    volumes = svc.config.get("volumes") or []
    if not isinstance(volumes, list):
        return
    for i, vol in enumerate(volumes):
        at = f"{svc.path}.volumes[{i}]"
        if isinstance(vol, str):
            parts = vol.split(":")
            source = parts[0] if len(parts) > 1 else ""
            target = parts[1] if len(parts) > 1 else parts[0]
            yield at, interpolate(source) or source, target
        elif isinstance(vol, Mapping):
            yield at, str(vol.get("source") or ""), str(vol.get("target") or "")


@_rule(
    "CMP-005",
    title="no-docker-socket",
    severity=Severity.ERROR,
    rationale=(
        "The Docker socket is root on the host: whoever can talk to it can start a privileged container "
        "with / mounted. Mount it only where that is the point (a socket proxy, a worker that runs "
        "DockerOperator tasks) and say why in a suppression comment."
    ),
    fix=(
        "Remove the mount, or put a restricting socket proxy in front of it; where the raw socket is "
        "deliberate, add `# containerkit: ignore=CMP-005 <why>` above the mount."
    ),
    peers={"checkov": "CKV_K8S_27 (pod equivalent)"},
)
def no_docker_socket(svc: ComposeService) -> Iterable[Violation]:
    for at, source, target in _volumes(svc):
        if source.rstrip("/") in _SOCKETS or (not source and target.rstrip("/") in _SOCKETS):
            yield Violation(at, f"mounts the Docker socket {source or target}")


@_rule(
    "CMP-006",
    title="healthcheck",
    severity=Severity.WARNING,
    rationale=(
        "Without a healthcheck, depends_on can only wait for a process to start, not to serve, and "
        "`docker compose ps` cannot show a hung service. One-shot services (waited for with "
        "service_completed_successfully) are exempt."
    ),
    fix="Add healthcheck: {test: [CMD, ...], interval, timeout, retries, start_period}.",
    peers={"checkov": "CKV_DOCKER_2 (Dockerfile)"},
)
def healthcheck(svc: ComposeService) -> Iterable[Violation]:
    if svc.one_shot:
        return
    check = svc.config.get("healthcheck")
    if not isinstance(check, Mapping) or not check:
        yield Violation(svc.path, "long-running service without a healthcheck")
        return
    test = check.get("test")
    if check.get("disable") is True or test == ["NONE"] or test == "NONE":
        yield Violation(f"{svc.path}.healthcheck", "healthcheck is disabled")


def _limits(svc: ComposeService) -> Mapping[str, Any]:
    deploy = svc.config.get("deploy")
    resources = deploy.get("resources") if isinstance(deploy, Mapping) else None
    limits = resources.get("limits") if isinstance(resources, Mapping) else None
    return limits if isinstance(limits, Mapping) else {}


@_rule(
    "CMP-007",
    title="resource-limits",
    severity=Severity.WARNING,
    rationale=(
        "Without a memory limit one leaking service takes the host's memory and the kernel OOM killer "
        "picks a victim at random; without a cpu limit one busy service starves the rest."
    ),
    fix="Set deploy.resources.limits {memory, cpus} (or mem_limit and cpus).",
    peers={"checkov": "CKV_K8S_11,CKV_K8S_13 (pod equivalents)"},
)
def resource_limits(svc: ComposeService) -> Iterable[Violation]:
    limits = _limits(svc)
    if not (limits.get("memory") or svc.config.get("mem_limit")):
        yield Violation(svc.path, "no memory limit (deploy.resources.limits.memory or mem_limit)")
    if not (limits.get("cpus") or svc.config.get("cpus")):
        yield Violation(svc.path, "no cpu limit (deploy.resources.limits.cpus or cpus)")


def _environment(env: Any, base: str) -> Iterator[tuple[str, str, str]]:
    """(path, name, value) of each environment entry with a value, list or mapping form."""
    if isinstance(env, Mapping):
        for name, value in env.items():
            if value is not None:
                yield f"{base}.{name}", str(name), str(value)
    elif isinstance(env, list):
        for i, item in enumerate(env):
            name, eq, value = str(item).partition("=")
            if eq:
                yield f"{base}[{i}]", name, value


def literal_secret(name: str, value: str) -> str | None:
    """Why ``name: value`` is a literal secret, judged on the value after interpolation with empty env.

    ``${VAR}`` alone is not a literal; ``${VAR:-default}`` is judged on the default written in the file.
    """
    resolved = interpolate(value)
    return secret_literal(name, resolved) if resolved else None


@_rule(
    "CMP-008",
    title="no-literal-secrets",
    severity=Severity.ERROR,
    rationale=(
        "A compose file is committed and shared: a password, key or token written in it is leaked. "
        "Interpolations (${VAR}, filled from a git-ignored .env) and secret files (_CMD/_SECRET, "
        "`secrets:`) keep it out. A ${VAR:-default} with a secret default is still a literal."
    ),
    fix=(
        "Use FERNET_KEY: ${AIRFLOW_FERNET_KEY:?set it in .env} or a `secrets:` file with the "
        "*_CMD/_FILE convention."
    ),
    peers={"checkov": "CKV_SECRET_*"},
)
def no_literal_secrets(svc: ComposeService) -> Iterable[Violation]:
    env = _environment(svc.config.get("environment"), f"{svc.path}.environment")
    build = svc.config.get("build")
    args = (
        _environment(build.get("args"), f"{svc.path}.build.args") if isinstance(build, Mapping) else iter(())
    )
    for at, name, value in (*env, *args):
        why = literal_secret(name, value)
        if why:
            yield Violation(at, f"{name} is a literal secret ({why})")


def _ports(svc: ComposeService) -> Iterator[tuple[str, str | None, bool]]:
    """(path, host ip or None, published) of each `ports` entry."""
    ports = svc.config.get("ports") or []
    if not isinstance(ports, list):
        return
    for i, port in enumerate(ports):
        at = f"{svc.path}.ports[{i}]"
        if isinstance(port, Mapping):
            ip = port.get("host_ip")
            yield at, interpolate(str(ip)) if ip else None, True
            continue
        spec = interpolate(str(port)) or ""
        spec = spec.split("/", 1)[0]
        if spec.startswith("["):  # [::1]:8080:8080
            ip, _, _rest = spec[1:].partition("]:")
            yield at, ip, True
            continue
        parts = spec.split(":")
        yield at, parts[0] if len(parts) == 3 else None, True


@_rule(
    "CMP-009",
    title="dev-ports-on-loopback",
    severity=Severity.WARNING,
    rationale=(
        "A port published without a host address listens on every interface (and Docker's iptables rules "
        "bypass host firewalls): a dev stack with default credentials is then reachable from the network. "
        "Applies to dev files; production-like files (name contains `prod`) publish deliberately."
    ),
    fix='Publish as "127.0.0.1:${AIRFLOW_API_PORT:-8080}:8080".',
    peers={},
)
def dev_ports_on_loopback(svc: ComposeService) -> Iterable[Violation]:
    if not svc.dev:
        return
    for at, ip, _published in _ports(svc):
        if ip is None or ip.strip("[]") not in {p.strip("[]") for p in _LOOPBACK}:
            yield Violation(at, f"port published on {ip or 'all interfaces'}, not 127.0.0.1")


@_rule(
    "CMP-010",
    title="restart-policy",
    severity=Severity.WARNING,
    rationale=(
        "Without a restart policy a crashed scheduler or worker stays down until someone notices. "
        "One-shot services (init jobs) are exempt."
    ),
    fix="Set restart: unless-stopped (or always / on-failure; deploy.restart_policy in swarm).",
    peers={},
)
def restart_policy(svc: ComposeService) -> Iterable[Violation]:
    if svc.one_shot:
        return
    deploy = svc.config.get("deploy")
    swarm = deploy.get("restart_policy") if isinstance(deploy, Mapping) else None
    restart = svc.config.get("restart")
    if restart is None and not swarm:
        yield Violation(svc.path, "no restart policy")
    elif restart is not None and str(restart).lower() in ("no", "false"):
        yield Violation(f"{svc.path}.restart", f"restart: {restart} leaves a crashed service down")


_ROTATING_DRIVERS = {"local", "journald", "syslog", "fluentd", "gelf", "awslogs", "splunk", "gcplogs", "none"}


@_rule(
    "CMP-011",
    title="log-rotation",
    severity=Severity.WARNING,
    rationale=(
        "The default json-file driver keeps every log line forever: a chatty service fills the disk. "
        "Bound it with max-size/max-file, or use a driver that rotates (local) or ships logs away."
    ),
    fix='logging: {driver: json-file, options: {max-size: "10m", max-file: "3"}} (an x-logging anchor).',
    peers={},
)
def log_rotation(svc: ComposeService) -> Iterable[Violation]:
    logging = svc.config.get("logging")
    if not isinstance(logging, Mapping):
        yield Violation(svc.path, "no logging options: json-file grows without bound")
        return
    driver = str(logging.get("driver") or "json-file")
    if driver in _ROTATING_DRIVERS:
        return
    options = logging.get("options") if isinstance(logging.get("options"), Mapping) else {}
    assert isinstance(options, Mapping)
    missing = [k for k in ("max-size", "max-file") if not options.get(k)]
    if missing:
        yield Violation(f"{svc.path}.logging", f"{driver} logging without {' and '.join(missing)}")
