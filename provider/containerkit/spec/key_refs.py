"""References to Kubernetes Secrets and ConfigMaps: one key delivered as an env var or as a file.

Files are preferred for secrets (no leak through ``/proc/<pid>/environ``, crash dumps or child
processes). The Docker renderer delivers both forms from files the caller provides (see
:mod:`containerkit.docker.run_settings`).
"""

from __future__ import annotations

from dataclasses import dataclass

from containerkit.errors import SpecError
from containerkit.spec.names import check_absolute_path, check_dns_subdomain, check_env_name

_KEY_FIX = "use the key exactly as it appears in the object's data (letters, digits, '-', '_', '.')"


def _check(kind: str, field: str, obj: str, key: str, env: str | None, path: str | None) -> None:
    check_dns_subdomain(f"{field}.name", obj, what=f"{kind} name")
    if (
        not isinstance(key, str)
        or not key
        or len(key) > 253
        or not all(c.isalnum() or c in "-_." for c in key)
    ):
        raise SpecError(f"{field}.key", key, f"not a valid {kind} key", _KEY_FIX)
    if (env is None) == (path is None):
        raise SpecError(
            field,
            f"{obj}/{key}",
            "say exactly one of env= (an environment variable) or path= (a file)",
            "pass path='/run/secrets/<name>' (preferred for secrets) or env='NAME'",
        )
    if env is not None:
        check_env_name(f"{field}.env", env)
    if path is not None:
        check_absolute_path(f"{field}.path", path)
        if path.endswith("/"):
            raise SpecError(f"{field}.path", path, "a file path cannot end in '/'", "give the file name too")


@dataclass(frozen=True)
class SecretRef:
    """One key of a Kubernetes Secret, as env var ``env`` or a read-only file at ``path``.

    :param optional: start even if the Secret or key is missing (default: fail fast, and the diagnosis
        names the missing key).
    """

    secret: str
    key: str
    env: str | None = None
    path: str | None = None
    optional: bool = False

    def __post_init__(self) -> None:
        _check("Secret", f"secrets[{self.secret}/{self.key}]", self.secret, self.key, self.env, self.path)


@dataclass(frozen=True)
class ConfigMapRef:
    """One key of a ConfigMap, as env var ``env`` or a read-only file at ``path``."""

    config_map: str
    key: str
    env: str | None = None
    path: str | None = None
    optional: bool = False

    def __post_init__(self) -> None:
        field = f"config_maps[{self.config_map}/{self.key}]"
        _check("ConfigMap", field, self.config_map, self.key, self.env, self.path)
