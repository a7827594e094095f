"""Bad input is refused when the DAG file loads, with a message naming the parameter, value and fix."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pytest

from containerkit.errors import SpecError
from containerkit.operators.docker import SecureDockerOperator
from containerkit.operators.kubernetes import SecureKubernetesPodOperator
from containerkit.policy.enforce import PolicyViolation
from containerkit.policy.model import REGISTRY, Severity
from containerkit.spec import ConfigMapRef, SecretRef, VolumeMount

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
    assert op.container_spec.secrets[0].path == "/run/secrets/db/password"


def test_secret_ref_env_on_docker_is_allowed_by_a_reasoned_exemption() -> None:
    op = _docker_with_env_secret(policy_exemptions={"DKR-014": "the vendor CLI reads only $DB_PASSWORD"})
    assert [r.env for r in op.container_spec.secrets] == ["DB_PASSWORD"]


def test_secret_ref_env_exemption_without_a_reason_is_refused() -> None:
    with pytest.raises(Exception, match=r"policy_exemptions\['DKR-014'\]"):
        _docker_with_env_secret(policy_exemptions={"DKR-014": ""})


def test_secret_ref_env_rule_is_registered_like_the_others() -> None:
    rule = REGISTRY.get("DKR-014")
    assert (rule.title, rule.severity, rule.targets) == ("secret-ref-env", Severity.ERROR, ("DockerRun",))


# ------------------------------------------------------------------ one table, both operators

D, K = "docker", "kubernetes"
ENV_PARAM = {D: "environment", K: "env_vars"}
BAD_NAME = (
    "not a valid environment variable name (letters, digits, '_', '-', '.'; no leading digit). "
    "Fix: use an upper-case name such as 'MY_SETTING'"
)
NOT_POSITIVE = "a timeout must be positive (zero or negative would stop the task at once, or never)"
SR_EXAMPLE = "SecretRef(secret='db', key='password', path='/run/secrets/pw')"
CM_EXAMPLE = "ConfigMapRef(config_map='cfg', key='k', path='/etc/k')"
HEX = "0123456789abcdef" * 4
BAD_DIGEST = (
    "the digest {!r} is malformed: it must be 'sha256:' followed by 64 lower-case hex characters. Fix: copy "
    "the full digest (docker buildx imagetools inspect <image>), or drop '@...' and use a tag"
)
SR_A = SecretRef("db", "password", path="/run/secrets/db")
SR_B = SecretRef("db", "user", path="/run/secrets/db")
SR_ENV_A = SecretRef("db", "password", env="DB_PASSWORD")
SR_ENV_B = SecretRef("other", "password", env="DB_PASSWORD")
CM_A = ConfigMapRef("cfg", "settings", path="/run/secrets/db")


def _env_rows() -> list[tuple[str, str, Any, str]]:
    names = ["MY VAR", "1ABC", "", "A=B", "PATH$", "ÄB", "A;B", "A:B", "TRAILING ", "A/B"]
    rows = []
    for name in names:
        rows.append(
            (f"env name {name!r}", "env", {name: "1"}, "{param}" + f"[{name!r}]={name!r}: {BAD_NAME}")
        )
    return rows


# (id, where ("both", "env", D, K), kwargs, exact str(error)); "env" rows use environment/env_vars.
SPEC_ERRORS: list[tuple[str, str, Any, str]] = [
    *_env_rows(),
    (
        "private_environment name",
        D,
        {"private_environment": {"MY VAR": "1"}},
        f"private_environment['MY VAR']='MY VAR': {BAD_NAME}",
    ),
    (
        "env not a mapping",
        "env",
        "A=1",
        "{param}='A=1': expected a mapping of env var names to values. Fix: use {param}={'NAME': 'value'}",
    ),
    *[
        (
            f"execution_timeout {value!r}",
            "both",
            {"execution_timeout": value},
            f"execution_timeout={value!r}: {NOT_POSITIVE}. Fix: use execution_timeout=timedelta(minutes=30), "
            "or leave it unset for no limit",
        )
        for value in (timedelta(0), timedelta(seconds=-5), timedelta(days=-1))
    ],
    *[
        (
            f"stop_timeout {value!r}",
            D,
            {"stop_timeout": value},
            f"stop_timeout={value!r}: {NOT_POSITIVE}. Fix: use stop_timeout=60, "
            "or leave it unset for no limit",
        )
        for value in (0, -1, -0.5)
    ],
    *[
        (
            f"stop_timeout {value!r}",
            D,
            {"stop_timeout": value},
            f"stop_timeout={value!r}: a timeout must be a number of seconds. Fix: use stop_timeout=60",
        )
        for value in ("10", True)
    ],
    *[
        (
            f"startup_timeout_seconds {value!r}",
            K,
            {"startup_timeout_seconds": value},
            f"startup_timeout_seconds={value!r}: {NOT_POSITIVE}. "
            "Fix: use startup_timeout_seconds=60, or leave it unset for no limit",
        )
        for value in (0, -10)
    ],
    (
        "secret_refs a string",
        "both",
        {"secret_refs": "db-password"},
        "secret_refs='db-password': expected a list of SecretRef, got str. "
        f"Fix: use secret_refs=[{SR_EXAMPLE}]",
    ),
    (
        "secret_refs bytes",
        "both",
        {"secret_refs": b"db"},
        f"secret_refs=b'db': expected a list of SecretRef, got bytes. Fix: use secret_refs=[{SR_EXAMPLE}]",
    ),
    (
        "secret_refs a mapping",
        "both",
        {"secret_refs": {"db": "password"}},
        "secret_refs={'db': 'password'}: expected a list of SecretRef, got dict. "
        f"Fix: use secret_refs=[{SR_EXAMPLE}]",
    ),
    (
        "secret_refs a number",
        "both",
        {"secret_refs": 42},
        f"secret_refs=42: expected a list of SecretRef, got int. Fix: use secret_refs=[{SR_EXAMPLE}]",
    ),
    (
        "secret_refs a single SecretRef",
        "both",
        {"secret_refs": SR_A},
        f"secret_refs={SR_A!r}: expected a list of SecretRef, got a single SecretRef. "
        f"Fix: wrap it: secret_refs=[{SR_EXAMPLE}]",
    ),
    (
        "secret_refs list of strings",
        "both",
        {"secret_refs": ["db-password"]},
        f"secret_refs[0]='db-password': not a SecretRef. Fix: use {SR_EXAMPLE}",
    ),
    (
        "config_map_refs a string",
        "both",
        {"config_map_refs": "cfg"},
        "config_map_refs='cfg': expected a list of ConfigMapRef, got str. "
        f"Fix: use config_map_refs=[{CM_EXAMPLE}]",
    ),
    (
        "config_map_refs holding a SecretRef",
        "both",
        {"config_map_refs": [SR_A]},
        f"config_map_refs[0]={SR_A!r}: not a ConfigMapRef. Fix: use {CM_EXAMPLE}",
    ),
    (
        "duplicate secret mount path",
        "both",
        {"secret_refs": [SR_A, SR_B]},
        f"secret_refs[1].path='/run/secrets/db': duplicate mount path: secret_refs[0] {SR_A!r} and "
        f"secret_refs[1] {SR_B!r} both use it. Fix: give each entry its own path=",
    ),
    (
        "secret and config map on one path",
        "both",
        {"secret_refs": [SR_A], "config_map_refs": [CM_A]},
        f"config_map_refs[0].path='/run/secrets/db': duplicate mount path: secret_refs[0] {SR_A!r} and "
        f"config_map_refs[0] {CM_A!r} both use it. Fix: give each entry its own path=",
    ),
    (
        "duplicate secret env",
        K,
        {"secret_refs": [SR_ENV_A, SR_ENV_B]},
        f"secret_refs[1].env='DB_PASSWORD': duplicate env var: secret_refs[0] {SR_ENV_A!r} and "
        f"secret_refs[1] {SR_ENV_B!r} both use it. Fix: give each entry its own env=",
    ),
    *[
        (
            f"digest {digest}",
            "both",
            {"image": f"registry.example.com/etl@{digest}"},
            f"image='registry.example.com/etl@{digest}': " + BAD_DIGEST.format(digest),
        )
        for digest in ("sha256:abc", f"sha256:{HEX.upper()}", f"md5:{HEX[:32]}", f"sha256:{HEX[:63]}", "")
    ],
    (
        "unknown resource preset",
        "both",
        {"resources": "huge"},
        "resources='huge': unknown resource preset. "
        "Fix: use one of xs, s, m, l, xl or explicit requests/limits",
    ),
    (
        "unknown security profile",
        "both",
        {"security": "superuser"},
        "security='superuser': unknown security profile. Fix: use 'restricted' (default), 'baseline', or "
        "SecurityProfile.unrestricted(reason=...)",
    ),
    (
        "containerkit VolumeMount in stock mounts",
        D,
        {"mounts": [VolumeMount("data", "/data")]},
        "mounts[0]=VolumeMount(volume='data', path='/data', read_only=None, sub_path=None): a containerkit "
        "VolumeMount needs its volume, which stock mounts cannot carry. Fix: pass spec=ContainerSpec(image, "
        "volumes=[...], mounts=[VolumeMount(...)]), or use docker.types.Mount(target='/data', source='name', "
        "type='volume')",
    ),
    (
        "stock mounts entry of another type",
        D,
        {"mounts": ["/data:/data"]},
        "mounts[0]='/data:/data': not a docker.types.Mount (got str). Fix: use "
        "docker.types.Mount(target='/data', source='name', type='volume')",
    ),
    (
        "unknown policy mode",
        "both",
        {"policy_mode": "strict"},
        "policy_mode='strict': unknown policy mode. Fix: use one of enforce, warn, off",
    ),
]


def _build(kind: str, **kwargs: Any) -> Any:
    base: dict[str, Any] = {"task_id": "t", "image": IMAGE, "policy_mode": "enforce"}
    if kind == D:
        base["secrets_dir"] = "/srv/airflow/secrets"
        return SecureDockerOperator(**{**base, **kwargs})
    return SecureKubernetesPodOperator(**{**base, **kwargs})


def _cases() -> list[Any]:
    out = []
    for case_id, where, kwargs, message in SPEC_ERRORS:
        for kind in (D, K):
            if where not in ("both", "env", kind):
                continue
            given = {ENV_PARAM[kind]: kwargs} if where == "env" else kwargs
            out.append(
                pytest.param(kind, given, message.replace("{param}", ENV_PARAM[kind]), id=f"{kind}-{case_id}")
            )
    return out


def test_the_table_has_at_least_40_bad_inputs_and_most_run_on_both_operators() -> None:
    assert len(SPEC_ERRORS) >= 40
    assert sum(1 for row in SPEC_ERRORS if row[1] in ("both", "env")) >= 30


@pytest.mark.parametrize(("kind", "kwargs", "message"), _cases())
def test_bad_input_is_refused_at_parse_with_the_exact_message(
    kind: str, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(SpecError) as caught:
        _build(kind, **kwargs)
    assert str(caught.value) == message


# Literal secrets in env: refused by policy at parse on both (exemptible by rule id, like at run time).
POLICY_CASES = [
    (D, {"environment": {"PASSWORD": "hunter2"}}, {("DKR-012", "environment['PASSWORD']")}),
    (D, {"private_environment": {"PASSWORD": "hunter2"}}, {("DKR-012", "private_environment['PASSWORD']")}),
    (K, {"env_vars": {"PASSWORD": "hunter2"}}, {("HRD-009", "spec.containers[0].env[0].value")}),
    (
        K,
        {"env_vars": {"REGION": "eu", "AWS_SECRET_ACCESS_KEY": "abc123"}},
        {("HRD-009", "spec.containers[0].env[1].value")},
    ),
]


@pytest.mark.parametrize(
    ("kind", "kwargs", "expected"), POLICY_CASES, ids=[f"{c[0]}-{c[2]}" for c in POLICY_CASES]
)
def test_literal_secret_env_is_refused_at_parse_on_both_operators(
    kind: str, kwargs: dict[str, Any], expected: set[tuple[str, str]]
) -> None:
    with pytest.raises(PolicyViolation) as caught:
        _build(kind, **kwargs)
    assert {(f.rule_id, f.path) for f in caught.value.findings} == expected
    assert "hunter2" not in str(caught.value) and "abc123" not in str(caught.value)


def test_kubernetes_env_vars_as_v1envvar_list_are_checked_too() -> None:
    from kubernetes.client import V1EnvVar

    with pytest.raises(SpecError) as caught:
        _build(K, env_vars=[V1EnvVar(name="MY VAR", value="1")])
    assert str(caught.value) == f"env_vars['MY VAR']='MY VAR': {BAD_NAME}"
    with pytest.raises(PolicyViolation):
        _build(K, env_vars=[V1EnvVar(name="DB_PASSWORD", value="hunter2")])


def test_good_input_still_loads_on_both_operators() -> None:
    kwargs = {"execution_timeout": timedelta(minutes=5), "secret_refs": [SR_A]}
    docker = _build(D, environment={"A.B": "1", "-X": "2"}, stop_timeout=5, **kwargs)
    kube = _build(K, env_vars={"A.B": "1", "-X": "2"}, startup_timeout_seconds=30, **kwargs)
    assert docker.stop_timeout == 5 and kube.startup_timeout_seconds == 30
    _build(K, image=f"registry.example.com/etl@sha256:{HEX}")


# ------------------------------------------------------------------ secret file readability pre-flight


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to set file owners")
@pytest.mark.parametrize(
    ("owner", "mode", "why"),
    [
        ((50000, 1000), 0o400, None),  # owned by the container uid
        ((1000, 0), 0o440, None),  # group 0 readable
        ((1000, 1000), 0o604, None),  # world readable
        ((1000, 1000), 0o640, "owner 1000:1000, mode 0640"),
        ((1000, 0), 0o600, "owner 1000:0, mode 0600"),
        ((50000, 0), 0o200, "owner 50000:0, mode 0200"),
    ],
)
def test_secret_file_readable_by_the_container_uid(
    tmp_path: Any, owner: tuple[int, int], mode: int, why: str | None
) -> None:
    from containerkit.operators.validation import unreadable_by

    secret = tmp_path / "password"
    secret.write_text("x")
    os.chown(secret, *owner)
    secret.chmod(mode)
    assert unreadable_by(secret, 50000, 0) == why
    assert unreadable_by(secret, 0, 0) is None  # root reads anything
