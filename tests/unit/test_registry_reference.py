"""Image references, platforms, version tags and pull-secret payloads: the pure parts of the hooks."""

from __future__ import annotations

import base64
import json
import pickle

import pytest

from containerkit.errors import SpecError
from containerkit.hooks.image_reference import ImageName, is_loopback_host
from containerkit.hooks.image_tags import check_tag, version_tags
from containerkit.hooks.manifest import ImageConfig, Platform
from containerkit.hooks.pull_secret import DockerConfigJson

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("python:3.11-slim", "docker.io", "library/python", "3.11-slim", None),
        ("bitnami/redis", "docker.io", "bitnami/redis", None, None),
        ("docker.io/python", "docker.io", "library/python", None, None),
        ("localhost:5000/app", "localhost:5000", "app", None, None),
        ("127.0.0.1:5000/team/app:1.0.0", "127.0.0.1:5000", "team/app", "1.0.0", None),
        (f"ghcr.io/o/r:v1@{DIGEST}", "ghcr.io", "o/r", "v1", DIGEST),
        (f"registry.example.com/a/b/c@{DIGEST}", "registry.example.com", "a/b/c", None, DIGEST),
    ],
)
def test_reference_grammar(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    name = ImageName.parse(text)
    assert (name.registry, name.repository, name.tag, name.digest) == (registry, repository, tag, digest)
    assert str(name) == text
    assert (
        name.pinned(DIGEST)
        == f"{text.split('@')[0].rsplit(':', 1)[0] if tag else text.split('@')[0]}@{DIGEST}"
    )


@pytest.mark.parametrize(
    "bad", ["", "UPPER/case", "app:", "app@sha256:abc", "a//b", "-app", "app:tag with space"]
)
def test_bad_references_name_the_field_and_fix(bad: str) -> None:
    with pytest.raises(SpecError) as info:
        ImageName.parse(bad)
    assert info.value.field == "image" and "Fix:" in str(info.value)


def test_loopback_registries() -> None:
    assert is_loopback_host("127.0.0.1:5000") and is_loopback_host("localhost:5000")
    assert not is_loopback_host("registry.example.com") and not is_loopback_host("10.0.0.1:5000")


def test_platform_matching() -> None:
    arm = Platform.parse("linux/arm64")
    assert arm.matches(Platform("linux", "arm64", "v8")) and Platform.parse("linux/arm64/v8").matches(arm)
    assert not Platform.parse("linux/arm/v7").matches(Platform("linux", "arm", "v6"))
    assert not Platform.parse("linux/amd64").matches(arm)
    with pytest.raises(SpecError, match="os/arch"):
        Platform.parse("amd64")


def test_image_config_root_detection_and_no_env() -> None:
    blob = {"os": "linux", "architecture": "amd64", "config": {"User": "0:0", "Env": ["TOKEN=x"]}}
    config = ImageConfig.from_blob(DIGEST, blob)
    assert config.runs_as_root and "TOKEN" not in repr(config)
    assert not ImageConfig.from_blob(DIGEST, {"config": {"User": "app"}}).runs_as_root


def test_version_tags_scheme() -> None:
    tags = version_tags(version="v2.3.4+build.7", git_sha="ABCDEF0123456789", environments=["prod", "prod"])
    assert tags.immutable == ("2.3.4_build.7", "sha-abcdef012345") and tags.moving == ("prod",)
    assert version_tags(version="1.2.3", minor_aliases=True).moving == ("1.2", "1")
    assert version_tags(version="1.2.3-rc.1", minor_aliases=True).moving == ()  # pre-releases move nothing
    with pytest.raises(SpecError, match="immutable"):
        version_tags(environments=["prod"])
    with pytest.raises(SpecError, match="semantic version"):
        version_tags(version="1.2")
    with pytest.raises(SpecError, match="'latest' is never used"):
        version_tags(version="1.0.0", environments=["latest"])
    with pytest.raises(SpecError, match="'latest'"):
        check_tag("LATEST")


def test_pull_secret_payload_and_redaction() -> None:
    secret = DockerConfigJson("registry.example.com:5000", "robot", "pa55word", "ops@example.com")
    assert "pa55word" not in repr(secret) and "pa55word" not in str(secret) and "pa55word" not in f"{secret}"
    with pytest.raises(TypeError, match="not serializable"):
        pickle.dumps(secret)
    doc = json.loads(base64.b64decode(secret.secret_data()[".dockerconfigjson"]))
    entry = doc["auths"]["registry.example.com:5000"]
    assert base64.b64decode(entry["auth"]) == b"robot:pa55word" and entry["email"] == "ops@example.com"
    hub = DockerConfigJson("docker.io", "u", "p")
    assert list(json.loads(hub.to_json())["auths"]) == ["https://index.docker.io/v1/"]
    v1 = secret.to_v1_secret("pull", "ns")
    assert v1.type == "kubernetes.io/dockerconfigjson" and v1.metadata.namespace == "ns"
