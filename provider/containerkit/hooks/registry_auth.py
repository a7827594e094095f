"""Registry auth: one HTTP session per registry that answers the registry's challenge.

Bearer tokens (scoped per repository, from the realm the ``WWW-Authenticate`` challenge names) or
Basic; a password without a username is a ready-made bearer token; anonymous when there are no
credentials. Transport failures and refusals become the typed errors of :mod:`containerkit.hooks.errors`.
Where the registry is and who logs in comes from :mod:`containerkit.hooks.registry_connection`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin

import requests

from containerkit.diagnostics.causes import PullFailure, pull_failure_for_status
from containerkit.hooks.errors import (
    RegistryError,
    RegistryRateLimited,
    RegistryUnauthorized,
    RegistryUnreachable,
)
from containerkit.hooks.registry_connection import Credentials, RegistryEndpoint

_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class RegistrySession:
    """One registry's HTTP session with the challenge-driven auth state."""

    def __init__(
        self, endpoint: RegistryEndpoint, credentials: Credentials | None, describe_auth: str
    ) -> None:
        self.endpoint = endpoint
        self.credentials = credentials
        self.describe_auth = describe_auth
        self.http = requests.Session()
        # verify is passed per request: requests lets REQUESTS_CA_BUNDLE override a Session's verify.
        self.http.headers["User-Agent"] = "containerkit-registry-hook"
        self._tokens: dict[tuple[str, ...], str] = {}
        self._basic = False

    def _auth_header(self, scope: tuple[str, ...]) -> str | None:
        creds = self.credentials
        if creds is not None and creds.static_token:
            return f"Bearer {creds.static_token}"
        if scope in self._tokens:
            return f"Bearer {self._tokens[scope]}"
        if self._basic and creds is not None:
            raw = f"{creds.username}:{creds.password}".encode()
            return "Basic " + base64.b64encode(raw).decode()
        return None

    def request(
        self,
        method: str,
        url_or_path: str,
        *,
        image: str,
        scope: tuple[str, ...] = (),
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        url = urljoin(
            self.endpoint.base_url + "/", url_or_path.lstrip("/") if "://" not in url_or_path else url_or_path
        )
        for attempt in range(2):
            send = dict(headers or {})
            auth = self._auth_header(scope)
            if auth:
                send["Authorization"] = auth
            data = kwargs.get("data")
            if attempt and data is not None and hasattr(data, "seek"):
                data.seek(0)
            try:
                resp = self.http.request(
                    method,
                    url,
                    headers=send,
                    timeout=self.endpoint.timeout,
                    verify=self.endpoint.verify,
                    **kwargs,
                )
            except requests.exceptions.SSLError as exc:
                raise RegistryUnreachable(
                    image,
                    f"TLS handshake with {self.endpoint.base_url} failed ({short_error(exc)})",
                    "set the connection's ca_bundle to the CA that signed the registry certificate "
                    "(or scheme=http for a plain-HTTP registry)",
                ) from None
            except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
                raise RegistryUnreachable(
                    image,
                    f"registry {self.endpoint.base_url} is unreachable ({type(exc).__name__})",
                    "check the registry host/port and scheme in the connection, and the network path "
                    "(proxy, firewall, DNS) from the worker",
                ) from None
            if resp.status_code == 401 and attempt == 0 and self._answer_challenge(resp, scope, image):
                resp.close()
                continue
            return resp
        return resp

    def _answer_challenge(self, resp: requests.Response, scope: tuple[str, ...], image: str) -> bool:
        creds = self.credentials
        if creds is not None and creds.static_token:
            return False
        challenge = resp.headers.get("WWW-Authenticate", "")
        kind, _, params_text = challenge.partition(" ")
        params = dict(_CHALLENGE_PARAM.findall(params_text))
        if kind.lower() == "basic":
            if creds is None or self._basic:
                return False
            self._basic = True
            return True
        if kind.lower() != "bearer" or "realm" not in params:
            return False
        token = self._fetch_token(params, scope, image)
        self._tokens[scope] = token
        return True

    def _fetch_token(self, params: Mapping[str, str], scope: tuple[str, ...], image: str) -> str:
        query: list[tuple[str, str]] = []
        if "service" in params:
            query.append(("service", params["service"]))
        for item in scope or ((params["scope"],) if "scope" in params else ()):
            query.append(("scope", item))
        creds = self.credentials
        auth = (creds.username, creds.password) if creds is not None else None
        try:
            resp = self.http.get(
                params["realm"],
                params=query,
                auth=auth,
                timeout=self.endpoint.timeout,
                verify=self.endpoint.verify,
            )
        except requests.exceptions.RequestException as exc:
            raise RegistryUnreachable(
                image,
                f"token service {params['realm']} is unreachable ({type(exc).__name__})",
                "make the registry's token realm reachable from the worker",
            ) from None
        failure = pull_failure_for_status(resp.status_code)
        if failure is PullFailure.UNAUTHORIZED:
            raise RegistryUnauthorized(
                image,
                f"the token service of {self.endpoint.registry} refused {self.describe_auth} "
                f"(HTTP {resp.status_code})",
                "check the username and password/token of the registry connection",
                status=resp.status_code,
            )
        if failure is PullFailure.RATE_LIMITED:
            raise rate_limited(image, resp, self.endpoint.registry)
        if resp.status_code != 200:
            raise RegistryError(
                image, f"token service answered HTTP {resp.status_code}", "check the registry's token service"
            )
        body = resp.json()
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryError(image, "token service answered without a token", "check the token service")
        return str(token)


def short_error(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 160 else text[:157] + "..."


def error_codes(resp: requests.Response) -> str:
    try:
        errors = resp.json().get("errors") or []
        return ",".join(str(e.get("code")) for e in errors if isinstance(e, Mapping)) or "no error code"
    except ValueError:
        return "no error body"


def retry_after(resp: requests.Response) -> float | None:
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def rate_limited(image: str, resp: requests.Response, registry: str) -> RegistryRateLimited:
    seconds = retry_after(resp)
    when = f"retry after {seconds:.0f}s" if seconds is not None else "retry later"
    return RegistryRateLimited(
        image,
        f"registry {registry} rate-limited the request (HTTP 429, {when})",
        "authenticate with a registry connection (higher limits), mirror the image to a private "
        f"registry, or {when}",
        retry_after=seconds,
    )
