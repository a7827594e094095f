"""The Diagnosis of a task stopped by its ``execution_timeout``: which deadline, and what was cleaned up.

Both operators raise it instead of Airflow's bare ``AirflowTaskTimeout: Timeout, PID: ...``, so the user
reads the limit they set and whether anything was left behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from containerkit.diagnostics.model import Diagnosis

EXECUTION_TIMEOUT = "DeadlineExceeded:execution_timeout"


def execution_timeout_diagnosis(
    timeout: timedelta | None,
    *,
    cleaned_up: Sequence[str],
    left_behind: Sequence[str] = (),
    evidence: Sequence[str] = (),
    container: str | None = None,
    exit_code: int | None = None,
) -> Diagnosis:
    """``cleaned_up``/``left_behind``: one phrase per object (``"container 1a2b3c stopped and removed"``)."""
    limit = f"execution_timeout={timeout} ({timeout.total_seconds():g} s)" if timeout else "execution_timeout"
    done = "; ".join(cleaned_up) or "nothing to clean up"
    summary = f"the task ran longer than its {limit} and was stopped; {done}"
    if left_behind:
        summary += f"; NOT cleaned up: {'; '.join(left_behind)}"
    return Diagnosis(
        cause=EXECUTION_TIMEOUT,
        summary=summary,
        fix="If the work is expected to take this long, raise execution_timeout; otherwise find what made "
        "this run slow in the last log lines (a hang, a slow dependency, too little CPU).",
        evidence=tuple(evidence),
        container=container,
        exit_code=exit_code,
        details={"execution_timeout_seconds": f"{timeout.total_seconds():g}" if timeout else ""},
    )
