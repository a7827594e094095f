"""What a DAG file's parse needs, imported once in the dag-processor manager instead of in every parse child.

The manager imports the ``airflow.*`` modules a DAG file names before it forks the child that parses it
(``[dag_processor] parsing_pre_import_modules``, on by default). The ``airflow.providers.containerkit``
modules call :func:`warm` at import, so a DAG file that imports its operators from there has the spec,
the renderer, the policy engine and its rules already loaded in every child: the child only builds tasks.
"""

from __future__ import annotations

import importlib
from typing import Literal

Kind = Literal["kubernetes", "docker"]

# The modules an operator's construction imports lazily (render the spec, evaluate policy at parse).
_COMMON = (
    "containerkit.spec",
    "containerkit.operators.validation",
    "containerkit.policy.enforce",
    "containerkit.policy.engine",
)
_MODULES: dict[str, tuple[str, ...]] = {
    "kubernetes": ("containerkit.operators.kubernetes", "containerkit.kubernetes.pod", *_COMMON),
    "docker": ("containerkit.operators.docker", "containerkit.docker.run_settings", *_COMMON),
}
# The policy engine's rule kinds the operator checks at parse (``policy.rules.KIND_MODULES``).
_RULE_KINDS = {"kubernetes": "Pod", "docker": "DockerRun"}


def warm(kind: Kind) -> None:
    """Import everything one operator kind's parse path loads, and its policy rule modules."""
    for name in _MODULES[kind]:
        importlib.import_module(name)
    from containerkit.policy.engine import load_rules

    load_rules(_RULE_KINDS[kind])
