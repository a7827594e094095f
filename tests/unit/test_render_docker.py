"""Docker rendering: docker-py settings from the spec, the policy view, and a real run on the engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
import pytest

from containerkit.docker.run_settings import REDACTED, render_docker
from containerkit.errors import SpecError
from containerkit.spec import (
    Container,
    ContainerSpec,
    EmptyDir,
    PersistentVolumeClaimVolume,
    Probe,
    Probes,
    ProjectedVolume,
    SecretRef,
    SecretVolume,
    SecurityProfile,
    VolumeMount,
)

TEST_LABEL = {"containerkit.test": "spec"}


def test_restricted_defaults_become_docker_hardening() -> None:
    settings = render_docker(ContainerSpec("python:3.11-slim", resources="m"))
    kwargs = settings.host_config_kwargs()
    assert settings.user == "50000:0"
    assert kwargs["read_only"] is True and kwargs["cap_drop"] == ["ALL"] and "cap_add" not in kwargs
    assert kwargs["security_opt"] == ["no-new-privileges"] and kwargs["privileged"] is False
    assert kwargs["tmpfs"] == {"/tmp": "rw,nosuid,nodev,size=268435456,mode=1777"}
    assert kwargs["mem_limit"] == kwargs["memswap_limit"] == 1024**3 and "mem_reservation" not in kwargs
    assert kwargs["nano_cpus"] == 1_000_000_000 and kwargs["pids_limit"] == 1024 and kwargs["init"] is True
    assert kwargs["log_config"]["Config"] == {"max-size": "10m", "max-file": "3"}


def test_host_config_kwargs_are_accepted_by_docker_py() -> None:
    settings = render_docker(
        ContainerSpec(
            "python:3.11-slim",
            resources={"preset": "s", "requests": {"memory": "256Mi"}, "gpu": 1},
            volumes=[EmptyDir("scratch", size_limit="64Mi"), PersistentVolumeClaimVolume("data", "etl-data")],
            mounts=[VolumeMount("scratch", "/scratch"), VolumeMount("data", "/data")],
        )
    )
    host_config = docker.APIClient(version="1.41").create_host_config(**settings.host_config_kwargs())
    assert host_config["ReadonlyRootfs"] is True and host_config["CapDrop"] == ["ALL"]
    assert host_config["MemoryReservation"] == 256 * 1024**2 and host_config["MemorySwap"] == 512 * 1024**2
    assert host_config["DeviceRequests"][0]["Count"] == 1
    mounts = {m["Target"]: m for m in host_config["Mounts"]}
    assert (
        mounts["/scratch"]["Type"] == "tmpfs"
        and mounts["/scratch"]["TmpfsOptions"]["SizeBytes"] == 64 * 1024**2
    )
    assert mounts["/data"] == {"Target": "/data", "Source": "etl-data", "Type": "volume", "ReadOnly": False}


def test_policy_data_is_plain_and_redacts_secret_env(tmp_path: Path) -> None:
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "token").write_text("s3cr3t-value\n")
    spec = ContainerSpec(
        "python:3.11-slim",
        command=["python"],
        args=["-m", "job"],
        env={"MODE": "x"},
        secrets=[
            SecretRef("api", "token", env="API_TOKEN"),
            SecretRef("api", "token", path="/run/secrets/token"),
        ],
    )
    settings = render_docker(spec, secrets_dir=tmp_path)
    data = settings.as_policy_data()
    assert data["environment"] == {"MODE": "x", "API_TOKEN": REDACTED}
    assert data["image"] == "python:3.11-slim" and data["user"] == "50000:0"
    assert data["entrypoint"] == ["python"] and data["command"] == ["-m", "job"]
    assert data["mounts"] == [
        {
            "Target": "/run/secrets/token",
            "Source": str(tmp_path / "api" / "token"),
            "Type": "bind",
            "ReadOnly": True,
        }
    ]
    assert data["log_config"] == {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3"}}
    assert "s3cr3t" not in repr(data) and "s3cr3t" not in repr(settings)
    assert settings.runtime_environment()["API_TOKEN"] == "s3cr3t-value"


def test_policy_data_passes_the_docker_run_rules() -> None:
    """The policy view is exactly what the DockerRun rules read: restricted defaults raise no error."""
    from containerkit.policy.engine import evaluate_docker_run

    data = render_docker(ContainerSpec("python:3.11-slim")).as_policy_data()
    assert [f.rule_id for f in evaluate_docker_run(data) if f.severity.value == "error"] == []
    weakened = render_docker(
        ContainerSpec("python:3.11-slim", security=SecurityProfile.baseline(run_as_user=0))
    ).as_policy_data()
    assert {"DKR-001", "DKR-002"} <= {f.rule_id for f in evaluate_docker_run(weakened)}


@pytest.mark.parametrize(
    ("spec_kwargs", "render_kwargs", "message"),
    [
        ({"secrets": [SecretRef("db", "pw", path="/run/pw")]}, {}, "Docker has no Secret store"),
        ({"sidecars": [Container("proxy", "envoy:1")]}, {}, "a Docker task is one container"),
        (
            {"volumes": [ProjectedVolume("p", (SecretVolume("x", "tls"),))], "mounts": {"p": "/p"}},
            {"secrets_dir": "/srv/secrets"},
            "projected volumes have no Docker equivalent",
        ),
        ({"probes": Probes(liveness=Probe.http("/h", 80))}, {}, "healthchecks run a command"),
        (
            {"secrets": [SecretRef("db", "pw", path="/run/pw")]},
            {"secrets_dir": "relative"},
            "absolute host path",
        ),
    ],
)
def test_docker_refuses_what_it_cannot_run(
    spec_kwargs: dict[str, Any], render_kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(SpecError, match=message):
        render_docker(ContainerSpec("python:3.11-slim", **spec_kwargs), **render_kwargs)


def test_exec_liveness_probe_becomes_a_healthcheck() -> None:
    spec = ContainerSpec("python:3.11-slim", probes=Probes(liveness=Probe.exec("true", period_seconds=5)))
    assert render_docker(spec).healthcheck == {
        "test": ["CMD", "true"],
        "interval": 5_000_000_000,
        "timeout": 2_000_000_000,
        "retries": 3,
        "start_period": 0,
    }


def test_unrestricted_profile_is_rendered_as_asked() -> None:
    profile = SecurityProfile.unrestricted(
        reason="debug", privileged=True, host_network=True, seccomp="Unconfined"
    )
    kwargs = render_docker(ContainerSpec("python:3.11-slim", security=profile)).host_config_kwargs()
    assert kwargs["privileged"] is True and kwargs["network_mode"] == "host"
    assert "seccomp=unconfined" in kwargs["security_opt"]


def test_rendered_settings_really_harden_a_container(
    docker_client: Any, python_image: str, tmp_path: Path
) -> None:
    """On the engine: non-root, read-only root, writable /tmp, secret files, no capabilities, memory cap."""
    secrets = tmp_path / "secrets"
    (secrets / "db").mkdir(parents=True)
    (secrets / "db" / "password").write_text("pw-123")
    (secrets / "db" / "password").chmod(0o444)
    script = (
        "import os,pathlib;"
        "print(os.getuid(), os.getgid());"
        "pathlib.Path('/tmp/ok').write_text('x');"
        "print(open('/run/secrets/db/password').read());"
        "print(os.environ['DB_PASSWORD']);"
        "print([l for l in open('/proc/self/status') if l.startswith('CapEff')][0].split()[1]);"
        "print(open('/sys/fs/cgroup/memory/memory.limit_in_bytes').read().strip());"
        "open('/etc/evil','w')"
    )
    spec = ContainerSpec(
        python_image,
        command=["python", "-c", script],
        resources="xs",
        secrets=[
            SecretRef("db", "password", path="/run/secrets/db/password"),
            SecretRef("db", "password", env="DB_PASSWORD"),
        ],
        labels=TEST_LABEL,
    )
    settings = render_docker(spec, secrets_dir=secrets)
    api = docker_client.api
    container = api.create_container(
        settings.image,
        entrypoint=list(settings.entrypoint or []),
        command=list(settings.command or []) or None,
        user=settings.user,
        environment=settings.runtime_environment(),
        labels=dict(settings.labels),
        host_config=api.create_host_config(**settings.host_config_kwargs()),
    )
    try:
        api.start(container)
        status = api.wait(container, timeout=60)["StatusCode"]
        out = api.logs(container, stderr=False).decode()
        err = api.logs(container, stdout=False).decode()
    finally:
        api.remove_container(container, force=True, v=True)
    lines = out.splitlines()
    assert lines[:5] == ["50000 0", "pw-123", "pw-123", "0000000000000000", str(128 * 1024**2)], out
    assert status == 1 and "Read-only file system" in err
