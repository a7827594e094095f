"""The distribution installs into a fresh venv and registers itself as an Airflow provider."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _uv() -> str:
    found = shutil.which("uv") or str(Path.home() / ".local/bin/uv")
    if not Path(found).exists():
        pytest.fail("uv is required to build the fresh venv (make setup installs it)")
    return found


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    uv = _uv()
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    # A real (non-editable) build of the repo, with the committed constraints: what users get.
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(venv / "bin/python"), "-c", "constraints.txt", "."],
        check=True,
        cwd=REPO,
        timeout=600,
    )
    return venv


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(AIRFLOW_HOME=str(tmp), AIRFLOW__CORE__LOAD_EXAMPLES="False")
    return env


def test_providers_manager_lists_containerkit(fresh_venv: Path, tmp_path: Path) -> None:
    out = subprocess.run(
        [str(fresh_venv / "bin/airflow"), "providers", "list", "-o", "json"],
        check=True,
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=120,
    ).stdout
    providers = {p["package_name"]: p for p in json.loads(out[out.index("[") :])}
    assert "airflow-provider-containerkit" in providers, sorted(providers)
    from containerkit import __version__

    assert providers["airflow-provider-containerkit"]["version"] == __version__


def test_installed_package_is_typed_and_has_cli(fresh_venv: Path, tmp_path: Path) -> None:
    py = fresh_venv / "bin/python"
    code = (
        "import importlib.resources as r, containerkit; "
        "print(r.files('containerkit').joinpath('py.typed').is_file())"
    )
    typed = subprocess.run([str(py), "-c", code], check=True, capture_output=True, text=True).stdout
    assert typed.strip() == "True"
    help_out = subprocess.run(
        [str(fresh_venv / "bin/containerkit"), "--help"],
        check=True,
        capture_output=True,
        text=True,
        env=_env(tmp_path),
    ).stdout
    assert "lint" in help_out


def test_installed_package_serves_the_provider_namespace(fresh_venv: Path, tmp_path: Path) -> None:
    """A non-editable install puts the pre-importable modules under airflow/providers/containerkit."""
    code = (
        "import airflow.providers.containerkit.operators.kubernetes as k, "
        "airflow.providers.containerkit.operators.docker as d, containerkit.operators.kubernetes as ck; "
        "import importlib.metadata as m; "
        "print(k.SecureKubernetesPodOperator is ck.SecureKubernetesPodOperator, "
        "'site-packages/airflow/providers/containerkit' in k.__file__, "
        "sorted(e.value for e in m.entry_points(group='airflow.policy')))"
    )
    out = subprocess.run(
        [str(fresh_venv / "bin/python"), "-c", code],
        check=True,
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=180,
    ).stdout
    assert out.strip().splitlines()[-1] == "True True ['containerkit.policy.parse_log']"
