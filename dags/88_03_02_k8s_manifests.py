"""Kubernetes manifests: a small service's Deployment, Service, ConfigMap, Secret reference and Ingress.

**Problem.** Hand-written manifests for the small services a pipeline needs (a scoring API, a
metadata webhook) copy a pod spec from somewhere, without the hardening and sizing task pods get, and
are first validated by the API server of the production cluster.

**Practice, per sub-point:**

* *Deployment definitions* (``render_manifests``): the Deployment's pod template is containerkit's
  ``render_pod`` of a ``ContainerSpec`` (restricted profile, ``s`` preset, readiness and liveness
  probes, read-only root with a writable ``/tmp``), with two replicas and a rolling update that never
  drops below the desired count.
* *Service configurations*: a ClusterIP Service selecting the pods, port 80 to the named container port.
* *ConfigMaps and Secrets*: the ConfigMap is rendered with the manifests and mounted as a file; the
  Secret is only *referenced* (``secretKeyRef``): its value never appears in a manifest, a log or XCom.
  ``ensure_secret`` creates it with a random value for this demo (yours comes from a secret manager).
* *Ingress setup*: ``ingressClassName``, a host rule to the Service and TLS from a named Secret.
* ``validate_manifests``: every document validates strictly (``kubernetes-validate``) against Kubernetes
  1.29, 1.33 and 1.37, and the multi-document YAML passes containerkit's policy (``pss-restricted``,
  ``hardened``: what ``containerkit lint`` runs) with no warning or error.
* ``apply_manifests`` creates them through the Kubernetes API and ``wait_for_objects`` reads each back;
  ``smoke_pod_template`` runs the Deployment's exact pod template once as a pod in self-test mode (the
  server starts, answers its readiness path and reads the ConfigMap file and the Secret env var);
  ``wait_for_rollout`` waits for the Deployment to be Available (a Deployment controller is needed:
  ``needs:cluster``); ``delete_manifests`` removes everything (a teardown: it runs after a failure
  too, and does not turn a failed run green).

**Copying.** Change ``APP``, the server command and the host; set ``CONTAINERKIT_PYTHON_IMAGE`` /
``CONTAINERKIT_NAMESPACE`` and ``kubernetes_default``.

**Needs.** A Kubernetes API (``needs:kubernetes``; the tests use the local Docker-backed one from
``containerkit.testing``, which stores Deployments without rolling them out); ``wait_for_rollout`` needs a
real cluster (``needs:cluster``: ``CONTAINERKIT_REAL_CLUSTER=1``).
"""

from __future__ import annotations

import os
import time
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.kubernetes import SecureKubernetesPodOperator
from airflow.sdk import dag, task, teardown

from containerkit.spec import (
    ConfigMapRef,
    ContainerSpec,
    Probe,
    Probes,
    Scheduling,
    SecretRef,
    TopologySpread,
)

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
NAMESPACE = os.environ.get("CONTAINERKIT_NAMESPACE", "airflow-tasks")
KUBERNETES_CONN_ID = "kubernetes_default"
APP = "scoring-api"
PORT = 8080
HOST = "scoring.example.internal"
SECRET = f"{APP}-token"
CONFIG_MAP = f"{APP}-config"
KUBERNETES_VERSIONS = ("1.29", "1.33", "1.37")
LABELS = {"app.kubernetes.io/name": APP, "app.kubernetes.io/managed-by": "containerkit"}

SERVER = f"""
import http.server, os, pathlib, sys, threading, urllib.request
greeting = pathlib.Path("/etc/{APP}/greeting.txt").read_text().strip()
token_set = bool(os.environ.get("API_TOKEN"))
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok" if self.path == "/healthz" else greeting.encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args): pass
server = http.server.ThreadingHTTPServer(("0.0.0.0", {PORT}), Handler)
if "--self-test" not in sys.argv:
    server.serve_forever()
threading.Thread(target=server.serve_forever, daemon=True).start()
health = urllib.request.urlopen("http://127.0.0.1:{PORT}/healthz", timeout=5).read().decode()
answer = urllib.request.urlopen("http://127.0.0.1:{PORT}/", timeout=5).read().decode()
assert health == "ok" and answer == greeting and token_set, (health, answer, token_set)
print(f"self-test passed: healthz={{health}}, greeting={{answer!r}}, API_TOKEN set={{token_set}}")
"""


def _spec(*args: str) -> ContainerSpec:
    return ContainerSpec(
        PYTHON_IMAGE,
        command=["python", "-c", SERVER, *args],
        ports=[PORT],
        probes=Probes(
            readiness=Probe.http("/healthz", PORT),
            liveness=Probe.http("/healthz", PORT),
        ),
        config_maps=[ConfigMapRef(CONFIG_MAP, "greeting.txt", path=f"/etc/{APP}/greeting.txt")],
        secrets=[SecretRef(SECRET, "token", env="API_TOKEN")],
        resources="s",
        labels=LABELS,
        # Two replicas on two nodes: one node going away never takes the whole service with it.
        scheduling=Scheduling(
            topology_spread=(
                TopologySpread({"app.kubernetes.io/name": APP}, topology_key="kubernetes.io/hostname"),
            )
        ),
    )


def _documents() -> list[dict[str, Any]]:
    from kubernetes.client import (
        V1ConfigMap,
        V1Deployment,
        V1DeploymentSpec,
        V1DeploymentStrategy,
        V1HTTPIngressPath,
        V1HTTPIngressRuleValue,
        V1Ingress,
        V1IngressBackend,
        V1IngressRule,
        V1IngressServiceBackend,
        V1IngressSpec,
        V1IngressTLS,
        V1LabelSelector,
        V1ObjectMeta,
        V1PodTemplateSpec,
        V1RollingUpdateDeployment,
        V1Service,
        V1ServiceBackendPort,
        V1ServicePort,
        V1ServiceSpec,
    )

    from containerkit.kubernetes.manifests import to_dict
    from containerkit.kubernetes.pod import render_pod

    selector = {"app.kubernetes.io/name": APP}
    pod = render_pod(_spec(), name=None)
    pod.spec.restart_policy = "Always"  # a Deployment's pods are restarted, never completed
    pod.spec.containers[0].ports[0].name = "http"
    meta = {"namespace": NAMESPACE, "labels": LABELS}
    deployment = V1Deployment(
        api_version="apps/v1",
        kind="Deployment",
        metadata=V1ObjectMeta(name=APP, **meta),
        spec=V1DeploymentSpec(
            replicas=2,
            selector=V1LabelSelector(match_labels=selector),
            strategy=V1DeploymentStrategy(
                type="RollingUpdate",
                rolling_update=V1RollingUpdateDeployment(max_unavailable=0, max_surge=1),
            ),
            template=V1PodTemplateSpec(metadata=pod.metadata, spec=pod.spec),
        ),
    )
    service = V1Service(
        api_version="v1",
        kind="Service",
        metadata=V1ObjectMeta(name=APP, **meta),
        spec=V1ServiceSpec(
            type="ClusterIP",
            selector=selector,
            ports=[V1ServicePort(name="http", port=80, target_port="http", protocol="TCP")],
        ),
    )
    config_map = V1ConfigMap(
        api_version="v1",
        kind="ConfigMap",
        metadata=V1ObjectMeta(name=CONFIG_MAP, **meta),
        data={"greeting.txt": "scores are fresh as of the last run\n"},
    )
    ingress = V1Ingress(
        api_version="networking.k8s.io/v1",
        kind="Ingress",
        metadata=V1ObjectMeta(name=APP, **meta),
        spec=V1IngressSpec(
            ingress_class_name="nginx",
            tls=[V1IngressTLS(hosts=[HOST], secret_name=f"{APP}-tls")],
            rules=[
                V1IngressRule(
                    host=HOST,
                    http=V1HTTPIngressRuleValue(
                        paths=[
                            V1HTTPIngressPath(
                                path="/",
                                path_type="Prefix",
                                backend=V1IngressBackend(
                                    service=V1IngressServiceBackend(
                                        name=APP, port=V1ServiceBackendPort(name="http")
                                    )
                                ),
                            )
                        ]
                    ),
                )
            ],
        ),
    )
    return [to_dict(m) for m in (config_map, deployment, service, ingress)]


def _apis() -> tuple[Any, Any, Any]:
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
    from kubernetes.client import AppsV1Api, CoreV1Api, NetworkingV1Api

    client = KubernetesHook(conn_id=KUBERNETES_CONN_ID).api_client
    return CoreV1Api(client), AppsV1Api(client), NetworkingV1Api(client)


@dag(
    dag_id="88_03_02_k8s_manifests",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "core", "intermediate", "success", "needs:kubernetes", "needs:cluster"],
    doc_md=__doc__,
)
def k8s_manifests() -> None:
    @task
    def render_manifests() -> str:
        import yaml

        text = yaml.safe_dump_all(_documents(), sort_keys=False, explicit_start=True)
        print(text)
        return text

    @task
    def validate_manifests(text: str) -> dict[str, Any]:
        import kubernetes_validate
        import yaml

        from containerkit.policy.engine import evaluate
        from containerkit.policy.model import Severity
        from containerkit.policy.sources.kubernetes import load_text

        documents = list(yaml.safe_load_all(text))
        for document in documents:
            for version in KUBERNETES_VERSIONS:
                kubernetes_validate.validate(document, version, strict=True)
        findings = [f for target in load_text(text, f"{APP}.yaml") for f in evaluate(target)]
        serious = [
            f"{f.rule_id} {f.path}: {f.message}" for f in findings if f.severity.rank >= Severity.WARNING.rank
        ]
        if serious:
            raise ValueError(f"policy findings on the manifests: {serious}")
        kinds = [d["kind"] for d in documents]
        advice = [f.message for f in findings]
        print(f"{kinds} valid on Kubernetes {', '.join(KUBERNETES_VERSIONS)}; advice: {advice}")
        return {"kinds": kinds, "advice": [f.rule_id for f in findings]}

    @task
    def ensure_secret() -> bool:
        import secrets

        from kubernetes.client import V1ObjectMeta, V1Secret
        from kubernetes.client.exceptions import ApiException

        core, _, _ = _apis()
        try:
            core.read_namespaced_secret(SECRET, NAMESPACE)
            return False
        except ApiException as exc:
            if exc.status != 404:
                raise
        body = V1Secret(
            metadata=V1ObjectMeta(name=SECRET, labels=LABELS),
            string_data={"token": secrets.token_urlsafe(24)},
            type="Opaque",
        )
        core.create_namespaced_secret(NAMESPACE, body)
        return True

    @task
    def apply_manifests(_: dict[str, Any]) -> list[str]:
        core, apps, networking = _apis()
        create = {
            "ConfigMap": core.create_namespaced_config_map,
            "Deployment": apps.create_namespaced_deployment,
            "Service": core.create_namespaced_service,
            "Ingress": networking.create_namespaced_ingress,
        }
        applied = []
        for document in _documents():
            create[document["kind"]](NAMESPACE, document)
            applied.append(f"{document['kind']}/{document['metadata']['name']}")
        return applied

    @task
    def wait_for_objects(applied: list[str]) -> dict[str, str]:
        core, apps, networking = _apis()
        read = {
            "ConfigMap": core.read_namespaced_config_map,
            "Deployment": apps.read_namespaced_deployment,
            "Service": core.read_namespaced_service,
            "Ingress": networking.read_namespaced_ingress,
        }
        found = {}
        deadline = time.monotonic() + 30
        for item in applied:
            kind, name = item.split("/")
            while True:
                try:
                    obj = read[kind](name, NAMESPACE)
                    found[item] = obj.metadata.uid or "stored"
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
        deployment = apps.read_namespaced_deployment(APP, NAMESPACE)
        env = deployment.spec.template.spec.containers[0].env
        if any(e.name == "API_TOKEN" and e.value for e in env):
            raise ValueError("the Deployment carries the token as a literal")
        print(f"stored: {sorted(found)}")
        return found

    smoke_pod_template = SecureKubernetesPodOperator(
        task_id="smoke_pod_template",
        name=f"{APP}-smoke",
        namespace=NAMESPACE,
        kubernetes_conn_id=KUBERNETES_CONN_ID,
        spec=_spec("--self-test"),
        get_logs=True,
    )

    @task
    def wait_for_rollout() -> dict[str, int]:
        from airflow.sdk.exceptions import AirflowSkipException

        if os.environ.get("CONTAINERKIT_REAL_CLUSTER") != "1":
            raise AirflowSkipException(
                "needs:cluster: rolling out a Deployment needs the Deployment and ReplicaSet controllers; "
                "the local Docker-backed test double stores Deployments without creating their pods. Set "
                "CONTAINERKIT_REAL_CLUSTER=1 to wait for availableReplicas == 2 here."
            )
        _, apps, _ = _apis()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            status = apps.read_namespaced_deployment_status(APP, NAMESPACE).status
            if (status.available_replicas or 0) >= 2 and (status.updated_replicas or 0) >= 2:
                return {"available": status.available_replicas, "updated": status.updated_replicas}
            time.sleep(5)
        raise TimeoutError(f"Deployment {APP} not available after 300 s: {status}")

    @teardown
    def delete_manifests(secret_created: bool) -> None:
        from kubernetes.client.exceptions import ApiException

        core, apps, networking = _apis()
        deletions = [
            (networking.delete_namespaced_ingress, APP),
            (core.delete_namespaced_service, APP),
            (apps.delete_namespaced_deployment, APP),
            (core.delete_namespaced_config_map, CONFIG_MAP),
        ]
        if secret_created:
            deletions.append((core.delete_namespaced_secret, SECRET))
        for delete, name in deletions:
            try:
                delete(name, NAMESPACE)
            except ApiException as exc:
                if exc.status != 404:
                    raise

    text = render_manifests()
    applied = apply_manifests(validate_manifests(text))
    secret = ensure_secret()
    stored = wait_for_objects(applied)
    [secret, stored] >> smoke_pod_template >> wait_for_rollout() >> delete_manifests(secret)


k8s_manifests()
