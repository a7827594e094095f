"""The import error a DAG author sees when a containerkit operator refuses bad input at parse.

A real ``DagBag`` imports bad DAG files from a temp folder; Airflow records the last
``[core] dagbag_import_error_traceback_depth`` frames and the message. Those frames must be the DAG
file's line (not containerkit's validation code), and the message must come first on its line.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

HEADER = "import datetime\n\nfrom airflow.sdk import DAG, dag\n"

FILES = {
    # line 7 holds the call: three header lines, a blank one, the import and the `with` (or `def`)
    "bad_env.py": """
        from containerkit.operators.docker import SecureDockerOperator
        with DAG("bad_env", schedule=None, start_date=datetime.datetime(2026, 1, 1)):
            SecureDockerOperator(
                task_id="run",
                image="python:3.11-slim-bookworm",
                environment={"MY VAR": "1"},
            )
        """,
    "bad_secret_env.py": """
        from containerkit.operators.kubernetes import SecureKubernetesPodOperator
        with DAG("bad_secret_env", schedule=None, start_date=datetime.datetime(2026, 1, 1)):
            SecureKubernetesPodOperator(
                task_id="run", image="python:3.11-slim-bookworm", env_vars={"PASSWORD": "x"}
            )
        """,
    "bad_in_function.py": """
        from containerkit.operators.docker import SecureDockerOperator
        def make_task():
            return SecureDockerOperator(task_id="run", image="python:3.11-slim-bookworm", stop_timeout=-5)
        @dag(schedule=None, start_date=datetime.datetime(2026, 1, 1))
        def bad_in_function():
            make_task()
        bad_in_function()
        """,
}
# file -> (the DAG file's line Airflow must show, how the message starts)
EXPECTED = {
    "bad_env.py": (
        7,
        "containerkit.errors.SpecError: environment['MY VAR']='MY VAR': not a valid environment",
    ),
    "bad_secret_env.py": (
        7,
        "containerkit.policy.enforce.PolicyViolation: containerkit policy: task 'run' pod",
    ),
    "bad_in_function.py": (7, "containerkit.errors.SpecError: stop_timeout=-5: "),
}
FRAME = re.compile(r'^  File "(?P<file>[^"]+)", line (?P<line>\d+), in ', re.MULTILINE)


@pytest.fixture(scope="module")
def dag_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bad-dags")
    for name, body in FILES.items():
        (folder / name).write_text(HEADER + textwrap.dedent(body))
    return folder


def _import_errors(folder: Path) -> dict[str, str]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(folder))
    assert bag.dags == {}
    return {Path(path).name: text for path, text in bag.import_errors.items()}


def _containerkit_frames(text: str) -> list[str]:
    import containerkit

    root = str(Path(containerkit.__file__).parent)
    return [m.group(0) for m in FRAME.finditer(text) if m.group("file").startswith(root)]


@pytest.mark.parametrize("depth", ["2", "6"])
def test_the_import_error_shows_the_dag_files_line_and_no_containerkit_frames(
    dag_folder: Path, depth: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__DAGBAG_IMPORT_ERROR_TRACEBACKS", "True")
    monkeypatch.setenv("AIRFLOW__CORE__DAGBAG_IMPORT_ERROR_TRACEBACK_DEPTH", depth)
    errors = _import_errors(dag_folder)
    assert set(errors) == set(FILES)
    for name, text in errors.items():
        line, message = EXPECTED[name]
        assert _containerkit_frames(text) == [], text
        frames = [(Path(m.group("file")).name, int(m.group("line"))) for m in FRAME.finditer(text)]
        assert frames[-1] == (name, line), text  # the innermost frame is the DAG file's line to fix
        assert len(frames) == int(depth), text
        assert "<frozen importlib" not in text, text
        source = (dag_folder / name).read_text().splitlines()[line - 1].strip()
        assert f"    {source}\n" in text, text
        first = next(ln for ln in text.splitlines() if not ln.startswith((" ", "Traceback")))
        assert first.startswith(message), text


def test_without_tracebacks_the_import_error_is_the_message(
    dag_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__DAGBAG_IMPORT_ERROR_TRACEBACKS", "False")
    errors = _import_errors(dag_folder)
    for name, text in errors.items():
        expected = EXPECTED[name][1].split(": ", 1)[1]
        assert text.startswith(expected), text
        assert "Traceback" not in text and "File " not in text


def test_outside_a_dag_import_the_traceback_is_left_alone() -> None:
    """Tests and scripts that build an operator keep the full traceback down to the check that refused."""
    from containerkit.errors import SpecError
    from containerkit.operators.docker import SecureDockerOperator

    with pytest.raises(SpecError) as info:
        SecureDockerOperator(task_id="run", image="python:3.11-slim-bookworm", environment={"MY VAR": "1"})
    files = [entry.path for entry in info.traceback]
    assert any(p.endswith("containerkit/operators/validation.py") for p in map(str, files))
