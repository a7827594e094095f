"""Network optimization: ndots, connection pooling, mesh sidecar sizing and default-deny policies, measured.

**Problem.** In a pod, ``api.example.com`` is first tried as ``api.example.com.<ns>.svc.cluster.local``,
``...svc.cluster.local`` and ``...cluster.local`` (``ndots: 5``): four DNS queries per lookup. A client
that opens a new connection per request pays the handshake each time. A service-mesh proxy without
sizes is unbounded, and a namespace without NetworkPolicies lets every task reach everything.

**Practice, per sub-point** (every container hardened by containerkit's renderers and policy-checked):

* *DNS caching* / ndots (``measure_dns_ndots``, Docker): a tiny DNS server container counts the queries
  a task container sends for 40 lookups of ``api.example.com`` with the Kubernetes default search path
  and ``ndots:5``, with ``ndots:1``, and for the fully-qualified ``api.example.com.``; time per lookup is
  measured too. ``dns_config_pod`` runs the same setting as a pod (``dnsConfig`` with ``ndots: 1`` through
  ``SecureKubernetesPodOperator(dns_config=...)``) and reports the resolver options the pod got.
* *connection pooling* (``measure_connection_pooling``, Docker): 300 HTTP requests from a task container
  to a local service container on a user-defined network, over one kept-alive connection versus a new
  connection each time.
* *service mesh tuning* (``render_mesh_sidecar``): the Istio proxy's requests and limits set through its
  pod annotations from containerkit's ``xs`` sidecar preset (the same preset as every containerkit
  sidecar), ``holdApplicationUntilProxyStarts``, validated strictly and against policy.
* *network policies* (``apply_network_policies``): a default-deny NetworkPolicy for the task namespace
  plus the one egress rule the task needs (DNS and the service's port), validated strictly against
  several Kubernetes versions, applied through the API and removed; ``measure_connection_pooling`` also
  proves the Docker equivalent (a task with ``network_mode: none`` cannot reach the service, one on the
  service's network can). ``verify_policy_enforced`` checks real enforcement on a cluster whose CNI
  implements NetworkPolicy (``needs:cluster``).

**Copying.** Set ``CONTAINERKIT_PYTHON_IMAGE`` / ``CONTAINERKIT_NAMESPACE`` and ``kubernetes_default``;
change ``API_PORT`` / the policy's selectors to your service; put ``dnsConfig`` (or a trailing dot on
external names) on tasks that call external hosts in loops.

**Needs.** A Docker engine (``needs:docker``) and a Kubernetes API (``needs:kubernetes``; the tests use
the local Docker-backed one from ``containerkit.testing``, which runs pods with Docker's resolver and does
not enforce NetworkPolicies); ``verify_policy_enforced`` needs a real cluster (``needs:cluster``).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.kubernetes import SecureKubernetesPodOperator
from airflow.sdk import dag, task
from kubernetes.client import V1PodDNSConfig, V1PodDNSConfigOption

from containerkit.spec import ContainerSpec

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
NAMESPACE = os.environ.get("CONTAINERKIT_NAMESPACE", "airflow-tasks")
KUBERNETES_CONN_ID = "kubernetes_default"
LABEL = {"containerkit.example": "88_08_04"}
API_PORT = 8080
LOOKUPS = 40
REQUESTS = 300
SEARCH = ["airflow-tasks.svc.cluster.local", "svc.cluster.local", "cluster.local"]
KUBERNETES_VERSIONS = ("1.29", "1.33", "1.37")

DNS_SERVER = r"""
import socket, struct
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("0.0.0.0", 53))
print("dns ready", flush=True)
while True:
    data, peer = sock.recvfrom(512)
    qid, flags, qd = struct.unpack("!HHH", data[:6])
    labels, i = [], 12
    while data[i]:
        labels.append(data[i + 1 : i + 1 + data[i]].decode()); i += 1 + data[i]
    question = data[12 : i + 5]
    qtype = struct.unpack("!H", data[i + 1 : i + 3])[0]
    name = ".".join(labels).lower()
    print("query", name, qtype, flush=True)
    if name == "api.example.com" and qtype == 1:
        answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton("10.0.0.1")
        sock.sendto(struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + answer, peer)
    else:  # NXDOMAIN
        sock.sendto(struct.pack("!HHHHHH", qid, 0x8183, 1, 0, 0, 0) + question, peer)
"""
DNS_CLIENT = (
    "import socket, sys, time\n"
    "name, n = sys.argv[1], int(sys.argv[2])\n"
    "t = time.perf_counter()\n"
    "for _ in range(n):\n"
    "    socket.getaddrinfo(name, 443, socket.AF_INET, socket.SOCK_STREAM)\n"
    "print('ms_per_lookup', round((time.perf_counter() - t) * 1000 / n, 3))\n"
)
HTTP_SERVER = (
    "import http.server\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    protocol_version = 'HTTP/1.1'\n"
    # Keep-alive without TCP_NODELAY meets delayed ACKs: ~40 ms per request. Pooling needs both.
    "    disable_nagle_algorithm = True\n"
    "    def do_GET(self):\n"
    "        self.send_response(200); self.send_header('Content-Length', '2'); self.end_headers()\n"
    "        self.wfile.write(b'ok')\n"
    "    def log_message(self, *a): pass\n"
    f"http.server.ThreadingHTTPServer(('0.0.0.0', {API_PORT}), H).serve_forever()\n"
)
HTTP_CLIENT = (
    "import http.client, sys, time\n"
    "host, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]\n"
    f"port = {API_PORT}\n"
    "for attempt in range(100):\n"
    "    try:\n"
    "        http.client.HTTPConnection(host, port, timeout=2).request('GET', '/'); break\n"
    "    except OSError as exc:\n"
    "        if mode == 'probe': print('unreachable', type(exc).__name__); raise SystemExit(0)\n"
    "        time.sleep(0.1)\n"
    "if mode == 'probe': print('reachable'); raise SystemExit(0)\n"
    "conn = http.client.HTTPConnection(host, port, timeout=5)\n"
    "t = time.perf_counter()\n"
    "for _ in range(n):\n"
    "    if mode == 'new':\n"
    "        conn = http.client.HTTPConnection(host, port, timeout=5)\n"
    "    conn.request('GET', '/'); r = conn.getresponse(); r.read()\n"
    "    if mode == 'new': conn.close()\n"
    "print('ms_per_request', round((time.perf_counter() - t) * 1000 / n, 3))\n"
)


def _run(client: Any, spec: ContainerSpec, *, detach: bool = False, **host_extra: Any) -> tuple[str, str]:
    """Run ``spec`` hardened (policy checked on the final settings); return (container id, output)."""
    from containerkit.docker.run_settings import render_docker
    from containerkit.policy.enforce import check_docker_run

    settings = render_docker(spec)
    host_kwargs = {**settings.host_config_kwargs(), **host_extra}
    policy = {**settings.as_policy_data(), **host_extra}
    check_docker_run(policy, mode="enforce", where="88_08_04 container")
    container = client.api.create_container(
        settings.image,
        entrypoint=settings.entrypoint,
        command=settings.command,
        user=settings.user,
        environment=settings.runtime_environment(),
        labels=dict(settings.labels),
        host_config=client.api.create_host_config(**host_kwargs),
        name=f"ck-88-08-04-{uuid.uuid4().hex[:8]}",
    )
    cid = str(container["Id"])
    client.api.start(cid)
    if detach:
        return cid, ""
    status = client.api.wait(cid, timeout=120)
    output = client.api.logs(cid).decode()
    client.api.remove_container(cid, force=True)
    if status["StatusCode"] != 0:
        raise RuntimeError(f"container exited {status['StatusCode']}: {output[-500:]}")
    return cid, output


def _spec(code: str, *args: str) -> ContainerSpec:
    return ContainerSpec(PYTHON_IMAGE, command=["python", "-c", code, *args], resources="xs", labels=LABEL)


def _wait_for_log(client: Any, cid: str, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while text not in client.api.logs(cid).decode():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{cid[:12]} did not log {text!r}")
        time.sleep(0.1)


def _cleanup(client: Any, network: Any) -> None:
    for c in client.api.containers(all=True, filters={"label": [f"{k}={v}" for k, v in LABEL.items()]}):
        client.api.remove_container(c["Id"], force=True)
    if network is not None:
        network.remove()


@dag(
    dag_id="88_08_04_network_optimization",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=[
        "reference",
        "performance",
        "intermediate",
        "success",
        "needs:docker",
        "needs:kubernetes",
        "needs:cluster",
    ],
    doc_md=__doc__,
)
def network_optimization() -> None:
    @task
    def measure_dns_ndots() -> dict[str, Any]:
        import docker

        client = docker.from_env(timeout=120)
        network = client.networks.create(f"ck-88-08-04-dns-{uuid.uuid4().hex[:6]}", labels=LABEL)
        try:
            # Binding port 53 as uid 50000 without any capability: the namespaced, pod-safe sysctl.
            server, _ = _run(
                client,
                _spec(DNS_SERVER),
                detach=True,
                network_mode=network.name,
                sysctls={"net.ipv4.ip_unprivileged_port_start": "53"},
            )
            _wait_for_log(client, server, "dns ready")
            ip = client.api.inspect_container(server)["NetworkSettings"]["Networks"][network.name][
                "IPAddress"
            ]
            out: dict[str, Any] = {}
            for label, name, ndots in (
                ("ndots:5 (Kubernetes default)", "api.example.com", 5),
                ("ndots:1", "api.example.com", 1),
                ("fully qualified name", "api.example.com.", 5),
            ):
                before = client.api.logs(server).decode().count("query ")
                _, output = _run(
                    client,
                    _spec(DNS_CLIENT, name, str(LOOKUPS)),
                    network_mode=network.name,
                    dns=[ip],
                    dns_search=SEARCH,
                    dns_opt=[f"ndots:{ndots}"],
                )
                queries = client.api.logs(server).decode().count("query ") - before
                ms = float(output.split("ms_per_lookup")[1].split()[0])
                out[label] = {"queries_per_lookup": round(queries / LOOKUPS, 2), "ms_per_lookup": ms}
                print(f"{label:<30} {queries / LOOKUPS:.1f} DNS queries and {ms:.2f} ms per lookup")
        finally:
            _cleanup(client, network)
            client.close()
        if (
            not out["ndots:5 (Kubernetes default)"]["queries_per_lookup"]
            > out["ndots:1"]["queries_per_lookup"]
        ):
            raise ValueError(f"ndots:1 did not save queries: {out}")
        return out

    @task
    def measure_connection_pooling() -> dict[str, Any]:
        import docker

        client = docker.from_env(timeout=120)
        network = client.networks.create(f"ck-88-08-04-http-{uuid.uuid4().hex[:6]}", labels=LABEL)
        try:
            server, _ = _run(client, _spec(HTTP_SERVER), detach=True, network_mode=network.name)
            client.api.disconnect_container_from_network(server, network.name)
            client.api.connect_container_to_network(server, network.name, aliases=["api"])
            out: dict[str, Any] = {}
            for label, mode in (("pooled (keep-alive)", "pooled"), ("new connection each", "new")):
                _, output = _run(
                    client, _spec(HTTP_CLIENT, "api", str(REQUESTS), mode), network_mode=network.name
                )
                out[label] = float(output.split("ms_per_request")[1].split()[0])
                print(f"{label:<22} {out[label]:.3f} ms per request ({REQUESTS} requests)")
            # Default deny, Docker form: no network at all; allowed egress: the service's network.
            _, denied = _run(client, _spec(HTTP_CLIENT, "api", "1", "probe"), network_mode="none")
            _, allowed = _run(client, _spec(HTTP_CLIENT, "api", "1", "probe"), network_mode=network.name)
        finally:
            _cleanup(client, network)
            client.close()
        if "unreachable" not in denied or "reachable" not in allowed or "unreachable" in allowed:
            raise ValueError(f"isolation not as expected: none -> {denied!r}, network -> {allowed!r}")
        if out["pooled (keep-alive)"] >= out["new connection each"]:
            raise ValueError(f"pooling did not help: {out}")
        out["isolated_task"] = denied.strip()
        return out

    dns_config_pod = SecureKubernetesPodOperator(
        task_id="dns_config_pod",
        name="dns-config",
        namespace=NAMESPACE,
        kubernetes_conn_id=KUBERNETES_CONN_ID,
        image=PYTHON_IMAGE,
        cmds=["python", "-c"],
        arguments=[
            "import json, pathlib; conf = pathlib.Path('/etc/resolv.conf').read_text(); "
            "opts = [w for l in conf.splitlines() if l.startswith('options') for w in l.split()[1:]]; "
            "pathlib.Path('/airflow/xcom/return.json').write_text(json.dumps({'options': opts}))"
        ],
        dns_config=V1PodDNSConfig(options=[V1PodDNSConfigOption(name="ndots", value="1")]),
        resources="xs",
        do_xcom_push=True,
    )

    @task
    def check_dns_config(result: dict[str, Any]) -> dict[str, Any]:
        """The pod asked for ndots:1; a kubelet writes it to resolv.conf (the test double may not)."""
        import kubernetes_validate

        from containerkit.kubernetes.manifests import to_dict

        pod = to_dict(dns_config_pod.build_pod_request_obj(dry_run=True))
        if pod["spec"].get("dnsConfig") != {"options": [{"name": "ndots", "value": "1"}]}:
            raise ValueError(f"the pod's dnsConfig is {pod['spec'].get('dnsConfig')}")
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(pod, version, strict=True)
        applied = "ndots:1" in result["options"]
        note = "applied" if applied else "not applied by this node: the test double keeps Docker's resolver"
        print(
            f"pod requested dnsConfig ndots:1 (valid on {KUBERNETES_VERSIONS}); in the pod: {result} ({note})"
        )
        return {"requested": "ndots:1", "pod_options": result["options"], "applied": applied}

    @task
    def render_mesh_sidecar() -> dict[str, Any]:
        import kubernetes_validate

        from containerkit.kubernetes.manifests import to_dict
        from containerkit.kubernetes.pod import render_pod
        from containerkit.policy.engine import evaluate_pod
        from containerkit.policy.model import Severity
        from containerkit.spec import Resources
        from containerkit.spec.quantity import parse_quantity
        from containerkit.spec.resources import SIDECAR_PRESET

        proxy = Resources.preset(SIDECAR_PRESET)
        annotations = {
            "sidecar.istio.io/proxyCPU": proxy.requests["cpu"],
            "sidecar.istio.io/proxyCPULimit": proxy.limits["cpu"],
            "sidecar.istio.io/proxyMemory": proxy.requests["memory"],
            "sidecar.istio.io/proxyMemoryLimit": proxy.limits["memory"],
            # The task must not start before the proxy can route its traffic.
            "proxy.istio.io/config": json.dumps({"holdApplicationUntilProxyStarts": True}),
        }
        spec = ContainerSpec(
            PYTHON_IMAGE,
            command=["python", "-m", "job"],
            resources="s",
            annotations=annotations,
            labels={"app": "etl", "sidecar.istio.io/inject": "true"},
        )
        pod = to_dict(render_pod(spec, name="meshed-task", namespace=NAMESPACE))
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(pod, version, strict=True)
        for key in ("proxyCPU", "proxyCPULimit"):
            parse_quantity(key, annotations[f"sidecar.istio.io/{key}"], kind="cpu")
        for key in ("proxyMemory", "proxyMemoryLimit"):
            parse_quantity(key, annotations[f"sidecar.istio.io/{key}"], kind="bytes")
        errors = [f.message for f in evaluate_pod(pod) if f.severity is Severity.ERROR]
        if errors:
            raise ValueError(f"meshed task pod: {errors}")
        print("istio proxy sized from the xs preset:", json.dumps(annotations, indent=2))
        return annotations

    @task
    def apply_network_policies() -> dict[str, Any]:
        import kubernetes_validate
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
        from kubernetes.client import (
            NetworkingV1Api,
            V1LabelSelector,
            V1NetworkPolicy,
            V1NetworkPolicyEgressRule,
            V1NetworkPolicyPeer,
            V1NetworkPolicyPort,
            V1NetworkPolicySpec,
            V1ObjectMeta,
        )

        from containerkit.kubernetes.manifests import to_dict

        meta = {"app.kubernetes.io/managed-by": "containerkit"}
        deny = V1NetworkPolicy(
            api_version="networking.k8s.io/v1",
            kind="NetworkPolicy",
            metadata=V1ObjectMeta(name="default-deny", namespace=NAMESPACE, labels=meta),
            spec=V1NetworkPolicySpec(pod_selector=V1LabelSelector(), policy_types=["Ingress", "Egress"]),
        )
        dns_peer = V1NetworkPolicyPeer(
            namespace_selector=V1LabelSelector(match_labels={"kubernetes.io/metadata.name": "kube-system"}),
            pod_selector=V1LabelSelector(match_labels={"k8s-app": "kube-dns"}),
        )
        allow = V1NetworkPolicy(
            api_version="networking.k8s.io/v1",
            kind="NetworkPolicy",
            metadata=V1ObjectMeta(name="etl-egress", namespace=NAMESPACE, labels=meta),
            spec=V1NetworkPolicySpec(
                pod_selector=V1LabelSelector(match_labels={"app": "etl"}),
                policy_types=["Egress"],
                egress=[
                    V1NetworkPolicyEgressRule(
                        to=[dns_peer],
                        ports=[V1NetworkPolicyPort(protocol=p, port=53) for p in ("UDP", "TCP")],
                    ),
                    V1NetworkPolicyEgressRule(
                        to=[V1NetworkPolicyPeer(pod_selector=V1LabelSelector(match_labels={"app": "api"}))],
                        ports=[V1NetworkPolicyPort(protocol="TCP", port=API_PORT)],
                    ),
                ],
            ),
        )
        documents = [to_dict(deny), to_dict(allow)]
        for document in documents:
            for version in KUBERNETES_VERSIONS:
                kubernetes_validate.validate(document, version, strict=True)
        api = NetworkingV1Api(KubernetesHook(conn_id=KUBERNETES_CONN_ID).api_client)
        names = []
        try:
            for document in documents:
                api.create_namespaced_network_policy(NAMESPACE, document)
                names.append(document["metadata"]["name"])
            stored = {p.metadata.name for p in api.list_namespaced_network_policy(NAMESPACE).items}
        finally:
            for name in names:
                api.delete_namespaced_network_policy(name, NAMESPACE)
        if not {"default-deny", "etl-egress"} <= stored:
            raise ValueError(f"policies not stored: {stored}")
        print(f"default-deny + etl-egress valid on {KUBERNETES_VERSIONS}, applied and removed")
        return {"applied": sorted(stored), "documents": documents}

    @task
    def verify_policy_enforced(policies: dict[str, Any]) -> dict[str, str]:
        """On a cluster whose CNI enforces NetworkPolicy: app=etl may reach DNS, not the API server."""
        from airflow.sdk import get_current_context
        from airflow.sdk.exceptions import AirflowSkipException

        if os.environ.get("CONTAINERKIT_REAL_CLUSTER") != "1":
            raise AirflowSkipException(
                "needs:cluster: enforcing NetworkPolicy needs a real cluster whose CNI implements it "
                "(Calico, Cilium, ...); the local Docker-backed API stores policies but does not enforce "
                "them. Set CONTAINERKIT_REAL_CLUSTER=1 to probe a denied and an allowed destination."
            )
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
        from kubernetes.client import NetworkingV1Api

        api = NetworkingV1Api(KubernetesHook(conn_id=KUBERNETES_CONN_ID).api_client)
        for document in policies["documents"]:
            api.create_namespaced_network_policy(NAMESPACE, document)
        probe = (
            "import json, socket, pathlib\n"
            "def reach(host, port):\n"
            "    try:\n        socket.create_connection((host, port), timeout=3).close(); return 'open'\n"
            "    except OSError as exc:\n        return type(exc).__name__\n"
            "socket.getaddrinfo('kubernetes.default.svc.cluster.local', 443)\n"
            "result = {'dns': 'resolved', 'api-server': reach('kubernetes.default.svc.cluster.local', 443)}\n"
            "pathlib.Path('/airflow/xcom/return.json').write_text(json.dumps(result))\n"
        )
        try:
            result = SecureKubernetesPodOperator(
                task_id="policy_probe",
                name="policy-probe",
                namespace=NAMESPACE,
                kubernetes_conn_id=KUBERNETES_CONN_ID,
                image=PYTHON_IMAGE,
                cmds=["python", "-c", probe],
                labels={"app": "etl"},
                resources="xs",
                do_xcom_push=True,
            ).execute(get_current_context())
        finally:
            for document in policies["documents"]:
                api.delete_namespaced_network_policy(document["metadata"]["name"], NAMESPACE)
        if result.get("api-server") == "open":
            raise ValueError(f"app=etl reached the API server despite default-deny: {result}")
        return result

    dns = measure_dns_ndots()
    pooling = measure_connection_pooling()
    checked = check_dns_config(dns_config_pod.output)
    policies = apply_network_policies()
    [dns, pooling] >> dns_config_pod
    [checked, render_mesh_sidecar()] >> verify_policy_enforced(policies)


network_optimization()
