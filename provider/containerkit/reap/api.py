"""A small client for the task-instance endpoints of Airflow 3's public REST API (``/api/v2``).

The reaper asks the api-server, never the metadata DB: it runs where a worker or a cron job runs, with
a read-only API user. Every request has a timeout, and every failure becomes :class:`AirflowApiError`
with the setting to change, so a misconfigured reaper says so instead of removing anything.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from containerkit.errors import ContainerkitError

API_PREFIX = "/api/v2"
PAGE_SIZE = 100

# States in which a try is (or is about to be) running: its container or pod is in use.
LIVE_STATES = ("running", "deferred", "queued", "scheduled", "restarting")


class AirflowApiError(ContainerkitError):
    """The API could not be asked: the message names the setting and the fix."""


@dataclass(frozen=True)
class ApiSettings:
    """Where the api-server is and how to authenticate; ``source`` names where each came from.

    :param url: the api-server's base URL (``http://airflow-apiserver:8080``), without ``/api/v2``.
    :param token: a JWT (e.g. from ``POST /auth/token``); used as is when given.
    :param username: with ``password``: exchanged for a JWT at ``POST /auth/token``.
    :param timeout: seconds for each request (connect and read).
    :param names: setting -> how the user sets it (an option, env var or connection field), for messages.
    """

    url: str
    token: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 10.0
    names: Mapping[str, str] = field(default_factory=dict)

    def name(self, setting: str) -> str:
        return self.names.get(setting, setting)


def base_url(url: str) -> str:
    """The api-server's base URL: a trailing ``/`` or ``/api/v2`` the user copied is dropped."""
    url = url.strip().rstrip("/")
    if url.endswith(API_PREFIX):
        url = url[: -len(API_PREFIX)]
    return url


class AirflowApi:
    """Read task instances from the api-server (Airflow 3.x, ``/api/v2``)."""

    def __init__(self, settings: ApiSettings, session: requests.Session | None = None) -> None:
        if not settings.url:
            raise AirflowApiError(
                f"no Airflow API URL: set {settings.name('url')} to the api-server's base URL "
                "(e.g. http://airflow-apiserver:8080)"
            )
        if not settings.url.startswith(("http://", "https://")):
            raise AirflowApiError(
                f"{settings.name('url')}={settings.url!r} is not an http(s) URL: give the api-server's "
                "base URL, e.g. http://airflow-apiserver:8080"
            )
        self.settings = settings
        self.url = base_url(settings.url)
        self.session = session or requests.Session()
        self._token = settings.token

    # ------------------------------------------------------------------------------ transport

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        url = self.url + path
        try:
            return self.session.request(method, url, timeout=self.settings.timeout, **kwargs)
        except requests.Timeout:
            raise AirflowApiError(
                f"the Airflow API at {self.url} did not answer within {self.settings.timeout:g} s: check "
                f"that the api-server is up and {self.settings.name('url')} points at it, or raise "
                f"{self.settings.name('timeout')}"
            ) from None
        except requests.ConnectionError as exc:
            raise AirflowApiError(
                f"cannot reach the Airflow API at {self.url} ({_first_line(exc)}): check "
                f"{self.settings.name('url')} (the api-server's base URL, e.g. "
                "http://airflow-apiserver:8080) and that the api-server is running"
            ) from None
        except requests.RequestException as exc:
            raise AirflowApiError(
                f"request to the Airflow API at {url} failed ({type(exc).__name__}: {_first_line(exc)}): "
                f"check {self.settings.name('url')}"
            ) from None

    def login(self) -> str:
        """A JWT: the configured token, or one from ``POST /auth/token`` for username and password."""
        if self._token:
            return self._token
        s = self.settings
        if not (s.username and s.password):
            raise AirflowApiError(
                f"the Airflow API at {self.url} needs credentials: set {s.name('token')}, or "
                f"{s.name('username')} and {s.name('password')} (a user with read access to task "
                "instances; the viewer role is enough)"
            )
        response = self._send("POST", "/auth/token", json={"username": s.username, "password": s.password})
        if response.status_code in (401, 403):
            raise AirflowApiError(
                f"the Airflow API at {self.url} refused user {s.username!r} ({response.status_code} "
                f"{_detail(response)}): check {s.name('username')} and {s.name('password')}"
            )
        if response.status_code == 404:
            raise AirflowApiError(
                f"no login endpoint at {self.url}/auth/token (404): the auth manager in use does not "
                f"issue tokens for a username and password there; set {s.name('token')} to a JWT instead"
            )
        token = _json(response, self.url).get("access_token") if response.ok else None
        if not token:
            raise AirflowApiError(
                f"login at {self.url}/auth/token failed ({response.status_code} {_detail(response)}): "
                f"check {s.name('url')}, {s.name('username')} and {s.name('password')}"
            )
        self._token = str(token)
        return self._token

    def get(self, path: str, params: Any = None) -> dict[str, Any] | None:
        """``GET /api/v2<path>`` as JSON; None on the API's own 404. Auth errors name the setting to fix."""
        headers = {"Authorization": f"Bearer {self.login()}", "Accept": "application/json"}
        response = self._send("GET", API_PREFIX + path, params=params, headers=headers)
        if response.status_code == 404:
            body = _json_or_none(response)
            if isinstance(body, dict) and "detail" in body:
                return None  # the API's own "not found": the object does not exist
            raise AirflowApiError(self._not_airflow(response))
        if response.status_code in (401, 403):
            raise AirflowApiError(self._refused(response))
        if not response.ok:
            raise AirflowApiError(
                f"the Airflow API answered {response.status_code} {_detail(response)} for GET "
                f"{API_PREFIX}{path}: check the api-server's log"
            )
        return _json(response, self.url)

    def _not_airflow(self, response: requests.Response) -> str:
        return (
            f"no Airflow 3 REST API at {self.url}{API_PREFIX} ({response.status_code} {_detail(response)}): "
            f"set {self.settings.name('url')} to the api-server's base URL (Airflow 3.x; without /api/v2)"
        )

    def _refused(self, response: requests.Response) -> str:
        s = self.settings
        if response.status_code == 403 and "jwt" not in _detail(response).lower():
            who = f"user {s.username!r}" if s.username and not s.token else "the token's user"
            return (
                f"the Airflow API at {self.url} denied {who} access to task instances "
                f"({response.status_code} {_detail(response)}): give it a role that can read DAG runs "
                "and task instances (the viewer role is enough)"
            )
        if s.token:
            return (
                f"the Airflow API at {self.url} refused the token ({response.status_code} "
                f"{_detail(response)}): {s.name('token')} is expired or from another deployment; get a "
                f"new one with POST {self.url}/auth/token, or set {s.name('username')} and "
                f"{s.name('password')} instead"
            )
        return (
            f"the Airflow API at {self.url} refused the login token ({response.status_code} "
            f"{_detail(response)}): check that {s.name('url')} points at the api-server that issued it"
        )

    # ------------------------------------------------------------------------------ queries

    def version(self) -> str:
        """The Airflow version (``GET /api/v2/version``, no auth): checks the URL before logging in."""
        response = self._send("GET", API_PREFIX + "/version", headers={"Accept": "application/json"})
        body = _json_or_none(response) if response.ok else None
        version = str(body.get("version", "")) if isinstance(body, dict) else ""
        if response.status_code in (401, 403):
            # An api-server that wants auth even here: its errors name the setting to fix.
            return str((self.get("/version") or {}).get("version", "3"))
        if not version.startswith("3."):
            raise AirflowApiError(
                self._not_airflow(response)
                if not version
                else (
                    f"{self.url} runs Airflow {version}: containerkit reap needs Airflow 3.x (its /api/v2); "
                    f"check {self.settings.name('url')}"
                )
            )
        return version

    def check(self) -> str:
        """Version and credentials, before anything is listed or removed; returns the version."""
        version = self.version()
        self.get("/dags", params={"limit": "1"})  # the token or login, and read access
        return version

    def live_task_instances(self) -> Iterator[dict[str, Any]]:
        """Every task instance whose try is running or about to run, across all DAGs and runs."""
        offset = 0
        while True:
            params = [("state", s) for s in LIVE_STATES] + [
                ("limit", str(PAGE_SIZE)),
                ("offset", str(offset)),
                ("order_by", "id"),
            ]
            page = self.get("/dags/~/dagRuns/~/taskInstances", params=params) or {}
            items = page.get("task_instances") or []
            yield from items
            offset += len(items)
            if not items or offset >= int(page.get("total_entries") or 0):
                return

    def task_instances_of(self, dag_id: str, task_id: str, *, pages: int = 10) -> Iterator[dict[str, Any]]:
        """The task instances of one task across its DAG runs, newest first (at most ``pages`` pages)."""
        for page_number in range(pages):
            params = {"task_id": task_id, "limit": str(PAGE_SIZE), "offset": str(page_number * PAGE_SIZE)}
            page = self.get(
                f"/dags/{_q(dag_id)}/dagRuns/~/taskInstances", params={**params, "order_by": "-id"}
            )
            items = (page or {}).get("task_instances") or []
            yield from items
            if len(items) < PAGE_SIZE:
                return

    def task_instance(self, dag_id: str, run_id: str, task_id: str, map_index: int) -> dict[str, Any] | None:
        """One task instance (its state and current try number), or None when it does not exist."""
        path = f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}"
        if map_index >= 0:
            path += f"/{map_index}"
        return self.get(path)

    def dag_exists(self, dag_id: str) -> bool:
        return self.get(f"/dags/{_q(dag_id)}") is not None


def _q(part: str) -> str:
    return quote(part, safe="")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    # urllib3's messages nest the cause at the end: "... (Caused by NewConnectionError(...: [Errno 111] ...))"
    if "Errno" in text:
        text = "[Errno" + text.rsplit("[Errno", 1)[1].rstrip("')\" ")
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _json(response: requests.Response, url: str) -> dict[str, Any]:
    body = _json_or_none(response)
    if not isinstance(body, dict):
        raise AirflowApiError(
            f"{url} answered {response.status_code} with something that is not JSON: is it the api-server?"
        )
    return body


def _detail(response: requests.Response) -> str:
    body = _json_or_none(response)
    if isinstance(body, dict) and body.get("detail"):
        return str(body["detail"])[:200]
    return response.reason or ""


def settings_from_connection(conn_id: str, *, timeout: float = 10.0) -> ApiSettings:
    """:class:`ApiSettings` from an Airflow connection: host (and schema/port) is the api-server, login
    and password its user, or extra ``{"token": "..."}`` a JWT."""
    from airflow.sdk import Connection

    try:
        conn = Connection.get(conn_id)
    except Exception as exc:  # AirflowNotFoundException and the secrets backends' own errors
        raise AirflowApiError(
            f"no Airflow connection {conn_id!r} ({type(exc).__name__}): create it (type http; host = the "
            "api-server's base URL, login/password = a user with read access to task instances), e.g. "
            f"AIRFLOW_CONN_{conn_id.upper()}='http://USER:PASSWORD@airflow-apiserver:8080'"
        ) from None
    host = (conn.host or "").rstrip("/")
    if host and "://" not in host:
        scheme = next((s for s in (conn.schema, conn.conn_type) if s in ("http", "https")), "http")
        host = f"{scheme}://{host}" + (f":{conn.port}" if conn.port else "")
    elif host and conn.port and host.count(":") < 2:
        host = f"{host}:{conn.port}"
    extra = conn.extra_dejson if isinstance(conn.extra_dejson, dict) else {}
    where = f"connection {conn_id!r}"
    return ApiSettings(
        url=host,
        token=extra.get("token") or None,
        username=conn.login or None,
        password=conn.password or None,
        timeout=float(extra.get("timeout", timeout)),
        names={
            "url": f"the host of {where}",
            "token": f"the extra 'token' of {where}",
            "username": f"the login of {where}",
            "password": f"the password of {where}",
            "timeout": f"the extra 'timeout' of {where}",
        },
    )
