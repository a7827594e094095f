"""Kubernetes name, label and env-var syntax checks, each raising a :class:`SpecError` that names the field.

The patterns are the API server's own (apimachinery ``validation``), so a spec that passes here is
not refused at pod creation for a name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from containerkit.errors import SpecError

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def check_dns_label(field: str, value: object, *, what: str = "name") -> str:
    """A DNS-1123 label (container, volume, port names): lower-case alphanumerics and '-', <= 63."""
    if not isinstance(value, str) or len(value) > 63 or not _DNS1123_LABEL.match(value):
        raise SpecError(
            field,
            value,
            f"not a valid Kubernetes {what} (DNS-1123 label: lower-case letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters)",
            f"use a {what} such as {_suggest_label(value)!r}",
        )
    return value


def check_dns_subdomain(field: str, value: object, *, what: str = "object name") -> str:
    """A DNS-1123 subdomain (Secret, ConfigMap, PVC, ServiceAccount names): <= 253 characters."""
    if not isinstance(value, str) or len(value) > 253 or not _DNS1123_SUBDOMAIN.match(value):
        raise SpecError(
            field,
            value,
            f"not a valid Kubernetes {what} (DNS-1123 subdomain: lower-case letters, digits, '-' and '.', "
            "at most 253 characters)",
            f"use a {what} such as {_suggest_label(value)!r}",
        )
    return value


def check_label_key(field: str, key: object) -> str:
    """A label or annotation key: optional DNS-subdomain prefix and '/', then a qualified name <= 63."""
    fix = "use keys like 'team' or 'example.com/team' (letters, digits, '-', '_', '.'; name part <= 63)"
    if not isinstance(key, str) or not key:
        raise SpecError(field, key, "a label/annotation key must be a non-empty string", fix)
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS1123_SUBDOMAIN.match(prefix)):
        raise SpecError(field, key, "the key prefix is not a DNS-1123 subdomain", fix)
    if len(name) > 63 or not _QUALIFIED_NAME.match(name):
        raise SpecError(field, key, "the key is not a qualified name", fix)
    return key


def check_labels(field: str, labels: Mapping[str, object]) -> dict[str, str]:
    """Label keys and values; values are <= 63 characters of ``[A-Za-z0-9-_.]``, alphanumeric at the ends."""
    out: dict[str, str] = {}
    for key, value in labels.items():
        check_label_key(f"{field}[{key!r}]", key)
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            raise SpecError(
                f"{field}[{key!r}]",
                value,
                "not a valid label value (at most 63 characters of letters, digits, '-', '_' and '.', "
                "starting and ending with a letter or digit)",
                "shorten or clean the value, or put free text in an annotation instead",
            )
        out[key] = value
    return out


def check_annotations(field: str, annotations: Mapping[str, object]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in annotations.items():
        check_label_key(f"{field}[{key!r}]", key)
        if not isinstance(value, str):
            raise SpecError(
                f"{field}[{key!r}]", value, "annotation values must be strings", "quote the value"
            )
        out[key] = value
    if sum(len(k) + len(v) for k, v in out.items()) > 256 * 1024:
        raise SpecError(
            field, "...", "annotations exceed the 256 KiB API limit", "move large data to a ConfigMap"
        )
    return out


def check_env_name(field: str, name: object) -> str:
    if not isinstance(name, str) or not _ENV_NAME.match(name):
        raise SpecError(
            field,
            name,
            "not a valid environment variable name (letters, digits, '_', '-', '.'; no leading digit)",
            "use an upper-case name such as 'MY_SETTING'",
        )
    return name


def check_unique(entries: Iterable[tuple[str, str]], *, what: str) -> None:
    """Refuse two ``(field, value)`` entries with the same value, naming both fields (which two of
    five mounts clash is what the user needs to find them)."""
    first: dict[str, str] = {}
    for field, value in entries:
        if value in first:
            raise SpecError(
                field,
                value,
                f"duplicate {what}: {first[value]} and {field} both use it",
                f"give each a different {what}",
            )
        first[value] = field


def check_absolute_path(field: str, path: object) -> str:
    if not isinstance(path, str) or not path.startswith("/") or ":" in path:
        raise SpecError(field, path, "must be an absolute path without ':'", "use a path like '/data'")
    return path


def _suggest_label(value: object) -> str:
    text = re.sub(r"[^a-z0-9-]+", "-", str(value).lower()).strip("-")[:63].strip("-")
    return text or "my-name"
