"""RBAC factory: namespaced, least-privilege, schema-valid objects for workers and triggerers."""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml

from containerkit.errors import SpecError
from containerkit.kubernetes.manifests import to_dict
from containerkit.kubernetes.rbac import rbac_yaml, render_rbac


def _rules(objs: list[object]) -> dict[str, list[str]]:
    role = next(to_dict(o) for o in objs if to_dict(o)["kind"] == "Role")
    out = {}
    for rule in role["rules"]:
        assert rule["apiGroups"] == [""]
        (resource,) = rule["resources"]
        out[resource] = rule["verbs"]
    return out


def test_worker_role_grants_exactly_what_the_pod_operator_uses() -> None:
    assert _rules(render_rbac("airflow-tasks")) == {
        "pods": ["create", "get", "list", "watch", "delete", "patch"],
        "pods/log": ["get"],
        "pods/exec": ["create", "get"],
        "events": ["list"],
    }


def test_triggerer_role_is_read_only() -> None:
    rules = _rules(render_rbac("airflow-tasks", for_triggerer=True))
    assert rules == {"pods": ["get", "list", "watch"], "pods/log": ["get"], "events": ["list"]}


def test_objects_are_namespaced_valid_and_bound_across_namespaces() -> None:
    objs = [to_dict(o) for o in render_rbac("airflow-tasks", service_account_namespace="airflow")]
    assert [o["kind"] for o in objs] == ["ServiceAccount", "Role", "RoleBinding"]
    for obj in objs:
        for version in ("1.29.0", "1.37.0"):
            kubernetes_validate.validate(obj, version, strict=True)
    sa, role, binding = objs
    assert sa["metadata"] == {
        "labels": {"app.kubernetes.io/managed-by": "containerkit", "app.kubernetes.io/component": "worker"},
        "name": "airflow-worker",
        "namespace": "airflow",
    }
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "airflow-tasks"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "airflow-worker", "namespace": "airflow"}
    ]


def test_no_cluster_scope_and_no_wildcards() -> None:
    text = rbac_yaml("airflow-tasks")
    docs = list(yaml.safe_load_all(text))
    assert {d["kind"] for d in docs} == {"ServiceAccount", "Role", "RoleBinding"}
    assert "*" not in text and "Cluster" not in text and "secrets" not in text
    assert text == rbac_yaml("airflow-tasks")
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"] == [
        "airflow-worker",
        "airflow-triggerer",
    ]


def test_existing_service_account_is_not_recreated() -> None:
    kinds = [to_dict(o)["kind"] for o in render_rbac("t", service_account="x", create_service_account=False)]
    assert kinds == ["Role", "RoleBinding"]


def test_bad_names_are_refused() -> None:
    with pytest.raises(SpecError, match=r"namespace='Airflow_Tasks': not a valid Kubernetes namespace name"):
        render_rbac("Airflow_Tasks")
    with pytest.raises(SpecError, match="service_account='Worker 1'"):
        render_rbac("airflow", service_account="Worker 1")
