"""RegistryHook: the OCI distribution API v2 with credentials from an Airflow connection.

Tag to digest (per platform too), manifests (OCI index, Docker manifest list, image manifests),
the image config blob, compressed size, pull checks, image-pull-secret payloads, and the blob and
manifest primitives the air-gapped mirror builds on. Auth follows the registry's challenge: Bearer
token (scoped per repository) or Basic; anonymous when the connection has no credentials.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import IO, Any

import requests
from airflow.sdk import BaseHook

from containerkit.diagnostics.causes import PullFailure, pull_failure_for_status
from containerkit.errors import SpecError
from containerkit.hooks import registry_connection as conn_fields
from containerkit.hooks.errors import (
    ImageNotFound,
    RegistryError,
    RegistryUnauthorized,
)
from containerkit.hooks.image_reference import DOCKER_HUB, DOCKER_HUB_API_HOST, ImageName
from containerkit.hooks.manifest import (
    IMAGE_MEDIA_TYPES,
    INDEX_MEDIA_TYPES,
    MANIFEST_ACCEPT,
    OCI_INDEX,
    OCI_MANIFEST,
    ImageConfig,
    Manifest,
    Platform,
    default_platform,
    sha256_digest,
)
from containerkit.hooks.pull_secret import DockerConfigJson
from containerkit.hooks.registry_auth import RegistrySession, error_codes, rate_limited
from containerkit.hooks.registry_connection import Credentials, RegistryEndpoint

_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


class RegistryHook(BaseHook):
    """Talk to a container registry over the OCI distribution API v2.

    :param registry_conn_id: a ``containerkit_registry`` connection (host, login, password or
        token, ``scheme``/``verify``/``ca_bundle`` extras). ``None`` means anonymous access to the
        registry each image names (plain HTTP only for loopback registries).
    :param registry: with ``registry_conn_id=None``, the one registry (``host[:port]``) to use for
        repository-only calls such as :meth:`list_tags`.
    """

    conn_name_attr = "registry_conn_id"
    default_conn_name = conn_fields.DEFAULT_CONN_ID
    conn_type = conn_fields.CONN_TYPE
    hook_name = conn_fields.HOOK_NAME

    def __init__(
        self, registry_conn_id: str | None = default_conn_name, *, registry: str | None = None
    ) -> None:
        super().__init__()
        self.registry_conn_id = registry_conn_id
        self._registry = registry
        self._sessions: dict[str, RegistrySession] = {}
        self._bound: tuple[RegistryEndpoint, Credentials | None] | None = None

    # --- connection form (Airflow < 3.2 reads these; 3.2+ reads provider_info's conn-fields) ---
    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        ui = conn_fields.UI_FIELD_BEHAVIOUR
        return {
            "hidden_fields": list(ui["hidden-fields"]),
            "relabeling": dict(ui["relabeling"]),
            "placeholders": dict(ui["placeholders"]),
        }

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import BooleanField, StringField

        widgets: dict[str, Any] = {}
        for name, spec in conn_fields.CONN_FIELDS.items():
            types = spec["schema"]["type"]
            label = lazy_gettext(spec["label"])
            if "boolean" in types:
                widgets[name] = BooleanField(label, description=spec["description"], default=True)
            else:
                widget = BS3PasswordFieldWidget() if spec["schema"].get("format") == "password" else None
                widgets[name] = StringField(
                    label, description=spec["description"], widget=widget or BS3TextFieldWidget()
                )
        return widgets

    # --- connection ---
    def _load_endpoint(self) -> tuple[RegistryEndpoint, Credentials | None]:
        if self._bound is not None:
            return self._bound
        if self.registry_conn_id is None:
            raise SpecError(
                "registry_conn_id", None, "this call needs one registry", "pass registry= or a connection id"
            )
        conn = self.get_connection(self.registry_conn_id)
        self._bound = conn_fields.read_connection(conn, self.registry_conn_id, self)
        return self._bound

    @property
    def registry(self) -> str:
        """The registry host this hook is bound to (from the connection or ``registry=``)."""
        if self.registry_conn_id is not None:
            return self._load_endpoint()[0].registry
        if self._registry is None:
            raise SpecError(
                "registry", None, "no registry given", "pass registry='host[:port]' or a connection"
            )
        return ImageName.parse(f"{self._registry}/x").registry

    def check_registry(self, image: ImageName) -> None:
        """Refuse an image of another registry: the connection's credentials must not travel there."""
        if self.registry_conn_id is None:
            return
        endpoint, _ = self._load_endpoint()
        if image.registry.lower() != endpoint.registry.lower():
            raise SpecError(
                "image",
                str(image),
                f"names registry {image.registry}, but connection {self.registry_conn_id!r} is for "
                f"{endpoint.registry}",
                f"write the image as {endpoint.registry}/{image.repository}:<tag>, or use the "
                f"connection of {image.registry}",
            )

    def _session(self, image: ImageName) -> RegistrySession:
        self.check_registry(image)
        if self.registry_conn_id is not None:
            endpoint, creds = self._load_endpoint()
            who = f"the credentials of connection {self.registry_conn_id!r}" if creds else "anonymous access"
        else:
            endpoint, creds, who = RegistryEndpoint.anonymous_for(image.registry), None, "anonymous access"
        session = self._sessions.get(endpoint.registry)
        if session is None:
            session = self._sessions[endpoint.registry] = RegistrySession(endpoint, creds, who)
        return session

    def get_conn(self) -> requests.Session:
        return self._session(self.parse_image(f"{self.registry}/x")).http

    def test_connection(self) -> tuple[bool, str]:
        """Ask ``/v2/`` with the connection's credentials (the Airflow UI's Test button)."""
        try:
            image = self.parse_image(f"{self.registry}/v2-ping")
            session = self._session(image)
            resp = session.request("GET", "/v2/", image=str(self.registry))
            self._check(resp, image, session, "the API root /v2/")
        except (RegistryError, SpecError) as exc:
            return False, str(exc)
        return True, f"registry {self.registry} accepted {session.describe_auth}"

    # --- helpers ---
    def parse_image(self, image: str | ImageName) -> ImageName:
        """Parse a reference; one without a registry host means the hook's own registry."""
        if isinstance(image, ImageName):
            return image
        name = ImageName.parse(image)
        if name.registry == DOCKER_HUB and not _names_hub(image):
            bound = self.bound_registry()
            if bound is not None and bound != DOCKER_HUB:
                return ImageName.parse(f"{bound}/{image}")
        return name

    def bound_registry(self) -> str | None:
        """The registry of the connection or ``registry=``; None for a per-image anonymous hook."""
        if self.registry_conn_id is not None:
            return self._load_endpoint()[0].registry
        return self._registry

    def _check(
        self, resp: requests.Response, image: ImageName, session: RegistrySession, what: str
    ) -> requests.Response:
        status = resp.status_code
        if status < 300:
            return resp
        codes = error_codes(resp)
        registry = session.endpoint.registry
        failure = pull_failure_for_status(status)  # the one vocabulary (diagnostics.causes)
        if failure is PullFailure.UNAUTHORIZED:
            fix = (
                f"check the login and password/token of connection {self.registry_conn_id!r} and that the "
                f"account may pull {image.repository}"
                if session.credentials is not None
                else f"set registry_conn_id to a {conn_fields.CONN_TYPE} connection with credentials for "
                f"{registry}"
            )
            raise RegistryUnauthorized(
                str(image),
                f"registry {registry} refused {session.describe_auth} to {what} (HTTP {status} {codes}; "
                "registries also answer this for repositories that do not exist)",
                fix,
                status=status,
            )
        if failure is PullFailure.NOT_FOUND:
            raise ImageNotFound(
                str(image),
                f"{what} not found in registry {registry} (HTTP 404 {codes})",
                "check the repository and tag (RegistryHook.list_tags lists tags) or push the image first",
                status=status,
            )
        if failure is PullFailure.RATE_LIMITED:
            raise rate_limited(str(image), resp, registry)
        raise RegistryError(
            str(image),
            f"registry {registry} answered HTTP {status} ({codes}) to {what}",
            "check the registry's health and logs; retry if it is a transient server error",
            status=status,
        )

    def _request(
        self,
        method: str,
        image: ImageName,
        path: str,
        what: str,
        *,
        push: bool = False,
        extra_scope: Sequence[str] = (),
        ok_statuses: Sequence[int] = (),
        **kwargs: Any,
    ) -> requests.Response:
        session = self._session(image)
        actions = "pull,push" if push else "pull"
        scope = (f"repository:{image.repository}:{actions}", *extra_scope)
        resp = session.request(method, path, image=str(image), scope=scope, **kwargs)
        if resp.status_code in ok_statuses:
            return resp
        return self._check(resp, image, session, what)

    # --- reads ---
    def list_tags(self, repository: str, *, page_size: int = 100) -> list[str]:
        """All tags of a repository (``host/repo`` or ``repo`` on the hook's registry), following pages."""
        image = self.parse_image(repository)
        tags: list[str] = []
        url: str | None = f"/v2/{image.repository}/tags/list?n={page_size}"
        while url:
            resp = self._request("GET", image, url, f"repository {image.repository}")
            tags.extend(resp.json().get("tags") or [])
            match = _LINK_NEXT.search(resp.headers.get("Link", ""))
            url = match.group(1) if match else None
        return tags

    def get_manifest(self, image: str | ImageName) -> Manifest:
        """The manifest or index the tag/digest points at, verified against its digest."""
        name = self.parse_image(image)
        what = (
            f"manifest {name.repository}:{name.reference}" if not name.digest else f"manifest {name.digest}"
        )
        resp = self._request(
            "GET",
            name,
            f"/v2/{name.repository}/manifests/{name.reference}",
            what,
            headers={"Accept": MANIFEST_ACCEPT},
        )
        raw = resp.content
        digest = sha256_digest(raw)
        expected = name.digest or resp.headers.get("Docker-Content-Digest")
        if expected and expected.startswith("sha256:") and expected != digest:
            raise RegistryError(
                str(name),
                f"manifest content hashes to {digest}, not {expected}",
                "the registry or a proxy altered the manifest; pull from the registry directly",
            )
        media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        manifest = Manifest(image=name, digest=digest, media_type=media_type, raw=raw)
        doc_type = manifest.document.get("mediaType")
        if media_type not in INDEX_MEDIA_TYPES | IMAGE_MEDIA_TYPES:
            if doc_type in INDEX_MEDIA_TYPES | IMAGE_MEDIA_TYPES:
                manifest = Manifest(image=name, digest=digest, media_type=str(doc_type), raw=raw)
            elif "manifests" in manifest.document:
                manifest = Manifest(image=name, digest=digest, media_type=OCI_INDEX, raw=raw)
            elif "layers" in manifest.document:
                manifest = Manifest(image=name, digest=digest, media_type=OCI_MANIFEST, raw=raw)
            else:
                raise RegistryError(
                    str(name),
                    f"unsupported manifest type {media_type or doc_type!r} (Docker schema 1?)",
                    "push the image again with a current client (OCI or Docker schema 2)",
                )
        return manifest

    def resolve_digest(self, image: str | ImageName, *, platform: str | Platform | None = None) -> str:
        """The digest the tag points at: the index digest, or with ``platform`` that platform's manifest."""
        name = self.parse_image(image)
        if platform is None:
            resp = self._request(
                "HEAD",
                name,
                f"/v2/{name.repository}/manifests/{name.reference}",
                f"manifest {name.repository}:{name.reference}",
                headers={"Accept": MANIFEST_ACCEPT},
            )
            digest = resp.headers.get("Docker-Content-Digest")
            if digest and (name.digest is None or digest == name.digest):
                return digest
            return self.get_manifest(name).digest
        return self.platform_manifest(name, platform).digest

    def platform_manifest(self, image: str | ImageName, platform: str | Platform | None = None) -> Manifest:
        """The image manifest for ``platform`` (default: this machine's), descending an index."""
        return self._descend(self.get_manifest(image), platform)

    def _descend(self, manifest: Manifest, platform: str | Platform | None) -> Manifest:
        wanted = _platform(platform)
        if not manifest.is_index:
            if platform is not None:
                config = self._config_of(manifest)
                if not wanted.matches(config.platform):
                    raise ImageNotFound(
                        str(manifest.image),
                        f"the image is {config.platform}, not {wanted}",
                        "pick an image built for that platform, or drop the platform option",
                    )
            return manifest
        for entry in manifest.manifests:
            if entry.platform is not None and wanted.matches(entry.platform):
                return self.get_manifest(_with_digest(manifest.image, entry.digest))
        available = ", ".join(str(p) for p in manifest.platforms) or "none"
        raise ImageNotFound(
            str(manifest.image),
            f"the index has no {wanted} manifest (platforms: {available})",
            "use one of the listed platforms, or build and push the image for this platform",
        )

    def get_config(self, image: str | ImageName, *, platform: str | Platform | None = None) -> ImageConfig:
        """User, entrypoint, cmd, labels, exposed ports, healthcheck and creation time of the image."""
        return self._config_of(self.platform_manifest(image, platform))

    def _config_of(self, manifest: Manifest) -> ImageConfig:
        config = manifest.config
        if config is None:
            raise RegistryError(
                str(manifest.image), "manifest has no config descriptor", "push a valid image"
            )
        raw = self.read_blob(manifest.image, config.digest)
        return ImageConfig.from_blob(config.digest, json.loads(raw))

    def compressed_size(self, image: str | ImageName, *, platform: str | Platform | None = None) -> int:
        """Bytes of compressed layers a pull downloads (from the layer descriptors)."""
        return self.platform_manifest(image, platform).compressed_size

    def image_exists(self, image: str | ImageName) -> bool:
        """True if the tag/digest exists; unauthorized, rate limits and outages still raise."""
        try:
            self.resolve_digest(image)
        except ImageNotFound:
            return False
        return True

    def check_pullable(self, image: str | ImageName, *, platform: str | Platform | None = None) -> str:
        """Raise a typed error unless these credentials can pull the image; return the digest to pin.

        Reads the manifest (descending an index to ``platform``, default this machine's) and probes
        the config blob, which a pull reads first. Returns the top digest (the index for multi-arch
        images), or the platform manifest's digest when ``platform`` is given.
        """
        top = self.get_manifest(image)
        target = self._descend(top, platform)
        if target.config is not None:
            self._request(
                "HEAD",
                target.image,
                f"/v2/{target.image.repository}/blobs/{target.config.digest}",
                f"config blob {target.config.digest}",
            )
        return target.digest if platform is not None else top.digest

    def read_blob(self, image: str | ImageName, digest: str) -> bytes:
        """A small blob (config) read fully and verified against its digest."""
        name = self.parse_image(image)
        resp = self._request("GET", name, f"/v2/{name.repository}/blobs/{digest}", f"blob {digest}")
        if digest.startswith("sha256:") and sha256_digest(resp.content) != digest:
            raise RegistryError(
                str(name), f"blob {digest} content does not match its digest", "retry the read"
            )
        return resp.content

    # --- credentials for engines and clusters ---
    def pull_secret(self) -> DockerConfigJson:
        """The ``kubernetes.io/dockerconfigjson`` payload of the connection (never logged)."""
        endpoint, creds = self._load_endpoint()
        if creds is None or not creds.password:
            raise SpecError(
                f"connection {self.registry_conn_id}",
                "<no credentials>",
                "an image pull secret needs a username and password/token",
                "set login and password on the registry connection",
            )
        return DockerConfigJson(endpoint.registry, creds.username or "<token>", creds.password, creds.email)

    def docker_auth_config(self) -> dict[str, str] | None:
        """docker-py ``auth_config`` for this registry, or None for anonymous access."""
        if self.registry_conn_id is None:
            return None
        _, creds = self._load_endpoint()
        if creds is None:
            return None
        return self.pull_secret().auth_config()

    # --- writes (mirror primitives) ---
    def blob_exists(self, image: str | ImageName, digest: str) -> bool:
        name = self.parse_image(image)
        resp = self._request(
            "HEAD",
            name,
            f"/v2/{name.repository}/blobs/{digest}",
            f"blob {digest}",
            push=True,
            ok_statuses=(404,),
        )
        return resp.status_code != 404

    def open_blob(self, image: str | ImageName, digest: str) -> requests.Response:
        """A streaming blob response; the caller closes it and verifies the digest."""
        name = self.parse_image(image)
        return self._request(
            "GET", name, f"/v2/{name.repository}/blobs/{digest}", f"blob {digest}", stream=True
        )

    def iter_blob(self, image: str | ImageName, digest: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        with self.open_blob(image, digest) as resp:
            yield from resp.iter_content(chunk_size)

    def mount_blob(self, image: str | ImageName, digest: str, from_repository: str) -> bool:
        """Cross-repository mount within one registry (no bytes move); False if the registry declined."""
        name = self.parse_image(image)
        resp = self._request(
            "POST",
            name,
            f"/v2/{name.repository}/blobs/uploads/?mount={digest}&from={from_repository}",
            f"blob mount {digest}",
            push=True,
            extra_scope=(f"repository:{from_repository}:pull",),
        )
        if resp.status_code == 201:
            return True
        location = resp.headers.get("Location")
        if location:  # the registry started a normal upload instead: cancel it
            self._session(name).request("DELETE", location, image=str(name), scope=())
        return False

    def upload_blob(self, image: str | ImageName, digest: str, data: IO[bytes], size: int) -> None:
        """Monolithic upload (POST for a session, PUT with the digest); the registry verifies it."""
        name = self.parse_image(image)
        start = self._request("POST", name, f"/v2/{name.repository}/blobs/uploads/", "blob upload", push=True)
        location = start.headers.get("Location")
        if not location:
            raise RegistryError(str(name), "upload start returned no Location", "check the registry")
        separator = "&" if "?" in location else "?"
        self._request(
            "PUT",
            name,
            f"{location}{separator}digest={digest}",
            f"blob upload {digest}",
            push=True,
            data=data,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        )

    def put_manifest(self, image: str | ImageName, raw: bytes, media_type: str) -> str:
        """PUT the exact manifest bytes under the image's tag (or digest); return the digest."""
        name = self.parse_image(image)
        digest = sha256_digest(raw)
        reference = name.tag or name.digest or digest
        resp = self._request(
            "PUT",
            name,
            f"/v2/{name.repository}/manifests/{reference}",
            f"manifest {reference}",
            push=True,
            data=raw,
            headers={"Content-Type": media_type},
        )
        stored = resp.headers.get("Docker-Content-Digest", digest)
        if stored != digest:
            raise RegistryError(
                str(name), f"registry stored the manifest as {stored}, not {digest}", "check the registry"
            )
        self.log.info("Stored manifest %s at %s", digest, name.name)
        return digest


def _names_hub(image: str) -> bool:
    first = image.split("/", 1)[0].lower()
    return first in ("docker.io", "index.docker.io", DOCKER_HUB_API_HOST)


def _platform(platform: str | Platform | None) -> Platform:
    if platform is None:
        return default_platform()
    return platform if isinstance(platform, Platform) else Platform.parse(platform)


def _with_digest(image: ImageName, digest: str) -> ImageName:
    return ImageName(name=image.name, registry=image.registry, repository=image.repository, digest=digest)
