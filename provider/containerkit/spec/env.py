"""Literal environment variables, for non-secret data only.

A literal value ends up in the pod spec, ``docker inspect``, the rendered-template view and the policy
report, so a literal for a name that looks like a credential is refused: use a :class:`SecretRef`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from containerkit.errors import SpecError
from containerkit.spec.names import check_env_name


def looks_secret(name: str, value: str) -> str | None:
    """Why ``name=value`` must not be a literal (secret-like name, or a credential-shaped value), or None.

    The one rule for this lives in :mod:`containerkit.facts.secrets` and is shared with the linter.
    """
    from containerkit.facts.secrets import secret_literal

    return secret_literal(name, value)


@dataclass(frozen=True)
class EnvVar:
    """A literal ``name=value`` for non-secret data.

    :param not_secret: set when a secret-looking name holds public data (e.g. ``TOKEN_AUDIENCE``).
    """

    name: str
    value: str
    not_secret: bool = False

    def __post_init__(self) -> None:
        check_env_name(f"env[{self.name!r}]", self.name)
        if not isinstance(self.value, str):
            raise SpecError(
                f"env[{self.name!r}]", self.value, "env values must be strings", f"use str({self.value!r})"
            )
        why = None if self.not_secret else looks_secret(self.name, self.value)
        if why:
            raise SpecError(
                f"env[{self.name!r}]",
                "<redacted>",
                f"{why}: a literal would be stored in plain text in the pod spec and docker inspect",
                f"reference a Secret instead: SecretRef(secret='...', key='...', env={self.name!r}); "
                "if the value is public, use EnvVar(..., not_secret=True)",
            )


def coerce_env(value: object) -> tuple[EnvVar, ...]:
    """Accept a mapping ``{name: value}``, or an iterable of :class:`EnvVar` / ``(name, value)``."""
    if value is None:
        return ()
    items: Iterable[object]
    if isinstance(value, Mapping):
        items = [EnvVar(str(k), v) if not isinstance(v, EnvVar) else v for k, v in value.items()]
    elif isinstance(value, str | bytes):
        raise SpecError(
            "env", value, "env must be a mapping or a list of EnvVar", "use env={'NAME': 'value'}"
        )
    elif isinstance(value, Iterable):
        items = value
    else:
        raise SpecError(
            "env", value, "env must be a mapping or a list of EnvVar", "use env={'NAME': 'value'}"
        )
    out: list[EnvVar] = []
    for item in items:
        if isinstance(item, EnvVar):
            out.append(item)
        elif isinstance(item, tuple) and len(item) == 2:
            out.append(EnvVar(str(item[0]), item[1]))
        else:
            raise SpecError(
                "env", item, "not an env entry", "use EnvVar(name, value) or a {name: value} mapping"
            )
    return tuple(out)
