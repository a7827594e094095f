"""Warn, once per dag-processor, when a DAG file makes every parse child import containerkit's operators.

The manager pre-imports only the ``airflow.*`` modules a DAG file names; a file importing
``containerkit.operators.*`` directly pays the operator's imports (the Kubernetes clients: seconds) in
each parse child on each loop. The fix is one import line, so the cost is named where it is paid.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import traceback
from pathlib import Path

log = logging.getLogger("containerkit.parse_cost")

PROVIDER_PACKAGE = "airflow.providers.containerkit"
_warned = False


def in_dag_processor_child() -> bool:
    """True inside a parse child the dag-processor forked (it keeps the manager's argv)."""
    return os.environ.get("_AIRFLOW_PROCESS_CONTEXT") == "client" and "dag-processor" in sys.argv[1:3]


def _importing_file() -> str:
    """The first frame outside the import machinery and containerkit: the DAG file doing the import."""
    for frame in reversed(traceback.extract_stack()):
        name = frame.filename
        if "importlib" in name or "/containerkit/" in name or name.startswith("<"):
            continue
        return name
    return "<unknown DAG file>"


def _first_in_this_manager() -> bool:
    """One warning per dag-processor: the first child of this manager to get here claims a marker file."""
    marker = Path(tempfile.gettempdir()) / f"containerkit-parse-cost-{os.getppid()}"
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return False
    except OSError:
        return True
    os.close(fd)
    return True


def warn_if_not_preimported() -> None:
    """Called when ``containerkit.operators`` is first imported; quiet outside dag-processor children."""
    global _warned
    if _warned or PROVIDER_PACKAGE in sys.modules or not in_dag_processor_child():
        return
    _warned = True
    if not _first_in_this_manager():
        return
    log.warning(
        "containerkit: %s imports containerkit.operators directly, so every dag-processor parse child "
        "imports the operator and its clients again (about 1-5 s per file, every parse loop). "
        "Fix: import from %s.operators.kubernetes / .operators.docker (or .decorators.*): the "
        "dag-processor manager then imports them once before it forks. Logged once per dag-processor.",
        _importing_file(),
        PROVIDER_PACKAGE,
    )
