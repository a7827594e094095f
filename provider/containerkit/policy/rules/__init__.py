"""The rule modules; :func:`containerkit.policy.engine.load_rules` imports them to fill the registry.

Modules load in documentation order; file-format rule modules (Dockerfile, compose, Helm values) are
imported when present. Operators evaluate a pod or docker run settings for every task at DAG parse, in
a fresh interpreter per DAG file, so the engine can load just the modules a target kind needs
(:data:`KIND_MODULES`): the file-format modules and their parsers cost more to import than the rest.
"""

from __future__ import annotations

MODULES = ("meta", "pss", "hardened", "docker_run", "dockerfile", "compose", "helm_values")

KIND_MODULES: dict[str, tuple[str, ...]] = {
    "Pod": ("meta", "pss", "hardened"),
    "DockerRun": ("meta", "docker_run"),
    "ConfigMap": ("meta", "hardened"),
}
"""Target kind -> every module that registers rules for it (a test checks this against the registry).
Kinds not listed load every module."""
