"""One Docker run view (containerkit.docker.run_view): the merge every caller uses and policy sees.

SecureDockerOperator (parse and run time), ``lint`` of a DAG folder and ``task_policy`` all read the
result of :func:`docker_run`; these tests pin the merge rules and that the three see the same data.
"""

from __future__ import annotations

import pytest
from airflow.providers.docker.operators.docker import DockerOperator

from containerkit.docker.labels import MANAGED_LABEL
from containerkit.docker.run_settings import REDACTED, render_docker
from containerkit.docker.run_view import StockArgs, docker_run, stock_args
from containerkit.operators.docker import SecureDockerOperator
from containerkit.policy.airflow_policy import check_task
from containerkit.policy.engine import evaluate_docker_run
from containerkit.policy.sources.dags import docker_run_settings, task_target
from containerkit.spec import ContainerSpec, SecretRef

STOCK_PLAIN = {"DKR-001", "DKR-002", "DKR-003", "DKR-004", "DKR-007", "DKR-008", "DKR-009"}


def _rules(policy: dict[str, object]) -> set[str]:
    return {f.rule_id for f in evaluate_docker_run(policy)}


def test_stock_cpus_is_a_share_never_a_limit() -> None:
    run = docker_run(StockArgs(image="python:3.11", cpus=2, mem_limit="512m", user="50000"))
    assert run.host["cpu_shares"] == 2048 and "nano_cpus" not in run.host
    assert run.policy["cpu_shares"] == 2048 and "nano_cpus" not in run.policy
    assert _rules(run.policy) == {"DKR-002", "DKR-003", "DKR-004", "DKR-008", "DKR-009"}


def test_a_stock_task_gets_exactly_what_the_stock_operator_sends() -> None:
    task = DockerOperator(
        task_id="t",
        image="python:3.11",
        command="['python', '-V']",
        environment={"A": "1"},
        private_environment={"B": "2"},
        labels={"team": "data"},
        mounts=[{"target": "/data", "source": "vol", "type": "volume"}],
    )
    run = docker_run(stock_args(task))
    assert run.create["command"] == ["python", "-V"]
    assert run.create["environment"] == {"A": "1", "B": "2"}
    assert run.create["labels"] == {"team": "data"}  # no containerkit label on a stock container
    assert [dict(m) for m in run.host["mounts"]] == [
        {"Target": "/data", "Source": "vol", "Type": "volume", "ReadOnly": False}
    ]
    assert run.policy["env_params"] == {"B": "private_environment"}
    assert _rules(run.policy) == STOCK_PLAIN


def test_explicit_stock_arguments_win_over_rendered_settings_and_defaults_do_not() -> None:
    settings = render_docker(ContainerSpec("python:3.11-slim", resources="s"))
    preset = settings.mem_limit
    defaults = docker_run(StockArgs(mem_limit=None, user=None, explicit=frozenset()), settings)
    assert defaults.host["mem_limit"] == preset and defaults.create["user"] == "50000:0"
    given = docker_run(
        StockArgs(
            mem_limit="1g",
            user="1000",
            cap_add=["NET_ADMIN"],
            log_opts_max_size="1m",
            explicit=frozenset({"mem_limit", "user", "cap_add", "log_opts_max_size"}),
        ),
        settings,
        run_labels={"containerkit.try_number": "2"},
    )
    assert given.host["mem_limit"] == given.host["memswap_limit"] == "1g"
    assert "mem_reservation" not in given.host
    assert given.create["user"] == "1000"
    assert given.policy["cap_add"] == ["NET_ADMIN"]
    assert given.policy["log_config"]["Config"] == {"max-size": "1m", "max-file": "3"}
    assert given.create["labels"] == {MANAGED_LABEL: "true", "containerkit.try_number": "2"}
    assert _rules(given.policy) == {"DKR-003"}


def test_secret_env_is_redacted_in_policy_even_when_read() -> None:
    spec = ContainerSpec("python:3.11-slim", secrets=[SecretRef("api", "token", env="API_TOKEN")])
    settings = render_docker(spec, secrets_dir="/srv/secrets")
    run = docker_run(StockArgs(), settings, rendered_environment={"API_TOKEN": "s3cr3t"})
    assert run.create["environment"] == {"API_TOKEN": "s3cr3t"}
    assert run.policy["environment"] == {"API_TOKEN": REDACTED}
    assert run.policy["secret_env"] == ["API_TOKEN"]
    assert "s3cr3t" not in repr(run.policy)


@pytest.fixture
def warn_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__CONTAINERKIT__POLICY_MODE", "warn")


@pytest.mark.usefixtures("warn_mode")
def test_operator_lint_and_task_policy_see_the_same_view() -> None:
    secure = SecureDockerOperator(task_id="secure", image="python:3.11-slim", mem_limit="1g", cpus=0.5)
    stock = DockerOperator(task_id="stock", image="python:3.11", cpus=2)
    for task in (secure, stock):
        target = task_target(task)
        assert target is not None
        assert target.data == docker_run_settings(task)
        assert {f.rule_id for f in check_task(task)} == _rules(target.data)
    assert docker_run_settings(secure) == secure.run_view().policy
    assert docker_run_settings(secure)["cpu_shares"] == 512
    assert docker_run_settings(secure)["nano_cpus"] == secure.render_settings().nano_cpus
    assert {f.rule_id for f in check_task(stock)} == STOCK_PLAIN
    assert {f.rule_id for f in check_task(secure)} == set()
