"""Kubernetes models as plain data and multi-document YAML.

:func:`to_dict` gives the API form (camelCase field names, no ``None`` fields): exactly what
``ApiClient.sanitize_for_serialization`` returns, the form the API server receives and the policy engine
checks, without that method's per-object overhead (it runs for every task at DAG parse).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any, TypeVar

import yaml
from kubernetes.client import Configuration

M = TypeVar("M")
# Every generated model copies the default Configuration (logging setup included) in __init__ unless
# handed one: ~90% of render time. One shared, never-mutated instance keeps client-side validation.
_CONFIGURATION = Configuration()


def model(cls: type[M], **fields: Any) -> M:
    """``cls(**fields)`` sharing one client Configuration instead of copying the default per object."""
    return cls(local_vars_configuration=_CONFIGURATION, **fields)  # type: ignore[call-arg]


_PRIMITIVES = (float, bool, bytes, str, int)
# model class -> ((python attribute, API field name), ...) in the model's declared order
_FIELDS: dict[type, tuple[tuple[str, str], ...]] = {}


def _fields(cls: type) -> tuple[tuple[str, str], ...]:
    names: dict[str, str] = cls.attribute_map  # type: ignore[attr-defined]
    found = _FIELDS[cls] = tuple((attr, names[attr]) for attr in cls.openapi_types)  # type: ignore[attr-defined]
    return found


def to_dict(model: Any) -> Any:
    """A model (or list/dict of models) as API-shaped plain data.

    The same result as ``ApiClient().sanitize_for_serialization(model)`` (same keys, key order and
    value types), computed with each model class's field list looked up once.
    """
    if model is None or isinstance(model, _PRIMITIVES):
        return model
    if isinstance(model, list):
        return [to_dict(item) for item in model]
    if isinstance(model, dict):
        return {key: to_dict(value) for key, value in model.items()}
    if isinstance(model, tuple):
        return tuple(to_dict(item) for item in model)
    if isinstance(model, (datetime.datetime, datetime.date)):
        return model.isoformat()
    cls = type(model)
    fields = _FIELDS.get(cls) or _fields(cls)
    return {key: to_dict(value) for attr, key in fields if (value := getattr(model, attr)) is not None}


def dump_yaml(models: Iterable[Any]) -> str:
    """Multi-document YAML (``---`` separated), keys in API order, stable across runs."""
    docs = [to_dict(m) for m in models]
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False, explicit_start=True, width=110)
