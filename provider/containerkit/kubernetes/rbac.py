"""RBAC for running KubernetesPodOperator tasks in a namespace: ServiceAccount, Role and RoleBinding.

Least privilege, namespaced only (no ClusterRole, no cluster-wide binding):

* worker (runs the operator): ``pods`` create/get/list/watch/delete/patch (patch: KPO labels a finished
  pod as checked), ``pods/log`` get, ``pods/exec`` create and get (the XCom sidecar is read through exec;
  the API authorises the WebSocket upgrade as ``get`` before Kubernetes 1.31 and as ``create`` after),
  ``events`` list (failure diagnosis);
* triggerer (deferrable tasks poll the pod from the trigger): ``pods`` get/list/watch, ``pods/log`` get,
  ``events`` list. It never creates or deletes pods.
"""

from __future__ import annotations

from typing import Any

from kubernetes.client import (
    RbacV1Subject,
    V1ObjectMeta,
    V1PolicyRule,
    V1Role,
    V1RoleBinding,
    V1RoleRef,
    V1ServiceAccount,
)

from containerkit.kubernetes.manifests import dump_yaml, model
from containerkit.spec.names import check_dns_label, check_dns_subdomain

MANAGED_BY = {"app.kubernetes.io/managed-by": "containerkit"}

WORKER_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("pods", ("create", "get", "list", "watch", "delete", "patch")),
    ("pods/log", ("get",)),
    ("pods/exec", ("create", "get")),
    ("events", ("list",)),
)
TRIGGERER_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("pods", ("get", "list", "watch")),
    ("pods/log", ("get",)),
    ("events", ("list",)),
)


def render_rbac(
    namespace: str,
    *,
    service_account: str | None = None,
    service_account_namespace: str | None = None,
    for_triggerer: bool = False,
    create_service_account: bool = True,
) -> list[Any]:
    """``[ServiceAccount, Role, RoleBinding]`` letting ``service_account`` run task pods in ``namespace``.

    :param namespace: where the task pods run (the Role and RoleBinding live here).
    :param service_account: the Airflow component's ServiceAccount (default ``airflow-worker`` or
        ``airflow-triggerer``).
    :param service_account_namespace: where that ServiceAccount lives (default: ``namespace``); Airflow
        often runs in its own namespace and launches pods in another.
    :param for_triggerer: the read-only variant for the triggerer of deferrable tasks.
    :param create_service_account: include the ServiceAccount (off when the Helm chart creates it).
    """
    check_dns_label("namespace", namespace, what="namespace name")
    component = "triggerer" if for_triggerer else "worker"
    account = service_account or f"airflow-{component}"
    check_dns_subdomain("service_account", account, what="ServiceAccount name")
    account_namespace = service_account_namespace or namespace
    check_dns_label("service_account_namespace", account_namespace, what="namespace name")
    role_name = f"containerkit-pod-{'watcher' if for_triggerer else 'launcher'}"
    rules = TRIGGERER_RULES if for_triggerer else WORKER_RULES
    labels = {**MANAGED_BY, "app.kubernetes.io/component": component}
    role = model(
        V1Role,
        api_version="rbac.authorization.k8s.io/v1",
        kind="Role",
        metadata=model(V1ObjectMeta, name=role_name, namespace=namespace, labels=labels),
        rules=[
            model(V1PolicyRule, api_groups=[""], resources=[resource], verbs=list(verbs))
            for resource, verbs in rules
        ],
    )
    binding = model(
        V1RoleBinding,
        api_version="rbac.authorization.k8s.io/v1",
        kind="RoleBinding",
        metadata=model(V1ObjectMeta, name=f"{role_name}-{account}"[:253], namespace=namespace, labels=labels),
        role_ref=model(V1RoleRef, api_group="rbac.authorization.k8s.io", kind="Role", name=role_name),
        subjects=[model(RbacV1Subject, kind="ServiceAccount", name=account, namespace=account_namespace)],
    )
    out: list[Any] = []
    if create_service_account:
        out.append(
            model(
                V1ServiceAccount,
                api_version="v1",
                kind="ServiceAccount",
                # The Airflow component using it calls the API, so its token stays mounted.
                metadata=model(V1ObjectMeta, name=account, namespace=account_namespace, labels=labels),
            )
        )
    return [*out, role, binding]


def rbac_yaml(namespace: str, **options: Any) -> str:
    """:func:`render_rbac` for the worker and the triggerer, as one multi-document YAML."""
    worker = render_rbac(namespace, **options)
    triggerer = render_rbac(namespace, **{**options, "for_triggerer": True, "service_account": None})
    return dump_yaml([*worker, *triggerer])
