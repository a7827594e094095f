"""Kubernetes models as plain data and multi-document YAML.

Serialisation goes through ``ApiClient.sanitize_for_serialization`` (API camelCase field names, no
``None`` fields), the same form the API server receives and the policy engine checks.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

import yaml
from kubernetes.client import ApiClient, Configuration

M = TypeVar("M")
# Every generated model copies the default Configuration (logging setup included) in __init__ unless
# handed one: ~90% of render time. One shared, never-mutated instance keeps client-side validation.
_CONFIGURATION = Configuration()


def model(cls: type[M], **fields: Any) -> M:
    """``cls(**fields)`` sharing one client Configuration instead of copying the default per object."""
    return cls(local_vars_configuration=_CONFIGURATION, **fields)  # type: ignore[call-arg]


_API_CLIENT: ApiClient | None = None


def to_dict(model: Any) -> Any:
    """A model (or list/dict of models) as API-shaped plain data."""
    global _API_CLIENT
    if _API_CLIENT is None:
        # ApiClient() without a configuration builds no pool until a request; creating it once is cheap.
        _API_CLIENT = ApiClient()
    return _API_CLIENT.sanitize_for_serialization(model)


def dump_yaml(models: Iterable[Any]) -> str:
    """Multi-document YAML (``---`` separated), keys in API order, stable across runs."""
    docs = [to_dict(m) for m in models]
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False, explicit_start=True, width=110)
