"""Security profiles: the one place the hardening defaults live.

``restricted`` (the default) is the Kubernetes Pod Security Standards *restricted* level plus what
PSS leaves open: a fixed non-root uid (50000, the Airflow image's user) and gid 0 (the Airflow image
keeps its writable paths group-0-owned, OpenShift style), a read-only root filesystem with a writable
emptyDir/tmpfs ``/tmp``, and no service-account token. ``baseline`` is PSS *baseline*: the image's own
user (root allowed) and a writable root filesystem, still with seccomp, no privilege escalation and
capabilities limited to the baseline list. Anything beyond that is :meth:`SecurityProfile.unrestricted`,
which demands a reason that lint output shows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from containerkit.errors import SpecError
from containerkit.facts.pss import BASELINE_CAPABILITIES, RESTRICTED_CAPABILITIES

Level = Literal["restricted", "baseline", "privileged"]
AIRFLOW_UID = 50000
AIRFLOW_GID = 0
_SECCOMP = ("RuntimeDefault", "Localhost", "Unconfined")
TMP_DIR = "/tmp"
"""The writable scratch dir of a profile with ``tmp_size_limit`` (emptyDir / tmpfs), in every renderer."""


@dataclass(frozen=True)
class SecurityProfile:
    """How every container of a task runs. Build with :meth:`restricted`, :meth:`baseline`,
    :meth:`unrestricted` or :meth:`for_image_user`; the constructor checks the fields against ``level``.

    :param run_as_user: uid; ``None`` keeps the image's USER (only below ``restricted``).
    :param run_as_group: primary gid; ``None`` keeps the image's.
    :param fs_group: group that owns mounted volumes (the first fix for volume permission errors).
    :param tmp_size_limit: size of the writable ``/tmp`` (emptyDir sizeLimit / tmpfs size); ``None``: no /tmp.
    :param reason: why a weaker profile is needed; required for ``privileged``.
    """

    level: Level = "restricted"
    run_as_user: int | None = AIRFLOW_UID
    run_as_group: int | None = AIRFLOW_GID
    fs_group: int | None = AIRFLOW_GID
    fs_group_change_policy: Literal["OnRootMismatch", "Always"] = "OnRootMismatch"
    run_as_non_root: bool = True
    seccomp: str = "RuntimeDefault"
    seccomp_localhost_profile: str | None = None
    drop_capabilities: tuple[str, ...] = ("ALL",)
    add_capabilities: tuple[str, ...] = ()
    allow_privilege_escalation: bool = False
    privileged: bool = False
    read_only_root_filesystem: bool = True
    tmp_size_limit: str | None = "256Mi"
    automount_service_account_token: bool = False
    host_network: bool = False
    host_pid: bool = False
    host_ipc: bool = False
    reason: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "add_capabilities", tuple(c.upper() for c in self.add_capabilities))
        object.__setattr__(self, "drop_capabilities", tuple(c.upper() for c in self.drop_capabilities))
        if self.level not in ("restricted", "baseline", "privileged"):
            raise SpecError(
                "security.level",
                self.level,
                "unknown security level",
                "use restricted, baseline or privileged",
            )
        for name in ("run_as_user", "run_as_group", "fs_group"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise SpecError(f"security.{name}", value, "must be a numeric id >= 0", "use e.g. 50000")
        if self.seccomp not in _SECCOMP:
            raise SpecError(
                "security.seccomp", self.seccomp, "unknown seccomp profile type", "use RuntimeDefault"
            )
        if self.fs_group_change_policy not in ("OnRootMismatch", "Always"):
            raise SpecError(
                "security.fs_group_change_policy",
                self.fs_group_change_policy,
                "unknown policy",
                "use OnRootMismatch",
            )
        if self.seccomp == "Localhost" and not self.seccomp_localhost_profile:
            raise SpecError(
                "security.seccomp_localhost_profile",
                None,
                "a Localhost seccomp profile needs the profile file name",
                "set seccomp_localhost_profile='profiles/my.json' or use RuntimeDefault",
            )
        if self.tmp_size_limit is not None:
            from containerkit.spec.quantity import canonical, parse_quantity

            parse_quantity("security.tmp_size_limit", self.tmp_size_limit, kind="bytes")
            object.__setattr__(self, "tmp_size_limit", canonical(self.tmp_size_limit))
        if self.level == "privileged":
            if not (isinstance(self.reason, str) and self.reason.strip()):
                raise SpecError(
                    "security.reason",
                    self.reason,
                    "a privileged (unrestricted) profile needs a reason",
                    "pass SecurityProfile.unrestricted(reason='why this task cannot run restricted')",
                )
            return
        self._check_baseline()
        if self.level == "restricted":
            self._check_restricted()

    def _check_baseline(self) -> None:
        hint = f"or SecurityProfile.unrestricted(reason=...) if the {self.level} level truly cannot work"
        if self.privileged:
            raise SpecError(
                "security.privileged",
                True,
                f"privileged containers break the {self.level} profile",
                f"drop privileged=True (grant single capabilities instead), {hint}",
            )
        for name in ("host_network", "host_pid", "host_ipc"):
            if getattr(self, name):
                raise SpecError(
                    f"security.{name}",
                    True,
                    "host namespaces break Pod Security baseline",
                    f"remove it, {hint}",
                )
        if self.seccomp == "Unconfined":
            raise SpecError(
                "security.seccomp",
                "Unconfined",
                "Unconfined seccomp breaks PSS baseline",
                "use RuntimeDefault",
            )
        extra = sorted(set(self.add_capabilities) - BASELINE_CAPABILITIES)
        if extra:
            raise SpecError(
                "security.add_capabilities",
                extra[0],
                "capability outside the Pod Security baseline set",
                f"use only {', '.join(sorted(BASELINE_CAPABILITIES))}, {hint}",
            )

    def _check_restricted(self) -> None:
        hint = "or use SecurityProfile.baseline()"
        if self.run_as_user is None or self.run_as_user == 0:
            raise SpecError(
                "security.run_as_user",
                self.run_as_user,
                "the restricted profile runs as a fixed non-root uid",
                f"use a non-root uid such as {AIRFLOW_UID} (the image's user), {hint}",
            )
        if not self.run_as_non_root:
            raise SpecError(
                "security.run_as_non_root", False, "restricted requires runAsNonRoot", f"keep True, {hint}"
            )
        if self.allow_privilege_escalation:
            raise SpecError(
                "security.allow_privilege_escalation",
                True,
                "restricted forbids privilege escalation (setuid binaries, sudo)",
                f"remove it, {hint}",
            )
        if "ALL" not in self.drop_capabilities:
            raise SpecError(
                "security.drop_capabilities",
                self.drop_capabilities,
                "restricted must drop ALL capabilities",
                f"keep ('ALL',) and add back only NET_BIND_SERVICE, {hint}",
            )
        extra = sorted(set(self.add_capabilities) - RESTRICTED_CAPABILITIES)
        if extra:
            raise SpecError(
                "security.add_capabilities",
                extra[0],
                "restricted drops ALL capabilities and may add back only NET_BIND_SERVICE",
                f"remove it, {hint}",
            )

    @classmethod
    def restricted(
        cls, *, uid: int = AIRFLOW_UID, gid: int = AIRFLOW_GID, **overrides: object
    ) -> SecurityProfile:
        """PSS restricted + non-root uid/gid (default 50000:0, the Airflow image's user) + read-only root."""
        fields: dict[str, object] = {"run_as_user": uid, "run_as_group": gid, "fs_group": gid, **overrides}
        return replace(cls(), **fields)  # type: ignore[arg-type]

    @classmethod
    def baseline(cls, **overrides: object) -> SecurityProfile:
        """PSS baseline: the image's user (root allowed), writable root filesystem, baseline capabilities."""
        fields: dict[str, object] = {
            "level": "baseline",
            "run_as_user": None,
            "run_as_group": None,
            "fs_group": None,
            "run_as_non_root": False,
            "read_only_root_filesystem": False,
            "tmp_size_limit": None,
        }
        fields.update(overrides)
        return cls(**fields)  # type: ignore[arg-type]

    @classmethod
    def unrestricted(cls, reason: str, **overrides: object) -> SecurityProfile:
        """The escape hatch: baseline defaults with any field allowed, for the ``reason`` given."""
        return replace(cls.baseline(), level="privileged", reason=reason, **overrides)  # type: ignore[arg-type]

    @classmethod
    def for_image_user(cls, user: str, **overrides: object) -> SecurityProfile:
        """The restricted profile for an image's ``USER`` (``"1000"`` or ``"1000:1000"``, from ImageHook).

        Named users are refused: Kubernetes can only verify ``runAsNonRoot`` for a numeric uid.
        """
        uid_text, _, gid_text = str(user).partition(":")
        if not uid_text.isdigit() or (gid_text and not gid_text.isdigit()):
            raise SpecError(
                "security.run_as_user",
                user,
                "the image user is not numeric, so Kubernetes cannot verify it is non-root",
                "set a numeric USER uid[:gid] in the Dockerfile, or pass the uid explicitly",
            )
        gid = int(gid_text) if gid_text else AIRFLOW_GID
        return cls.restricted(uid=int(uid_text), gid=gid, **overrides)

    @classmethod
    def coerce(cls, value: object) -> SecurityProfile:
        if isinstance(value, SecurityProfile):
            return value
        if value is None or value == "restricted":
            return cls()
        if value == "baseline":
            return cls.baseline()
        raise SpecError(
            "security",
            value,
            "unknown security profile",
            "use 'restricted' (default), 'baseline', or SecurityProfile.unrestricted(reason=...)",
        )

    @property
    def writable_tmp(self) -> bool:
        return self.tmp_size_limit is not None
