"""Kubernetes resource quantities, parsed with the Kubernetes client's own parser.

``kubernetes.utils.quantity`` is a small pure module, but importing it the normal way runs the
``kubernetes`` package ``__init__``, which loads the whole API client (~1.5 s). A Docker-only DAG file
should not pay that at parse time, so when ``kubernetes`` is not imported yet the parser module is
loaded on its own from the installed package.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Callable
from decimal import Decimal
from functools import cache
from types import ModuleType

from containerkit.errors import SpecError

_COMMON_MISTAKES = {
    "gb": "G or Gi",
    "mb": "M or Mi",
    "kb": "k or Ki",
    "tb": "T or Ti",
    "b": "no unit (bytes)",
}


@cache
def _parser() -> Callable[[object], Decimal]:
    if "kubernetes" in sys.modules:
        from kubernetes.utils.quantity import parse_quantity

        return parse_quantity  # type: ignore[no-any-return]
    package = importlib.util.find_spec("kubernetes")
    if package is None or not package.submodule_search_locations:  # pragma: no cover - a hard dependency
        raise ModuleNotFoundError("kubernetes")
    location = f"{next(iter(package.submodule_search_locations))}/utils/quantity.py"
    module_spec = importlib.util.spec_from_file_location("containerkit._kubernetes_quantity", location)
    assert module_spec is not None and module_spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.parse_quantity  # type: ignore[no-any-return]


def parse_quantity(field: str, value: object, *, kind: str) -> Decimal:
    """Parse ``value`` (``"512Mi"``, ``"0.5"``, ``"250m"``, ``2``) or raise a SpecError naming ``field``.

    :param kind: ``"cpu"`` or ``"bytes"``: only used to phrase the fix.
    """
    example = "'500m' or '2'" if kind == "cpu" else "'512Mi' or '2Gi'"
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SpecError(
            field, value, "a quantity must be a string or a number", f"use a quantity such as {example}"
        )
    try:
        parsed = _parser()(value)
    except (ValueError, TypeError, ArithmeticError):
        fix = f"use a Kubernetes quantity such as {example}"
        match = re.fullmatch(r"\s*[0-9.]+\s*([A-Za-z]+)\s*", str(value))
        if match and match.group(1).lower() in _COMMON_MISTAKES:
            suffix = match.group(1)
            fix = f"'{suffix}' is not a Kubernetes suffix: use {_COMMON_MISTAKES[suffix.lower()]}"
            fix += f" (e.g. {example})"
        raise SpecError(field, value, "not a Kubernetes quantity", fix) from None
    if not parsed.is_finite():
        raise SpecError(
            field, value, "a quantity must be a finite number", f"use a quantity such as {example}"
        )
    if parsed < 0:
        raise SpecError(
            field, value, "a quantity cannot be negative", f"use a positive quantity such as {example}"
        )
    return parsed


def canonical(value: object) -> str:
    """The quantity as the user wrote it, as a string (numbers become their decimal text)."""
    return value if isinstance(value, str) else format(Decimal(str(value)).normalize(), "f")
