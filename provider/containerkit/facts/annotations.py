"""Annotations containerkit reads on the objects it renders and lints."""

from __future__ import annotations

# ``containerkit.io/ignore: "HRD-001: reason, PSS-R-004: reason"`` on a pod (template) suppresses rules
# for that object, each with its reason; the Helm renderer writes it, the policy engine reads it.
IGNORE_ANNOTATION = "containerkit.io/ignore"
