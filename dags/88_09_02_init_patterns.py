"""Init containers: wait for a dependency, render configuration, run a migration, fix volume permissions.

**Problem.** Task code that retries its database connection, templates its own config files, migrates the
schema "if needed" and chowns its volumes mixes setup with work, runs all of it with the task's
privileges, and fails in ways that name none of it. Init containers run each step to completion, in
order, before the task starts, each with only what it needs.

**Practice.** The task pod is rendered from one ``ContainerSpec`` extended with containerkit's factories
(``containerkit.kubernetes.init_containers`` and ``sidecars.secrets_to_file``), in this order:

* *Dependency wait*: ``wait_for_tcp`` holds the pod until the database (``start_database``: a pod that
  starts listening after 3 s) accepts connections, for at most 60 s, then fails naming the address and the
  last error (not an endless CrashLoopBackOff).
* *Configuration setup*: ``secrets_to_file`` renders ``.pgpass`` from the ``orders-db`` Secret into a
  memory-backed volume (mode 0440), mounted read-only in ``base``; the password is never in the pod spec
  or the task's env.
* *Migration runners*: ``migration_runner`` runs the schema migration (``MIGRATE 42`` against the database)
  to completion before the task.
* *Permission setup*: ``volume_permissions(fs_group_works=False)``, the root ``chown`` init container for
  volumes where fsGroup cannot work (hostPath, NFS), with only ``CHOWN``/``FOWNER`` and the exemptions it
  needs named with their reason.

The task (``load_orders``, ``SecureKubernetesPodOperator``) proves every effect: its first connection
succeeds without retrying, the database accepts the password read from ``.pgpass`` (0440), the schema is
at version 42, and ``/data`` is owned by 50000:0 and writable; ``check_effects`` asserts the report.

The database address is known only at run time, so the pod is passed as ``pod_template_dict`` (a
templated field): the factories render it at parse time with a Jinja placeholder for the address, policy
checks the rendered pod at parse time here and the operator checks the final pod again at run time.

**Copying.** Replace the demo database with yours (on a real cluster its address is the Service's DNS
name, which ``start_database`` returns there), your migration image and command, and drop
``volume_permissions`` where fsGroup works (emptyDir, most CSI volumes): it is the only part below PSS
restricted. Set ``CONTAINERKIT_PYTHON_IMAGE`` and ``CONTAINERKIT_NAMESPACE``.

**Needs.** A Kubernetes cluster (the local Docker-backed test double in CI).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.kubernetes import SecureKubernetesPodOperator
from airflow.sdk import dag, task, teardown

from containerkit.kubernetes.init_containers import migration_runner, volume_permissions, wait_for_tcp
from containerkit.kubernetes.manifests import to_dict
from containerkit.kubernetes.pod import full_pod_spec
from containerkit.kubernetes.sidecars import secrets_to_file
from containerkit.policy.enforce import check_pod
from containerkit.spec import ContainerSpec, EmptyDir, Probe, Probes, SecretRef, VolumeMount

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
NAMESPACE = os.environ.get("CONTAINERKIT_NAMESPACE", "airflow-tasks")
DAG_ID = "88_09_02_init_patterns"
SECRET = "orders-db"
DB_NAME = "orders-db"
# Rendered at run time (pod_template_dict is templated); no spaces: the factories validate host names.
DB_HOST = "{{ti.xcom_pull(task_ids='start_database')}}"
PERMISSIONS_REASON = "demo of the hostPath/NFS case, where the kubelet cannot apply fsGroup"

DATABASE = """
import os, socket, time
time.sleep(3)  # a database that takes a moment to start
password, version = os.environ["DB_PASSWORD"], 0
server = socket.create_server(("0.0.0.0", 5432))
print("listening on 5432", flush=True)
while True:
    conn, _ = server.accept()
    with conn, conn.makefile("rw") as f:
        for line in f:
            cmd, _, arg = line.strip().partition(" ")
            if cmd == "MIGRATE":
                version, reply = int(arg), "OK"
            elif cmd == "VERSION":
                reply = str(version)
            elif cmd == "AUTH":
                reply = "OK" if arg == password else "DENIED"
            else:
                reply = "ERR"
            print(cmd, reply, flush=True)
            f.write(reply + "\\n")
            f.flush()
"""
MIGRATE = """
import os, socket
with socket.create_connection((os.environ["DB_HOST"], 5432), timeout=5) as conn, conn.makefile("rw") as f:
    f.write("MIGRATE " + os.environ["TARGET_VERSION"] + "\\n")
    f.flush()
    assert f.readline().strip() == "OK", "migration refused"
print("schema migrated to", os.environ["TARGET_VERSION"])
"""
TASK = """
import json, os, pathlib, socket
conn = socket.create_connection((os.environ["DB_HOST"], 5432), timeout=5)  # no retry loop: init waited
f = conn.makefile("rw")
def ask(query):
    f.write(query + "\\n")
    f.flush()
    return f.readline().strip()
pgpass = pathlib.Path(os.environ["PGPASSFILE"])
host, port, database, user, password = pgpass.read_text().strip().split(":", 4)
data = os.stat("/data")
pathlib.Path("/data/orders.csv").write_text("id\\n1\\n")
report = {
    "first_connect": "ok",
    "pgpass_mode": oct(pgpass.stat().st_mode & 0o777),
    "pgpass_host_matches": host == os.environ["DB_HOST"],
    "password_in_env": any(v == password for v in os.environ.values()),
    "auth": ask("AUTH " + password),
    "schema_version": ask("VERSION"),
    "data_owner": f"{data.st_uid}:{data.st_gid}",
    "data_mode": oct(data.st_mode & 0o777),
}
print(json.dumps(report))
pathlib.Path("/airflow/xcom/return.json").write_text(json.dumps(report))
"""

SPEC = ContainerSpec(
    PYTHON_IMAGE,
    command=["python", "-c", TASK],
    env={"DB_HOST": DB_HOST, "PGPASSFILE": "/run/ck/.pgpass"},
    volumes=[EmptyDir("data", size_limit="64Mi")],
    mounts=[VolumeMount("data", "/data", read_only=False)],
    resources="xs",
    labels={"app": "orders-etl"},
    active_deadline_seconds=600,
).extend(
    wait_for_tcp(DB_HOST, 5432, timeout_seconds=60, name="wait-for-orders-db", image=PYTHON_IMAGE),
    secrets_to_file(
        "/run/ck/.pgpass",
        f"{DB_HOST}:5432:orders:etl:${{PGPASSWORD}}\n",
        [SecretRef(SECRET, "password", env="PGPASSWORD")],
        image=PYTHON_IMAGE,
    ),
    migration_runner(
        PYTHON_IMAGE,
        ["python", "-c", MIGRATE],
        env={"DB_HOST": DB_HOST, "TARGET_VERSION": "42"},
        resources="xs",
    ),
    volume_permissions(
        "data", "/data", uid=50000, gid=0, fs_group_works=False, reason=PERMISSIONS_REASON, image=PYTHON_IMAGE
    ),
)
# What the root chown init container needs, each with its reason (policy reports anything else).
EXEMPTIONS = {
    "PSS-R-003": f"init container volume-permissions runs as root: {PERMISSIONS_REASON}",
    "PSS-R-004": f"init container volume-permissions runs as uid 0: {PERMISSIONS_REASON}",
    "PSS-R-006": "init container volume-permissions adds only CAP_CHOWN and CAP_FOWNER, to chown the volume",
}
POD_TEMPLATE = to_dict(full_pod_spec(SPEC))
# Parse time, as the operator does for a spec= task: error findings fail the DAG import under enforce.
check_pod(POD_TEMPLATE, exemptions=EXEMPTIONS, where=f"{DAG_ID} load_orders pod template")


def _core_api() -> Any:
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
    from kubernetes.client import CoreV1Api

    return CoreV1Api(KubernetesHook(conn_id="kubernetes_default").api_client)


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # the demo objects (pods, Secret, ConfigMap) have fixed names
    tags=["reference", "patterns", "intermediate", "success", "needs:kubernetes"],
    doc_md=__doc__,
)
def init_patterns() -> None:
    @task
    def create_secret() -> str:
        from kubernetes.client import V1ObjectMeta, V1Secret
        from kubernetes.client.exceptions import ApiException

        api = _core_api()
        body = V1Secret(
            metadata=V1ObjectMeta(name=SECRET),
            data={"password": base64.b64encode(secrets.token_urlsafe(18).encode()).decode()},
        )
        try:
            api.create_namespaced_secret(NAMESPACE, body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            api.replace_namespaced_secret(SECRET, NAMESPACE, body)
        return SECRET

    @task
    def start_database(secret: str) -> str:
        """The dependency: a pod (and its Service) that accepts connections a few seconds after start."""
        from kubernetes.client import V1ObjectMeta, V1Service, V1ServicePort, V1ServiceSpec

        from containerkit.kubernetes.pod import render_pod
        from containerkit.policy.enforce import check_pod

        api = _core_api()
        spec = ContainerSpec(
            PYTHON_IMAGE,
            command=["python", "-c", DATABASE],
            secrets=[SecretRef(secret, "password", env="DB_PASSWORD")],
            ports=[5432],
            probes=Probes(readiness=Probe.tcp(5432), liveness=Probe.tcp(5432, initial_delay_seconds=10)),
            resources="xs",
            labels={"app": DB_NAME},
        )
        pod = render_pod(spec, name=DB_NAME, namespace=NAMESPACE)
        pod.spec.restart_policy = "Always"
        check_pod(pod, mode="enforce", where=f"{DAG_ID} database pod")
        api.create_namespaced_pod(NAMESPACE, pod)
        service = V1Service(
            metadata=V1ObjectMeta(name=DB_NAME),
            spec=V1ServiceSpec(selector={"app": DB_NAME}, ports=[V1ServicePort(port=5432, target_port=5432)]),
        )
        api.create_namespaced_service(NAMESPACE, service)
        if os.environ.get("CONTAINERKIT_REAL_CLUSTER") == "1":
            return f"{DB_NAME}.{NAMESPACE}.svc.cluster.local"
        # The local test double has no Service networking: the pod's IP is the address.
        deadline = time.monotonic() + 60
        while not (ip := api.read_namespaced_pod(DB_NAME, NAMESPACE).status.pod_ip):
            if time.monotonic() > deadline:
                raise TimeoutError(f"pod {DB_NAME} has no IP after 60s")
            time.sleep(0.5)
        return str(ip)

    load_orders = SecureKubernetesPodOperator(
        task_id="load_orders",
        name="load-orders",
        namespace=NAMESPACE,
        pod_template_dict=POD_TEMPLATE,
        policy_exemptions=EXEMPTIONS,
        get_logs=True,
        do_xcom_push=True,
    )

    @task
    def check_effects(report: dict[str, Any]) -> dict[str, Any]:
        print(json.dumps(report, indent=1))
        expected = {
            "first_connect": "ok",
            "pgpass_mode": "0o440",
            "pgpass_host_matches": True,
            "password_in_env": False,
            "auth": "OK",
            "schema_version": "42",
            "data_owner": "50000:0",
        }
        wrong = {k: (report.get(k), v) for k, v in expected.items() if report.get(k) != v}
        if wrong:
            raise AssertionError(f"init containers did not have their effect (got, expected): {wrong}")
        return report

    @teardown
    def remove_database() -> None:
        from kubernetes.client.exceptions import ApiException

        api = _core_api()
        for delete, name in (
            (api.delete_namespaced_pod, DB_NAME),
            (api.delete_namespaced_service, DB_NAME),
            (api.delete_namespaced_secret, SECRET),
        ):
            try:
                delete(name, NAMESPACE)
            except ApiException as exc:
                if exc.status != 404:
                    raise

    secret = create_secret()
    database = start_database(secret)
    database >> load_orders
    check_effects(load_orders.output) >> remove_database().as_teardown(setups=[secret, database])


init_patterns()
