"""Load a compose file into one ``Compose`` target per service.

YAML anchors, ``x-`` extension blocks and ``<<`` merges are resolved (the official Airflow compose file
builds every Airflow service from ``x-airflow-common``); a key that came from an anchored block keeps
the line where it is written, so a finding about a merged ``volumes`` entry points into the block.

Suppressions (``# containerkit: ignore=CMP-005 <reason>``):

* a comment above the first key of the file applies to every service;
* any other comment applies to the key or list item on its line (trailing) or the next line, for every
  service that reaches that node: above ``services.worker.volumes[2]`` it covers that mount of that
  service; above a service's name it covers the whole service; inside an ``x-`` block it covers each
  service that merges the block.

Overrides: a file some of whose services have no ``image``, ``build`` or ``extends`` is an override
(``docker compose -f docker-compose.yaml -f docker-compose.prod.yaml``) and cannot be judged alone. If a
base file (``docker-compose.yaml``/``compose.yaml``) sits beside it, each of its services is linted as
the base service with the override merged on top, the way compose merges: mappings key by key,
``command``/``entrypoint``/``healthcheck.test`` replaced, other lists appended. Findings point into the
override where it sets the key; the base's own suppressions for that service still apply.

Dev or production-like: a file whose name contains ``prod`` (``docker-compose.prod.yaml``) is
production-like; any other is a dev file. A top-level ``x-containerkit: {environment: production|dev}``
overrides the name. Dev files must publish ports on 127.0.0.1 only (``CMP-009``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from containerkit.policy.model import ObjectRef, Target
from containerkit.policy.sources.located import Located, SourceError, path_within, target_suppressions
from containerkit.policy.sources.yaml_lines import (
    DEFAULT_LIMITS,
    Limits,
    comment_suppressions,
    load_yaml,
    read_text,
)

KIND = "Compose"
BASE_NAMES = ("docker-compose.yaml", "docker-compose.yml", "compose.yaml", "compose.yml")
_REPLACED_LISTS = frozenset({"command", "entrypoint", "test"})
SETTINGS_KEY = "x-containerkit"


@dataclass(frozen=True)
class ComposeService(Located):
    """One service of a compose file, merges resolved; paths are ``services.<name>.<key>``."""

    name: str = ""
    config: Mapping[str, Any] = field(default_factory=dict)
    dev: bool = True
    one_shot: bool = False
    """Another service waits for it with ``condition: service_completed_successfully`` (init jobs)."""

    @property
    def path(self) -> str:
        return f"services.{self.name}"


def is_dev_file(path: Path, document: Mapping[str, Any]) -> bool:
    settings = document.get(SETTINGS_KEY)
    if isinstance(settings, Mapping) and settings.get("environment"):
        return str(settings["environment"]).lower() not in ("production", "prod")
    return "prod" not in path.name.lower()


def _one_shot_services(services: Mapping[str, Any]) -> set[str]:
    out: set[str] = set()
    for svc in services.values():
        deps = svc.get("depends_on") if isinstance(svc, Mapping) else None
        if isinstance(deps, Mapping):
            for dep, cond in deps.items():
                if isinstance(cond, Mapping) and cond.get("condition") == "service_completed_successfully":
                    out.add(str(dep))
    return out


def _as_mapping(value: Any) -> Any:
    """List-form ``environment``/``labels`` (``["A=1"]``) as a mapping, so overrides merge by name."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return {k: (v if eq else None) for k, eq, v in (item.partition("=") for item in value)}
    return value


# Field -> the YAML types the compose specification allows (what the rules read; others unchecked).
_STR, _INT, _FLOAT, _BOOL, _LIST, _MAP = str, int, float, bool, list, Mapping
SERVICE_TYPES: dict[str, tuple[type, ...]] = {
    "image": (_STR,),
    "user": (_STR, _INT),
    "environment": (_LIST, _MAP),
    "labels": (_LIST, _MAP),
    "volumes": (_LIST,),
    "ports": (_LIST,),
    "cap_add": (_LIST,),
    "cap_drop": (_LIST,),
    "security_opt": (_LIST,),
    "privileged": (_BOOL,),
    "read_only": (_BOOL,),
    "network_mode": (_STR,),
    "pid": (_STR,),
    "ipc": (_STR,),
    "command": (_STR, _LIST),
    "entrypoint": (_STR, _LIST),
    "healthcheck": (_MAP,),
    "deploy": (_MAP,),
    "logging": (_MAP,),
    "build": (_STR, _MAP),
    "depends_on": (_LIST, _MAP),
    "mem_limit": (_STR, _INT),
    "cpus": (_STR, _INT, _FLOAT),
    "restart": (_STR,),
    "tmpfs": (_STR, _LIST),
}
_TYPE_NAMES = {
    _STR: "a string",
    _INT: "an integer",
    _FLOAT: "a number",
    _BOOL: "a boolean",
    _LIST: "a list",
    _MAP: "a mapping",
}


def service_type_errors(file: str, name: str, config: Any, lines: Mapping[str, int]) -> list[SourceError]:
    """Wrong types in one service definition, as errors naming the line, field, expected and found."""
    from containerkit.policy.sources.pod_shape import describe

    path = f"services.{name}"
    if not isinstance(config, Mapping):
        if config is None:
            return []
        return [SourceError(file, lines.get(path), f"{path}: expected a mapping, found {describe(config)}")]
    errors: list[SourceError] = []
    for key, allowed in SERVICE_TYPES.items():
        value = config.get(key)
        if value is None:
            continue
        ok = any(isinstance(value, t) and not (t is not _BOOL and isinstance(value, bool)) for t in allowed)
        if not ok:
            expected = " or ".join(_TYPE_NAMES[t] for t in allowed)
            errors.append(
                SourceError(
                    file,
                    lines.get(f"{path}.{key}", lines.get(path)),
                    f"{path}.{key}: expected {expected}, found {describe(value)}",
                )
            )
    return errors


def merge_service(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Compose's override merge for one service definition."""
    out = dict(base)
    for key, value in override.items():
        old = out.get(key)
        if key in ("environment", "labels"):
            old, value = _as_mapping(old), _as_mapping(value)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            out[key] = merge_service(old, value)
        elif isinstance(old, list) and isinstance(value, list) and key not in _REPLACED_LISTS:
            out[key] = old + [v for v in value if v not in old]
        else:
            out[key] = value
    return out


def _is_partial(services: Mapping[str, Any]) -> bool:
    return any(
        isinstance(svc, Mapping) and not ({"image", "build", "extends"} & set(svc))
        for svc in services.values()
    )


def _base_file(path: Path) -> Path | None:
    return next(
        (path.parent / n for n in BASE_NAMES if (path.parent / n).is_file() and (path.parent / n) != path),
        None,
    )


def load(path: Path | str, limits: Limits = DEFAULT_LIMITS) -> list[Target]:
    """Parse ``path``; one target per service (none for a file without services); raises the first error."""
    targets, errors = load_all(path, limits)
    if errors:
        raise errors[0]
    return targets


def load_all(path: Path | str, limits: Limits = DEFAULT_LIMITS) -> tuple[list[Target], list[SourceError]]:
    """Targets of the well-typed services, and an error per wrong field type of the others."""
    from containerkit.policy.engine import load_rules

    load_rules()
    path = Path(path)
    text = read_text(path, limits, what="compose file")
    doc = load_yaml(text, str(path), limits)
    if doc.value is None:
        return [], []
    if not isinstance(doc.value, Mapping):
        raise SourceError(str(path), 1, "a compose file must be a mapping at the top level")
    services = doc.value.get("services") or {}
    if not isinstance(services, Mapping):
        raise SourceError(str(path), doc.lines.get("services"), "`services` must be a mapping")
    file_wide, scoped = comment_suppressions(text, doc)
    dev = is_dev_file(path, doc.value)
    base = _base_file(path) if _is_partial(services) else None
    every_service: Mapping[str, Any] = services
    if base is not None:
        base_text = read_text(base, limits, what="compose file")
        base_doc = load_yaml(base_text, str(base), limits)
        base_value = base_doc.value if isinstance(base_doc.value, Mapping) else {}
        base_services = base_value.get("services") or {}
        if not isinstance(base_services, Mapping):
            raise SourceError(str(base), base_doc.lines.get("services"), "`services` must be a mapping")
        base_wide, base_scoped = comment_suppressions(base_text, base_doc)
        file_wide, scoped = [*base_wide, *file_wide], [*base_scoped, *scoped]
        services = {
            name: merge_service(
                b if isinstance(b := base_services.get(name), Mapping) else {},
                cfg if isinstance(cfg, Mapping) else {},
            )
            for name, cfg in services.items()
        }
        every_service = {**base_services, **services}
    wrong = {str(n): service_type_errors(str(path), str(n), cfg, doc.lines) for n, cfg in services.items()}
    errors = [e for found in wrong.values() for e in found]
    services = {n: cfg for n, cfg in services.items() if not wrong[str(n)]}
    one_shot = _one_shot_services(every_service)
    targets: list[Target] = []
    for name, config in services.items():
        svc_path = f"services.{name}"
        if not isinstance(config, Mapping):
            config = {}
        mine = tuple(s for s in scoped if path_within(s.scope, svc_path))
        data = ComposeService(
            file=str(path),
            lines=doc.lines,
            scoped_suppressions=mine,
            name=str(name),
            config=config,
            dev=dev,
            one_shot=str(name) in one_shot,
        )
        obj = ObjectRef(kind=KIND, name=str(name), file=str(path), line=doc.lines.get(svc_path))
        targets.append(Target(KIND, obj, data, target_suppressions(file_wide, mine)))
    return targets, errors
