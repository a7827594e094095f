"""Engine selection, suppressions, and Airflow enforcement (modes, exemptions, cluster policy)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from containerkit.errors import ContainerkitError, SpecError
from containerkit.policy import enforce
from containerkit.policy.airflow_policy import check_task, pod_mutation_hook, task_policy
from containerkit.policy.enforce import PolicyViolation, check_docker_run, check_pod, resolve_mode
from containerkit.policy.engine import evaluate_pod, rule_sets, select
from containerkit.policy.model import REGISTRY, Severity
from containerkit.policy.suppressions import IGNORE_ANNOTATION, parse_ignore


def privileged_pod(annotation: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "p"}
    if annotation is not None:
        meta["annotations"] = {IGNORE_ANNOTATION: annotation}
    return {
        "metadata": meta,
        "spec": {"containers": [{"name": "c", "image": "i:1", "securityContext": {"privileged": True}}]},
    }


def test_registry_has_stable_metadata() -> None:
    ids = [r.id for r in REGISTRY]
    assert len(ids) == len(set(ids))
    assert {"pss-baseline", "pss-restricted", "hardened"} <= set(rule_sets())
    for r in REGISTRY:
        assert r.title and r.rationale and r.fix and r.targets
    psa = {r.psa_check for r in REGISTRY if r.psa_check}
    assert {
        "hostNamespaces",
        "privileged",
        "capabilities_baseline",
        "runAsNonRoot",
        "seccompProfile_restricted",
    } <= psa


def test_rule_sets_select_rules() -> None:
    assert {r.rule_set for r in select("Pod", ["pss-baseline"])} == {"pss-baseline"}
    assert all("DockerRun" in r.targets for r in select("DockerRun"))


def test_suppression_with_reason_hides_the_finding() -> None:
    ids = {
        f.rule_id
        for f in evaluate_pod(
            privileged_pod("PSS-B-002: node exporter reads /dev"), rule_sets=["pss-baseline"]
        )
    }
    assert ids == set()


def test_suppression_without_reason_is_a_finding_and_not_honoured() -> None:
    findings = evaluate_pod(privileged_pod("PSS-B-002"), rule_sets=["pss-baseline"])
    assert {f.rule_id for f in findings} == {"PSS-B-002", "CK001"}
    ck = next(f for f in findings if f.rule_id == "CK001")
    assert ck.severity is Severity.ERROR and ck.path == f'metadata.annotations["{IGNORE_ANNOTATION}"]'


def test_unknown_rule_in_suppression_is_a_warning() -> None:
    findings = evaluate_pod(privileged_pod("PSS-B-02: typo"), rule_sets=["pss-baseline"])
    assert {(f.rule_id, f.severity) for f in findings} == {
        ("PSS-B-002", Severity.ERROR),
        ("CK002", Severity.WARNING),
    }


def test_parse_ignore_several_entries() -> None:
    assert parse_ignore("HRD-001: writes /var/cache; HRD-008:\n PSS-B-002 : needs devices") == {
        "HRD-001": "writes /var/cache",
        "HRD-008": "",
        "PSS-B-002": "needs devices",
    }


def test_mode_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(enforce.ENV_VAR, raising=False)
    assert resolve_mode() == "enforce"
    monkeypatch.setenv(enforce.ENV_VAR, "warn")
    assert resolve_mode() == "warn"
    assert resolve_mode("off") == "off"  # the per-task override wins
    with pytest.raises(SpecError, match="policy_mode"):
        resolve_mode("strict")


def test_enforce_raises_with_every_error_finding() -> None:
    with pytest.raises(PolicyViolation) as info:
        check_pod(privileged_pod(), mode="enforce", where="task d.t")
    assert isinstance(info.value, ContainerkitError)
    text = str(info.value)
    assert "task d.t" in text and "[PSS-B-002]" in text and "[PSS-R-006]" in text and "Fix:" in text
    assert all(f.severity is Severity.ERROR for f in info.value.findings)


def test_warn_logs_and_returns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="containerkit.policy.enforce"):
        findings = check_pod(privileged_pod(), mode="warn", where="task d.t")
    assert any(f.rule_id == "PSS-B-002" for f in findings)
    assert "PSS-B-002" in caplog.text


def test_off_skips_evaluation() -> None:
    assert check_pod(privileged_pod(), mode="off", where="x") == []


def test_exemptions_need_reasons_and_known_ids() -> None:
    with pytest.raises(SpecError, match="needs a reason"):
        check_pod(privileged_pod(), mode="enforce", where="x", exemptions={"PSS-B-002": " "})
    with pytest.raises(SpecError, match="no such rule"):
        check_pod(privileged_pod(), mode="enforce", where="x", exemptions={"NOPE-1": "why"})


def test_exemptions_lift_only_the_named_rules() -> None:
    run = {"image": "img:1", "user": "50000", "read_only": True, "cap_drop": ["ALL"], "mem_limit": "1g"}
    with pytest.raises(PolicyViolation) as info:
        check_docker_run(run, mode="enforce", where="x", exemptions={"DKR-001": "legacy image"})
    assert {f.rule_id for f in info.value.findings} == {"DKR-004"}
    remaining = check_docker_run(
        run, mode="enforce", where="x", exemptions={"DKR-004": "engine 19 lacks the option"}
    )
    assert {f.rule_id for f in remaining} == {"DKR-008", "DKR-009"}  # warnings stay visible


def test_pod_mutation_hook_checks_v1pods(monkeypatch: pytest.MonkeyPatch) -> None:
    from kubernetes.client import models as k8s

    monkeypatch.setenv(enforce.ENV_VAR, "enforce")
    pod = k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="worker"),
        spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="base", image="a:1")], host_network=True),
    )
    with pytest.raises(PolicyViolation, match="pod worker"):
        pod_mutation_hook(pod)
    monkeypatch.setenv(enforce.ENV_VAR, "warn")
    assert pod_mutation_hook(pod) is None


def test_task_policy_on_stock_operators(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.exceptions import AirflowClusterPolicyViolation
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.providers.docker.operators.docker import DockerOperator

    monkeypatch.setenv(enforce.ENV_VAR, "enforce")
    kpo = KubernetesPodOperator(task_id="stock_kpo", image="python:3.11", env_vars={"API_TOKEN": "abc"})
    with pytest.raises(AirflowClusterPolicyViolation) as info:
        task_policy(kpo)
    assert "HRD-009" in str(info.value) and "PSS-R-003" in str(info.value)
    assert kpo.env_vars == {"API_TOKEN": "abc"}  # rendering did not mutate the task
    dop = DockerOperator(task_id="stock_docker", image="python:3.11", privileged=True)
    with pytest.raises(AirflowClusterPolicyViolation, match="DKR-006"):
        task_policy(dop)
    dop.policy_mode = "warn"  # type: ignore[attr-defined]
    assert any(f.rule_id == "DKR-006" for f in check_task(dop))
