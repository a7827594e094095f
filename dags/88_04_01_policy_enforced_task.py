"""Pattern 88_04_01: policy enforced at DAG parse time, with a per-task exemption that gives its reason.

Every containerkit task is checked against the policy rules on what it will actually run. Under
``policy_mode="enforce"`` (the default, ``[containerkit] policy_mode``) an error-level finding fails the
DAG import with the findings and their fixes in the import error. A task may be exempt from a named rule,
and must say why: here ``TOKEN_LIMIT`` trips the literal-secret rule (``DKR-012``) although it is a
batch size, so ``tokenize`` carries ``policy_exemptions={"DKR-012": "<reason>"}``.
``prove_enforcement`` shows the same task without the exemption is refused, with the rule id in the
message.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from containerkit.operators.docker import SecureDockerOperator
from containerkit_examples import PYTHON_IMAGE

TOKEN_ENV = {"TOKEN_LIMIT": "4096"}
TOKEN_EXEMPTION = {"DKR-012": "TOKEN_LIMIT is a batch size (tokens per request), not a credential"}


@dag(
    dag_id="88_04_01_policy_enforced_task",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["containerkit", "pattern:policy-exemption", "needs:docker"],
    doc_md=__doc__,
)
def policy_enforced_task() -> None:
    SecureDockerOperator(
        task_id="tokenize",
        image=PYTHON_IMAGE,
        command=["python", "-c", "import os; print(int(os.environ['TOKEN_LIMIT']) // 2)"],
        environment=TOKEN_ENV,
        resources="xs",
        policy_mode="enforce",
        policy_exemptions=TOKEN_EXEMPTION,
    )

    @task
    def prove_enforcement() -> str:
        """Build the same task without its exemption: enforcement must refuse it and name the rule."""
        from containerkit.policy.enforce import PolicyViolation

        try:
            SecureDockerOperator(
                task_id="tokenize_unexempted",
                image=PYTHON_IMAGE,
                command=["python", "-c", "print(1)"],
                environment=TOKEN_ENV,
                resources="xs",
                policy_mode="enforce",
            )
        except PolicyViolation as exc:
            if "DKR-012" not in str(exc):
                raise AssertionError(f"refused for the wrong reason: {exc}") from exc
            return "refused: DKR-012"
        raise AssertionError("a literal secret-like env value was not refused under enforce")

    prove_enforcement()


policy_enforced_task()
