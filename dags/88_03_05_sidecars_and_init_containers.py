"""Pattern 88_03_05: a task pod with init containers and native sidecars, all hardened and sized.

The task reads SQL from a git checkout, connects to Postgres with a ``.pgpass`` file and writes a log that
a Fluent Bit sidecar ships. Each helper comes from a containerkit factory and is applied to the task's
:class:`~containerkit.spec.ContainerSpec` with ``spec.extend(...)``:

* ``wait_for_tcp``: an init container that holds the task until Postgres accepts connections, for at
  most 120 s, then fails with the address and the last error (not an endless ``CrashLoopBackOff``);
* ``secrets_to_file``: an init container that renders ``.pgpass`` from the ``orders-db`` Secret into a
  memory-backed volume (mode 0440), mounted read-only in ``base``: the password is never in env;
* ``git_sync(one_time=True)``: clones the pinned SQL release before the task starts;
* ``log_shipper``: a native sidecar (``restartPolicy: Always``) that reads ``/var/log/task`` read-only
  and is stopped after ``base`` exits, so the pod completes when the task does.

Every container runs with the task's restricted profile and the ``xs`` preset; the pod passes the Pod
Security Standards restricted rules at DAG parse time (policy ``enforce``). Needs a cluster with the
``orders-db`` Secret and the ``orders-etl-fluent-bit`` ConfigMap in the task namespace.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag

from containerkit.kubernetes.init_containers import wait_for_tcp
from containerkit.kubernetes.sidecars import git_sync, log_shipper, secrets_to_file
from containerkit.operators.kubernetes import SecureKubernetesPodOperator
from containerkit.spec import ContainerSpec, SecretRef
from containerkit_examples import KUBERNETES_NAMESPACE, PYTHON_IMAGE

DB_HOST = "postgres.db.svc.cluster.local"
SCRIPT = """
import pathlib, sys
sql = sorted(pathlib.Path("/git/repo/sql").glob("*.sql"))
if not pathlib.Path("/run/ck/.pgpass").is_file():
    sys.exit("missing /run/ck/.pgpass")
log = pathlib.Path("/var/log/task/orders.log")
log.write_text("".join(f"would run {p.name}\\n" for p in sql))
print(f"{len(sql)} SQL files, log at {log}")
"""

SPEC = ContainerSpec(
    PYTHON_IMAGE,
    command=["python", "-c", SCRIPT],
    env={"PGPASSFILE": "/run/ck/.pgpass", "PGHOST": DB_HOST},
    resources="s",
    labels={"app": "orders-etl"},
    active_deadline_seconds=1800,
).extend(
    wait_for_tcp(DB_HOST, 5432, timeout_seconds=120),
    secrets_to_file(
        "/run/ck/.pgpass",
        f"{DB_HOST}:5432:orders:etl:${{PGPASSWORD}}\n",
        [SecretRef("orders-db", "password", env="PGPASSWORD")],
    ),
    git_sync("https://github.com/example/orders-sql.git", ref="v1.4.0", one_time=True),
    log_shipper("orders-etl-fluent-bit"),
)


@dag(
    dag_id="88_03_05_sidecars_and_init_containers",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["containerkit", "pattern:sidecars-init-containers", "needs:kubernetes"],
    doc_md=__doc__,
)
def sidecars_and_init_containers() -> None:
    SecureKubernetesPodOperator(
        task_id="load_orders",
        name="load-orders",
        namespace=KUBERNETES_NAMESPACE,
        spec=SPEC,
        get_logs=True,
    )


sidecars_and_init_containers()
