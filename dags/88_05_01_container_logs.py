"""Container logs: streamed live with timestamps, every container of a pod collected, the exact CLI shown.

**Problem.** A task's container log that only appears when the task ends is no help while it hangs; a
pod's init-container and sidecar logs are not in the Airflow task log at all, and they vanish with the
pod. And when a user asks "which container was it?", the task log rarely says.

**Practice.**

* *docker logs / log streaming* (``stream_docker_logs``): a hardened container (rendered from a
  ``ContainerSpec``, policy-checked) writes numbered lines to stdout and stderr; the task follows its
  log through the Engine API with engine timestamps, writing each line to the task log as it arrives.
  It asserts the lines arrived in order with rising timestamps and that the first one arrived before the
  container exited (streamed, not dumped at the end), then prints ``docker logs --timestamps <name>``.
* ``operator_log_stream`` + ``check_operator_lines``: ``SecureDockerOperator`` streams the same way into its
  task log; with ``xcom_all=True`` every line is also the XCom, checked for order and completeness.
* *kubectl logs / multi-container logging* (``pod_with_helpers`` + ``collect_pod_logs``):
  ``SecureKubernetesPodOperator`` runs a pod with an init container (``prepare``), a native sidecar
  (``heartbeat``) and the task (``base``), following ``base``'s log into the task log
  (``get_logs=True``) and keeping the pod (``on_finish_action="keep_pod"``) so that the next task reads
  the init container's and the sidecar's logs with timestamps, asserts each one's lines, prints the
  ``kubectl logs <pod> -c <container> -n <ns> --timestamps`` command for each, and deletes the pod
  (``delete_pod`` teardown deletes it too if anything failed).

**Copying.** Set ``CONTAINERKIT_PYTHON_IMAGE`` and ``CONTAINERKIT_NAMESPACE``. For pods, prefer shipping
helper-container logs to your log store (see ``88_09_01_sidecar_patterns``); this pattern is for
reading them on demand.

**Needs.** A Docker engine and a Kubernetes cluster (the local Docker-backed test double in CI).
"""

from __future__ import annotations

import datetime
import os
import time
import zlib
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.docker import SecureDockerOperator
from airflow.providers.containerkit.operators.kubernetes import SecureKubernetesPodOperator
from airflow.sdk import dag, task, teardown

from containerkit.spec import Container, ContainerSpec

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
NAMESPACE = os.environ.get("CONTAINERKIT_NAMESPACE", "airflow-tasks")
DAG_ID = "88_05_01_container_logs"
LABEL = {"containerkit.reference": DAG_ID}
LINES = 6

NUMBERED = f"""
import sys, time
for i in range(1, {LINES} + 1):
    stream = sys.stderr if i == 3 else sys.stdout
    print(f"line {{i}} of {LINES} on {{stream.name[1:-1]}}", file=stream, flush=True)
    time.sleep(0.4)
"""
PREPARE = "print('prepare: schema at version 42', flush=True)"
HEARTBEAT = """
import time
n = 0
while True:
    n += 1
    print(f"heartbeat {n}", flush=True)
    time.sleep(0.5)
"""
WORK = """
import time
for step in ("extract", "transform", "load"):
    print(f"base: {step}", flush=True)
    time.sleep(0.7)
"""

POD_SPEC = ContainerSpec(
    PYTHON_IMAGE,
    command=["python", "-c", WORK],
    resources="xs",
    labels=LABEL,
    init_containers=[Container("prepare", PYTHON_IMAGE, command=["python", "-c", PREPARE])],
    sidecars=[Container("heartbeat", PYTHON_IMAGE, command=["python", "-c", HEARTBEAT])],
)


def _core_api() -> Any:
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
    from kubernetes.client import CoreV1Api

    return CoreV1Api(KubernetesHook(conn_id="kubernetes_default").api_client)


def _parse(line: str) -> tuple[datetime.datetime, str]:
    """``2026-01-01T10:00:00.123456789Z message`` (engine and kubelet timestamps) -> (time, message)."""
    stamp, _, message = line.partition(" ")
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    parsed = datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.UTC)
    return parsed + datetime.timedelta(microseconds=int((fraction or "0")[:6].ljust(6, "0"))), message


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "core", "beginner", "success", "needs:docker", "needs:kubernetes"],
    doc_md=__doc__,
)
def container_logs() -> None:
    @task
    def stream_docker_logs(**context: Any) -> dict[str, Any]:
        """Follow a running container's log with engine timestamps; prove order and liveness."""
        import docker

        from containerkit.docker.run_settings import render_docker
        from containerkit.policy.enforce import check_docker_run

        client = docker.from_env(timeout=120)
        name = f"ck-logs-{zlib.crc32(context['run_id'].encode()):08x}"
        settings = render_docker(
            ContainerSpec(PYTHON_IMAGE, command=["python", "-c", NUMBERED], resources="xs")
        )
        check_docker_run(settings.as_policy_data(), mode="enforce", where=f"{DAG_ID} log demo")
        container = client.api.create_container(
            settings.image,
            entrypoint=list(settings.entrypoint or ()) or None,
            command=list(settings.command) if settings.command else None,
            user=settings.user,
            name=name,
            labels={**settings.labels, **LABEL},
            host_config=client.api.create_host_config(**settings.host_config_kwargs()),
        )
        received: list[tuple[float, str]] = []
        try:
            client.api.start(container["Id"])
            buffer = b""
            for chunk in client.api.logs(container["Id"], stream=True, follow=True, timestamps=True):
                buffer += chunk
                while b"\n" in buffer:
                    raw, buffer = buffer.split(b"\n", 1)
                    line = raw.decode("utf-8", "replace")
                    received.append((time.time(), line))
                    print(f"[{name}] {line}", flush=True)  # into the task log as it arrives
            finished = client.api.inspect_container(container["Id"])["State"]["FinishedAt"]
        finally:
            client.api.remove_container(container["Id"], force=True)
            client.close()
        stamps = [_parse(line) for _, line in received]
        numbers = [int(message.split()[1]) for _, message in stamps]
        exited = _parse(f"{finished} x")[0].timestamp()
        problems = []
        if numbers != list(range(1, LINES + 1)):
            problems.append(f"lines out of order or missing: {numbers}")
        if [t for t, _ in stamps] != sorted(t for t, _ in stamps):
            problems.append("engine timestamps are not rising")
        if received and received[0][0] >= exited:
            problems.append("the first line arrived only after the container exited: not streamed")
        if not any("on stderr" in m for _, m in stamps):
            problems.append("the stderr line is missing")
        if problems:
            raise AssertionError("; ".join(problems))
        lead = exited - received[0][0]
        print(f"first line arrived {lead:.1f}s before the container exited")
        print(f"equivalent: docker logs --timestamps --follow {name}")
        return {"container": name, "lines": len(received), "first_line_lead_seconds": round(lead, 2)}

    operator_log_stream = SecureDockerOperator(
        task_id="operator_log_stream",
        image=PYTHON_IMAGE,
        command=["python", "-c", NUMBERED],
        resources="xs",
        xcom_all=True,
    )

    @task
    def check_operator_lines(lines: list[str]) -> int:
        numbers = [int(line.split()[1]) for line in lines if line.startswith("line ")]
        if numbers != list(range(1, LINES + 1)):
            raise AssertionError(f"SecureDockerOperator lines out of order or missing: {lines}")
        return len(numbers)

    pod_with_helpers = SecureKubernetesPodOperator(
        task_id="pod_with_helpers",
        name="logs-demo",
        namespace=NAMESPACE,
        spec=POD_SPEC,
        get_logs=True,  # follows base's log into this task's log while the pod runs
        on_finish_action="keep_pod",  # collect_pod_logs reads the other containers, then deletes it
        do_xcom_push=False,  # the pod name and namespace are pushed as XCom all the same
    )

    @task
    def collect_pod_logs(pod_name: str) -> dict[str, list[str]]:
        """Every container's log with timestamps, and the kubectl command for each."""
        api = _core_api()
        expected = {
            "prepare": "prepare: schema at version 42",
            "heartbeat": "heartbeat 1",
            "base": "base: load",
        }
        collected: dict[str, list[str]] = {}
        for container, first_expected in expected.items():
            # Raw bytes: kubernetes client 36 returns a plain-text body as the repr of its bytes.
            text = api.read_namespaced_pod_log(
                pod_name, NAMESPACE, container=container, timestamps=True, _preload_content=False
            ).data.decode("utf-8", "replace")
            lines = [line for line in text.splitlines() if line.strip()]
            print(f"kubectl logs {pod_name} -c {container} -n {NAMESPACE} --timestamps")
            for line in lines:
                print(f"  [{container}] {line}")
            messages = [_parse(line)[1] for line in lines]
            if first_expected not in messages:
                raise AssertionError(f"container {container}: {first_expected!r} not in {messages}")
            collected[container] = lines
        starts = {c: _parse(lines[0])[0] for c, lines in collected.items()}
        if not starts["prepare"] <= starts["heartbeat"] <= starts["base"]:
            raise AssertionError(f"containers did not start init -> sidecar -> base: {starts}")
        return collected

    @teardown
    def delete_pod(pod_name: str) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            _core_api().delete_namespaced_pod(pod_name, NAMESPACE, grace_period_seconds=0)
        except ApiException as exc:
            if exc.status != 404:
                raise
        print(f"deleted pod {NAMESPACE}/{pod_name}")

    check_operator_lines(operator_log_stream.output)
    stream_docker_logs()
    pod_name = pod_with_helpers.output["pod_name"]
    collected = collect_pod_logs(pod_name)
    collected >> delete_pod(pod_name).as_teardown(setups=pod_with_helpers)


container_logs()
