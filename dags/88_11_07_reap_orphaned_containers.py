"""Reap orphaned task containers and pods on a schedule; Airflow says which tries run (containerkit 88_11_07).

**Problem.** A worker killed with ``kill -9``, a lost node, or a task marked failed or success by hand
never runs its operator's cleanup: its container keeps running to the end and then stays as
``Exited``; a pod may stay ``Running``. ``SecureDockerOperator`` removes what earlier tries of the
*same* task instance left when the next try starts, but a task instance that is never tried again
(no retries left, success marked in the UI, DAG run deleted) leaves its container forever.

**Practice.** Run a reaper on a schedule. It lists every containerkit task container on the Docker
engine (labels ``containerkit.dag_id/task_id/run_id/try_number/map_index``) and every
KubernetesPodOperator pod (the stock ``dag_id/task_id/run_id/try_number`` labels), asks Airflow's REST
API which task instances are running, deferred, queued, scheduled or restarting, and removes the
others, once they are older than a minimum age. A container or pod of a DAG this Airflow does not know
is kept (another deployment may share the engine). This is ``containerkit reap`` (the same code) run
as a DAG; from cron or a CI job run ``containerkit reap --api-url ... --min-age 30m`` instead.

**Where each part is.** ``reap_docker_containers``: containers on the engine the worker reaches;
``reap_kubernetes_pods``: pods in ``CONTAINERKIT_NAMESPACE`` on the ``kubernetes_default`` cluster. Each
logs one line per container or pod (removed or kept, and why) and returns the list as XCom. DAG params:
``dry_run`` (say, do not remove), ``min_age_minutes`` and ``labels`` (only objects with these labels).

**When copying.** Create the connection ``containerkit_airflow_api`` (type http; host = the
api-server's base URL; login/password of a user with the *viewer* role, or extra ``{"token": ...}``).
Keep ``max_active_runs=1`` and a ``min_age_minutes`` longer than your slowest task start. Its own task
runs in the worker, not in a container: it needs the Docker socket the worker already uses.

**Needs.** A Docker engine (``needs:docker``) and the Airflow API: the connection above, or the compose
stack (``needs:compose``: its api-server and admin password file). Without either, the reap tasks skip
with the reason. Pods are reaped only where the ``kubernetes_default`` connection is set.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

API_CONN_ID = "containerkit_airflow_api"
KUBERNETES_CONN_ID = "kubernetes_default"
NAMESPACE = os.environ.get("CONTAINERKIT_NAMESPACE", "airflow-tasks")
# The compose stack's api-server and admin password (docker-compose.yaml); elsewhere use the connection.
COMPOSE_API_URL = os.environ.get("CONTAINERKIT_API_URL", "http://airflow-apiserver:8080")
COMPOSE_API_USER = os.environ.get("CONTAINERKIT_API_USER", "admin")
COMPOSE_PASSWORD_FILE = os.environ.get(
    "CONTAINERKIT_API_PASSWORD_FILE", "/run/secrets/airflow_admin_password"
)


def _skip(reason: str) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    raise AirflowSkipException(reason)


def _connection_defined(conn_id: str) -> bool:
    from airflow.sdk import Connection

    try:
        Connection.get(conn_id)
    except Exception:  # AirflowNotFoundException, or a secrets backend that has no such key
        return False
    return True


def _api() -> Any:
    """The Airflow API client: the connection, else the compose stack's api-server; skip without."""
    from containerkit.reap import AirflowApi, ApiSettings
    from containerkit.reap.api import settings_from_connection

    if _connection_defined(API_CONN_ID):
        return AirflowApi(settings_from_connection(API_CONN_ID))
    if os.environ.get("CONTAINERKIT_IN_COMPOSE") == "1" and Path(COMPOSE_PASSWORD_FILE).is_file():
        password = Path(COMPOSE_PASSWORD_FILE).read_text().strip()
        settings = ApiSettings(url=COMPOSE_API_URL, username=COMPOSE_API_USER, password=password)
        return AirflowApi(settings)
    _skip(
        f"needs:compose: no Airflow API to ask which tries still run: create the connection {API_CONN_ID!r} "
        f"(e.g. AIRFLOW_CONN_{API_CONN_ID.upper()}='http://USER:PASSWORD@airflow-apiserver:8080', a viewer "
        "user), or run in the compose stack"
    )


def _run(make_source: Any) -> dict[str, Any]:
    """Reap one source; the API is resolved first, so a task with no API to ask skips untouched."""
    from containerkit.reap import parse_labels, reap

    api = _api()
    params = get_current_context()["params"]
    result = reap(
        [make_source()],
        api,
        min_age=timedelta(minutes=int(params["min_age_minutes"])),
        dry_run=bool(params["dry_run"]),
        labels=parse_labels(list(params["labels"])),
        report=print,
    )
    print(result.summary())
    if result.failed:
        raise RuntimeError(f"{len(result.failed)} could not be removed: {result.as_dict()['failed']}")
    return result.as_dict()


@dag(
    dag_id="88_11_07_reap_orphaned_containers",
    schedule=timedelta(minutes=30),
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["reference", "containerkit", "needs:docker", "needs:compose"],
    params={
        "dry_run": Param(False, type="boolean", description="Say what would be removed; remove nothing."),
        "min_age_minutes": Param(30, type="integer", minimum=0, description="Keep anything younger."),
        "labels": Param(
            [], type="array", items={"type": "string"}, description="Only with these key=value labels."
        ),
    },
    default_args={
        "retries": 1,
        "retry_delay": timedelta(minutes=1),
        "execution_timeout": timedelta(minutes=10),
    },
    doc_md=__doc__,
)
def reap_orphaned_containers() -> None:
    @task
    def reap_docker_containers() -> dict[str, Any]:
        """Remove task containers on this worker's Docker engine that no running try claims."""
        from containerkit.reap import DockerWorkloads

        return _run(DockerWorkloads)

    @task
    def reap_kubernetes_pods() -> dict[str, Any]:
        """Remove KubernetesPodOperator pods in CONTAINERKIT_NAMESPACE that no running try claims."""
        from containerkit.reap import PodWorkloads, kubernetes_core_v1

        if not _connection_defined(KUBERNETES_CONN_ID):
            _skip(f"needs:kubernetes: no connection {KUBERNETES_CONN_ID!r}: set it to reap pods too")
        return _run(lambda: PodWorkloads(kubernetes_core_v1(conn_id=KUBERNETES_CONN_ID)[0], [NAMESPACE]))

    reap_docker_containers()
    reap_kubernetes_pods()


reap_orphaned_containers()
