"""``scripts/compose_env.py`` (``make compose-env``): host values in, user edits kept, broken values replaced.

No engine or stack needed: ``--online`` skips the Docker Hub probe and the image checks, ``--no-build``
the builds; the secret files are written by the real ``docker/dev-secrets.sh``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOCKET = Path("/var/run/docker.sock")


def _project(tmp_path: Path) -> Path:
    shutil.copy2(REPO / ".env.example", tmp_path / ".env.example")
    (tmp_path / "docker").mkdir()
    shutil.copy2(REPO / "docker/dev-secrets.sh", tmp_path / "docker/dev-secrets.sh")
    return tmp_path


def _run(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts/compose_env.py"), "--dir", str(project), "--online",
         "--no-build"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def _values(project: Path) -> dict[str, str]:
    lines = (project / ".env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line[:1].isalpha())


def test_first_run_writes_host_values_and_secrets_and_a_rerun_changes_nothing(tmp_path: Path) -> None:
    project = _project(tmp_path)
    first = _run(project)
    assert first.returncode == 0, first.stdout + first.stderr
    values = _values(project)
    assert values["AIRFLOW_UID"] == str(os.getuid() or 50000) and values["AIRFLOW_UID"] != "0"
    if SOCKET.exists():
        assert values["DOCKER_GID"] == str(SOCKET.stat().st_gid)
        assert f"DOCKER_GID={values['DOCKER_GID']}  (group of {SOCKET}" in first.stdout
    # Every setting of the example survives (the file is edited in place, not regenerated).
    example = dict(
        line.split("=", 1)
        for line in (project / ".env.example").read_text().splitlines()
        if line[:1].isalpha()
    )
    assert set(example) <= set(values)
    secrets = {p.name for p in (project / "airflow-home/secrets").iterdir()}
    assert {"airflow_fernet_key", "airflow_admin_password", "airflow_db_conn"} <= secrets

    before = (project / ".env").read_text()
    again = _run(project)
    assert again.returncode == 0, again.stdout + again.stderr
    assert (project / ".env").read_text() == before
    assert "OVERWROTE" not in again.stdout and "  set " not in again.stdout, again.stdout


def test_user_edits_are_kept_and_only_values_that_cannot_work_are_overwritten_and_reported(
    tmp_path: Path,
) -> None:
    project = _project(tmp_path)
    (project / ".env").write_text(
        "# my settings\nAIRFLOW_UID=0\nDOCKER_GID=1\nAIRFLOW_API_PORT=18555\n"
        "AIRFLOW_WORKER_CONCURRENCY=8\nMY_OWN=x\n"
    )
    proc = _run(project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    values = _values(project)
    assert values["AIRFLOW_UID"] == str(os.getuid() or 50000)
    assert "OVERWROTE  AIRFLOW_UID=0 ->" in proc.stdout, proc.stdout
    if SOCKET.exists() and SOCKET.stat().st_gid != 1:
        assert values["DOCKER_GID"] == str(SOCKET.stat().st_gid)
        assert "OVERWROTE  DOCKER_GID=1 ->" in proc.stdout, proc.stdout
    # Not managed, or managed but workable: kept exactly, comment included.
    assert values["AIRFLOW_API_PORT"] == "18555" and values["AIRFLOW_WORKER_CONCURRENCY"] == "8"
    assert values["MY_OWN"] == "x" and (project / ".env").read_text().startswith("# my settings\n")
