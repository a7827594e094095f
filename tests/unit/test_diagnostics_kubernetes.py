"""Kubernetes diagnoses from recorded pod status + events (tests/fixtures/kubernetes/*.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiClient

from containerkit.diagnostics.kubernetes import diagnose_pod, is_fatal_startup

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kubernetes"
CASES = sorted(p.stem for p in FIXTURES.glob("*.json"))


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


class _Response:
    def __init__(self, data: Any) -> None:
        self.data = json.dumps(data)


def as_model(data: Any, kind: str) -> Any:
    """Deserialize API JSON into the client's model, the way the client does for a real response."""
    return ApiClient().deserialize(_Response(data), kind)


def test_every_cause_has_a_fixture() -> None:
    causes = {load(name)["expect"]["cause"] for name in CASES}
    required = {
        "OOMKilled", "NonZeroExit", "CrashLoopBackOff", "ImagePullBackOff:not-found",
        "ImagePullBackOff:unauthorized", "ImagePullBackOff:rate-limited", "ImagePullBackOff:unreachable",
        "InvalidImageName",
        "CreateContainerConfigError:secret-missing", "CreateContainerConfigError:secret-key-missing",
        "CreateContainerConfigError:configmap-missing", "CreateContainerConfigError:configmap-key-missing",
        "CreateContainerError", "Unschedulable:insufficient-resources", "Unschedulable:taints",
        "Unschedulable:node-selector", "Evicted:ephemeral-storage", "Evicted:memory-pressure",
        "DeadlineExceeded", "PermissionDenied:volume",
    }  # fmt: skip
    assert required <= causes


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("shape", ["dict", "model"])
def test_recorded_pod(name: str, shape: str) -> None:
    case = load(name)
    expect = case["expect"]
    pod, events = case["pod"], case["events"]
    if shape == "model":
        pod = as_model(pod, "V1Pod")
        events = [as_model(e, "CoreV1Event") for e in events]

    diagnosis = diagnose_pod(pod, events, case["logs"])
    if expect["cause"] is None:
        assert diagnosis is None
        assert is_fatal_startup(pod, events) is None
        return
    assert diagnosis is not None, case["description"]
    assert diagnosis.cause == expect["cause"]
    assert diagnosis.fix and diagnosis.summary and diagnosis.evidence
    text = diagnosis.render()
    for fragment in expect["contains"]:
        assert fragment in text, (fragment, text)
    for key, value in expect.get("details", {}).items():
        assert diagnosis.details[key] == value
    if "exit_code" in expect:
        assert diagnosis.exit_code == expect["exit_code"]
    assert diagnosis.transient is expect.get("transient", False)
    assert (is_fatal_startup(pod, events) is not None) is expect["fatal"]


def test_oom_summary_names_container_limit_and_exit_code() -> None:
    case = load("oomkilled")
    diagnosis = diagnose_pod(case["pod"], case["events"], case["logs"])
    assert diagnosis is not None
    assert (
        diagnosis.summary == "container base was killed for exceeding its memory limit 512Mi (exit code 137)"
    )
    assert diagnosis.details["memory_limit"] == "512Mi"
    assert "log: building frame" in diagnosis.evidence


def test_pull_error_detail_comes_from_failed_event_when_waiting_message_is_bare() -> None:
    case = load("image_pull_not_found")
    waiting = case["pod"]["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
    assert "not found" not in waiting  # the BackOff message alone carries no reason
    assert diagnose_pod(case["pod"], [], None).cause == "ImagePullBackOff:unknown"  # type: ignore[union-attr]
    assert diagnose_pod(case["pod"], case["events"], None).cause == "ImagePullBackOff:not-found"  # type: ignore[union-attr]


def test_unauthorized_names_the_pull_secret_when_one_is_set() -> None:
    case = load("image_pull_unauthorized")
    case["pod"]["spec"]["imagePullSecrets"] = [{"name": "regcred"}]
    diagnosis = diagnose_pod(case["pod"], case["events"])
    assert diagnosis is not None and "regcred" in diagnosis.summary


def test_sidecar_stopped_by_airflow_is_not_the_failure() -> None:
    """The xcom sidecar is killed (exit 137/143) after the main container succeeded."""
    case = load("succeeded")
    sidecar = json.loads(json.dumps(case["pod"]["status"]["containerStatuses"][0]))
    sidecar["name"] = "airflow-xcom-sidecar"
    sidecar["state"]["terminated"].update(exitCode=137, reason="Error")
    case["pod"]["status"]["containerStatuses"].append(sidecar)
    assert diagnose_pod(case["pod"], case["events"]) is None


def test_permission_denied_needs_a_non_root_user_and_a_mounted_path() -> None:
    case = load("volume_permission_denied")
    as_root = json.loads(json.dumps(case["pod"]))
    as_root["spec"]["securityContext"]["runAsUser"] = 0
    assert diagnose_pod(as_root, case["events"], case["logs"]).cause == "NonZeroExit"  # type: ignore[union-attr]
    other_path = case["logs"].replace("/data/out", "/etc/out")
    assert diagnose_pod(case["pod"], case["events"], other_path).cause == "NonZeroExit"  # type: ignore[union-attr]


def test_log_tail_is_bounded() -> None:
    case = load("nonzero_exit")
    logs = "\n".join(f"line {i}" for i in range(500))
    diagnosis = diagnose_pod(case["pod"], case["events"], logs)
    assert diagnosis is not None
    log_lines = [e for e in diagnosis.evidence if e.startswith("log: ")]
    assert log_lines[-1] == "log: line 499" and len(log_lines) == 20
