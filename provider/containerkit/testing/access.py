"""(Self)SubjectAccessReview of the test double: RBAC evaluated over the stored Roles and bindings.

The kubeconfig's own user is cluster-admin (as on a fresh kind cluster); a review for anyone else, or a
``SelfSubjectAccessReview`` sent with ``Impersonate-User``, is answered from the stored Roles,
ClusterRoles, RoleBindings and ClusterRoleBindings with the Kubernetes RBAC rules (allow-only, ``*``
wildcards, ``resourceNames``, ``resource/subresource``, service-account users and groups).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from containerkit.testing.api import ApiServer

__all__ = ["ADMIN_USER", "allowed_by", "review"]

ADMIN_USER = "containerkit-testing-admin"


def _subject_matches(subject: Mapping[str, Any], user: str, groups: set[str], binding_ns: str | None) -> bool:
    kind = subject.get("kind")
    if kind == "User":
        return bool(subject.get("name") == user)
    if kind == "Group":
        return subject.get("name") in groups
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_ns
        return user == f"system:serviceaccount:{ns}:{subject.get('name')}"
    return False


def _rule_allows(rule: Mapping[str, Any], attrs: Mapping[str, Any]) -> bool:
    verb = attrs.get("verb", "")
    if "nonResourceURLs" in rule and "path" in attrs:
        paths = rule.get("nonResourceURLs") or []
        verbs_ok = verb in (rule.get("verbs") or []) or "*" in (rule.get("verbs") or [])
        return verbs_ok and any(
            p == "*" or p == attrs["path"] or (p.endswith("*") and attrs["path"].startswith(p[:-1]))
            for p in paths
        )
    resource = attrs.get("resource", "")
    if attrs.get("subresource"):
        resource = f"{resource}/{attrs['subresource']}"
    groups = rule.get("apiGroups") or []
    resources = rule.get("resources") or []
    verbs = rule.get("verbs") or []
    names = rule.get("resourceNames") or []
    return (
        ("*" in groups or attrs.get("group", "") in groups)
        and ("*" in resources or resource in resources or f"{resource.split('/')[0]}/*" in resources)
        and ("*" in verbs or verb in verbs)
        and (not names or attrs.get("name") in names)
    )


def allowed_by(api: ApiServer, user: str, groups: set[str], attrs: Mapping[str, Any]) -> str | None:
    """The binding that allows ``attrs`` for ``user``, or None."""
    namespace = attrs.get("namespace") or None
    if user.startswith("system:serviceaccount:"):
        sa_ns = user.split(":")[2]
        groups = groups | {
            "system:serviceaccounts",
            f"system:serviceaccounts:{sa_ns}",
            "system:authenticated",
        }
    bindings = [(b, None) for b in api.items("ClusterRoleBinding")]
    if namespace:
        bindings += [(b, namespace) for b in api.items("RoleBinding", namespace)]
    for binding, ns in bindings:
        if not any(_subject_matches(s, user, groups, ns) for s in binding.get("subjects") or []):
            continue
        ref = binding.get("roleRef") or {}
        role = api.lookup("Role", ns, ref.get("name", "")) if ref.get("kind") == "Role" and ns else None
        if ref.get("kind") == "ClusterRole":
            role = api.lookup("ClusterRole", None, ref.get("name", ""))
        for rule in (role or {}).get("rules") or []:
            if _rule_allows(rule, attrs):
                kind = "RoleBinding" if ns else "ClusterRoleBinding"
                where = f"{ns}/" if ns else ""
                name = binding["metadata"]["name"]
                return f'RBAC: allowed by {kind} "{where}{name}" of {ref.get("kind")} "{ref.get("name")}"'
    return None


def review(
    api: ApiServer, body: dict[str, Any], kind: str | None, headers: Mapping[str, str]
) -> dict[str, Any]:
    spec = body.get("spec") or {}
    attrs = spec.get("resourceAttributes") or spec.get("nonResourceAttributes") or {}
    if kind == "self":
        user = headers.get("Impersonate-User") or ADMIN_USER
        groups = set(headers.getall("Impersonate-Group", []) if hasattr(headers, "getall") else [])
    else:
        user, groups = spec.get("user", ""), set(spec.get("groups") or [])
    if kind == "local":
        attrs = {**attrs, "namespace": body.get("metadata", {}).get("namespace") or attrs.get("namespace")}
    if user == ADMIN_USER:
        status = {"allowed": True, "reason": "containerkit.testing: the kubeconfig user is cluster-admin"}
    elif reason := allowed_by(api, user, groups, attrs):
        status = {"allowed": True, "reason": reason}
    else:
        status = {"allowed": False, "reason": f"no RBAC rule allows {user!r} to {attrs.get('verb')} {attrs}"}
    return {**body, "status": status}
