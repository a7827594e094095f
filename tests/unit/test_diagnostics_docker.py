"""Docker diagnostics from inspect results and API errors recorded on a real engine (fixtures/docker)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import docker.errors
import pytest
import requests

from containerkit.diagnostics.docker import diagnose_container, diagnose_docker_error, human_bytes

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "docker"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def diagnose_fixture(name: str) -> Any:
    case = load(name)
    return diagnose_container(case["inspect"], case["logs"])


def api_error(name: str) -> tuple[Exception, str]:
    """Rebuild the docker-py exception recorded in a fixture, with a response carrying its status."""
    recorded = load(name)
    error = recorded["error"]
    response = requests.Response()
    response.status_code = error["status_code"]
    cls = getattr(docker.errors, error["class"])
    return cls(error["message"], response=response, explanation=error["explanation"]), recorded["where"]


def test_success_is_not_a_failure() -> None:
    assert diagnose_fixture("success") is None


def test_running_container_has_no_diagnosis_yet() -> None:
    inspect = load("killed_sigkill")["inspect"]
    running = {**inspect, "State": {**inspect["State"], "Status": "running", "Running": True, "ExitCode": 0}}
    assert diagnose_container(running, "working") is None


def test_oom_names_the_limit_and_exit_code() -> None:
    diagnosis = diagnose_fixture("oom_killed")
    assert diagnosis.cause == "OOMKilled"
    assert diagnosis.exit_code == 137
    assert "16Mi" in diagnosis.summary
    assert diagnosis.details["memory_limit_bytes"] == "16777216"
    assert "16Mi" in diagnosis.fix
    assert any("HostConfig.Memory=16777216" in line for line in diagnosis.evidence)


def test_oom_without_limit_says_the_host_ran_out() -> None:
    inspect = load("oom_killed")["inspect"]
    unlimited = {**inspect, "HostConfig": {**inspect["HostConfig"], "Memory": 0, "MemorySwap": 0}}
    diagnosis = diagnose_container(unlimited)
    assert diagnosis is not None and diagnosis.cause == "OOMKilled"
    assert "no container memory limit" in diagnosis.summary
    assert diagnosis.details["memory_limit"] == "unlimited"


def test_oom_with_swap_allowed_is_called_out() -> None:
    inspect = load("oom_killed")["inspect"]
    swappy = {**inspect, "HostConfig": {**inspect["HostConfig"], "MemorySwap": 2 * 16777216}}
    diagnosis = diagnose_container(swappy)
    assert diagnosis is not None
    assert any("MemorySwap=33554432" in line for line in diagnosis.evidence)


def test_nonzero_exit_quotes_code_and_last_log_lines() -> None:
    diagnosis = diagnose_fixture("nonzero_exit")
    assert diagnosis.cause == "NonZeroExit"
    assert diagnosis.exit_code == 3
    assert "code 3" in diagnosis.summary
    assert "log: ValueError: bad row 7" in diagnosis.evidence


def test_log_tail_is_bounded() -> None:
    inspect = load("nonzero_exit")["inspect"]
    logs = "\n".join(f"line {i}" for i in range(100))
    diagnosis = diagnose_container(inspect, logs)
    assert diagnosis is not None
    quoted = [e for e in diagnosis.evidence if e.startswith("log: ")]
    assert quoted[-1] == "log: line 99" and len(quoted) == 10


@pytest.mark.parametrize(
    ("fixture", "cause", "exit_code"),
    [
        ("killed_sigkill", "KilledBySignal:SIGKILL", 137),
        ("killed_sigterm", "KilledBySignal:SIGTERM", 143),
        ("segfault", "KilledBySignal:SIGSEGV", 139),
    ],
)
def test_signals_are_named_and_sigkill_is_not_oom(fixture: str, cause: str, exit_code: int) -> None:
    diagnosis = diagnose_fixture(fixture)
    assert diagnosis.cause == cause
    assert diagnosis.exit_code == exit_code
    assert f"128 + {exit_code - 128}" in diagnosis.summary
    assert "State.OOMKilled=false" in diagnosis.evidence[0]


def test_read_only_root_filesystem_points_to_tmp_or_a_volume() -> None:
    diagnosis = diagnose_fixture("read_only_fs")
    assert diagnosis.cause == "ReadOnlyFilesystem"
    assert "/home/app/report.csv" in diagnosis.summary
    assert "read-only root filesystem" in diagnosis.summary
    assert "/tmp" in diagnosis.fix and "volume at /home/app" in diagnosis.fix
    assert "HostConfig.ReadonlyRootfs=true" in diagnosis.evidence


def test_read_only_mount_is_told_apart_from_the_root_filesystem() -> None:
    case = load("read_only_fs")
    inspect = {
        **case["inspect"],
        "Mounts": [{"Type": "volume", "Name": "inputs", "Destination": "/home/app", "RW": False}],
    }
    diagnosis = diagnose_container(inspect, case["logs"])
    assert diagnosis is not None and diagnosis.cause == "ReadOnlyFilesystem"
    assert "volume inputs mounted at /home/app (read-only)" in diagnosis.summary
    assert "read-write" in diagnosis.fix


def test_permission_denied_names_uid_volume_and_ownership_fix() -> None:
    diagnosis = diagnose_fixture("permission_denied_volume")
    assert diagnosis.cause == "PermissionDenied:volume"
    assert diagnosis.details == {"path": "/data/out.parquet", "uid": "50000"}
    assert "uid 50000" in diagnosis.summary and "mounted at /data" in diagnosis.summary
    assert "chown" in diagnosis.fix and "fsGroup" in diagnosis.fix


def test_permission_denied_as_root_blames_dropped_capabilities() -> None:
    case = load("permission_denied_volume")
    inspect = {**case["inspect"], "Config": {**case["inspect"]["Config"], "User": ""}, "Mounts": []}
    diagnosis = diagnose_container(inspect, case["logs"])
    assert diagnosis is not None and diagnosis.cause == "PermissionDenied"
    assert "root" in diagnosis.summary and "DAC_OVERRIDE" in diagnosis.fix
    assert "HostConfig.CapDrop=['ALL']" in diagnosis.evidence


def test_command_not_found() -> None:
    diagnosis = diagnose_fixture("command_not_found")
    assert diagnosis.cause == "CommandNotFound"
    assert "/opt/app/run-job" in diagnosis.evidence[0]


def test_start_error_recorded_in_state() -> None:
    inspect = load("success")["inspect"]
    failed = {**inspect, "State": {**inspect["State"], "ExitCode": 128, "Error": "OCI runtime create failed"}}
    diagnosis = diagnose_container(failed)
    assert diagnosis is not None and diagnosis.cause == "StartError"
    assert "engine: OCI runtime create failed" in diagnosis.evidence


@pytest.mark.parametrize(
    ("fixture", "cause", "transient"),
    [
        ("error_create_image_missing", "ImageNotFound", False),
        ("error_pull_not_found", "ImagePull:not-found", False),
        ("error_pull_unauthorized", "ImagePull:unauthorized", False),
        ("error_pull_rate_limited", "ImagePull:rate-limited", True),
        ("error_pull_unreachable", "ImagePull:unreachable", True),
        ("error_start_entrypoint_missing", "CommandNotFound", False),
    ],
)
def test_api_errors_recorded_from_the_engine(fixture: str, cause: str, transient: bool) -> None:
    exc, where = api_error(fixture)
    diagnosis = diagnose_docker_error(exc, image="registry.example.test:5000/app:1.0", where=where)
    assert diagnosis.cause == cause
    assert diagnosis.transient is transient
    assert diagnosis.evidence[0].startswith(f"{where}: ")
    assert str(getattr(exc, "explanation", "")) in diagnosis.evidence[0]


def test_docker_hub_pull_access_denied_is_ambiguous() -> None:
    # Docker Hub answers a missing and a private repository with the same text.
    response = requests.Response()
    response.status_code = 404
    exc = docker.errors.ImageNotFound(
        "404 Client Error",
        response=response,
        explanation="pull access denied for acme/etl, repository does not exist or may require "
        "'docker login': denied: requested access to the resource is denied",
    )
    diagnosis = diagnose_docker_error(exc, image="acme/etl:1.0", where="pull")
    assert diagnosis.cause == "ImagePull:not-found-or-unauthorized"
    assert "docker_conn_id" in diagnosis.fix


def test_engine_unreachable() -> None:
    exc = requests.exceptions.ConnectionError("Connection aborted: FileNotFoundError(2, 'No such file')")
    diagnosis = diagnose_docker_error(exc, where="create")
    assert diagnosis.cause == "DockerEngineUnreachable" and diagnosis.transient


def test_unknown_api_error_keeps_the_engine_explanation() -> None:
    response = requests.Response()
    response.status_code = 400
    exc = docker.errors.APIError("400", response=response, explanation="invalid CapDrop: unknown capability")
    diagnosis = diagnose_docker_error(exc, where="create")
    assert diagnosis.cause == "DockerAPIError"
    assert "invalid CapDrop" in diagnosis.evidence[0]


@pytest.mark.parametrize(
    ("value", "text"), [(16777216, "16Mi"), (1610612736, "1.5Gi"), (512, "512B"), (2048, "2Ki")]
)
def test_human_bytes(value: int, text: str) -> None:
    assert human_bytes(value) == text
