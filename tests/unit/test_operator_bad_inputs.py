"""Bad input is refused when the DAG file loads, with a message naming the parameter, value and fix."""

from __future__ import annotations

import pytest

from containerkit.operators.docker import SecureDockerOperator
from containerkit.policy.enforce import PolicyViolation
from containerkit.policy.model import REGISTRY, Severity
from containerkit.spec import SecretRef

IMAGE = "registry.example.com/team/etl:1.4.2"


# ------------------------------------------------------------------ Docker: SecretRef(env=) is visible


def _docker_with_env_secret(**kwargs: object) -> SecureDockerOperator:
    return SecureDockerOperator(
        task_id="t",
        image=IMAGE,
        secrets_dir="/srv/airflow/secrets",
        secret_refs=[SecretRef("db", "password", env="DB_PASSWORD")],
        policy_mode="enforce",
        **kwargs,
    )


def test_secret_ref_env_on_docker_is_refused_at_parse_with_its_own_rule() -> None:
    with pytest.raises(PolicyViolation) as caught:
        _docker_with_env_secret()
    assert {f.rule_id for f in caught.value.findings} == {"DKR-014"}
    (finding,) = caught.value.findings
    assert finding.path == "secret_refs[env='DB_PASSWORD']"
    assert "docker inspect" in finding.message
    assert "path=" in finding.fix


def test_secret_ref_path_on_docker_is_not_refused() -> None:
    op = SecureDockerOperator(
        task_id="t",
        image=IMAGE,
        secrets_dir="/srv/airflow/secrets",
        secret_refs=[SecretRef("db", "password", path="/run/secrets/db/password")],
        policy_mode="enforce",
    )
    assert op.spec.secrets[0].path == "/run/secrets/db/password"


def test_secret_ref_env_on_docker_is_allowed_by_a_reasoned_exemption() -> None:
    op = _docker_with_env_secret(policy_exemptions={"DKR-014": "the vendor CLI reads only $DB_PASSWORD"})
    assert [r.env for r in op.spec.secrets] == ["DB_PASSWORD"]


def test_secret_ref_env_exemption_without_a_reason_is_refused() -> None:
    with pytest.raises(Exception, match=r"policy_exemptions\['DKR-014'\]"):
        _docker_with_env_secret(policy_exemptions={"DKR-014": ""})


def test_secret_ref_env_rule_is_registered_like_the_others() -> None:
    rule = REGISTRY.get("DKR-014")
    assert (rule.title, rule.severity, rule.targets) == ("secret-ref-env", Severity.ERROR, ("DockerRun",))
