"""RegistryHook against real distribution registries, with images pushed by the real engine."""

from __future__ import annotations

import base64
import json
import pickle

import docker
import pytest
import requests

from containerkit.hooks.errors import ImageNotFound, RegistryUnauthorized, RegistryUnreachable
from containerkit.hooks.manifest import DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, sha256_digest
from containerkit.hooks.registry import RegistryHook


def test_tag_resolves_to_the_digest_the_engine_reports(pushed_app, auth_registry) -> None:
    anonymous = RegistryHook(None)
    for tag in pushed_app.tags:
        assert anonymous.resolve_digest(f"{pushed_app.plain}:{tag}") == pushed_app.digest
    hook = RegistryHook(auth_registry.conn_id)
    assert hook.resolve_digest("ck/app:1.0.0") == pushed_app.digest
    manifest = hook.get_manifest("ck/app:1.0.0")
    assert manifest.media_type == DOCKER_MANIFEST and not manifest.is_index
    assert sha256_digest(manifest.raw) == pushed_app.digest


def test_list_tags_follows_pagination(pushed_app, plain_registry) -> None:
    hook = RegistryHook(None, registry=plain_registry.host)
    assert sorted(hook.list_tags("ck/app", page_size=1)) == sorted(pushed_app.tags)
    assert sorted(hook.list_tags(pushed_app.plain)) == sorted(pushed_app.tags)


def test_config_fields_match_the_engine_inspect(pushed_app, docker_client) -> None:
    config = RegistryHook(None).get_config(f"{pushed_app.plain}:1.0.0")
    engine = docker_client.images.get(pushed_app.image_id).attrs
    assert config.digest == engine["Id"]  # the config blob digest is the engine's image id
    assert config.user == engine["Config"]["User"] == "10001:0"
    assert not config.runs_as_root
    assert config.entrypoint == ("/bin/cat",) and config.cmd == ("/opt/payload-app.txt",)
    assert config.labels["containerkit.test"] == "registry"
    assert config.labels == engine["Config"]["Labels"]
    assert config.exposed_ports == ("8080/tcp",)
    assert config.healthcheck is not None and config.healthcheck["Test"] == ["CMD", "/bin/true"]
    assert config.created == engine["Created"]
    assert (config.os, config.architecture) == (engine["Os"], engine["Architecture"])


def test_compressed_size_is_what_a_pull_downloads(pushed_app, docker_client) -> None:
    hook = RegistryHook(None)
    manifest = hook.get_manifest(f"{pushed_app.plain}:1.0.0")
    downloaded = 0
    for layer in manifest.layers:  # independent of the descriptors: the blobs' own lengths
        resp = requests.head(f"http://{manifest.image.registry}/v2/ck/app/blobs/{layer.digest}", timeout=5)
        downloaded += int(resp.headers["Content-Length"])
    size = hook.compressed_size(f"{pushed_app.plain}:1.0.0")
    assert size == downloaded
    assert 0 < size < docker_client.images.get(pushed_app.image_id).attrs["Size"]  # gzip < unpacked


def test_missing_tag_and_repository_are_not_found(pushed_app, plain_registry) -> None:
    hook = RegistryHook(None)
    assert hook.image_exists(f"{pushed_app.plain}:1.0.0")
    assert not hook.image_exists(f"{pushed_app.plain}:0.0.0")
    with pytest.raises(ImageNotFound, match=r"ck/nothing-here.*Fix: check the repository"):
        hook.get_manifest(f"{plain_registry.host}/ck/nothing-here:1.0.0")
    with pytest.raises(ImageNotFound):
        hook.list_tags(f"{plain_registry.host}/ck/nothing-here")


def test_wrong_password_and_anonymous_access_are_unauthorized(pushed_app, auth_registry, monkeypatch) -> None:
    base = {"conn_type": "containerkit_registry", "host": f"https://{auth_registry.host}"}
    base["extra"] = {"ca_bundle": auth_registry.ca_file.read_text()}  # PEM text works as well as a path
    monkeypatch.setenv(
        "AIRFLOW_CONN_CK_TEST_REGISTRY_BADPW",
        json.dumps(base | {"login": auth_registry.username, "password": "not-it"}),
    )
    monkeypatch.setenv("AIRFLOW_CONN_CK_TEST_REGISTRY_NOCREDS", json.dumps(base))
    with pytest.raises(RegistryUnauthorized) as bad:
        RegistryHook("ck_test_registry_badpw").resolve_digest("ck/app:1.0.0")
    assert bad.value.status == 401 and "not-it" not in str(bad.value)
    with pytest.raises(RegistryUnauthorized, match="registry_conn_id"):
        RegistryHook("ck_test_registry_nocreds").get_manifest("ck/app:1.0.0")
    ok, message = RegistryHook("ck_test_registry_badpw").test_connection()
    assert not ok and "refused" in message
    ok, message = RegistryHook(auth_registry.conn_id).test_connection()
    assert ok, message


def test_tls_without_the_private_ca_names_the_fix(auth_registry, monkeypatch) -> None:
    conn = {"conn_type": "containerkit_registry", "host": auth_registry.host, "login": "u", "password": "p"}
    monkeypatch.setenv("AIRFLOW_CONN_CK_TEST_REGISTRY_NOCA", json.dumps(conn))
    with pytest.raises(RegistryUnreachable, match="ca_bundle"):
        RegistryHook("ck_test_registry_noca").resolve_digest("ck/app:1.0.0")


def test_connection_for_another_registry_is_refused_before_sending_credentials(auth_registry) -> None:
    with pytest.raises(ValueError, match="connection 'ck_test_registry_auth' is for"):
        RegistryHook(auth_registry.conn_id).resolve_digest("127.0.0.1:1/ck/app:1.0.0")


def test_multi_arch_index_resolves_per_platform(pushed_app, test_images, plain_registry) -> None:
    """An OCI index and a Docker manifest list assembled from two pushed image manifests."""
    other_id = test_images.build("arm-stand-in")
    other_digest = test_images.push(other_id, pushed_app.plain, "arm-stand-in")
    hook = RegistryHook(None)
    amd = hook.get_manifest(f"{pushed_app.plain}@{pushed_app.digest}")
    arm = hook.get_manifest(f"{pushed_app.plain}@{other_digest}")
    for media_type, tag in ((OCI_INDEX, "multi-oci"), (DOCKER_MANIFEST_LIST, "multi-docker")):
        entries = [
            {"mediaType": m.media_type, "digest": m.digest, "size": len(m.raw), "platform": p}
            for m, p in (
                (amd, {"os": "linux", "architecture": "amd64"}),
                (arm, {"os": "linux", "architecture": "arm64", "variant": "v8"}),
            )
        ]
        raw = json.dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": entries}).encode()
        index_digest = hook.put_manifest(f"{pushed_app.plain}:{tag}", raw, media_type)
        ref = f"{pushed_app.plain}:{tag}"
        index = hook.get_manifest(ref)
        assert index.is_index and index.media_type == media_type and index.digest == index_digest
        assert [str(p) for p in index.platforms] == ["linux/amd64", "linux/arm64/v8"]
        assert hook.resolve_digest(ref) == index_digest
        assert hook.resolve_digest(ref, platform="linux/amd64") == pushed_app.digest
        assert hook.resolve_digest(ref, platform="linux/arm64") == other_digest
        assert hook.get_config(ref, platform="linux/arm64/v8").labels["org.opencontainers.image.title"] == (
            "ck-arm-stand-in"
        )
        assert hook.compressed_size(ref, platform="linux/arm64") == arm.compressed_size
        with pytest.raises(
            ImageNotFound, match=r"no linux/s390x manifest \(platforms: linux/amd64, linux/arm64"
        ):
            hook.resolve_digest(ref, platform="linux/s390x")
        assert hook.check_pullable(ref) == index_digest


def test_pull_secret_payload_is_accepted_by_the_engine(pushed_app, auth_registry, docker_client) -> None:
    secret = RegistryHook(auth_registry.conn_id).pull_secret()
    assert auth_registry.password not in repr(secret) and auth_registry.password not in str(secret)
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    v1 = secret.to_v1_secret("registry-pull", "airflow-tasks")
    assert v1.type == "kubernetes.io/dockerconfigjson"
    config = json.loads(base64.b64decode(v1.data[".dockerconfigjson"]))
    entry = config["auths"][auth_registry.host]
    assert base64.b64decode(entry["auth"]).decode() == f"{auth_registry.username}:{auth_registry.password}"

    ref = f"{pushed_app.auth}:1.0.0"
    docker_client.images.remove(ref)  # the tag only; the pull must go through the registry
    with pytest.raises(docker.errors.APIError):
        docker_client.images.pull(ref, auth_config={"username": entry["username"], "password": "wrong"})
    pulled = docker_client.images.pull(
        ref, auth_config={"username": entry["username"], "password": entry["password"]}
    )
    assert f"{pushed_app.auth}@{pushed_app.digest}" in pulled.attrs["RepoDigests"]
