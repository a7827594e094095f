"""Which loader reads which path: by file name first, then by a cheap look at the content.

Directories are walked (hidden, virtualenv and cache folders skipped). Python files are DAG files when
they mention ``airflow``; all DAG files under one directory argument are loaded by one DagBag.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from containerkit.policy.sources.located import SourceError
from containerkit.policy.sources.yaml_lines import DEFAULT_LIMITS, Limits, decode

KUBERNETES = "kubernetes"
DOCKERFILE = "dockerfile"
COMPOSE = "compose"
HELM_VALUES = "helm_values"
DAGS = "dags"

SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".venv",
        "venv",
        ".venv-tools",
        "node_modules",
        "__pycache__",
        ".mypy_cache",
        ".tox",
        "build",
    }
)
_YAML_SUFFIXES = (".yaml", ".yml")
_DOCKERFILE_NAMES = ("Dockerfile", "Containerfile", "Dockerfile.*", "*.Dockerfile", "*.dockerfile")
_COMPOSE_NAMES = ("docker-compose*.y*ml", "compose*.y*ml")
_K8S = re.compile(r"^[\"']?apiVersion[\"']?[ \t]*:[ \t]*\S+", re.M)
_K8S_KIND = re.compile(r"^[\"']?kind[\"']?[ \t]*:[ \t]*\S+", re.M)
# Flow style and JSON (``{"apiVersion": "v1", "kind": "Pod", ...}``, also one line): keys anywhere.
_FLOW_START = re.compile(r"^(?:---[ \t]*)?[{\[]", re.M)
_FLOW_K8S = re.compile(r"[{,\s][\"']?apiVersion[\"']?\s*:")
_FLOW_KIND = re.compile(r"[{,\s][\"']?kind[\"']?\s*:")
_POD_TEMPLATE = re.compile(r"^spec:\s*$(?:\n(?:[ \t].*|\s*))*?\n[ \t]+containers:", re.M)
_COMPOSE = re.compile(r"^services:\s*$", re.M)
_HELM_KEYS = re.compile(
    r"^(executor|airflowVersion|defaultAirflowRepository|defaultAirflowTag|images|scheduler|workers|"
    r"apiServer|webserver|triggerer|dagProcessor|pgbouncer|postgresql|fernetKey|jwtSecret|"
    r"apiSecretKey|webserverSecretKey|data|logs|dags|config|podTemplate|networkPolicies):",
    re.M,
)
_FROM = re.compile(r"^\s*FROM\s+\S+", re.M | re.I)
# Airflow's own safe-mode heuristic: a DAG file mentions both "airflow" and "dag" (any case).
_DAG_HINTS = (re.compile(r"airflow", re.I), re.compile(r"dag", re.I))


@dataclass(frozen=True)
class Input:
    """One thing to load: a loader name and the path it reads (a DAG folder for ``dags``)."""

    kind: str
    path: str


TOO_BIG = "too-big"
"""What :func:`kind_of_file` says of a file over the size limit: it is refused without being read."""


def _read(path: Path, limit: int) -> str | None:
    """The file's text (decoding errors replaced: detection only), ``TOO_BIG``, or ``None`` if unreadable."""
    try:
        if path.stat().st_size > limit:
            return TOO_BIG
        with path.open("rb") as fh:
            data = fh.read(limit)
    except OSError:
        return None
    try:
        return decode(data, str(path))  # a BOM picks UTF-16/32, as the loaders read it
    except SourceError:
        return data.decode("utf-8", errors="replace")


def _manifest_text(text: str) -> bool:
    if _K8S.search(text) and _K8S_KIND.search(text):
        return True
    return bool(_FLOW_START.search(text) and _FLOW_K8S.search(text) and _FLOW_KIND.search(text))


def kind_of_file(path: Path, *, explicit: bool, max_bytes: int = DEFAULT_LIMITS.max_file_bytes) -> str | None:
    """The loader for one file, ``TOO_BIG``, or ``None`` if it is not something lint understands."""
    name = path.name
    if any(fnmatch.fnmatch(name, pat) for pat in _DOCKERFILE_NAMES):
        return DOCKERFILE
    if name.endswith(".py"):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
            return DAGS if all(hint.search(text) for hint in _DAG_HINTS) else None
        except OSError:
            return None
    if name.endswith(_YAML_SUFFIXES):
        if name == "Chart.yaml" or name.startswith("."):
            return None
        if any(fnmatch.fnmatch(name, pat) for pat in _COMPOSE_NAMES):
            return COMPOSE
        found = _read(path, max_bytes)
        if found is None or found == TOO_BIG:
            return found
        text = found
        if _K8S.search(text) and _K8S_KIND.search(text):
            return KUBERNETES
        if _COMPOSE.search(text):
            return COMPOSE
        if len(set(_HELM_KEYS.findall(text))) >= 2 or fnmatch.fnmatch(name, "values*.y*ml"):
            return HELM_VALUES
        if _POD_TEMPLATE.search(text) or _manifest_text(text):
            return KUBERNETES
        return None
    if name.endswith(".json"):
        found = _read(path, max_bytes)
        if found is None or found == TOO_BIG:
            return found if explicit else None
        return KUBERNETES if _manifest_text(found) else None
    if explicit:
        try:
            with path.open("rb") as fh:
                head = fh.read(4096).decode("utf-8", errors="replace")
        except OSError:
            return None
        if _FROM.search(head):
            return DOCKERFILE
    return None


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for f in sorted(filenames):
            yield Path(dirpath) / f


@dataclass
class Discovery:
    inputs: list[Input]
    errors: list[SourceError]
    skipped: list[str]
    """Files that are none of the kinds lint reads (named in the summary): YAML files under a directory,
    and named files with ``skip_unknown_files``."""
    empty: list[SourceError]
    """Directories with nothing lint can read: ``lint`` makes them errors (a CI job pointed at the
    wrong folder must not pass silently)."""


def discover(paths: Iterable[str | Path]) -> tuple[list[Input], list[SourceError]]:
    """Inputs to load for the given command-line paths, and errors for paths that cannot be used."""
    found = discover_all(paths)
    return found.inputs, found.errors


def _too_big(path: Path, limits: Limits) -> SourceError:
    size = path.stat().st_size
    return SourceError(
        str(path),
        None,
        f"file is {size} bytes, over the {limits.max_file_bytes}-byte limit "
        "(raise --max-file-size if it is legitimate)",
    )


def discover_all(
    paths: Iterable[str | Path], limits: Limits = DEFAULT_LIMITS, *, skip_unknown_files: bool = False
) -> Discovery:
    """Inputs, errors for paths that cannot be used, and skipped files, for the command-line paths.

    ``skip_unknown_files``: a file named on the command line that is none of the kinds lint reads is
    skipped (and reported) instead of an error; what a pre-commit hook wants, since it passes every
    changed YAML and Python file.
    """
    inputs: list[Input] = []
    errors: list[SourceError] = []
    empty: list[SourceError] = []
    skipped: list[str] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            has_dags = False
            before = len(inputs) + len(errors)
            for f in _walk(p):
                kind = kind_of_file(f, explicit=False, max_bytes=limits.max_file_bytes)
                if kind == DAGS:
                    has_dags = True
                elif kind == TOO_BIG:
                    errors.append(_too_big(f, limits))
                elif kind is not None:
                    inputs.append(Input(kind, str(f)))
                elif (
                    f.name.endswith(_YAML_SUFFIXES) and f.name != "Chart.yaml" and not f.name.startswith(".")
                ):
                    skipped.append(str(f))
            if has_dags:
                inputs.append(Input(DAGS, str(p)))
            elif len(inputs) + len(errors) == before:
                empty.append(
                    SourceError(
                        str(p),
                        None,
                        "nothing to lint here: no manifest, compose file, Helm values, Dockerfile or DAG "
                        "file" + (f" ({len(skipped)} YAML file(s) of other kinds)" if skipped else ""),
                    )
                )
        elif p.is_file():
            kind = kind_of_file(p, explicit=True, max_bytes=limits.max_file_bytes)
            if kind == TOO_BIG:
                errors.append(_too_big(p, limits))
                continue
            if kind is None and p.name.endswith((*_YAML_SUFFIXES, ".json")):
                from containerkit.policy.sources.yaml_lines import parse_stream, read_text

                try:
                    bad = [
                        e
                        for e in parse_stream(read_text(p, limits), str(p), limits)
                        if isinstance(e, SourceError)
                    ]
                except SourceError as exc:
                    bad = [exc]
                if bad:
                    errors += bad
                    continue
            if kind is None and skip_unknown_files:
                skipped.append(str(p))
            elif kind is None:
                errors.append(
                    SourceError(
                        str(p),
                        None,
                        "cannot tell what this file is (not a manifest, compose "
                        "file, Helm values, Dockerfile or DAG file)",
                    )
                )
            else:
                inputs.append(Input(kind, str(p)))
        else:
            errors.append(SourceError(str(p), None, "no such file or directory"))
    return Discovery(inputs, errors, skipped, empty)
