"""The one image-pull classifier (containerkit.diagnostics.causes) and the places that speak through it.

A DAG author who moves a task between the two operators, or turns the pre-flight on, matches on the
same suffix (``not-found``, ``unauthorized``, ``rate-limited``, ``unreachable``) with the same
transient flag, because there is one classifier. The prefixes differ on purpose: ``ImagePullBackOff:``
is the pod's state, ``ImagePull:`` the engine's pull or the pre-flight.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import docker.errors
import pytest
import requests

from containerkit.diagnostics.causes import (
    POD_PULL,
    PullFailure,
    classify_pull_error,
    pull_cause,
    pull_failure_for_status,
)
from containerkit.diagnostics.docker import diagnose_docker_error
from containerkit.diagnostics.kubernetes import diagnose_pod
from containerkit.hooks.errors import PULL_ERRORS, RegistryError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _load(kind: str, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / kind / f"{name}.json").read_text())
    return data


def _docker_error(name: str) -> tuple[Exception, str]:
    recorded = _load("docker", name)
    error = recorded["error"]
    response = requests.Response()
    response.status_code = error["status_code"]
    cls = getattr(docker.errors, error["class"])
    return cls(error["message"], response=response, explanation=error["explanation"]), recorded["where"]


# What registries, dockerd, containerd and the kubelet say: one row per wording the classifier knows.
MESSAGES = [
    ("toomanyrequests: You have reached your pull rate limit.", None, PullFailure.RATE_LIMITED),
    ("pull QPS exceeded", None, PullFailure.RATE_LIMITED),
    ("unexpected status from HEAD request: 429 Too Many Requests", None, PullFailure.RATE_LIMITED),
    ("failed to authorize: 401 Unauthorized", None, PullFailure.UNAUTHORIZED),
    ("no basic auth credentials", None, PullFailure.UNAUTHORIZED),
    ("denied: requested access to the resource is denied", None, PullFailure.UNAUTHORIZED),
    ("insufficient_scope: authorization failed", None, PullFailure.UNAUTHORIZED),
    ("Get https://r:5000/v2/: unauthorized: incorrect username or password", None, PullFailure.UNAUTHORIZED),
    ("registry said no", 403, PullFailure.UNAUTHORIZED),
    ("dial tcp: lookup registry.example.test: no such host", None, PullFailure.UNREACHABLE),
    ("dial tcp 10.0.0.1:443: connect: connection refused", None, PullFailure.UNREACHABLE),
    ("net/http: TLS handshake timeout", None, PullFailure.UNREACHABLE),
    ("rpc error: code = DeadlineExceeded desc = context deadline exceeded", None, PullFailure.UNREACHABLE),
    ("received unexpected HTTP status: 503 Service Unavailable", None, PullFailure.UNREACHABLE),
    ("manifest for app:1.0 not found: manifest unknown", None, PullFailure.NOT_FOUND),
    ("rpc error: code = NotFound desc = failed to resolve reference", None, PullFailure.NOT_FOUND),
    ("name unknown: repository name not known to registry", None, PullFailure.NOT_FOUND),
    ("something the registry said", 404, PullFailure.NOT_FOUND),
    ("the engine said something new", None, None),
    ("the engine said something new", 500, None),
]


@pytest.mark.parametrize(("text", "status", "expected"), MESSAGES)
def test_the_classifier_names_each_wording(
    text: str, status: int | None, expected: PullFailure | None
) -> None:
    assert classify_pull_error(text, status) is expected


def test_a_throttled_or_refused_pull_is_not_called_missing() -> None:
    # Registries hide private repositories behind 401 + "not found": the refusal wins, so the fix
    # (credentials) is the one that helps; a throttled request names the limit, not the tag.
    assert classify_pull_error("unauthorized: repository not found") is PullFailure.UNAUTHORIZED
    assert classify_pull_error("manifest not found", 401) is PullFailure.UNAUTHORIZED
    assert classify_pull_error("toomanyrequests: not found") is PullFailure.RATE_LIMITED


def test_statuses_and_transience() -> None:
    assert {s: pull_failure_for_status(s) for s in (200, 401, 403, 404, 429, 500, None)} == {
        200: None,
        401: PullFailure.UNAUTHORIZED,
        403: PullFailure.UNAUTHORIZED,
        404: PullFailure.NOT_FOUND,
        429: PullFailure.RATE_LIMITED,
        500: None,
        None: None,
    }
    assert {f for f in PullFailure if f.transient} == {PullFailure.RATE_LIMITED, PullFailure.UNREACHABLE}


@pytest.mark.parametrize("failure", list(PullFailure))
def test_every_speaker_uses_the_one_vocabulary(failure: PullFailure) -> None:
    """The recorded pod, the recorded engine error and the pre-flight's error name the same failure."""
    slug = failure.value.replace("-", "_")
    case = _load("kubernetes", f"image_pull_{slug}")
    kube = diagnose_pod(case["pod"], case["events"], case["logs"])
    exc, where = _docker_error(f"error_pull_{slug}")
    engine = diagnose_docker_error(exc, image="registry.example.test:5000/app:1.0", where=where)
    registry: type[RegistryError] = PULL_ERRORS[failure]

    assert classify_pull_error(str(getattr(exc, "explanation", exc)), None) is failure
    assert kube is not None
    assert (kube.cause, kube.transient) == (pull_cause(failure, POD_PULL), failure.transient)
    assert (engine.cause, engine.transient) == (pull_cause(failure), failure.transient)
    assert (registry.cause, registry.transient, registry.failure) == (
        pull_cause(failure),
        failure.transient,
        failure,
    )
