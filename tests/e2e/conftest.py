"""Print where the compose e2e test left its screenshots and timings (CI keeps no files: read the log)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
_STARTED = time.time()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    fresh = [d for d in sorted(ARTIFACTS.glob("ck-e2e-*")) if d.is_dir() and d.stat().st_mtime >= _STARTED]
    for directory in fresh:
        terminalreporter.write_line(f"e2e artifacts: {directory}")
        timings = directory / "timings.json"
        if timings.exists():
            terminalreporter.write_line(f"e2e timings: {timings.read_text().strip()}")
