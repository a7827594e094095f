"""The local Kubernetes test double (containerkit.testing) through the real ``kubernetes`` client.

Each behaviour is one a real node shows and a test of a KubernetesPodOperator DAG relies on: env from
Secrets/ConfigMaps, restart counts, PVCs that outlive a pod, ``activeDeadlineSeconds``, graceful
deletion, ownerReferences garbage collection, refusal of host access, PodMetrics, access reviews, and
that stopping a cluster leaves no labelled engine object behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from containerkit.testing.cluster import LocalCluster

HARDENED = {
    "runAsNonRoot": True,
    "runAsUser": 50000,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}


@pytest.fixture
def core(local_cluster: LocalCluster) -> Any:
    from kubernetes import client, config

    return client.CoreV1Api(config.new_client_from_config(str(local_cluster.kubeconfig)))


@pytest.fixture
def image(python_image: str) -> str:
    return python_image


def pod(name: str, image: str, script: str, **spec: Any) -> dict[str, Any]:
    container = {"name": "base", "image": image, "command": ["sh", "-c", script], "securityContext": HARDENED}
    container.update(spec.pop("container", {}))
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, **spec.pop("metadata", {})},
        "spec": {"restartPolicy": "Never", "containers": [container], **spec},
    }


def wait_for(check: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def phase_is(core: Any, ns: str, name: str, *phases: str) -> Callable[[], Any]:
    def check() -> Any:
        found = core.read_namespaced_pod(name, ns)
        return found if found.status.phase in phases else None

    return check


def logs(core: Any, ns: str, name: str, container: str = "base") -> str:
    response = core.read_namespaced_pod_log(name, ns, container=container, _preload_content=False)
    return str(response.data.decode())


def test_env_from_secrets_config_maps_and_the_downward_api(
    local_cluster: LocalCluster, core: Any, k8s_namespace: str, image: str
) -> None:
    ns = k8s_namespace
    local_cluster.create_secret(ns, "db", {"password": "pw-1"})
    local_cluster.create_config_map(ns, "settings", {"MODE": "batch", "LEVEL": "3"})
    env = [
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
        {"name": "URL", "value": "db://$(POD):$(DB_PASSWORD)"},
    ]
    spec = pod(
        "env",
        image,
        'echo "$DB_PASSWORD $POD $MEM $URL $CFG_MODE $CFG_LEVEL"',
        container={
            "env": env,
            "envFrom": [{"prefix": "CFG_", "configMapRef": {"name": "settings"}}],
            "resources": {"limits": {"memory": "64Mi"}},
        },
    )
    core.create_namespaced_pod(ns, spec)
    wait_for(phase_is(core, ns, "env", "Succeeded"), what="env pod to succeed")
    assert logs(core, ns, "env").strip() == "pw-1 env 64 db://env:pw-1 batch 3"


def test_restart_policy_on_failure_counts_restarts_with_back_off(
    core: Any, k8s_namespace: str, image: str
) -> None:
    ns = k8s_namespace
    # Fails twice (a counter on an emptyDir survives the restarts), then succeeds.
    script = "n=$(cat /data/n 2>/dev/null || echo 0); echo $((n+1)) > /data/n; [ $n -ge 2 ]"
    spec = pod(
        "flaky",
        image,
        script,
        restartPolicy="OnFailure",
        volumes=[{"name": "data", "emptyDir": {}}],
        container={"volumeMounts": [{"name": "data", "mountPath": "/data"}]},
    )
    core.create_namespaced_pod(ns, spec)
    done = wait_for(phase_is(core, ns, "flaky", "Succeeded"), timeout=40, what="flaky pod to succeed")
    status = done.status.container_statuses[0]
    assert status.restart_count == 2
    assert status.last_state.terminated.exit_code == 1
    events = core.list_namespaced_event(ns, field_selector="involvedObject.name=flaky").items
    assert "BackOff" in {e.reason for e in events}


def test_pvc_volume_outlives_the_pod_and_a_missing_claim_is_unschedulable(
    local_cluster: LocalCluster, core: Any, k8s_namespace: str, image: str
) -> None:
    ns = k8s_namespace
    claim = {"name": "cache", "persistentVolumeClaim": {"claimName": "cache"}}
    mount = {"volumeMounts": [{"name": "cache", "mountPath": "/cache"}]}
    core.create_namespaced_pod(ns, pod("orphan", image, "true", volumes=[claim], container=mount))
    pending = wait_for(
        lambda: [e for e in local_cluster.events(ns, "orphan") if e["reason"] == "FailedScheduling"],
        what="FailedScheduling for a missing PVC",
    )
    assert 'persistentvolumeclaim "cache" not found' in pending[0]["message"]
    core.delete_namespaced_pod("orphan", ns, grace_period_seconds=0)

    local_cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "cache", "namespace": ns},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        }
    )
    core.create_namespaced_pod(
        ns, pod("writer", image, "echo kept > /cache/f", volumes=[claim], container=mount)
    )
    wait_for(phase_is(core, ns, "writer", "Succeeded"), what="writer to succeed")
    core.delete_namespaced_pod("writer", ns)
    assert local_cluster.wait_for_no_pods(ns) == []
    core.create_namespaced_pod(ns, pod("reader", image, "cat /cache/f", volumes=[claim], container=mount))
    wait_for(phase_is(core, ns, "reader", "Succeeded"), what="reader to succeed")
    assert logs(core, ns, "reader").strip() == "kept"


def test_active_deadline_fails_the_pod(
    local_cluster: LocalCluster, core: Any, k8s_namespace: str, image: str
) -> None:
    ns = k8s_namespace
    started = time.monotonic()
    core.create_namespaced_pod(ns, pod("slow", image, "exec sleep 60", activeDeadlineSeconds=2))
    failed = wait_for(phase_is(core, ns, "slow", "Failed"), what="deadline to fail the pod")
    assert time.monotonic() - started < 20
    assert failed.status.reason == "DeadlineExceeded"
    assert "DeadlineExceeded" in {e["reason"] for e in local_cluster.events(ns, "slow")}


@pytest.mark.parametrize("traps_term", [True, False], ids=["handles-TERM", "ignores-TERM"])
def test_deletion_honours_the_grace_period(
    local_cluster: LocalCluster, core: Any, k8s_namespace: str, image: str, traps_term: bool
) -> None:
    ns = k8s_namespace
    handler = "trap 'echo bye; exit 0' TERM" if traps_term else "trap '' TERM"
    core.create_namespaced_pod(ns, pod("svc", image, f"{handler}; while true; do sleep 0.1; done"))
    wait_for(phase_is(core, ns, "svc", "Running"), what="pod to run")
    started = time.monotonic()
    core.delete_namespaced_pod("svc", ns, grace_period_seconds=3)
    terminating = core.read_namespaced_pod("svc", ns)  # still there while its containers stop
    assert terminating.metadata.deletion_timestamp is not None
    assert local_cluster.wait_for_no_pods(ns, timeout=30) == []
    took = time.monotonic() - started
    if traps_term:
        assert took < 2.5, took  # stopped by SIGTERM at once
    else:
        assert 2.5 <= took < 15, took  # killed when the grace period ran out
    assert "Killing" in {e["reason"] for e in local_cluster.events(ns, "svc")}
    assert not [c for c in local_cluster.engine_objects()["containers"] if f"-{ns}-svc-" in c]


def test_owner_references_garbage_collect_a_secret(
    local_cluster: LocalCluster, core: Any, k8s_namespace: str, image: str
) -> None:
    from kubernetes import client

    ns = k8s_namespace
    created = core.create_namespaced_pod(ns, pod("owner", image, "true"))
    owner = client.V1OwnerReference(api_version="v1", kind="Pod", name="owner", uid=created.metadata.uid)
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(name="payload", owner_references=[owner]), string_data={"k": "v"}
    )
    core.create_namespaced_secret(ns, secret)
    core.create_namespaced_secret(ns, client.V1Secret(metadata=client.V1ObjectMeta(name="unowned")))
    wait_for(phase_is(core, ns, "owner", "Succeeded"), what="owner to succeed")
    core.delete_namespaced_pod("owner", ns)
    assert local_cluster.wait_for_no_pods(ns) == []
    assert sorted(s["metadata"]["name"] for s in local_cluster.list_objects("Secret", ns)) == ["unowned"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"container": {"securityContext": {"privileged": True}}}, "privileged=true"),
        ({"hostNetwork": True}, "spec.hostNetwork=true"),
        ({"volumes": [{"name": "root", "hostPath": {"path": "/etc"}}]}, "hostPath.path='/etc'"),
        ({"container": {"securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}}, "capabilities.add"),
    ],
    ids=["privileged", "hostNetwork", "hostPath", "SYS_ADMIN"],
)
def test_host_access_is_refused_with_an_event(
    local_cluster: LocalCluster, core: Any, k8s_namespace: str, image: str, change: dict[str, Any], field: str
) -> None:
    ns = k8s_namespace
    core.create_namespaced_pod(ns, pod("risky", image, "echo should-not-run", **change))
    failed = wait_for(phase_is(core, ns, "risky", "Failed"), what="refusal")
    assert failed.status.reason == "Forbidden"
    assert field in failed.status.message
    events = [e for e in local_cluster.events(ns, "risky") if e["reason"] == "Forbidden"]
    assert events and events[0]["type"] == "Warning" and field in events[0]["message"]
    assert not [c for c in local_cluster.engine_objects()["containers"] if f"-{ns}-risky-" in c]


def test_pod_metrics_come_from_engine_stats(
    local_cluster: LocalCluster, k8s_namespace: str, image: str
) -> None:
    from kubernetes import client, config

    api = config.new_client_from_config(str(local_cluster.kubeconfig))
    ns = k8s_namespace
    hog = 'python -c "x = bytearray(40 * 1024 * 1024)\nwhile True: pass"'
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(ns, pod("busy", image, hog, metadata={"labels": {"app": "busy"}}))
    core.create_namespaced_pod(ns, pod("idle", image, "exec sleep 600"))
    wait_for(phase_is(core, ns, "busy", "Running"), what="busy to run")
    wait_for(phase_is(core, ns, "idle", "Running"), what="idle to run")
    time.sleep(1.0)
    custom = client.CustomObjectsApi(api)

    def usage(name: str) -> tuple[int, int]:
        got = custom.get_namespaced_custom_object("metrics.k8s.io", "v1beta1", ns, "pods", name)
        assert got["kind"] == "PodMetrics" and [c["name"] for c in got["containers"]] == ["base"]
        cpu, memory = got["containers"][0]["usage"]["cpu"], got["containers"][0]["usage"]["memory"]
        assert cpu.endswith("n") and memory.endswith("Ki")
        return int(cpu[:-1]), int(memory[:-2])

    busy_cpu, busy_memory = usage("busy")
    idle_cpu, idle_memory = usage("idle")
    # A busy loop against a sleep (absolute cpu depends on how loaded the engine's host is).
    assert busy_cpu > 1_000_000 and busy_cpu > 10 * idle_cpu, (busy_cpu, idle_cpu)
    assert busy_memory > 40 * 1024 > idle_memory, (busy_memory, idle_memory)  # the 40 MiB it holds
    listed = custom.list_namespaced_custom_object(
        "metrics.k8s.io", "v1beta1", ns, "pods", label_selector="app=busy"
    )
    assert [m["metadata"]["name"] for m in listed["items"]] == ["busy"]


def test_access_reviews_evaluate_stored_rbac(local_cluster: LocalCluster, k8s_namespace: str) -> None:
    from kubernetes import client, config

    api = config.new_client_from_config(str(local_cluster.kubeconfig))
    ns = k8s_namespace
    sa = f"system:serviceaccount:{ns}:airflow-worker"
    local_cluster.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "pod-launcher", "namespace": ns},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["pods", "pods/log"],
                    "verbs": ["create", "get", "list", "watch", "delete"],
                }
            ],
        }
    )
    local_cluster.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "worker-launches", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-launcher"},
            "subjects": [{"kind": "ServiceAccount", "name": "airflow-worker", "namespace": ns}],
        }
    )
    auth = client.AuthorizationV1Api(api)

    def allowed(user: str, verb: str, resource: str, subresource: str = "") -> bool:
        attrs = client.V1ResourceAttributes(
            namespace=ns, verb=verb, resource=resource, subresource=subresource
        )
        body = client.V1SubjectAccessReview(
            spec=client.V1SubjectAccessReviewSpec(user=user, resource_attributes=attrs)
        )
        return bool(auth.create_subject_access_review(body).status.allowed)

    assert allowed(sa, "create", "pods")
    assert allowed(sa, "get", "pods", "log")
    assert not allowed(sa, "create", "secrets")
    assert not allowed(sa, "create", "pods", "exec")
    assert not allowed(f"system:serviceaccount:{ns}:someone-else", "create", "pods")
    self_review = client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=client.V1ResourceAttributes(namespace=ns, verb="delete", resource="nodes")
        )
    )
    assert auth.create_self_subject_access_review(self_review).status.allowed  # the kubeconfig user is admin


def test_stopping_a_cluster_leaves_no_labelled_engine_object(
    docker_client: Any, image: str, tmp_path: Any
) -> None:
    from kubernetes import client, config

    from containerkit.testing.kubelet import LABEL_CLUSTER

    cluster = LocalCluster("ck-cleanup-proof", workdir=tmp_path)
    with cluster:
        core = client.CoreV1Api(config.new_client_from_config(str(cluster.kubeconfig)))
        cluster.create_secret("a", "s", {"k": "v"})
        volumes = [
            {"name": "s", "secret": {"secretName": "s"}},
            {"name": "m", "emptyDir": {"medium": "Memory"}},
        ]
        mounts = {"volumeMounts": [{"name": "s", "mountPath": "/s"}, {"name": "m", "mountPath": "/m"}]}
        core.create_namespaced_pod(
            "a", pod("running", image, "exec sleep 600", volumes=volumes, container=mounts)
        )
        core.create_namespaced_pod("b", pod("done", image, "true"))
        core.create_namespaced_pod("b", pod("stuck", "containerkit/not-on-this-engine:1", "true"))
        wait_for(phase_is(core, "a", "running", "Running"), what="running pod")
        wait_for(phase_is(core, "b", "done", "Succeeded"), what="finished pod")
        during = cluster.engine_objects()
        assert len(during["containers"]) >= 3 and during["volumes"] and during["networks"]
    selector = {"label": f"{LABEL_CLUSTER}=ck-cleanup-proof"}
    assert docker_client.containers.list(all=True, filters=selector) == []
    assert docker_client.volumes.list(filters=selector) == []
    assert docker_client.networks.list(filters=selector) == []
