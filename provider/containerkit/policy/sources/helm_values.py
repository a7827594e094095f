"""Load Helm values for the official apache-airflow chart into a ``HelmValues`` target.

Layering: Helm users install with ``-f values.yaml -f values-production.yaml``; an overlay alone is
incomplete. So a file named ``values-<name>.yaml`` (or ``.yml``) with a ``values.yaml`` beside it is
linted as that base with the overlay merged on top, the way Helm merges (mappings merge key by key,
everything else replaces, ``null`` deletes). Keys are located in the overlay when it sets them; keys
only the base sets have no line in the overlay (the finding then points at the nearest ancestor the
overlay sets, or the file).

Production: a values file whose name contains ``prod`` (``values-production.yaml``) is production
values; production rules (``HLM-006``, external database) apply to it only.

Suppressions (``# containerkit: ignore=HLM-004 <reason>``): a comment above the first key is file-wide;
any other applies to the key on its line or the next line, and to everything below that key (above
``workers:`` it covers all of ``workers.*``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from containerkit.policy.model import ObjectRef, Target
from containerkit.policy.sources.located import Located, SourceError, Suppression, target_suppressions
from containerkit.policy.sources.yaml_lines import (
    DEFAULT_LIMITS,
    Limits,
    comment_suppressions,
    load_yaml,
    read_text,
)

KIND = "HelmValues"
BASE_NAMES = ("values.yaml", "values.yml")


@dataclass(frozen=True)
class HelmValues(Located):
    values: Mapping[str, Any] = field(default_factory=dict)
    production: bool = False
    layered_on: str | None = None
    """The base values file merged under this one, if any."""


def merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's values merge: maps recursively, other values replace, ``None`` removes the key."""
    out = dict(base)
    for key, value in overlay.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def base_file(path: Path) -> Path | None:
    """The ``values.yaml`` an overlay named ``values-*.yaml`` is layered on, if present."""
    if not path.name.startswith("values-") or path.suffix not in (".yaml", ".yml"):
        return None
    return next((path.parent / n for n in BASE_NAMES if (path.parent / n).is_file()), None)


def is_production(path: Path) -> bool:
    return "prod" in path.name.lower()


def _read(
    path: Path, limits: Limits = DEFAULT_LIMITS
) -> tuple[str, Any, dict[str, int], list[Suppression], list[Suppression]]:
    text = read_text(path, limits, what="values file")
    doc = load_yaml(text, str(path), limits)
    if doc.value is not None and not isinstance(doc.value, Mapping):
        raise SourceError(str(path), 1, "Helm values must be a mapping at the top level")
    file_wide, scoped = comment_suppressions(text, doc)
    return text, doc.value or {}, doc.lines, file_wide, scoped


def load(path: Path | str, limits: Limits = DEFAULT_LIMITS) -> list[Target]:
    """One target per values file (an overlay merged onto its base ``values.yaml``)."""
    from containerkit.policy.engine import load_rules

    load_rules()
    path = Path(path)
    _, values, lines, file_wide, scoped = _read(path, limits)
    base = base_file(path)
    if base is not None:
        _, base_values, _, _, _ = _read(base, limits)
        values = merge(base_values, values)
    data = HelmValues(
        file=str(path),
        lines=lines,
        scoped_suppressions=tuple(scoped),
        values=values,
        production=is_production(path),
        layered_on=str(base) if base else None,
    )
    obj = ObjectRef(kind=KIND, name=path.name, file=str(path), line=1)
    return [Target(KIND, obj, data, target_suppressions(file_wide, scoped))]
