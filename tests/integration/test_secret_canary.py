"""One canary secret through every documented secret channel; it must surface nowhere people read.

Channels (one DAG run through ``dag.test()``):

- Docker: ``SecretRef(path=...)`` from ``secrets_dir`` (a read-only file mount);
- TaskFlow on Docker: an Airflow connection password and a Variable, rendered from templated
  arguments (``{{ conn... }}``, ``{{ var.value... }}``) and staged into the container as a file;
- Kubernetes (the local Docker-backed test double): a Secret as ``SecretRef(env=...)`` and as
  ``SecretRef(path=...)`` (a Secret volume).

Each container proves it received the value by returning a hash prefix of it. The canary must not be in
``docker inspect`` of any task container (except the Kubernetes env var the user chose), the pod as
submitted, the task logs, the XComs, the rendered template fields, or any table of the metadata DB.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

LABEL = {"containerkit.test": "canary"}
CANARY = "ck-canary-" + secrets.token_hex(12)
DIGEST = hashlib.sha256(CANARY.encode()).hexdigest()[:16]
CONN_ID, VAR_KEY = "ck_canary_api", "ck_canary_secret"
K8S_SECRET = "ck-canary"

READ_FILE = (
    "import hashlib, json, pathlib, sys; data = pathlib.Path(sys.argv[1]).read_text().strip(); "
    "print(json.dumps({'digest': hashlib.sha256(data.encode()).hexdigest()[:16]}))"
)
K8S_SCRIPT = (
    "import hashlib, json, os, pathlib; h = lambda s: hashlib.sha256(s.strip().encode()).hexdigest()[:16]; "
    "f = pathlib.Path('/run/secrets/canary/token').read_text(); "
    "print('env', h(os.environ['CANARY_TOKEN']), 'file', h(f))"
)


@pytest.fixture
def secret_channels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The canary in a secrets_dir file (0440), an Airflow connection and a Variable (env secrets backend)."""
    secrets_dir = tmp_path / "secrets"
    (secrets_dir / "api").mkdir(parents=True)
    token = secrets_dir / "api" / "token"
    token.write_text(CANARY)
    if os.geteuid() == 0:
        os.chown(token, 50000, 0)  # what a secret agent does: owned by the task's uid, group 0, 0440
        token.chmod(0o440)
    else:  # without root the file cannot be given to uid 50000: readable by all, for this test only
        token.chmod(0o444)
    secrets_dir.chmod(0o755)
    (secrets_dir / "api").chmod(0o755)
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        json.dumps({"conn_type": "http", "host": "api.example", "login": "etl", "password": CANARY}),
    )
    monkeypatch.setenv(f"AIRFLOW_VAR_{VAR_KEY.upper()}", CANARY)
    return secrets_dir


@pytest.fixture
def no_leftovers(docker_client: docker.DockerClient) -> Iterator[None]:
    yield
    for container in docker_client.containers.list(all=True, filters={"label": "containerkit.test=canary"}):
        container.remove(force=True, v=True)


def _dag(secrets_dir: Path, namespace: str, image: str) -> Any:
    from airflow.sdk import DAG, task

    from containerkit.operators.docker import SecureDockerOperator
    from containerkit.operators.kubernetes import SecureKubernetesPodOperator
    from containerkit.spec import SecretRef

    with DAG(
        "ck_secret_canary", schedule=None, start_date=datetime.datetime(2026, 1, 1), catchup=False
    ) as dag:
        SecureDockerOperator(
            task_id="docker_file",
            image=image,
            command=["python", "-c", READ_FILE, "/run/secrets/api/token"],
            secrets_dir=str(secrets_dir),
            secret_refs=[SecretRef("api", "token", path="/run/secrets/api/token")],
            labels=LABEL,
            auto_remove="never",  # kept for docker inspect; removed by the test
        )

        @task.secure_docker(image=image, labels=LABEL, auto_remove="never")
        def templated(password: str, variable: str) -> dict[str, str]:
            import hashlib

            return {
                k: hashlib.sha256(v.encode()).hexdigest()[:16]
                for k, v in (("conn", password), ("var", variable))
            }

        templated(f"{{{{ conn.{CONN_ID}.password }}}}", f"{{{{ var.value.{VAR_KEY} }}}}")

        SecureKubernetesPodOperator(
            task_id="k8s_env_and_volume",
            namespace=namespace,
            image=image,
            cmds=["python", "-c", K8S_SCRIPT],
            secret_refs=[
                SecretRef(K8S_SECRET, "token", env="CANARY_TOKEN"),
                SecretRef(K8S_SECRET, "token", path="/run/secrets/canary/token"),
            ],
            on_finish_action="keep_pod",  # its container stays for docker inspect; the namespace goes after
            startup_check_interval_seconds=1,
            poll_interval=0.5,
        )
    return dag


def _xcoms(dagrun: Any) -> dict[str, Any]:
    """The return values of the run, as the metadata DB stores them."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(XComModel.task_id, XComModel.value).where(
                XComModel.dag_id == dagrun.dag_id,
                XComModel.run_id == dagrun.run_id,
                XComModel.key == "return_value",
            )
        ).all()
    return {
        task_id: XComModel.deserialize_value(type("X", (), {"value": value})()) for task_id, value in rows
    }


def _db_rows_with(db: Path, needle: str) -> dict[str, int]:
    """Every table of the SQLite metadata DB, every column as text: where does ``needle`` occur?"""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        found: dict[str, int] = {}
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            columns = [r[1] for r in con.execute(f'PRAGMA table_info("{table}")')]
            for column in columns:
                where = f'INSTR(CAST("{column}" AS BLOB), CAST(? AS BLOB)) > 0'
                query = f'SELECT COUNT(*) FROM "{table}" WHERE {where}'
                hits = con.execute(query, (needle,)).fetchone()[0]
                if hits:
                    found[f"{table}.{column}"] = hits
        assert tables, "no tables: wrong DB file"
        return found
    finally:
        con.close()


def test_a_canary_secret_surfaces_nowhere(
    secret_channels: Path,
    kubernetes_default: Any,
    k8s_namespace: str,
    k8s_secret: Any,
    python_image: str,
    docker_client: docker.DockerClient,
    no_leftovers: None,
    run_dag: Any,
    airflow_db: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    k8s_secret(K8S_SECRET, {"token": CANARY})
    dag = _dag(secret_channels, k8s_namespace, python_image)
    dagrun = run_dag(dag)
    tis = {ti.task_id: ti for ti in dagrun.get_task_instances()}
    assert {t: str(ti.state) for t, ti in tis.items()} == dict.fromkeys(tis, "success")

    # Every channel delivered the value (its hash came back) ...
    logs = "".join(capfd.readouterr()) + caplog.text
    xcoms = _xcoms(dagrun)
    docker_file = xcoms["docker_file"]
    assert (json.loads(docker_file) if isinstance(docker_file, str) else docker_file) == {"digest": DIGEST}
    assert xcoms["templated"] == {"conn": DIGEST, "var": DIGEST}
    assert f"env {DIGEST} file {DIGEST}" in logs
    assert logs.count(DIGEST) >= 3  # the task logs hold the containers' output (the digests, not the value)

    # ... and the value itself is nowhere: logs, XComs, rendered template fields,
    assert CANARY not in logs
    assert CANARY not in json.dumps(xcoms, default=str)
    from airflow.models.renderedtifields import RenderedTaskInstanceFields

    for ti in tis.values():
        rendered = RenderedTaskInstanceFields.get_templated_fields(ti) or {}
        assert rendered, ti.task_id  # Airflow stored what it rendered: the check below has something to read
        assert CANARY not in json.dumps(rendered, default=str), (ti.task_id, rendered)

    # docker inspect of every task container (the Kubernetes one holds only the env the user chose),
    kept = docker_client.containers.list(all=True, filters={"label": "containerkit.test=canary"})
    assert len(kept) == 2
    mounts = set()
    for container in kept:
        inspect = docker_client.api.inspect_container(container.id)
        assert CANARY not in json.dumps(inspect), container.name
        mounts.update(m["Destination"] for m in inspect["Mounts"])
    assert {"/run/secrets/api/token", "/run/containerkit"} <= mounts  # the file mount and the staged args
    pod_containers = docker_client.containers.list(
        all=True,
        filters={
            "label": [
                f"containerkit.testing/namespace={k8s_namespace}",
                "containerkit.testing/container=base",
            ]
        },
    )
    assert len(pod_containers) == 1
    for container in pod_containers:
        inspect = docker_client.api.inspect_container(container.id)
        assert inspect["Config"]["Env"].count(f"CANARY_TOKEN={CANARY}") == 1
        inspect["Config"]["Env"].remove(f"CANARY_TOKEN={CANARY}")
        assert CANARY not in json.dumps(inspect), container.name
    # the pod as submitted (secretKeyRef and a Secret volume, never the value),
    for pod in kubernetes_default.submitted("Pod", k8s_namespace):
        assert CANARY not in json.dumps(pod)
    # and every table of the metadata DB.
    db = Path(os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///"))
    assert _db_rows_with(db, CANARY) == {}
    assert "dag_run.dag_id" in _db_rows_with(db, "ck_secret_canary")  # the grep does find what is there
