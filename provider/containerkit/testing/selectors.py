"""Label and field selectors as the Kubernetes API evaluates them (kmock ignores both).

Without them two tasks that list "their" pod by labels could silently share one, so the local
cluster applies them on every list and watch.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["field_selector_matches", "label_selector_matches"]

_SET_REQUIREMENT = re.compile(r"^\s*(?P<key>[^\s!=]+)\s+(?P<op>in|notin)\s+\((?P<values>[^)]*)\)\s*$")


def _split(selector: str) -> list[str]:
    """Split on commas that are not inside ``( )`` (set-based requirements hold commas)."""
    parts, depth, current = [], 0, ""
    for char in selector:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def label_selector_matches(selector: str | None, labels: dict[str, str]) -> bool:
    """``a=b``, ``a==b``, ``a!=b``, ``a``, ``!a``, ``a in (x,y)``, ``a notin (x)``, comma-joined."""
    for requirement in _split(selector or ""):
        if m := _SET_REQUIREMENT.match(requirement):
            values = {v.strip() for v in m["values"].split(",")}
            if (labels.get(m["key"]) in values) != (m["op"] == "in"):
                return False
        elif "!=" in requirement:
            key, value = requirement.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in requirement:
            key, value = requirement.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif requirement.startswith("!"):
            if requirement[1:].strip() in labels:
                return False
        elif requirement not in labels:
            return False
    return True


def field_selector_matches(selector: str | None, obj: dict[str, Any]) -> bool:
    """``metadata.name=x``, ``involvedObject.name=x``, ``status.phase!=Running``, comma-joined."""
    for requirement in _split(selector or ""):
        negate = "!=" in requirement
        path, value = re.split(r"!=|==|=", requirement, maxsplit=1)
        current: Any = obj
        for part in path.strip().split("."):
            current = current.get(part) if isinstance(current, dict) else None
        if (str(current if current is not None else "") == value.strip()) == negate:
            return False
    return True
