"""Rule set ``dockerfile`` (ids ``DF-0xx``): what an image build must get right, checked on the source.

Rules read a :class:`~containerkit.policy.sources.dockerfile.Dockerfile` (stages, instructions with lines).
Findings point at an instruction (``stages[S].instructions[I]``) or at a whole stage (``stages[S]``).

Decisions where the peers leave room:

* A base image from a build ``ARG`` (``FROM ${AIRFLOW_IMAGE}``) is judged on the ARG's default: the
  default is what a plain ``docker build`` uses; an ARG without a default is unpinned.
* The final stage's user is the last ``USER`` in force, followed through ``FROM <earlier stage>``. A
  missing ``USER`` fails (as checkov CKV_DOCKER_3, stricter than hadolint DL3002): the base image's user
  is invisible in the file, and extending ``apache/airflow`` should still say ``USER airflow``.
* A "long-running service" image is one whose final stage ``EXPOSE``\\s a port or carries the label
  ``io.containerkit.service=true``; only those need a ``HEALTHCHECK`` (checkov CKV_DOCKER_2 asks it of
  every image, which is wrong for batch task images).
"""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Iterable, Iterator

from containerkit.facts.secrets import secret_literal
from containerkit.policy.image_pinning import image_parts
from containerkit.policy.model import DOCKERFILE as RULE_SET
from containerkit.policy.model import Severity, Violation
from containerkit.policy.sources.dockerfile import (
    KIND,
    Dockerfile,
    Instruction,
    Stage,
    expand,
    parse_arg,
    parse_env,
    parse_label,
)
from containerkit.policy.sources.located import scoped

SERVICE_LABEL = "io.containerkit.service"

_ARCHIVE = re.compile(r"\.(tar|tar\.gz|tgz|tar\.bz2|tbz2?|tar\.xz|txz|tar\.zst)$", re.IGNORECASE)
_URL = re.compile(r"^(https?|git)://|^git@", re.IGNORECASE)
_ROOT_USERS = {"root", "0"}


_rule = functools.partial(scoped, rule_set=RULE_SET, target=KIND)


def resolved_base(doc: Dockerfile, stage: Stage) -> str | None:
    """The ``FROM`` image with global ARG defaults substituted; None if an ARG has no default."""
    return expand(stage.base, doc.global_args)


def _base_of_external(doc: Dockerfile) -> Iterator[tuple[Stage, str | None]]:
    for stage in doc.stages:
        if stage.parent is not None or stage.base.lower() == "scratch":
            continue
        yield stage, resolved_base(doc, stage)


@_rule(
    "DF-001",
    title="base-image-pinned",
    severity=Severity.ERROR,
    rationale=(
        "An untagged or :latest base changes under the build: two builds of one commit differ and a "
        "rebuild can pick up a broken or vulnerable base. A base taken from a build ARG is judged on the "
        "ARG's default, which is what a plain build uses."
    ),
    fix="Pin every FROM to a version tag (python:3.11.9-slim-bookworm), ideally with @sha256:<digest>.",
    peers={"hadolint": "DL3006,DL3007", "checkov": "CKV_DOCKER_7"},
)
def base_image_pinned(doc: Dockerfile) -> Iterable[Violation]:
    for stage, image in _base_of_external(doc):
        if image is None:
            yield Violation(stage.path, f"FROM {stage.base} uses a build ARG without a default: unpinned")
            continue
        parts = image_parts(image)
        tag = parts.tag
        if parts.digest:
            continue
        if tag is None:
            yield Violation(stage.path, f"FROM {image} has no tag (means :latest)")
        elif tag == "latest":
            yield Violation(stage.path, f"FROM {image} uses the moving :latest tag")


@_rule(
    "DF-002",
    title="base-image-digest",
    severity=Severity.INFO,
    rationale="A tag can be re-pushed; only a digest names exactly one image. Preferred, not required.",
    fix="Append @sha256:<digest> to the base image (keep the tag for readers).",
    peers={},
)
def base_image_digest(doc: Dockerfile) -> Iterable[Violation]:
    for stage, image in _base_of_external(doc):
        if image is None:
            continue
        parts = image_parts(image)
        if not parts.floating and parts.digest is None:
            yield Violation(stage.path, f"FROM {image} is pinned by tag only, not by digest")


def _user_name(value: str) -> str:
    return value.split(":", 1)[0].strip()


@_rule(
    "DF-003",
    title="final-user-non-root",
    severity=Severity.ERROR,
    rationale=(
        "The final stage's user is who the container runs as. Root in a container is one kernel bug or "
        "mount mistake away from root on the node; Pod Security restricted rejects it. A missing USER "
        "leaves the base image's choice, which the Dockerfile reader cannot see."
    ),
    fix="End the final stage with USER <non-root name or uid> (e.g. USER 50000 or USER airflow).",
    peers={"hadolint": "DL3002", "checkov": "CKV_DOCKER_3,CKV_DOCKER_8"},
)
def final_user_non_root(doc: Dockerfile) -> Iterable[Violation]:
    final = doc.final
    user = doc.effective(final, "USER")
    if user is None:
        yield Violation(final.path, "the final stage sets no USER: it runs as the base image's user")
        return
    stage = next(s for s in doc.stages if user in s.instructions)
    value = expand(user.value, doc.variables_before(stage, user))
    if value is None:
        yield Violation(user.path, f"USER {user.value} uses a variable without a default")
    elif _user_name(value) in _ROOT_USERS:
        yield Violation(user.path, f"USER {user.value} is root")


@_rule(
    "DF-004",
    title="no-secrets-in-env-or-arg",
    severity=Severity.ERROR,
    rationale=(
        "ENV and LABEL values are stored in the image config and ARG values in its history: anyone who can "
        "pull the image can read them. Secrets belong in BuildKit secret mounts at build time and in the "
        "runtime environment (Kubernetes Secret, Docker secret file) at run time."
    ),
    fix="Remove the value; use RUN --mount=type=secret,id=... for builds and inject it at run time.",
    peers={"checkov": "CKV_SECRET_*", "hadolint": "(none)"},
)
def no_secrets_in_env_or_arg(doc: Dockerfile) -> Iterable[Violation]:
    for stage in doc.stages:
        for ins in stage.instructions:
            if ins.keyword == "ENV":
                pairs: list[tuple[str, str | None]] = list(parse_env(ins.value))
            elif ins.keyword == "ARG":
                pairs = parse_arg(ins.value)
            elif ins.keyword == "LABEL":  # labels are image metadata: readable by anyone who pulls
                pairs = list(parse_label(ins.value).items())
            else:
                continue
            for name, value in pairs:
                why = secret_literal(name, value)
                if why:
                    yield Violation(ins.path, f"{ins.keyword} {name} bakes a secret into the image ({why})")


@_rule(
    "DF-005",
    title="copy-not-add",
    severity=Severity.WARNING,
    rationale=(
        "ADD also fetches URLs and unpacks archives; for local files that magic only surprises. COPY "
        "does exactly one thing. ADD stays fine for a local tar archive that should be unpacked."
    ),
    fix="Replace ADD with COPY for local files and folders.",
    peers={"hadolint": "DL3020", "checkov": "CKV_DOCKER_4"},
)
def copy_not_add(doc: Dockerfile) -> Iterable[Violation]:
    for stage in doc.stages:
        for ins in stage.instructions:
            if ins.keyword != "ADD":
                continue
            args = ins.json_args or shlex.split(ins.value) if ins.value.strip() else []
            sources = args[:-1]
            local = [s for s in sources if not _URL.search(s) and not _ARCHIVE.search(s)]
            if local:
                yield Violation(ins.path, f"ADD of local {', '.join(local)}: use COPY")


@_rule(
    "DF-006",
    title="exec-form-cmd-entrypoint",
    severity=Severity.WARNING,
    rationale=(
        "The shell form runs the process under /bin/sh -c as PID 1: SIGTERM reaches the shell, not the "
        "program, so the container ignores graceful stops and is killed after the grace period."
    ),
    fix='Write CMD/ENTRYPOINT as a JSON array: CMD ["python", "-m", "app"].',
    peers={"hadolint": "DL3025"},
)
def exec_form(doc: Dockerfile) -> Iterable[Violation]:
    for stage in doc.stages:
        for ins in stage.instructions:
            if ins.keyword in ("CMD", "ENTRYPOINT") and ins.json_args is None:
                yield Violation(ins.path, f"{ins.keyword} {ins.value} is in shell form")


_SEPARATOR = re.compile(r"&&|\|\||;|\||\n")


def commands(ins: Instruction) -> list[list[str]]:
    """The simple commands of a RUN (split at ``&&``, ``||``, ``;``, ``|``, newlines), as word lists."""
    if ins.json_args is not None:
        return [ins.json_args]
    out: list[list[str]] = []
    for part in _SEPARATOR.split(ins.value.replace("\\\n", " ")):
        try:
            words = shlex.split(part, comments=True)
        except ValueError:
            words = part.split()
        if words:
            out.append(words)
    return out


def _program(words: list[str]) -> tuple[str, list[str]]:
    """Skip ``sudo``/``env X=1``/``set -e``-style prefixes; return (program basename, arguments)."""
    i = 0
    while i < len(words):
        w = words[i]
        base = w.rsplit("/", 1)[-1]
        if base in ("sudo", "env", "exec", "command", "nice", "time") or ("=" in w and not w.startswith("-")):
            i += 1
            continue
        return base, words[i + 1 :]
    return "", []


def _apt_installs(ins: Instruction) -> Iterator[list[str]]:
    for words in commands(ins):
        program, args = _program(words)
        if program in ("apt-get", "apt") and "install" in args:
            yield args


@_rule(
    "DF-007",
    title="apt-no-install-recommends",
    severity=Severity.WARNING,
    rationale="Recommended packages are not needed to run; they add size and attack surface to every image.",
    fix="apt-get install -y --no-install-recommends <packages>",
    peers={"hadolint": "DL3015"},
)
def apt_no_install_recommends(doc: Dockerfile) -> Iterable[Violation]:
    for stage in doc.stages:
        for ins in stage.instructions:
            if ins.keyword != "RUN":
                continue
            for args in _apt_installs(ins):
                joined = " ".join(args)
                if "--no-install-recommends" not in args and "Install-Recommends=false" not in joined:
                    yield Violation(ins.path, "apt-get install without --no-install-recommends")
                    break


def _cache_targets(ins: Instruction) -> list[str]:
    targets = []
    for mount in ins.flag_values("mount"):
        opts = dict(o.partition("=")[::2] for o in mount.split(","))
        if opts.get("type") in ("cache", "tmpfs"):
            targets.append(opts.get("target") or opts.get("dst") or opts.get("destination") or "")
    return targets


@_rule(
    "DF-008",
    title="apt-lists-removed",
    severity=Severity.WARNING,
    rationale=(
        "apt-get update writes ~20-40 MB of package lists; removed in a later RUN they stay in the earlier "
        "layer. Clean up in the same RUN, or keep the lists in a BuildKit cache mount."
    ),
    fix="End the RUN with `&& rm -rf /var/lib/apt/lists/*` (or mount a cache at /var/lib/apt/lists).",
    peers={"hadolint": "DL3009"},
)
def apt_lists_removed(doc: Dockerfile) -> Iterable[Violation]:
    for stage in doc.stages:
        for ins in stage.instructions:
            if ins.keyword != "RUN" or not any(True for _ in _apt_installs(ins)):
                continue
            if any(
                t.rstrip("/") == "/var/lib/apt/lists" or t.rstrip("/") == "/var/lib/apt"
                for t in _cache_targets(ins)
            ):
                continue
            cleaned = any(
                _program(w)[0] == "rm" and any(a.startswith("/var/lib/apt/lists") for a in _program(w)[1])
                for w in commands(ins)
            )
            if not cleaned:
                yield Violation(
                    ins.path, "apt-get install without `rm -rf /var/lib/apt/lists/*` in the same RUN"
                )


_TRUE = {"1", "true", "yes", "on"}


def _pip_install(words: list[str]) -> tuple[str, list[str]] | None:
    """('pip', args) / ('uv', args) when ``words`` is a pip install, else None."""
    program, args = _program(words)
    if program.startswith("python") and args[:2] == ["-m", "pip"]:
        program, args = "pip", args[2:]
    if re.fullmatch(r"pip[0-9.]*", program) and args[:1] == ["install"]:
        return "pip", args
    if program == "uv" and args[:2] == ["pip", "install"]:
        return "uv", args
    return None


@_rule(
    "DF-009",
    title="pip-no-cache",
    severity=Severity.WARNING,
    rationale="pip's download cache ends up in the layer: tens to hundreds of MB nobody uses at run time.",
    fix=(
        "pip install --no-cache-dir ... (or ENV PIP_NO_CACHE_DIR=1, or RUN --mount=type=cache,"
        "target=/root/.cache/pip); for uv: --no-cache, UV_NO_CACHE=1 or a cache mount."
    ),
    peers={"hadolint": "DL3042"},
)
def pip_no_cache(doc: Dockerfile) -> Iterable[Violation]:
    for stage in doc.stages:
        for ins in stage.instructions:
            if ins.keyword != "RUN":
                continue
            env = doc.variables_before(stage, ins)
            mounted = [t for t in _cache_targets(ins) if "cache" in t]
            for words in commands(ins):
                found = _pip_install(words)
                if found is None:
                    continue
                tool, args = found
                if tool == "pip":
                    ok = (
                        "--no-cache-dir" in args
                        or (env.get("PIP_NO_CACHE_DIR") or "").lower() in _TRUE | {"off"}
                        or any("pip" in t for t in mounted)
                    )
                else:
                    ok = (
                        "--no-cache" in args
                        or (env.get("UV_NO_CACHE") or "").lower() in _TRUE
                        or any("uv" in t for t in mounted)
                    )
                if not ok:
                    yield Violation(ins.path, f"{tool} install keeps its download cache in the layer")
                    break


def is_service_image(doc: Dockerfile) -> bool:
    """A long-running service: the final stage EXPOSEs a port or is labelled io.containerkit.service=true."""
    for stage in doc.lineage(doc.final):
        for ins in stage.instructions:
            if ins.keyword == "EXPOSE":
                return True
            if ins.keyword == "LABEL" and parse_label(ins.value).get(SERVICE_LABEL, "").lower() in _TRUE:
                return True
    return False


@_rule(
    "DF-010",
    title="healthcheck-for-services",
    severity=Severity.WARNING,
    rationale=(
        "Without a HEALTHCHECK, Docker and compose only know the process is alive, not serving; "
        "depends_on: service_healthy cannot work. A service image is one that EXPOSEs a port or carries "
        "the label io.containerkit.service=true; batch task images are exempt."
    ),
    fix='Add HEALTHCHECK CMD ["<probe>", ...] to the final stage (an HTTP or socket check of the service).',
    peers={"checkov": "CKV_DOCKER_2"},
)
def healthcheck_for_services(doc: Dockerfile) -> Iterable[Violation]:
    if not is_service_image(doc):
        return
    check = doc.effective(doc.final, "HEALTHCHECK")
    if check is None:
        yield Violation(doc.final.path, "service image (EXPOSE/service label) without HEALTHCHECK")
    elif check.value.strip().upper() == "NONE":
        yield Violation(check.path, "HEALTHCHECK NONE disables health checking of a service image")


@_rule(
    "DF-011",
    title="no-sudo",
    severity=Severity.WARNING,
    rationale=(
        "sudo in a build has unpredictable TTY and signal behaviour and signals a root-then-drop design."
    ),
    fix="Switch users with USER around the RUN that needs root instead of sudo.",
    peers={"hadolint": "DL3004"},
)
def no_sudo(doc: Dockerfile) -> Iterable[Violation]:
    for stage in doc.stages:
        for ins in stage.instructions:
            if ins.keyword == "RUN" and any(_uses_sudo(words) for words in commands(ins)):
                yield Violation(ins.path, "RUN uses sudo")


def _uses_sudo(words: list[str]) -> bool:
    for w in words:
        if "=" in w and not w.startswith("-"):
            continue
        return w.rsplit("/", 1)[-1] == "sudo"
    return False


_WINDOWS_ABS = re.compile(r"^[A-Za-z]:[\\/]")


@_rule(
    "DF-012",
    title="absolute-workdir",
    severity=Severity.WARNING,
    rationale=(
        "A relative WORKDIR depends on every earlier WORKDIR and the base image; an absolute one reads alone."
    ),
    fix="Use an absolute path: WORKDIR /opt/app.",
    peers={"hadolint": "DL3000"},
)
def absolute_workdir(doc: Dockerfile) -> Iterable[Violation]:
    for stage in doc.stages:
        for ins in stage.instructions:
            if ins.keyword != "WORKDIR":
                continue
            raw = ins.value.strip().strip("\"'")
            value = expand(raw, doc.variables_before(stage, ins))
            if value is None:
                if raw.startswith("$"):
                    yield Violation(ins.path, f"WORKDIR {raw} uses a variable without a default")
                continue
            if not (value.startswith("/") or _WINDOWS_ABS.match(value)):
                yield Violation(ins.path, f"WORKDIR {raw} is relative")
