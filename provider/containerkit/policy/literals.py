"""Recognising values that should never be written literally: secrets in env, mutable image tags.

Lint must never raise on what it reads, so both checks are deliberately lenient parsers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SECRET_NAME = re.compile(
    r"(PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIALS?|FERNET|DSN"
    r"|AUTH(ORIZATION)?(?![A-Z0-9]))",  # BASIC_AUTH, AUTH_HEADER; not AUTHOR or AUTHORITY
    re.I,
)
# Names that *refer to* or *configure* a secret mechanism rather than hold a secret
# (e.g. AIRFLOW__SECRETS__BACKEND, AIRFLOW__CORE__AUTH_MANAGER, AIRFLOW__API_AUTH__JWT_ISSUER).
_REFERENCE_SUFFIX = re.compile(
    r"(_FILE|_PATH|_DIR|_NAME|_REF|_ID|_ARN|_CMD|_SECRET_NAME|_KEY_NAME"
    r"|_BACKEND|_BACKEND_KWARGS|_MANAGER|_ISSUER|_AUDIENCE|_ALGORITHM)$",
    re.I,
)
_SECRET_VALUE = re.compile(
    r"(AKIA[0-9A-Z]{16}"  # AWS access key id
    r"|gh[pousr]_[A-Za-z0-9]{30,}"  # GitHub tokens
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"|[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@)",  # URL with user:password
)
_PLACEHOLDER = re.compile(
    r"^(\{\{.*\}\}|\$\(.+\)|\$\{.+\}|\$[A-Z_][A-Z0-9_]*|<.*>|\*+|changeme|xxx+)$", re.I | re.S
)


def secret_like_name(name: str) -> bool:
    """Whether a variable or argument called ``name`` would hold a secret (not merely point to one)."""
    return bool(_SECRET_NAME.search(name)) and not _REFERENCE_SUFFIX.search(name)


def secret_literal(name: str, value: object) -> str | None:
    """Why ``name=value`` looks like a literal secret, or ``None``.

    A secret-like name with a non-empty, non-placeholder value counts, as does any value shaped like a
    known credential (cloud keys, tokens, private keys, URLs with a password) whatever its name.
    """
    if value is None:
        return None
    text = str(value).strip()
    if not text or _PLACEHOLDER.match(text):
        return None
    if _SECRET_VALUE.search(text):
        return "value has the shape of a credential"
    if secret_like_name(name) and text.lower() not in {"true", "false"}:
        return "secret-like name with a literal value"
    return None


@dataclass(frozen=True)
class ImageParts:
    repository: str
    tag: str | None
    digest: str | None

    @property
    def mutable(self) -> bool:
        """True unless pinned by digest."""
        return self.digest is None

    @property
    def floating(self) -> bool:
        """No tag, or ``latest``, and no digest: a different image on every pull."""
        return self.digest is None and (self.tag is None or self.tag == "latest")


def image_parts(ref: str) -> ImageParts:
    """Split ``registry:5000/ns/name:tag@sha256:...`` without validating it."""
    ref = (ref or "").strip()
    digest = None
    if "@" in ref:
        ref, digest = ref.split("@", 1)
    tag = None
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        tag = last.split(":", 1)[1]
        ref = ref[: len(ref) - len(tag) - 1]
    return ImageParts(ref, tag or None, digest or None)
