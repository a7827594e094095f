"""Literal secrets in ``ConfigMap`` objects (``ConfigMap`` targets from the manifest loader).

A ConfigMap is readable by anyone with ``get configmaps`` in its namespace, is not encrypted at rest
like Secrets can be, and lands in every ``kubectl describe``; a password, token or key written into its
``data`` or ``binaryData`` is public inside the cluster. Values are judged by key name and by value
(:mod:`containerkit.facts.secrets`), line by line for values that hold a whole config file.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from typing import Any

from containerkit.facts.secrets import secrets_in_text
from containerkit.policy.model import Severity, Violation, rule

CONFIG_MAP = ("ConfigMap",)


def _decoded(value: str) -> str | None:
    try:
        return base64.b64decode(value, validate=False).decode("utf-8")
    except (binascii.Error, ValueError):
        return None


@rule(
    "HRD-014",
    title="config-map-secret",
    severity=Severity.ERROR,
    rule_set="hardened",
    targets=CONFIG_MAP,
    peers={"checkov": "CKV_SECRET_*", "kube-linter": "(none)"},
    rationale="ConfigMaps are readable by anyone allowed to `get configmaps` in the namespace, are not "
    "encrypted at rest, and show in `kubectl describe`: a password, token or private key in `data` or "
    "`binaryData` is public inside the cluster.",
    fix="Move the value into a Secret (or an external secret store) and reference it with secretKeyRef or "
    "a Secret volume; keep only non-secret settings in the ConfigMap.",
)
def config_map_secret(cm: Any) -> Iterator[Violation]:
    for key, value in sorted((getattr(cm, "data", None) or {}).items()):
        for offset, why in secrets_in_text(str(key), str(value)):
            where = f" (line {offset + 1} of the value)" if offset else ""
            yield Violation(f"data.{key}", f"data key {key!r}{where}: {why}")
    for key, value in sorted((getattr(cm, "binary_data", None) or {}).items()):
        text = _decoded(str(value))
        if text is None:
            continue
        for offset, why in secrets_in_text(str(key), text):
            where = f" (line {offset + 1} of the decoded value)" if offset else ""
            yield Violation(f"binaryData.{key}", f"binaryData key {key!r}{where}: {why}")
