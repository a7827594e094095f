"""ImageHook on the real engine: build (API and BuildKit-secret paths), tag scheme, push, inspect, cleanup."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from containerkit.errors import SpecError
from containerkit.hooks.image import BUILT_BY_LABEL, ImageHook
from containerkit.hooks.image_tags import version_tags
from containerkit.hooks.registry import RegistryHook

BASE_IMAGE = os.environ.get("CONTAINERKIT_TEST_DEBIAN_IMAGE", "containerkit/base-debian:12")
TEST_LABEL = {"containerkit.test": "registry"}

DOCKERFILE = f"""\
FROM {BASE_IMAGE}
ARG APP_VERSION=0.0.0
LABEL org.opencontainers.image.version=$APP_VERSION
USER 10001:0
HEALTHCHECK --interval=30s CMD ["/bin/true"]
CMD ["/bin/echo", "hello"]
"""
SECRET_DOCKERFILE = f"""\
# syntax is the engine's built-in BuildKit frontend (no frontend image can be pulled here)
FROM {BASE_IMAGE}
RUN --mount=type=secret,id=ca sha256sum /run/secrets/ca | cut -d' ' -f1 > /ca.sha256
"""


@pytest.fixture(scope="module")
def image_hook(auth_registry, docker_client) -> ImageHook:
    hook = ImageHook(auth_registry.conn_id)
    yield hook
    hook.prune(TEST_LABEL)
    hook.remove_labeled(TEST_LABEL)
    leftovers = docker_client.images.list(filters={"label": "containerkit.test=registry", "dangling": True})
    assert not [i for i in leftovers if i.labels.get(BUILT_BY_LABEL)], "ImageHook left dangling images"


def _context(tmp_path: Path, dockerfile: str) -> Path:
    (tmp_path / "Dockerfile").write_text(dockerfile)
    return tmp_path


def test_build_with_build_args_tags_push_and_inspect(
    image_hook, auth_registry, tmp_path, test_images
) -> None:
    tags = version_tags(version="1.4.2", git_sha="0123456789abcdef0123", environments=["staging"])
    assert tags.all == ("1.4.2", "sha-0123456789ab", "staging") and tags.deployment_tag == "1.4.2"
    built = image_hook.build(
        _context(tmp_path, DOCKERFILE),
        repository="ck/hooked",
        tags=tags,
        build_args={"APP_VERSION": "1.4.2"},
        labels=TEST_LABEL,
    )
    repo = f"{auth_registry.host}/ck/hooked"
    assert built.references == tuple(f"{repo}:{t}" for t in tags.all)

    info = image_hook.inspect(built.references[0])
    assert info.id == built.id and set(built.references) <= set(info.tags)
    assert info.labels["org.opencontainers.image.version"] == "1.4.2"  # the build arg reached the build
    assert info.labels[BUILT_BY_LABEL] == "ImageHook" and info.labels["containerkit.test"] == "registry"
    assert info.user == "10001:0" and not info.runs_as_root
    assert info.healthcheck is not None and info.healthcheck["Test"] == ["CMD", "/bin/true"]
    base = image_hook.inspect(BASE_IMAGE)
    assert (info.size, info.layers) == (base.size, base.layers)  # metadata-only steps add no layer

    digest = image_hook.push(repo, tags)
    registry = RegistryHook(auth_registry.conn_id)
    assert {registry.resolve_digest(f"ck/hooked:{t}") for t in tags.all} == {digest}
    assert image_hook.inspect(built.id).digest_in(repo) == digest

    image_hook.remove(f"{repo}:staging")
    pulled = image_hook.pull(f"{repo}:staging")
    assert pulled.id == built.id and pulled.digest_in(repo) == digest


def test_rebuilt_tag_leaves_a_dangling_image_that_prune_removes(image_hook, tmp_path, docker_client) -> None:
    context = _context(tmp_path, DOCKERFILE)
    first = image_hook.build(
        context, repository="ck/rebuilt", tags=["1.0.0"], build_args={"APP_VERSION": "a"}, labels=TEST_LABEL
    )
    second = image_hook.build(
        context, repository="ck/rebuilt", tags=["1.0.0"], build_args={"APP_VERSION": "b"}, labels=TEST_LABEL
    )
    assert first.id != second.id
    assert image_hook.inspect(first.id).tags == ()  # dangling now
    assert first.id in image_hook.prune(TEST_LABEL)
    with pytest.raises(SpecError, match="no such local image"):
        image_hook.inspect(first.id)
    assert image_hook.inspect(second.id).tags  # the tagged one stays


def test_buildkit_ca_secret_is_used_but_not_stored(image_hook, tmp_path, docker_client) -> None:
    ca = tmp_path / "extra-ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nnot-a-real-ca\n-----END CERTIFICATE-----\n")
    context = _context(
        tmp_path / "ctx" if (tmp_path / "ctx").mkdir() is None else tmp_path, SECRET_DOCKERFILE
    )
    built = image_hook.build(
        context, repository="ck/with-ca", tags=["sha-abc1234"], ca_secret=ca, labels=TEST_LABEL
    )
    out = (
        docker_client.containers.run(
            built.id,
            ["/bin/sh", "-c", "cat /ca.sha256; ls /run/secrets 2>/dev/null | wc -l"],
            remove=True,
            labels=TEST_LABEL,
        )
        .decode()
        .split()
    )
    assert out == [hashlib.sha256(ca.read_bytes()).hexdigest(), "0"]


def test_latest_and_secret_build_args_are_refused(image_hook, tmp_path) -> None:
    with pytest.raises(SpecError, match="'latest' is never used"):
        image_hook.build(tmp_path, repository="ck/x", tags=["latest"])
    with pytest.raises(SpecError, match="build args are stored in the image history"):
        image_hook.build(tmp_path, repository="ck/x", tags=["1.0.0"], build_args={"NPM_TOKEN": "t"})
    with pytest.raises(SpecError, match="names registry"):
        image_hook.push("127.0.0.1:1/ck/x", ["1.0.0"])
