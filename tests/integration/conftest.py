"""Real distribution registries on 127.0.0.1 and tiny test images, for every integration test.

The registry hook tests (``registry/``) and the operators' pre-flight tests (Docker here, Kubernetes in
``kubernetes/``) share them; each fixture starts only when a test asks for it.

Each registry is Debian's ``docker-registry`` (CNCF distribution) started on a free port with its
own storage dir: ``plain`` (HTTP, anonymous), ``auth`` (HTTPS with a throwaway CA + htpasswd) and
``mirror`` (a second HTTP instance, the mirror target). Airflow connections for them come from
``AIRFLOW_CONN_*`` env vars, as a deployment would set them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"
TEST_LABEL = {"containerkit.test": "registry"}
BASE_IMAGE = os.environ.get("CONTAINERKIT_TEST_DEBIAN_IMAGE", "containerkit/base-debian:12")
USERNAME = "ck-robot"
PASSWORD = "s3cret-" + uuid.uuid4().hex[:12]


@dataclass
class RunningRegistry:
    host: str  # 127.0.0.1:<port>, as image references name it
    scheme: str
    conn_id: str
    process: subprocess.Popen[bytes]
    ca_file: Path | None = None
    username: str | None = None
    password: str | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_ca_and_cert(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 / localhost."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "containerkit test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = directory / "ca.crt", directory / "server.crt", directory / "server.key"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return ca_path, cert_path, key_path


def _start_registry(
    root: Path,
    name: str,
    *,
    tls: bool = False,
    htpasswd: bool = False,
    extra_env: dict[str, str] | None = None,
) -> RunningRegistry:
    if not Path(REGISTRY_BIN).exists():
        pytest.skip("docker-registry (Debian package) is not installed")
    workdir = root / name
    (workdir / "storage").mkdir(parents=True)
    port = _free_port()
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(workdir / "storage")},
            "delete": {"enabled": True},
        },
        "http": {"addr": f"127.0.0.1:{port}", "secret": uuid.uuid4().hex},
    }
    ca_file = None
    if tls:
        ca_file, cert, key = _write_ca_and_cert(workdir)
        config["http"] = {**config["http"], "tls": {"certificate": str(cert), "key": str(key)}}  # type: ignore[dict-item]
    if htpasswd:
        hashed = subprocess.run(
            ["htpasswd", "-Bbn", USERNAME, PASSWORD], check=True, capture_output=True, text=True
        ).stdout
        (workdir / "htpasswd").write_text(hashed)
        config["auth"] = {"htpasswd": {"realm": "containerkit-test", "path": str(workdir / "htpasswd")}}
    (workdir / "config.yml").write_text(json.dumps(config))  # JSON is YAML
    log = (workdir / "registry.log").open("wb")
    process = subprocess.Popen(
        [REGISTRY_BIN, "serve", str(workdir / "config.yml")],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **(extra_env or {})},
    )
    scheme = "https" if tls else "http"
    registry = RunningRegistry(
        host=f"127.0.0.1:{port}",
        scheme=scheme,
        conn_id=f"ck_test_registry_{name}",
        process=process,
        ca_file=ca_file,
        username=USERNAME if htpasswd else None,
        password=PASSWORD if htpasswd else None,
    )
    deadline = time.monotonic() + 15
    while True:
        try:
            resp = requests.get(f"{registry.url}/v2/", verify=str(ca_file) if ca_file else True, timeout=2)
            if resp.status_code in (200, 401):
                break
        except requests.RequestException:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(
                f"registry {name} did not start: {(workdir / 'registry.log').read_text()[-2000:]}"
            )
        time.sleep(0.1)
    extra: dict[str, object] = {"scheme": scheme}
    if ca_file:
        extra["ca_bundle"] = str(ca_file)
    conn = {"conn_type": "containerkit_registry", "host": registry.host, "extra": extra}
    if htpasswd:
        conn |= {"login": USERNAME, "password": PASSWORD}
    os.environ[f"AIRFLOW_CONN_{registry.conn_id.upper()}"] = json.dumps(conn)
    return registry


def _stop(registry: RunningRegistry) -> None:
    os.environ.pop(f"AIRFLOW_CONN_{registry.conn_id.upper()}", None)
    registry.process.terminate()
    try:
        registry.process.wait(5)
    except subprocess.TimeoutExpired:
        registry.process.kill()


@pytest.fixture(scope="session")
def registry_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("registries")


@pytest.fixture(scope="session")
def plain_registry(registry_root: Path) -> Iterator[RunningRegistry]:
    registry = _start_registry(registry_root, "plain")
    yield registry
    _stop(registry)


@pytest.fixture(scope="session")
def auth_registry(registry_root: Path) -> Iterator[RunningRegistry]:
    registry = _start_registry(registry_root, "auth", tls=True, htpasswd=True)
    yield registry
    _stop(registry)


@pytest.fixture(scope="session")
def mirror_registry(registry_root: Path) -> Iterator[RunningRegistry]:
    registry = _start_registry(registry_root, "mirror")
    yield registry
    _stop(registry)


def _context_tar(dockerfile: str, files: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in {"Dockerfile": dockerfile.encode(), **files}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


@dataclass
class TestImages:
    """Local images built for this session; every one carries the ``containerkit.test`` label."""

    client: object
    created: list[str]

    def build(self, variant: str) -> str:
        """A tiny image FROM the Debian base: a label, a file, a user, a healthcheck; returns its id."""
        import docker

        assert isinstance(self.client, docker.DockerClient)
        dockerfile = (
            f"FROM {BASE_IMAGE}\n"
            f'LABEL containerkit.test="registry" org.opencontainers.image.title="ck-{variant}"\n'
            f"COPY payload.txt /opt/payload-{variant}.txt\n"
            "USER 10001:0\n"
            "EXPOSE 8080/tcp\n"
            'HEALTHCHECK --interval=30s --timeout=3s CMD ["/bin/true"]\n'
            'ENTRYPOINT ["/bin/cat"]\n'
            f'CMD ["/opt/payload-{variant}.txt"]\n'
        )
        ctx = _context_tar(dockerfile, {"payload.txt": f"containerkit {variant}\n".encode()})
        image, _ = self.client.images.build(fileobj=ctx, custom_context=True, rm=True, labels=TEST_LABEL)
        self.created.append(image.id)
        return str(image.id)

    def push(
        self, image_id: str, repository: str, tag: str, auth_config: dict[str, str] | None = None
    ) -> str:
        """Tag and push with the real engine; returns the RepoDigest the engine reports."""
        import docker

        assert isinstance(self.client, docker.DockerClient)
        image = self.client.images.get(image_id)
        image.tag(repository, tag)
        self.created.append(f"{repository}:{tag}")
        for line in self.client.api.push(repository, tag, stream=True, decode=True, auth_config=auth_config):
            if "error" in line:
                raise RuntimeError(f"push {repository}:{tag} failed: {line['error']}")
        image.reload()
        digests = [d for d in image.attrs["RepoDigests"] if d.startswith(f"{repository}@")]
        assert digests, image.attrs["RepoDigests"]
        return str(digests[0].split("@", 1)[1])


@pytest.fixture(scope="session")
def test_images(docker_client: object) -> Iterator[TestImages]:
    import docker

    assert isinstance(docker_client, docker.DockerClient)
    try:
        docker_client.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        msg = f"{BASE_IMAGE} missing: run docker/airgap/build-bases.sh"
        if os.environ.get("CONTAINERKIT_REQUIRE_DOCKER") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    images = TestImages(docker_client, [])
    yield images
    for ref in reversed(images.created):
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(ref, force=True)


@dataclass
class PushedApp:
    """``ck/app`` pushed by the engine to the plain registry (three tags) and the auth registry."""

    image_id: str
    plain: str  # 127.0.0.1:<port>/ck/app
    auth: str
    digest: str  # the engine's RepoDigest in both registries
    tags: tuple[str, ...]


@pytest.fixture(scope="session")
def pushed_app(
    test_images: TestImages, plain_registry: RunningRegistry, auth_registry: RunningRegistry
) -> PushedApp:
    image_id = test_images.build("app")
    plain, auth = f"{plain_registry.host}/ck/app", f"{auth_registry.host}/ck/app"
    tags = ("1.0.0", "1.0.1", "1.0.2")
    digests = {test_images.push(image_id, plain, tag) for tag in tags}
    credentials = {"username": USERNAME, "password": PASSWORD}
    digests.add(test_images.push(image_id, auth, "1.0.0", auth_config=credentials))
    assert len(digests) == 1, digests
    return PushedApp(image_id, plain, auth, digests.pop(), tags)
