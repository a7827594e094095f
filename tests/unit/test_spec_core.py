"""ContainerSpec construction: input forms, normalisation and the defaults that come from presets/profiles."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from containerkit.errors import SpecError
from containerkit.spec import (
    RESOURCE_PRESETS,
    ConfigMapRef,
    Container,
    ContainerSpec,
    EmptyDir,
    EnvVar,
    ImageRef,
    Resources,
    SecretRef,
    SecurityProfile,
    VolumeMount,
)

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("reference", "registry", "repository", "tag", "digest"),
    [
        ("python:3.11-slim", None, "python", "3.11-slim", None),
        ("apache/airflow:3.0.2", None, "apache/airflow", "3.0.2", None),
        ("localhost:5000/team/app:1", "localhost:5000", "team/app", "1", None),
        ("registry.example.com/a/b/c:v1.2_3", "registry.example.com", "a/b/c", "v1.2_3", None),
        (f"ghcr.io/org/app@{DIGEST}", "ghcr.io", "org/app", None, DIGEST),
        (f"app:latest@{DIGEST}", None, "app", "latest", DIGEST),
        ("[::1]:5000/app:2", "[::1]:5000", "app", "2", None),
        ("my_org/app__x:1", None, "my_org/app__x", "1", None),
    ],
)
def test_image_reference_grammar(
    reference: str, registry: str, repository: str, tag: str, digest: str
) -> None:
    ref = ImageRef.parse(reference)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    assert str(ref) == reference
    assert ref.pinned_by_digest == (digest is not None)


def test_image_domain_defaults_to_docker_hub_only_when_absent() -> None:
    assert ImageRef.parse("team/app:1").domain == "docker.io"
    assert ImageRef.parse("quay.io/team/app:1").domain == "quay.io"


def test_defaults_come_from_the_default_preset_and_restricted_profile() -> None:
    spec = ContainerSpec("python:3.11-slim")
    assert spec.resources == RESOURCE_PRESETS["s"]
    assert spec.security == SecurityProfile.restricted()
    assert spec.security.run_as_user == 50000 and spec.security.run_as_group == 0
    assert spec.security.read_only_root_filesystem and spec.security.drop_capabilities == ("ALL",)
    assert not spec.security.automount_service_account_token


def test_presets_keep_memory_limit_equal_to_request_and_grow_monotonically() -> None:
    previous = None
    for name in ("xs", "s", "m", "l", "xl"):
        preset = RESOURCE_PRESETS[name]
        assert preset.memory_request == preset.memory_limit
        if previous is not None:
            assert preset.memory_limit_bytes > previous.memory_limit_bytes
            assert preset.cpu_limit_nano > previous.cpu_limit_nano
        previous = preset


def test_convenient_input_forms_are_normalised() -> None:
    spec = ContainerSpec(
        "python:3.11-slim",
        command=["python", "-m", "job"],
        env={"MODE": "batch"},
        resources={"preset": "m", "memory": "3Gi"},
        security="baseline",
        mounts={"scratch": "/scratch"},
        volumes=[EmptyDir("scratch")],
    )
    assert isinstance(spec.image, ImageRef)
    assert spec.command == ("python", "-m", "job")
    assert spec.env == (EnvVar("MODE", "batch"),)
    assert spec.resources.memory_request == spec.resources.memory_limit == "3Gi"
    assert spec.resources.cpu_limit == RESOURCE_PRESETS["m"].cpu_limit
    assert spec.security.level == "baseline" and spec.security.run_as_user is None
    assert spec.mounts == (VolumeMount("scratch", "/scratch"),)


def test_explicit_requests_and_limits_and_gpu() -> None:
    res = Resources.coerce(
        {
            "preset": "l",
            "requests": {"cpu": "1500m"},
            "limits": {"cpu": 3, "ephemeral-storage": "10Gi"},
            "gpu": 1,
        }
    )
    assert res.cpu_request == "1500m" and res.cpu_limit == "3" and res.ephemeral_storage_limit == "10Gi"
    assert res.requests["nvidia.com/gpu"] == res.limits["nvidia.com/gpu"] == "1"
    assert res.cpu_limit_nano == 3_000_000_000


def test_spec_is_immutable_and_replace_revalidates() -> None:
    spec = ContainerSpec("python:3.11-slim")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.image = "other:1"  # type: ignore[misc]
    assert spec.replace(resources="xl").resources == RESOURCE_PRESETS["xl"]
    with pytest.raises(SpecError, match="latest"):
        spec.replace(image="python:latest")


def test_spec_survives_deepcopy_as_airflow_does_with_operator_arguments() -> None:
    spec = ContainerSpec("python:3.11-slim", env={"A": "1"}, labels={"team": "data"})
    assert copy.deepcopy(spec) == spec


def test_image_user_sets_the_restricted_uid_and_group() -> None:
    assert SecurityProfile.for_image_user("1000:1000").run_as_user == 1000
    assert SecurityProfile.for_image_user("1000:1000").fs_group == 1000
    assert SecurityProfile.for_image_user("1001").run_as_group == 0


def test_unrestricted_profile_keeps_its_reason() -> None:
    profile = SecurityProfile.unrestricted(reason="needs FUSE for a legacy mount", privileged=True)
    assert profile.level == "privileged" and profile.privileged
    assert profile.reason == "needs FUSE for a legacy mount"


def test_secret_and_configmap_references_and_public_env_escape() -> None:
    spec = ContainerSpec(
        "python:3.11-slim",
        env=[EnvVar("TOKEN_AUDIENCE", "api", not_secret=True)],
        secrets=[
            SecretRef("db", "password", path="/run/secrets/db/password"),
            SecretRef("api", "token", env="TOKEN"),
        ],
        config_maps=[ConfigMapRef("settings", "mode", env="MODE")],
        sidecars=[Container("proxy", "envoy:1.29", secrets=[SecretRef("db", "ca", path="/run/ca.pem")])],
    )
    volumes = spec.file_volumes()
    assert [v for v, _ in volumes] == ["secret-db", "secret-db"]
    assert {r.key for _, r in volumes} == {"password", "ca"}


def test_env_name_that_refers_to_a_secret_may_hold_a_literal() -> None:
    spec = ContainerSpec("python:3.11-slim", env={"DB_PASSWORD_FILE": "/run/secrets/db/password"})
    assert spec.env[0].value == "/run/secrets/db/password"
