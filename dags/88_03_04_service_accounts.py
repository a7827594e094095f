"""Service accounts: least-privilege RBAC for task pods, proven with access reviews; tokens only where needed.

**Problem.** Airflow on Kubernetes needs API rights (the worker creates pods, the triggerer watches
them), and the easy fix for a ``403`` is a ClusterRole with ``*``. Every task pod also gets the
namespace's default token mounted, so any task can call the API with it.

**Practice, per sub-point:**

* *RBAC configuration* (``render_rbac``): ``containerkit.kubernetes.rbac.render_rbac`` renders the
  worker's and the triggerer's ServiceAccount, Role and RoleBinding (namespaced, no ClusterRole), plus a
  read-only ServiceAccount ``ck-api-reader`` for a task that needs the API; all validate strictly
  against Kubernetes 1.29, 1.33 and 1.37. ``apply_rbac`` creates them through the API.
* *pod creation permissions* and *namespace access* (``access_reviews``): ``SubjectAccessReview`` s ask the
  API server what each ServiceAccount may do; the exact sets of allowed and denied checks are asserted:
  the worker may create/delete pods, read logs, exec (xcom) and list events in the task namespace, and
  may not read Secrets, create Deployments or RoleBindings (escalation), touch another namespace or list
  Nodes; the triggerer may only watch; the reader may only read pods.
* ``api_task`` runs under ``ck-api-reader`` with the token mounted **only** because it calls the API: a
  bound, expiring projected token (audience: the API server; not the legacy automount);
  ``no_token_task`` shows a default task pod has no token at all. With a real cluster, ``api_task``
  lists pods with its token.
* *cloud provider integration* (``cloud_identity``): IRSA (EKS), Workload Identity (GKE) and Azure
  Workload Identity annotations on the worker ServiceAccount (plus the Azure pod label), validated,
  applied and read back.
* ``delete_rbac`` (a teardown) removes what ``apply_rbac`` created.

**Copying.** Set ``CONTAINERKIT_NAMESPACE`` / ``CONTAINERKIT_PYTHON_IMAGE`` / ``kubernetes_default``; put
your role ARN, GCP service account and Azure client id in ``CLOUD_IDENTITY``. With the official chart,
render with ``create_service_account=False`` and bind the chart's ``<release>-worker`` accounts instead
(``containerkit render manifests``).

**Needs.** A Kubernetes API that answers access reviews (``needs:kubernetes``; the tests use the local
Docker-backed one from ``containerkit.testing``, which evaluates the stored RBAC like the API server).
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.providers.containerkit.operators.kubernetes import SecureKubernetesPodOperator
from airflow.sdk import dag, task, teardown

from containerkit.spec import ContainerSpec, ProjectedVolume, ServiceAccountToken, VolumeMount

PYTHON_IMAGE = os.environ.get("CONTAINERKIT_PYTHON_IMAGE", "python:3.11-slim-bookworm")
NAMESPACE = os.environ.get("CONTAINERKIT_NAMESPACE", "airflow-tasks")
KUBERNETES_CONN_ID = "kubernetes_default"
OTHER_NAMESPACE = "default"
READER = "ck-api-reader"
KUBERNETES_VERSIONS = ("1.29", "1.33", "1.37")
CLOUD_IDENTITY = {
    "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/airflow-worker",
    "eks.amazonaws.com/token-expiration": "3600",
    "iam.gke.io/gcp-service-account": "airflow-worker@my-project.iam.gserviceaccount.com",
    "azure.workload.identity/client-id": "00000000-0000-0000-0000-000000000000",
}
AZURE_POD_LABEL = {"azure.workload.identity/use": "true"}
TOKEN_DIR = "/var/run/secrets/containerkit/api"

# (account, verb, resource, subresource, namespace) -> allowed?
EXPECTED: dict[tuple[str, str, str, str, str], bool] = {
    ("airflow-worker", "create", "pods", "", NAMESPACE): True,
    ("airflow-worker", "delete", "pods", "", NAMESPACE): True,
    ("airflow-worker", "get", "pods", "log", NAMESPACE): True,
    ("airflow-worker", "create", "pods", "exec", NAMESPACE): True,
    ("airflow-worker", "list", "events", "", NAMESPACE): True,
    ("airflow-worker", "get", "secrets", "", NAMESPACE): False,
    ("airflow-worker", "create", "deployments", "", NAMESPACE): False,
    ("airflow-worker", "create", "rolebindings", "", NAMESPACE): False,
    ("airflow-worker", "create", "pods", "", OTHER_NAMESPACE): False,
    ("airflow-worker", "list", "nodes", "", ""): False,
    ("airflow-triggerer", "watch", "pods", "", NAMESPACE): True,
    ("airflow-triggerer", "get", "pods", "log", NAMESPACE): True,
    ("airflow-triggerer", "create", "pods", "", NAMESPACE): False,
    ("airflow-triggerer", "delete", "pods", "", NAMESPACE): False,
    (READER, "list", "pods", "", NAMESPACE): True,
    (READER, "delete", "pods", "", NAMESPACE): False,
    (READER, "get", "secrets", "", NAMESPACE): False,
}

API_SCRIPT = f"""
import json, os, pathlib, ssl, urllib.request
token_file = pathlib.Path("{TOKEN_DIR}/token")
token = token_file.read_text().strip()
result = {{"token_present": bool(token), "token_mode": oct(token_file.stat().st_mode & 0o777),
          "legacy_token": pathlib.Path("/var/run/secrets/kubernetes.io/serviceaccount/token").exists()}}
host = os.environ.get("KUBERNETES_SERVICE_HOST")
if host:  # inside a real cluster: call the API with the bound token
    ca = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
    context = ssl.create_default_context(cafile=ca) if os.path.exists(ca) else ssl.create_default_context()
    request = urllib.request.Request(f"https://{{host}}/api/v1/namespaces/{NAMESPACE}/pods?limit=1",
                                     headers={{"Authorization": f"Bearer {{token}}"}})
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            result["list_pods"] = response.status
    except Exception as exc:
        result["list_pods"] = f"{{type(exc).__name__}}: {{exc}}"
pathlib.Path("/airflow/xcom/return.json").write_text(json.dumps(result))
print(json.dumps(result))
"""
NO_TOKEN_SCRIPT = (
    "import json, pathlib; paths = ['/var/run/secrets/kubernetes.io/serviceaccount/token', "
    f"'{TOKEN_DIR}/token']; found = [p for p in paths if pathlib.Path(p).exists()]; "
    "pathlib.Path('/airflow/xcom/return.json').write_text(json.dumps({'tokens': found}))"
)


def _rbac_objects() -> list[dict[str, Any]]:
    from containerkit.kubernetes.manifests import to_dict
    from containerkit.kubernetes.rbac import render_rbac

    objects = [
        *render_rbac(NAMESPACE, service_account="airflow-worker"),
        *render_rbac(NAMESPACE, service_account="airflow-triggerer", for_triggerer=True),
        # The reader binds the same read-only Role as the triggerer: get/list/watch pods, logs, events.
        *render_rbac(NAMESPACE, service_account=READER, for_triggerer=True),
    ]
    unique: dict[tuple[str, str], dict[str, Any]] = {}
    for obj in objects:
        data = to_dict(obj)
        unique[(data["kind"], data["metadata"]["name"])] = data
    return list(unique.values())


def _clients() -> tuple[Any, Any, Any]:
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
    from kubernetes.client import AuthorizationV1Api, CoreV1Api, RbacAuthorizationV1Api

    api = KubernetesHook(conn_id=KUBERNETES_CONN_ID).api_client
    return CoreV1Api(api), RbacAuthorizationV1Api(api), AuthorizationV1Api(api)


@dag(
    dag_id="88_03_04_service_accounts",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["reference", "core", "intermediate", "success", "needs:kubernetes"],
    doc_md=__doc__,
)
def service_accounts() -> None:
    @task
    def render_rbac() -> list[dict[str, Any]]:
        import kubernetes_validate

        objects = _rbac_objects()
        for obj in objects:
            for version in KUBERNETES_VERSIONS:
                kubernetes_validate.validate(obj, version, strict=True)
            if obj["kind"].startswith("Cluster"):
                raise ValueError(f"cluster-wide RBAC rendered: {obj['metadata']['name']}")
        for obj in objects:
            if obj["kind"] == "Role":
                rules = [f"{','.join(r['resources'])}: {','.join(r['verbs'])}" for r in obj["rules"]]
                print(f"Role {obj['metadata']['name']}: {rules}")
        return objects

    @task
    def apply_rbac(objects: list[dict[str, Any]]) -> list[str]:
        from kubernetes.client.exceptions import ApiException

        core, rbac, _ = _clients()
        create = {
            "ServiceAccount": core.create_namespaced_service_account,
            "Role": rbac.create_namespaced_role,
            "RoleBinding": rbac.create_namespaced_role_binding,
        }
        created = []
        for obj in objects:
            try:
                create[obj["kind"]](NAMESPACE, obj)
                created.append(f"{obj['kind']}/{obj['metadata']['name']}")
            except ApiException as exc:
                if exc.status != 409:  # already there from an earlier run: keep it
                    raise
        print(f"created {created}")
        return created

    @task
    def access_reviews(_: list[str]) -> dict[str, list[str]]:
        from kubernetes.client import V1ResourceAttributes, V1SubjectAccessReview, V1SubjectAccessReviewSpec

        _, _, authz = _clients()
        got: dict[tuple[str, str, str, str, str], bool] = {}
        for key in EXPECTED:
            account, verb, resource, subresource, namespace = key
            review = V1SubjectAccessReview(
                spec=V1SubjectAccessReviewSpec(
                    user=f"system:serviceaccount:{NAMESPACE}:{account}",
                    groups=[
                        "system:serviceaccounts",
                        f"system:serviceaccounts:{NAMESPACE}",
                        "system:authenticated",
                    ],
                    resource_attributes=V1ResourceAttributes(
                        verb=verb,
                        resource=resource,
                        subresource=subresource or None,
                        namespace=namespace or None,
                        group="apps"
                        if resource == "deployments"
                        else ("rbac.authorization.k8s.io" if resource == "rolebindings" else ""),
                    ),
                )
            )
            got[key] = bool(authz.create_subject_access_review(review).status.allowed)

        def show(k: tuple[str, ...]) -> str:
            account, verb, resource, sub, ns = k
            return f"{account} {verb} {resource}{'/' + sub if sub else ''} in {ns or 'cluster'}"

        allowed = sorted(show(k) for k, v in got.items() if v)
        expected_allowed = sorted(show(k) for k, v in EXPECTED.items() if v)
        if allowed != expected_allowed:
            raise ValueError(f"allowed {allowed}, expected exactly {expected_allowed}")
        denied = sorted(show(k) for k, v in got.items() if not v)
        print("allowed:\n  " + "\n  ".join(allowed) + "\ndenied:\n  " + "\n  ".join(denied))
        return {"allowed": allowed, "denied": denied}

    api_task = SecureKubernetesPodOperator(
        task_id="api_task",
        name="api-task",
        namespace=NAMESPACE,
        kubernetes_conn_id=KUBERNETES_CONN_ID,
        spec=ContainerSpec(
            PYTHON_IMAGE,
            command=["python", "-c", API_SCRIPT],
            service_account=READER,
            # The profile keeps automountServiceAccountToken false; this task mounts a bound, expiring
            # token (default audience: the API server) because it calls the API.
            volumes=[
                ProjectedVolume("api-token", sources=(ServiceAccountToken("token", expiration_seconds=3600),))
            ],
            mounts=[VolumeMount("api-token", TOKEN_DIR, read_only=True)],
            resources="xs",
        ),
        do_xcom_push=True,
    )
    no_token_task = SecureKubernetesPodOperator(
        task_id="no_token_task",
        name="no-token-task",
        namespace=NAMESPACE,
        kubernetes_conn_id=KUBERNETES_CONN_ID,
        image=PYTHON_IMAGE,
        cmds=["python", "-c", NO_TOKEN_SCRIPT],
        resources="xs",
        do_xcom_push=True,
    )

    @task
    def check_tokens(with_api: dict[str, Any], without: dict[str, Any]) -> dict[str, Any]:
        if not with_api["token_present"] or with_api["legacy_token"]:
            raise ValueError(f"api_task should see only its bound token: {with_api}")
        if without["tokens"]:
            raise ValueError(f"a default task pod has API tokens mounted: {without['tokens']}")
        if "list_pods" in with_api and with_api["list_pods"] != 200:
            raise ValueError(f"the reader's token could not list pods: {with_api['list_pods']}")
        print(f"api_task token: {with_api}; default task pod tokens: {without['tokens']}")
        return {"api_task": with_api, "no_token_task": without}

    @task
    def cloud_identity(_: list[str]) -> dict[str, str]:
        import kubernetes_validate

        from containerkit.kubernetes.manifests import to_dict
        from containerkit.kubernetes.pod import render_pod

        core, _, _ = _clients()
        patch = {"metadata": {"annotations": CLOUD_IDENTITY}}
        account = {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            **{"metadata": {"name": "airflow-worker", "namespace": NAMESPACE, "annotations": CLOUD_IDENTITY}},
        }
        pod = to_dict(
            render_pod(
                ContainerSpec(PYTHON_IMAGE, service_account="airflow-worker", labels=AZURE_POD_LABEL),
                name="cloud-task",
                namespace=NAMESPACE,
            )
        )
        for document in (account, pod):
            for version in KUBERNETES_VERSIONS:
                kubernetes_validate.validate(document, version, strict=True)
        core.patch_namespaced_service_account("airflow-worker", NAMESPACE, patch)
        stored = core.read_namespaced_service_account("airflow-worker", NAMESPACE).metadata.annotations or {}
        missing = {k: v for k, v in CLOUD_IDENTITY.items() if stored.get(k) != v}
        if missing:
            raise ValueError(f"annotations not stored: {missing}")
        print("worker ServiceAccount identity annotations:", CLOUD_IDENTITY, "pod label:", AZURE_POD_LABEL)
        return dict(CLOUD_IDENTITY)

    @teardown
    def delete_rbac(created: list[str]) -> None:
        from kubernetes.client.exceptions import ApiException

        core, rbac, _ = _clients()
        delete = {
            "ServiceAccount": core.delete_namespaced_service_account,
            "Role": rbac.delete_namespaced_role,
            "RoleBinding": rbac.delete_namespaced_role_binding,
        }
        for item in reversed(created):
            kind, name = item.split("/", 1)
            try:
                delete[kind](name, NAMESPACE)
            except ApiException as exc:
                if exc.status != 404:
                    raise

    created = apply_rbac(render_rbac())
    reviews = access_reviews(created)
    identity = cloud_identity(created)
    checked = check_tokens(api_task.output, no_token_task.output)
    reviews >> api_task
    [checked, identity] >> delete_rbac(created)


service_accounts()
