"""Rules that replace another rule when both are selected (the admission controller's OverrideCheckIDs).

Restricted ``capabilities_restricted`` supersedes baseline ``capabilities_baseline``: with both rule sets
selected a pod adding ``SYS_ADMIN`` gets one finding, as from the admission controller, not two.
"""

from __future__ import annotations

# overriding rule id -> the rule ids it replaces
OVERRIDES: dict[str, tuple[str, ...]] = {}


def overrides(rule_id: str, *replaced: str) -> None:
    OVERRIDES[rule_id] = tuple(replaced)
