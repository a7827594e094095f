"""pin_image against real registries: the pinned reference, and fast typed failures."""

from __future__ import annotations

import json
import socket
import time

import pytest

from containerkit.diagnostics.model import ContainerTaskFailed
from containerkit.hooks.preflight import pin_image


def test_pin_image_anonymous_returns_the_engine_digest(pushed_app, plain_registry) -> None:
    assert pin_image(f"{pushed_app.plain}:1.0.1", None) == f"{pushed_app.plain}@{pushed_app.digest}"


def test_pin_image_through_a_connection_qualifies_a_bare_repository(pushed_app, auth_registry) -> None:
    assert pin_image("ck/app:1.0.0", auth_registry.conn_id) == f"{pushed_app.auth}@{pushed_app.digest}"


def test_pin_image_verifies_an_already_pinned_digest(pushed_app) -> None:
    pinned = f"{pushed_app.plain}@{pushed_app.digest}"
    assert pin_image(pinned, None) == pinned
    missing = "sha256:" + "0" * 64
    with pytest.raises(ContainerTaskFailed) as info:
        pin_image(f"{pushed_app.plain}@{missing}", None)
    assert info.value.diagnosis.cause == "ImagePull:not-found"


def test_pin_image_missing_tag_fails_fast_with_not_found(pushed_app) -> None:
    started = time.monotonic()
    with pytest.raises(ContainerTaskFailed) as info:
        pin_image(f"{pushed_app.plain}:9.9.9", None)
    assert time.monotonic() - started < 5
    diagnosis = info.value.diagnosis
    assert diagnosis.cause == "ImagePull:not-found"
    assert "9.9.9" in diagnosis.summary and "list_tags" in diagnosis.fix
    assert not diagnosis.transient


def test_pin_image_refused_credentials_are_unauthorized(pushed_app, auth_registry, monkeypatch) -> None:
    conn = {
        "conn_type": "containerkit_registry",
        "host": auth_registry.host,
        "login": auth_registry.username,
        "password": "wrong-password",
        "extra": {"ca_bundle": str(auth_registry.ca_file)},
    }
    monkeypatch.setenv("AIRFLOW_CONN_CK_TEST_REGISTRY_WRONG", json.dumps(conn))
    with pytest.raises(ContainerTaskFailed) as info:
        pin_image("ck/app:1.0.0", "ck_test_registry_wrong")
    diagnosis = info.value.diagnosis
    assert diagnosis.cause == "ImagePull:unauthorized"
    assert "ck_test_registry_wrong" in diagnosis.fix
    assert "wrong-password" not in str(info.value)


def test_pin_image_anonymous_on_a_private_registry_is_unauthorized(
    pushed_app, auth_registry, monkeypatch
) -> None:
    conn = {
        "conn_type": "containerkit_registry",
        "host": auth_registry.host,
        "extra": {"ca_bundle": str(auth_registry.ca_file)},
    }
    monkeypatch.setenv("AIRFLOW_CONN_CK_TEST_REGISTRY_ANON", json.dumps(conn))
    with pytest.raises(ContainerTaskFailed) as info:
        pin_image("ck/app:1.0.0", "ck_test_registry_anon")
    assert info.value.diagnosis.cause == "ImagePull:unauthorized"
    assert "registry_conn_id" in info.value.diagnosis.fix


def test_pin_image_unreachable_registry_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ContainerTaskFailed) as info:
        pin_image(f"127.0.0.1:{port}/ck/app:1.0.0", None)
    assert info.value.diagnosis.cause == "ImagePull:unreachable"
    assert info.value.diagnosis.transient
