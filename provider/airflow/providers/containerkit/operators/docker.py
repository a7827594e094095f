"""``SecureDockerOperator``, importable where the dag-processor manager pre-imports it.

Importing this module also loads what constructing the operator at parse needs (spec, Docker run
renderer, policy engine and rules), so the manager holds all of it before it forks a parse child.
"""

from __future__ import annotations

from containerkit.operators.docker import SecureDockerOperator
from containerkit.operators.preimport import warm

warm("docker")

__all__ = ["SecureDockerOperator"]
