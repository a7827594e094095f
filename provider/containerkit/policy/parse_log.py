"""One log line per DAG for the policy findings that do not fail the parse.

Every container task is checked while its DAG file is parsed, and the dag-processor parses every file
every loop: a warning block per task per loop buries the dag-processor log. Findings below the enforce
threshold (and exemptions) of tasks built inside a DAG are held here and written as one line when
Airflow hands the finished DAG to its ``dag_policy`` hook (registered through the ``airflow.policy``
entry point); a clean task logs nothing. Tasks built outside a DAG are logged at once, as before.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # every Airflow process loads this plugin: keep its import to the standard library
    from containerkit.policy.model import Finding

log = logging.getLogger("containerkit.policy.enforce")

# dag_id -> (task label, finding) and (task label, exempted rule id) held until the DAG is complete.
_pending: dict[str, list[tuple[str, Finding]]] = {}
_exempted: dict[str, list[tuple[str, str]]] = {}


def current_dag_id() -> str | None:
    """The dag_id of the DAG being defined (``with DAG(...)`` / ``@dag``), if any."""
    try:
        from airflow.sdk.definitions._internal.contextmanager import DagContext
    except ImportError:  # no Task SDK: nothing is parsed, log at once
        return None
    dag = DagContext.get_current()
    return getattr(dag, "dag_id", None)


def hold(dag_id: str, where: str, findings: Iterable[Finding], exempted: Iterable[str]) -> None:
    """Keep a task's non-failing findings and exemptions for the DAG's summary line."""
    _pending.setdefault(dag_id, []).extend((where, f) for f in findings)
    _exempted.setdefault(dag_id, []).extend((where, r) for r in exempted)


def summary(dag_id: str) -> str | None:
    """The one line for ``dag_id`` (and forget it); ``None`` when nothing was held."""
    findings = _pending.pop(dag_id, [])
    exempted = _exempted.pop(dag_id, [])
    if not findings and not exempted:
        return None
    by_rule = Counter(f.rule_id for _, f in findings)
    tasks = {where for where, _ in findings}
    parts = [f"{rule} x{n}" if n > 1 else rule for rule, n in sorted(by_rule.items())]
    line = (
        f"containerkit policy: DAG {dag_id}: {len(findings)} finding(s) below enforce in {len(tasks)} task(s)"
    )
    if parts:
        line += f" ({', '.join(parts)})"
    if exempted:
        line += f"; {len(exempted)} exempted ({', '.join(sorted({r for _, r in exempted}))})"
    return line + "; `containerkit lint <dag file>` lists each with its fix"


def level_of(dag_id: str) -> int:
    from containerkit.policy.model import Severity

    held = _pending.get(dag_id, [])
    return logging.WARNING if any(f.severity is not Severity.INFO for _, f in held) else logging.INFO


def flush(dag_id: str) -> None:
    """Write the summary line for a finished DAG."""
    level = level_of(dag_id)
    line = summary(dag_id)
    if line:
        log.log(level, "%s", line)


from airflow.policies import hookimpl  # noqa: E402 - this module is only loaded as Airflow's policy plugin


@hookimpl
def dag_policy(dag: Any) -> None:
    """Airflow calls this once per DAG after its file is parsed: the moment to write the summary."""
    flush(dag.dag_id)
