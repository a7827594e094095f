"""The Kubernetes diagnoses added with the thinner operator: read-only writes, deadlines, the one diagnosis.

Pure functions over pods in API field names (as ``kubectl get -o json`` prints them) and exceptions.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from containerkit.diagnostics.docker import diagnose_container
from containerkit.diagnostics.kubernetes import diagnose_pod
from containerkit.diagnostics.kubernetes_evidence import diagnose_failure, timeout_diagnosis
from containerkit.diagnostics.kubernetes_fields import base_container_state
from containerkit.diagnostics.model import Diagnosis


def _failed_pod(mounts: list[dict[str, Any]], read_only_root: bool = True) -> dict[str, Any]:
    return {
        "metadata": {"name": "run-1", "namespace": "etl"},
        "spec": {
            "containers": [
                {
                    "name": "base",
                    "image": "python:3.11",
                    "securityContext": {"readOnlyRootFilesystem": read_only_root, "runAsUser": 50000},
                    "volumeMounts": mounts,
                }
            ]
        },
        "status": {
            "phase": "Failed",
            "containerStatuses": [
                {"name": "base", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}
            ],
        },
    }


TMP = {"name": "tmp", "mountPath": "/tmp"}
CONFIG = {"name": "config", "mountPath": "/etc/app", "readOnly": True}


def test_a_write_outside_the_writable_mounts_is_read_only_filesystem_as_on_docker() -> None:
    logs = "loading\nOSError: [Errno 30] Read-only file system: '/opt/report.csv'\n"
    found = diagnose_pod(_failed_pod([TMP, CONFIG]), (), logs)
    assert found is not None
    assert (found.cause, found.exit_code, found.container) == ("ReadOnlyFilesystem", 1, "base")
    assert found.summary == "container base wrote to /opt/report.csv on the read-only root filesystem"
    assert "mount a writable volume at /opt" in found.fix
    assert found.evidence == (
        "log: OSError: [Errno 30] Read-only file system: '/opt/report.csv'",
        "securityContext.readOnlyRootFilesystem=true",
        "writable mounts: /tmp",
    )
    docker = diagnose_container(
        {"Name": "/t", "State": {"ExitCode": 1, "Status": "exited"}, "HostConfig": {"ReadonlyRootfs": True}},
        logs,
    )
    assert docker is not None and docker.cause == found.cause  # one cause id on both runtimes


def test_a_write_to_a_read_only_mount_names_the_mount() -> None:
    logs = "OSError: [Errno 30] Read-only file system: '/etc/app/settings.yaml'"
    found = diagnose_pod(_failed_pod([TMP, CONFIG]), (), logs)
    assert found is not None and found.cause == "ReadOnlyFilesystem"
    assert found.summary == (
        "container base wrote to /etc/app/settings.yaml on volume mount /etc/app "
        "(readOnly: true, volume config)"
    )
    assert found.fix == "mount /etc/app read-write, or write to /tmp instead"


def test_other_failures_stay_non_zero_exit() -> None:
    found = diagnose_pod(_failed_pod([TMP]), (), "ValueError: bad row 7")
    assert found is not None and (found.cause, found.summary) == (
        "NonZeroExit",
        "container base exited with code 1",
    )


def test_base_container_state_reads_models_and_dicts_alike() -> None:
    assert base_container_state(_failed_pod([]), "base") == (1, False, "terminated")
    assert base_container_state(_failed_pod([]), "sidecar") == (None, False, "not started")


def _raised_during(outer: BaseException, inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException:
            raise outer  # noqa: B904 - the implicit context is the point: cleanup raised while inner was in flight
    except BaseException as exc:
        return exc


def test_a_timeout_in_flight_under_the_cleanup_error_is_the_execution_deadline() -> None:
    from airflow.providers.common.compat.sdk import AirflowException
    from airflow.sdk.exceptions import AirflowTaskTimeout

    error = _raised_during(AirflowException("Pod run-1 returned a failure."), AirflowTaskTimeout("Timeout"))
    found = timeout_diagnosis(
        error,
        event_status=None,
        execution_timeout=timedelta(seconds=8),
        startup_timeout_seconds=120,
        pod=None,
        on_finish_action="delete_pod",
    )
    assert found is not None and found.cause == "DeadlineExceeded:execution_timeout"
    assert found.summary.startswith("the task ran longer than its execution_timeout=0:00:08 (8 s)")


@pytest.mark.parametrize(
    ("message", "cause"),
    [
        (
            "Pod etl/run-1 reached the task's execution_timeout deadline.",
            "DeadlineExceeded:execution_timeout",
        ),
        ("Pod took more than 120s to start.", "StartupTimeout"),
    ],
)
def test_the_triggers_timeout_event_says_which_deadline(message: str, cause: str) -> None:
    found = timeout_diagnosis(
        None,
        event_status="timeout",
        event_message=message,
        execution_timeout=timedelta(minutes=5),
        startup_timeout_seconds=120,
        pod=None,
        on_finish_action="delete_pod",
    )
    assert found is not None and found.cause == cause


def test_one_diagnosis_prefers_what_the_failure_carries_then_what_is_known_then_the_error() -> None:
    from airflow.providers.common.compat.sdk import AirflowException

    carried = Diagnosis(cause="CreateContainerConfigError:secret-missing", summary="s", fix="f")
    holder = AirflowException("fatal")
    holder.diagnosis = carried  # type: ignore[attr-defined]
    error = _raised_during(AirflowException("Pod run-1 returned a failure."), holder)
    assert diagnose_failure(None, error) is carried

    known = Diagnosis(cause="OOMKilled", summary="from the trigger's final event", fix="f")
    assert diagnose_failure(None, AirflowException("Pod etl/run-1 not found"), known=known) is known

    fallback = diagnose_failure(None, AirflowException("Pod etl/run-1 not found\nmore"))
    assert (fallback.cause, fallback.summary) == ("PodFailed", "pod phase gone: Pod etl/run-1 not found")
