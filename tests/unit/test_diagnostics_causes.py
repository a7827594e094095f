"""One vocabulary for image pull failures: Kubernetes, Docker and the registry pre-flight agree.

A DAG author who moves a task between the two operators, or turns the pre-flight on, matches on the
same suffix (``not-found``, ``unauthorized``, ``rate-limited``, ``unreachable``) with the same
transient flag. The prefixes differ on purpose: ``ImagePullBackOff:`` is the pod's state,
``ImagePull:`` the engine's pull or the pre-flight.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import docker.errors
import pytest
import requests

from containerkit.diagnostics.docker import diagnose_docker_error
from containerkit.diagnostics.kubernetes import diagnose_pod
from containerkit.hooks.errors import (
    ImageNotFound,
    RegistryError,
    RegistryRateLimited,
    RegistryUnauthorized,
    RegistryUnreachable,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

CASES = {
    "not-found": ImageNotFound,
    "unauthorized": RegistryUnauthorized,
    "rate-limited": RegistryRateLimited,
    "unreachable": RegistryUnreachable,
}


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


@pytest.mark.parametrize("suffix", list(CASES))
def test_image_pull_causes_share_suffix_and_transience(suffix: str) -> None:
    slug = suffix.replace("-", "_")
    case = _load("kubernetes", f"image_pull_{slug}")
    kube = diagnose_pod(case["pod"], case["events"], case["logs"])
    exc, where = _docker_error(f"error_pull_{slug}")
    engine = diagnose_docker_error(exc, image="registry.example.test:5000/app:1.0", where=where)
    registry: type[RegistryError] = CASES[suffix]

    assert kube is not None
    assert kube.cause == f"ImagePullBackOff:{suffix}"
    assert engine.cause == f"ImagePull:{suffix}"
    assert registry.cause == f"ImagePull:{suffix}"
    assert kube.transient is engine.transient is registry.transient
