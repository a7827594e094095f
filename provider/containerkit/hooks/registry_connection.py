"""The ``containerkit_registry`` Airflow connection type: its fields and form, and reading one.

No Airflow or requests import: ``get_provider_info`` reads the fields to declare the connection form
the Airflow 3.2+ way (``conn-fields`` / ``ui-field-behaviour``), and :func:`read_connection` turns a
connection (any object with Airflow's ``Connection`` attributes) into where the registry is
(:class:`RegistryEndpoint`) and who logs in (:class:`Credentials`), with errors naming the field.
"""

from __future__ import annotations

import os
import tempfile
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from containerkit.errors import SpecError

CONN_TYPE = "containerkit_registry"
DEFAULT_CONN_ID = "containerkit_registry_default"
HOOK_CLASS = "containerkit.hooks.registry.RegistryHook"
HOOK_NAME = "Container Registry (containerkit)"

# Keys of Connection.extra the hook understands.
EXTRA_SCHEME = "scheme"
EXTRA_VERIFY = "verify"
EXTRA_CA_BUNDLE = "ca_bundle"
EXTRA_TIMEOUT = "timeout"
EXTRA_EMAIL = "email"

DEFAULT_TIMEOUT = 30.0

CONN_FIELDS: dict[str, dict[str, Any]] = {
    EXTRA_SCHEME: {
        "label": "Scheme",
        "description": "https (default) or http. http is for registries on loopback or a trusted network.",
        "schema": {"type": ["string", "null"], "enum": ["https", "http", None], "default": "https"},
    },
    EXTRA_VERIFY: {
        "label": "Verify TLS certificate",
        "description": "Turn off only for a throwaway test registry; prefer a CA bundle for a private CA.",
        "schema": {"type": ["boolean", "null"], "default": True},
    },
    EXTRA_CA_BUNDLE: {
        "label": "CA bundle",
        "description": "Path to a PEM file, or the PEM text itself, of the CA that signed the registry's "
        "certificate (private CAs).",
        "schema": {"type": ["string", "null"], "format": "multiline"},
    },
    EXTRA_TIMEOUT: {
        "label": "Timeout (seconds)",
        "description": "Connect and read timeout of each registry request.",
        "schema": {"type": ["number", "null"], "minimum": 1, "default": DEFAULT_TIMEOUT},
    },
    EXTRA_EMAIL: {
        "label": "Email",
        "description": "Optional; only copied into generated image pull secrets.",
        "schema": {"type": ["string", "null"]},
    },
}

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema"],
    "relabeling": {"host": "Registry host", "login": "Username", "password": "Password or token"},
    "placeholders": {
        "host": "registry.example.com or https://registry.example.com",
        "port": "443",
        "login": "robot$ci (empty: anonymous, or a bare token in the password field)",
        "password": "password, access token, or a bearer token when Username is empty",
    },
}

CONNECTION_TYPE_INFO: dict[str, Any] = {
    "hook-class-name": HOOK_CLASS,
    "hook-name": HOOK_NAME,
    "connection-type": CONN_TYPE,
    "conn-fields": CONN_FIELDS,
    "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
}


@dataclass(frozen=True)
class RegistryEndpoint:
    """Where and how to reach one registry (no credentials here)."""

    registry: str
    base_url: str
    verify: bool | str = True
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def anonymous_for(cls, registry: str) -> RegistryEndpoint:
        """Loopback registries speak plain HTTP (as the Docker engine assumes); the rest HTTPS."""
        from containerkit.hooks.image_reference import DOCKER_HUB, DOCKER_HUB_API_HOST, is_loopback_host

        scheme = "http" if is_loopback_host(registry) else "https"
        host = DOCKER_HUB_API_HOST if registry == DOCKER_HUB else registry
        return cls(registry=registry, base_url=f"{scheme}://{host}")


class Credentials:
    """A registry login; the password never appears in a repr or a message."""

    __slots__ = ("email", "password", "username")

    def __init__(self, username: str, password: str, email: str | None) -> None:
        self.username = username
        self.password = password
        self.email = email

    @property
    def static_token(self) -> str | None:
        """A password without a username is used as a ready-made bearer token."""
        return self.password if self.password and not self.username else None

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=<redacted>)"


def read_connection(conn: Any, conn_id: str, owner: object) -> tuple[RegistryEndpoint, Credentials | None]:
    """The endpoint and credentials of a ``containerkit_registry`` connection.

    :param owner: keeps a CA bundle pasted as PEM text alive: its temporary file goes with ``owner``.
    """
    from containerkit.hooks.image_reference import DOCKER_HUB, DOCKER_HUB_API_HOST

    extra = conn.extra_dejson
    host = (conn.host or "").strip()
    if not host:
        raise SpecError(f"connection {conn_id}.host", host, "empty", "set the registry host (host[:port])")
    parts = urlsplit(host if "://" in host else f"//{host}")
    scheme = str(extra.get(EXTRA_SCHEME) or parts.scheme or "https").lower()
    if scheme not in ("http", "https"):
        raise SpecError(f"connection {conn_id}.extra.scheme", scheme, "unknown scheme", "use https or http")
    hostname = parts.hostname or ""
    port = conn.port or parts.port
    registry = f"{hostname}:{port}" if port else hostname
    if registry.lower() in ("docker.io", "index.docker.io", DOCKER_HUB_API_HOST):
        registry = DOCKER_HUB
    api_host = DOCKER_HUB_API_HOST if registry == DOCKER_HUB else registry
    endpoint = RegistryEndpoint(
        registry=registry,
        base_url=f"{scheme}://{api_host}",
        verify=verify_option(extra, conn_id, owner),
        timeout=float(extra.get(EXTRA_TIMEOUT) or DEFAULT_TIMEOUT),
    )
    creds = None
    if conn.login or conn.password:
        creds = Credentials(conn.login or "", conn.password or "", extra.get(EXTRA_EMAIL))
    return endpoint, creds


def verify_option(extra: Mapping[str, Any], conn_id: str, owner: object) -> bool | str:
    """``requests``' ``verify``: False, True, or the path of the CA bundle (PEM text goes to a temp file)."""
    verify = extra.get(EXTRA_VERIFY, True)
    if isinstance(verify, str):
        verify = verify.strip().lower() not in ("false", "0", "no", "off")
    bundle = extra.get(EXTRA_CA_BUNDLE)
    if not verify:
        return False
    if not bundle:
        return True
    bundle = str(bundle)
    if "-----BEGIN" in bundle:
        fd, path = tempfile.mkstemp(prefix="ck-registry-ca-", suffix=".pem")
        with os.fdopen(fd, "w") as fh:
            fh.write(bundle)
        weakref.finalize(owner, os.unlink, path)
        return path
    if not os.path.isfile(bundle):
        raise SpecError(
            f"connection {conn_id}.extra.ca_bundle",
            bundle,
            "no such file",
            "give the path of a PEM file readable by the worker, or paste the PEM text",
        )
    return bundle
