"""The RegistryHook's auth and error protocol against a small registry speaking real HTTP.

The real ``docker-registry`` in the integration tests covers anonymous and Basic (htpasswd) auth;
a Bearer token service and HTTP 429 need a server that can answer them, so this one does: it
challenges with ``WWW-Authenticate: Bearer realm=…,service=…,scope=…``, issues a token per scope
for the right credentials, and rate-limits one repository with ``Retry-After``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from containerkit.hooks.errors import ImageNotFound, RegistryRateLimited, RegistryUnauthorized
from containerkit.hooks.registry import RegistryHook

MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": "sha256:" + "1" * 64,
            "size": 2,
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": "sha256:" + "2" * 64,
                "size": 1000,
            },
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": "sha256:" + "3" * 64,
                "size": 234,
            },
        ],
    }
).encode()
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
USER, PASSWORD = "robot", "hunter2"


class _Registry(BaseHTTPRequestHandler):
    token_requests: list[dict[str, Any]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        host = f"http://{self.headers['Host']}"
        auth = self.headers.get("Authorization", "")
        if self.path.startswith("/token"):
            from urllib.parse import parse_qs, urlsplit

            query = parse_qs(urlsplit(self.path).query)
            type(self).token_requests.append(query)
            expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            if auth != expected:
                return self._send(401, b'{"details":"bad credentials"}')
            return self._send(200, json.dumps({"token": "tok:" + " ".join(query["scope"])}).encode())
        repo = self.path.split("/")[2] + "/" + self.path.split("/")[3]
        if repo == "ns/limited":
            return self._send(429, b'{"errors":[{"code":"TOOMANYREQUESTS"}]}', {"Retry-After": "7"})
        if repo == "ns/basic":
            if auth != "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode():
                return self._send(401, b"{}", {"WWW-Authenticate": 'Basic realm="fake"'})
        elif auth != f"Bearer tok:repository:{repo}:pull":
            challenge = f'Bearer realm="{host}/token",service="fake-registry",scope="repository:{repo}:pull"'
            return self._send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"WWW-Authenticate": challenge})
        if self.path.endswith("/manifests/1.0"):
            headers = {
                "Content-Type": "application/vnd.oci.image.manifest.v1+json",
                "Docker-Content-Digest": DIGEST,
            }
            return self._send(200, MANIFEST, headers)
        return self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')


@pytest.fixture(scope="module")
def fake_registry() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _conn(monkeypatch: pytest.MonkeyPatch, conn_id: str, host: str, **fields: Any) -> str:
    conn = {"conn_type": "containerkit_registry", "host": host, "extra": {"scheme": "http"}, **fields}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    return conn_id


def test_bearer_challenge_gets_a_scoped_token_once(
    fake_registry: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _Registry.token_requests.clear()
    hook = RegistryHook(_conn(monkeypatch, "ck_fake_bearer", fake_registry, login=USER, password=PASSWORD))
    assert hook.resolve_digest("ns/app:1.0") == DIGEST
    assert hook.compressed_size("ns/app:1.0") == 1234
    assert len(_Registry.token_requests) == 1  # the token is cached for the repository's pull scope
    assert _Registry.token_requests[0]["scope"] == ["repository:ns/app:pull"]
    assert _Registry.token_requests[0]["service"] == ["fake-registry"]
    hook.get_manifest("ns/other:1.0")  # another repository: another scope, another token
    assert _Registry.token_requests[-1]["scope"] == ["repository:ns/other:pull"]
    with pytest.raises(ImageNotFound, match="MANIFEST_UNKNOWN"):
        hook.get_manifest("ns/app:2.0")


def test_token_service_refusal_is_unauthorized(fake_registry: str, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = RegistryHook(_conn(monkeypatch, "ck_fake_badtoken", fake_registry, login=USER, password="nope"))
    with pytest.raises(RegistryUnauthorized, match="token service") as info:
        hook.resolve_digest("ns/app:1.0")
    assert "nope" not in str(info.value)


def test_basic_challenge_and_static_token(fake_registry: str, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = RegistryHook(_conn(monkeypatch, "ck_fake_basic", fake_registry, login=USER, password=PASSWORD))
    assert hook.resolve_digest("ns/basic:1.0") == DIGEST
    # a password without a username is sent as a ready-made bearer token
    token_hook = RegistryHook(
        _conn(monkeypatch, "ck_fake_static", fake_registry, password="tok:repository:ns/app:pull")
    )
    assert token_hook.resolve_digest("ns/app:1.0") == DIGEST
    with pytest.raises(RegistryUnauthorized):
        token_hook.resolve_digest("ns/other:1.0")


def test_rate_limit_carries_retry_after(fake_registry: str) -> None:
    with pytest.raises(RegistryRateLimited) as info:
        RegistryHook(None).get_manifest(f"{fake_registry}/ns/limited:1.0")
    assert info.value.retry_after == 7.0 and info.value.transient
    assert "retry after 7s" in str(info.value) and info.value.cause == "ImagePull:rate-limited"


def test_rate_limit_diagnosis_from_pin_image(fake_registry: str) -> None:
    from containerkit.diagnostics.model import ContainerTaskFailed
    from containerkit.hooks.preflight import pin_image

    with pytest.raises(ContainerTaskFailed) as info:
        pin_image(f"{fake_registry}/ns/limited:1.0", None)
    assert info.value.diagnosis.cause == "ImagePull:rate-limited"
    assert info.value.diagnosis.details["retry_after_seconds"] == "7"
