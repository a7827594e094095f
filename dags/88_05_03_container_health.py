"""Container health: a health endpoint waited for (bounded), Kubernetes probes, a failing probe diagnosed.

**Problem.** A task that starts a service (a model server, a mock API, a database for an integration
test) and goes on "after a sleep" is flaky: too short on a slow node, wasted time on a fast one, and when
the service never becomes healthy the next task fails with a connection error that names nothing.

**Practice.**

* *Health check endpoints* (``start_service``): a small HTTP service with ``/healthz`` (alive) and
  ``/ready`` (warmed up after 2 s), started hardened from a ``ContainerSpec`` whose liveness probe
  (``Probe.exec``) containerkit renders as the Docker ``HEALTHCHECK``; it joins a private network as ``api``.
* *Bounded wait* (``wait_until_healthy``): the next task polls the engine's health status with a deadline
  (never an unbounded sleep), then calls ``/ready`` from a hardened client container on the same network.
* *Failing probe diagnosed* (``failing_probe_diagnosed``): the same service with a database it cannot reach
  answers ``/healthz`` with 500; the bounded wait turns the engine's health log (failing streak, the
  probe's last outputs) into a ``Diagnosis`` (``Unhealthy:liveness``) with the fix, asserted.
* *Liveness, readiness and startup probes on Kubernetes* (``render_service_probes``): the service's pod
  rendered with a startup probe (slow start allowed for 30 s), a readiness probe on ``/ready`` and a
  liveness probe on ``/healthz``, validated strictly against the Kubernetes schemas; the policy flags the
  same service without probes (HRD-010) and passes the probed one.
* ``service_pod_ready``: that pod runs on the cluster; the task waits (bounded) for its ``Ready``
  condition and calls the health endpoints inside the pod with exec. ``failing_liveness_on_cluster``
  runs the failing variant and asserts the kubelet's ``Unhealthy`` events and restarts; where the
  cluster's kubelet does not run probes (the local Docker-backed test double), it skips with
  ``needs:cluster``.

**Copying.** Set ``CONTAINERKIT_PYTHON_IMAGE`` (the service here is Python's standard library) and
``CONTAINERKIT_NAMESPACE``. Replace ``SERVICE`` with your service; keep the bounded wait.

**Needs.** A Docker engine and a Kubernetes cluster (the local test double in CI); the failing-liveness
task needs a kubelet that runs probes (a real cluster: ``CONTAINERKIT_REAL_CLUSTER=1``).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import time
import zlib
from typing import Any

import pendulum
from airflow.sdk import dag, get_current_context, task, teardown

from containerkit.diagnostics import ContainerTaskFailed, Diagnosis
from containerkit.spec import ContainerSpec, Probe, Probes

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
NAMESPACE = os.environ.get("CONTAINERKIT_NAMESPACE", "airflow-tasks")
DAG_ID = "88_05_03_container_health"
RUN_LABEL = "containerkit.reference"
PORT = 8080
WAIT_SECONDS = 60

SERVICE = """
import http.server, os, time
started = time.monotonic()
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/healthz":
            ok = os.environ.get("DB_REACHABLE", "yes") == "yes"
            code, body = (200, "alive") if ok else (500, "database db:5432 unreachable")
        elif self.path == "/ready":
            ready = time.monotonic() - started > 2
            code, body = (200, "ready") if ready else (503, "warming up")
        else:
            code, body = 404, "no such path"
        self.send_response(code)
        self.end_headers()
        self.wfile.write(body.encode())
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
"""
# The Docker healthcheck / Kubernetes exec probe: exit 0 on 200, print the answer either way.
CHECK = """
import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen("http://127.0.0.1:8080" + sys.argv[1], timeout=2)
    print(r.status, r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
    sys.exit(1)
"""
CLIENT = """
import json, urllib.request
r = urllib.request.urlopen("http://api:8080/ready", timeout=5)
print(json.dumps({"status": r.status, "body": r.read().decode()}))
"""

DOCKER_PROBES = Probes(
    liveness=Probe.exec(
        "python",
        "-c",
        CHECK,
        "/healthz",
        # A Python probe needs a second or more to start on a busy node: a short timeout would make a
        # healthy service look unhealthy. Failures in the first 10 s (start period) do not count.
        period_seconds=2,
        timeout_seconds=10,
        failure_threshold=3,
        initial_delay_seconds=10,
    )
)
K8S_PROBES = Probes(
    startup=Probe.http("/healthz", PORT, period_seconds=1, failure_threshold=30),
    readiness=Probe.http("/ready", PORT, period_seconds=2),
    liveness=Probe.http("/healthz", PORT, period_seconds=5, failure_threshold=3),
)


def _suffix() -> str:
    return f"{zlib.crc32(get_current_context()['run_id'].encode()):08x}"


def _labels() -> dict[str, str]:
    return {RUN_LABEL: f"{DAG_ID}:{get_current_context()['run_id']}"[:250]}


def _core_api() -> Any:
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
    from kubernetes.client import CoreV1Api

    return CoreV1Api(KubernetesHook(conn_id="kubernetes_default").api_client)


def _start(client: Any, spec: ContainerSpec, name: str, network: str | None, alias: str | None) -> str:
    """Create and start ``spec`` hardened (rendered, policy-checked) on ``network``."""
    from containerkit.docker.run_settings import render_docker
    from containerkit.policy.enforce import check_docker_run

    settings = render_docker(spec)
    check_docker_run(settings.as_policy_data(), mode="enforce", where=f"{DAG_ID} {name}")
    networking = None
    if network:
        endpoint = client.api.create_endpoint_config(aliases=[alias] if alias else None)
        networking = client.api.create_networking_config({network: endpoint})
    container = client.api.create_container(
        settings.image,
        entrypoint=list(settings.entrypoint or ()) or None,
        command=list(settings.command) if settings.command else None,
        user=settings.user,
        environment=dict(settings.environment),
        name=name,
        labels={**settings.labels, **_labels()},
        healthcheck=settings.healthcheck,
        host_config=client.api.create_host_config(**settings.host_config_kwargs(), network_mode=network),
        networking_config=networking,
    )
    client.api.start(container["Id"])
    return str(container["Id"])


def wait_healthy(client: Any, container: str, timeout: float = WAIT_SECONDS) -> float:
    """Seconds from start to a passing healthcheck (at most); a Diagnosis when it fails or times out."""
    started = time.monotonic()
    while True:
        state = client.api.inspect_container(container)["State"]
        health = state.get("Health") or {}
        status = health.get("Status")
        if status == "healthy":
            # From the container's start, not this wait's: the engine records when the process began.
            whole = str(state["StartedAt"]).rstrip("Z").split(".")[0]
            began = datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.UTC)
            return (datetime.datetime.now(tz=datetime.UTC) - began).total_seconds()
        if status == "unhealthy" or not state.get("Running") or time.monotonic() - started > timeout:
            outputs = [
                f"probe exit {entry.get('ExitCode')}: {str(entry.get('Output') or '').strip()}"
                for entry in (health.get("Log") or [])[-3:]
            ]
            summary = (
                f"container {container[:12]} is {status or 'not health-checked'} after "
                f"{time.monotonic() - started:.0f}s (failing streak {health.get('FailingStreak', 0)})"
            )
            raise ContainerTaskFailed(
                Diagnosis(
                    cause="Unhealthy:liveness" if status == "unhealthy" else "Unhealthy:timeout",
                    summary=summary,
                    fix="the service's own health endpoint says why (probe output above): fix that "
                    "dependency, or give a slow service a start period / startup probe, not a longer wait",
                    evidence=tuple(outputs),
                    container=container[:12],
                ),
                where="wait_healthy",
            )
        time.sleep(0.5)


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "core", "intermediate", "success", "needs:docker", "needs:kubernetes"],
    doc_md=__doc__,
)
def container_health() -> None:
    @task
    def create_network() -> str:
        import docker

        client = docker.from_env()
        name = f"ck-health-{_suffix()}"
        client.networks.create(name, driver="bridge", internal=True, labels=_labels())
        client.close()
        return name

    @task
    def start_service(network: str) -> str:
        import docker

        client = docker.from_env(timeout=60)
        spec = ContainerSpec(
            PYTHON_IMAGE, command=["python", "-c", SERVICE], probes=DOCKER_PROBES, resources="s"
        )
        container = _start(client, spec, f"ck-health-api-{_suffix()}", network, "api")
        client.close()
        return container

    @task
    def wait_until_healthy(container: str, network: str) -> dict[str, Any]:
        """Bounded wait for the healthcheck, then a real call from another container on the network."""
        import docker

        client = docker.from_env(timeout=60)
        try:
            seconds = wait_healthy(client, container)
            print(f"service seen healthy {seconds:.1f}s after its start (wait bounded at {WAIT_SECONDS}s)")
            spec = ContainerSpec(PYTHON_IMAGE, command=["python", "-c", CLIENT], resources="xs")
            caller = _start(client, spec, f"ck-health-client-{_suffix()}", network, None)
            try:
                code = client.api.wait(caller, timeout=60)["StatusCode"]
                output = client.api.logs(caller).decode().strip()
            finally:
                client.api.remove_container(caller, force=True)
        finally:
            client.close()
        answer = json.loads(output.splitlines()[-1]) if code == 0 else {"error": output}
        print(f"GET http://api:8080/ready from a client container: {answer}")
        if answer.get("status") != 200 or answer.get("body") != "ready":
            raise AssertionError(f"the service answered {answer}")
        return {"healthy_seen_after_start_seconds": round(seconds, 1), **answer}

    @task
    def failing_probe_diagnosed(network: str) -> dict[str, Any]:
        import docker

        client = docker.from_env(timeout=60)
        spec = ContainerSpec(
            PYTHON_IMAGE,
            command=["python", "-c", SERVICE],
            env={"DB_REACHABLE": "no"},
            probes=DOCKER_PROBES,
            resources="s",
        )
        container = _start(client, spec, f"ck-health-broken-{_suffix()}", network, "broken")
        try:
            wait_healthy(client, container)
        except ContainerTaskFailed as exc:
            diagnosis = exc.diagnosis
        else:
            raise AssertionError("a service whose /healthz answers 500 was reported healthy")
        finally:
            client.api.remove_container(container, force=True)
            client.close()
        print(diagnosis.render())
        if diagnosis.cause != "Unhealthy:liveness" or "database db:5432 unreachable" not in " ".join(
            diagnosis.evidence
        ):
            raise AssertionError(f"unexpected diagnosis: {diagnosis.render()}")
        return {"cause": diagnosis.cause, "evidence": list(diagnosis.evidence), "fix": diagnosis.fix}

    @teardown
    def remove_service(container: str, network: str) -> None:
        import docker
        from docker.errors import NotFound

        client = docker.from_env()
        with contextlib.suppress(NotFound):
            client.api.remove_container(container, force=True)
        client.networks.get(network).remove()
        client.close()

    @task
    def render_service_probes() -> dict[str, Any]:
        """The service pod with startup/readiness/liveness probes; validated; policy with and without."""
        from containerkit.kubernetes.manifests import to_dict
        from containerkit.kubernetes.pod import render_pod
        from containerkit.policy.engine import evaluate_pod

        def service_pod(probes: Probes) -> dict[str, Any]:
            spec = ContainerSpec(
                PYTHON_IMAGE, command=["python", "-c", SERVICE], ports=[PORT], probes=probes, resources="xs"
            )
            pod = to_dict(render_pod(spec, name="health-demo", namespace=NAMESPACE))
            pod["spec"]["restartPolicy"] = "Always"  # a service: what a Deployment's pod template says
            return pod

        probed, bare = service_pod(K8S_PROBES), service_pod(Probes())
        base = probed["spec"]["containers"][0]
        print(json.dumps({k: base[k] for k in ("startupProbe", "readinessProbe", "livenessProbe")}, indent=1))
        findings = {
            label: sorted(f.rule_id for f in evaluate_pod(pod) if f.rule_id == "HRD-010")
            for label, pod in (("without probes", bare), ("with probes", probed))
        }
        print(f"HRD-010 (probes) findings: {findings}")
        if not findings["without probes"] or findings["with probes"]:
            raise AssertionError(f"probe policy: {findings}")
        try:
            import kubernetes_validate
        except ImportError:
            print("kubernetes-validate not installed: schema check skipped")
        else:
            for version in ("1.29", "1.33", "1.37"):
                kubernetes_validate.validate(probed, version, strict=True)
            print("probed pod is schema-valid for Kubernetes 1.29, 1.33, 1.37")
        if (
            base["readinessProbe"]["httpGet"]["path"] != "/ready"
            or base["startupProbe"]["failureThreshold"] != 30
        ):
            raise AssertionError(f"probes not rendered as specified: {base}")
        return findings

    @task
    def service_pod_ready() -> dict[str, Any]:
        """Run the probed service pod; wait (bounded) for Ready; call its endpoints inside the pod."""
        from kubernetes.stream import stream

        from containerkit.kubernetes.pod import render_pod
        from containerkit.policy.enforce import check_pod

        api = _core_api()
        name = f"health-demo-{_suffix()}"
        spec = ContainerSpec(
            PYTHON_IMAGE, command=["python", "-c", SERVICE], ports=[PORT], probes=K8S_PROBES, resources="xs"
        )
        pod = render_pod(spec, name=name, namespace=NAMESPACE)
        pod.spec.restart_policy = "Always"
        check_pod(pod, mode="enforce", where=f"{DAG_ID} service pod")
        api.create_namespaced_pod(NAMESPACE, pod)
        started = time.monotonic()
        try:
            while True:
                conditions = api.read_namespaced_pod(name, NAMESPACE).status.conditions or []
                if any(c.type == "Ready" and c.status == "True" for c in conditions):
                    break
                if time.monotonic() - started > 60:
                    raise TimeoutError(f"pod {name} not Ready after 60s: {conditions}")
                time.sleep(1)
            ready_after = time.monotonic() - started
            answers = {}
            for path in ("/healthz", "/ready"):
                for _ in range(10):  # Ready may come before the app's own warm-up where probes are not run
                    ws = stream(
                        api.connect_get_namespaced_pod_exec,
                        name,
                        NAMESPACE,
                        container="base",
                        command=["python", "-c", CHECK, path],
                        stdout=True,
                        stderr=True,
                        stdin=False,
                        tty=False,
                        _preload_content=False,
                    )
                    ws.run_forever(timeout=30)
                    answers[path] = ws.read_stdout().strip()
                    ws.close()
                    if answers[path].startswith("200"):
                        break
                    time.sleep(0.5)
        finally:
            api.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)
        print(f"pod Ready after {ready_after:.1f}s; inside the pod: {answers}")
        if answers != {"/healthz": "200 alive", "/ready": "200 ready"}:
            raise AssertionError(f"health endpoints answered {answers}")
        return {"ready_after_seconds": round(ready_after, 1), **answers}

    @task
    def failing_liveness_on_cluster() -> dict[str, Any]:
        """The broken service on the cluster: the kubelet's liveness probe fails and restarts it."""
        from airflow.providers.common.compat.sdk import AirflowSkipException

        from containerkit.kubernetes.pod import render_pod
        from containerkit.policy.enforce import check_pod

        api = _core_api()
        name = f"health-broken-{_suffix()}"
        spec = ContainerSpec(
            PYTHON_IMAGE,
            command=["python", "-c", SERVICE],
            env={"DB_REACHABLE": "no"},
            ports=[PORT],
            probes=Probes(liveness=Probe.http("/healthz", PORT, period_seconds=2, failure_threshold=2)),
            resources="xs",
        )
        pod = render_pod(spec, name=name, namespace=NAMESPACE)
        pod.spec.restart_policy = "Always"
        check_pod(pod, mode="warn", where=f"{DAG_ID} broken service pod")  # no readiness probe on purpose
        api.create_namespaced_pod(NAMESPACE, pod)
        try:
            deadline = time.monotonic() + (90 if os.environ.get("CONTAINERKIT_REAL_CLUSTER") == "1" else 20)
            while True:
                events = api.list_namespaced_event(
                    NAMESPACE, field_selector=f"involvedObject.name={name}"
                ).items
                unhealthy = [e.message for e in events if e.reason == "Unhealthy"]
                status = api.read_namespaced_pod(name, NAMESPACE).status
                restarts = max((c.restart_count for c in status.container_statuses or []), default=0)
                if unhealthy and restarts >= 1:
                    break
                if time.monotonic() > deadline:
                    if not unhealthy:
                        raise AirflowSkipException(
                            "needs:cluster: this cluster's kubelet ran no liveness probe in 20s (no "
                            "Unhealthy event): the local Docker-backed test double does not run probes; set "
                            "CONTAINERKIT_REAL_CLUSTER=1 with a real cluster"
                        )
                    raise AssertionError(f"Unhealthy events {unhealthy} but {restarts} restarts")
                time.sleep(2)
        finally:
            api.delete_namespaced_pod(name, NAMESPACE, grace_period_seconds=0)
        print(f"kubelet events: {unhealthy[-2:]}; restarts: {restarts}")
        if not any("500" in m for m in unhealthy):
            raise AssertionError(f"the Unhealthy events do not show the 500: {unhealthy}")
        return {"unhealthy": unhealthy[-2:], "restarts": restarts}

    network = create_network()
    service = start_service(network)
    waited = wait_until_healthy(service, network)
    failed = failing_probe_diagnosed(network)
    [waited, failed] >> remove_service(service, network).as_teardown(setups=[network, service])
    render_service_probes() >> service_pod_ready()
    failing_liveness_on_cluster()


container_health()
