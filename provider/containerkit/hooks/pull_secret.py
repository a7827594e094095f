"""Image pull credentials in the ``kubernetes.io/dockerconfigjson`` shape, kept out of logs."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from containerkit.hooks.image_reference import DOCKER_HUB

if TYPE_CHECKING:
    from kubernetes.client import V1Secret

DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/"


class DockerConfigJson:
    """The ``kubernetes.io/dockerconfigjson`` payload for one registry.

    Holds a credential, so ``repr``/``str`` name only the registry, and it refuses pickling (a
    pickled value could land in XCom): build the Secret where it is used.
    """

    __slots__ = ("_auth", "registry")

    def __init__(self, registry: str, username: str, password: str, email: str | None = None) -> None:
        self.registry = registry
        auth = {
            "username": username,
            "password": password,
            "auth": base64.b64encode(f"{username}:{password}".encode()).decode(),
        }
        if email:
            auth["email"] = email
        self._auth = auth

    @property
    def config_key(self) -> str:
        return DOCKER_HUB_CONFIG_KEY if self.registry == DOCKER_HUB else self.registry

    def to_json(self) -> str:
        return json.dumps({"auths": {self.config_key: self._auth}}, sort_keys=True)

    def secret_data(self) -> dict[str, str]:
        """``data`` of a Secret of type ``kubernetes.io/dockerconfigjson`` (base64, as the API wants)."""
        return {".dockerconfigjson": base64.b64encode(self.to_json().encode()).decode()}

    def auth_config(self) -> dict[str, str]:
        """The same credential as docker-py's ``auth_config`` (for ``pull``/``push``)."""
        return {
            "username": self._auth["username"],
            "password": self._auth["password"],
            "serveraddress": self.config_key,
        }

    def to_v1_secret(
        self, name: str, namespace: str | None = None, labels: Mapping[str, str] | None = None
    ) -> V1Secret:
        from kubernetes.client import V1ObjectMeta, V1Secret

        return V1Secret(
            api_version="v1",
            kind="Secret",
            type="kubernetes.io/dockerconfigjson",
            metadata=V1ObjectMeta(name=name, namespace=namespace, labels=dict(labels or {})),
            data=self.secret_data(),
        )

    def __repr__(self) -> str:
        return f"DockerConfigJson(registry={self.registry!r}, credentials=<redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError(
            "DockerConfigJson holds a credential and is not serializable; build the Secret in place"
        )
