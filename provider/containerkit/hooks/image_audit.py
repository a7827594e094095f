"""containerkit's own image audit: what a scanner-less site can still check about an image.

Four checks, each with the remediation a reviewer would write:

- **user**: the image's default user is root (or unset, which means root);
- **secrets**: a literal credential in the image config (``ENV``, labels) or its build history
  (``ENV``/``ARG`` values and build args recorded with ``RUN``), found with the same heuristic as
  the Dockerfile lint (:func:`containerkit.facts.secrets.secret_literal`); values never appear in
  a finding;
- **packages**: an SBOM-style inventory (Debian packages from ``/var/lib/dpkg/status``, Alpine from
  ``/lib/apk/db/installed``, Python distributions from their ``*.dist-info`` directories), read
  from the image's filesystem without running it, so distroless and scratch images work too;
- **base age**: how old the OS snapshot is (the oldest layer, or a given base image), because an
  old base means unpatched packages even when nothing else changed.

The checks are pure functions over ``docker image inspect`` / ``docker history`` output and the
inventory; :func:`audit_image` gathers those from an engine. This is not a vulnerability scanner:
it names no CVEs (run Trivy or Grype for that), it finds the mistakes a scanner's policy also flags.
"""

from __future__ import annotations

import io
import re
import tarfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from containerkit.facts.secrets import secret_literal

Severity = Literal["error", "warning", "info"]
SEVERITY_RANK: Mapping[str, int] = {"info": 0, "warning": 1, "error": 2}
DEFAULT_MAX_BASE_AGE_DAYS = 90
AUDIT_LABEL = "containerkit.audit"

DPKG_STATUS = "var/lib/dpkg/status"
APK_INSTALLED = "lib/apk/db/installed"
_DIST_INFO = re.compile(r"(?:^|/)([A-Za-z0-9_.]+)-([^/-]+)\.dist-info/METADATA$")
_ASSIGNMENT = re.compile(r"(?<![\w-])([A-Za-z_][A-Za-z0-9_]*)=(\"[^\"]*\"|'[^']*'|\S+)")

APIClient = Any  # docker-py's low-level client (typed loosely, as in containerkit.hooks.image)


@dataclass(frozen=True)
class Package:
    """One installed package: the inventory line an SBOM would carry."""

    name: str
    version: str
    kind: Literal["deb", "apk", "python"]

    @property
    def purl(self) -> str:
        """A package URL (purl) for the entry, the id SBOM tools and scanners match on."""
        kind = {"deb": "deb/debian", "apk": "apk/alpine", "python": "pypi"}[self.kind]
        return f"pkg:{kind}/{self.name.lower() if self.kind == 'python' else self.name}@{self.version}"


@dataclass(frozen=True)
class AuditFinding:
    """One problem: which check, how bad, where in the image, and what to change."""

    check: Literal["user", "secrets", "base-age"]
    severity: Severity
    where: str
    message: str
    remediation: str


@dataclass(frozen=True)
class ImageAudit:
    """The audit of one image."""

    image: str
    user: str
    base_created: str | None
    base_age_days: int | None
    packages: tuple[Package, ...] = ()
    findings: tuple[AuditFinding, ...] = field(default=())

    def at_or_above(self, severity: Severity) -> list[AuditFinding]:
        return [f for f in self.findings if SEVERITY_RANK[f.severity] >= SEVERITY_RANK[severity]]

    @property
    def checks_failed(self) -> set[str]:
        return {f.check for f in self.findings}

    def remediation(self) -> str:
        """A readable report: one line per finding with its fix."""
        if not self.findings:
            return f"{self.image}: no findings (user {self.user or 'root'}, {len(self.packages)} packages)"
        lines = [f"{self.image}: {len(self.findings)} finding(s)"]
        for f in sorted(self.findings, key=lambda f: (-SEVERITY_RANK[f.severity], f.check, f.where)):
            lines.append(f"  [{f.severity}] {f.check} at {f.where}: {f.message}. Fix: {f.remediation}")
        return "\n".join(lines)

    def sbom(self) -> list[dict[str, str]]:
        """The inventory as plain records (name, version, kind, purl), sorted."""
        return [
            {**asdict(p), "purl": p.purl}
            for p in sorted(self.packages, key=lambda p: (p.kind, p.name.lower(), p.version))
        ]


# --- checks (pure) ---


def check_user(user: str) -> list[AuditFinding]:
    """Root (``""``, ``root``, ``0``, ``0:<gid>``) as the default user is a finding."""
    name = user.split(":", 1)[0].strip()
    if name in ("", "root", "0"):
        return [
            AuditFinding(
                "user",
                "error",
                "Config.User",
                f"the image runs as root (USER {user!r})"
                if user
                else "the image sets no USER, so it runs as root",
                "add a non-root user and end the Dockerfile with USER <uid>:0 (e.g. USER 50000:0)",
            )
        ]
    return []


def _assignments(text: str) -> Iterator[tuple[str, str]]:
    for name, value in _ASSIGNMENT.findall(text):
        yield name, value.strip("\"'")


def check_secrets(
    env: Sequence[str], labels: Mapping[str, str], history: Sequence[Mapping[str, Any]]
) -> list[AuditFinding]:
    """Literal credentials in ENV, labels and the build history (values are never echoed)."""
    findings: dict[tuple[str, str], AuditFinding] = {}

    def add(where: str, name: str, why: str, fix: str) -> None:
        findings.setdefault(
            (where, name),
            AuditFinding("secrets", "error", where, f"{name}: {why} (value withheld)", fix),
        )

    env_fix = (
        "remove it from the image, rotate it (anyone who pulled the image has it), and hand it to the "
        "container at run time (a Secret file or env from a secret store)"
    )
    for item in env:
        name, _, value = item.partition("=")
        why = secret_literal(name, value)
        if why:
            add(f"Config.Env.{name}", name, why, env_fix)
    for name, value in labels.items():
        why = secret_literal(name, value)
        if why:
            add(
                f"Config.Labels.{name}", name, why, "remove the label and rotate the value; labels are public"
            )
    build_fix = (
        "rotate it, and pass credentials to the build as a BuildKit secret "
        "(--secret id=...; RUN --mount=type=secret), never as ARG/ENV"
    )
    for index, entry in enumerate(history):
        created_by = str(entry.get("CreatedBy") or "")
        for name, value in _assignments(created_by):
            why = secret_literal(name, value)
            if why:
                add(f"history[{index}]", name, why, build_fix)
        whole = secret_literal("", created_by)
        if whole and not any(k[0] == f"history[{index}]" for k in findings):
            add(f"history[{index}]", "build step", whole, build_fix)
    return list(findings.values())


def _parse_time(value: object) -> datetime | None:
    if isinstance(value, int | float) and value > 0:
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str) and value:
        text = re.sub(r"(\.\d{6})\d+", r"\1", value.replace("Z", "+00:00"))
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def base_created(history: Sequence[Mapping[str, Any]]) -> datetime | None:
    """When the oldest layer was made (``docker history`` lists newest first)."""
    times = [t for t in (_parse_time(e.get("Created")) for e in history) if t is not None]
    return min(times) if times else None


def check_base_age(
    created: datetime | None, *, now: datetime, max_age_days: int = DEFAULT_MAX_BASE_AGE_DAYS
) -> tuple[int | None, list[AuditFinding]]:
    """The base's age in days, and a finding when it is older than ``max_age_days``."""
    if created is None:
        return None, [
            AuditFinding(
                "base-age",
                "warning",
                "history",
                "the base image's creation time is unknown",
                "build FROM a base that records its creation time, pinned by digest",
            )
        ]
    days = max(0, (now - created).days)
    if days > max_age_days:
        return days, [
            AuditFinding(
                "base-age",
                "warning",
                "history[-1]",
                f"the base layer is {days} days old (budget {max_age_days})",
                "rebuild on the current base digest (see the base-image-update pattern) and redeploy",
            )
        ]
    return days, []


def parse_dpkg_status(text: str) -> list[Package]:
    """Installed Debian packages from ``/var/lib/dpkg/status`` (``install ok installed`` only)."""
    packages = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line[:1] not in (" ", "\t") and ":" in line:
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
        if fields.get("Package") and fields.get("Status", "").endswith(" installed"):
            packages.append(Package(fields["Package"], fields.get("Version", ""), "deb"))
    return packages


def parse_apk_installed(text: str) -> list[Package]:
    """Installed Alpine packages from ``/lib/apk/db/installed`` (``P:`` name, ``V:`` version)."""
    packages = []
    for block in text.split("\n\n"):
        fields = dict(line.split(":", 1) for line in block.splitlines() if len(line) > 2 and line[1] == ":")
        if fields.get("P"):
            packages.append(Package(fields["P"], fields.get("V", ""), "apk"))
    return packages


def python_packages(paths: Iterable[str]) -> list[Package]:
    """Python distributions from the ``<name>-<version>.dist-info/METADATA`` paths of a filesystem."""
    seen: dict[tuple[str, str], Package] = {}
    for path in paths:
        match = _DIST_INFO.search(path)
        if match:
            name, version = match.group(1).replace("_", "-"), match.group(2)
            seen.setdefault((name.lower(), version), Package(name, version, "python"))
    return list(seen.values())


def audit(
    image: str,
    inspect: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]],
    packages: Sequence[Package] = (),
    *,
    now: datetime | None = None,
    max_base_age_days: int = DEFAULT_MAX_BASE_AGE_DAYS,
    base_created_at: datetime | None = None,
) -> ImageAudit:
    """Run every check on already-gathered facts (``docker image inspect`` and ``docker history``)."""
    config = inspect.get("Config") or {}
    user = str(config.get("User") or "")
    created = base_created_at or base_created(history)
    age, age_findings = check_base_age(created, now=now or datetime.now(UTC), max_age_days=max_base_age_days)
    findings = [
        *check_user(user),
        *check_secrets(list(config.get("Env") or ()), dict(config.get("Labels") or {}), history),
        *age_findings,
    ]
    return ImageAudit(
        image=image,
        user=user,
        base_created=created.isoformat() if created else None,
        base_age_days=age,
        packages=tuple(packages),
        findings=tuple(findings),
    )


# --- gathering from an engine ---


class _ChunkReader(io.RawIOBase):
    """A file object over a stream of byte chunks (``docker export``), for ``tarfile``'s stream mode."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


def image_inventory(api: APIClient, image: str) -> list[Package]:
    """Packages installed in ``image``, read from its filesystem (a created, never started, container)."""
    container = api.create_container(image, command=["/nonexistent"], labels={AUDIT_LABEL: "inventory"})
    try:
        reader = io.BufferedReader(_ChunkReader(api.export(container["Id"])), buffer_size=1 << 20)
        dist_paths: list[str] = []
        packages: list[Package] = []
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            for member in tar:
                name = member.name.lstrip("./")
                if name == DPKG_STATUS and member.isfile():
                    data = tar.extractfile(member)
                    packages += parse_dpkg_status(data.read().decode(errors="replace") if data else "")
                elif name == APK_INSTALLED and member.isfile():
                    data = tar.extractfile(member)
                    packages += parse_apk_installed(data.read().decode(errors="replace") if data else "")
                elif name.endswith(".dist-info/METADATA"):
                    dist_paths.append(name)
        return packages + python_packages(dist_paths)
    finally:
        api.remove_container(container["Id"], force=True)


def audit_image(
    api: APIClient,
    image: str,
    *,
    max_base_age_days: int = DEFAULT_MAX_BASE_AGE_DAYS,
    base_image: str | None = None,
    inventory: bool = True,
    now: datetime | None = None,
) -> ImageAudit:
    """Audit a local image on the engine behind ``api`` (``ImageHook(...).api``).

    :param base_image: the local base image it was built FROM; its creation time is the base age
        (default: the oldest layer of ``image``).
    :param inventory: read the package inventory (streams the image's filesystem once).
    """
    created = None
    if base_image:
        created = _parse_time(api.inspect_image(base_image).get("Created"))
    return audit(
        image,
        api.inspect_image(image),
        api.history(image),
        image_inventory(api, image) if inventory else (),
        now=now,
        max_base_age_days=max_base_age_days,
        base_created_at=created,
    )
