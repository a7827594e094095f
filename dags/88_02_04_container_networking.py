"""Wire container tasks to services by name on private networks, isolate the rest, publish on loopback only.

**Problem.** Tasks that reach services by IP break on every restart; containers on the default bridge
can reach each other and the internet; ``-p 8080:8080`` publishes on every interface of the host, so a
dev database is open to the office network; on Kubernetes, without a NetworkPolicy, every pod can talk
to every other pod.

**Practice.** Services get a stable name on a user-defined network (Docker's embedded DNS, a Kubernetes
Service); traffic between tasks and services stays on an ``internal`` network with no route out; a
task that needs no network gets none (``network_mode="none"``); ports are published on 127.0.0.1 only
(put a reverse proxy in front for real external access); Kubernetes namespaces start from
default-deny and allow exactly the flows a task needs.

**Where each sub-point is covered.**

- internal networking: ``create_networks`` makes ``ck-88-02-04-internal`` (``internal=True``: no route
  out) and ``ck-88-02-04-edge`` (for the published port only);
- service discovery: ``start_service`` runs a hardened service container (rendered by containerkit,
  policy-checked) with alias ``inventory`` on the internal network; ``client_by_name`` is a
  ``SecureDockerOperator`` on that network that resolves ``inventory`` and calls it;
- isolation: ``isolated`` runs with ``network_mode="none"``: only ``lo``, no DNS, the service's IP
  unreachable;
- port exposure and external access: ``published_ports`` asserts that every published port of the
  service is bound to 127.0.0.1 (and, outside the compose stack, calls it there);
- Kubernetes: ``k8s_service_and_policy`` renders the service pod (readiness probe), a ClusterIP
  Service, and NetworkPolicies (default deny; the task pods may reach ``inventory`` on 8080 and DNS;
  nothing else), validates them strictly against several Kubernetes versions and the pod against policy;
- ``stop_service`` (teardown) removes the container and both networks.

**When copying.** Replace the service image and command; keep ``internal=True`` for task-to-service
traffic and publish only what people must reach, on 127.0.0.1.

**Needs.** A Docker engine (``needs:docker``).
"""

from __future__ import annotations

import json
import os
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.docker import SecureDockerOperator
from airflow.sdk import dag, task

from containerkit.spec import ContainerSpec, Probe, Probes

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
NAMESPACE = os.environ.get("CONTAINERKIT_NAMESPACE", "airflow-tasks")
INTERNAL = "ck-88-02-04-internal"
EDGE = "ck-88-02-04-edge"
SERVICE = "ck-88-02-04-inventory"
ALIAS = "inventory"
PORT = 8080
LABELS = {"containerkit.example": "88_02_04"}
K8S_VERSIONS = ("1.29", "1.33", "1.37")

SERVER = r"""
import http.server, json
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"service": "inventory", "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
"""
CLIENT = r"""
import json, socket, time, urllib.request
deadline = time.time() + 30
while True:
    try:
        ip = socket.gethostbyname("inventory")
        body = json.load(urllib.request.urlopen("http://inventory:8080/items", timeout=2))
        break
    except OSError:
        if time.time() > deadline:
            raise
        time.sleep(0.5)
print(json.dumps({"resolved": ip, "response": body}))
"""
ISOLATED = r"""
import json, os, socket, sys
def reach(host, port):
    try:
        socket.create_connection((host, port), timeout=2).close()
        return True
    except OSError as exc:
        return False
try:
    socket.gethostbyname("inventory")
    dns = True
except OSError:
    dns = False
print(json.dumps({"interfaces": sorted(os.listdir("/sys/class/net")), "dns": dns,
                  "service_reachable": reach(sys.argv[1], 8080)}))
"""
SERVICE_SPEC = ContainerSpec(
    image=PYTHON_IMAGE,
    command=["python", "-c", SERVER],
    ports=[PORT],
    labels={"app.kubernetes.io/name": ALIAS},
    resources="xs",
)


@dag(
    dag_id="88_02_04_container_networking",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "core", "intermediate", "success", "needs:docker"],
    doc_md=__doc__,
)
def container_networking() -> None:
    @task
    def create_networks() -> list[str]:
        import docker

        client = docker.from_env()
        for name in (INTERNAL, EDGE):
            for stale in client.networks.list(names=[name]):
                stale.remove()
        client.networks.create(INTERNAL, driver="bridge", internal=True, labels=LABELS)
        client.networks.create(EDGE, driver="bridge", labels=LABELS)
        return [INTERNAL, EDGE]

    @task
    def start_service() -> dict[str, Any]:
        """The service, hardened like any task (rendered from the spec, policy-checked), by name."""
        import docker

        from containerkit.docker.run_settings import render_docker
        from containerkit.policy.enforce import check_docker_run

        settings = render_docker(SERVICE_SPEC)
        check_docker_run(settings.as_policy_data(), mode="enforce", where=f"service {SERVICE}")
        api = docker.from_env().api
        for stale in api.containers(all=True, filters={"name": SERVICE}):
            api.remove_container(stale["Id"], force=True)
        host = api.create_host_config(
            **settings.host_config_kwargs(),
            network_mode=INTERNAL,
            port_bindings={PORT: ("127.0.0.1",)},  # a random port, on loopback only
        )
        container = api.create_container(
            image=settings.image,
            command=list(settings.entrypoint or ()) + list(settings.command or ()),
            user=settings.user,
            labels={**settings.labels, **LABELS},
            name=SERVICE,
            ports=[PORT],
            host_config=host,
            networking_config=api.create_networking_config(
                {INTERNAL: api.create_endpoint_config(aliases=[ALIAS])}
            ),
        )
        api.connect_container_to_network(container["Id"], EDGE)
        api.start(container["Id"])
        info = api.inspect_container(container["Id"])
        networks = info["NetworkSettings"]["Networks"]
        return {"id": container["Id"], "ip": networks[INTERNAL]["IPAddress"], "networks": sorted(networks)}

    client_by_name = SecureDockerOperator(
        task_id="client_by_name",
        image=PYTHON_IMAGE,
        command=["python", "-c", CLIENT],
        network_mode=INTERNAL,
        resources="xs",
    )
    isolated = SecureDockerOperator(
        task_id="isolated",
        image=PYTHON_IMAGE,
        command=["python", "-c", ISOLATED, "{{ ti.xcom_pull(task_ids='start_service')['ip'] }}"],
        network_mode="none",
        resources="xs",
    )

    @task
    def published_ports(service: dict[str, Any]) -> dict[str, Any]:
        """Every published port on 127.0.0.1; reachable there (not from outside the host)."""
        import time
        import urllib.request

        import docker

        info = docker.from_env().api.inspect_container(service["id"])
        bindings = info["NetworkSettings"]["Ports"] or {}
        published = [
            (port, b["HostIp"], b["HostPort"]) for port, items in bindings.items() for b in items or []
        ]
        exposed = [p for p in published if p[1] not in ("127.0.0.1", "::1")]
        if not published or exposed:
            raise AssertionError(f"published ports must be on loopback only: {published}")
        answer = None
        if os.environ.get("CONTAINERKIT_IN_COMPOSE") != "1":  # in the stack, 127.0.0.1 is the worker's own
            url = f"http://127.0.0.1:{published[0][2]}/health"
            deadline = time.monotonic() + 20
            while answer is None:
                try:
                    with urllib.request.urlopen(url, timeout=2) as resp:
                        answer = json.load(resp)
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
        return {"published": published, "answer": answer}

    @task
    def check(by_name: str, alone: str, service: dict[str, Any]) -> dict[str, Any]:
        named, isolated_facts = json.loads(by_name), json.loads(alone)
        problems = []
        if named["resolved"] != service["ip"] or named["response"].get("service") != "inventory":
            problems.append(f"by name: {named} (service at {service['ip']})")
        if isolated_facts != {"interfaces": ["lo"], "dns": False, "service_reachable": False}:
            problems.append(f"network_mode=none is not isolated: {isolated_facts}")
        if problems:
            raise AssertionError("; ".join(problems))
        return {"by_name": named, "isolated": isolated_facts}

    @task
    def stop_service() -> None:
        import docker

        client = docker.from_env()
        for container in client.containers.list(all=True, filters={"label": "containerkit.example=88_02_04"}):
            container.remove(force=True, v=True)
        for network in client.networks.list(names=[INTERNAL, EDGE]):
            network.remove()

    @task
    def k8s_service_and_policy() -> dict[str, Any]:
        """Service + default-deny and allow NetworkPolicies + the probed service pod, validated."""
        from kubernetes.client import (
            V1LabelSelector,
            V1NetworkPolicy,
            V1NetworkPolicyEgressRule,
            V1NetworkPolicyIngressRule,
            V1NetworkPolicyPeer,
            V1NetworkPolicyPort,
            V1NetworkPolicySpec,
            V1ObjectMeta,
            V1Service,
            V1ServicePort,
            V1ServiceSpec,
        )

        from containerkit.kubernetes.manifests import dump_yaml, model, to_dict
        from containerkit.kubernetes.pod import render_pod
        from containerkit.policy.engine import evaluate_pod

        app = {"app.kubernetes.io/name": ALIAS}
        tasks = {"containerkit.io/role": "task"}
        pod = render_pod(
            SERVICE_SPEC.replace(probes=Probes(readiness=Probe.http("/health", PORT))),
            name=ALIAS,
            namespace=NAMESPACE,
        )

        def meta(name: str) -> Any:
            return model(V1ObjectMeta, name=name, namespace=NAMESPACE)

        def port(number: int, protocol: str = "TCP") -> Any:
            return model(V1NetworkPolicyPort, port=number, protocol=protocol)

        service = model(
            V1Service,
            api_version="v1",
            kind="Service",
            metadata=meta(ALIAS),
            spec=model(
                V1ServiceSpec,
                type="ClusterIP",
                selector=app,
                ports=[model(V1ServicePort, name="http", port=80, target_port=PORT)],
            ),
        )
        deny_all = model(
            V1NetworkPolicy,
            api_version="networking.k8s.io/v1",
            kind="NetworkPolicy",
            metadata=meta("default-deny"),
            spec=model(
                V1NetworkPolicySpec, pod_selector=model(V1LabelSelector), policy_types=["Ingress", "Egress"]
            ),
        )
        dns = model(
            V1NetworkPolicyPeer,
            namespace_selector=model(
                V1LabelSelector, match_labels={"kubernetes.io/metadata.name": "kube-system"}
            ),
            pod_selector=model(V1LabelSelector, match_labels={"k8s-app": "kube-dns"}),
        )
        task_egress = model(
            V1NetworkPolicy,
            api_version="networking.k8s.io/v1",
            kind="NetworkPolicy",
            metadata=meta("tasks-to-inventory"),
            spec=model(
                V1NetworkPolicySpec,
                pod_selector=model(V1LabelSelector, match_labels=tasks),
                policy_types=["Egress"],
                egress=[
                    model(
                        V1NetworkPolicyEgressRule,
                        to=[
                            model(V1NetworkPolicyPeer, pod_selector=model(V1LabelSelector, match_labels=app))
                        ],
                        ports=[port(PORT)],
                    ),
                    model(V1NetworkPolicyEgressRule, to=[dns], ports=[port(53, "UDP"), port(53, "TCP")]),
                ],
            ),
        )
        inventory_ingress = model(
            V1NetworkPolicy,
            api_version="networking.k8s.io/v1",
            kind="NetworkPolicy",
            metadata=meta("inventory-from-tasks"),
            spec=model(
                V1NetworkPolicySpec,
                pod_selector=model(V1LabelSelector, match_labels=app),
                policy_types=["Ingress"],
                ingress=[
                    model(
                        V1NetworkPolicyIngressRule,
                        _from=[
                            model(
                                V1NetworkPolicyPeer, pod_selector=model(V1LabelSelector, match_labels=tasks)
                            )
                        ],
                        ports=[port(PORT)],
                    )
                ],
            ),
        )
        objects = [service, deny_all, task_egress, inventory_ingress, pod]
        errors = [(f.rule_id, f.message) for f in evaluate_pod(pod) if f.severity.value == "error"]
        if errors:
            raise AssertionError(f"policy: {errors}")
        if to_dict(pod)["metadata"]["labels"] != app:
            raise AssertionError("the Service selector does not match the pod's labels")
        try:
            import kubernetes_validate
        except ImportError:
            from airflow.sdk.exceptions import AirflowSkipException

            raise AirflowSkipException("schema validation needs kubernetes-validate") from None
        for version in K8S_VERSIONS:
            for obj in objects:
                kubernetes_validate.validate(to_dict(obj), version, strict=True)
        print(dump_yaml(objects))
        return {"validated": [f"{o.kind}/{o.metadata.name}" for o in objects], "versions": list(K8S_VERSIONS)}

    networks = create_networks()
    service = start_service()
    networks >> service >> [client_by_name, isolated]
    checked = check(client_by_name.output, isolated.output, service)
    ports = published_ports(service)
    [checked, ports] >> stop_service().as_teardown(setups=[networks, service])
    k8s_service_and_policy()


container_networking()
