"""Anti-pattern: services without probes, tasks without deadlines; flagged, a hang caught, a hung pod stopped.

**Problem.** A process can hang without exiting: a deadlock, a blocked request handler, a lost
connection waited on forever. Without a liveness probe the container stays "running" and nothing
restarts it; without a readiness probe traffic reaches it before it can answer; a batch task without a
deadline holds its worker slot (and its pod) until someone notices, days later.

**Practice.** Every long-running container (a service pod, a native sidecar) has liveness and readiness
probes (a startup probe where start is slow); containerkit's ``HRD-010`` reports the ones that do not.
Every batch task has a deadline: ``activeDeadlineSeconds`` on its pod (or ``execution_timeout``), so a
hang ends in a failure with a diagnosis instead of an endless run.

**Where each sub-point is covered.**

- no liveness / no readiness probe: ``service_without_probes_flagged`` renders a service pod (a
  Deployment's template, with a native sidecar) without probes and asserts ``HRD-010`` names exactly the
  three missing probes, through the same check the operators run (``check_pod``, mode ``warn``).
- proper probe config: ``probed_service_passes`` renders the same pod with probes and asserts ``HRD-010``
  is gone, then runs the probed service on Docker (the liveness probe rendered as its healthcheck) and
  waits for it to be healthy.
- hung containers: ``hang_is_caught_by_probe`` blocks the request handler of the probed service and of a
  probe-less twin: the probed one turns ``unhealthy`` within seconds (on Kubernetes the kubelet would
  restart it), the twin keeps "running" as if nothing happened.
- deadline: ``hung_task_stopped_by_deadline`` runs a task that never ends with
  ``active_deadline_seconds=8`` on ``kubernetes_default`` and asserts ``ContainerTaskFailed`` with the
  ``DeadlineExceeded`` diagnosis; ``bounded_task`` runs the corrected task (it finishes within its
  deadline) and succeeds.
- ``remove_services`` removes the service containers whatever happened.

**When copying.** Give your services probes on their real health endpoints and every task a deadline
sized from its history; raise ``HRD-010`` to an error in your policy if you run services.
``CONTAINERKIT_PYTHON_IMAGE`` (default ``python:3.11-slim-bookworm``), ``CONTAINERKIT_NAMESPACE``.
Outcome tag ``failure``: the run succeeds when each failure is caught as designed.

**Needs.** A Docker engine and ``kubernetes_default`` (``needs:docker``, ``needs:kubernetes``; tests and
``make run-dags`` use the local Docker-backed API, ``containerkit.testing``).
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.kubernetes import SecureKubernetesPodOperator
from airflow.sdk import dag, get_current_context, task

from containerkit.spec import Container, ContainerSpec, Probe, Probes

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
NAMESPACE = os.environ.get("CONTAINERKIT_NAMESPACE", "airflow-tasks")
LABELS = {"containerkit.example": "88_06_04"}
# One-threaded on purpose: a request to /hang blocks every later request, as a deadlock would.
SERVICE = """
import http.server, time
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/hang":
            time.sleep(3600)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
http.server.HTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
"""
CHECK = "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=1)"
LIVENESS = Probe.exec("python", "-c", CHECK, period_seconds=1, timeout_seconds=2, failure_threshold=3)
SERVICE_PROBES = Probes(liveness=Probe.http("/healthz", 8080), readiness=Probe.http("/healthz", 8080))


def _service_pod(probes: Probes, sidecar_probes: Probes) -> dict[str, Any]:
    """A service's pod as its Deployment would run it (restartPolicy Always), with a native sidecar."""
    from containerkit.kubernetes.manifests import to_dict
    from containerkit.kubernetes.pod import render_pod

    spec = ContainerSpec(
        image=PYTHON_IMAGE,
        command=["python", "-c", SERVICE],
        ports=[8080],
        probes=probes,
        resources="xs",
        sidecars=[
            Container(
                name="metrics",
                image=PYTHON_IMAGE,
                command=["python", "-m", "http.server", "9090"],
                probes=sidecar_probes,
            )
        ],
    )
    pod = to_dict(render_pod(spec, name="report-api", namespace=NAMESPACE))
    pod["spec"]["restartPolicy"] = "Always"  # what a Deployment's pod template says
    return pod


def _probe_findings(pod: dict[str, Any]) -> list[str]:
    from containerkit.policy.enforce import check_pod

    findings = check_pod(pod, mode="warn", where="service report-api")
    return sorted(f.path for f in findings if f.rule_id == "HRD-010")


def _start(client: Any, name: str, probes: Probes) -> Any:
    """The service on Docker, hardened as containerkit renders it; the liveness probe is its healthcheck."""
    from containerkit.docker.run_settings import render_docker

    spec = ContainerSpec(image=PYTHON_IMAGE, command=["python", "-c", SERVICE], probes=probes, resources="xs")
    settings = render_docker(spec)
    with contextlib.suppress(Exception):
        client.containers.get(name).remove(force=True)
    created = client.api.create_container(
        PYTHON_IMAGE,
        name=name,
        entrypoint=list(settings.entrypoint) if settings.entrypoint else None,
        command=list(settings.command) if settings.command else None,
        user=settings.user,
        labels={**settings.labels, **LABELS},
        healthcheck=settings.healthcheck,
        host_config=client.api.create_host_config(**settings.host_config_kwargs()),
    )
    client.api.start(created["Id"])
    return client.containers.get(created["Id"])


def _health(container: Any) -> str | None:
    container.reload()
    return (container.attrs["State"].get("Health") or {}).get("Status")


@dag(
    dag_id="88_06_04_missing_probes",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "anti-pattern", "intermediate", "failure", "needs:docker", "needs:kubernetes"],
    doc_md=__doc__,
)
def missing_probes() -> None:
    @task
    def service_without_probes_flagged() -> list[str]:
        found = _probe_findings(_service_pod(Probes(), Probes()))
        expected = [
            "spec.containers[0].livenessProbe",
            "spec.containers[0].readinessProbe",
            "spec.initContainers[0].startupProbe",
        ]
        if found != expected:
            raise AssertionError(f"HRD-010 reported {found}, expected {expected}")
        return found

    @task
    def probed_service_passes() -> str:
        import docker

        found = _probe_findings(_service_pod(SERVICE_PROBES, Probes(startup=Probe.tcp(9090))))
        if found:
            raise AssertionError(f"the probed service still has HRD-010 findings: {found}")
        service = _start(docker.from_env(), "ck-88-06-04-probed", Probes(liveness=LIVENESS))
        deadline = time.monotonic() + 60
        while _health(service) != "healthy":
            if time.monotonic() > deadline or service.status == "exited":
                raise AssertionError(f"the probed service never became healthy: {service.attrs['State']}")
            time.sleep(0.5)
        return service.name

    @task
    def hang_is_caught_by_probe(probed: str) -> dict[str, Any]:
        import docker

        client = docker.from_env()
        service = client.containers.get(probed)
        twin = _start(client, "ck-88-06-04-unprobed", Probes())
        time.sleep(2)  # let the twin's server start
        hang = [
            "python",
            "-c",
            "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/hang', timeout=1)",
        ]
        if _health(service) != "healthy":
            raise AssertionError(f"the probed service is {_health(service)} before the hang")
        start = time.monotonic()
        for container in (service, twin):
            container.exec_run(hang)  # the client gives up after 1 s; the handler stays blocked
        while _health(service) != "unhealthy":
            if time.monotonic() - start > 30:
                raise AssertionError("the liveness probe did not notice the hung service within 30 s")
            time.sleep(0.5)
        caught_after = round(time.monotonic() - start, 1)
        twin.reload()
        if twin.status != "running" or _health(twin) is not None:
            raise AssertionError(f"the probe-less twin changed state: {twin.status}, {_health(twin)}")
        log = service.attrs["State"]["Health"]["Log"][-1]
        print(
            f"hung service unhealthy {caught_after} s after the hang (last probe exit {log['ExitCode']}); "
            "the probe-less twin still reports 'running'"
        )
        return {"caught_after_seconds": caught_after, "twin_status": twin.status}

    @task
    def hung_task_stopped_by_deadline() -> dict[str, Any]:
        from containerkit.diagnostics.model import ContainerTaskFailed

        hung = SecureKubernetesPodOperator(
            task_id="hung_batch",
            namespace=NAMESPACE,
            image=PYTHON_IMAGE,
            spec=ContainerSpec(
                image=PYTHON_IMAGE,
                command=[
                    "python",
                    "-c",
                    "import time; print('waiting for a lock', flush=True); time.sleep(3600)",
                ],
                active_deadline_seconds=8,
                resources="xs",
            ),
            get_logs=True,
        )
        start = time.monotonic()
        try:
            hung.execute(get_current_context())
        except ContainerTaskFailed as exc:
            diagnosis = exc.diagnosis
        else:
            raise AssertionError("a task that never ends finished")
        elapsed = round(time.monotonic() - start, 1)
        print(diagnosis.render())
        if diagnosis.cause != "DeadlineExceeded" or diagnosis.details.get("active_deadline_seconds") != "8":
            raise AssertionError(
                f"diagnosis {diagnosis.cause} {diagnosis.details}, expected DeadlineExceeded at 8"
            )
        return {"cause": diagnosis.cause, "summary": diagnosis.summary, "stopped_after_seconds": elapsed}

    bounded_task = SecureKubernetesPodOperator(
        task_id="bounded_task",
        namespace=NAMESPACE,
        image=PYTHON_IMAGE,
        spec=ContainerSpec(
            image=PYTHON_IMAGE,
            command=["python", "-c", "print('report written')"],
            active_deadline_seconds=120,
            resources="xs",
        ),
        get_logs=True,
    )

    @task(trigger_rule="all_done")
    def remove_services() -> None:
        import docker

        client = docker.from_env()
        for container in client.containers.list(all=True, filters={"label": "containerkit.example=88_06_04"}):
            container.remove(force=True)

    @task(trigger_rule="one_failed")
    def fail_run_if_a_task_failed() -> None:
        """The cleanup leaf succeeds whatever happened; this leaf makes any other failure fail the run."""
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException("a probe or deadline check failed: read the failed task's log")

    flagged = service_without_probes_flagged()
    probed = probed_service_passes()
    caught = hang_is_caught_by_probe(probed)
    caught >> remove_services()
    deadline = hung_task_stopped_by_deadline()
    deadline >> bounded_task
    [flagged, probed, caught, deadline, bounded_task] >> fail_run_if_a_task_failed()


missing_probes()
