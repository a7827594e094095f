"""Common container failures provoked on Docker and Kubernetes, each diagnosed with its cause and fix.

**Problem.** The four failures every container platform team debugs weekly look alike from Airflow: a
task that failed with an exit code, or a pod that never started and timed out after 120 s. The cause
(memory limit, a crash loop, a wrong image reference, a volume the user cannot write, a misspelt Secret
key) is in ``docker inspect``, the pod status and its events, which nobody reads in time.

**Practice.** containerkit's operators read that evidence before they remove the container or pod and
raise ``ContainerTaskFailed`` whose ``diagnosis`` names the cause, the evidence and the fix. Each task
below provokes one failure for real, catches it, and asserts the diagnosis (cause id and fix text):

* *OOMKilled debugging*: ``oom_on_docker`` (a 300 MiB allocation under the ``xs`` preset's 128Mi hard
  limit) and ``oom_on_kubernetes`` (the same pod): ``OOMKilled`` with the limit.
* *CrashLoopBackOff diagnosis*: ``crash_on_docker`` (exit 3 with its last log line: ``NonZeroExit``) and
  ``crash_loop_on_kubernetes`` (the same program in a ``restartPolicy: Always`` service pod, restarted by
  the kubelet until it backs off: ``CrashLoopBackOff`` with restarts, last exit code and log tail).
* *ImagePullBackOff fixes*: ``missing_image_on_docker`` (the pre-flight asks the registry before the
  engine pulls: ``ImagePull:not-found`` in a second, no container) and ``missing_image_on_kubernetes``
  (``ImagePullBackOff:not-found``, stopped at the first fatal event instead of the 120 s startup timeout).
* *Permission issues*: ``permission_on_docker`` (uid 50000 writing to a root-owned volume:
  ``PermissionDenied:volume`` naming uid, path and the fsGroup/chown fix) and
  ``missing_secret_key_on_kubernetes`` (a misspelt Secret key:
  ``CreateContainerConfigError:secret-key-missing`` naming the Secret and the key).
* *The corrected tasks* run after the failures: ``fixed_on_docker`` (512Mi, its config given, the image
  pinned by digest through the registry pre-flight, the volume made writable by a one-shot chown step)
  and ``fixed_on_kubernetes`` (512Mi, the right Secret key, an image present).

**Copying.** Set ``CONTAINERKIT_PYTHON_IMAGE``, ``CONTAINERKIT_NAMESPACE``, the registry connection
``containerkit_registry_default`` and ``kubernetes_default``. In your own DAGs, read
``exc.diagnosis.cause`` in ``on_failure_callback`` to route alerts (see ``page_on_call``).

**Needs.** A Docker engine, a registry connection (push rights: the corrected Docker task's image is
pushed there) and a Kubernetes cluster (the local Docker-backed test double in CI).
"""

from __future__ import annotations

import base64
import logging
import os
import time
import zlib
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.docker import SecureDockerOperator
from airflow.providers.containerkit.operators.kubernetes import SecureKubernetesPodOperator
from airflow.sdk import dag, get_current_context, task, teardown
from docker.types import Mount

from containerkit.diagnostics import ContainerTaskFailed, Diagnosis
from containerkit.spec import SecretRef

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
NAMESPACE = os.environ.get("CONTAINERKIT_NAMESPACE", "airflow-tasks")
REGISTRY_CONN_ID = "containerkit_registry_default"
DAG_ID = "88_05_05_common_issues"
LABEL = {"containerkit.reference": DAG_ID}
REPOSITORY = "containerkit-reference/common-issues"
SECRET = "etl-db"
CHOWN_EXEMPTIONS = {
    "DKR-001": "one-shot permissions step: chowns a fresh volume to 50000:0, runs no task code",
    "DKR-003": "keeps only CAP_CHOWN and CAP_FOWNER, needed to chown files root owns",
}

ALLOCATE = (
    "import os; data = bytearray(int(os.environ.get('MIB', '300')) * 2**20); print(len(data) >> 20, 'MiB')"
)
CRASH = """
import os, sys
print("connecting to", os.environ.get("DB_HOST", "<unset>"))
if "DB_HOST" not in os.environ:
    sys.exit("DB_HOST is not set: cannot start")
print("connected")
"""
WRITE = "open('/data/report.txt', 'w').write('ok'); print('wrote /data/report.txt')"


def page_on_call(context: dict[str, Any]) -> None:
    """An ``on_failure_callback``: route by the diagnosis cause, not by parsing log text."""
    error = context.get("exception")
    if isinstance(error, ContainerTaskFailed):
        logging.getLogger(__name__).error("cause=%s fix=%s", error.diagnosis.cause, error.diagnosis.fix)


def _expect(operator: Any, cause: str, *fix_words: str) -> dict[str, Any]:
    """Run ``operator`` here, require it to fail with ``cause`` and a fix naming ``fix_words``."""
    context = get_current_context()
    started = time.monotonic()
    try:
        operator.execute(context)
    except ContainerTaskFailed as exc:
        diagnosis: Diagnosis = exc.diagnosis
    else:
        raise AssertionError(f"{operator.task_id} succeeded; expected {cause}")
    seconds = time.monotonic() - started
    print(f"{operator.task_id}: failed in {seconds:.1f}s as designed\n{diagnosis.render()}")
    if diagnosis.cause != cause:
        raise AssertionError(f"diagnosis {diagnosis.cause!r}, expected {cause!r}: {diagnosis.render()}")
    missing = [w for w in fix_words if w.lower() not in f"{diagnosis.summary} {diagnosis.fix}".lower()]
    if missing:
        raise AssertionError(f"diagnosis does not mention {missing}: {diagnosis.render()}")
    return {"cause": diagnosis.cause, "summary": diagnosis.summary, "fix": diagnosis.fix, "seconds": seconds}


def _core_api() -> Any:
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
    from kubernetes.client import CoreV1Api

    return CoreV1Api(KubernetesHook(conn_id="kubernetes_default").api_client)


def _suffix() -> str:
    return f"{zlib.crc32(get_current_context()['run_id'].encode()):08x}"


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=[
        "reference",
        "core",
        "intermediate",
        "failure",
        "needs:docker",
        "needs:registry",
        "needs:kubernetes",
    ],
    default_args={"retries": 0, "on_failure_callback": page_on_call},
    doc_md=__doc__,
)
def common_issues() -> None:
    # --- Docker -----------------------------------------------------------------------------

    @task
    def oom_on_docker() -> dict[str, Any]:
        op = SecureDockerOperator(
            task_id="allocate_300mib", image=PYTHON_IMAGE, command=["python", "-c", ALLOCATE], resources="xs"
        )
        return _expect(op, "OOMKilled", "128Mi")

    @task
    def crash_on_docker() -> dict[str, Any]:
        op = SecureDockerOperator(
            task_id="start_without_config",
            image=PYTHON_IMAGE,
            command=["python", "-c", CRASH],
            resources="xs",
        )
        return _expect(op, "NonZeroExit", "code 1")

    @task
    def push_task_image() -> str:
        """The image the corrected Docker task runs, pushed as ``:1.0`` (``:1.1`` was never pushed)."""
        from containerkit.hooks.image import ImageHook

        hook = ImageHook(registry_conn_id=REGISTRY_CONN_ID)
        repository = hook.registry_hook.parse_image(REPOSITORY).name
        hook.api.tag(PYTHON_IMAGE, repository, "1.0")
        hook.push(repository, ["1.0"])
        return repository

    @task
    def missing_image_on_docker(repository: str) -> dict[str, Any]:
        op = SecureDockerOperator(
            task_id="run_unpushed_tag",
            image=f"{repository}:1.1",
            command=["python", "-c", "print('never runs')"],
            pin_image_digest=True,
            registry_conn_id=REGISTRY_CONN_ID,
            resources="xs",
        )
        return _expect(op, "ImagePull:not-found", "push")

    @task
    def create_volume() -> str:
        import docker

        client = docker.from_env()
        name = f"ck-common-issues-{_suffix()}"
        client.volumes.create(name, labels=LABEL)  # a fresh named volume is owned by root
        client.close()
        return name

    @task
    def permission_on_docker(volume: str) -> dict[str, Any]:
        op = SecureDockerOperator(
            task_id="write_to_root_volume",
            image=PYTHON_IMAGE,
            command=["python", "-c", WRITE],
            mounts=[Mount(target="/data", source=volume, type="volume")],
            resources="xs",
        )
        return _expect(op, "PermissionDenied:volume", "fsGroup", "chown")

    chown_volume = SecureDockerOperator(
        task_id="fix_volume_owner",
        image=PYTHON_IMAGE,
        command=["sh", "-c", "chown 50000:0 /data && chmod 0770 /data && stat -c '%u:%g %a' /data"],
        user="0:0",
        cap_add=["CHOWN", "FOWNER"],
        mounts=[Mount(target="/data", source="{{ ti.xcom_pull(task_ids='create_volume') }}", type="volume")],
        resources="xs",
        policy_exemptions=CHOWN_EXEMPTIONS,
    )

    fixed_on_docker = SecureDockerOperator(
        task_id="fixed_on_docker",
        image="{{ ti.xcom_pull(task_ids='push_task_image') }}:1.0",
        pin_image_digest=True,
        registry_conn_id=REGISTRY_CONN_ID,
        command=["python", "-c", f"{ALLOCATE}\n{CRASH}\n{WRITE}"],
        environment={"MIB": "200", "DB_HOST": "postgres.db.svc"},
        mounts=[Mount(target="/data", source="{{ ti.xcom_pull(task_ids='create_volume') }}", type="volume")],
        resources={"preset": "xs", "memory": "512Mi"},
    )

    @teardown
    def remove_docker_objects(volume: str) -> None:
        import docker

        from containerkit.hooks.image import ImageHook

        client = docker.from_env()
        client.volumes.get(volume).remove(force=True)
        hook = ImageHook(registry_conn_id=REGISTRY_CONN_ID)
        repository = hook.registry_hook.parse_image(REPOSITORY).name
        for image in client.images.list(name=repository):
            # image.tags lists every tag of the image id, the base image's own tag included: remove
            # only this DAG's repository tags (the base it was tagged from must stay).
            for tag in image.tags:
                if tag.rsplit(":", 1)[0] == repository:
                    client.images.remove(tag)
        client.close()

    # --- Kubernetes ---------------------------------------------------------------------------

    @task
    def create_secret() -> str:
        from kubernetes.client import V1ObjectMeta, V1Secret

        data = {"password": base64.b64encode(os.urandom(12).hex().encode()).decode()}
        secret = V1Secret(metadata=V1ObjectMeta(name=SECRET, labels=LABEL), data=data)
        api = _core_api()
        try:
            api.create_namespaced_secret(NAMESPACE, secret)
        except Exception as exc:
            if getattr(exc, "status", None) != 409:
                raise
        return SECRET

    @task
    def oom_on_kubernetes() -> dict[str, Any]:
        op = SecureKubernetesPodOperator(
            task_id="allocate_300mib_pod",
            name="oom",
            namespace=NAMESPACE,
            image=PYTHON_IMAGE,
            cmds=["python", "-c", ALLOCATE],
            resources="xs",
            get_logs=True,
        )
        return _expect(op, "OOMKilled", "128Mi")

    @task
    def missing_image_on_kubernetes() -> dict[str, Any]:
        op = SecureKubernetesPodOperator(
            task_id="unpushed_image_pod",
            name="missing-image",
            namespace=NAMESPACE,
            image="containerkit-reference/common-issues:1.1",
            cmds=["python", "-c", "print('never runs')"],
            resources="xs",
        )
        result = _expect(op, "ImagePullBackOff:not-found", "push")
        if result["seconds"] > 60:
            raise AssertionError(f"the image error took {result['seconds']:.0f}s: fail-fast did not stop it")
        return result

    @task
    def missing_secret_key_on_kubernetes(secret: str) -> dict[str, Any]:
        op = SecureKubernetesPodOperator(
            task_id="misspelt_secret_key",
            name="missing-key",
            namespace=NAMESPACE,
            image=PYTHON_IMAGE,
            cmds=["python", "-c", "print('never runs')"],
            secret_refs=[SecretRef(secret=secret, key="passwrd", env="DB_PASSWORD")],
            resources="xs",
        )
        return _expect(op, "CreateContainerConfigError:secret-key-missing", "passwrd")

    @task
    def crash_loop_on_kubernetes() -> dict[str, Any]:
        """A service-style pod (restartPolicy Always) whose program exits 1: the kubelet backs off."""
        from containerkit.diagnostics.kubernetes import diagnose_pod
        from containerkit.kubernetes.pod import render_pod
        from containerkit.policy.enforce import check_pod
        from containerkit.spec import ContainerSpec

        api = _core_api()
        name = f"crash-loop-{_suffix()}"
        pod = render_pod(
            ContainerSpec(PYTHON_IMAGE, command=["python", "-c", CRASH], resources="xs", labels=LABEL),
            name=name,
            namespace=NAMESPACE,
        )
        pod.spec.restart_policy = "Always"
        check_pod(pod, mode="enforce", where=f"{DAG_ID} crash-loop pod")
        api.create_namespaced_pod(NAMESPACE, pod)
        try:
            deadline = time.monotonic() + 90
            while True:
                remote = api.read_namespaced_pod(name, NAMESPACE)
                statuses = (remote.status.container_statuses or []) if remote.status else []
                waiting = statuses[0].state.waiting if statuses and statuses[0].state else None
                restarts = statuses[0].restart_count if statuses else 0
                if waiting is not None and waiting.reason == "CrashLoopBackOff" and restarts >= 2:
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(f"pod {name} did not reach CrashLoopBackOff in 90s: {statuses}")
                time.sleep(1)
            events = api.list_namespaced_event(NAMESPACE, field_selector=f"involvedObject.name={name}").items
            # Raw bytes: kubernetes client 36 returns a plain-text body as the repr of its bytes.
            logs = api.read_namespaced_pod_log(
                name, NAMESPACE, container="base", previous=True, tail_lines=20, _preload_content=False
            ).data.decode("utf-8", "replace")
            diagnosis = diagnose_pod(remote, events, logs, container="base")
        finally:
            api.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)
        if diagnosis is None or diagnosis.cause != "CrashLoopBackOff":
            raise AssertionError(f"diagnosis {diagnosis}")
        print(diagnosis.render())
        if "DB_HOST is not set" not in " ".join(diagnosis.evidence) or diagnosis.exit_code != 1:
            raise AssertionError(
                f"the diagnosis lacks the exit code or the last log line: {diagnosis.render()}"
            )
        return {"cause": diagnosis.cause, "summary": diagnosis.summary, "fix": diagnosis.fix}

    fixed_on_kubernetes = SecureKubernetesPodOperator(
        task_id="fixed_on_kubernetes",
        name="fixed",
        namespace=NAMESPACE,
        image=PYTHON_IMAGE,
        cmds=["python", "-c", f"{ALLOCATE}\n{CRASH}"],
        env_vars={"MIB": "200", "DB_HOST": "postgres.db.svc"},
        secret_refs=[SecretRef(secret=SECRET, key="password", env="DB_PASSWORD")],
        resources={"preset": "xs", "memory": "512Mi"},
        get_logs=True,
    )

    @teardown
    def remove_secret(secret: str) -> None:
        _core_api().delete_namespaced_secret(secret, NAMESPACE)

    # Docker
    repository = push_task_image()
    volume = create_volume()
    docker_failures = [oom_on_docker(), crash_on_docker(), missing_image_on_docker(repository)]
    denied = permission_on_docker(volume)
    denied >> chown_volume
    [*docker_failures, chown_volume] >> fixed_on_docker
    fixed_on_docker >> remove_docker_objects(volume).as_teardown(setups=[volume, repository])

    # Kubernetes
    secret = create_secret()
    k8s_failures = [
        oom_on_kubernetes(),
        missing_image_on_kubernetes(),
        missing_secret_key_on_kubernetes(secret),
        crash_loop_on_kubernetes(),
    ]
    k8s_failures >> fixed_on_kubernetes
    fixed_on_kubernetes >> remove_secret(secret).as_teardown(setups=secret)


common_issues()
