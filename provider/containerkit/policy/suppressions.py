"""Suppression syntax shared by every source: ``<rule-id>: <reason>`` entries.

Pods carry them in the ``containerkit.io/ignore`` annotation (several separated by ``;`` or newlines);
file sources parse their own comments and hand the engine the same ``{rule_id: reason}`` mapping.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from containerkit.facts.annotations import IGNORE_ANNOTATION

_ENTRY = re.compile(r"^\s*(?P<id>[A-Za-z0-9][A-Za-z0-9_.-]*)\s*(?::\s*(?P<reason>.*))?$", re.S)


def parse_ignore(value: str) -> dict[str, str]:
    """``"PSS-R-003: needs root for apt; HRD-001: writes /tmp"`` -> ``{id: reason}`` (reason may be "")."""
    out: dict[str, str] = {}
    for raw in re.split(r"[;\n]", value or ""):
        if not raw.strip():
            continue
        m = _ENTRY.match(raw)
        if m is None:
            out[raw.strip()] = ""
            continue
        out[m.group("id")] = (m.group("reason") or "").strip()
    return out


def pod_suppressions(pod: Mapping[str, Any]) -> dict[str, str]:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(IGNORE_ANNOTATION)
    return parse_ignore(str(value)) if value else {}
