"""The ``containerkit_registry`` Airflow connection type: one place for its fields and form.

Pure data (no Airflow or requests import): ``get_provider_info`` reads it to declare the connection
form the Airflow 3.2+ way (``conn-fields`` / ``ui-field-behaviour``), and the hook reads the same
names when it interprets a connection.
"""

from __future__ import annotations

from typing import Any

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
