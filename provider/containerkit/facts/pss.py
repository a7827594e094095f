"""Pod Security Standards facts shared by the PSS rules (policy) and the spec's profile validation.

One place, so the profiles containerkit renders and the rules that check them cannot drift apart.
"""

from __future__ import annotations

# capabilities_baseline: the container runtime's default set, which baseline lets a pod re-add.
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
# capabilities_restricted: after dropping ALL, only NET_BIND_SERVICE may be added back.
RESTRICTED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
