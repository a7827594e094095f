"""The stock methods containerkit's Kubernetes classes override: one list, and a pin on each's source.

An upgrade of the stock provider (or of the task SDK) that changes an overridden method fails here,
naming every override to re-read; a new override that is not listed fails too.
"""

from __future__ import annotations

import importlib
import types
from functools import cached_property

import pytest

from containerkit.operators.kubernetes_overrides import (
    OVERRIDES,
    PINNED,
    Override,
    source_hash,
    stock_versions,
)

# methods and properties; class attributes that configure the stock class are not overrides of behaviour
_BEHAVIOUR = (types.FunctionType, cached_property, property, staticmethod, classmethod)


def _cls(path: str) -> type:
    module, name = path.split(":")
    cls = getattr(importlib.import_module(module), name)
    assert isinstance(cls, type)
    return cls


def test_each_class_overrides_exactly_the_listed_stock_members() -> None:
    """Every name a containerkit class defines that a stock base also defines is in the one list."""
    listed: dict[str, set[str]] = {}
    for override in OVERRIDES:
        listed.setdefault(override.ours, set()).add(override.name)
    for ours, names in listed.items():
        cls = _cls(ours)
        stock_bases = [k for k in cls.__mro__[1:] if not k.__module__.startswith("containerkit")]
        shadowed = {
            name
            for name, member in vars(cls).items()
            if isinstance(member, _BEHAVIOUR)
            and not (name.startswith("__") and name != "__init__")
            and any(name in vars(base) for base in stock_bases if base is not object)
        }
        assert shadowed == names, (
            f"{ours}: overrides not listed {shadowed - names}, listed not overridden {names - shadowed}"
        )


def test_every_override_names_its_reason_and_a_stock_member_of_that_class() -> None:
    for override in OVERRIDES:
        assert len(override.reason) > 20, override
        assert override.name in vars(_cls(override.stock)), (
            f"{override.stock} does not define {override.name}"
        )


@pytest.mark.parametrize("override", OVERRIDES, ids=lambda o: f"{o.ours.rsplit(':', 1)[1]}.{o.name}")
def test_stock_source_is_the_one_the_override_was_written_against(override: Override) -> None:
    installed = stock_versions()[override.distribution]
    assert installed in PINNED, (
        f"{installed} is not a stock version the overrides were checked against (pinned: {sorted(PINNED)}). "
        "Re-read every override in containerkit.operators.kubernetes_overrides against it, then add its "
        "hashes (python -m containerkit.operators.kubernetes_overrides)."
    )
    assert source_hash(override) == PINNED[installed][override.key], (
        f"stock {override.key} changed in {installed}: re-read {override.ours}.{override.name} "
        f"({override.reason}), then update its pin"
    )


def test_pins_cover_exactly_the_overrides() -> None:
    for dist_version, pins in PINNED.items():
        dist = dist_version.split("==")[0]
        assert set(pins) == {o.key for o in OVERRIDES if o.distribution == dist}, dist_version
