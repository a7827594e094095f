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
_K8S = re.compile(r"^apiVersion:\s*\S+", re.M)
_K8S_KIND = re.compile(r"^kind:\s*\S+", re.M)
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


def kind_of_file(path: Path, *, explicit: bool) -> str | None:
    """The loader for one file, or ``None`` if it is not something lint understands."""
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
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
        if _K8S.search(text) and _K8S_KIND.search(text):
            return KUBERNETES
        if _COMPOSE.search(text):
            return COMPOSE
        if len(set(_HELM_KEYS.findall(text))) >= 2 or fnmatch.fnmatch(name, "values*.y*ml"):
            return HELM_VALUES
        if _POD_TEMPLATE.search(text):
            return KUBERNETES
        return None
    if explicit:
        try:
            head = path.read_text(encoding="utf-8", errors="replace")[:4096]
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


def discover(paths: Iterable[str | Path]) -> tuple[list[Input], list[SourceError]]:
    """Inputs to load for the given command-line paths, and errors for paths that cannot be used."""
    inputs: list[Input] = []
    errors: list[SourceError] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            has_dags = False
            for f in _walk(p):
                kind = kind_of_file(f, explicit=False)
                if kind == DAGS:
                    has_dags = True
                elif kind is not None:
                    inputs.append(Input(kind, str(f)))
            if has_dags:
                inputs.append(Input(DAGS, str(p)))
        elif p.is_file():
            kind = kind_of_file(p, explicit=True)
            if kind is None and p.name.endswith(_YAML_SUFFIXES):
                from containerkit.policy.sources.kubernetes import parse_documents

                try:
                    for _ in parse_documents(p.read_text(encoding="utf-8", errors="replace"), str(p)):
                        pass
                except SourceError as exc:
                    errors.append(exc)
                    continue
            if kind is None:
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
    return inputs, errors
