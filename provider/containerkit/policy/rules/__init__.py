"""Importing this package registers every rule: the registry in ``policy.model`` is then complete.

Modules load in documentation order; file-format rule modules (Dockerfile, compose, Helm values) are
imported when present.
"""

from __future__ import annotations

import importlib
import importlib.util

MODULES = ("meta", "pss", "hardened", "docker_run", "dockerfile", "compose", "helm_values")

for _name in MODULES:
    if importlib.util.find_spec(f"{__name__}.{_name}") is not None:
        importlib.import_module(f"{__name__}.{_name}")
