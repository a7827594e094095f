"""The exception types containerkit raises to users.

One type per audience: ``SpecError`` for a bad container description (raised at DAG parse time),
``PolicyViolation`` for a rendered object that breaks an enforced rule, ``ContainerTaskFailed``
(in :mod:`containerkit.diagnostics.model`) for a container that failed at run time.
"""

from __future__ import annotations

import sys
from types import FrameType, TracebackType
from typing import Any

# Set by Airflow's DAG importer to the module it is executing while a DagBag parses a DAG file.
_DAG_CONTEXT_MODULE = "airflow.sdk.definitions._internal.contextmanager"


class ContainerkitError(Exception):
    """Base of every error containerkit raises on purpose.

    Raised while a DagBag imports a DAG file, its traceback starts at the DAG file's line: Airflow
    records the last ``[core] dagbag_import_error_traceback_depth`` frames as the import error, and
    those would otherwise be containerkit's own validation frames instead of the line to fix.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        tail = _dag_file_traceback()
        if tail is not None:
            self.__traceback__ = tail


class SpecError(ContainerkitError, ValueError):
    """An invalid container spec field: the message names the field, the bad value and the fix."""

    def __init__(self, field: str, value: Any, problem: str, fix: str) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        self.fix = fix
        super().__init__(f"{field}={value!r}: {problem}. Fix: {fix}")


def _dag_file_traceback() -> TracebackType | None:
    """The frames down to the innermost line of the DAG file being imported, or None outside an import.

    ``raise`` puts the raising frame (and the frames it unwinds through) *before* an exception's
    existing traceback, so the last entries Airflow prints are these: the DAG file's line and its callers.
    """
    context = sys.modules.get(_DAG_CONTEXT_MODULE)
    module = getattr(getattr(context, "DagContext", None), "current_autoregister_module_name", None)
    if not module:
        return None
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") != module:
        frame = frame.f_back
    frames: list[FrameType] = []
    while frame is not None and len(frames) < _traceback_depth():
        if not frame.f_code.co_filename.startswith("<frozen importlib"):  # as CPython hides them on import
            frames.append(frame)
        frame = frame.f_back
    tail: TracebackType | None = None
    for each in frames:  # innermost first: each becomes the caller of the previous
        tail = TracebackType(tail, each, each.f_lasti, each.f_lineno)
    return tail


def _traceback_depth() -> int:
    configuration = sys.modules.get("airflow.configuration")
    try:
        depth = configuration.conf.getint("core", "dagbag_import_error_traceback_depth", fallback=2)  # type: ignore[union-attr]
    except Exception:  # no Airflow configuration loaded: Airflow's default
        depth = 2
    return max(1, int(depth))
